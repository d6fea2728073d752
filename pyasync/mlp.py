"""AsyncMLPClassifier and AsyncMLPRegressor: counterparts of scikit-learn's
MLPClassifier and MLPRegressor (solver="sgd") whose minibatch updates run
in the compiled core, on lock-free asynchronous worker threads or on the
deterministic simulator of asynchrony.

The epoch loop follows sklearn/neural_network/_multilayer_perceptron.py
(`_fit_stochastic`) step for step: the same weight initialisation, the same
random stream (initialisation, early-stopping split, per-epoch shuffles), the
same learning-rate schedules and stopping rules, so that with one worker the
fit equals scikit-learn's to rounding."""
import copy
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, shuffle as sk_shuffle
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import (_check_sample_weight, check_is_fitted, column_or_1d,
                                      validate_data)

from . import _mlp, _sgd
from ._sgd import (in_input_precision, one_blas_thread, unchanged_on_failure,
                   warn_if_climbed)
from .distributed.ray_backend import check_ray_params, ray_engine
from .linear import _check_bool, _check_int, _check_real, check_threads, resolve_n_jobs
from .mlp_auto import MLPAutoMomentum
from .momentum import fit_geometric, total_momentum
from .staleness import HIST_LEN, StalenessStats, simulated_schedule

MAX_INT = np.iinfo(np.int32).max
MAX_HIDDEN_LAYERS = 10  # the core's PA_MLP_MAX_LAYERS - 1
MAX_UNITS = 65536
ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
LEARNING_RATES = ("constant", "invscaling", "adaptive")
UPDATES = ("racy", "atomic", "locked")
REGRESSION_LOSSES = ("squared_error", "poisson")  # poisson: half deviance, exp output
AUTO_MOMENTA = ("auto", "probe")  # momenta chosen by the fit (pyasync.mlp_auto)
ASYNCHRONY = ("threads", "simulated", "ray")
# Each update is a whole minibatch: reading the other threads' commit
# counters (one cache line each) is free next to it, so every update is
# measured.
STALENESS_EVERY = 1


def _check_choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _pack(coefs, intercepts):
    return np.concatenate([np.concatenate([np.ravel(c), np.ravel(b)])
                           for c, b in zip(coefs, intercepts)]).astype(np.float64)


def _unpack(w, units):
    coefs, intercepts, off = [], [], 0
    for fan_in, fan_out in zip(units[:-1], units[1:]):
        coefs.append(w[off:off + fan_in * fan_out].reshape(fan_in, fan_out).copy())
        off += fan_in * fan_out
        intercepts.append(w[off:off + fan_out].copy())
        off += fan_out
    return coefs, intercepts


def _engine_X(X):
    """X as the engine reads it: a C-contiguous array or CSR parts."""
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        if not X.has_canonical_format:  # on a copy: the caller's X stays as given
            X = X.copy()
            X.sum_duplicates()

        class _CSR:
            pass
        csr = _CSR()
        csr.data = np.ascontiguousarray(X.data)
        csr.indices = np.ascontiguousarray(X.indices, dtype=np.int32)
        csr.indptr = np.ascontiguousarray(X.indptr, dtype=np.int64)
        csr.shape, csr.dtype = X.shape, X.dtype
        return csr
    return np.ascontiguousarray(X)


def _forward(X, coefs, intercepts, activation, out_activation):
    """The network's output for X (numpy; scikit-learn's `_forward_pass_fast`)."""
    a = X
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        a = safe_sparse_dot(a, W, dense_output=True) + b
        act = activation if i + 1 < len(coefs) else out_activation
        if act == "relu":
            np.maximum(a, 0, out=a)
        elif act == "tanh":
            np.tanh(a, out=a)
        elif act == "logistic":
            a = expit(a)
        elif act == "exp":
            np.exp(a, out=a)
        elif act == "softmax":
            a = a - a.max(axis=1, keepdims=True)
            np.exp(a, out=a)
            a /= a.sum(axis=1, keepdims=True)
    return a


