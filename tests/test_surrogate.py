"""momentum="auto"'s simulation on a row sample (compiled, in the sample's
row space) against plain asynchronous SGD with momentum in weight space,
and how the momentum it picks responds to the problem."""
import numpy as np
import pytest
import scipy.sparse as sp

from pyasync import _core
from pyasync.momentum import (HORIZON_BUDGET, MEMORY_KEPT, MOMENTUM_GRID, RowSample,
                              choose_momentum, loss_curvature, own_kick_lumps, row_sample,
                              sample_size, simulate_momentum_grid, simulation_horizon,
                              stable_grid, staleness_pmf)


def mean_loss(loss, param, y, p):
    return np.mean([_core.loss_value(loss, param, yi, pi) for yi, pi in zip(y, p)])


def weight_space_sgd(X, y, w0, b0, loss, param, step, grid, rows, stale, every,
                     intercept_decay=1.0, held=None, held_weight=0.0, sample_weight=None,
                     l2=0.0):
    """Asynchronous SGD with heavy-ball momentum on the weights themselves:
    update t takes row rows[t]'s gradient at the weights of stale[t]
    updates earlier. The loss watched: X's, or with held = (Xh, yh) the
    blend (1 - held_weight) X's + held_weight Xh's. A row's step is times
    its sample_weight; the L2 penalty decays the weights (not the
    intercept) by 1 - l2 x step an update, as the kernels do."""
    out = np.empty((rows.size // every, len(grid)))
    for k, mu in enumerate(grid):
        w, b = w0.copy(), b0
        v, vb = np.zeros_like(w), 0.0
        history = [(w.copy(), b)]
        for t in range(rows.size):
            ws, bs = history[max(t - stale[t], 0)]
            i = rows[t]
            g = _core.loss_dloss(loss, param, y[i], X[i] @ ws + bs)
            if sample_weight is not None:
                g *= sample_weight[i]
            v = mu * v - step * g * X[i]
            vb = mu * vb - step * g * intercept_decay
            w, b = (1.0 - l2 * step) * w + v, b + vb
            history.append((w.copy(), b))
            if (t + 1) % every == 0:
                out[t // every, k] = mean_loss(loss, param, y, X @ w + b)
                if held is not None:
                    out[t // every, k] += held_weight * (
                        mean_loss(loss, param, held[1], held[0] @ w + b) - out[t // every, k])
    return out


@pytest.mark.parametrize("loss,param", [("log_loss", 0.0), ("hinge", 1.0),
                                        ("squared_error", 0.0), ("huber", 0.3)])
@pytest.mark.parametrize("depth", [1, 6])
def test_row_space_simulation_is_weight_space_sgd(loss, param, depth):
    """Predictions are all the simulation keeps: with the intercept as a
    column of sqrt(intercept_decay), its losses equal weight-space SGD's."""
    rng = np.random.RandomState(depth)
    X = rng.standard_normal((25, 8))
    w0 = rng.standard_normal(8) * 0.2
    y = (np.where(X[:, 0] > 0, 1.0, -1.0) if loss in ("log_loss", "hinge")
         else X @ rng.standard_normal(8) + 0.3 * rng.standard_normal(25))
    decay = 0.5
    sample = row_sample(X, y, w0, 0.1, loss, param, True, decay, rng)
    assert sample.gram.shape == (25, 25) and sample.kick == 0.0  # every row, in order
    grid = np.array([-0.5, 0.0, 0.7])
    rows = rng.randint(0, 25, 300).astype(np.int64)
    stale = rng.randint(0, depth, 300).astype(np.int64)
    got = _core.row_sample_grid(sample.gram, sample.predictions, sample.targets, loss, param,
                                0.03, grid, rows, stale, depth, 10)
    want = weight_space_sgd(X, y, w0, 0.1, loss, param, 0.03, grid, rows, stale, 10,
                            intercept_decay=decay)
    assert np.all(np.isfinite(want))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("loss,param", [("log_loss", 0.0), ("squared_error", 0.0)])
def test_held_out_rows_follow_weight_space_sgd(loss, param):
    """Dense rows left over after the sample: half as many again are held
    out, their predictions follow the sample's updates, and the losses blend
    theirs in with weight (1 - m / n) / 2, as weight-space SGD on the
    sample's rows watched on both."""
    rng = np.random.RandomState(4)
    X = rng.standard_normal((90, 6))
    y = (np.where(X[:, 0] > 0, 1.0, -1.0) if loss == "log_loss"
         else X @ rng.standard_normal(6) + 0.3 * rng.standard_normal(90))
    w0 = rng.standard_normal(6) * 0.2
    sample = row_sample(X, y, w0, 0.1, loss, param, True, 0.5, np.random.RandomState(0),
                        max_rows=30)
    drawn = np.random.RandomState(0).choice(90, 45, replace=False)
    rows, held = np.sort(drawn[:30]), np.sort(drawn[30:])
    assert sample.held.shape == (30, 15)
    assert sample.held_weight == pytest.approx(0.5 * (1 - 30 / 90))
    np.testing.assert_allclose(sample.targets, y[rows])
    grid = np.array([-0.4, 0.0, 0.6])
    order = rng.randint(0, 30, 200).astype(np.int64)
    stale = rng.randint(0, 3, 200).astype(np.int64)
    got = _core.row_sample_grid(sample.gram, sample.predictions, sample.targets, loss, param,
                                0.05, grid, order, stale, 3, 8, sample.held,
                                sample.held_predictions, sample.held_targets,
                                sample.held_weight)
    want = weight_space_sgd(X[rows], y[rows], w0, 0.1, loss, param, 0.05, grid, order, stale,
                            8, intercept_decay=0.5, held=(X[held], y[held]),
                            held_weight=sample.held_weight)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_sample_weights_scale_each_rows_step():
    """A weighted row's update is its weight times the step, in the
    sample's predictions and in the held-out rows' that follow them."""
    rng = np.random.RandomState(5)
    X = rng.standard_normal((90, 6))
    y = np.where(X[:, 0] + 0.3 * rng.standard_normal(90) > 0, 1.0, -1.0)
    weights = rng.uniform(0.2, 5.0, 90)
    w0 = rng.standard_normal(6) * 0.2
    sample = row_sample(X, y, w0, 0.1, "log_loss", 0.0, True, 0.5, np.random.RandomState(0),
                        max_rows=30, sample_weight=weights)
    drawn = np.random.RandomState(0).choice(90, 45, replace=False)
    rows, held = np.sort(drawn[:30]), np.sort(drawn[30:])
    grid = np.array([-0.4, 0.0, 0.6])
    order = rng.randint(0, 30, 200).astype(np.int64)
    stale = rng.randint(0, 3, 200).astype(np.int64)
    got = _core.row_sample_grid(sample.gram, sample.predictions, sample.targets, "log_loss",
                                0.0, 0.05, grid, order, stale, 3, 8, sample.held,
                                sample.held_predictions, sample.held_targets,
                                sample.held_weight)
    want = weight_space_sgd(X[rows], y[rows], w0, 0.1, "log_loss", 0.0, 0.05, grid, order,
                            stale, 8, intercept_decay=0.5, held=(X[held], y[held]),
                            held_weight=sample.held_weight, sample_weight=weights[rows])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_l2_decay_spares_the_intercept_as_weight_space_sgd(fit_intercept):
    """The penalty's decay shrinks the weights each update, not the
    intercept: in the row space, the predictions shrink towards the
    intercept, which the simulation tracks apart (weighted rows, held-out
    rows and all)."""
    rng = np.random.RandomState(6)
    X = rng.standard_normal((90, 6))
    y = np.where(X[:, 0] + 0.3 * rng.standard_normal(90) + 1.0 > 0, 1.0, -1.0)
    weights = rng.uniform(0.2, 5.0, 90)
    w0 = rng.standard_normal(6)
    b0 = 0.7 if fit_intercept else 0.0
    sample = row_sample(X, y, w0, b0, "hinge", 1.0, fit_intercept, 0.5,
                        np.random.RandomState(0), max_rows=30, sample_weight=weights)
    drawn = np.random.RandomState(0).choice(90, 45, replace=False)
    rows, held = np.sort(drawn[:30]), np.sort(drawn[30:])
    grid = np.array([-0.4, 0.0, 0.6])
    order = rng.randint(0, 30, 300).astype(np.int64)
    stale = rng.randint(0, 4, 300).astype(np.int64)
    step, l2 = 0.05, 2.0
    got = _core.row_sample_grid(sample.gram, sample.predictions, sample.targets, "hinge", 1.0,
                                step, grid, order, stale, 4, 10, sample.held,
                                sample.held_predictions, sample.held_targets,
                                sample.held_weight, None, 1.0 - l2 * step, sample.intercept,
                                sample.intercept_rows)

    def reference(l2):
        return weight_space_sgd(X[rows], y[rows], w0, b0, "hinge", 1.0, step, grid, order,
                                stale, 10, intercept_decay=0.5 if fit_intercept else 0.0,
                                held=(X[held], y[held]), held_weight=sample.held_weight,
                                sample_weight=weights[rows], l2=l2)
    want, undecayed = reference(l2), reference(0.0)
    assert np.max(np.abs(want - undecayed)) > 0.05  # the decay matters here
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_decay_outside_its_range_is_refused():
    sample = row_sample(np.eye(3), np.ones(3), np.zeros(3), 0.0, "squared_error", 0.0, False,
                        1.0, np.random.RandomState(0))
    zeros = np.zeros(4, dtype=np.int64)
    with pytest.raises(ValueError, match="decay must lie in"):
        _core.row_sample_grid(sample.gram, sample.predictions, sample.targets,
                              "squared_error", 0.0, 0.1, np.zeros(1), zeros, zeros, 1, 2,
                              decay=1.5)


@pytest.mark.parametrize("sparse", [False])
def test_at_the_penalized_optimum_the_simulation_stays_put(sparse):
    """From ridge regression's optimum, where the penalty holds the loss
    up, SGD with the penalty's decay stays at that loss (its noise at a
    small step aside); without it the simulation would see loss to gain
    that the fit can never have, and choose momentum for it."""
    rng = np.random.RandomState(8)
    X = rng.standard_normal((600, 40 if sparse else 10))
    if sparse:
        X = sp.csr_matrix(X * (rng.random_sample(X.shape) < 0.25))
    dense = X.toarray() if sparse else X
    y = dense @ rng.standard_normal(dense.shape[1]) + 0.1 * rng.standard_normal(600)
    alpha = 0.1
    centered = dense - dense.mean(axis=0)
    w = np.linalg.solve(centered.T @ centered / 600 + alpha * np.eye(dense.shape[1]),
                        centered.T @ (y - y.mean()) / 600)
    b = y.mean() - dense.mean(axis=0) @ w
    sample = row_sample(X, y, w, b, "squared_error", 0.0, True, 0.01 if sparse else 1.0,
                        np.random.RandomState(0))
    assert (sample.scale < 1.0) == sparse  # sparse: the rescaled path
    start = 0.5 * np.mean((sample.targets - sample.predictions) ** 2)
    step = 0.02 / np.mean(np.sum(dense * dense, axis=1))

    def final_loss(l2):
        losses = simulate_momentum_grid(sample, "squared_error", 0.0, step, [1.0], [0.0],
                                        5000, np.random.RandomState(1), every=50, l2=l2)
        return losses[-10:].mean()
    assert final_loss(alpha) == pytest.approx(start, rel=0.05)
    assert final_loss(0.0) < 0.5 * start


@pytest.mark.parametrize("loss,param", [("log_loss", 0.0), ("hinge", 1.0),
                                        ("squared_error", 0.0), ("huber", 0.3)])
def test_features_space_simulates_as_the_rows_space(loss, param, monkeypatch):
    """Dense samples with fewer features than rows are simulated in the
    features' space (cheaper): the same losses as in the rows' space, to
    rounding, with and without an intercept, row weights, held-out rows
    and the L2 decay."""
    from pyasync import momentum
    rng = np.random.RandomState(3)
    for n, fit_intercept, weighted, l2 in [(300, True, False, 0.0), (3000, True, True, 0.01),
                                           (3000, False, False, 0.0), (800, True, True, 0.0)]:
        X = rng.standard_normal((n, 12))
        y = X @ rng.standard_normal(12) + 0.3 * rng.standard_normal(n)
        if loss in ("log_loss", "hinge"):
            y = np.where(y > 0, 1.0, -1.0)
        w, b = 0.1 * rng.standard_normal(12), 0.2  # without an intercept, held fixed
        sample = row_sample(X, y, w, b, loss, param, fit_intercept, 1.0, np.random.RandomState(0),
                            sample_weight=rng.uniform(0.5, 2.0, n) if weighted else None)
        every = max(8, sample.gram.shape[0] // 8)
        assert momentum.feature_space(sample, every)
        assert (sample.held is not None) == (n > 1024)
        step = 0.05 / np.mean(np.sum(X * X, axis=1))

        def simulate():
            return simulate_momentum_grid(sample, loss, param, step, staleness_pmf(8),
                                          MOMENTUM_GRID, 3000, np.random.RandomState(1),
                                          every=every, l2=l2)
        features = simulate()
        with monkeypatch.context() as patch:
            patch.setattr(momentum, "feature_space", lambda *args: False)
            rows = simulate()
        np.testing.assert_allclose(features, rows, rtol=1e-10, atol=1e-12)


def test_samples_of_independent_rows_keep_no_dense_copy():
    """Sparse rows, or as many features as rows, are never simulated in the
    features' space: their samples keep no dense copy of the rows (a wide
    sparse model's would take gigabytes)."""
    rng = np.random.RandomState(4)
    X = sp.random(300, 50_000, density=0.001, format="csr", random_state=rng)
    y = np.where(rng.standard_normal(300) > 0, 1.0, -1.0)
    for memory in (1.0, 0.1):  # rescaled, and held out as dense rows are
        sample = row_sample(X, y, np.zeros(50_000), 0.0, "hinge", 1.0, True, 0.01,
                            np.random.RandomState(0), memory=memory)
        assert sample.rows is None and sample.held_rows is None
    wide = rng.standard_normal((200, 1500))
    sample = row_sample(wide, y[:200], np.zeros(1500), 0.0, "hinge", 1.0, True, 1.0,
                        np.random.RandomState(0))
    assert sample.independent_rows and sample.rows is None


def test_a_sample_that_fits_its_own_noise_is_checked_on_held_out_rows():
    """At the least-squares fit of noisy data, 1024 rows in 200 dimensions
    can still lower their own loss (their own fit), fastest with heavy
    momentum; rows they never saw cannot, and say momentum does not pay."""
    rng = np.random.RandomState(0)
    X = rng.standard_normal((4000, 200))
    y = X[:, :20] @ rng.standard_normal(20) + 3.0 * rng.standard_normal(4000)
    w = np.linalg.lstsq(X, y, rcond=None)[0]
    step = 0.02 / np.mean(np.sum(X * X, axis=1))
    sample = row_sample(X, y, w, 0.0, "squared_error", 0.0, False, 1.0,
                        np.random.RandomState(0))
    watched = choose_momentum(sample, "squared_error", 0.0, step, np.ones(1),
                              np.random.RandomState(1))
    own = choose_momentum(sample._replace(held=None), "squared_error", 0.0, step,
                          np.ones(1), np.random.RandomState(1))
    assert own >= 0.5 and watched <= 0.2


def reference_choice(sample, step, grid, n_updates, epoch, seed):
    """choose_momentum's rule written out on the simulated losses of the
    whole grid: windows of an epoch's updates, the first momentum within
    5% of the way from the start to the lowest (ties: the lowest last
    window)."""
    every = sample.gram.shape[0] // 8
    losses = simulate_momentum_grid(sample, "squared_error", 0.0, step, np.ones(1), grid,
                                    n_updates, np.random.RandomState(seed), every=every)
    window = epoch // every
    smooth = np.array([np.convolve(c, np.ones(window) / window, mode="valid")
                       for c in losses.T]).T
    own, held = (mean_loss("squared_error", 0.0, t, p) for t, p in (
        (sample.targets, sample.predictions), (sample.held_targets, sample.held_predictions)))
    start = own + sample.held_weight * (held - own)
    low = smooth.min()
    reached = smooth <= low + 0.05 * (start - low)
    first = np.where(reached.any(axis=0), reached.argmax(axis=0), len(smooth))
    return grid[np.lexsort((smooth[-1], first))[0]]


def windowed_problem(n):
    rng = np.random.RandomState(3)
    X = rng.standard_normal((n, 20)) * np.logspace(0, -1.5, 20)
    y = X @ rng.standard_normal(20) + rng.standard_normal(n)
    step = 0.05 / np.mean(np.sum(X * X, axis=1))
    sample = row_sample(X, y, np.zeros(20), 0.0, "squared_error", 0.0, False, 1.0,
                        np.random.RandomState(0))
    return sample, step, np.array([-0.5, 0.0, 0.3, 0.6, 0.9])


def test_the_simulated_loss_is_watched_over_windows_of_an_epoch():
    """An epoch's mean loss is what a fit watches: the choice is the first
    momentum whose loss, averaged over windows of an epoch's updates, comes
    within 5% of the way from the start to the lowest (ties: the lowest
    last window). An epoch longer than the budget holds is mostly the floor
    its descent reaches: the budget's updates are simulated and watched
    over windows of half of them."""
    sample, step, grid = windowed_problem(3000)

    def choice(epoch_updates):
        return choose_momentum(sample, "squared_error", 0.0, step, np.ones(1),
                               np.random.RandomState(4), grid=grid,
                               epoch_updates=epoch_updates)
    assert choice(3000) == reference_choice(sample, step, grid, 5000, 3000, 4)
    assert choice(3000) < choice(None)   # a pass favours the fast descent
    horizon = HORIZON_BUDGET // (sample.gram.shape[0] + sample.held.shape[1])
    assert choice(300_000) == reference_choice(sample, step, grid, horizon, horizon // 2, 4)
    assert choice(300_000) < choice(None)  # the floor, not the fast descent


def test_an_epoch_longer_than_the_horizon_is_simulated_twice():
    """Past 5,000 updates an epoch is simulated twice over (its first
    window's descent and the floor the second shows), as far as
    HORIZON_BUDGET row-updates allow; beyond that, as many as it allows. Samples
    of independent rows (sparse) keep 5,000: they would learn their rows
    by heart."""
    sample, step, grid = windowed_problem(20000)
    rows = sample.gram.shape[0] + sample.held.shape[1]
    sparse_sample = row_sample(sp.random(20000, 500, density=0.02, format="csr",
                                         random_state=0), np.ones(20000), np.zeros(500), 0.0,
                               "hinge", 1.0, False, 1.0, np.random.RandomState(0))
    assert sparse_sample.independent_rows and not sample.independent_rows
    assert simulation_horizon(5000, 12000, sparse_sample) == 5000
    assert simulation_horizon(5000, None, sample) == 5000
    assert simulation_horizon(5000, 3000, sample) == 5000
    assert simulation_horizon(5000, 12000, sample) == 24000
    assert simulation_horizon(5000, HORIZON_BUDGET // rows - 1, sample) == HORIZON_BUDGET // rows
    assert simulation_horizon(5000, HORIZON_BUDGET // rows + 1, sample) == HORIZON_BUDGET // rows
    chosen = choose_momentum(sample, "squared_error", 0.0, step, np.ones(1),
                             np.random.RandomState(4), grid=grid, epoch_updates=12000)
    assert chosen == reference_choice(sample, step, grid, 24000, 12000, 4)


def test_own_kick_lumps_come_whole_and_keep_the_mean():
    rng = np.random.RandomState(0)
    rows = rng.randint(0, 7, 4000).astype(np.int64)
    lumps = own_kick_lumps(rows, 7, 0.125, rng)
    assert set(np.unique(lumps)) <= {0.0, 8.0}
    for i in range(7):
        visits = np.sum(rows == i)
        kicks = np.sum(lumps[rows == i] == 8.0)
        assert abs(kicks - visits / 8) <= 1  # once every 8 visits, from a random phase


def test_lumps_multiply_the_rows_own_entry_only():
    """The core's lumps against the row-space update written out:
    q <- mu q - step g K[:, i], with K[i, i] times the update's lump."""
    rng = np.random.RandomState(2)
    A = rng.standard_normal((12, 5))
    K, p0 = A @ A.T * 0.1, rng.standard_normal(12) * 0.3
    y = np.where(rng.standard_normal(12) > 0, 1.0, -1.0)
    order = rng.randint(0, 12, 240).astype(np.int64)
    stale = rng.randint(0, 2, 240).astype(np.int64)
    lumps = own_kick_lumps(order, 12, 0.25, rng)
    grid = np.array([-0.5, 0.5])
    got = _core.row_sample_grid(K, p0, y, "log_loss", 0.0, 0.2, grid, order, stale, 2, 10,
                                lumps=lumps)
    want = np.empty_like(got)
    for k, mu in enumerate(grid):
        p, q, history = p0.copy(), np.zeros(12), [p0.copy()]
        for t, i in enumerate(order):
            g = _core.loss_dloss("log_loss", 0.0, y[i], history[max(t - stale[t], 0)][i])
            kick = K[:, i].copy()
            kick[i] *= lumps[t]
            q = mu * q - 0.2 * g * kick
            p = p + q
            history.append(p.copy())
            if (t + 1) % 10 == 0:
                want[t // 10, k] = mean_loss("log_loss", 0.0, y, p)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    plain = _core.row_sample_grid(K, p0, y, "log_loss", 0.0, 0.2, grid, order, stale, 2, 10)
    assert not np.allclose(got, plain)
    np.testing.assert_array_equal(
        plain, _core.row_sample_grid(K, p0, y, "log_loss", 0.0, 0.2, grid, order, stale, 2,
                                     10, lumps=np.ones(240)))


def test_a_sparse_rows_own_kick_sets_a_floor_momentum_raises():
    """Sparse rows near their fit at a large step, epsilon_insensitive
    (a gradient that does not shrink): each visit overshoots by step x
    |x|^2 / (1 - mu), the floor that lower momentum lowers. Smoothed over
    the sample's many visits (the Gram matrix scaled by m / n at every
    visit) the overshoot disappears and high momentum looks best."""
    rng = np.random.RandomState(0)
    X = sp.random(5000, 2000, density=0.005, format="csr", random_state=rng)
    u = rng.standard_normal(2000)
    y = X @ u + 0.1 * rng.standard_normal(5000)
    step = 0.3 / np.mean(X.multiply(X).sum(axis=1))
    sample = row_sample(X, y, u, 0.0, "epsilon_insensitive", 0.01, False, 1.0,
                        np.random.RandomState(0))
    assert sample.scale == pytest.approx(256 / 5000)
    lumpy = choose_momentum(sample, "epsilon_insensitive", 0.01, step, np.ones(1),
                            np.random.RandomState(1))
    smooth = choose_momentum(sample._replace(scale=1.0), "epsilon_insensitive", 0.01, step,
                             np.ones(1), np.random.RandomState(1))
    assert lumpy <= -0.5 and smooth >= 0.3


def test_a_diverging_momentum_blows_up_and_momentum_zero_does_not():
    rng = np.random.RandomState(0)
    X = rng.standard_normal((20, 5))
    sample = row_sample(X, X @ np.ones(5), np.zeros(5), 0.0, "squared_error", 0.0, False,
                        1.0, rng)
    step = 0.5 / np.max(np.sum(X * X, axis=1))
    # each row's step contracts with momentum 0, blows up with 0.99 at staleness <= 8
    # (the gradient is clipped, as the kernels clip it: huge, not infinite)
    losses = simulate_momentum_grid(sample, "squared_error", 0.0, step, np.ones(9),
                                    [0.0, 0.99], 6000, rng)
    assert np.all(losses[-100:, 1] > 1e20)
    assert losses[-1, 0] < 1e-20
    mu = choose_momentum(sample, "squared_error", 0.0, step, np.ones(9),
                         np.random.RandomState(1), grid=[0.0, 0.99])
    assert mu == 0.0


@pytest.mark.parametrize("n_threads", [2, 3, 19, 40])
def test_momenta_split_over_threads_give_the_same_losses(n_threads):
    """Each momentum's run is its own: the grid split over threads gives
    the one-thread losses bit for bit, held-out rows, lumps, decay and all."""
    rng = np.random.RandomState(4)
    X = sp.random(300, 400, density=0.05, format="csr", random_state=rng)
    y = np.sign(rng.standard_normal(300))
    sample = row_sample(X, y, np.zeros(400), 0.0, "hinge", 1.0, True, 0.01, rng)
    assert sample.scale < 1.0  # lumps in play
    one, split = (simulate_momentum_grid(sample, "hinge", 1.0, 0.5, np.ones(8),
                                         MOMENTUM_GRID, 3000, np.random.RandomState(5),
                                         every=50, l2=1e-3, n_threads=k)
                  for k in (1, n_threads))
    assert one.shape == split.shape == (60, MOMENTUM_GRID.size)
    assert np.array_equal(one, split)
    dense = row_sample(X.toarray()[:, :20], y, np.zeros(20), 0.0, "log_loss", 0.0, True,
                       1.0, rng, max_rows=100)
    assert dense.held is not None  # held-out rows in play
    one, split = (choose_momentum(dense, "log_loss", 0.0, 0.5, np.ones(4),
                                  np.random.RandomState(6), n_threads=k)
                  for k in (1, n_threads))
    assert one == split


def test_auto_momentum_chooses_alike_on_any_number_of_threads():
    """n_jobs lends the simulated engine's momentum="auto" threads for its
    simulations: the fit is the same bit for bit."""
    from sklearn.datasets import make_classification
    from pyasync import AsyncSGDClassifier
    X, y = make_classification(3000, 40, random_state=0)
    fits = [AsyncSGDClassifier(momentum="auto", asynchrony="simulated", n_workers=16,
                               n_jobs=n_jobs, learning_rate="constant", eta0=0.003,
                               max_iter=5, tol=None, random_state=0).fit(X, y)
            for n_jobs in (1, 2, -1)]
    for fit in fits[1:]:
        assert np.array_equal(fit.coef_, fits[0].coef_)
        assert fit.momentum_ == fits[0].momentum_


def test_choose_momentum_never_picks_a_diverging_one():
    rng = np.random.RandomState(1)
    X = rng.standard_normal((200, 10))
    y = X @ rng.standard_normal(10) + 0.5 * rng.standard_normal(200)
    sample = row_sample(X, y, np.zeros(10), 0.0, "squared_error", 0.0, False, 1.0, rng)
    step = 1.0 / np.max(np.linalg.eigvalsh(X.T @ X / 200))
    mu = choose_momentum(sample, "squared_error", 0.0, step, np.ones(32),
                         np.random.RandomState(2))
    losses = simulate_momentum_grid(sample, "squared_error", 0.0, step, np.ones(32), [mu],
                                    5000, np.random.RandomState(3))
    assert np.all(np.isfinite(losses))


@pytest.mark.parametrize("bad", [
    dict(rows=np.array([0, 30])), dict(stale=np.array([0, 9])), dict(every=0),
    dict(p0=np.zeros(29))])
def test_simulation_rejects_inconsistent_input(bad):
    args = dict(rows=np.array([0, 1]), stale=np.array([0, 1]), every=1, p0=np.zeros(30))
    args.update(bad)
    with pytest.raises(ValueError, match="row_sample_grid"):
        _core.row_sample_grid(np.eye(30), args["p0"], np.ones(30), "hinge", 1.0, 0.1,
                              np.zeros(2), args["rows"].astype(np.int64),
                              args["stale"].astype(np.int64), 4, args["every"])


@pytest.mark.parametrize("bad,match", [
    (dict(H=np.zeros((29, 4))), "held-out sizes"), (dict(h0=np.zeros(3)), "held-out sizes"),
    (dict(lumps=np.ones(3)), "lump factor")])
def test_simulation_rejects_inconsistent_held_out_rows_and_lumps(bad, match):
    args = dict(H=np.zeros((30, 4)), h0=np.zeros(4), yh=np.ones(4), lumps=np.ones(2))
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        _core.row_sample_grid(np.eye(30), np.zeros(30), np.ones(30), "hinge", 1.0, 0.1,
                              np.zeros(2), np.array([0, 1]), np.array([0, 1]), 4, 1,
                              args["H"], args["h0"], args["yh"], 0.5, args["lumps"])


def test_momentum_speeds_an_ill_conditioned_noiseless_problem():
    """Least squares with an exact solution and condition number 100 at a
    small step: heavy momentum is the fast way down; the same rows with
    label noise at a large step have a floor that momentum raises, and a
    lower momentum gets there first."""
    rng = np.random.RandomState(3)
    X = rng.standard_normal((600, 10)) * np.logspace(0, -1, 10)
    y = X @ rng.standard_normal(10)
    r2 = np.mean(np.sum(X * X, axis=1))
    clean = row_sample(X, y, np.zeros(10), 0.0, "squared_error", 0.0, False, 1.0, rng)
    fast = choose_momentum(clean, "squared_error", 0.0, 0.05 / r2, np.ones(1),
                           np.random.RandomState(4))
    noisy_y = y + 2.0 * rng.standard_normal(600)
    noisy = row_sample(X, noisy_y, np.zeros(10), 0.0, "squared_error", 0.0, False, 1.0, rng)
    slow = choose_momentum(noisy, "squared_error", 0.0, 0.5 / r2, np.ones(1),
                           np.random.RandomState(4))
    assert fast >= 0.5 and slow < fast


def test_separable_log_loss_wants_momentum():
    """On separable data log_loss keeps falling as the weights grow, and
    momentum grows them faster: a quadratic model at w = 0 would miss it."""
    rng = np.random.RandomState(8)
    X = rng.standard_normal((400, 5))
    y = np.where(X @ np.ones(5) > 0, 1.0, -1.0)
    sample = row_sample(X, y, np.zeros(5), 0.0, "log_loss", 0.0, True, 1.0, rng)
    mu = choose_momentum(sample, "log_loss", 0.0, 0.1 / 5, np.ones(1),
                         np.random.RandomState(0))
    assert mu >= 0.7


def test_dense_sample_size_follows_the_gram_cost():
    assert sample_size(np.zeros((10, 30))) == 1024
    assert sample_size(np.zeros((10, 4096))) == 512
    assert sample_size(np.zeros((1, 10 ** 5))) == 256
    assert sample_size(np.zeros((1, 10 ** 6))) == 33  # 256 MB of rows at most
    assert sample_size(sp.random(10, 5000, density=0.01, format="csr")) == 256
    # dense data stored sparse is sampled as dense data
    assert sample_size(sp.csr_matrix(np.ones((10, 30)))) == 1024
    assert sample_size(sp.csr_matrix(np.ones((10, 4096)))) == 512


def test_sparse_rows_are_revisited_rarely_and_their_kick_bounds_momentum():
    """Sparse rows: the sample's Gram matrix is m/n of the rows' (a row
    comes back once in n updates, not once in m), and the momenta kept are
    those whose amplified kick, step x kick / (1 - mu), stays below 2."""
    rng = np.random.RandomState(6)
    X = sp.random(2000, 500, density=0.02, format="csr", random_state=rng)
    y = rng.standard_normal(2000)
    sample = row_sample(X, y, np.zeros(500), 0.0, "squared_error", 0.0, False, 1.0,
                        np.random.RandomState(0))
    rows = np.sort(np.random.RandomState(0).choice(2000, 256, replace=False))
    full = (X[rows] @ X[rows].T).toarray()
    np.testing.assert_allclose(sample.gram, full * 256 / 2000)
    assert sample.kick == pytest.approx(np.quantile(np.diag(full), 0.9))
    kept = stable_grid(MOMENTUM_GRID, 0.5 / sample.kick, sample.kick)
    assert kept.max() == pytest.approx(0.7) and kept.min() == -0.9
    assert stable_grid(MOMENTUM_GRID, 10.0 / sample.kick, sample.kick).tolist() == [-0.9]


def test_rows_that_forget_between_visits_are_held_out_not_rescaled():
    """Where the L2 decay leaves a row less than MEMORY_KEPT of its own
    update by its next visit, sparse rows are not rescaled by m/n (which
    would scale the other rows' noise away too) but checked on held-out
    rows, as dense samples are."""
    rng = np.random.RandomState(6)
    X = sp.random(2000, 500, density=0.02, format="csr", random_state=rng)
    y = rng.standard_normal(2000)

    def sample(memory):
        return row_sample(X, y, np.zeros(500), 0.0, "squared_error", 0.0, False, 1.0,
                          np.random.RandomState(0), memory=memory)
    kept = sample(MEMORY_KEPT)
    assert kept.scale == pytest.approx(256 / 2000) and kept.held is None
    forgetful = sample(0.5 * MEMORY_KEPT)
    assert forgetful.scale == 1.0 and forgetful.kick == 0.0
    rows = np.random.RandomState(0).choice(2000, 256 + 128, replace=False)
    own, held = np.sort(rows[:256]), np.sort(rows[256:])
    np.testing.assert_allclose(forgetful.gram, (X[own] @ X[own].T).toarray())
    np.testing.assert_allclose(forgetful.held, (X[own] @ X[held].T).toarray())
    np.testing.assert_array_equal(forgetful.held_targets, y[held])
    assert forgetful.held_weight == pytest.approx(0.5 * (1 - 256 / 2000))


def test_rows_past_the_margin_carry_no_kick():
    """A hinge-like loss is flat past its margin: rows there take no step,
    so the kick is taken over the others only."""
    rng = np.random.RandomState(5)
    X = sp.random(3000, 400, density=0.02, format="csr", random_state=rng)
    u = rng.standard_normal(400)
    y = np.where(X @ u > 0, 1.0, -1.0)
    w = 50.0 * u  # most rows far past the margin
    sample = row_sample(X, y, w, 0.0, "hinge", 1.0, False, 1.0, np.random.RandomState(0))
    assert isinstance(sample, RowSample)
    active = sample.targets * sample.predictions < 1.0
    assert 0 < active.mean() < 0.1
    assert sample.kick == 0.0  # under the 90th percentile: all flat rows


def test_no_evidence_when_every_row_is_past_its_margin():
    """Separable data already fitted with room to spare: no sampled row
    takes a step, every momentum leaves the loss at 0, and the choice says
    so (the fit keeps its momentum) instead of picking the grid's first."""
    rng = np.random.RandomState(9)
    X = rng.standard_normal((300, 4))
    u = np.array([1.0, -1.0, 0.5, 0.0])
    keep = np.abs(X @ u) > 0.3
    X = X[keep]
    y = np.where(X @ u > 0, 1.0, -1.0)
    sample = row_sample(X, y, 20.0 * u, 0.0, "hinge", 1.0, True, 1.0, rng)
    assert np.all(sample.targets * sample.predictions > 1.0)
    assert choose_momentum(sample, "hinge", 1.0, 0.01, np.ones(4), rng) is None


def test_huber_curvature_is_the_secant_past_epsilon():
    """Huber is linear past epsilon: its curvature there is the secant's,
    gradient over residual (IRLS's weight), 1 inside."""
    y = np.zeros(5)
    p = np.array([0.05, -0.1, 0.5, -2.0, 10.0])
    got = loss_curvature("huber", 0.1, p, y)
    np.testing.assert_allclose(got, [1.0, 1.0, 0.2, 0.05, 0.01])
