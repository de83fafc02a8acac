r"""scikit-learn's ``MLPClassifier`` and ``MLPRegressor``, made of this library's layers, heads and optimisers.

Code written for :class:`sklearn.neural_network.MLPClassifier` or
:class:`sklearn.neural_network.MLPRegressor` runs unchanged on :class:`MLPClassifier` and
:class:`MLPRegressor`: the same parameters with the same defaults and meaning, checked by
the same rules (``_parameter_constraints``, so a bad value raises scikit-learn's
``InvalidParameterError``, a ``ValueError`` naming the parameter), the same fitted
attributes, the same stopping rule and warnings.  A given ``random_state`` draws the same
initial weights, shuffles and validation split as scikit-learn's.  The network is a
:class:`~ml_math_nn.network.Network` of :class:`~ml_math_nn.layers.Dense` layers and
activations with a loss head from :mod:`ml_math_nn.losses`; the stochastic solvers are
:class:`~ml_math_nn.optim.SGD` and :class:`~ml_math_nn.optim.Adam` stepping the network's
flat parameter buffer; ``solver="lbfgs"`` is scipy's L-BFGS-B over that buffer.

The objective of a mini-batch :math:`B` (sample weights :math:`w_i`, all 1 by default) is
scikit-learn's,

.. math::
    L_B = s\,\frac{\sum_{i\in B} w_i\,\ell_i}{\sum_{i\in B} w_i}
          + \frac{\alpha}{2\sum_{i\in B} w_i}\sum_\ell \lVert W_\ell \rVert_F^2,

where :math:`\ell_i` is the head's per-sample loss (the mean over its :math:`K` outputs)
and :math:`s` makes it scikit-learn's: :math:`s = 1` for the softmax cross-entropy,
:math:`s = K` for the sigmoid cross-entropy (scikit-learn sums the binary log-losses of the
outputs) and :math:`s = K/2` for the squared error (half the squared error summed over the
outputs).  :meth:`_BaseMLP._step` computes it with the network's own penalty
:math:`\lambda = \alpha / (s \sum_B w_i)` and scales the gradient buffer by :math:`s`
(see docs/estimator.md).

Our extras are additional keyword parameters: ``dropout``, ``batch_norm``, ``init``,
``clip_norm``, the activations and optimisers of the library beyond scikit-learn's, and
``class_weight`` for the classifier.
"""

from __future__ import annotations

import math
import numbers
import warnings
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d, gen_batches, shuffle
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .._types import Array
from ..init import INITIALIZERS
from ..layers import BatchNorm, Dense, Dropout, Layer
from ..losses import Loss, MeanSquaredError, SigmoidCrossEntropy, SoftmaxCrossEntropy, log_softmax, softplus
from ..network import ACTIVATIONS, Network
from ..optim import SGD, Adam, Optimizer, ParameterBuffer, Workspace, clip_grad_norm, make_optimizer
from ..runs.persistence import WEIGHTS, Model, ModelFileError, load_model, save_model

