// The page of `ml-math-nn serve`: runs, live curves, comparisons and the network explorer.
// Plain JavaScript, no build step and nothing fetched from elsewhere; every number shown
// comes from the server's JSON API (/api/...), which computes it with the library.
"use strict";

const main = document.getElementById("main");
const live = document.getElementById("status");
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];
const SET_DASH = { train: "", val: "6 3", test: "2 3" };
let timers = [];  // polling timers of the page shown; cleared when the page changes

// -- small helpers ---------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

async function api(path, body) {
  const options = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function fmt(value, digits = 4) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(digits)));
  if (Array.isArray(value)) return value.join(",");
  return String(value);
}

// An axis label: three significant digits without trailing zeros, exponent form when tiny.
function tick(v) {
  if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(3)));
}

const pct = (p) => (p === null || p === undefined ? "—" : (100 * p).toFixed(1) + "%");

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return Math.round(seconds) + " s";
  return Math.floor(seconds / 60) + " min " + Math.round(seconds % 60) + " s";
}

function announce(text) { live.textContent = text; }

// The text colour, black or white, that contrasts more with `rgb` laid at `alpha` on white paper
// (WCAG's relative luminance): at least 4.6:1 on any background, so a count stays readable on any shade.
function inkOn(rgb, alpha) {
  const channel = (v) => { const s = v / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; };
  const [r, g, b] = rgb.map((v) => channel(alpha * v + (1 - alpha) * 255));
  const back = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return (back + 0.05) / 0.05 >= 1.05 / (back + 0.05) ? "#000" : "#fff";
}

function showError(where, error) {
  where.replaceChildren(el("p", { class: "error", role: "alert" }, String(error.message || error)));
}

function setPage(title, ...children) {
  main.replaceChildren(el("h1", {}, title), ...children.filter((c) => c !== null && c !== undefined));
  document.title = title + " · ml-math-nn";
}

// -- charts ----------------------------------------------------------------------------
// A line chart in SVG: series [{name, points: [[x, y]...], color, dash}], optional markX.
function lineChart({ title, series, yLabel, markX = null, log = false, id = null }) {
  const W = 480, H = 260, L = 64, R = 12, T = 12, B = 40;
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p[1]) && (!log || p[1] > 0));
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title });
  if (id) root.id = id;
  root.dataset.points = String(all.length);
  const figure = el("figure", { class: "chart-box" }, el("figcaption", {}, title), root);
  if (!all.length) {
    const t = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "muted" });
    t.textContent = "no epochs yet";
    root.append(t);
    return figure;
  }
  const f = log ? Math.log10 : (v) => v;
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => f(p[1]))), Math.max(...all.map((p) => f(p[1])))];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { const d = Math.abs(y0) * 0.5 || 0.5; y0 -= d; y1 += d; }
  const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const Y = (y) => T + (1 - (f(y) - y0) / (y1 - y0)) * (H - T - B);
  for (let i = 0; i <= 4; i++) {  // y grid and ticks
    const v = y0 + ((y1 - y0) * i) / 4, y = T + (1 - i / 4) * (H - T - B);
    root.append(svg("line", { x1: L, x2: W - R, y1: y, y2: y, class: "grid" }));
    const t = svg("text", { x: L - 6, y: y + 4, "text-anchor": "end", class: "tick" });
    t.textContent = tick(log ? 10 ** v : v);
    root.append(t);
  }
  const step = Math.max(1, Math.ceil((x1 - x0) / 6));
  for (let x = Math.ceil(x0); x <= x1; x += step) {
    const t = svg("text", { x: X(x), y: H - B + 16, "text-anchor": "middle", class: "tick" });
    t.textContent = String(x);
    root.append(t);
  }
  const xl = svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", class: "axis-label" });
  xl.textContent = "epoch";
  const yl = svg("text", { x: 12, y: (T + H - B) / 2, transform: `rotate(-90 12 ${(T + H - B) / 2})`, "text-anchor": "middle", class: "axis-label" });
  yl.textContent = yLabel;
  root.append(xl, yl);
  if (markX !== null) {
    root.append(svg("line", { x1: X(markX), x2: X(markX), y1: T, y2: H - B, class: "best" }));
    const right = X(markX) > W - R - 50;  // near the right edge the label goes on the left
    const t = svg("text", { x: X(markX) + (right ? -4 : 4), y: T + 12, "text-anchor": right ? "end" : "start", class: "tick best-label" });
    t.textContent = "best " + markX;
    root.append(t);
  }
  const legend = el("ul", { class: "legend" });
  series.forEach((s) => {
    const pts = s.points.filter((p) => Number.isFinite(p[1]) && (!log || p[1] > 0));
    if (!pts.length) return;
    root.append(svg("polyline", {
      points: pts.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" "),
      fill: "none", stroke: s.color, "stroke-width": 2, "stroke-dasharray": s.dash || "",
    }));
    if (pts.length === 1) root.append(svg("circle", { cx: X(pts[0][0]), cy: Y(pts[0][1]), r: 3, fill: s.color }));
    const swatch = el("span", { class: "swatch" });
    swatch.style.borderColor = s.color;
    swatch.style.borderStyle = s.dash ? "dashed" : "solid";
    legend.append(el("li", {}, swatch, s.name));
  });
  figure.append(legend);
  return figure;
}

