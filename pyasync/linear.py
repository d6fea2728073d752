"""AsyncSGDClassifier and AsyncSGDRegressor: drop-in counterparts of
scikit-learn's SGDClassifier and SGDRegressor trained by lock-free
asynchronous workers."""
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.utils import check_random_state, compute_class_weight
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import (_check_sample_weight, check_is_fitted,
                                      validate_data)

from . import _sgd
from .benchmark import usable_cores
from .distributed.ray_backend import check_ray_params, ray_engine
from .momentum import fit_geometric, total_momentum
from .staleness import StalenessStats, simulated_schedule

CLASSIFICATION_LOSSES = ("hinge", "log_loss", "modified_huber", "squared_hinge",
                         "perceptron", "squared_error", "huber",
                         "epsilon_insensitive", "squared_epsilon_insensitive")
REGRESSION_LOSSES = ("squared_error", "huber", "epsilon_insensitive",
                     "squared_epsilon_insensitive")
PENALTIES = ("l2", "l1", "elasticnet", None)
LEARNING_RATES = ("constant", "optimal", "invscaling", "adaptive") + _sgd.PASSIVE_AGGRESSIVE
UPDATES = ("racy", "atomic", "locked")
ASYNCHRONY = ("threads", "simulated", "ray")
# scikit-learn's smaller intercept step on sparse data
SPARSE_INTERCEPT_DECAY = 0.01


def resolve_n_jobs(n_jobs):
    """Worker threads: None -> 1, -1 -> all cores this process may run on
    (its CPU affinity), -k -> all but k-1."""
    if n_jobs is None:
        return 1
    if not isinstance(n_jobs, Integral) or isinstance(n_jobs, bool) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer or None, got {n_jobs!r}")
    if n_jobs < 0:
        return max(1, usable_cores() + 1 + int(n_jobs))
    return int(n_jobs)


MAX_THREADS = 4096  # OS threads a threads fit starts (beyond: memory, not staleness)


def check_threads(n_jobs):
    """A ValueError where the threads engine would start more than
    MAX_THREADS threads."""
    if n_jobs > MAX_THREADS:
        raise ValueError(f"n_jobs must be at most {MAX_THREADS} threads for "
                         f"asynchrony='threads', got {n_jobs} (more workers: "
                         f"asynchrony='simulated' with n_workers)")


def mean_over_classes(curves):
    """Per epoch, the mean over the one-vs-rest problems' curves that reach
    it (each class's fit may stop at its own epoch)."""
    length = max(len(c) for c in curves)
    return [float(np.mean([c[i] for c in curves if len(c) > i])) for i in range(length)]


def _check_real(name, value, low=None, high=None, low_open=False,
                high_open=False):
    if isinstance(value, bool) or not isinstance(value, Real) \
            or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")


def _check_int(name, value, low, high=None):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value!r}")


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a bool, got {value!r}")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _finite_init(values, name):
    """A starting point as float64; a ValueError naming it where it holds
    NaN or infinity (no epoch could recover from there)."""
    values = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN or infinity")
    return values


