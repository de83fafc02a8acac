"""Optimisers and gradient clipping: PyTorch on the same gradients, the equations, saved state,
and the flat-update contract (one pass for elementwise rules only)."""

from __future__ import annotations

import io
import json
import pickle
import tracemalloc
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from ml_math_nn.optim import (
    OPTIMIZERS,
    Optimizer,
    ParameterBuffer,
    Workspace,
    clip_grad_norm,
    make_optimizer,
    optimizer_from_config,
)

SHAPES = {"0.W": (5, 4), "0.b": (4,), "2.W": (4, 3)}
STEPS = 100


def start_params() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {name: rng.normal(size=shape) for name, shape in SHAPES.items()}


def grad_sequence(steps: int = STEPS) -> list[dict[str, np.ndarray]]:
    """Random gradients whose scale varies over four decades, so eps and the moments matter."""
    rng = np.random.default_rng(11)
    return [
        {name: rng.normal(scale=10.0 ** rng.uniform(-3, 1), size=shape) for name, shape in SHAPES.items()}
        for _ in range(steps)
    ]


def lr_at(step: int, lr: float) -> float:
    """Halve the rate halfway, as a schedule would between steps, to check lr is read each step."""
    return lr if step < STEPS // 2 else lr / 2


def triples(params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> Iterator[tuple[str, Any, Any]]:
    return ((name, params[name], grads[name]) for name in params)


def run(
    opt: Optimizer, params: dict[str, np.ndarray], grads: list[dict[str, np.ndarray]], lr: float, first: int = 0
) -> None:
    """Steps ``first, first + 1, ...`` with the gradients ``grads``."""
    for i, g in enumerate(grads, start=first):
        opt.lr = lr_at(i, lr)
        opt.step(triples(params, g))


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# (our name, our options, torch class, torch options); torch's defaults are spelled out
# where ours must equal them.
CASES: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    ("sgd", {}, "SGD", {}),
    ("sgd", {"momentum": 0.9}, "SGD", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "nesterov": True}, "SGD", {"momentum": 0.9, "nesterov": True}),
    ("sgd", {"momentum": 0.5, "weight_decay": 0.05}, "SGD", {"momentum": 0.5, "weight_decay": 0.05}),
    (
        "sgd",
        {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        "SGD",
        {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    ),
    ("adam", {}, "Adam", {}),
    (
        "adam",
        {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01},
        "Adam",
        {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01},
    ),
    ("adamw", {}, "AdamW", {}),
    ("adamw", {"weight_decay": 0.1, "betas": (0.5, 0.9)}, "AdamW", {"weight_decay": 0.1, "betas": (0.5, 0.9)}),
    ("rmsprop", {}, "RMSprop", {"centered": False}),
    (
        "rmsprop",
        {"momentum": 0.9, "weight_decay": 0.01, "alpha": 0.9},
        "RMSprop",
        {"momentum": 0.9, "weight_decay": 0.01, "alpha": 0.9},
    ),
    ("adagrad", {}, "Adagrad", {}),
    ("adagrad", {"weight_decay": 0.05, "eps": 1e-6}, "Adagrad", {"weight_decay": 0.05, "eps": 1e-6}),
]


def case_id(name: str, options: dict[str, Any]) -> str:
    return f"{name}-{'-'.join(f'{k}={v}' for k, v in options.items()) or 'defaults'}"


IDS = [case_id(name, options) for name, options, _, _ in CASES]
LR = {"sgd": 0.05, "adam": 0.01, "adamw": 0.01, "rmsprop": 0.01, "adagrad": 0.1, "lion": 0.001}
ALL_CASES = [(c[0], c[1]) for c in CASES] + [("lion", {}), ("lion", {"betas": (0.8, 0.95), "weight_decay": 0.1})]
"""Every optimiser and option combination: torch's cases plus Lion (which torch lacks)."""
ALL_IDS = [case_id(name, options) for name, options in ALL_CASES]


@pytest.mark.parametrize(("name", "options", "torch_name", "torch_options"), CASES, ids=IDS)
def test_matches_torch_optim(
    name: str, options: dict[str, Any], torch_name: str, torch_options: dict[str, Any], torch: ModuleType
) -> None:
    """100 steps from the same parameters and gradients: rel. error <= 1e-10 in float64."""
    params, grads = start_params(), grad_sequence()
    run(make_optimizer(name, LR[name], **options), params, grads, LR[name])

    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in start_params().items()}
    ref = getattr(torch.optim, torch_name)(list(tensors.values()), lr=LR[name], **torch_options)
    for i, g in enumerate(grads):
        for group in ref.param_groups:
            group["lr"] = lr_at(i, LR[name])
        for k, t in tensors.items():
            t.grad = torch.tensor(g[k])
        ref.step()
    for k, t in tensors.items():
        assert rel(params[k], t.detach().numpy()) <= 1e-10, k
        assert not np.allclose(params[k], start_params()[k]), "the parameters must have moved"