function curves(history, metric) {
  const sets = ["train", "val", "test"].filter((s) => history.some((r) => `${s}_${metric}` in r));
  return sets.map((s, i) => ({
    name: s, color: COLORS[i], dash: SET_DASH[s],
    points: history.map((r) => [r.epoch, r[`${s}_${metric}`]]),
  }));
}

// -- images ----------------------------------------------------------------------------
// Paint values on a small canvas (one canvas pixel per image pixel; CSS scales it up).
function imageCanvas(values, shape, { diverging = false, label = "image", size = 112 } = {}) {
  const [h, w] = shape;
  const canvas = el("canvas", { width: w, height: h, class: "pixels", role: "img", "aria-label": label });
  canvas.style.width = size + "px";
  canvas.style.height = Math.round((size * h) / w) + "px";
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  const finite = values.filter(Number.isFinite);
  const lo = Math.min(0, ...finite), hi = Math.max(...finite, 1e-12);
  const bound = Math.max(Math.abs(lo), Math.abs(hi), 1e-12);
  values.forEach((v, i) => {
    let r, g, b;
    if (diverging) {  // blue negative, white zero, red positive
      const t = Math.max(-1, Math.min(1, v / bound));
      r = t < 0 ? 255 * (1 + t) : 255; g = 255 * (1 - Math.abs(t)); b = t > 0 ? 255 * (1 - t) : 255;
    } else {  // ink dark on white paper
      const t = (v - lo) / (hi - lo || 1);
      r = g = b = 255 * (1 - t);
    }
    image.data.set([r, g, b, 255], 4 * i);
  });
  ctx.putImageData(image, 0, 0);
  return canvas;
}

// -- runs page -------------------------------------------------------------------------
const RUN_COLUMNS = [
  ["id", "Run"], ["dataset", "Dataset"], ["architecture", "Architecture"], ["optimizer", "Optimiser"],
  ["epochs_run", "Epochs"], ["best_test_acc", "Best test acc"], ["final_test_acc", "Final test acc"],
  ["status", "Status"], ["date", "Date"],
];
const runsView = { sort: "date", descending: true, filter: "", selected: new Set() };

