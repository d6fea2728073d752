"""momentum="auto"'s surrogate simulation (compiled) against a plain numpy
version of the same recursion, and its handling of divergence."""
import numpy as np
import pytest

from pyasync import _core
import scipy.sparse as sp

from pyasync.momentum import (choose_momentum, loss_curvature, simulate_momentum_grid,
                              stable_grid, surrogate_rows)


def numpy_surrogate(Z, step, l2, grid, rows, stale, depth, every, noise):
    c, d = grid.size, Z.shape[1]
    e = np.ones((c, d)) / np.sqrt(d)
    v = np.zeros((c, d))
    past = np.repeat(e[None], depth, axis=0)
    out = np.empty((rows.size // every, c))
    for t in range(rows.size):
        read = past[(t - stale[t]) % depth] if t >= stale[t] else past[0]
        x = Z[rows[t]]
        v = grid[:, None] * v - step * (np.outer(read @ x + noise[rows[t]], x) + l2 * read)
        e = e + v
        past[(t + 1) % depth] = e
        if (t + 1) % every == 0:
            r = e @ Z.T + noise
            out[t // every] = 0.5 * np.mean(r * r, axis=1)
    return out


@pytest.mark.parametrize("depth", [1, 5, 40])
@pytest.mark.parametrize("l2", [0.0, 0.01])
@pytest.mark.parametrize("with_noise", [False, True])
def test_compiled_surrogate_matches_numpy(depth, l2, with_noise):
    rng = np.random.RandomState(depth)
    Z = rng.standard_normal((30, 7)) * 0.3
    noise = rng.standard_normal(30) * 0.2 if with_noise else np.zeros(30)
    grid = np.round(np.linspace(-0.5, 0.5, 5), 10)
    rows = rng.randint(0, 30, 500).astype(np.int64)
    stale = rng.randint(0, depth, 500).astype(np.int64)
    got = _core.surrogate_grid(Z, 0.05, l2, grid, rows, stale, depth, 10,
                               noise if with_noise else None)
    want = numpy_surrogate(Z, 0.05, l2, grid, rows, stale, depth, 10, noise)
    assert np.all(np.isfinite(want))
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_diverged_momentum_stays_infinite():
    rng = np.random.RandomState(0)
    Z = rng.standard_normal((20, 5))
    grid = np.array([0.0, 0.99])
    # a step that blows up with momentum 0.99 at staleness 8, not with 0
    losses = simulate_momentum_grid(Z, 0.04, np.ones(9), grid, 6000, rng)
    blown = np.flatnonzero(~np.isfinite(losses[:, 1]))
    assert blown.size and np.all(~np.isfinite(losses[blown[0]:, 1]))
    assert np.all(np.isfinite(losses[:, 0]))


def test_choose_momentum_never_picks_a_diverging_one():
    rng = np.random.RandomState(1)
    Z = rng.standard_normal((50, 10))
    step = 1.0 / np.max(np.linalg.eigvalsh(Z.T @ Z / 50))
    mu = choose_momentum(Z, step, np.ones(32), np.random.RandomState(2))
    losses = simulate_momentum_grid(Z, step, np.ones(32), [mu], 3000,
                                    np.random.RandomState(3))
    assert np.all(np.isfinite(losses))


@pytest.mark.parametrize("bad", [
    dict(rows=np.array([0, 30])), dict(stale=np.array([0, 9])), dict(every=0)])
def test_surrogate_rejects_out_of_range_draws(bad):
    args = dict(rows=np.array([0, 1]), stale=np.array([0, 1]), every=1)
    args.update(bad)
    with pytest.raises(ValueError, match="surrogate_grid"):
        _core.surrogate_grid(np.ones((30, 3)), 0.1, 0.0, np.zeros(2),
                             args["rows"].astype(np.int64), args["stale"].astype(np.int64),
                             4, args["every"])


def test_surrogate_noise_is_what_the_rows_span_cannot_remove():
    """On a least-squares problem the surrogate's noise is, in curvature
    units, the residual of the best fit on the sampled rows: zero when y is
    linear in X, and orthogonal to the rows' span otherwise."""
    rng = np.random.RandomState(0)
    X = rng.standard_normal((200, 5))
    y_exact = X @ rng.standard_normal(5)
    w = np.zeros(5)
    Z, noise, _ = surrogate_rows(X, y_exact, w, 0.0, "squared_error", 0.0, False, 1.0,
                              np.random.RandomState(1))
    assert np.allclose(noise, 0.0, atol=1e-10)
    y_noisy = y_exact + rng.standard_normal(200)
    Z, noise, _ = surrogate_rows(X, y_noisy, w, 0.0, "squared_error", 0.0, False, 1.0,
                              np.random.RandomState(1))
    assert np.linalg.norm(noise) > 0.1
    np.testing.assert_allclose(Z.T @ noise, 0.0, atol=1e-8)


def test_noise_floor_lowers_the_chosen_momentum():
    """The same rows and step with the gradient noise of a non-realizable
    problem: the noise floor that momentum raises makes a lower momentum
    the faster way to the target."""
    rng = np.random.RandomState(3)
    Z = rng.standard_normal((200, 10)) / np.sqrt(10)
    projector = Z @ np.linalg.pinv(Z)
    noise = (np.eye(200) - projector) @ rng.standard_normal(200)
    clean = choose_momentum(Z, 0.05, np.ones(1), np.random.RandomState(4))
    noisy = choose_momentum(Z, 0.05, np.ones(1), np.random.RandomState(4), noise=noise)
    assert noisy < clean


def test_rows_past_the_margin_leave_the_surrogate():
    """Hinge-like losses are flat past their margin: a row there takes no
    step, so it carries neither curvature nor noise; with log_loss (never
    flat) every row stays."""
    rng = np.random.RandomState(5)
    X = rng.standard_normal((200, 6))  # under max_rows: every row, in order
    y = np.where(X[:, 0] + 0.3 * rng.standard_normal(200) > 0, 1.0, -1.0)
    w = np.array([3.0, 0, 0, 0, 0, 0])
    met = y * (X @ w) >= 1.0
    assert 0.2 < met.mean() < 0.9
    for loss in ("hinge", "squared_hinge", "modified_huber"):
        rows, noise, _ = surrogate_rows(X, y, w, 0.0, loss, 1.0, True, 1.0,
                                        np.random.RandomState(0))
        assert np.allclose(rows[met], 0.0) and np.allclose(noise[met], 0.0)
        assert np.all(np.linalg.norm(rows[~met], axis=1) > 0)
    rows, noise, _ = surrogate_rows(X, y, w, 0.0, "log_loss", 0.0, True, 1.0,
                                    np.random.RandomState(0))
    assert np.all(np.linalg.norm(rows, axis=1) > 0)
    assert np.linalg.norm(noise) > 0.1


def test_sparse_rows_are_revisited_rarely_and_their_kick_bounds_momentum():
    """Sparse rows: the surrogate's curvature per row is m/n of the sample's
    (a row comes back once in n updates), and the momenta kept are those
    whose amplified kick, step x kick / (1 - mu), stays below 2."""
    rng = np.random.RandomState(6)
    X = sp.random(2000, 500, density=0.02, format="csr", random_state=rng)
    y = rng.standard_normal(2000)
    dense, _, dense_kick = surrogate_rows(X.toarray(), y, np.zeros(500), 0.0,
                                          "squared_error", 0.0, False, 1.0,
                                          np.random.RandomState(0))
    rows, _, kick = surrogate_rows(X, y, np.zeros(500), 0.0, "squared_error", 0.0,
                                   False, 1.0, np.random.RandomState(0))
    assert dense_kick == 0.0
    np.testing.assert_allclose(np.sum(rows ** 2), np.sum(dense ** 2) * 256 / 2000)
    assert kick == pytest.approx(np.quantile(np.sum(dense ** 2, axis=1), 0.9))
    grid = np.round(np.linspace(-0.9, 0.9, 19), 10)
    kept = stable_grid(grid, 0.5 / kick, kick)
    assert kept.max() == pytest.approx(0.7) and kept.min() == -0.9
    assert stable_grid(grid, 10.0 / kick, kick).tolist() == [-0.9]


def test_huber_curvature_is_the_secant_past_epsilon():
    """Huber is linear past epsilon: its curvature there is the secant's,
    gradient over residual (IRLS's weight), 1 inside."""
    y = np.zeros(5)
    p = np.array([0.05, -0.1, 0.5, -2.0, 10.0])
    got = loss_curvature("huber", 0.1, p, y)
    np.testing.assert_allclose(got, [1.0, 1.0, 0.2, 0.05, 0.01])