class _BaseAsyncSGD(BaseEstimator):
    _losses = CLASSIFICATION_LOSSES

    def sparsify(self):
        """Stores coef_ as a scipy.sparse CSR matrix (one row a model), as
        SGDClassifier / SGDRegressor do: cheaper predictions where most
        coefficients are zero (an L1 or elastic-net penalty)."""
        check_is_fitted(self)
        self.coef_ = sp.csr_matrix(np.atleast_2d(self._dense_coef()))  # twice: the same
        return self

    def densify(self):
        """Stores coef_ as a numpy array again (undoes `sparsify`)."""
        check_is_fitted(self)
        self.coef_ = self._dense_coef()
        return self

    def _dense_coef(self):
        """coef_ as an array of its fitted shape, whether sparsified or not;
        a fit that goes on from it (warm_start, partial_fit) starts here."""
        if not sp.issparse(self.coef_):
            return self.coef_
        coef = self.coef_.toarray()
        return coef if self._is_classifier else coef.ravel()

    def _rows_that_step(self, X, train):
        """The training rows, less those of zero norm under PA-I: scikit-learn
        skips them (no step, no decay, no tick of its clock)."""
        if self.learning_rate != "pa1":
            return train
        squares = X.multiply(X).sum(axis=1) if sp.issparse(X) else np.einsum("ij,ij->i", X, X)
        stepping = train[np.asarray(squares).ravel()[train] > 0]
        return stepping if stepping.size else train

    def _clock_after(self, updates, n_samples, t_start):
        """t_ after a fit that started at `t_start` and ends after `updates`
        updates in all: 1 + updates, as scikit-learn counts; where rows were
        left out of the steps (early stopping's validation rows, PA-I's
        zero rows) it counts them too (t_start + n_iter_ x n_samples), and
        a later partial_fit's schedule goes on from there, as in
        SGDClassifier."""
        if self.early_stopping or self.learning_rate == "pa1":
            return float(t_start) + float(self.n_iter_) * n_samples
        return float(updates + 1)

    def _validate_hyperparameters(self, for_partial_fit=False):
        _check_choice("loss", self.loss, self._losses)
        _check_choice("penalty", self.penalty, PENALTIES)
        _check_choice("learning_rate", self.learning_rate, LEARNING_RATES)
        _check_choice("update", self.update, UPDATES)
        _check_choice("asynchrony", self.asynchrony, ASYNCHRONY)
        _check_real("alpha", self.alpha, 0.0)
        if self.l1_ratio is not None:
            _check_real("l1_ratio", self.l1_ratio, 0.0, 1.0)
        elif self.penalty == "elasticnet":
            raise ValueError("l1_ratio must be set when penalty is 'elasticnet'")
        _check_real("epsilon", self.epsilon, 0.0)
        _check_real("eta0", self.eta0, 0.0, low_open=True)
        _check_real("power_t", self.power_t)
        if isinstance(self.momentum, str):
            if self.momentum != "auto":
                raise ValueError(f"momentum must be a number in (-1, 1) or 'auto', got "
                                 f"{self.momentum!r}")
        else:
            _check_real("momentum", self.momentum, -1.0, 1.0, True, True)
        if self.target_momentum is not None:
            _check_real("target_momentum", self.target_momentum, 0.0, 1.0, False, True)
            if self.momentum != "auto":
                raise ValueError("target_momentum is only used with momentum='auto'")
        _check_real("validation_fraction", self.validation_fraction, 0.0, 1.0,
                    True, True)
        _check_int("max_iter", self.max_iter, 1)
        _check_int("n_iter_no_change", self.n_iter_no_change, 1)
        if not isinstance(self.verbose, (bool, np.bool_)):
            _check_int("verbose", self.verbose, 0)
        _check_bool("warm_start", self.warm_start)
        if self.tol is not None:
            _check_real("tol", self.tol, 0.0)
        _check_bool("fit_intercept", self.fit_intercept)
        _check_bool("shuffle", self.shuffle)
        class_weight = getattr(self, "class_weight", None)  # the classifier's
        if not (class_weight is None or isinstance(class_weight, dict)
                or isinstance(class_weight, str) and class_weight == "balanced"):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict of weights "
                             f"by class, got {class_weight!r}")
        if not isinstance(self.average, (bool, np.bool_)):
            _check_int("average", self.average, 0, _sgd.MAX_UPDATES)
        if self.learning_rate == "optimal" and self.alpha == 0:
            raise ValueError("alpha must be > 0 since learning_rate is 'optimal'. "
                             "alpha is used to compute the optimal learning rate.")
        if self.early_stopping and for_partial_fit:
            raise ValueError("early_stopping should be False with partial_fit")
        if self.learning_rate in _sgd.PASSIVE_AGGRESSIVE:
            pa_loss = "hinge" if self._is_classifier else "epsilon_insensitive"
            if self.loss != pa_loss:
                raise ValueError(f"Learning rate {self.learning_rate!r} only works with "
                                 f"loss {pa_loss!r}.")
            if self.momentum == "auto" or self.target_momentum is not None:
                raise ValueError(
                    f"momentum='auto' and target_momentum need a step the fit sets; "
                    f"learning_rate={self.learning_rate!r} takes each row's own. Use a "
                    "fixed momentum.")
        n_jobs = resolve_n_jobs(self.n_jobs)
        return self._engine(n_jobs)

    def _engine(self, n_jobs):
        """The engine description the epoch loop passes to the core."""
        n_workers = n_jobs if self.n_workers is None else self.n_workers
        _check_int("n_workers" if self.n_workers is not None else "n_jobs", n_workers, 1,
                   _sgd.MAX_INT)  # checked where unused too
        schedule = simulated_schedule(self.staleness, self.delay, _sgd.MAX_INT - 1,
                                      self.asynchrony == "simulated")
        check_ray_params(self.local_steps, self.ray_address)
        if self.asynchrony == "threads":
            check_threads(n_jobs)
            return {"kind": "threads", "n_threads": n_jobs, "update": self.update,
                    "staleness_every": _sgd.STALENESS_SAMPLE_EVERY}
        # n_jobs: the threads momentum="auto" may simulate on
        if self.asynchrony == "ray":
            return dict(ray_engine(n_workers, self.local_steps, self.ray_address),
                        n_jobs=n_jobs)
        return {"kind": "simulated", "seed": 0, **schedule,
                "n_workers": schedule["n_workers"] or int(n_workers), "n_jobs": n_jobs}

    def _loss_param(self):
        if self.loss == "hinge":
            return 1.0
        if self.loss == "perceptron":
            return 0.0
        if self.loss == "squared_hinge":
            return 1.0
        if self.loss == "modified_huber":
            return 0.0
        return float(self.epsilon)

    def _engine_params(self, sparse):
        l2, l1 = _sgd.penalty_strengths(self.penalty, float(self.alpha),
                                        float(self.l1_ratio or 0.0))  # None: unused
        loss_param = self._loss_param()
        return {
            "loss": self.loss, "loss_param": loss_param,
            "alpha": float(self.alpha), "l2": l2, "l1": l1,
            "learning_rate": self.learning_rate, "eta0": float(self.eta0),
            "power_t": float(self.power_t),
            "optimal_init": (_sgd.optimal_init(self.loss, loss_param, self.alpha)
                             if self.learning_rate == "optimal" else 0.0),
            "momentum": self.momentum if self.momentum == "auto" else float(self.momentum),
            "fit_intercept": bool(self.fit_intercept),
            "intercept_decay": SPARSE_INTERCEPT_DECAY if sparse else 1.0,
            "average": int(self.average),
        }

    # ---- averaged SGD (average=True or an update number): coef_ and
    # intercept_ show the mean of the iterates from update `average` on;
    # the last iterates are kept to go on from

    def _continue_from(self):
        """The model a partial_fit goes on from: the last SGD iterates
        under averaged SGD (coef_ shows their mean), else coef_."""
        if self.average and getattr(self, "_standard_coef", None) is not None:
            return self._standard_coef, self._standard_intercept
        return self._dense_coef(), self.intercept_

    def _average_start(self, continued, n_models, n_features):
        """The sums of the iterates averaged so far (one row a model: its
        weights, then its intercept) and their counts, that a fit adds
        to: a partial_fit's going on, or none."""
        sums = getattr(self, "_average_sum", None)
        if continued and self.average and sums is not None \
                and sums.shape == (n_models, n_features + 1):
            return sums.copy(), self._average_count.copy()
        return np.zeros((n_models, n_features + 1)), np.zeros(n_models, dtype=np.int64)

    def _shown_model(self, coef, intercept, sums, counts):
        """(coef, intercept) as a fit leaves them (one row a model): under
        averaged SGD each model's mean iterate where it averaged any, as
        SGDClassifier's (average <= t_ - 1), its last iterate before; the
        last iterates and the sums kept for a partial_fit."""
        if not self.average:
            self._standard_coef = self._standard_intercept = self._average_sum = None
            return coef, intercept
        self._standard_coef, self._standard_intercept = coef.copy(), intercept.copy()
        self._average_sum, self._average_count = sums, counts
        shown_coef, shown_intercept = coef.copy(), intercept.copy()
        for k in np.flatnonzero(counts > 0):
            shown_coef[k] = sums[k, :-1] / counts[k]
            shown_intercept[k] = sums[k, -1] / counts[k]
        return shown_coef, shown_intercept

    # 64-bit sparse indices are taken (load_svmlight_file gives them) and
    # narrowed for the engine: a column index always fits 32 bits here
    _VALIDATION = dict(accept_sparse="csr", dtype=[np.float64, np.float32],
                       order="C", accept_large_sparse=True)

    def _validate_X(self, X, reset=False):
        X = _sgd.check_sparse_structure(X)
        return self._narrow(validate_data(self, X, reset=reset, **self._VALIDATION))

    def _validate_Xy(self, X, y, reset=True):
        X = _sgd.check_sparse_structure(X)
        X, y = validate_data(self, X, y, reset=reset, **self._VALIDATION)
        return self._narrow(X), y

    @staticmethod
    def _narrow(X):
        if sp.issparse(X) and X.shape[1] > _sgd.MAX_INT:
            raise ValueError(f"X has {X.shape[1]} columns; at most {_sgd.MAX_INT} are "
                             "supported")
        return X

    def _split(self, y, sample_weight, random_state):
        """Training rows and the validation rows of early stopping."""
        n = y.shape[0]
        if not self.early_stopping:
            return np.arange(n), None
        if self._is_classifier:
            splitter = StratifiedShuffleSplit(test_size=self.validation_fraction,
                                              random_state=random_state)
        else:
            splitter = ShuffleSplit(test_size=self.validation_fraction,
                                    random_state=random_state)
        train, val = next(splitter.split(np.zeros((n, 1)), y))
        if val.shape[0] == 0 or train.shape[0] == 0:
            raise ValueError(
                f"Splitting {n} samples with validation_fraction="
                f"{self.validation_fraction} leaves an empty training or "
                "validation set; change validation_fraction.")
        if sample_weight is not None and not np.any(sample_weight[val] > 0):
            raise ValueError("The sample weights for validation set are all zero, "
                             "consider using a different random state.")
        # the training rows in data order, as SGDClassifier skips the
        # validation rows (shuffle=False visits them in that order)
        return np.sort(train), val

    def _fit_problem(self, X, y, sample_weight, coef, intercept, velocity,
                     intercept_velocity, train_idx, score_fn, max_iter, seed,
                     engine, params, t, measured=None, average=None):
        return _sgd.fit_linear(
            X, y, sample_weight, params=params, coef=coef, intercept=intercept,
            velocity=velocity, intercept_velocity=intercept_velocity,
            train_idx=train_idx, t0=int(t) - 1, max_iter=max_iter,
            tol=self.tol, n_iter_no_change=self.n_iter_no_change,
            eta0=float(self.eta0), seed=seed, shuffle=self.shuffle,
            engine=engine, score_fn=score_fn,
            verbose=self.verbose, target_momentum=self.target_momentum,
            measured_staleness=measured, average=average)

    def _set_momentum_attributes(self, explicit):
        """momentum_ (explicit, the last chosen under "auto"), the implicit
        momentum of the measured staleness (geometric fit) and their sum."""
        self.momentum_ = float(explicit)
        self.implicit_momentum_ = (fit_geometric(self.staleness_).implicit_momentum
                                   if self.staleness_.n_measured else 0.0)
        self.total_momentum_ = total_momentum(self.momentum_, self.implicit_momentum_)

    def _kept_momenta(self):
        """The momenta (one a problem) a partial_fit call keeps under
        momentum="auto" instead of choosing: each call is an epoch, and
        the momentum is chosen again before epochs 0, 1, 2, 4, 8, ... as
        in fit (a choice costs a simulation: most calls of a long stream
        are spared it). None where the call chooses."""
        if self.momentum != "auto" or self.target_momentum is not None:
            return None
        epoch = getattr(self, "_epochs_done", 0)
        if (epoch & (epoch - 1)) == 0 or len(getattr(self, "_auto_momenta", ())) == 0:
            return None
        return self._auto_momenta

    def _remember_momenta(self, results, continued):
        """After a fit call: its epochs (counted on from the last call's
        where it `continued` it) and the momentum of each problem."""
        self._epochs_done = (getattr(self, "_epochs_done", 0) if continued else 0) + self.n_iter_
        self._auto_momenta = ([float(r["momentum"]) for r in results]
                              if self.momentum == "auto" else [])

    def _warn_if_not_converged(self, max_iter, predicting_zero=None):
        if self.tol is not None and self.n_iter_ == max_iter:
            warnings.warn("Maximum number of iteration reached before "
                          "convergence. Consider increasing max_iter to "
                          "improve the fit.", ConvergenceWarning)
        _sgd.warn_if_climbed(self.loss_curve_, "eta0", predicting_zero)

    def __sklearn_is_fitted__(self):
        # validation sets n_features_in_ before a fit can fail
        return hasattr(self, "coef_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class AsyncSGDClassifier(ClassifierMixin, _BaseAsyncSGD):
    """Linear classifier trained by lock-free asynchronous SGD.

    Parameters follow :class:`sklearn.linear_model.SGDClassifier`; on top:

    momentum : float in (-1, 1) or "auto", default=0.0
        Explicit (heavy-ball) momentum over the global sequence of updates,
        one velocity shared by all workers. Negative values are allowed:
        asynchrony itself adds momentum (about 1 - 1/M for M workers).
        "auto" re-chooses it during the fit by simulating asynchronous SGD
        on a small surrogate of the problem around the current weights,
        under the measured staleness (see ``pyasync._sgd.AutoMomentum``);
        an epoch that blows up (not finite, or ten times the loss at the
        start and at the best epoch) is undone with a lower momentum, its
        loss still in ``loss_curve_`` (a climb the simulation showed under
        every momentum is the step's: undone once, the momentum kept). Its
        simulations run on ``n_jobs`` threads, with the same result.
    target_momentum : float in [0, 1), default=None
        With momentum="auto": hold the total momentum (explicit + measured
        implicit) at this value instead of the model-based choice, as far
        as explicit momentum in [-0.9, 0.9] reaches (a UserWarning gives
        the total held where it does not).
    update : {"racy", "atomic", "locked"}, default="racy"
        How workers write the shared model: racy (Hogwild, a concurrent
        write may be lost), atomic (compare-and-swap, none is lost) or
        locked (one mutex, the serialised baseline).
    asynchrony : {"threads", "simulated", "ray"}, default="threads"
        The engine: ``n_jobs`` OS threads, ``n_workers`` virtual workers
        simulated deterministically in one thread, or ``n_workers`` Ray
        worker actors around a parameter-server actor (``pip install
        "pyasync-sgd[ray]"``).
    n_workers : int, default=None
        Simulated or Ray workers M (None: n_jobs).
    staleness : "exponential", "round_robin", "fixed" or a histogram
        The simulated scheduler: a uniformly random worker writes next
        (the queueing model: staleness geometric, mean M - 1), workers in
        turn (staleness M - 1), a fixed ``delay``, or a staleness histogram
        (counts, or a fit's ``staleness_``) replayed.
    delay : int, default=None
        The staleness of ``staleness="fixed"``.
    local_steps : int, default=64
        Ray: the updates a worker runs on its copy of the weights between
        its pull and its push (fewer messages against fresher weights).
    ray_address : str, default=None
        Ray: the cluster to connect to ("auto", "ray://host:10001", ...);
        None starts a local Ray when none is running.

    Multi-class problems are fit one-vs-rest, one class after another, each
    with all ``n_jobs`` threads: asynchrony is within one model's updates,
    which is what the staleness measures, and each model stays in cache.

    Attributes besides scikit-learn's: ``staleness_`` (StalenessStats),
    ``loss_curve_`` (mean training loss per epoch; the mean over classes),
    ``momentum_curve_`` (the explicit momentum each epoch ran with: under
    ``momentum="auto"``, the choices; the mean over classes).
    """

    _is_classifier = True

    def __init__(self, loss="hinge", *, penalty="l2", alpha=0.0001,
                 l1_ratio=0.15, fit_intercept=True, max_iter=1000, tol=1e-3,
                 shuffle=True, verbose=0, epsilon=0.1, n_jobs=None,
                 random_state=None, learning_rate="optimal", eta0=0.01,
                 power_t=0.5, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, class_weight=None, warm_start=False,
                 average=False, momentum=0.0, update="racy",
                 asynchrony="threads", n_workers=None, staleness="exponential",
                 delay=None, target_momentum=None, local_steps=64,
                 ray_address=None):
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.verbose = verbose
        self.epsilon = epsilon
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.average = average
        self.momentum = momentum
        self.update = update
        self.asynchrony = asynchrony
        self.n_workers = n_workers
        self.staleness = staleness
        self.delay = delay
        self.target_momentum = target_momentum
        self.local_steps = local_steps
        self.ray_address = ray_address

    @_sgd.unchanged_on_failure
    def fit(self, X, y, coef_init=None, intercept_init=None, sample_weight=None):
        """Fit the model from scratch (or from the last fit with
        warm_start=True), up to max_iter epochs."""
        engine = self._validate_hyperparameters()
        X, y = self._validate_Xy(X, y, reset=True)
        classes = unique_labels(y)
        if classes.shape[0] < 2:
            raise ValueError(
                "The number of classes has to be greater than one; got "
                f"{classes.shape[0]} class")
        if self.warm_start and hasattr(self, "coef_"):
            if classes.shape[0] != self.classes_.shape[0] or \
                    np.any(classes != self.classes_):
                raise ValueError("warm_start needs the same classes as before")
            # an explicit init wins over the fitted model, as in SGDClassifier
            coef_init = self._dense_coef() if coef_init is None else coef_init
            intercept_init = self.intercept_ if intercept_init is None else intercept_init
        init = self._check_init(coef_init, intercept_init, classes, X.shape[1])
        self._fit(X, y, sample_weight, classes, init, None, 1.0, self.max_iter, engine)
        self._warn_if_not_converged(self.max_iter)
        return self

    @_sgd.unchanged_on_failure
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y); `classes` is required on the first call."""
        engine = self._validate_hyperparameters(for_partial_fit=True)
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            raise ValueError(
                "class_weight 'balanced' is not supported for partial_fit: one batch's "
                "class frequencies are not the data's. Compute the weights once, "
                "compute_class_weight('balanced', classes=classes, y=y) on a large "
                "enough sample of the targets, and pass them as class_weight.")
        first = not hasattr(self, "coef_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is not None:
            classes = unique_labels(classes)
            if not first and not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"`classes={classes!r}` is not the same as on the last call to "
                    f"partial_fit, was: {self.classes_!r}")
            if classes.shape[0] < 2:
                raise ValueError("classes must hold at least two classes")
        X, y = self._validate_Xy(X, y, reset=first)
        if first:
            init = self._check_init(None, None, classes, X.shape[1])
            velocity, t, momenta = None, 1.0, None
        else:
            classes, init = self.classes_, self._continue_from()
            velocity, t, momenta = self._velocity, self.t_, self._kept_momenta()
        unknown = np.setdiff1d(np.unique(y), classes)
        if unknown.size:
            raise ValueError(f"y holds labels not in classes: {unknown[:5]!r}")
        self._fit(X, y, sample_weight, classes, init, velocity, t, 1, engine, momenta)
        return self

    def _check_init(self, coef_init, intercept_init, classes, n_features):
        n_models = 1 if classes.shape[0] == 2 else classes.shape[0]
        coef = np.zeros((n_models, n_features))
        intercept = np.zeros(n_models)
        if coef_init is not None:
            coef_init = _finite_init(coef_init, "coef_init")
            if n_models == 1:  # binary: any shape of n_features values, as scikit-learn
                coef_init = coef_init.reshape(1, -1)
            if coef_init.shape != coef.shape:  # one row a class, never reshaped into it
                raise ValueError("Provided coef_init does not match dataset.")
            coef[:] = coef_init
        if intercept_init is not None:
            intercept_init = _finite_init(intercept_init, "intercept_init").ravel()
            if intercept_init.shape != intercept.shape:
                raise ValueError("Provided intercept_init does not match dataset.")
            intercept[:] = intercept_init
        return coef, intercept

    def _fit(self, X, y, sample_weight, classes, init, velocity, t, max_iter,
             engine, momenta=None):
        """Fits every one-vs-rest problem, then commits the fitted state:
        a fit that fails (diverges, is interrupted) changes nothing."""
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        class_weight = (None if self.class_weight is None else
                        compute_class_weight(self.class_weight, classes=classes, y=y))
        coef, intercept = (np.array(a, dtype=np.float64) for a in init)
        velocity_given = velocity is not None  # a partial_fit going on
        if velocity is None or velocity[0].shape != coef.shape:
            velocity = (np.zeros_like(coef), np.zeros_like(intercept))
        else:
            velocity = (velocity[0].copy(), velocity[1].copy())
        train, val = self._split(y, sample_weight, self.random_state)
        train = self._rows_that_step(X, train)
        params = self._engine_params(sp.issparse(X))
        positives = classes[1:] if coef.shape[0] == 1 else classes
        seeds = self._problem_seeds(len(positives))
        sums, counts = self._average_start(velocity_given, *coef.shape)
        if engine["kind"] == "ray":  # one set of actors for every class
            engine = dict(engine, pool={})
        try:
            # a partial_fit going on models the staleness the calls before measured
            measured = getattr(self, "staleness_", None) if velocity_given else None
            results = self._fit_classes(X, y, sample_weight, class_weight, classes,
                                        positives, coef, intercept, velocity, train, val,
                                        seeds, max_iter, engine, params, t, momenta,
                                        measured, (sums, counts))
        finally:
            if engine.get("pool", {}).get("backend") is not None:
                engine["pool"]["backend"].close()
        # scikit-learn's dtypes: coef_ the input's; intercept_ too where
        # there is one model a class, float64 for a binary problem's one
        coef, intercept = self._shown_model(coef, intercept, sums, counts)
        fitted = (_sgd.in_input_precision(coef, X.dtype),
                  _sgd.in_input_precision(intercept,
                                          X.dtype if coef.shape[0] > 1 else np.float64))
        self.classes_ = classes
        self.coef_, self.intercept_ = fitted
        self._velocity = velocity
        self.n_iter_ = max(r["n_iter"] for r in results)
        self.t_ = self._clock_after(max(r["t"] for r in results), X.shape[0], t)
        self.loss_curve_ = mean_over_classes([r["loss_curve"] for r in results])
        self.momentum_curve_ = mean_over_classes([r["momentum_curve"] for r in results])
        self.staleness_ = StalenessStats.merge(r["staleness"] for r in results)
        self._set_momentum_attributes(np.mean([r["momentum"] for r in results]))
        self._remember_momenta(results, continued=velocity_given)

    def _problem_seeds(self, n_problems):
        """Each binary problem's shuffle seed, drawn as SGDClassifier draws
        it (one problem: after make_dataset's draw from random_state; one-
        vs-rest: from each class's seed), so that one thread visits the rows
        in scikit-learn's order."""
        random_state = check_random_state(self.random_state)
        if n_problems == 1:
            random_state.randint(1, _sgd.MAX_INT)  # make_dataset's seed
            return [random_state.randint(_sgd.MAX_INT)]
        seeds = []
        for class_seed in random_state.randint(_sgd.MAX_INT, size=n_problems):
            per_class = np.random.RandomState(class_seed)
            per_class.randint(1, _sgd.MAX_INT)
            seeds.append(per_class.randint(_sgd.MAX_INT))
        return seeds

    def _fit_classes(self, X, y, sample_weight, class_weight, classes, positives, coef,
                     intercept, velocity, train, val, seeds, max_iter, engine,
                     params, t, momenta=None, measured=None, average=None):
        """Fits each one-vs-rest problem in turn, into coef, intercept and
        velocity (and averaged SGD's `average` = (sums, counts)), with the
        shuffle seeds `seeds`; returns the per-problem results. Class weights as
        SGDClassifier's: a binary problem weighs each row by its class's, a
        one-vs-rest problem its positive rows by their class's and the rest
        by 1; early stopping scores by the sample weights alone."""
        results = []
        for k, positive in enumerate(positives):
            y_pm = np.where(y == positive, 1.0, -1.0)
            weights = sample_weight
            if class_weight is not None and len(positives) == 1:
                weights = sample_weight * class_weight[np.searchsorted(classes, y)]
            elif class_weight is not None:
                weights = sample_weight * np.where(y == positive, class_weight[k], 1.0)
            score_fn = None
            if val is not None:
                score_fn = _binary_accuracy(X[val], y_pm[val], sample_weight[val])
            res = self._fit_problem(
                X, y_pm, weights, coef[k], intercept[k], velocity[0][k],
                velocity[1][k], train, score_fn, max_iter, seeds[k], engine,
                params if momenta is None else dict(params, momentum=momenta[k]), t,
                measured, None if average is None else (average[0][k], average[1][k]))
            coef[k], intercept[k] = res["coef"], res["intercept"]
            if res["avg_sum"] is not None:
                average[0][k], average[1][k] = res["avg_sum"], res["avg_count"]
            if res["velocity"] is not None:
                velocity[0][k] = res["velocity"]
                velocity[1][k] = res["intercept_velocity"]
            results.append(res)
        return results

    def decision_function(self, X):
        """Signed distance to the hyperplane of each class."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        # scored in float64: a float32 model's products may not fit float32
        scores = safe_sparse_dot(X, self.coef_.T.astype(np.float64, copy=False),
                                 dense_output=True) \
            + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X):
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[scores.argmax(axis=1)]

    def _check_proba(self):
        if self.loss not in ("log_loss", "modified_huber"):
            raise AttributeError(
                f"probability estimates are not available for loss={self.loss!r}")
        return True

    @available_if(_check_proba)
    def predict_proba(self, X):
        """Probability of each class (log_loss and modified_huber), with
        scikit-learn's one-vs-rest normalisation."""
        scores = self.decision_function(X)
        binary = scores.ndim == 1
        if self.loss == "log_loss":
            prob = 1.0 / (1.0 + np.exp(-np.clip(scores, -500, 500)))
        else:
            prob = (np.clip(scores, -1, 1) + 1) / 2.0
        if binary:
            return np.column_stack([1 - prob, prob])
        prob = prob.reshape(prob.shape[0], -1)
        norm = prob.sum(axis=1, keepdims=True)
        all_zero = norm[:, 0] == 0
        prob[all_zero] = 1.0
        norm[all_zero] = prob.shape[1]
        return prob / norm

    @available_if(_check_proba)
    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))