SKLEARN_ACTIVATIONS = {"identity": None, "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
"""scikit-learn's activation names and the library's layer for each (``identity``: no layer)."""

STOCHASTIC = ("sgd", "adam")
"""scikit-learn's stochastic solvers; every other optimiser of the library is stochastic too."""

CHUNK = 4096
"""Rows per forward pass in prediction and in the L-BFGS objective (sparse rows are made dense a chunk at a time)."""


class SklearnAdam(Adam):
    r"""Adam with scikit-learn's :math:`\epsilon`: added to :math:`\sqrt{v_t}`, not to :math:`\sqrt{\hat v_t}`.

    .. math::
        \theta_t = \theta_{t-1} - \eta\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,\frac{m_t}{\sqrt{v_t} + \epsilon}

    (:class:`~ml_math_nn.optim.Adam` is PyTorch's, whose :math:`\epsilon` is this one
    times :math:`\sqrt{1-\beta_2^t}`; the two differ where :math:`\sqrt{v_t}` is near
    :math:`\epsilon`).  Unnamed, so not registered: only the estimators use it.
    """

    def update(self, param: Array, grad: Array, space: Workspace) -> None:
        b1, b2 = self.betas
        m, v, work = space.slot("m"), space.slot("v"), space.scratch()
        m *= b1
        np.multiply(grad, 1 - b1, out=work)
        m += work
        v *= b2
        np.square(grad, out=work)
        work *= 1 - b2
        v += work
        np.sqrt(v, out=work)
        work += self.eps
        np.divide(m, work, out=work)
        work *= self.lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        param -= work


class SklearnSGD(SGD):
    r"""SGD with scikit-learn's velocity, which holds the learning rate of each step.

    .. math::
        v_t = \mu v_{t-1} - \eta_t g_t, \qquad
        \theta_t = \theta_{t-1} + \begin{cases} \mu v_t - \eta_t g_t & \text{Nesterov} \\
                                               v_t & \text{otherwise}\end{cases}

    With a constant rate it is :class:`~ml_math_nn.optim.SGD` (whose velocity is
    :math:`-v_t/\eta`); it differs once ``invscaling`` or ``adaptive`` changes :math:`\eta_t`.
    Unnamed, so not registered: only the estimators use it.
    """

    def update(self, param: Array, grad: Array, space: Workspace) -> None:
        v, work = space.slot("momentum"), space.scratch()
        v *= self.momentum
        np.multiply(grad, self.lr, out=work)
        v -= work
        if self.nesterov:
            np.multiply(v, self.momentum, out=work)
            np.subtract(work, grad * self.lr, out=work)
            param += work
        else:
            param += v


def _activation_names() -> set[str]:
    return {*SKLEARN_ACTIVATIONS, *ACTIVATIONS}


def _solver_names() -> set[str]:
    return {"lbfgs", *STOCHASTIC, *Optimizer.registry}


class _BaseMLP(BaseEstimator):  # type: ignore[misc]
    """What :class:`MLPClassifier` and :class:`MLPRegressor` share: the network, the solvers and the stopping rule."""

    _parameter_constraints: dict[str, list[Any]] = {
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "activation": [StrOptions(_activation_names())],
        "solver": [StrOptions(_solver_names())],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(numbers.Real, 0, None, closed="neither")],
        "power_t": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(numbers.Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_1": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_2": [Interval(numbers.Real, 0, 1, closed="left")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left"), Options(numbers.Real, {np.inf})],
        "max_fun": [Interval(numbers.Integral, 1, None, closed="left")],
        # ours
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "init": [None, StrOptions(set(INITIALIZERS))],
        "clip_norm": [None, Interval(numbers.Real, 0, None, closed="neither")],
    }

    # Set by __init__ (each subclass lists them, as scikit-learn requires).
    hidden_layer_sizes: Any
    activation: str
    solver: str
    alpha: float
    batch_size: int | str
    learning_rate: str
    learning_rate_init: float
    power_t: float
    max_iter: int
    shuffle: bool
    random_state: Any
    tol: float
    verbose: bool | int
    warm_start: bool
    momentum: float
    nesterovs_momentum: bool
    early_stopping: bool
    validation_fraction: float
    beta_1: float
    beta_2: float
    epsilon: float
    n_iter_no_change: float
    max_fun: int
    dropout: float
    batch_norm: bool
    init: str | None
    clip_norm: float | None

    # Fitted.
    network_: Network
    n_outputs_: int
    n_layers_: int
    out_activation_: str
    n_iter_: int
    t_: int
    loss_: float
    _optimizer: Optimizer
    _random_state: np.random.RandomState

    # -- what subclasses say --------------------------------------------------------------
    def _head(self) -> tuple[Loss, float]:
        """The loss head for ``n_outputs_`` outputs and its factor :math:`s` (see the module docstring)."""
        raise NotImplementedError

    def _encode(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, NDArray[Any], NDArray[Any]]:
        """Validated ``X``, the targets as the head takes them, and as a 2-D matrix (for ``n_outputs_``)."""
        raise NotImplementedError

    def _score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        raise NotImplementedError

    def _extra_weights(self, y: NDArray[Any]) -> NDArray[np.float64] | None:
        """Per-sample weights the estimator adds to ``sample_weight`` (the classifier's ``class_weight``)."""
        return None

    # -- the network ----------------------------------------------------------------------
    def _hidden(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        hidden = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if any(not isinstance(h, numbers.Integral) or isinstance(h, bool) or h <= 0 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        return [int(h) for h in hidden]

    def _build(self, n_features: int, dtype: np.dtype[Any]) -> Network:
        """A new network: per hidden width ``Dense [-> BatchNorm] [-> activation] [-> Dropout]``, then the output layer.

        Without ``init``, the weights and biases are scikit-learn's: uniform on
        :math:`\\pm\\sqrt{f/(n_{in}+n_{out})}` (:math:`f = 2` for ``logistic``, 6 otherwise), drawn
        layer by layer from ``random_state``, so that they equal scikit-learn's.
        """
        hidden = self._hidden()
        units = [n_features, *hidden, self.n_outputs_]
        name = SKLEARN_ACTIVATIONS.get(self.activation, self.activation)
        rng = None if self.init is None else np.random.default_rng(self._random_state.randint(np.iinfo(np.int32).max))
        layers: list[Layer] = []
        dense: list[Dense] = []
        for i, (n_in, n_out) in enumerate(zip(units[:-1], units[1:], strict=True)):
            last = i == len(units) - 2
            layer = Dense(n_in, n_out, self.init or "glorot_uniform", rng, dtype, bias=last or not self.batch_norm)
            layers.append(layer)
            dense.append(layer)
            if last:
                break
            if self.batch_norm:
                layers.append(BatchNorm(n_out, dtype=dtype))
            if name is not None:
                layers.append(ACTIVATIONS.lookup(name)())
            if self.dropout > 0:
                layers.append(Dropout(self.dropout))
        if self.init is None:
            factor = 2.0 if self.activation == "logistic" else 6.0
            for layer in dense:
                bound = np.sqrt(factor / (layer.n_in + layer.n_out))
                layer.params["W"][...] = self._random_state.uniform(-bound, bound, (layer.n_in, layer.n_out))
                b = self._random_state.uniform(-bound, bound, layer.n_out)
                if "b" in layer.params:
                    layer.params["b"][...] = b
        head, _ = self._head()
        return Network(layers, dtype, 0.0, head)

    def _dense(self) -> list[Dense]:
        # The estimator builds MLPs: the layers with a weight matrix are its dense layers.
        return [cast(Dense, layer) for layer in self.network_.layers if layer.weight_names]

    @property
    def coefs_(self) -> list[Array]:
        """The weight matrix of each dense layer, (n_in, n_out): the network's own arrays."""
        check_is_fitted(self, "network_")
        return [layer.params["W"] for layer in self._dense()]

    @coefs_.setter
    def coefs_(self, values: list[ArrayLike]) -> None:
        for layer, value in zip(self._dense(), values, strict=True):
            layer.params["W"][...] = value

    @property
    def intercepts_(self) -> list[Array]:
        """The bias of each dense layer (zeros for one followed by batch normalisation, which has none)."""
        check_is_fitted(self, "network_")
        return [layer.params.get("b", np.zeros(layer.n_out, self.network_.dtype)) for layer in self._dense()]

    @intercepts_.setter
    def intercepts_(self, values: list[ArrayLike]) -> None:
        for layer, value in zip(self._dense(), values, strict=True):
            if "b" in layer.params:
                layer.params["b"][...] = value

    # -- fitting --------------------------------------------------------------------------
    def _fit(self, X: Any, y: Any, sample_weight: Any, incremental: bool) -> Any:
        hidden = self._hidden()
        first = not hasattr(self, "network_") or (not self.warm_start and not incremental)
        X, target, Y = self._encode(X, y, incremental, reset=first)
        sw = None if sample_weight is None else _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        extra = self._extra_weights(Y)
        if extra is not None:
            sw = extra if sw is None else sw * extra
        self._random_state = check_random_state(self.random_state)
        if first:
            self._initialize(Y, X.shape[1], X.dtype)
        elif [layer.n_out for layer in self._dense()][:-1] != hidden:
            raise ValueError(f"hidden_layer_sizes {hidden} differs from the fitted network's; fit without warm_start")
        if self.dropout > 0:
            self.network_.set_rng(np.random.default_rng(self._random_state.randint(np.iinfo(np.int32).max)))
        try:
            if self.solver == "lbfgs":
                if self.dropout > 0:
                    raise ValueError("dropout needs a stochastic solver; the L-BFGS objective must not be random")
                self._fit_lbfgs(X, target, sw)
            else:
                self._fit_stochastic(X, target, Y, sw, incremental)
            finite = all(np.isfinite(a).all() for a in self.network_.state().values())
        except FloatingPointError:
            finite = False
        if not finite:
            self._forget()
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain large values and need to "
                "be preprocessed."
            )
        return self

    def _initialize(self, Y: NDArray[Any], n_features: int, dtype: np.dtype[Any]) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(self._hidden()) + 2
        self.network_ = self._build(n_features, np.dtype(dtype))
        self.__dict__.pop("_optimizer", None)
        if self.solver != "lbfgs":
            self.loss_curve_: list[float] = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_: list[float] | None = []
                self.best_validation_score_: float | None = -np.inf
                self.best_loss_: float | None = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None
        self._best_state = _copy_state(self.network_)

    def _forget(self) -> None:
        """Back to unfitted: every attribute a fit sets is dropped."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            self.__dict__.pop(name, None)
        for name in ("_optimizer", "_best_state", "_label_binarizer", "_no_improvement_count"):
            self.__dict__.pop(name, None)

    def _step(self, X: Any, target: NDArray[Any], sw: NDArray[np.float64] | None) -> float:
        """Forward, loss and backward of one batch (rows made dense); fills the gradient buffer; returns :math:`L_B`."""
        net = self.network_
        head, s = self._head()
        x = _dense_rows(X, net.dtype)
        total = len(x) if sw is None else float(sw.sum())
        net.l2 = self.alpha / (s * total)
        loss, _ = net.forward_backward(x, target, sw)
        flat = net.flat_parameters()
        if s != 1:
            if flat is not None:
                flat.grad *= s
            else:
                for _, _, grad in net.parameters():
                    grad *= s
        return s * loss

    def _reported(self, loss: float) -> float:
        """The batch loss as ``loss_curve_`` records it (scikit-learn's value), from :meth:`_step`'s."""
        return loss

    def _fit_stochastic(
        self, X: Any, target: NDArray[Any], Y: NDArray[Any], sw: NDArray[np.float64] | None, incremental: bool
    ) -> None:
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        X_val = y_val = sw_val = None
        if early_stopping:
            stratify = Y if is_classifier(self) and self.n_outputs_ == 1 else None
            arrays = [X, target, Y] + ([] if sw is None else [sw])
            parts = train_test_split(
                *arrays, random_state=self._random_state, test_size=self.validation_fraction, stratify=stratify
            )
            X, X_val, target, _, Y, Y_val = parts[:6]
            sw, sw_val = (None, None) if sw is None else (parts[6], parts[7])
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' or the size of your dataset."
                )
            y_val = self._decode(Y_val)
        n_samples = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped", stacklevel=3
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        flat = self.network_.flat_parameters()
        params: ParameterBuffer | list[tuple[str, Array, Array]] = (
            flat if flat is not None else list(self.network_.parameters())
        )
        index = np.arange(n_samples, dtype=int)
        self.n_iter_ = 0
        for _ in range(self.max_iter):
            if self.shuffle:
                index = shuffle(index, random_state=self._random_state)
            accumulated = 0.0
            for batch in gen_batches(n_samples, batch_size):
                rows = index[batch]
                w = None if sw is None else sw[rows]
                if w is not None and not w.any():
                    continue  # no sample counts: nothing to learn from this batch
                loss = self._reported(self._step(X[rows], target[rows], w))
                if not np.isfinite(loss):
                    raise FloatingPointError
                accumulated += loss * (batch.stop - batch.start)
                if self.clip_norm is not None:
                    clip_grad_norm(self.network_.parameters(), self.clip_norm)
                self._optimizer.step(params)
            self.n_iter_ += 1
            self.loss_ = accumulated / n_samples
            self.t_ += n_samples
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            self._update_no_improvement_count(early_stopping, X_val, y_val, sw_val)
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                self._optimizer.lr = float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t
            if self._no_improvement_count > self.n_iter_no_change:
                what = "Validation score" if early_stopping else "Training loss"
                msg = (
                    f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} consecutive epochs."
                )
                if self._trigger_stopping(msg):
                    break
                self._no_improvement_count = 0
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn(
                    f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the optimization "
                    "hasn't converged yet.",
                    ConvergenceWarning,
                    stacklevel=3,
                )
        if early_stopping:
            _load_state(self.network_, self._best_state)

    def _make_optimizer(self) -> Optimizer:
        lr = float(self.learning_rate_init)
        if self.solver == "sgd":
            nesterov = bool(self.nesterovs_momentum) and self.momentum > 0
            return SklearnSGD(lr, momentum=float(self.momentum), nesterov=nesterov)
        if self.solver == "adam":
            return SklearnAdam(lr, betas=(float(self.beta_1), float(self.beta_2)), eps=float(self.epsilon))
        return make_optimizer(self.solver, lr)

    def _trigger_stopping(self, msg: str) -> bool:
        """scikit-learn's rule: stop, unless SGD with ``learning_rate="adaptive"`` can still divide its rate by 5."""
        if self.solver == "sgd" and self.learning_rate == "adaptive":
            if self._optimizer.lr <= 1e-6:
                if self.verbose:
                    print(f"{msg} Learning rate too small. Stopping.")
                return True
            self._optimizer.lr /= 5.0
            if self.verbose:
                print(f"{msg} Setting learning rate to {self._optimizer.lr:f}")
            return False
        if self.verbose:
            print(f"{msg} Stopping.")
        return True

    def _update_no_improvement_count(self, early_stopping: bool, X_val: Any, y_val: Any, sw_val: Any) -> None:
        if early_stopping:
            assert self.validation_scores_ is not None and self.best_validation_score_ is not None
            score = self._score(X_val, y_val, sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_state = _copy_state(self.network_)
        else:
            assert self.best_loss_ is not None
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])

    def _lbfgs_objective(
        self, theta: NDArray[np.float64], X: Any, target: NDArray[Any], sw: NDArray[np.float64] | None
    ) -> tuple[float, NDArray[np.float64]]:
        """The full-batch objective :math:`L` at the flat parameters ``theta`` and its gradient.

        Rows go through the network a chunk at a time; chunk :math:`c` counts with its share
        :math:`\\sum_{i \\in c} w_i / \\sum_i w_i` (the penalty is added once, for all rows).
        """
        flat = self.network_.flat_parameters()
        assert flat is not None
        flat.param[...] = theta
        n = X.shape[0]
        weights = np.ones(n) if sw is None else sw
        total = float(weights.sum())
        loss, grad = 0.0, np.zeros_like(theta)
        alpha = self.alpha
        for chunk in gen_batches(n, CHUNK if n > CHUNK else n):
            share = float(weights[chunk].sum()) / total
            if share == 0:
                continue
            self.alpha = 0.0
            try:
                loss += share * self._step(X[chunk], target[chunk], None if sw is None else sw[chunk])
            finally:
                self.alpha = alpha
            grad += share * flat.grad
        penalty = sum(float(np.vdot(layer.params[k], layer.params[k])) for layer, k in self._penalised())
        loss += 0.5 * alpha * penalty / total
        for layer, key in self._penalised():
            grad[self._offset(layer, key)] += (alpha / total) * layer.params[key].ravel()
        return loss, grad

    def _penalised(self) -> list[tuple[Layer, str]]:
        return [(layer, key) for layer in self.network_.layers for key in layer.weight_names]

    def _offset(self, layer: Layer, key: str) -> slice:
        """Where ``layer.params[key]`` lies in the flat buffer."""
        flat = self.network_.flat_parameters()
        assert flat is not None
        start = layer.params[key].__array_interface__["data"][0] - flat.param.__array_interface__["data"][0]
        start //= flat.param.itemsize
        return slice(start, start + layer.params[key].size)

    def _fit_lbfgs(self, X: Any, target: NDArray[Any], sw: NDArray[np.float64] | None) -> None:
        import scipy.optimize  # only this solver needs scipy

        flat = self.network_.flat_parameters()
        if flat is None:
            raise ValueError("solver='lbfgs' needs the parameters in one buffer (one dtype, no shared layer)")
        result = scipy.optimize.minimize(
            self._lbfgs_objective,
            flat.param.astype(np.float64),
            method="L-BFGS-B",
            jac=True,
            args=(X, target, sw),
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
        )
        if result.status != 0:
            warnings.warn(
                f"lbfgs failed to converge after {result.nit} iteration(s) (status={result.status}):\n"
                f"{result.message}\n\nIncrease the number of iterations to improve the convergence "
                f"(max_iter={self.max_iter}).",
                ConvergenceWarning,
                stacklevel=3,
            )
        self.n_iter_ = min(int(result.nit), self.max_iter)
        self.loss_ = float(result.fun)
        flat.param[...] = result.x

    @_fit_context(prefer_skip_nested_validation=True)  # type: ignore[untyped-decorator]
    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Any:
        """Fit the model to ``X`` (dense or scipy.sparse CSR/CSC) and ``y``, as scikit-learn's ``fit``.

        ``sample_weight`` (n_samples,), >= 0, weights each sample's loss; the L2 penalty of a
        batch is divided by the batch's weight sum.  A fit whose parameters become NaN or
        infinite raises ``ValueError`` and leaves the estimator unfitted.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _check_solver(self) -> bool:
        if self.solver == "lbfgs":
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers. {self.solver} is not stochastic."
            )
        return True

    # -- prediction -----------------------------------------------------------------------
    def _outputs(self, X: Any, check_input: bool = True) -> Array:
        """The network's outputs (logits or values) for ``X``, in inference mode, a chunk at a time."""
        check_is_fitted(self, "network_")
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        net = self.network_
        chunks = [net.forward(_dense_rows(X[c], net.dtype)) for c in gen_batches(X.shape[0], CHUNK)]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.n_outputs_), net.dtype)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # -- pickling -------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """The pickled state, with a copy of the network that holds no layer caches (the last rows seen)."""
        state: dict[str, Any] = super().__getstate__()
        if "network_" in state:
            state["network_"] = _fresh_copy(self.network_)
        return state

    # -- the library's model files --------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write the fitted model into ``directory`` in the library's format (model.npz + model.json).

        Arrays and JSON only, written atomically, verified when read: the safe way to share
        a model, unlike a pickle.
        """
        check_is_fitted(self, "network_")
        meta = {
            "estimator": type(self).__name__,
            "params": _json_params(self.get_params(deep=False)),
            "fitted": {
                "n_iter_": self.n_iter_,
                "t_": self.t_,
                "loss_": getattr(self, "loss_", None),
                "loss_curve_": getattr(self, "loss_curve_", None),
                "n_outputs_": self.n_outputs_,
            },
            "classes": self._classes_json(),
            "feature_names_in": getattr(self, "feature_names_in_", np.array([])).tolist(),
        }
        save_model(directory, Model(self.network_, self._output_names(), None, meta))

    def _output_names(self) -> list[str]:
        """A name per output, as the model file holds them: the class, label or target column."""
        if is_classifier(self) and self.out_activation_ == "softmax":
            return [str(c) for c in self.classes_]
        if is_classifier(self) and self.n_outputs_ == 1:
            return [str(self.classes_[-1])]  # the positive class, whose probability the output gives
        if is_classifier(self):
            return [str(c) for c in self.classes_]
        return [f"y{k}" for k in range(self.n_outputs_)]

    def to_onnx(self, path: str | Path) -> Path:
        """Write the fitted model as an ONNX file (:mod:`ml_math_nn.integrations.onnx_export`).

        The graph takes the rows of ``X`` as :meth:`predict` does and gives ``label`` (one of
        ``classes_``, or the 0/1 label matrix of multi-label ``y``) and ``probabilities``, or a
        regressor's ``values``; needs the onnx package.
        """
        from .onnx_export import save_onnx

        check_is_fitted(self, "network_")
        classes = getattr(self, "classes_", None)
        names = [] if classes is None else [str(c) for c in classes]
        return save_onnx(Model(self.network_, names), path, classes)

    def _classes_json(self) -> list[Any]:
        return []

    @classmethod
    def load(cls, directory: str | Path) -> Any:
        """The estimator saved by :meth:`save` in ``directory``, ready to predict.

        Raises :class:`~ml_math_nn.runs.persistence.ModelFileError` for a file that is not a
        saved estimator of this class or whose metadata does not fit its network.  Training
        it further starts a fresh optimiser state.
        """
        model = load_model(directory)
        path = Path(directory) / WEIGHTS
        if model.meta.get("estimator") != cls.__name__:
            raise ModelFileError(f"{path}: not a saved {cls.__name__} (no estimator parameters in the model file)")
        try:  # the metadata is not checksummed: anything in it that does not fit is refused here
            return cls._from_meta(model.meta, model.network)
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"{path}: invalid {cls.__name__} metadata ({e})") from None

    @classmethod
    def _from_meta(cls, meta: dict[str, Any], network: Network) -> Any:
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["params"].items()}
        if params.get("n_iter_no_change", 0) is None:
            params["n_iter_no_change"] = np.inf
        est = cls(**params)
        est._validate_params()
        fitted = meta["fitted"]
        n_outputs = fitted["n_outputs_"]
        widths = [layer.output_shape(layer.input_shape or ())[-1] for layer in network.layers if layer.weight_names]
        if widths != [*est._hidden(), n_outputs] or network.n_out != n_outputs:
            raise ValueError(f"hidden_layer_sizes and n_outputs_ {n_outputs} do not fit the network's widths {widths}")
        est.n_outputs_ = int(n_outputs)
        est.n_layers_ = len(widths) + 1
        est._set_classes(meta["classes"], network)
        est.n_features_in_ = network.n_in
        names = meta["feature_names_in"]
        if names:
            if not (isinstance(names, list) and len(names) == network.n_in and all(isinstance(n, str) for n in names)):
                raise ValueError(f"feature_names_in is not {network.n_in} column names")
            est.feature_names_in_ = np.asarray(names, dtype=object)
        est.network_ = network
        est.n_iter_, est.t_ = int(fitted["n_iter_"]), int(fitted["t_"])
        if fitted["loss_"] is not None:
            est.loss_ = float(fitted["loss_"])
        if fitted["loss_curve_"] is not None:
            est.loss_curve_ = [float(v) for v in fitted["loss_curve_"]]
        est._best_state = _copy_state(network)
        return est

    def _set_classes(self, classes: list[Any], network: Network) -> None:
        if classes:
            raise ValueError("a regressor has no classes")
        self.out_activation_ = "identity"


class MLPClassifier(ClassifierMixin, _BaseMLP):  # type: ignore[misc]
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier``, on this library.

    One class per sample (a softmax output per class, or one logistic output for two
    classes) or several (``y`` a 0/1 indicator matrix: one logistic output per label,
    ``predict`` returns the matrix).  Parameters, attributes and errors are those of
    :class:`sklearn.neural_network.MLPClassifier` (see docs/estimator.md); the extras:

    Parameters
    ----------
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate, learning_rate_init, power_t, \
max_iter, shuffle, random_state, tol, verbose, warm_start, momentum, nesterovs_momentum, early_stopping, \
validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun
        As scikit-learn's, with the same defaults.  ``activation`` also takes the library's
        (``gelu``, ``elu``, ``leaky_relu``, ...; ``logistic`` is ``sigmoid``) and ``solver``
        its other optimisers (``adamw``, ``rmsprop``, ``adagrad``, ``lion``, built with
        ``learning_rate_init`` and their own defaults).
    dropout : float, default=0.0
        Inverted dropout rate after each hidden activation (training only).
    batch_norm : bool, default=False
        Batch normalisation between each hidden ``Dense`` (then without bias) and its activation.
    init : str or None, default=None
        An initialiser of :mod:`ml_math_nn.init` for every dense layer; None draws
        scikit-learn's uniform weights and biases from ``random_state``.
    clip_norm : float or None, default=None
        Rescale each batch's gradient to this global L2 norm at most.
    class_weight : dict, "balanced" or None, default=None
        Multiply each sample's weight by its class's (``"balanced"``: ``n_samples /
        (n_classes * count)``); not for multi-label ``y``.

    Attributes
    ----------
    classes_, loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, t_, coefs_, \
intercepts_, n_features_in_, feature_names_in_, n_iter_, n_layers_, n_outputs_, out_activation_
        As scikit-learn's.  ``coefs_`` and ``intercepts_`` are the network's own arrays.
    network_ : Network
        The trained network.
    """

    _parameter_constraints: dict[str, list[Any]] = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [None, dict, StrOptions({"balanced"})],
    }

    classes_: NDArray[Any]
    _label_binarizer: LabelBinarizer

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool | int = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: float = 10,
        max_fun: int = 15000,
        dropout: float = 0.0,
        batch_norm: bool = False,
        init: str | None = None,
        clip_norm: float | None = None,
        class_weight: dict[Any, float] | str | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.init = init
        self.clip_norm = clip_norm
        self.class_weight = class_weight

    def _head(self) -> tuple[Loss, float]:
        if self.out_activation_ == "softmax":
            return SoftmaxCrossEntropy(), 1.0
        return SigmoidCrossEntropy(), float(self.n_outputs_)

    def _encode(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, NDArray[Any], NDArray[Any]]:
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True, dtype=(np.float64, np.float32), reset=reset
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)  # scikit-learn's one-line message for a regression target
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the previous call to fit. "
                        f"Previously got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        Y = self._label_binarizer.transform(y)
        if self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
            return X, np.argmax(Y, axis=1), Y
        self.out_activation_ = "logistic"
        return X, Y.astype(X.dtype), Y

    def _decode(self, Y: NDArray[Any]) -> NDArray[Any]:
        out: NDArray[Any] = self._label_binarizer.inverse_transform(Y)
        return out

    def _extra_weights(self, Y: NDArray[Any]) -> NDArray[np.float64] | None:
        if self.class_weight is None:
            return None
        if self._label_binarizer.y_type_.startswith("multilabel"):
            raise ValueError("class_weight is not supported for multi-label y")
        weights: NDArray[np.float64] = compute_sample_weight(self.class_weight, self._decode(Y))
        return weights

    def _score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        pred = self._predict(X, check_input=False)
        return float(accuracy_score(y, pred, sample_weight=sample_weight))

    def _predict(self, X: Any, check_input: bool = True) -> NDArray[Any]:
        z = self._outputs(X, check_input)
        if self.out_activation_ == "softmax":
            return self.classes_[np.argmax(z, axis=1)]
        p = self.network_.loss.activate(z)
        return self._decode(p.ravel() if self.n_outputs_ == 1 else p)

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """The predicted class of each row, or the 0/1 label matrix of multi-label ``y``."""
        check_is_fitted(self)
        return self._predict(X)

    @available_if(lambda est: est._check_solver())  # type: ignore[untyped-decorator]
    @_fit_context(prefer_skip_nested_validation=True)  # type: ignore[untyped-decorator]
    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None, classes: ArrayLike | None = None
    ) -> MLPClassifier:
        """One epoch over ``(X, y)``; ``classes`` (every label there will be) is required on the first call."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        result: MLPClassifier = self._fit(X, y, sample_weight, incremental=True)
        return result

    def predict_proba(self, X: ArrayLike) -> Array:
        """Probabilities: of each class (columns as ``classes_``), or of each label for multi-label ``y``."""
        check_is_fitted(self)
        z = self._outputs(X)
        p = self.network_.loss.activate(z)
        if self.n_outputs_ == 1:
            # sigma(-z) rather than 1 - sigma(z): no rounding to 0 where sigma(z) rounds to 1
            return np.hstack([self.network_.loss.activate(-z), p])
        return p

    def predict_log_proba(self, X: ArrayLike) -> Array:
        r"""The logarithms of :meth:`predict_proba`, computed from the logits.

        :math:`\log\operatorname{softmax}(z)`, or :math:`\log\sigma(z) = -\operatorname{softplus}(-z)`
        and :math:`\log(1 - \sigma(z)) = -\operatorname{softplus}(z)`: exact where a
        probability is tiny (scikit-learn's log of the rounded probability is not), and
        ``-inf`` where :meth:`predict_proba` gives 0, as scikit-learn's.
        """
        check_is_fitted(self)
        z = self._outputs(X)
        if self.out_activation_ == "softmax":
            out = log_softmax(z)
        elif self.n_outputs_ == 1:
            out = np.hstack([-softplus(z), -softplus(-z)])
        else:
            out = -softplus(-z)
        out[np.exp(out) == 0] = -np.inf  # the log of the probability predict_proba gives
        return out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _classes_json(self) -> list[Any]:
        if self._label_binarizer.y_type_.startswith("multilabel"):
            return [{"multilabel": [_plain(c) for c in self.classes_]}]
        return [_plain(c) for c in self.classes_]

    def _set_classes(self, classes: list[Any], network: Network) -> None:
        multilabel = len(classes) == 1 and isinstance(classes[0], dict)
        labels = np.asarray(classes[0]["multilabel"] if multilabel else classes)
        if labels.ndim != 1 or not np.array_equal(np.unique(labels), labels):
            raise ValueError(f"classes {classes!r} are not distinct labels in sorted order")
        binarizer = LabelBinarizer()
        binarizer.fit(np.eye(len(labels), dtype=int) if multilabel else labels)
        if multilabel:
            binarizer.classes_ = labels
        n_out = len(labels) if multilabel or len(labels) > 2 else 1
        if n_out != network.n_out:
            raise ValueError(f"{len(labels)} classes need {n_out} outputs, the network has {network.n_out}")
        self._label_binarizer, self.classes_ = binarizer, labels
        self.out_activation_ = "softmax" if binarizer.y_type_ == "multiclass" else "logistic"
        expected = SoftmaxCrossEntropy if self.out_activation_ == "softmax" else SigmoidCrossEntropy
        if not isinstance(network.loss, expected):
            raise ValueError(f"the network's head is {network.loss.name}, {len(labels)} classes need {expected.name}")


class MLPRegressor(RegressorMixin, _BaseMLP):  # type: ignore[misc]
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor``, on this library.

    The squared error of identity outputs, one per target column.  Parameters,
    attributes and errors are those of :class:`sklearn.neural_network.MLPRegressor` (see
    docs/estimator.md), with the extras of :class:`MLPClassifier` but ``class_weight``.

    Parameters
    ----------
    loss : {"squared_error"}, default="squared_error"
        scikit-learn's other loss, ``"poisson"``, is not available.
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate, learning_rate_init, power_t, \
max_iter, shuffle, random_state, tol, verbose, warm_start, momentum, nesterovs_momentum, early_stopping, \
validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun, dropout, batch_norm, init, clip_norm
        As :class:`MLPClassifier`'s.

    Attributes
    ----------
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, t_, coefs_, intercepts_, \
n_features_in_, feature_names_in_, n_iter_, n_layers_, n_outputs_, out_activation_
        As scikit-learn's (``validation_scores_`` holds R² scores).
    network_ : Network
        The trained network.
    """

    _parameter_constraints: dict[str, list[Any]] = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error"})],
    }

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool | int = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: float = 10,
        max_fun: int = 15000,
        dropout: float = 0.0,
        batch_norm: bool = False,
        init: str | None = None,
        clip_norm: float | None = None,
    ) -> None:
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.init = init
        self.clip_norm = clip_norm

    def _head(self) -> tuple[Loss, float]:
        return MeanSquaredError(), self.n_outputs_ / 2

    def _encode(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, NDArray[Any], NDArray[Any]]:
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        self.out_activation_ = "identity"
        Y = (y.reshape(-1, 1) if y.ndim == 1 else y).astype(X.dtype, copy=False)
        return X, Y, Y

    def _decode(self, Y: NDArray[Any]) -> NDArray[Any]:
        return Y.ravel() if Y.shape[1] == 1 else Y

    def _reported(self, loss: float) -> float:
        """scikit-learn records half the squared error averaged (not summed) over the outputs,
        plus the penalty: the objective's data term divided by K."""
        penalty = self._head()[1] * self.network_.penalty()
        return (loss - penalty) / self.n_outputs_ + penalty

    def _score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        pred = self._predict(X, check_input=False)
        if not np.isfinite(pred).all():
            return float("nan")
        return float(r2_score(y, pred, sample_weight=sample_weight))

    def _predict(self, X: Any, check_input: bool = True) -> NDArray[Any]:
        z = self._outputs(X, check_input)
        return z.ravel() if z.shape[1] == 1 else z

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """The predicted values: (n_samples,) for one target column, (n_samples, n_outputs) for several."""
        check_is_fitted(self)
        return self._predict(X)

    @available_if(lambda est: est._check_solver())  # type: ignore[untyped-decorator]
    @_fit_context(prefer_skip_nested_validation=True)  # type: ignore[untyped-decorator]
    def partial_fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> MLPRegressor:
        """One epoch over ``(X, y)``, going on from the current state."""
        result: MLPRegressor = self._fit(X, y, sample_weight, incremental=True)
        return result

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _dense_rows(X: Any, dtype: np.dtype[Any]) -> Array:
    """The rows ``X`` as a dense array of ``dtype`` (a sparse batch is made dense here, one batch at a time)."""
    if hasattr(X, "toarray"):
        X = X.toarray()
    return np.asarray(X, dtype=dtype)


