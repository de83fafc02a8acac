r"""A scikit-learn classifier made of this library's network, optimisers and training loop.

:class:`MLPClassifier` is the training run of ``ml-math-nn train`` behind scikit-learn's
estimator API: its parameters become a :class:`~ml_math_nn.runs.options.TrainConfig` (which
validates them), and the network, optimiser, learning-rate schedule, random generators,
:class:`~ml_math_nn.train.Trainer` and :class:`~ml_math_nn.train.EarlyStopping` come from
the same builders as the CLI's (:mod:`ml_math_nn.runs.builders`).  One implementation, two faces.

It minimises the objective of :class:`~ml_math_nn.network.Network`,

.. math:: L = -\frac{1}{m}\sum_{i=1}^{m} \log \operatorname{softmax}(z_i)_{y_i}
          + \frac{\alpha}{2} \sum_\ell \lVert W_\ell \rVert_F^2,

over shuffled mini-batches of the rows of ``X`` (the features are not scaled here: put a
``StandardScaler`` before it in a ``Pipeline``).
"""

from __future__ import annotations

import dataclasses
import inspect
import numbers
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from .._types import Array, Labels
from ..losses import log_softmax
from ..network import Network
from ..optim import Optimizer
from ..runs.builders import (
    build_network,
    build_optimizer,
    build_schedule,
    run_generators,
    validation_split,
)
from ..runs.options import TrainConfig, config_options
from ..runs.persistence import WEIGHTS, Model, ModelFileError, load_model, save_model
from ..schedules import Schedule
from ..train import Callback, EarlyStopping, EpochRecord, ScheduleStep, Trainer, TrainingDiverged

SKLEARN_NAMES: dict[str, str] = {
    "hidden_layer_sizes": "hidden",
    "alpha": "l2",
    "learning_rate_init": "lr",
    "beta_1": "beta1",
    "beta_2": "beta2",
    "max_iter": "epochs",
    "validation_fraction": "val_size",
    "n_iter_no_change": "patience",
}
"""The one table of aliases: scikit-learn's parameter name -> the training option it sets.
Every other option that is an estimator parameter keeps its own name."""

OWN_DEFAULTS: dict[str, Any] = {"dtype": None, "val_size": 0.1}
"""Options whose estimator default differs from the CLI's: ``dtype`` None follows ``X``;
``validation_fraction`` is scikit-learn's 0.1 (held out only when something needs it)."""

NOT_PARAMETERS: dict[str, str] = {
    "dataset": "fit is given X and y",
    "data_dir": "fit is given X and y",
    "test_file": "fit is given X and y",
    "label_column": "fit is given X and y",
    "subset": "fit is given X and y (pass fewer rows)",
    "test_size": "fit is given X and y; hold out a test set with train_test_split",
    "augment": "it shifts images, and the rows of X carry no image shape",
    "seed": "random_state gives the seed of each fit",
    "checkpoint_every": "a fit writes no run directory",
    "task": "the estimator's class is the task (and y tells a classifier's classes from multi-label)",
}
"""Training options that are not estimator parameters, and why."""

NOTES: dict[str, str] = {
    "hidden": "An int is one hidden layer; ``()`` none.",
    "l2": (
        r":math:`\alpha`, the L2 penalty's weight in the objective above; scikit-learn's own "
        "``alpha`` is divided by the batch size, this one is not."
    ),
    "dtype": "None follows ``X``: float32 input trains float32 parameters, any other input float64.",
    "schedule": (
        "``plateau`` watches the validation loss of a split of ``validation_fraction`` made for it "
        "(the training loss in :meth:`partial_fit`)."
    ),
    "epochs": "Epochs per call to :meth:`fit`.",
    "early_stopping": (
        "Holds out ``validation_fraction`` of the training rows (stratified) and keeps the weights "
        "of the best epoch.  Not used by :meth:`partial_fit`."
    ),
    "val_size": "Held out when ``early_stopping`` or the plateau schedule needs it.",
}
"""What the estimator's docs add to an option's help."""