class _BaseAsyncMLP(BaseEstimator):
    """The epoch loop shared by the classifier and the regressor."""

    _VALIDATION = dict(accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32))

    # -- parameters -------------------------------------------------------
    def _hidden_sizes(self):
        h = self.hidden_layer_sizes
        if isinstance(h, (Integral, np.integer)) and not isinstance(h, bool):
            h = [h]
        try:
            h = list(h)
        except TypeError:
            raise ValueError(f"hidden_layer_sizes must be an int or a sequence of ints, "
                             f"got {self.hidden_layer_sizes!r}") from None
        if len(h) > MAX_HIDDEN_LAYERS:  # none: a linear model, as scikit-learn's
            raise ValueError(f"hidden_layer_sizes must hold 0 to {MAX_HIDDEN_LAYERS} "
                             f"layers, got {self.hidden_layer_sizes!r}")
        for u in h:
            if isinstance(u, (bool, np.bool_)) or not isinstance(u, (Integral, np.integer)) \
                    or not 1 <= u <= MAX_UNITS:
                raise ValueError(f"hidden_layer_sizes must be > 0 (and <= {MAX_UNITS}), "
                                 f"got {self.hidden_layer_sizes!r}")
        return [int(u) for u in h]

    def _validate_hyperparameters(self, incremental=False):
        """Checks every hyperparameter; returns (hidden sizes, engine)."""
        hidden = self._hidden_sizes()
        _check_choice("activation", self.activation, ACTIVATIONS)
        if self.solver != "sgd":
            raise ValueError(f"solver must be 'sgd' (the only solver of the "
                             f"asynchronous MLPs), got {self.solver!r}")
        _check_real("alpha", self.alpha, 0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _check_int("batch_size", self.batch_size, 1)
        _check_choice("learning_rate", self.learning_rate, LEARNING_RATES)
        _check_real("learning_rate_init", self.learning_rate_init, 0.0, low_open=True)
        _check_real("power_t", self.power_t, 0.0)
        _check_int("max_iter", self.max_iter, 1)
        _check_bool("shuffle", self.shuffle)
        _check_real("tol", self.tol, 0.0)
        if not isinstance(self.verbose, (bool, np.bool_, Integral)) or self.verbose < 0:
            raise ValueError(f"verbose must be a bool or an int >= 0, got {self.verbose!r}")
        _check_bool("warm_start", self.warm_start)
        if isinstance(self.momentum, str):
            if self.momentum not in AUTO_MOMENTA:
                raise ValueError(f"momentum must be a number in (-1, 1), 'auto' or "
                                 f"'probe', got {self.momentum!r}")
        else:
            _check_real("momentum", self.momentum, -1.0, 1.0, True, True)
        if self.target_momentum is not None:
            _check_real("target_momentum", self.target_momentum, 0.0, 1.0, False, True)
            if self.momentum not in AUTO_MOMENTA:
                raise ValueError("target_momentum is only used with momentum='auto' or "
                                 "'probe'")
        _check_bool("nesterovs_momentum", self.nesterovs_momentum)
        _check_bool("early_stopping", self.early_stopping)
        # as MLPClassifier's: 0 is allowed (without early stopping), and
        # n_iter_no_change=inf never stops for want of progress
        _check_real("validation_fraction", self.validation_fraction, 0.0, 1.0, False, True)
        if self.early_stopping and self.validation_fraction == 0.0:
            raise ValueError("early_stopping needs validation_fraction > 0")
        if not (isinstance(self.n_iter_no_change, Real) and self.n_iter_no_change == np.inf):
            _check_int("n_iter_no_change", self.n_iter_no_change, 1)
        # unused by the "sgd" solver; checked as MLPClassifier checks them
        _check_real("beta_1", self.beta_1, 0.0, 1.0, False, True)
        _check_real("beta_2", self.beta_2, 0.0, 1.0, False, True)
        _check_real("epsilon", self.epsilon, 0.0, low_open=True)
        _check_int("max_fun", self.max_fun, 1)
        _check_choice("update", self.update, UPDATES)
        _check_choice("asynchrony", self.asynchrony, ASYNCHRONY)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        n_jobs = resolve_n_jobs(self.n_jobs)
        n_workers = n_jobs if self.n_workers is None else self.n_workers
        _check_int("n_workers" if self.n_workers is not None else "n_jobs", n_workers, 1,
                   MAX_INT)  # checked where unused too
        schedule = simulated_schedule(self.staleness, self.delay, MAX_INT - 1,
                                      self.asynchrony == "simulated")
        check_ray_params(self.local_steps, self.ray_address)
        if self.asynchrony == "threads":
            check_threads(n_jobs)
            return hidden, {"kind": "threads", "n_threads": n_jobs, "update": self.update,
                            "staleness_every": STALENESS_EVERY}
        if self.asynchrony == "ray":
            return hidden, ray_engine(n_workers, self.local_steps, self.ray_address)
        return hidden, {"kind": "simulated", "seed": 0, **schedule,
                        "n_workers": schedule["n_workers"] or int(n_workers)}

    # -- fitting ----------------------------------------------------------
    def _init_coef(self, fan_in, fan_out, rs):
        factor = 2.0 if self.activation == "logistic" else 6.0
        bound = np.sqrt(factor / (fan_in + fan_out))
        coef = rs.uniform(-bound, bound, (fan_in, fan_out))
        intercept = rs.uniform(-bound, bound, fan_out)
        return coef, intercept

    @unchanged_on_failure
    def _fit(self, X, y, sample_weight=None, incremental=False):
        with one_blas_thread():
            return self._fit_epochs_blas1(X, y, sample_weight, incremental)

    def _fit_epochs_blas1(self, X, y, sample_weight, incremental):
        hidden, engine = self._validate_hyperparameters(incremental)
        fitted = hasattr(self, "coefs_")
        first_pass = not fitted or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:  # None keeps scikit-learn's unweighted rounding
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        n_samples, n_features = X.shape
        # each worker keeps a dense minibatch of every layer, inputs and outputs too
        if n_features > MAX_UNITS:
            raise ValueError(f"the asynchronous MLPs take at most {MAX_UNITS} input features, "
                             f"got {n_features} (hash or select features: e.g. "
                             "HashingVectorizer(n_features=2**16))")
        if Y.shape[1] > MAX_UNITS:
            raise ValueError(f"the asynchronous MLPs take at most {MAX_UNITS} outputs, "
                             f"got {Y.shape[1]}")
        units = [n_features] + hidden + [Y.shape[1]]
        rs = check_random_state(self.random_state)
        # everything below is local until the fit succeeds
        st = {}
        if first_pass:
            st["n_outputs_"] = Y.shape[1]
            st["n_layers_"] = len(units)
            st["out_activation_"] = self._out_activation(Y)
            coefs, intercepts = [], []
            for fan_in, fan_out in zip(units[:-1], units[1:]):
                c, b = self._init_coef(fan_in, fan_out, rs)
                coefs.append(c)
                intercepts.append(b)
            st["t_"] = 0
            st["loss_curve_"] = []
            st["momentum_curve_"] = []
            st["_no_improvement_count"] = 0
            if self.early_stopping:
                st["validation_scores_"] = []
                st["best_validation_score_"] = -np.inf
                st["best_loss_"] = None
            else:
                st["best_loss_"] = np.inf
                st["validation_scores_"] = None
                st["best_validation_score_"] = None
            best = None
        else:
            old = [n_features] + [c.shape[1] for c in self.coefs_]
            if old != units:
                raise ValueError(
                    f"The fitted network has layer sizes {old}; this call asks for "
                    f"{units}. Set warm_start=False (or refit) to change the "
                    "architecture.")
            for name in ("n_outputs_", "n_layers_", "out_activation_", "t_",
                         "_no_improvement_count", "best_loss_", "validation_scores_",
                         "best_validation_score_"):
                st[name] = getattr(self, name)
            st["loss_curve_"] = list(self.loss_curve_)
            st["momentum_curve_"] = list(self.momentum_curve_)
            # early_stopping switched since the last fit: the records the new
            # setting watches start here, the other's are dropped (scikit-
            # learn's MLPs fail there on a None)
            if self.early_stopping and st["validation_scores_"] is None:
                st["validation_scores_"], st["best_validation_score_"] = [], -np.inf
                st["best_loss_"] = None
            if not self.early_stopping and st["validation_scores_"] is not None:
                st["validation_scores_"] = st["best_validation_score_"] = None
                st["best_loss_"] = np.inf
            if st["validation_scores_"] is not None:
                st["validation_scores_"] = list(st["validation_scores_"])
            coefs, intercepts = self.coefs_, self.intercepts_
            best = getattr(self, "_best_w", None) if self.early_stopping else None
        w = _pack(coefs, intercepts)
        if self.early_stopping and (first_pass or best is None):
            best = w.copy()
        if not incremental or not hasattr(self, "_velocity") \
                or self._velocity.shape != w.shape:
            v = np.zeros_like(w)
            lr = float(self.learning_rate_init)
        else:
            v = self._velocity.copy()
            lr = self._learning_rate

        if self.early_stopping:
            stratify = y if self._is_classifier and st["n_outputs_"] == 1 else None
            idx_train, idx_val = train_test_split(
                np.arange(n_samples), random_state=rs,
                test_size=self.validation_fraction, stratify=stratify)
            if idx_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            X_train, Y_train = X[idx_train], Y[idx_train]
            X_val, y_val = X[idx_val], np.asarray(y)[idx_val]
            sw_train, sw_val = ((None, None) if sample_weight is None
                                else (sample_weight[idx_train], sample_weight[idx_val]))
        else:
            X_train, Y_train, sw_train = X, Y, sample_weight
        n_train = X_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_train)
        else:
            if self.batch_size > n_train:
                warnings.warn("Got `batch_size` less than 1 or larger than sample "
                              "size. It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_train))
        X_engine = _engine_X(X_train)
        Y_engine = np.ascontiguousarray(Y_train, dtype=np.float64)
        sw_engine = None if sw_train is None else np.ascontiguousarray(sw_train)
        # drawn from a copy: the shuffles then follow MLPClassifier's stream,
        # so one simulated worker fits as scikit-learn and one thread do
        seed = (copy.deepcopy(rs).randint(MAX_INT)
                if engine["kind"] in ("simulated", "ray") else 0)
        params = {"units": units, "activation": self.activation,
                  "output": st["out_activation_"], "alpha": float(self.alpha),
                  "lr": lr,
                  "momentum": 0.0 if self.momentum in AUTO_MOMENTA else float(self.momentum),
                  "nesterov": bool(self.nesterovs_momentum), "batch_size": batch_size}
        hist = np.zeros(HIST_LEN, dtype=np.int64)
        stale_sum, stale_max = 0.0, 0
        sample_idx = np.arange(n_train, dtype=np.int64)
        n_iter = 0
        backend = None
        if engine["kind"] == "ray":
            from .distributed.ray_backend import MLPChunks, RayBackend
            backend = RayBackend(MLPChunks(params), X_train, Y_engine, sw_engine,
                                 np.arange(n_train), w, v, n_workers=engine["n_workers"],
                                 local_steps=engine["local_steps"], rows_per_step=batch_size,
                                 address=engine["address"],
                                 nesterov=params["nesterov"], hist_len=HIST_LEN, seed=seed)
        auto, model = None, {"w": w, "v": v}
        if self.momentum in AUTO_MOMENTA:
            # a fit that goes on from a model fitted with a chosen momentum
            # starts from it and counts on from its epochs; after a fixed
            # momentum, the choice starts afresh
            goes_on = not first_pass and getattr(self, "_momentum_chosen", False)
            auto = MLPAutoMomentum(X_engine, Y_engine, params, engine,
                                   self.target_momentum, seed, n_train,
                                   self.momentum_ if goes_on else None,
                                   probe=self.momentum == "probe", sample_weight=sw_engine,
                                   epochs_before=len(self.loss_curve_) if goes_on else 0,
                                   loop=self._auto_loop if goes_on else None)
            if backend is None and auto.safe is None:  # the Ray server holds its own model
                auto.keep_safe(model)
        try:
            scratch = []  # the simulated engine's pending gradients, epoch to epoch
            for it in range(self.max_iter):
                if auto is not None:
                    measured = StalenessStats.from_counts(hist, stale_sum, stale_max)
                    params["momentum"] = auto.choose(it, w, None, measured, lr,
                                                     st["loss_curve_"])
                if self.shuffle:
                    sample_idx = sk_shuffle(sample_idx, random_state=rs)
                order = np.ascontiguousarray(sample_idx, dtype=np.int64)
                if engine["kind"] == "simulated":
                    engine = dict(engine, seed=(seed * 0x9E3779B9 + it) % 2**64,
                                  scratch=scratch)
                params["lr"] = lr
                if backend is not None:
                    res, w[:], v[:] = backend.epoch(0, lr, params["momentum"], it, self.shuffle)
                    hist += res.pop("hist")
                else:
                    res = _mlp.mlp_epoch(params, X_engine, Y_engine, w, v, order, engine, hist,
                                         sw_engine)
                stale_sum += res["staleness_sum"]
                stale_max = max(stale_max, res["staleness_max"])
                diverged = (res["diverged"] or not np.isfinite(res["sumloss"])
                            or not np.all(np.isfinite(w)))
                loss = np.inf if diverged else res["sumloss"] / n_train
                # epochs are counted where choose() finds them: in the whole
                # loss curve, a fit that goes on included
                if auto is not None and backend is None and auto.recover(
                        len(st["loss_curve_"]), model, loss):
                    diverged = False  # rolled back to the best epoch's model
                if diverged:
                    raise ValueError(
                        f"The fit diverged at epoch #{it + 1}: non-finite loss or weights. "
                        "Scaling the input (StandardScaler), a smaller learning_rate_init "
                        "or a smaller momentum might help.")
                n_iter += 1
                st["t_"] += n_train
                st["loss_curve_"].append(loss)
                st["momentum_curve_"].append(float(params["momentum"]))
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (n_iter, loss))
                if self.early_stopping:
                    c, b = _unpack(w, units)
                    score = self._score_weights(X_val, y_val, c, b, st["out_activation_"],
                                                sw_val)
                    st["validation_scores_"].append(score)
                    if self.verbose:
                        print("Validation score: %f" % score)
                    if score < st["best_validation_score_"] + self.tol:
                        st["_no_improvement_count"] += 1
                    else:
                        st["_no_improvement_count"] = 0
                    if score > st["best_validation_score_"]:
                        st["best_validation_score_"] = score
                        best = w.copy()
                else:
                    if loss > st["best_loss_"] - self.tol:
                        st["_no_improvement_count"] += 1
                    else:
                        st["_no_improvement_count"] = 0
                    if loss < st["best_loss_"]:
                        st["best_loss_"] = loss
                if self.learning_rate == "invscaling":
                    lr = float(self.learning_rate_init) / (st["t_"] + 1) ** self.power_t
                if st["_no_improvement_count"] > self.n_iter_no_change:
                    if self.learning_rate == "adaptive" and lr > 1e-6:
                        lr /= 5.0
                        st["_no_improvement_count"] = 0
                        if self.verbose:
                            print("Setting learning rate to %f" % lr)
                    else:
                        if self.verbose:
                            print("Training loss did not improve more than tol=%f for %d "
                                  "consecutive epochs. Stopping." % (self.tol,
                                                                     self.n_iter_no_change))
                        break
                if incremental:
                    break
                if n_iter == self.max_iter:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                        "optimization hasn't converged yet." % self.max_iter,
                        ConvergenceWarning)
            if not incremental:
                warn_if_climbed(st["loss_curve_"], "learning_rate_init")
        finally:
            if backend is not None:
                backend.close()
        final = best if self.early_stopping else w
        # a fit that goes on keeps the model's precision, as MLPClassifier's
        precision = X.dtype if first_pass else self.coefs_[0].dtype
        coefs, intercepts = _unpack(in_input_precision(final, precision), units)
        # commit
        for name, value in st.items():
            setattr(self, name, value)
        self.coefs_, self.intercepts_ = coefs, intercepts
        self._best_w = best if self.early_stopping else None
        self._velocity = v
        self._learning_rate = lr
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None
        self.n_iter_ = n_iter
        self.staleness_ = StalenessStats.from_counts(hist, stale_sum, stale_max)
        # a fit that goes on starts from it: below the last epoch's where
        # that one was rolled back
        self.momentum_ = float(params["momentum"] if auto is None else auto.going_on())
        self._momentum_chosen = auto is not None
        # where a fit that goes on takes the closed loop on from
        self._auto_loop = None if auto is None else auto.loop_state()
        self.probe_updates_ = 0 if auto is None else auto.probe_updates
        self.implicit_momentum_ = (fit_geometric(self.staleness_).implicit_momentum
                                   if self.staleness_.n_measured else 0.0)
        self.total_momentum_ = total_momentum(self.momentum_, self.implicit_momentum_)
        self._commit_labels()
        return self

    def _commit_labels(self):
        pass

    def _forward_fast(self, X):
        check_is_fitted(self)
        X = validate_data(self, _sgd.check_sparse_structure(X), reset=False,
                          **self._VALIDATION)
        return _forward(X, self.coefs_, self.intercepts_, self.activation,
                        self.out_activation_)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "coefs_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