def _copy_state(network: Network) -> dict[str, Array]:
    return {name: value.copy() for name, value in network.state().items()}


def _load_state(network: Network, state: dict[str, Array]) -> None:
    current = network.state()
    for name, value in state.items():
        current[name][...] = value


def _fresh_copy(network: Network) -> Network:
    """A copy of ``network`` (same arrays' values) without its layers' caches."""
    copy = Network.from_config(network.config())
    _load_state(copy, network.state())
    return copy


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds."""
    return value.item() if isinstance(value, np.generic) else value


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters as JSON values; a generator or RandomState given as ``random_state`` is left out."""
    out = {k: _plain(v) for k, v in params.items() if k != "random_state"}
    if isinstance(params["random_state"], numbers.Integral):
        out["random_state"] = int(params["random_state"])
    if isinstance(out["hidden_layer_sizes"], (list, tuple, np.ndarray)):
        out["hidden_layer_sizes"] = [_plain(v) for v in out["hidden_layer_sizes"]]
    if out.get("n_iter_no_change") == np.inf:
        out["n_iter_no_change"] = None  # JSON has no infinity
    if isinstance(out.get("class_weight"), dict):
        raise ValueError("save: a class_weight dict is not stored; set it again after load")
    return out


__all__ = ["MLPClassifier", "MLPRegressor"]