async function showRuns() {
  setPage("Runs", el("p", { class: "muted" }, "Loading runs…"));
  let data;
  try { data = await api("/api/runs"); } catch (e) { showError(main, e); return; }
  const filter = el("input", { type: "search", id: "run-filter", placeholder: "dataset, optimiser, status…", value: runsView.filter, "aria-label": "Filter runs" });
  const compare = el("button", { type: "button", id: "compare-selected", onclick: () => { location.hash = "#/compare?" + [...runsView.selected].map((i) => "id=" + encodeURIComponent(i)).join("&"); } }, "Compare selected");
  const tableBox = el("div", { class: "table-scroll" });
  const count = el("span", { class: "muted" });
  const render = () => {
    const needle = runsView.filter.toLowerCase();
    const rows = data.runs.filter((r) => !needle || RUN_COLUMNS.some(([k]) => String(r[k] ?? "").toLowerCase().includes(needle)));
    const key = runsView.sort, sign = runsView.descending ? -1 : 1;
    rows.sort((a, b) => {
      const x = a[key], y = b[key];
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * sign;
    });
    compare.disabled = runsView.selected.size < 2;
    count.textContent = `${rows.length} of ${data.runs.length} runs · ${runsView.selected.size} selected`;
    const head = el("tr", {}, el("th", { scope: "col" }, el("span", { class: "visually-hidden" }, "Select")),
      RUN_COLUMNS.map(([k, label]) => el("th", { scope: "col", "aria-sort": k === key ? (runsView.descending ? "descending" : "ascending") : "none" },
        el("button", { type: "button", class: "sort", onclick: () => { runsView.descending = runsView.sort === k ? !runsView.descending : false; runsView.sort = k; render(); } },
          label, k === key ? (runsView.descending ? " ▼" : " ▲") : ""))));
    // data-label names each cell's column where narrow screens show a row as a card (style.css).
    const label = Object.fromEntries(RUN_COLUMNS);
    const body = rows.map((r) => el("tr", { "data-run": r.id },
      el("td", { "data-label": "Select" }, el("input", { type: "checkbox", "aria-label": "select " + r.id, checked: runsView.selected.has(r.id),
        onchange: (e) => { e.target.checked ? runsView.selected.add(r.id) : runsView.selected.delete(r.id); render(); } })),
      el("td", { "data-label": label.id }, el("a", { href: "#/run/" + encodeURIComponent(r.id) }, r.id)),
      el("td", { "data-label": label.dataset }, r.dataset), el("td", { "data-label": label.architecture }, r.architecture),
      el("td", { "data-label": label.optimizer }, r.optimizer + (r.lr ? ` (${r.lr})` : "")),
      el("td", { class: "num", "data-label": label.epochs_run }, `${r.epochs_run}/${r.epochs}`),
      el("td", { class: "num", "data-label": label.best_test_acc }, pct(r.best_test_acc)),
      el("td", { class: "num", "data-label": label.final_test_acc }, pct(r.final_test_acc)),
      el("td", { "data-label": label.status }, el("span", { class: "badge " + r.status }, r.status)),
      el("td", { "data-label": label.date }, r.date ? r.date.replace("T", " ").replace("+00:00", " UTC") : "—")));
    tableBox.replaceChildren(el("table", { id: "runs-table" }, el("thead", {}, head), el("tbody", {}, body)));
  };
  filter.addEventListener("input", () => { runsView.filter = filter.value; render(); });
  render();
  const intro = data.runs.length ? null : el("p", {}, `No runs under ${data.root}/ yet: train one with `, el("code", {}, `ml-math-nn train --out ${data.root}/first`), ".");
  setPage("Runs", intro, el("div", { class: "toolbar" }, filter, compare, count), tableBox);
  // While a run trains, refresh the table's data every few seconds (the filter and focus stay).
  const refresh = async () => {
    try { data = await api("/api/runs"); render(); } catch (e) { /* the next refresh tries again */ }
    if (data.runs.some((r) => r.status === "running")) timers.push(setTimeout(refresh, 3000));
  };
  if (data.runs.some((r) => r.status === "running")) timers.push(setTimeout(refresh, 3000));
}

