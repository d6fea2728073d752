"""A slow, obviously-correct reference of the SEQUENTIAL (one worker) SGD
update of pyasync's linear model, written from the specification rather
than from the C core.

Per row x (in the given order), with a global update counter t starting at
`t_start` for the first update:

    p      = w . x + b                     (float64 accumulation)
    eta    = eta(t)                        (constant / optimal / invscaling)
    upd    = -eta * clip(dloss(y, p), +-1e12) * sample_weight
    d      = max(0, 1 - l2 * eta)
    for EVERY coordinate j (x_j = 0 outside the row):
        v_j = mu v_j + upd x_j ;  w_j = d w_j + v_j      (mu = 0: w_j = d w_j + upd x_j)
    intercept: delta = upd * intercept_decay ; vb = mu vb + delta ; b += vb
               (b += delta without momentum)
    L1 (truncated gradient, Tsuruoka et al. as scikit-learn):
        u += l1 * eta ; for the TOUCHED coordinates (all for dense rows,
        the stored indices for CSR rows): z = w_j ; clip towards 0 by u +- q_j ;
        q_j += w_j - z
    averaged SGD (average > 0): from t = average on, the sums of w and b
        here (after the step, before the L1 truncation) and their count
    t += 1

The reference is eager: O(n_features) per update even for sparse rows, with
no decay scale or lazy catch-up of untouched coordinates, so the core's
O(nnz) handling of CSR rows is held to it exactly (up to rounding).
"""
import numba
import numpy as np
import scipy.sparse as sp

LOSS_IDS = {"hinge": 0, "log_loss": 1, "modified_huber": 2, "squared_hinge": 3,
            "perceptron": 4, "squared_error": 5, "huber": 6,
            "epsilon_insensitive": 7, "squared_epsilon_insensitive": 8}
SCHEDULE_IDS = {"constant": 0, "optimal": 1, "invscaling": 2, "adaptive": 3}
MAX_DLOSS = 1e12


@numba.njit(cache=True)
def ref_dloss(loss, param, y, p):
    """d loss / d p, scikit-learn's definitions (_sgd_fast.pyx.tp)."""
    if loss == 0 or loss == 4:  # hinge, perceptron (threshold = param)
        if p * y <= param:
            return -y
        return 0.0
    if loss == 1:  # log_loss: expit(p) - y on y in {0, 1} (sklearn/_loss)
        y01 = 1.0 if y > 0.0 else 0.0
        if p > -37.0:
            e = np.exp(-p)
            return ((1.0 - y01) - y01 * e) / (1.0 + e)
        return np.exp(p) - y01
    if loss == 2:  # modified_huber
        z = p * y
        if z >= 1.0:
            return 0.0
        if z >= -1.0:
            return 2.0 * (1.0 - z) * -y
        return -4.0 * y
    if loss == 3:  # squared_hinge
        z = param - p * y
        if z > 0.0:
            return -2.0 * y * z
        return 0.0
    if loss == 5:  # squared_error
        return p - y
    if loss == 6:  # huber (c = param)
        r = p - y
        if abs(r) <= param:
            return r
        if r > 0.0:
            return param
        return -param
    if loss == 7:  # epsilon_insensitive
        if y - p > param:
            return -1.0
        if p - y > param:
            return 1.0
        return 0.0
    if loss == 8:  # squared_epsilon_insensitive
        z = y - p
        if z > param:
            return -2.0 * (z - param)
        if z < -param:
            return 2.0 * (-z - param)
        return 0.0
    return np.nan


@numba.njit(cache=True)
def ref_eta(schedule, eta0, alpha, optimal_init, power_t, t):
    """Learning rate of update number t (1-based)."""
    if schedule == 1:  # optimal
        return 1.0 / (alpha * (optimal_init + t - 1.0))
    if schedule == 2:  # invscaling
        return eta0 / (float(t) ** power_t)
    return eta0  # constant, adaptive (within a fit without tol)


