"""Mutation testing of the core: change the code in one small way, run the tests that should notice.

``make mutants`` (or ``python tools/mutants.py``) copies the committed tree (``git archive HEAD``;
``--worktree`` copies the working tree instead) into a temporary folder, checks that each
selection of tests passes there unchanged, then applies each mutation of :data:`MUTATIONS` in
turn (one exact snippet of a module replaced by another: a flipped sign, a dropped term, a
constant off by one, a check removed, a feature switched off), runs its tests with
``pytest -x`` against the copy (``PYTHONPATH`` points at the copy's ``src``) and puts the
snippet back.  A mutation is *killed* when its tests fail, *survives* when they pass.  The
repository itself is never modified.  Every survivor must be killed by a new test or explained
as equivalent in docs/mutation-testing.md.

A snippet that no longer occurs exactly once (the code changed) is reported as *stale* and
counts as an error: the list is kept in step with the code.  Runs outside CI (too slow).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    path: str  # under src/ml_math_nn/
    old: str  # a snippet that occurs exactly once in the file
    new: str
    tests: str  # pytest arguments: the tests that should notice
    what: str  # the behaviour changed, in words

    @property
    def name(self) -> str:
        return f"{self.path}: {self.what}"


L, LS, N, OPT, S, T = (
    "tests/test_layers.py tests/test_nd_layers.py tests/test_activations.py",
    "tests/test_losses.py",
    "tests/test_network.py tests/test_regularization.py",
    "tests/test_optim.py",
    "tests/test_schedules.py",
    "tests/test_switched_off.py tests/test_train.py",  # the fast targeted file first: -x stops at once
)
RUN = "tests/test_switched_off.py tests/test_run.py"
M = Mutation
MUTATIONS: list[Mutation] = [
    # layers
    M("layers.py", 'return grad @ self.params["W"].T', 'return grad @ self.params["W"]', L, "Dense dx uses W not W^T"),
    M(
        "layers.py",
        'z += self.params["b"]\n        return z\n\n    def backward(self, grad: Array) -> Array:\n'
        "        self.param_grads",
        "pass\n        return z\n\n    def backward(self, grad: Array) -> Array:\n        self.param_grads",
        L,
        "Dense forward drops the bias",
    ),
    M(
        "layers.py",
        'np.sum(grad * x_hat, axis=axes, out=self.grads["gamma"])',
        'np.sum(grad, axis=axes, out=self.grads["gamma"])',
        L,
        "BatchNorm dgamma without x_hat",
    ),
    M("layers.py", "(rho * k / (k - 1)) * var", "rho * var", L, "BatchNorm running variance biased"),
    M(
        "layers.py",
        'self.buffers["running_mean"] += rho * mean',
        'self.buffers["running_mean"] += mean',
        L,
        "BatchNorm running mean without momentum",
    ),
    M(
        "layers.py",
        "if not training or self.rate == 0.0:",
        "if self.rate == 0.0:",
        f"{L} {N}",
        "Dropout also drops in inference",
    ),
    M("layers.py", "x.dtype.type(1.0 / (1.0 - self.rate))", "x.dtype.type(1.0)", L, "Dropout not inverted"),
    # losses
    M(
        "losses.py",
        "grad[np.arange(m), self._y] -= 1.0 / m",
        "grad[np.arange(m), self._y] -= 1.0",
        LS,
        "softmax cross-entropy gradient without 1/m on Y",
    ),
    M(
        "losses.py",
        "return float(self._w @ (np.log(sums[:, 0]) - label_logits))",
        "return float((np.log(sums[:, 0]) - label_logits).mean())",
        LS,
        "sample weights ignored in the loss",
    ),
    M(
        "losses.py",
        "grad *= self._w.astype(grad.dtype)[:, None]",
        "grad /= m",
        LS,
        "sample weights ignored in the gradient",
    ),
    M("losses.py", "return softplus(z) - y * z", "return softplus(z) + y * z", LS, "sigmoid cross-entropy sign"),
    M("losses.py", "return sigmoid(z) - y", "return sigmoid(z)", LS, "sigmoid cross-entropy gradient without -y"),
    M("losses.py", "grad *= 1.0 / (m * k)", "grad *= 1.0 / m", LS, "elementwise loss gradient without 1/K"),
    M(
        "losses.py",
        "return np.argmax(output, axis=1)",
        "return np.argmin(output, axis=1)",
        f"{LS} {N}",
        "softmax head decides the least likely class",
    ),
    # network
    M(
        "network.py",
        "layer.grads[key] += self.l2 * layer.params[key]",
        "layer.grads[key] += 2 * self.l2 * layer.params[key]",
        N,
        "L2 gradient doubled",
    ),
    M("network.py", "return 0.5 * self.l2 * sum(", "return self.l2 * sum(", N, "L2 penalty without 1/2"),
    # optimisers
    M("optim.py", "scale = max_norm / (norm + 1e-6)", "scale = max_norm / norm", OPT, "clip without torch's 1e-6"),
    M(
        "optim.py",
        "np.multiply(b, self.momentum, out=work)",
        "np.multiply(b, 0.0, out=work)",
        OPT,
        "Nesterov look-ahead dropped",
    ),
    M("optim.py", "            b += g\n", "            b[...] = g\n", OPT, "SGD momentum forgets the velocity"),
    M(
        "optim.py",
        "work *= self.lr * root_c2 / (1 - b1**self.t)",
        "work *= self.lr * root_c2",
        OPT,
        "Adam without bias correction of m",
    ),
    M(
        "optim.py",
        "work *= 1 - b2\n        v += work",
        "work *= 1 - b1\n        v += work",
        OPT,
        "Adam v averaged with beta1",
    ),
    M("optim.py", "work *= 1 - self.alpha", "work *= self.alpha", OPT, "RMSprop average weights swapped"),
    M("optim.py", "        s += work\n", "        s[...] = work\n", OPT, "AdaGrad forgets the sum"),
    M("optim.py", "np.sign(work, out=work)", "pass", OPT, "Lion steps by c, not its sign"),
    M(
        "optim.py",
        "np.multiply(param, self.weight_decay, out=decayed)",
        "np.multiply(param, 0.0, out=decayed)",
        OPT,
        "coupled weight decay switched off",
    ),
    M(
        "optim.py",
        "param *= 1 - self.lr * self.weight_decay\n        self._adam(",
        "self._adam(",
        OPT,
        "AdamW decoupled decay switched off",
    ),
    # schedules
    M(
        "schedules.py",
        "self.gamma ** (epoch // self.step_size)",
        "self.gamma ** (epoch // self.step_size + 1)",
        S,
        "step schedule one decay early",
    ),
    M(
        "schedules.py",
        "self.base_lr * self.gamma**epoch",
        "self.base_lr * self.gamma ** (epoch + 1)",
        S,
        "exponential schedule one epoch ahead",
    ),
    M(
        "schedules.py",
        "math.cos(math.pi * epoch / self.t_max)",
        "math.cos(math.pi * (epoch + 1) / self.t_max)",
        S,
        "cosine schedule one epoch ahead",
    ),
    M(
        "schedules.py",
        "self.epoch / self.warmup_epochs",
        "(self.epoch + 1) / self.warmup_epochs",
        S,
        "warm-up one epoch ahead",
    ),
    M(
        "schedules.py",
        "reduced = max(self.current * self.factor, self.min_lr)",
        "reduced = self.current * self.factor",
        S,
        "plateau ignores min_lr",
    ),
    M(
        "schedules.py",
        '"bad_epochs": self.bad_epochs}',
        '"bad_epochs": 0}',
        f"{S} tests/test_switched_off.py",
        "plateau state loses its count",
    ),
    # training loop
    M(
        "train.py",
        "output = network.forward(X[i : i + batch_size])",
        "output = network.forward(X[i : i + batch_size], training=True)",
        T,
        "evaluate in training mode",
    ),
    M("train.py", "if self.clip_norm is not None:", "if False:", T, "the trainer ignores clip_norm"),
    M("train.py", "if self.augment is not None:", "if False:", T, "the trainer ignores augment"),
    M(
        "train.py",
        "if batch_size > 1 and len(starts) > 1 and n - starts[-1] == 1:",
        "if False:",
        T,
        "a one-sample last batch is kept alone",
    ),
    M(
        "train.py",
        "lr = self.optimizer.lr  # the rate this epoch's updates use",
        "lr = 0.0",
        T,
        "the record's lr is wrong",
    ),
    # early stopping
    M(
        "train.py",
        "return value > self.best if self.higher_is_better else value < self.best",
        "return value < self.best",
        T,
        "early stopping treats a score as a loss",
    ),
    M(
        "train.py",
        "if self.wait >= self.patience:",
        "if self.wait > self.patience:",
        T,
        "early stopping waits one epoch too long",
    ),
    M("train.py", "value[...] = self.best_state[name]", "pass", T, "early stopping keeps the last weights"),
    M(
        "schedules.py",
        "return metric > self.best * (1 + self.threshold)",
        "return metric < self.best",
        S,
        "plateau max mode treated as min",
    ),
    M(
        "schedules.py",
        "if self.bad_epochs > self.patience:",
        "if self.bad_epochs >= self.patience:",
        S,
        "plateau reduces one epoch early",
    ),
    M("train.py", "if not math.isfinite(loss):", "if False:", T, "a diverging loss is not stopped"),
    M("train.py", "perm = self.rng.permutation(len(X))", "perm = np.arange(len(X))", T, "epochs are not shuffled"),
    # checkpoints and model files
    M(
        "runs/checkpoint.py",
        'rng.bit_generator.state = meta["rngs"][name]',
        "pass",
        RUN,
        "resume does not restore the random generators",
    ),
    M(
        "runs/checkpoint.py",
        'run.schedule.load_state_dict(meta["schedule"])',
        "pass",
        RUN,
        "resume does not restore the schedule",
    ),
    M(
        "runs/checkpoint.py",
        'int(stopping["best_epoch"]), int(stopping["wait"])',
        'int(stopping["best_epoch"]), 0',
        RUN,
        "resume resets early stopping's wait",
    ),
    M(
        "runs/checkpoint.py",
        's.best_state = {k.removeprefix("best/")',
        's.best_state = {} or {k.removeprefix("x/")',
        RUN,
        "resume loses the best epoch's weights",
    ),
    M(
        "runs/persistence.py",
        'out["scaler.mean"], out["scaler.scale"] = self.scaler.mean, self.scaler.scale',
        'out["scaler.mean"], out["scaler.scale"] = self.scaler.mean, self.scaler.mean',
        "tests/test_persistence.py",
        "the model file saves the mean as the scale",
    ),
    M(
        "runs/persistence.py",
        "np.load(path, allow_pickle=False)",
        "np.load(path, allow_pickle=True)",
        "tests/test_persistence.py tests/test_bad_input.py tests/test_properties.py",
        "model files may be unpickled",
    ),
    M(
        "runs/persistence.py",
        'h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())',
        "pass",
        "tests/test_persistence.py tests/test_bad_input.py tests/test_properties.py",
        "the checksum ignores names, dtypes and shapes",
    ),
    # data split and scaling
    M(
        "data/datasets.py",
        "test_size=test_size, stratify=y, random_state=seed",
        "test_size=test_size, stratify=None, random_state=seed",
        "tests/test_data.py",
        "splits not stratified",
    ),
    M(
        "data/datasets.py",
        "+ delta**2 * (count * n / total)",
        "",
        "tests/test_data.py tests/test_switched_off.py",
        "chunked scaling drops Chan's cross term",
    ),
    M(
        "runs/builders.py",
        "scaler = data.Standardizer.fit(X_train, dtype",
        "scaler = data.Standardizer.fit(np.concatenate([X_train, dataset.X_test]), dtype",
        f"{RUN} tests/test_data.py",
        "scaler fitted on training and test rows",
    ),
    M(
        "data/datasets.py",
        "std[std == 0] = 1.0",
        "pass",
        "tests/test_data.py tests/test_switched_off.py",
        "a constant feature divides by zero",
    ),
]


def snapshot(dest: Path, worktree: bool) -> None:
    """The committed tree (or the working tree's tracked and unignored files) copied into ``dest``."""
    if worktree:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        for name in filter(None, listed.decode().split("\0")):
            source = ROOT / name
            if source.is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest / name)
        return
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def run_tests(tree: Path, tests: str, timeout: float) -> tuple[str, float]:
    """``killed``/``survived`` (or ``timeout``) of ``pytest -x`` on ``tests`` in ``tree``, and its seconds."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("CI", None)
    argv = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *shlex.split(tests)]
    start = time.perf_counter()
    try:
        rc = subprocess.run(argv, cwd=tree, env=env, capture_output=True, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - start
    return ("survived" if rc == 0 else "killed"), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-k", action="append", default=[], help="only the mutations whose name contains this text (repeatable: any)"
    )
    parser.add_argument("--worktree", action="store_true", help="mutate a copy of the working tree, not of HEAD")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per test run (a timeout counts as killed)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.k or any(k in m.name for k in args.k)]
    if args.list:
        print("\n".join(m.name for m in chosen))
        return 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mutants-") as folder:
        tree = Path(folder)
        snapshot(tree, args.worktree)
        for tests in dict.fromkeys(m.tests for m in chosen):  # each selection passes unmutated
            outcome, seconds = run_tests(tree, tests, args.timeout)
            print(f"baseline {outcome:8} {seconds:6.1f} s  {tests}", flush=True)
            if outcome != "survived":
                print(f"the tests fail without any mutation: {tests}", file=sys.stderr)
                return 2
        results: dict[str, list[str]] = {"killed": [], "timeout": [], "survived": [], "stale": []}
        for mutation in chosen:
            path = tree / "src" / "ml_math_nn" / mutation.path
            text = path.read_text()
            if text.count(mutation.old) != 1:
                outcome, seconds = "stale", 0.0
            else:
                path.write_text(text.replace(mutation.old, mutation.new))
                try:
                    outcome, seconds = run_tests(tree, mutation.tests, args.timeout)
                finally:
                    path.write_text(text)
            results[outcome].append(mutation.name)
            print(f"{outcome:8} {seconds:6.1f} s  {mutation.name}", flush=True)
    caught = len(results["killed"]) + len(results["timeout"])
    tried = caught + len(results["survived"])
    print(
        f"\n{caught} of {tried} mutations killed ({len(results['timeout'])} by timeout), "
        f"{len(results['stale'])} stale, in {time.perf_counter() - start:.0f} s"
    )
    for name in results["survived"]:
        print(f"survived: {name}")
    for name in results["stale"]:
        print(f"stale (snippet not found exactly once): {name}")
    return 1 if results["survived"] or results["stale"] else 0


if __name__ == "__main__":
    sys.exit(main())