// -- one run ---------------------------------------------------------------------------
async function showRun(id) {
  setPage("Run " + id, el("p", { class: "muted" }, "Loading…"));
  let state;
  try { state = await api("/api/run?id=" + encodeURIComponent(id)); } catch (e) { showError(main, e); return; }
  const history = state.history;
  const facts = el("dl", { class: "facts", id: "run-facts" });
  const charts = el("div", { class: "charts" });
  const finals = el("section", { id: "final" });
  const evaluation = el("section", { id: "evaluation" });
  const explore = el("p", {}, el("a", { href: "#/explore/" + encodeURIComponent(id), id: "explore-link" }, "Look inside this network →"));
  const draw = () => {
    const c = state.config;
    const pairs = [["Status", el("span", { class: "badge " + state.status, id: "run-status" }, state.status)],
      ["Epoch", el("span", { id: "run-epoch" }, `${history.length} of ${state.epochs}`)],
      ["ETA", duration(state.eta_s)], ["Dataset", state.dataset], ["Architecture", state.architecture],
      ["Optimiser", `${c.optimizer} lr ${c.lr}, schedule ${c.schedule ?? "constant"}`],
      ["Best epoch", state.best_epoch ? `${state.best_epoch} (by ${state.best_metric})` : "—"]];
    facts.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    const lr = history.some((r) => "lr" in r) ? [{ name: "learning rate", color: COLORS[3], points: history.map((r) => [r.epoch, r.lr]) }] : [];
    charts.replaceChildren(
      lineChart({ title: "Loss", series: curves(history, "loss"), yLabel: "cross-entropy", markX: state.best_epoch, log: true, id: "chart-loss" }),
      lineChart({ title: "Accuracy", series: curves(history, "acc"), yLabel: "accuracy", markX: state.best_epoch, id: "chart-acc" }),
      lineChart({ title: "Learning rate", series: lr, yLabel: "η", id: "chart-lr" }));
    const final = state.summary && state.summary.final;
    finals.replaceChildren(...(final && Object.keys(final).length ? [el("h2", {}, "Final metrics"),
      el("div", { class: "table-scroll" }, el("table", {}, el("tbody", {}, Object.entries(final).map(([k, v]) => el("tr", {}, el("th", { scope: "row" }, k), el("td", { class: "num" }, fmt(v)))))))] : []));
  };
  draw();
  setPage("Run " + id, facts, charts, finals, state.has_model ? explore : null, evaluation);
  if (state.has_model) showEvaluation(id, evaluation);
  const poll = async () => {
    try {
      const update = await api(`/api/metrics?id=${encodeURIComponent(id)}&since=${history.length}`);
      history.push(...update.history);
      const finished = state.status === "running" && update.status !== "running";
      Object.assign(state, { status: update.status, eta_s: update.eta_s, best_epoch: update.best_epoch, summary: update.summary, has_model: update.has_model });
      draw();
      if (update.history.length) announce(`epoch ${history.length} of ${state.epochs}`);
      if (finished && update.has_model) { main.insertBefore(explore, evaluation); showEvaluation(id, evaluation); }
    } catch (e) { /* the next poll tries again */ }
    if (state.status === "running") timers.push(setTimeout(poll, 1000));
  };
  if (state.status === "running") timers.push(setTimeout(poll, 1000));
}