@numba.njit(cache=True)
def _ref_sgd(data, indices, indptr, n_features, y, sw, orders,
             loss, loss_param, l2, l1, schedule, eta0, alpha, optimal_init,
             power_t, mu, fit_intercept, intercept_decay, t_start,
             w, b, v, vb, average, avg_w):
    """Runs the updates of every row of every epoch of `orders` (epochs x n)
    on the CSR-like rows (a dense matrix is passed with every coordinate
    stored); updates w, v and (average > 0) the sum avg_w in place;
    returns (b, vb, t_next, u, the intercepts' sum, the iterates summed)."""
    avg_b = 0.0
    n_avg = 0
    q = np.zeros(n_features)
    u = 0.0
    x = np.zeros(n_features)
    t = t_start
    for e in range(orders.shape[0]):
        for r in range(orders.shape[1]):
            i = orders[e, r]
            lo = indptr[i]
            hi = indptr[i + 1]
            # dense copy of the row (float64)
            x[:] = 0.0
            for k in range(lo, hi):
                x[indices[k]] += np.float64(data[k])
            p = 0.0
            for j in range(n_features):
                p += w[j] * x[j]
            p += b
            eta = ref_eta(schedule, eta0, alpha, optimal_init, power_t, t)
            dl = ref_dloss(loss, loss_param, y[i], p)
            if dl < -MAX_DLOSS:
                dl = -MAX_DLOSS
            elif dl > MAX_DLOSS:
                dl = MAX_DLOSS
            upd = -eta * dl * sw[i]
            d = 1.0 - l2 * eta
            if d < 0.0:
                d = 0.0
            for j in range(n_features):
                if mu != 0.0:
                    v[j] = mu * v[j] + upd * x[j]
                    w[j] = d * w[j] + v[j]
                else:
                    w[j] = d * w[j] + upd * x[j]
            if fit_intercept:
                delta = upd * intercept_decay
                if mu != 0.0:
                    vb = mu * vb + delta
                    b += vb
                else:
                    b += delta
            if average > 0 and t >= average:
                for j in range(n_features):
                    avg_w[j] += w[j]
                avg_b += b
                n_avg += 1
            if l1 > 0.0:
                u += l1 * eta
                for k in range(lo, hi):
                    j = indices[k]
                    z = w[j]
                    if z > 0.0:
                        w[j] = max(0.0, z - (u + q[j]))
                    elif z < 0.0:
                        w[j] = min(0.0, z + (u - q[j]))
                    q[j] += w[j] - z
            t += 1
    return b, vb, t, u, avg_b, n_avg


def as_rows(X):
    """(data, indices, indptr, sparse) of X: CSR arrays as stored, or for a
    dense X the same structure with every coordinate stored (touched)."""
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        return (np.ascontiguousarray(X.data), np.ascontiguousarray(X.indices, dtype=np.int64),
                np.ascontiguousarray(X.indptr, dtype=np.int64), True)
    X = np.ascontiguousarray(X)
    n, m = X.shape
    return (X.ravel(), np.tile(np.arange(m, dtype=np.int64), n),
            np.arange(0, n * m + 1, m, dtype=np.int64), False)


def reference_sgd(X, y, *, orders, loss, loss_param, l2=0.0, l1=0.0,
                  learning_rate="constant", eta0=0.01, alpha=0.0001,
                  optimal_init=0.0, power_t=0.5, momentum=0.0,
                  fit_intercept=True, intercept_decay=None, sample_weight=None,
                  t_start=1, coef=None, intercept=0.0, velocity=None,
                  intercept_velocity=0.0, average=0):
    """Sequential SGD on (X, y) for the rows of each epoch in `orders`
    (a list/array of per-epoch row orders). `intercept_decay` defaults to
    scikit-learn's (0.01 for sparse X, 1.0 for dense).

    Returns dict(coef, intercept, velocity, intercept_velocity, t, u), `t`
    being the number of the next update; with `average` > 0 (averaged SGD
    from update number `average` on) also avg_sum (the iterates' weights
    and intercepts summed, the intercept last) and n_avg, their count."""
    data, indices, indptr, sparse = as_rows(X)
    n, m = X.shape
    if intercept_decay is None:
        intercept_decay = 0.01 if sparse else 1.0
    y = np.ascontiguousarray(y, dtype=np.float64)
    sw = (np.ones(n) if sample_weight is None
          else np.ascontiguousarray(sample_weight, dtype=np.float64))
    orders = np.ascontiguousarray(np.atleast_2d(np.asarray(orders, dtype=np.int64)))
    if orders.size == 0:
        orders = np.zeros((0, 0), dtype=np.int64)
    w = np.zeros(m) if coef is None else np.array(coef, dtype=np.float64)
    v = np.zeros(m) if velocity is None else np.array(velocity, dtype=np.float64)
    avg_w = np.zeros(m)
    b, vb, t, u, avg_b, n_avg = _ref_sgd(data, indices, indptr, m, y, sw, orders,
                           LOSS_IDS[loss], float(loss_param), float(l2),
                           float(l1), SCHEDULE_IDS[learning_rate], float(eta0),
                           float(alpha), float(optimal_init), float(power_t),
                           float(momentum), bool(fit_intercept),
                           float(intercept_decay), int(t_start), w,
                           float(intercept), v, float(intercept_velocity),
                           int(average), avg_w)
    return {"coef": w, "intercept": b, "velocity": v,
            "intercept_velocity": vb, "t": t, "u": u,
            "avg_sum": np.append(avg_w, avg_b), "n_avg": n_avg}