def test_defaults_are_torchs(torch: ModuleType) -> None:
    """Every hyperparameter we share with torch has torch's default (lr aside, which we require)."""
    tensor = [torch.zeros(1)]
    for name, torch_name in [
        ("sgd", "SGD"),
        ("adam", "Adam"),
        ("adamw", "AdamW"),
        ("rmsprop", "RMSprop"),
        ("adagrad", "Adagrad"),
    ]:
        ours = make_optimizer(name, 0.1).config()
        theirs = getattr(torch.optim, torch_name)(tensor, lr=0.1).defaults
        for key, value in ours.items():
            if key != "type":
                assert theirs[key] == (tuple(value) if key == "betas" else value), (name, key)


# -- the equations, transcribed one to one ---------------------------------------
def sgd_eq(p: np.ndarray, gs: list[np.ndarray], lr: float, mu: float, nesterov: bool, wd: float) -> np.ndarray:
    b = np.zeros_like(p)
    for g in gs:
        g = g + wd * p
        b = mu * b + g
        p = p - lr * (g + mu * b if nesterov else b)
    return p


def adam_eq(
    p: np.ndarray, gs: list[np.ndarray], lr: float, b1: float, b2: float, eps: float, wd: float, decoupled: bool
) -> np.ndarray:
    m = v = np.zeros_like(p)
    for t, g in enumerate(gs, start=1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def rmsprop_eq(
    p: np.ndarray, gs: list[np.ndarray], lr: float, alpha: float, eps: float, mu: float, wd: float
) -> np.ndarray:
    v = b = np.zeros_like(p)
    for g in gs:
        g = g + wd * p
        v = alpha * v + (1 - alpha) * g**2
        b = mu * b + g / (np.sqrt(v) + eps)
        p = p - lr * b
    return p


def adagrad_eq(p: np.ndarray, gs: list[np.ndarray], lr: float, eps: float, wd: float) -> np.ndarray:
    s = np.zeros_like(p)
    for g in gs:
        g = g + wd * p
        s = s + g**2
        p = p - lr * g / (np.sqrt(s) + eps)
    return p


def lion_eq(p: np.ndarray, gs: list[np.ndarray], lr: float, b1: float, b2: float, wd: float) -> np.ndarray:
    m = np.zeros_like(p)
    for g in gs:
        c = b1 * m + (1 - b1) * g
        p = p - lr * (np.sign(c) + wd * p)
        m = b2 * m + (1 - b2) * g
    return p


EQUATIONS: list[tuple[str, dict[str, Any], Callable[..., np.ndarray]]] = [
    ("sgd", {"momentum": 0.9, "weight_decay": 0.1}, lambda p, gs: sgd_eq(p, gs, 0.1, 0.9, False, 0.1)),
    ("sgd", {"momentum": 0.8, "nesterov": True}, lambda p, gs: sgd_eq(p, gs, 0.1, 0.8, True, 0.0)),
    ("adam", {"weight_decay": 0.1, "eps": 1e-3}, lambda p, gs: adam_eq(p, gs, 0.1, 0.9, 0.999, 1e-3, 0.1, False)),
    ("adamw", {"weight_decay": 0.1, "betas": (0.5, 0.6)}, lambda p, gs: adam_eq(p, gs, 0.1, 0.5, 0.6, 1e-8, 0.1, True)),
    (
        "rmsprop",
        {"momentum": 0.5, "weight_decay": 0.1, "eps": 1e-3},
        lambda p, gs: rmsprop_eq(p, gs, 0.1, 0.99, 1e-3, 0.5, 0.1),
    ),
    ("adagrad", {"weight_decay": 0.1, "eps": 1e-3}, lambda p, gs: adagrad_eq(p, gs, 0.1, 1e-3, 0.1)),
    ("lion", {}, lambda p, gs: lion_eq(p, gs, 0.1, 0.9, 0.99, 0.0)),
    ("lion", {"betas": (0.5, 0.8), "weight_decay": 0.3}, lambda p, gs: lion_eq(p, gs, 0.1, 0.5, 0.8, 0.3)),
]


@pytest.mark.parametrize(
    ("name", "options", "equation"), EQUATIONS, ids=[f"{e[0]}-{i}" for i, e in enumerate(EQUATIONS)]
)
def test_update_rule_is_its_equation(name: str, options: dict[str, Any], equation: Callable[..., np.ndarray]) -> None:
    """Four steps agree with the docstring's equations written out directly (no torch needed)."""
    p0 = np.array([[0.5, -1.0, 2.0], [0.0, 3.0, -0.25]])
    gs = [np.array([[1.0, -2.0, 0.5], [0.0, 1e-3, -4.0]]) * scale for scale in (1.0, -0.5, 2.0, 0.1)]
    p = p0.copy()
    opt = make_optimizer(name, 0.1, **options)
    for g in gs:
        opt.step([("w", p, g)])
    np.testing.assert_allclose(p, equation(p0, gs), rtol=1e-13, atol=1e-15)


def test_sgd_momentum_by_hand() -> None:
    """Two steps of momentum 0.5 on a scalar: velocity 1, then 0.5 * 1 + 2 = 2.5."""
    p = np.array([1.0])
    opt = make_optimizer("sgd", 0.1, momentum=0.5)
    opt.step([("w", p, np.array([1.0]))])
    assert p[0] == pytest.approx(0.9)
    opt.step([("w", p, np.array([2.0]))])
    assert p[0] == pytest.approx(0.9 - 0.25)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_step_reads_but_never_writes_the_gradient(name: str) -> None:
    params, grads = start_params(), grad_sequence(3)
    before = [{k: v.copy() for k, v in g.items()} for g in grads]
    run(make_optimizer(name, 0.1, weight_decay=0.1), params, grads, 0.1)
    for g, g0 in zip(grads, before, strict=True):
        for k in g:
            assert np.array_equal(g[k], g0[k])


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_float32_parameters_stay_float32(name: str) -> None:
    p = np.ones((3, 2), dtype=np.float32)
    opt = make_optimizer(name, 0.1, **({"momentum": 0.9} if name in ("sgd", "rmsprop") else {}))
    for _ in range(3):
        opt.step([("w", p, np.full((3, 2), 0.5, dtype=np.float32))])
    assert p.dtype == np.float32
    assert all(a.dtype == np.float32 for a in opt.state["w"].values())


@pytest.mark.parametrize("flat", [False, True], ids=["per-tensor", "flat"])
@pytest.mark.parametrize(("name", "options"), ALL_CASES, ids=ALL_IDS)
def test_a_step_allocates_no_array(name: str, options: dict[str, Any], flat: bool) -> None:
    """After the first step (state and scratch created), a step allocates nothing the size of a parameter.

    Weight decay included: the coupled form goes through a scratch array.  What is left
    is a few small Python objects per tensor updated on its own.
    """
    params = {"0.W": np.zeros((200, 250)), "0.b": np.zeros(250), "1.W": np.zeros((250, 10))}
    buffer = ParameterBuffer.pack((k, p, np.full_like(p, 0.5)) for k, p in params.items())
    opt = make_optimizer(name, 0.1, **options)
    step = (lambda: opt.step(buffer)) if flat else (lambda: opt.step(iter(buffer)))
    step()
    tracemalloc.start()
    try:
        step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000, f"{peak} bytes (the smallest parameter has {buffer.tensors[1][1].nbytes})"


# -- saving and restoring the state ----------------------------------------------
@pytest.mark.parametrize(("name", "options"), ALL_CASES, ids=ALL_IDS)
def test_saved_state_resumes_exactly(name: str, options: dict[str, Any]) -> None:
    """50 steps, state through np.savez/np.load (no pickle) into a new optimiser, 50 more."""
    grads = grad_sequence()
    straight = start_params()
    run(make_optimizer(name, LR[name], **options), straight, grads, LR[name])

    resumed = start_params()
    first = make_optimizer(name, LR[name], **options)
    run(first, resumed, grads[: STEPS // 2], LR[name])
    buffer = io.BytesIO()
    np.savez(buffer, **first.state_dict())
    buffer.seek(0)
    second = optimizer_from_config(json.loads(json.dumps(first.config())))
    with np.load(buffer, allow_pickle=False) as saved:
        second.load_state_dict(saved)
    assert second.t == STEPS // 2
    assert second.lr == first.lr
    run(second, resumed, grads[STEPS // 2 :], LR[name], first=STEPS // 2)
    for k in straight:
        assert np.array_equal(resumed[k], straight[k]), k


# -- the flat-update contract ---------------------------------------------------------
def packed(params: dict[str, np.ndarray]) -> ParameterBuffer:
    """The same values in a ParameterBuffer, as a Network lays out its parameters."""
    return ParameterBuffer.pack((name, p, np.zeros_like(p)) for name, p in params.items())


def run_flat(
    opt: Optimizer, buffer: ParameterBuffer, grads: list[dict[str, np.ndarray]], lr: float, first: int = 0
) -> None:
    """:func:`run` handing the optimiser the buffer, its grads written in place as a network would."""
    for i, g in enumerate(grads, start=first):
        opt.lr = lr_at(i, lr)
        for name, _, grad in buffer:
            grad[...] = g[name]
        opt.step(buffer)


def params_of(buffer: ParameterBuffer) -> dict[str, np.ndarray]:
    return {name: param for name, param, _ in buffer}


def count_updates(opt: Optimizer) -> list[tuple[int, ...]]:
    """Record the shape of the ``param`` of every update call (the public method, wrapped)."""
    shapes: list[tuple[int, ...]] = []
    update = opt.update

    def counted(param: np.ndarray, grad: np.ndarray, space: Workspace) -> None:
        shapes.append(param.shape)
        update(param, grad, space)

    opt.update = counted  # type: ignore[method-assign]
    return shapes


@pytest.mark.parametrize(("name", "options"), ALL_CASES, ids=ALL_IDS)
def test_flat_update_equals_per_tensor_to_the_bit(name: str, options: dict[str, Any]) -> None:
    """One update on the flat arrays equals one per tensor exactly, state included, across a saved-state resume."""
    grads = grad_sequence()
    apart, apart_opt = start_params(), make_optimizer(name, LR[name], **options)
    run(apart_opt, apart, grads, LR[name])

    buffer, first = packed(start_params()), make_optimizer(name, LR[name], **options)
    calls = count_updates(first)
    run_flat(first, buffer, grads[: STEPS // 2], LR[name])
    assert calls == [buffer.param.shape] * (STEPS // 2), "an elementwise rule updates the buffer in one call"
    second = optimizer_from_config(first.config())
    second.load_state_dict(first.state_dict())
    run_flat(second, buffer, grads[STEPS // 2 :], LR[name], first=STEPS // 2)

    for k, p in params_of(buffer).items():
        assert np.array_equal(p, apart[k]), k
    state, expected = second.state_dict(), apart_opt.state_dict()
    assert sorted(state) == sorted(expected)
    for k in expected:
        assert np.array_equal(state[k], expected[k]), k


def test_flat_state_stays_the_per_parameter_state() -> None:
    """Each parameter's state entry is a live view of the flat state, and bad loaded shapes are named."""
    buffer = packed(start_params())
    grads = grad_sequence(1)
    opt = make_optimizer("adam", 0.1)
    run_flat(opt, buffer, grads, 0.1)
    m = opt.state["0.W"]["m"]
    run_flat(opt, buffer, grads, 0.1)
    assert m is opt.state["0.W"]["m"] and np.array_equal(m, opt.state_dict()["m/0.W"])
    assert opt.state["0.W"]["m"].base is opt.state["2.W"]["m"].base is not None

    opt.step(iter(buffer))  # the same tensors one by one: the views are their state too
    assert m is opt.state["0.W"]["m"] and opt.t == 3

    bad = {**opt.state_dict(), "v/0.b": np.zeros(5)}
    opt.load_state_dict(bad)
    with pytest.raises(ValueError, match=r"optimizer state v/0.b has shape \(5,\) but the parameter has \(4,\)"):
        opt.step(buffer)


def test_a_pickled_optimizer_goes_on_exactly() -> None:
    """Pickling keeps the per-parameter state and none of the step's caches (scratch, flat workspace)."""
    grads = grad_sequence(20)
    straight, opt = packed(start_params()), make_optimizer("adam", 0.01, weight_decay=0.1)
    run_flat(opt, straight, grads, 0.01)

    resumed, first = packed(start_params()), make_optimizer("adam", 0.01, weight_decay=0.1)
    run_flat(first, resumed, grads[:10], 0.01)
    pickled = pickle.dumps(first)
    state_bytes = sum(a.nbytes for a in first.state_dict().values() if isinstance(a, np.ndarray))
    assert len(pickled) < state_bytes + 2_000, "the scratch arrays (two more parameters' worth) are not pickled"
    second = pickle.loads(pickled)
    run_flat(second, resumed, grads[10:], 0.01, first=10)
    for k, p in params_of(straight).items():
        assert np.array_equal(params_of(resumed)[k], p), k


def test_triples_step_one_by_one_even_end_to_end() -> None:
    """The flat update is asked for (a ParameterBuffer), never guessed from where the arrays lie."""
    buffer = packed(start_params())
    opt = make_optimizer("adam", 0.1)
    calls = count_updates(opt)
    run(opt, params_of(buffer), grad_sequence(2), 0.1)
    assert calls == [shape for shape in SHAPES.values()] * 2


class NormalisedSGD(Optimizer):
    r"""A rule that is not elementwise: :math:`\theta \leftarrow \theta - \eta\, g / \lVert g \rVert_2` per tensor.

    Unnamed, so not registered: it exists for these tests only.
    """

    def update(self, param: np.ndarray, grad: np.ndarray, space: Workspace) -> None:
        param -= self.lr * grad / np.linalg.norm(grad)


def test_a_rule_that_is_not_elementwise_gets_one_call_per_tensor() -> None:
    """Even with every parameter in one buffer: one call per tensor, the numbers of separate arrays."""
    assert not NormalisedSGD.elementwise and "" not in OPTIMIZERS
    grads = grad_sequence(5)
    apart = start_params()
    run(NormalisedSGD(0.1), apart, grads, 0.1)

    buffer, opt = packed(start_params()), NormalisedSGD(0.1)
    calls = count_updates(opt)
    run_flat(opt, buffer, grads, 0.1)
    assert calls == [shape for shape in SHAPES.values()] * 5
    for k, p in params_of(buffer).items():
        assert np.array_equal(p, apart[k]), k

    # what one call on the flat arrays would have done instead: a norm over all tensors
    whole = packed(start_params())
    for g in grads:
        for name, _, grad in whole:
            grad[...] = g[name]
        NormalisedSGD(0.1).update(whole.param, whole.grad, Workspace())
    assert not np.allclose(whole.param, buffer.param)


def test_parameter_buffer_lays_tensors_end_to_end() -> None:
    params = start_params()
    grads = grad_sequence(1)[0]
    buffer = ParameterBuffer.pack((k, p, grads[k]) for k, p in params.items())
    assert buffer.layout == tuple(SHAPES.items()) and len(buffer) == 3
    assert np.array_equal(buffer.param, np.concatenate([p.ravel() for p in params.values()]))
    assert np.array_equal(buffer.grad, np.concatenate([g.ravel() for g in grads.values()]))
    for name, param, grad in buffer:
        assert param.base is buffer.param and grad.base is buffer.grad and param.shape == SHAPES[name]
    with pytest.raises(ValueError, match="need one dtype, got"):
        ParameterBuffer.pack([("w", np.ones(2), np.ones(2, dtype=np.float32))])
    with pytest.raises(ValueError, match=r"w has shape \(2,\) but its grad \(3,\)"):
        ParameterBuffer.pack([("w", np.ones(2), np.ones(3))])
    with pytest.raises(ValueError, match="tensor names must be unique"):
        ParameterBuffer([("w", (2,)), ("w", (3,))], np.float64)


def test_state_dict_is_flat_and_copied() -> None:
    p = np.ones(3)
    opt = make_optimizer("adam", 0.1)
    opt.step([("0.W", p, np.ones(3))])
    state = opt.state_dict()
    assert sorted(state) == ["lr", "m/0.W", "t", "v/0.W"]
    assert state["t"] == 1 and state["lr"] == 0.1
    assert isinstance(state["m/0.W"], np.ndarray)
    state["m/0.W"][:] = 99.0
    assert not np.any(opt.state["0.W"]["m"] == 99.0), "state_dict must hand out copies"


def test_bad_state_is_refused() -> None:
    opt = make_optimizer("adam", 0.1)
    with pytest.raises(ValueError, match="unknown Adam state entry 'momentum/0.W'"):
        opt.load_state_dict({"t": 1, "lr": 0.1, "momentum/0.W": np.zeros(3)})
    with pytest.raises(ValueError, match="needs 't' and 'lr'"):
        opt.load_state_dict({"m/0.W": np.zeros(3)})
    opt.load_state_dict({"t": 1, "lr": 0.1, "m/0.W": np.zeros(4), "v/0.W": np.zeros(4)})
    with pytest.raises(ValueError, match=r"optimizer state m/0.W has shape \(4,\) but the parameter has \(3,\)"):
        opt.step([("0.W", np.ones(3), np.ones(3))])


# -- construction ------------------------------------------------------------------
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_config_round_trips_through_json(name: str) -> None:
    options = {"weight_decay": 0.2, **({"momentum": 0.3} if name in ("sgd", "rmsprop") else {})}
    opt = make_optimizer(name, 0.5, **options)
    config = json.loads(json.dumps(opt.config()))
    assert config["type"] == name and config["lr"] == 0.5 and config["weight_decay"] == 0.2
    assert optimizer_from_config(config).config() == config
    assert repr(opt).startswith(type(opt).__name__ + "(lr=0.5")


@pytest.mark.parametrize(
    ("name", "lr", "options", "message"),
    [
        ("lbfgs", 0.1, {}, "unknown optimizer 'lbfgs'; choose one of: sgd, adam, adamw, rmsprop, adagrad, lion$"),
        ("sgd", 0.0, {}, "learning rate must be a finite number > 0, got 0.0"),
        ("adam", -1.0, {}, "learning rate must be a finite number > 0, got -1.0"),
        ("sgd", float("nan"), {}, "learning rate must be a finite number > 0"),
        ("sgd", 0.1, {"momentum": -0.1}, r"SGD momentum must be in \[0, 1\), got -0.1"),
        ("sgd", 0.1, {"momentum": 1.0}, r"SGD momentum must be in \[0, 1\), got 1.0"),
        ("sgd", 0.1, {"nesterov": True}, "SGD with nesterov=True needs momentum > 0"),
        ("sgd", 0.1, {"weight_decay": -1e-4}, "weight decay must be >= 0, got -0.0001"),
        ("adamw", 0.1, {"weight_decay": -1.0}, "weight decay must be >= 0"),
        ("adam", 0.1, {"betas": (0.9, 1.0)}, r"Adam beta2 must be in \[0, 1\), got 1.0"),
        ("adamw", 0.1, {"betas": (-0.1, 0.9)}, r"AdamW beta1 must be in \[0, 1\), got -0.1"),
        ("adam", 0.1, {"betas": (0.9,)}, r"Adam betas must be a pair \(beta1, beta2\)"),
        ("adam", 0.1, {"eps": 0.0}, "Adam eps must be > 0, got 0.0"),
        ("rmsprop", 0.1, {"alpha": 1.0}, r"RMSprop alpha must be in \[0, 1\)"),
        ("rmsprop", 0.1, {"momentum": -1.0}, r"RMSprop momentum must be in \[0, 1\)"),
        ("adagrad", 0.1, {"eps": -1.0}, "AdaGrad eps must be > 0"),
        ("lion", 0.1, {"betas": (0.9, 1.0)}, r"Lion beta2 must be in \[0, 1\), got 1.0"),
        ("lion", 0.1, {"betas": (0.9, 0.9, 0.9)}, r"Lion betas must be a pair \(beta1, beta2\)"),
        ("lion", 0.1, {"eps": 1e-8}, "unknown option.s. eps for optimizer 'lion'; it takes betas, weight_decay"),
        (
            "sgd",
            0.1,
            {"betas": (0.9, 0.99)},
            "unknown option.s. betas for optimizer 'sgd'; it takes momentum, nesterov, weight_decay",
        ),
    ],
)
def test_invalid_settings_are_refused_with_a_clear_message(
    name: str, lr: float, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_optimizer(name, lr, **options)


def test_every_registered_name_builds_and_names_itself() -> None:
    """A class that defines ``name`` is registered; the mapping is read-only; config()["type"] is the name."""
    assert list(OPTIMIZERS) == ["sgd", "adam", "adamw", "rmsprop", "adagrad", "lion"]
    for name, cls in OPTIMIZERS.items():
        opt = make_optimizer(name, 0.1)
        assert type(opt) is cls and opt.config()["type"] == name and cls.elementwise
    with pytest.raises(TypeError):
        OPTIMIZERS["mine"] = NormalisedSGD  # type: ignore[index]


def test_lion_defaults_are_the_papers() -> None:
    assert make_optimizer("lion", 1e-4).config() == {
        "type": "lion",
        "lr": 1e-4,
        "betas": [0.9, 0.99],
        "weight_decay": 0.0,
    }


def test_lion_trains_digits() -> None:
    """A small network learns digits with Lion (at a tenth of Adam's usual rate, as the paper advises)."""
    from ml_math_nn.data.datasets import Standardizer, digits
    from ml_math_nn.network import build_mlp
    from ml_math_nn.train import Trainer, evaluate

    data = digits()
    scaler = Standardizer.fit(data.X_train, np.float32, per_feature=False)
    X_train, X_test = scaler.transform(data.X_train), scaler.transform(data.X_test)
    net = build_mlp(64, (64,), 10, np.random.default_rng(0))
    opt = make_optimizer("lion", 1e-3, weight_decay=0.01)
    trainer = Trainer(net, opt, batch_size=32, rng=np.random.default_rng(1))
    before = evaluate(net, X_test, data.y_test)[1]
    for _ in range(5):
        trainer.train_epoch(X_train, data.y_train)
    assert before < 0.3 and evaluate(net, X_test, data.y_test)[1] >= 0.93


def test_optimizer_from_config_needs_lr() -> None:
    with pytest.raises(ValueError, match="optimizer config needs an 'lr'"):
        optimizer_from_config({"type": "sgd"})


# -- gradient clipping ---------------------------------------------------------------
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e3])
def test_clip_grad_norm_matches_torch(max_norm: float, torch: ModuleType) -> None:
    params, grads = start_params(), grad_sequence(1)[0]
    grads = {k: g / np.sqrt(sum(np.sum(v**2) for v in grads.values())) * 4.0 for k, g in grads.items()}  # norm 4
    tensors = [torch.tensor(v, requires_grad=True) for v in params.values()]
    for t, g in zip(tensors, grads.values(), strict=True):
        t.grad = torch.tensor(g)
    expected = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm))

    norm = clip_grad_norm(triples(params, grads), max_norm)
    assert norm == pytest.approx(expected, rel=1e-12) and norm == pytest.approx(4.0, rel=1e-12)
    for t, g in zip(tensors, grads.values(), strict=True):
        assert rel(g, t.grad.numpy()) <= 1e-12
    after = np.sqrt(sum(np.sum(g**2) for g in grads.values()))
    assert after == pytest.approx(min(4.0, max_norm), rel=1e-6)


def test_clip_grad_norm_scales_in_place_and_leaves_params() -> None:
    p, g = np.ones(2), np.array([3.0, 4.0], dtype=np.float32)
    assert clip_grad_norm([("w", p, g)], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(g, [0.6, 0.8], rtol=1e-5)
    assert g.dtype == np.float32 and np.array_equal(p, np.ones(2))
    with pytest.raises(ValueError, match="max_norm for gradient clipping must be > 0, got 0"):
        clip_grad_norm([("w", p, g)], 0)