async function showEvaluation(id, box) {
  box.replaceChildren(el("p", { class: "muted" }, "Evaluating the model on the test split…"));
  let ev;
  try { ev = await api("/api/evaluation?id=" + encodeURIComponent(id)); } catch (e) { showError(box, e); return; }
  const names = ev.class_names;
  const cellImages = el("div", { id: "cell-images", "aria-live": "polite" });
  const max = Math.max(...ev.confusion.flat());
  const matrix = el("table", { class: "confusion", id: "confusion" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, el("abbr", { title: "rows: true class; columns: predicted class" }, "true\\pred")), names.map((n) => el("th", { scope: "col" }, n)))),
    el("tbody", {}, ev.confusion.map((row, i) => el("tr", {}, el("th", { scope: "row" }, names[i]), row.map((count, j) => {
      const button = el("button", { type: "button", class: i === j ? "diag" : count ? "off" : "zero", "data-cell": `${i},${j}`,
        "aria-label": `${count} test images of class ${names[i]} predicted as ${names[j]}`,
        onclick: () => showCell(id, ev, i, j, cellImages) }, String(count));
      const shade = count / (max || 1);
      button.style.setProperty("--shade", String(shade));
      if (count) button.style.color = inkOn(i === j ? [11, 99, 197] : [198, 40, 40], (i === j ? 0.08 : 0.25) + (i === j ? 0.8 : 0.75) * shade);
      return el("td", {}, button);
    })))));
  const perClass = el("table", { id: "per-class" },
    el("thead", {}, el("tr", {}, ["class", "precision", "recall", "F1", "support"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ev.per_class.map((r) => el("tr", {}, el("th", { scope: "row" }, r.class), el("td", { class: "num" }, fmt(r.precision, 3)),
      el("td", { class: "num" }, fmt(r.recall, 3)), el("td", { class: "num" }, fmt(r.f1, 3)), el("td", { class: "num" }, r.support)))));
  const wrong = el("div", { class: "gallery", id: "misclassified" });
  box.replaceChildren(
    el("h2", {}, `Test set: accuracy ${pct(ev.accuracy)} on ${ev.n_test} images`),
    el("div", { class: "two wide" },
      el("section", {}, el("h3", {}, "Confusion matrix"), el("p", { class: "muted" }, "Select a cell to see its test images."), el("div", { class: "table-scroll" }, matrix), cellImages),
      el("section", {}, el("h3", {}, "Per-class metrics"), el("div", { class: "table-scroll" }, perClass))),
    el("h3", {}, `Misclassified (${ev.misclassified.length}), the most confident first`), wrong);
  // The most confident mistakes first.
  gallery(id, ev, [...ev.misclassified].sort((a, b) => ev.confidence[b] - ev.confidence[a]), wrong);
}

async function gallery(id, ev, indices, box, limit = 24) {
  if (!indices.length) { box.replaceChildren(el("p", { class: "muted" }, "None.")); return; }
  const shown = indices.slice(0, limit);
  const query = shown.map((i) => "index=" + i).join("&");
  try {
    const data = await api(`/api/examples?id=${encodeURIComponent(id)}&${query}`);
    const names = ev.class_names;
    box.replaceChildren(...data.examples.map((ex) => {
      const pred = ev.predicted[ex.index];
      const caption = `#${ex.index}: ${names[ex.label]}` + (pred !== ex.label ? ` → ${names[pred]}` : "");
      const picture = data.shape ? imageCanvas(ex.pixels, data.shape, { label: caption, size: 56 }) : el("span", {}, "row");
      return el("a", { class: "thumb", href: `#/explore/${encodeURIComponent(id)}?index=${ex.index}` }, picture, el("span", {}, caption));
    }), indices.length > limit ? el("p", { class: "muted" }, `and ${indices.length - limit} more`) : "");
  } catch (e) { showError(box, e); }
}

function showCell(id, ev, i, j, box) {
  const indices = ev.labels.map((t, k) => (t === i && ev.predicted[k] === j ? k : -1)).filter((k) => k >= 0);
  const names = ev.class_names;
  const list = el("div", { class: "gallery" });
  box.replaceChildren(el("h4", {}, `True ${names[i]}, predicted ${names[j]}: ${indices.length} images`), list);
  gallery(id, ev, indices, list);
}

// -- comparing runs ----------------------------------------------------------------------
async function showCompare(ids) {
  if (ids.length < 1) {
    setPage("Compare runs", el("p", {}, "Select two or more runs in the ", el("a", { href: "#/runs" }, "runs table"), " and press “Compare selected”."));
    return;
  }
  let data;
  try { data = await api("/api/compare?" + ids.map((i) => "id=" + encodeURIComponent(i)).join("&")); } catch (e) { showError(main, e); return; }
  const series = (key) => data.runs.map((r, i) => ({ name: r.id, color: COLORS[i % COLORS.length], points: r.history.map((h) => [h.epoch, h[key]]) }));
  const options = el("table", { id: "compare-options" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "option"), data.runs.map((r, i) => {
      const th = el("th", { scope: "col" }, r.id);
      th.style.color = COLORS[i % COLORS.length];
      return th;
    }))),
    el("tbody", {}, data.options.map((o) => el("tr", { class: o.differs ? "differs" : "" }, el("th", { scope: "row" }, o.option), o.values.map((v) => el("td", {}, fmt(v)))))));
  setPage("Compare runs",
    el("div", { class: "charts" },
      lineChart({ title: "Test accuracy", series: series("test_acc"), yLabel: "accuracy", id: "compare-acc" }),
      lineChart({ title: "Test loss", series: series("test_loss"), yLabel: "cross-entropy", log: true, id: "compare-test-loss" }),
      lineChart({ title: "Training loss", series: series("train_loss"), yLabel: "cross-entropy", log: true, id: "compare-train-loss" })),
    el("h2", {}, "Options (those that differ first)"), el("div", { class: "table-scroll" }, options));
}

// -- inside the network ----------------------------------------------------------------
const EQUATIONS = {
  loss: ["§3 Softmax and cross-entropy", "A = softmax(Z),  L = −(1/m) Σᵢ log A_{i,yᵢ},  ∂L/∂Z = (A − Y)/m"],
  Dense: ["§4 Dense layer", "Z = XW + b;  ∂L/∂W = XᵀG,  ∂L/∂b = 1ᵀG,  ∂L/∂X = GWᵀ"],
  ReLU: ["§5 Activations", "A = max(Z, 0);  ∂L/∂Z = G ⊙ [Z > 0]"],
  LeakyReLU: ["§5 Activations", "A = max(Z, αZ);  ∂L/∂Z = G ⊙ (1 if Z > 0 else α)"],
  ELU: ["§5 Activations", "A = Z or α(eᶻ − 1);  ∂L/∂Z = G ⊙ (1 if Z > 0 else A + α)"],
  GELU: ["§5 Activations", "A = Z Φ(Z);  ∂L/∂Z = G ⊙ (Φ(Z) + Z φ(Z))"],
  Tanh: ["§5 Activations", "A = tanh Z;  ∂L/∂Z = G ⊙ (1 − A²)"],
  Sigmoid: ["§5 Activations", "A = σ(Z);  ∂L/∂Z = G ⊙ A(1 − A)"],
  Dropout: ["§6 Inverted dropout", "at inference A = Z;  ∂L/∂Z = G"],
  BatchNorm: ["§7 Batch normalisation", "at inference Â = (Z − μ̄)/√(σ̄² + ε),  A = γÂ + β;  ∂L/∂Z = G ⊙ γ/√(σ̄² + ε)"],
  step: ["§9 Optimisers", "θ ← θ − η ∂L/∂θ  (plain SGD; the L2 penalty λW is inside ∂L/∂W, §8)"],
};
const explorer = { id: null, model: null, target: null, pending: false, dirty: false, source: null };