def estimator_parameters(config_cls: type[TrainConfig] = TrainConfig) -> dict[str, tuple[str, Any]]:
    """Each estimator parameter (but ``random_state`` and ``warm_start``): (option, default).

    Derived from the options' declarations: every option of ``config_cls`` not in
    :data:`NOT_PARAMETERS`, under its scikit-learn alias if :data:`SKLEARN_NAMES` has one,
    with the CLI's default unless :data:`OWN_DEFAULTS` says otherwise.
    """
    aliases = {option: param for param, option in SKLEARN_NAMES.items()}
    return {
        aliases.get(name, name): (name, OWN_DEFAULTS.get(name, opt.default))
        for name, opt in config_options(config_cls).items()
        if name not in NOT_PARAMETERS
    }


def parameter_docs(config_cls: type[TrainConfig] = TrainConfig) -> str:
    """The numpydoc ``Parameters`` entries of :func:`estimator_parameters`, from the options' help."""
    options = config_options(config_cls)
    kinds = {bool: "bool", int: "int", float: "float", str: "str", tuple: "int or sequence of int"}
    lines = []
    for param, (name, default) in estimator_parameters(config_cls).items():
        opt = options[name]
        kind = kinds.get(opt.kind, "object") + (" or None" if opt.optional or default is None else "")
        text = opt.help_text()
        text = text[:1].upper() + text[1:] + "."
        note = NOTES.get(name)
        lines += [f"{param} : {kind}, default={default!r}", f"    {text}{' ' + note if note else ''} [``{name}``]"]
    return "\n".join(lines)


CONFIG_FIELDS: dict[str, str] = {param: option for param, (option, _) in estimator_parameters().items()}
"""Each estimator parameter and the :class:`~ml_math_nn.runs.options.TrainConfig` field (CLI option) it sets.

``random_state`` sets ``seed`` (see :meth:`MLPClassifier.fit`); ``warm_start`` is the
estimator's own."""

_DEFAULTS: dict[str, Any] = {param: default for param, (_, default) in estimator_parameters().items()}
_POSITIONAL = ("hidden_layer_sizes", "activation")
_OWN: dict[str, Any] = {"random_state": None, "warm_start": False}

SOURCE = "MLPClassifier"
"""The ``source`` the config's messages start with, removed when they are re-raised."""


class MLPClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    r"""A fully connected network classifier with scikit-learn's API, trained like ``ml-math-nn train``.

    Samples are rows.  Each hidden width gives ``Dense [-> BatchNorm] -> activation
    [-> Dropout]``, then a ``Dense`` layer gives one logit per class and the softmax
    gives the probabilities.  The features are used as given: scale them with a
    ``StandardScaler`` in a ``Pipeline`` (the CLI scales its data itself; this does not).

    The defaults are those of ``ml-math-nn train``.  Parameters are checked when
    :meth:`fit` runs, by :class:`~ml_math_nn.runs.options.TrainConfig`, and a bad value is a
    one-line ``ValueError`` naming the parameter.  The CLI option each one sets is in
    brackets.  The parameters, their defaults and these entries are derived from the
    options' declarations (:func:`estimator_parameters`, :func:`parameter_docs`).

    Parameters
    ----------
    <<PARAMETERS>>
    random_state : None, int, numpy RandomState or Generator, default=None
        Where the seed of a fit comes from [``seed``]: an int is the seed itself; a
        RandomState or Generator gives one draw per fit; None takes fresh entropy from
        the operating system.  From the seed, independent streams initialise the
        weights, shuffle the epochs, draw dropout masks and split off validation rows.
    warm_start : bool, default=False
        :meth:`fit` goes on from the previous fit's network, optimiser state, schedule
        and generators instead of starting anew; parameters that build those (e.g.
        ``learning_rate_init``) take effect only on a new fit.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (any type :func:`sklearn.utils.multiclass.unique_labels` accepts).
    n_features_in_ : int
        Number of features seen by :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names of ``X`` when it was a DataFrame with string column names.
    seed_ : int
        The seed the first fit drew from ``random_state``.
    network_ : Network
        The trained network (its ``n_out`` is ``len(classes_)``).
    optimizer_ : Optimizer
        The optimiser, with its state.
    history_ : list of dict
        One record per epoch trained, as the CLI's ``metrics.csv`` rows.
    loss_curve_ : list of float
        Per epoch, the mean mini-batch loss (cross-entropy plus L2 penalty, training mode).
    best_loss_ : float or None
        Lowest value of ``loss_curve_``; None with early stopping.
    validation_scores_ : list of float or None
        Per epoch, the accuracy on the validation rows; None without early stopping.
    best_validation_score_ : float or None
        Validation accuracy of the epoch whose weights were kept; None without early stopping.
    n_iter_ : int
        Epochs trained in all (warm starts and :meth:`partial_fit` calls add up).

    Notes
    -----
    Pickle it as any scikit-learn estimator (GridSearchCV, ``joblib`` and ``n_jobs > 1``
    do), but only load pickles you trust: unpickling runs code.  To share a model, use
    :meth:`save` and :meth:`load`, the library's ``.npz`` format, which stores only
    arrays and JSON and is verified when read.
    """

    # Parameters the code reads (set by __init__) and attributes set by fitting, annotated
    # here for the type checker; no class-level values.
    dtype: str | None
    random_state: int | np.random.RandomState | np.random.Generator | None
    warm_start: bool
    classes_: NDArray[Any]
    seed_: int
    network_: Network
    optimizer_: Optimizer
    history_: list[EpochRecord]
    _schedule: Schedule
    _rngs: dict[str, np.random.Generator]

    def __init__(
        self,
        hidden_layer_sizes: int | tuple[int, ...] = (128,),
        activation: str | tuple[str, ...] = "relu",
        **params: Any,
    ) -> None:
        # The other parameters are the options' (see __signature__ below): each is stored
        # as given, as scikit-learn requires, and checked when fit runs.
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        keywords = {**{k: v for k, v in _DEFAULTS.items() if k not in _POSITIONAL}, **_OWN}
        for name in params:
            if name not in keywords:
                raise TypeError(f"{type(self).__name__}.__init__() got an unexpected keyword argument {name!r}")
        for name, default in keywords.items():
            setattr(self, name, params.get(name, default))

    # -- parameters -> TrainConfig ----------------------------------------------------
    def _config(self) -> TrainConfig:
        """The :class:`~ml_math_nn.runs.options.TrainConfig` of the current parameters (seed 0 for now).

        Raises ``ValueError`` naming the estimator parameter(s) of the first invalid option.
        """
        params = self.get_params(deep=False)
        if not isinstance(self.warm_start, (bool, np.bool_)):  # "no" would be true
            raise ValueError(f"{type(self).__name__} parameter warm_start={self.warm_start!r}: must be True or False")
        try:
            return _train_config(params)
        except ValueError as e:
            reason = str(e).removeprefix(f"{SOURCE}: ")
        defaults = type(self)().get_params(deep=False)
        culprits = [name for name in sorted(CONFIG_FIELDS) if _error({**params, name: defaults[name]}) != reason]
        named = ", ".join(f"{name}={params[name]!r}" for name in culprits)
        raise ValueError(f"{type(self).__name__} parameter {named or '(several)'}: {reason}") from None

    def _seed(self) -> int:
        """The seed of a new fit, from ``random_state``."""
        state = self.random_state
        if state is None:
            return int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
        if isinstance(state, (int, np.integer)) and not isinstance(state, bool) and state >= 0:
            return int(state)
        if isinstance(state, np.random.RandomState):
            return int(state.randint(np.iinfo(np.int32).max))
        if isinstance(state, np.random.Generator):
            return int(state.integers(np.iinfo(np.int64).max))
        raise ValueError(
            f"{type(self).__name__} parameter random_state={state!r}: "
            "expected None, an int >= 0, a numpy RandomState or a numpy Generator"
        )

    # -- training ---------------------------------------------------------------------
    def fit(self, X: ArrayLike, y: ArrayLike) -> MLPClassifier:
        """Train on ``X`` (n_samples, n_features) and labels ``y`` for ``max_iter`` epochs.

        A new fit (``warm_start`` off, or nothing fitted yet) draws its seed from
        ``random_state`` and builds the network, optimiser, schedule and generators as
        ``ml-math-nn train`` does; with ``warm_start`` it goes on from the last fit's.

        A loss that becomes NaN or infinite raises
        :class:`~ml_math_nn.train.TrainingDiverged` and leaves the estimator unfitted
        (every fitted attribute removed, an earlier fit's too): its weights would be of no
        use.  Fit again with a smaller ``learning_rate_init``.
        """
        return self._train(X, y, None, incremental=False)

    def partial_fit(self, X: ArrayLike, y: ArrayLike, classes: ArrayLike | None = None) -> MLPClassifier:
        """One epoch on ``(X, y)``, going on from the current state.

        ``classes`` (every label there will ever be) is required on the first call and
        optional afterwards, when it must be the same.  Early stopping does not apply.
        A diverging loss leaves the estimator unfitted, as in :meth:`fit`.
        """
        return self._train(X, y, classes, incremental=True)

    def _train(self, X: ArrayLike, y: ArrayLike, classes: ArrayLike | None, incremental: bool) -> MLPClassifier:
        name = type(self).__name__
        config = self._config()
        fresh = not hasattr(self, "network_") or not (incremental or self.warm_start)
        if incremental and fresh and classes is None:
            raise ValueError(f"{name}.partial_fit needs classes= (every label) on its first call")
        dtype = self.network_.dtype if not fresh else None
        # float32 stays float32, float64 stays float64, anything else becomes float64 ...
        Xv, yv = validate_data(self, X, y, reset=fresh, dtype=[np.float64, np.float32])
        # ... unless the dtype parameter or an earlier fit says otherwise.
        dtype = dtype or np.dtype(config.dtype if self.dtype is not None else Xv.dtype)
        Xv = Xv.astype(dtype, copy=False)
        codes = self._codes(yv, classes, fresh)

        if fresh:
            config = dataclasses.replace(config, dtype=dtype.name, seed=self._seed())
            self._start(config)
        holdout = not incremental and (config.early_stopping or config.schedule == "plateau")
        eval_sets = {}
        if holdout:
            Xv, X_val, codes, y_val = validation_split(Xv, codes, config.val_size, self.seed_)
            eval_sets["val"] = (X_val, y_val)
        stopper = EarlyStopping(config.monitor, config.patience) if holdout and config.early_stopping else None
        trainer = Trainer(
            self.network_, self.optimizer_, config.batch_size, self._rngs["shuffle"], clip_norm=config.clip_norm
        )
        trainer.history = self.history_  # appended to in place: warm starts and partial fits add up
        callbacks: list[Callback] = [ScheduleStep(self._schedule, "val_loss" if holdout else "train_loss")]
        if stopper is not None:
            callbacks.append(stopper)
        epochs = 1 if incremental else config.epochs
        try:
            trainer.fit(Xv, codes, len(self.history_) + epochs, eval_sets, callbacks, eval_train=False)
        except TrainingDiverged:
            self._forget()
            raise
        self._summarise(stopper)
        return self

    def _forget(self) -> None:
        """Back to unfitted: drop every attribute a fit sets (scikit-learn's test of fitted is
        an attribute ending in ``_``) and the private training state."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")] + ["_schedule", "_rngs"]:
            self.__dict__.pop(name, None)

    def _codes(self, y: NDArray[Any], classes: ArrayLike | None, fresh: bool) -> Labels:
        """Class indices ``0..K-1`` of the labels ``y``; a fresh fit sets ``classes_`` first."""
        name = type(self).__name__
        check_classification_targets(y)
        labels = unique_labels(classes if classes is not None else y)
        if fresh:
            if len(labels) < 2:
                raise ValueError(f"{name} needs at least 2 classes to train, got 1 class: {labels.tolist()[0]!r}")
            self.classes_ = labels
        elif classes is not None and not np.array_equal(labels, self.classes_):
            raise ValueError(
                f"{name}.partial_fit: classes {labels.tolist()} differ from classes_ {self.classes_.tolist()}"
            )
        unknown = np.setdiff1d(unique_labels(y), self.classes_)
        if unknown.size:
            raise ValueError(
                f"{name}: y has labels {unknown.tolist()} that are not in classes_ {self.classes_.tolist()}"
            )
        return np.searchsorted(self.classes_, y)

    def _start(self, config: TrainConfig) -> None:
        """Build what a new fit trains, from ``config`` as the CLI does."""
        self.seed_ = config.seed
        self._rngs = run_generators(config.seed)
        self.network_ = build_network(config, self.n_features_in_, len(self.classes_), self._rngs["dropout"])
        self.optimizer_ = build_optimizer(config)
        self._schedule = build_schedule(config, self.optimizer_)
        self.history_ = []

    def _summarise(self, stopper: EarlyStopping | None) -> None:
        """The scikit-learn style attributes, from the epoch records."""
        self.n_iter_ = len(self.history_)
        self.loss_curve_ = [r["train_loss"] for r in self.history_]
        self.best_loss_ = None if stopper is not None else min(self.loss_curve_, default=None)
        self.validation_scores_ = None
        self.best_validation_score_ = None
        if stopper is not None:
            self.validation_scores_ = [r["val_acc"] for r in self.history_ if "val_acc" in r]
            self.best_validation_score_ = self.history_[stopper.best_epoch - 1]["val_acc"]

    # -- prediction -------------------------------------------------------------------
    def _features(self, X: ArrayLike) -> Array:
        check_is_fitted(self)
        Xv: Array = validate_data(self, X, reset=False, dtype=self.network_.dtype)
        return Xv

    def predict_proba(self, X: ArrayLike) -> Array:
        r"""Class probabilities :math:`\operatorname{softmax}(z)`, one row per sample, columns as ``classes_``."""
        X = self._features(X)
        return self.network_.predict_proba(X)

    def predict_log_proba(self, X: ArrayLike) -> Array:
        r"""Log-probabilities :math:`z - \log\sum_j e^{z_j}` from the logits :math:`z` (never ``-inf``)."""
        X = self._features(X)
        return log_softmax(self.network_.forward(X))

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """The most probable class label of each row."""
        X = self._features(X)
        return self.classes_[self.network_.predict(X)]

    # -- pickling ---------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """The pickled state, with the network's arrays but none of its layers' caches.

        Each layer keeps what its last forward pass needs for backward, the last rows
        predicted included: a fresh copy of the network from its config and state has none.
        """
        state: dict[str, Any] = super().__getstate__()
        if "network_" in state:
            network = Network.from_config(self.network_.config())
            for name, value in network.state().items():
                value[...] = self.network_.state()[name]
            network.set_rng(self._rngs["dropout"])  # the same generator object, so pickling keeps it shared
            state["network_"] = network
        return state

    # -- the library's model files ----------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write the fitted model into ``directory`` in the library's format (model.npz + model.json).

        The file holds arrays and JSON only, is written atomically and is verified when
        read: the safe way to share a model, unlike a pickle.  ``ml-math-nn predict``
        reads it too (with the class labels as strings).
        """
        check_is_fitted(self)
        meta = {
            "estimator": type(self).__name__,
            "params": _json_params(self.get_params(deep=False)),
            "classes": self.classes_.tolist(),
            "feature_names_in": getattr(self, "feature_names_in_", np.array([])).tolist(),
            "seed": self.seed_,
            "history": self.history_,
        }
        save_model(directory, Model(self.network_, [str(c) for c in self.classes_], None, meta))

    def to_onnx(self, path: str | Path) -> Path:
        """Write the fitted model as an ONNX file (:mod:`ml_math_nn.integrations.onnx_export`).

        The graph takes the rows of ``X`` as :meth:`predict` does (unscaled) and gives
        ``label`` (one of ``classes_``) and ``probabilities``; needs the onnx package.
        """
        from .onnx_export import save_onnx

        check_is_fitted(self)
        return save_onnx(Model(self.network_, [str(c) for c in self.classes_]), path, self.classes_)

    @classmethod
    def load(cls, directory: str | Path) -> MLPClassifier:
        """The estimator saved by :meth:`save` in ``directory``, ready to predict.

        Training it further (``warm_start`` or :meth:`partial_fit`) starts with a fresh
        optimiser state and generators, which the file does not hold.  Raises
        :class:`~ml_math_nn.runs.persistence.ModelFileError` for a file that is not a saved
        estimator or whose estimator metadata does not fit its network.
        """
        model = load_model(directory)
        path = Path(directory) / WEIGHTS
        meta = model.meta
        if meta.get("estimator") != cls.__name__:
            raise ModelFileError(f"{path}: not a saved {cls.__name__} (no estimator parameters in the model file)")
        # The metadata is not checksummed: anything in it that does not fit is refused here.
        try:
            est = cls._from_meta(meta, model.network)
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"{path}: invalid {cls.__name__} metadata ({e})") from None
        return est

    @classmethod
    def _from_meta(cls, meta: dict[str, Any], network: Network) -> MLPClassifier:
        """The estimator of a model file's metadata and network (errors for :meth:`load` to name)."""
        # JSON made the tuples lists; get_params gives back what was set.
        params: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["params"].items()}
        est = cls(**params)
        config = est._config()
        # The width out of each layer with weights (the dense ones), but the output layer.
        shapes = network.shapes()
        widths = [out[-1] for layer, (_, out) in zip(network.layers, shapes, strict=True) if layer.weight_names][:-1]
        if widths != list(config.hidden):
            raise ValueError(f"hidden_layer_sizes {config.hidden} but the network's hidden widths are {widths}")
        classes = np.asarray(meta["classes"])
        if classes.ndim != 1 or len(classes) != network.n_out or not np.array_equal(np.unique(classes), classes):
            raise ValueError(f"classes {meta['classes']!r} are not {network.n_out} distinct labels in sorted order")
        est.classes_ = classes
        est.n_features_in_ = network.n_in
        names = meta["feature_names_in"]
        if names:
            if not (isinstance(names, list) and len(names) == network.n_in and all(isinstance(n, str) for n in names)):
                raise ValueError(f"feature_names_in is not {network.n_in} column names")
            est.feature_names_in_ = np.asarray(names, dtype=object)
        est._start(dataclasses.replace(config, dtype=network.dtype.name, seed=_seed_value(meta["seed"])))
        est.network_ = network
        est.network_.set_rng(est._rngs["dropout"])
        est.history_ = [{str(k): float(v) for k, v in r.items()} for r in meta["history"]]
        est._summarise(None)
        return est