_DOC_NEW = """
    Parameters follow scikit-learn's {base} (solver="sgd") with the same
    meaning; on top:

    momentum : float in (-1, 1), "auto" or "probe", default=0.9
        Momentum of the SGD updates, one velocity shared by all
        workers; negative values are allowed (asynchrony adds momentum
        of its own, about 1 - 1/M for M workers). "auto" chooses it
        before the first epoch with no update spent: the heaviest
        momentum of -0.9..0.9 under which stale SGD shrinks on a
        quadratic direction of a share of the loss's top curvature at
        the starting weights (0.2 for the classifiers, whose curvature
        falls as the margins grow; the whole of it for the regressors,
        measured again before epochs 1, 2, 4, 8, 16), its delays drawn
        from the fit's staleness
        law (the simulated schedule's; for threads and Ray, M = n_jobs
        (at most the cores) or n_workers exponential workers); the
        curvature from Lanczos on gradient differences over 512 rows.
        "probe" instead runs momenta of the grid for three epochs each
        (of at most 4096 rows) of the simulated engine on copies of
        the weights, and takes the one that gets closest to the lowest
        loss soonest: closer to the best in the fit's own epochs, at
        the cost of 27-33 epochs of updates. With either, epochs that
        stop lowering the loss then cap the momentum lower, and an
        epoch that blows up is undone (the model goes back to the best
        epoch's; the epoch's loss stays in loss_curve_, inf where it
        diverged; see ``pyasync.mlp_auto``). A fit that goes on
        from a fitted model (partial_fit after its first call,
        warm_start) keeps the momentum it had, and the closed loop's caps
        and model to go back to. Fitted: ``momentum_``,
        ``implicit_momentum_``, ``total_momentum_``,
        ``probe_updates_`` (the minibatch updates a probe ran on
        copies; 0 for "auto").
    beta_1, beta_2, epsilon, max_fun
        Accepted for parameter parity with scikit-learn (its adam and
        lbfgs solvers' settings); unused, as the solver is "sgd".
    target_momentum : float in [0, 1), default=None
        With momentum="auto" or "probe": hold explicit + measured implicit
        momentum at this total instead, as far as explicit momentum in
        [-0.9, 0.9] reaches (a UserWarning gives the total held where it
        does not).
    n_jobs : int, default=None
        Worker threads (None: 1, -1: all cores). Each takes the next
        minibatch of the epoch, computes its gradient on a snapshot of the
        shared weights and writes its update with no lock.
    update : {{"racy", "atomic", "locked"}}, default="racy"
        How workers write the shared weights: relaxed loads and stores (a
        concurrent write may be lost), compare-and-swap (none is lost), or
        one mutex around each snapshot and each write.
    asynchrony : {{"threads", "simulated", "ray"}}, default="threads"
    n_workers : int, default=None
        Simulated or Ray workers M (None: n_jobs).
    staleness : {{"exponential", "round_robin", "fixed"}} or histogram, default="exponential"
        The simulated scheduler; "fixed" uses ``delay``; a staleness
        histogram (counts by staleness, or a fit's ``staleness_``) is
        replayed: each update's gradient is taken that many updates back.
    delay : int, default=None
    local_steps : int, default=1
        Ray: minibatches a worker runs between its pull and its push.
    ray_address : str, default=None
        Ray: the cluster to connect to; None starts a local Ray.

    Attributes as scikit-learn's (coefs_, intercepts_, loss_curve_, loss_,
    best_loss_, n_iter_, t_, n_layers_, n_outputs_, out_activation_, ...)
    plus ``staleness_`` (StalenessStats of the last fit call) and
    ``momentum_curve_`` (the explicit momentum each epoch of loss_curve_ ran
    with: under ``momentum="auto"``, the choices).
"""