async function showExplore(id, params) {
  let runs;
  try { runs = await api("/api/runs"); } catch (e) { showError(main, e); return; }
  const withModel = runs.runs.filter((r) => r.has_model);
  id = id || runs.default_model || (withModel[0] && withModel[0].id);
  if (!id) { setPage("Inside the network", el("p", {}, "No trained model under the runs folder yet.")); return; }
  let model;
  try { model = await api("/api/model?id=" + encodeURIComponent(id)); } catch (e) { setPage("Inside the network"); showError(main, e); return; }
  Object.assign(explorer, { id, model, target: null, source: null });
  const picker = el("select", { id: "model-picker", "aria-label": "Model", onchange: (e) => { location.hash = "#/explore/" + encodeURIComponent(e.target.value); } },
    withModel.map((r) => el("option", { value: r.id, selected: r.id === id }, `${r.id} (${r.dataset}, ${r.architecture})`)));
  const shape = model.image_shape;
  const canvas = el("canvas", { id: "draw", width: 112, height: 112, "aria-label": "Drawing area: draw a digit with the mouse or a finger" });
  const ctx = canvas.getContext("2d");
  let drawing = false, last = null;
  const point = (e) => { const r = canvas.getBoundingClientRect(); return [((e.clientX - r.left) / r.width) * canvas.width, ((e.clientY - r.top) / r.height) * canvas.height]; };
  canvas.addEventListener("pointerdown", (e) => { drawing = true; last = point(e); canvas.setPointerCapture(e.pointerId); stroke(e); e.preventDefault(); });
  canvas.addEventListener("pointermove", (e) => { if (drawing) stroke(e); });
  const end = () => { drawing = false; last = null; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  function stroke(e) {
    const p = point(e);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 9; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(...last); ctx.lineTo(...p); ctx.stroke();
    last = p;
    explorer.source = { drawing: canvasInk(canvas) };
    request();
  }
  const clear = el("button", { type: "button", id: "clear", onclick: () => { ctx.clearRect(0, 0, canvas.width, canvas.height); explorer.source = null; results.replaceChildren(); } }, "Clear");
  const index = el("input", { type: "number", id: "example-index", min: 0, max: Math.max(0, model.n_test - 1), value: params.get("index") || 0, "aria-label": "Test image number" });
  const show = el("button", { type: "button", id: "show-example", disabled: !model.n_test, onclick: () => pick(Number(index.value)) }, "Show test image");
  const random = el("button", { type: "button", id: "random-example", disabled: !model.n_test, onclick: () => { index.value = Math.floor(Math.random() * model.n_test); pick(Number(index.value)); } }, "Random");
  index.addEventListener("keydown", (e) => { if (e.key === "Enter") pick(Number(index.value)); });
  // A test image replaces the drawing: the canvas is cleared so that it never shows what the network is not given.
  function pick(k) { ctx.clearRect(0, 0, canvas.width, canvas.height); explorer.source = { index: k }; explorer.target = null; request(); }
  const how = model.dataset === "digits"
    ? "Your strokes are cropped to their bounding box, scaled to fill a 32×32 box and centred; a pixel is “on” when ink covers half of it, and each 4×4 block's on pixels are counted: an 8×8 image of values 0–16, the way scikit-learn's digits were made from 32×32 bitmaps. The model's own scaling then applies."
    : shape ? `Your strokes are cropped to their bounding box, scaled (aspect kept) to fit ${Math.round(shape[0] * 20 / 28)} pixels and placed so that their centre of mass is the image's centre (${shape[0]}×${shape[1]}, grey levels 0–255), as MNIST was made. The model's own scaling then applies.`
      : "This model's inputs are not images: pick a test row instead.";
  const results = el("div", { id: "explain" });
  const stepBox = el("section", { id: "step" });
  setPage("Inside the network",
    el("div", { class: "toolbar" }, el("label", { for: "model-picker" }, "Model "), picker),
    el("div", { class: "two" },
      el("section", { class: "input-panel" },
        el("h2", {}, "Input"),
        shape ? el("div", {}, canvas, el("div", { class: "toolbar" }, clear)) : null,
        el("p", { class: "muted small" }, how),
        el("div", { class: "toolbar" }, el("label", { for: "example-index" }, `Test image (0–${model.n_test - 1}) `), index, show, random)),
      results),
    stepBox);
  if (params.has("index")) pick(Number(params.get("index")));
}

function canvasInk(canvas) {
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  const ink = new Uint8Array(canvas.width * canvas.height);
  for (let i = 0; i < ink.length; i++) ink[i] = data[4 * i + 3];  // alpha: 0 paper, 255 ink
  let text = "";
  for (let i = 0; i < ink.length; i += 4096) text += String.fromCharCode(...ink.subarray(i, i + 4096));
  return { width: canvas.width, height: canvas.height, data: btoa(text) };
}

// One request at a time; strokes drawn meanwhile are sent when it returns.
async function request() {
  if (explorer.pending) { explorer.dirty = true; return; }
  explorer.pending = true;
  explorer.dirty = false;
  const body = { run: explorer.id, ...explorer.source, target: explorer.target };
  try {
    const result = await api("/api/explain", body);
    renderExplain(result);
  } catch (e) { showError(document.getElementById("explain"), e); }
  explorer.pending = false;
  if (explorer.dirty) request();
}

function renderExplain(r) {
  const box = document.getElementById("explain");
  if (!box) return;
  const names = explorer.model.class_names;
  const shape = r.image_shape;
  const probs = el("ol", { id: "probs", class: "probs", start: 0 }, r.probabilities.map((p, k) => {
    const bar = el("span", { class: "bar" });
    bar.style.width = (100 * p).toFixed(1) + "%";
    return el("li", { "data-p": String(p), class: k === r.predicted ? "top" : "" },
      el("button", { type: "button", "aria-pressed": k === r.target ? "true" : "false", title: "show the gradient of this class's score",
        onclick: () => { explorer.target = k; request(); } },
        el("span", { class: "cls" }, names[k]), el("span", { class: "track" }, bar), el("span", { class: "p" }, (100 * p).toFixed(1) + "%")));
  }));
  const layers = el("div", { class: "layers" }, r.layers.map((layer) => {
    const values = layer.values, w = values.length;
    const cols = Math.min(w, 32);
    const rows = Math.ceil(w / cols);
    const padded = values.concat(new Array(rows * cols - w).fill(0));
    return el("figure", { class: "layer" }, el("figcaption", {}, `${layer.index}: ${layer.type} (${w})`),
      imageCanvas(padded, [rows, cols], { diverging: true, label: `activations of layer ${layer.index}`, size: Math.min(384, cols * 12) }));
  }));
  box.replaceChildren(
    el("h2", {}, "What the network computes"),
    el("p", { id: "predicted", class: "predicted" }, `Predicted: ${names[r.predicted]} (${(100 * r.probabilities[r.predicted]).toFixed(1)}%)`,
      r.label !== null && r.label !== undefined ? ` · true class ${names[r.label]}` : ""),
    el("div", { class: "images" },
      shape ? el("figure", {}, el("figcaption", {}, `As the network sees it (${shape[0]}×${shape[1]})`), imageCanvas(r.input, shape, { label: "input image", size: 140 })) : null,
      shape ? el("figure", {}, el("figcaption", {}, `∂z_${names[r.target]}/∂x (red: more ink raises it)`), imageCanvas(r.input_gradient, shape, { diverging: true, label: "input gradient", size: 140 })) : null),
    el("h3", {}, "Class probabilities"), el("p", { class: "muted small" }, "Select a class to see the gradient of its score instead."), probs,
    el("h3", {}, "Activations, layer by layer"), el("p", { class: "muted small" }, "Red positive, blue negative, white zero; each layer scaled to its own largest value."), layers);
  announce(`Predicted ${names[r.predicted]}`);
  renderStepControls(r);
}

function renderStepControls(r) {
  const box = document.getElementById("step");
  const names = explorer.model.class_names;
  const label = el("select", { id: "step-label", "aria-label": "Label for the step" },
    names.map((n, k) => el("option", { value: k, selected: k === (r.label ?? r.predicted) }, n)));
  const lr = el("input", { type: "number", id: "step-lr", value: "0.1", step: "0.01", min: "0.0001", "aria-label": "Learning rate η" });
  const out = el("div", { id: "step-result" });
  const go = el("button", { type: "button", id: "step-go", onclick: async () => {
    try {
      const s = await api("/api/step", { run: explorer.id, ...explorer.source, label: Number(label.value), lr: Number(lr.value) });
      renderStep(s, out);
    } catch (e) { showError(out, e); }
  } }, "Take one SGD step");
  box.replaceChildren(el("h2", {}, "One step of learning"),
    el("p", { class: "muted small" }, "One backward pass from this input and label, layer by layer, and what one plain SGD step would change, on a copy of the model (it is never modified). Inference mode: no dropout, batch normalisation with its running statistics."),
    el("div", { class: "toolbar" }, el("label", { for: "step-label" }, "Label "), label, el("label", { for: "step-lr" }, " η "), lr, go), out);
}

function renderStep(s, out) {
  const names = explorer.model.class_names;
  const rows = s.layers.map((layer) => {
    const eq = EQUATIONS[layer.type] || ["", "∂L/∂X from the layer's backward"];
    const params = Object.entries(layer.params).map(([k, p]) => `${k}: ‖∂L/∂${k}‖ ${fmt(p.grad_norm, 3)}, ‖Δ${k}‖ ${fmt(p.update_norm, 3)}`).join("; ");
    return el("tr", {}, el("th", { scope: "row" }, `${layer.index}: ${layer.type}`),
      el("td", { class: "num", "data-label": "‖G‖ = ‖∂L/∂out‖" }, fmt(layer.grad_output_norm, 3)),
      el("td", { class: "num", "data-label": "‖∂L/∂in‖" }, fmt(layer.grad_input_norm, 3)),
      el("td", { "data-label": "parameter gradients and SGD updates" }, params || "—"),
      el("td", { class: "eq", "data-label": "equations" }, el("code", {}, eq[1]), el("br"), el("span", { class: "muted small" }, "docs/math.md " + eq[0])));
  });
  out.replaceChildren(
    el("p", { id: "step-loss", class: "predicted" }, `Loss ${fmt(s.loss_before, 5)} → ${fmt(s.loss_after, 5)};  p(${names[s.label]}) ${pct(s.probabilities_before[s.label])} → ${pct(s.probabilities_after[s.label])}`),
    el("p", {}, el("code", {}, EQUATIONS.loss[1]), el("span", { class: "muted small" }, "  docs/math.md " + EQUATIONS.loss[0])),
    el("p", { class: "small" }, "∂L/∂Z at the output (A − Y): ", s.loss_gradient.map((g, k) => `${names[k]} ${g >= 0 ? "+" : ""}${g.toFixed(3)}`).join("  ")),
    el("div", { class: "table-scroll" }, el("table", { id: "step-table" },
      el("thead", {}, el("tr", {}, ["layer (backward order)", "‖G‖ = ‖∂L/∂out‖", "‖∂L/∂in‖", "parameter gradients and SGD updates", "equations"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows))),
    el("p", {}, el("code", {}, EQUATIONS.step[1]), el("span", { class: "muted small" }, "  docs/math.md " + EQUATIONS.step[0])));
}

// -- routing ---------------------------------------------------------------------------
function route() {
  timers.forEach(clearTimeout);
  timers = [];
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  const page = parts[0] || "runs";
  document.querySelectorAll("nav a").forEach((a) => a.setAttribute("aria-current", a.dataset.page === page ? "page" : "false"));
  const id = parts.length > 1 ? decodeURIComponent(parts.slice(1).join("/")) : null;
  if (page === "run" && id) return showRun(id);
  if (page === "compare") return showCompare(params.getAll("id"));
  if (page === "explore") return showExplore(id, params);
  return showRuns();
}

window.addEventListener("hashchange", () => { route(); main.focus({ preventScroll: true }); });
route();