def _signature() -> inspect.Signature:
    """``MLPClassifier.__init__``'s signature: two positional parameters, then every other
    option's parameter and ``random_state``, ``warm_start``, keyword-only (scikit-learn
    reads the parameters from it)."""
    keyword, positional = inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter("self", positional)]
    params += [inspect.Parameter(name, positional, default=_DEFAULTS[name]) for name in _POSITIONAL]
    params += [inspect.Parameter(n, keyword, default=d) for n, d in _DEFAULTS.items() if n not in _POSITIONAL]
    params += [inspect.Parameter(n, keyword, default=d) for n, d in _OWN.items()]
    return inspect.Signature(params, return_annotation=None)


MLPClassifier.__init__.__signature__ = _signature()  # type: ignore[attr-defined]
MLPClassifier.__doc__ = (MLPClassifier.__doc__ or "").replace(
    "<<PARAMETERS>>", parameter_docs().replace("\n", "\n    ")
)


def _train_config(params: dict[str, Any]) -> TrainConfig:
    """The config of the estimator parameters ``params`` (``ValueError`` from the config's checks)."""
    values = {CONFIG_FIELDS[k]: _plain(v) for k, v in params.items() if k in CONFIG_FIELDS and v is not None}
    hidden = values.get("hidden")
    if isinstance(hidden, int):
        values["hidden"] = (hidden,)
    elif isinstance(hidden, (list, tuple, np.ndarray)):
        values["hidden"] = tuple(_plain(h) for h in hidden)
    if "dtype" in values:
        try:
            with warnings.catch_warnings():  # numpy deprecates some aliases ("a"); the config refuses them anyway
                warnings.simplefilter("ignore", DeprecationWarning)
                values["dtype"] = np.dtype(values["dtype"]).name
        except TypeError:
            pass  # left as given, for the config's message
    try:
        return TrainConfig.from_mapping(values, SOURCE)
    except TypeError as e:  # a comparison of a badly typed value the type checks let through
        raise ValueError(f"{SOURCE}: {e}") from None


def _error(params: dict[str, Any]) -> str | None:
    """The message of ``_train_config(params)``'s ``ValueError``; None when the config is valid."""
    try:
        _train_config(params)
    except ValueError as e:
        return str(e).removeprefix(f"{SOURCE}: ")
    return None


def _seed_value(value: Any) -> int:
    """A seed from a model file: an int >= 0 (``ValueError`` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"seed {value!r} is not an int >= 0")
    return value


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (grids of ``np.arange`` values pass these)."""
    return value.item() if isinstance(value, np.generic) else value


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters as JSON values; a generator given as ``random_state`` is left out."""
    out = {k: _plain(v) for k, v in params.items() if k != "random_state"}
    if isinstance(params["random_state"], numbers.Integral):
        out["random_state"] = int(params["random_state"])
    for key in ("hidden_layer_sizes", "activation"):
        if isinstance(out[key], (list, tuple, np.ndarray)):
            out[key] = [_plain(v) for v in out[key]]
    if out["dtype"] is not None:
        out["dtype"] = np.dtype(out["dtype"]).name
    return out