class AsyncMLPClassifier(ClassifierMixin, _BaseAsyncMLP):
    __doc__ = ("Multi-layer perceptron classifier trained by asynchronous "
               "minibatch SGD.\n" + _DOC_NEW.format(base="MLPClassifier"))

    _is_classifier = True

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="sgd",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, max_fun=15000, n_jobs=None,
                 update="racy", asynchrony="threads", n_workers=None,
                 staleness="exponential", delay=None, target_momentum=None,
                 local_steps=1, ray_address=None):
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
        self.n_iter_no_change = n_iter_no_change
        self.beta_1, self.beta_2, self.epsilon, self.max_fun = beta_1, beta_2, epsilon, max_fun
        self.n_jobs = n_jobs
        self.update = update
        self.asynchrony = asynchrony
        self.n_workers = n_workers
        self.staleness = staleness
        self.delay = delay
        self.target_momentum = target_momentum
        self.local_steps = local_steps
        self.ray_address = ray_address

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, _sgd.check_sparse_structure(X), y, multi_output=True,
                             reset=reset, **self._VALIDATION)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        target = type_of_target(y)
        if target not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(f"Unknown label type: {target!r}; AsyncMLPClassifier "
                             "needs class labels")
        partial_classes = getattr(self, "_partial_classes", None)
        if partial_classes is not None:  # multi-label: the columns, as scikit-learn
            lb = LabelBinarizer().fit(y if target == "multilabel-indicator" else partial_classes)
            unknown = np.setdiff1d(unique_labels(y), lb.classes_)
            if unknown.size:
                raise ValueError(f"y holds labels not in classes: {unknown[:5]!r}")
        elif not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            lb = LabelBinarizer().fit(y)  # one class: learns to predict it, as scikit-learn
        else:
            lb = self._label_binarizer
            classes = unique_labels(y)
            if self.warm_start and not incremental:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes "
                        f"as in the previous call to fit. Previously got "
                        f"{self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}.")
        self._new_binarizer = lb
        Y = lb.transform(y).astype(np.float64)
        return X, Y

    def _out_activation(self, Y):
        return "softmax" if self._new_binarizer.y_type_ == "multiclass" else "logistic"

    def _commit_labels(self):
        self._label_binarizer = self._new_binarizer
        self.classes_ = self._label_binarizer.classes_
        del self._new_binarizer

    def _score_weights(self, X, y, coefs, intercepts, out_activation, sample_weight):
        out = _forward(X, coefs, intercepts, self.activation, out_activation)
        return accuracy_score(y, self._decode(out, self._new_binarizer),
                              sample_weight=sample_weight)

    @staticmethod
    def _decode(out, lb):
        if out.shape[1] == 1:
            out = out.ravel()
        return lb.inverse_transform(out)

    def fit(self, X, y, sample_weight=None):
        """Fit the network to (X, y), up to max_iter epochs (continuing the
        last fit with warm_start=True); `sample_weight` weights the rows as
        scikit-learn's does (each minibatch's gradient is its rows' weighted
        mean)."""
        try:
            return self._fit(X, y, sample_weight, incremental=False)
        finally:
            self.__dict__.pop("_new_binarizer", None)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), rows weighted by `sample_weight`;
        `classes` is required on the first call."""
        first = not hasattr(self, "coefs_")
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to "
                                 "partial_fit.")
            self._partial_classes = unique_labels(classes)
        elif classes is not None and not np.array_equal(unique_labels(classes),
                                                        self.classes_):
            raise ValueError(f"`classes={classes!r}` is not the same as on the last "
                             f"call to partial_fit, was: {self.classes_!r}")
        try:
            return self._fit(X, y, sample_weight, incremental=True)
        finally:
            self.__dict__.pop("_partial_classes", None)
            self.__dict__.pop("_new_binarizer", None)

    def predict(self, X):
        """Class labels for X."""
        return self._decode(self._forward_fast(X), self._label_binarizer)

    def predict_proba(self, X):
        """Probability of each class."""
        p = self._forward_fast(X)
        if p.shape[1] == 1:
            p = p.ravel()
        if p.ndim == 1:
            return np.vstack([1 - p, p]).T
        return p

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class AsyncMLPRegressor(RegressorMixin, _BaseAsyncMLP):
    __doc__ = ("Multi-layer perceptron regressor (squared error and identity "
               "output, or with loss='poisson' half the Poisson deviance and an "
               "exponential output) trained by asynchronous minibatch SGD.\n"
               + _DOC_NEW.format(base="MLPRegressor"))

    _is_classifier = False

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="sgd", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, max_fun=15000, n_jobs=None,
                 update="racy", asynchrony="threads", n_workers=None,
                 staleness="exponential", delay=None, target_momentum=None,
                 local_steps=1, ray_address=None):
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
        self.n_iter_no_change = n_iter_no_change
        self.beta_1, self.beta_2, self.epsilon, self.max_fun = beta_1, beta_2, epsilon, max_fun
        self.n_jobs = n_jobs
        self.update = update
        self.asynchrony = asynchrony
        self.n_workers = n_workers
        self.staleness = staleness
        self.delay = delay
        self.target_momentum = target_momentum
        self.local_steps = local_steps
        self.ray_address = ray_address

    def _validate_input(self, X, y, incremental, reset):
        _check_choice("loss", self.loss, REGRESSION_LOSSES)
        X, y = validate_data(self, _sgd.check_sparse_structure(X), y, multi_output=True,
                             y_numeric=True, reset=reset, **self._VALIDATION)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = np.asarray(y, dtype=np.float64)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        if self.loss == "poisson" and np.any(Y < 0):
            raise ValueError("loss='poisson' needs non-negative targets (counts or "
                             "rates); y holds negative values")
        return X, Y

    def _out_activation(self, Y):
        return "exp" if self.loss == "poisson" else "identity"

    def _score_weights(self, X, y, coefs, intercepts, out_activation, sample_weight):
        out = _forward(X, coefs, intercepts, self.activation, out_activation)
        return r2_score(y, out.ravel() if out.shape[1] == 1 else out,
                        sample_weight=sample_weight)

    def fit(self, X, y, sample_weight=None):
        """Fit the network to (X, y), up to max_iter epochs (continuing the
        last fit with warm_start=True); `sample_weight` weights the rows as
        scikit-learn's does (each minibatch's gradient is its rows' weighted
        mean)."""
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), rows weighted by `sample_weight`,
        continuing from the current network."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predicted targets for X."""
        out = self._forward_fast(X)
        return out.ravel() if out.shape[1] == 1 else out