def _binary_accuracy(X_val, y_val, w_val):
    def score(w, b):
        pred = np.where(safe_sparse_dot(X_val, w) + b > 0, 1.0, -1.0)
        return float(np.average(pred == y_val, weights=w_val))
    return score


class AsyncSGDRegressor(RegressorMixin, _BaseAsyncSGD):
    """Linear regressor trained by lock-free asynchronous SGD.

    Parameters follow :class:`sklearn.linear_model.SGDRegressor`; ``momentum``,
    ``update`` and ``asynchrony`` as :class:`AsyncSGDClassifier`."""

    _is_classifier = False
    _losses = REGRESSION_LOSSES

    def __init__(self, loss="squared_error", *, penalty="l2", alpha=0.0001,
                 l1_ratio=0.15, fit_intercept=True, max_iter=1000, tol=1e-3,
                 shuffle=True, verbose=0, epsilon=0.1, n_jobs=None,
                 random_state=None, learning_rate="invscaling", eta0=0.01,
                 power_t=0.25, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, warm_start=False, average=False,
                 momentum=0.0, update="racy", asynchrony="threads",
                 n_workers=None, staleness="exponential", delay=None,
                 target_momentum=None, local_steps=64,
                 ray_address=None):
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.verbose = verbose
        self.epsilon = epsilon
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.average = average
        self.momentum = momentum
        self.update = update
        self.asynchrony = asynchrony
        self.n_workers = n_workers
        self.staleness = staleness
        self.delay = delay
        self.target_momentum = target_momentum
        self.local_steps = local_steps
        self.ray_address = ray_address

    @_sgd.unchanged_on_failure
    def fit(self, X, y, coef_init=None, intercept_init=None, sample_weight=None):
        """Fit the model from scratch (or from the last fit with
        warm_start=True), up to max_iter epochs."""
        engine = self._validate_hyperparameters()
        X, y = self._validate_Xy(X, y, reset=True)
        if self.warm_start and hasattr(self, "coef_"):
            coef_init = self._dense_coef() if coef_init is None else coef_init
            intercept_init = self.intercept_ if intercept_init is None else intercept_init
        self._fit(X, y, sample_weight, coef_init, intercept_init, None, 1.0,
                  self.max_iter, engine)
        # what a blown-up fit is judged by (fit alone warns: not each partial_fit)
        self._warn_if_not_converged(self.max_iter, _sgd.loss_predicting_zero(
            self.loss, self._loss_param(), y, np.arange(y.shape[0])))
        return self

    @_sgd.unchanged_on_failure
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current model."""
        engine = self._validate_hyperparameters(for_partial_fit=True)
        first = not hasattr(self, "coef_")
        X, y = self._validate_Xy(X, y, reset=first)
        if first:
            self._fit(X, y, sample_weight, None, None, None, 1.0, 1, engine)
        else:
            self._fit(X, y, sample_weight, *self._continue_from(),
                      self._velocity, self.t_, 1, engine, self._kept_momenta())
        return self

    def _fit(self, X, y, sample_weight, coef_init, intercept_init, velocity, t,
             max_iter, engine, momenta=None):
        """Fits, then commits the fitted state: a failed fit changes nothing."""
        y = np.asarray(y, dtype=np.float64).ravel()
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity")
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        n_features = X.shape[1]
        coef = np.zeros(n_features)
        intercept = 0.0
        if coef_init is not None:
            coef_init = _finite_init(coef_init, "coef_init").ravel()
            if coef_init.shape != coef.shape:
                raise ValueError("Provided coef_init does not match dataset.")
            coef[:] = coef_init
        if intercept_init is not None:
            intercept_init = _finite_init(intercept_init, "intercept_init").ravel()
            if intercept_init.shape != (1,):
                raise ValueError("Provided intercept_init does not match dataset.")
            intercept = float(intercept_init[0])
        velocity_given = velocity is not None  # a partial_fit going on
        if velocity is None or velocity[0].shape != coef.shape:
            velocity = (np.zeros(n_features), 0.0)
        train, val = self._split(y, sample_weight, self.random_state)
        train = self._rows_that_step(X, train)
        score_fn = None
        if val is not None:
            score_fn = _r2_score(X[val], y[val], sample_weight[val])
        # drawn as SGDRegressor draws its shuffle seed
        seed = check_random_state(self.random_state).randint(0, _sgd.MAX_INT)
        params = self._engine_params(sp.issparse(X))
        if momenta is not None:
            params["momentum"] = momenta[0]
        measured = getattr(self, "staleness_", None) if velocity_given else None
        sums, counts = self._average_start(velocity_given, 1, n_features)
        res = self._fit_problem(X, y, sample_weight, coef, intercept,
                                velocity[0], velocity[1], train, score_fn,
                                max_iter, seed, engine, params, t, measured,
                                (sums[0], counts[0]))
        if res["avg_sum"] is not None:
            sums[0], counts[0] = res["avg_sum"], res["avg_count"]
        coef, intercept = self._shown_model(res["coef"][None], np.array([res["intercept"]]),
                                            sums, counts)
        self.coef_ = _sgd.in_input_precision(coef[0], X.dtype)
        self.intercept_ = intercept  # float64, as SGDRegressor's
        if res["velocity"] is not None:
            velocity = (res["velocity"], res["intercept_velocity"])
        self._velocity = velocity
        self.n_iter_ = res["n_iter"]
        self.t_ = self._clock_after(res["t"], X.shape[0], t)
        self.loss_curve_ = res["loss_curve"]
        self.momentum_curve_ = res["momentum_curve"]
        self.staleness_ = res["staleness"]
        self._set_momentum_attributes(res["momentum"])
        self._remember_momenta([res], continued=velocity_given)

    def predict(self, X):
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        # a sparsified coef_ is one CSR row
        coef = self.coef_.T if sp.issparse(self.coef_) else self.coef_
        # in float64: a float32 model's products may not fit float32
        return np.ravel(safe_sparse_dot(X, coef.astype(np.float64, copy=False),
                                        dense_output=True)) \
            + self.intercept_[0]


def _r2_score(X_val, y_val, w_val):
    def score(w, b):
        pred = safe_sparse_dot(X_val, w) + b
        resid = np.average((y_val - pred) ** 2, weights=w_val)
        var = np.average((y_val - np.average(y_val, weights=w_val)) ** 2,
                         weights=w_val)
        return 1.0 - resid / var if var > 0 else 0.0
    return score
