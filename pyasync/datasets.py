"""Generated data sets for benchmarks and the report."""
import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state


def make_dense_classification(n_samples=200_000, n_features=100, dtype=np.float64,
                              noise=0.1, random_state=0):
    """Standardised Gaussian features, labels from a planted hyperplane with
    label noise."""
    rng = check_random_state(random_state)
    X = rng.standard_normal((n_samples, n_features)).astype(dtype)
    w = rng.standard_normal(n_features)
    y = (X @ w + noise * np.sqrt(n_features) * rng.standard_normal(n_samples) > 0)
    return X, y.astype(np.int64)


def make_rcv1_like(n_samples=200_000, n_features=50_000, nnz_per_row=75,
                   dtype=np.float64, power=1.1, noise=0.1, random_state=0):
    """Sparse text-like data: about `nnz_per_row` non-zeros a row, column
    frequency following a power law (a few very common terms, a long tail),
    rows scaled to unit norm (tf-idf style), labels from a planted sparse
    hyperplane."""
    rng = check_random_state(random_state)
    ranks = np.arange(1, n_features + 1, dtype=np.float64)
    freq = ranks ** -power
    cdf = np.cumsum(freq / freq.sum())
    hide = rng.permutation(n_features)  # common terms anywhere, not first

    def draw(n_rows, draws_per_row):
        nnz = rng.poisson(draws_per_row, n_rows).clip(1, None)
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(nnz, out=indptr[1:])
        cols = np.searchsorted(cdf, rng.random_sample(indptr[-1])).clip(0, n_features - 1)
        vals = rng.exponential(1.0, indptr[-1])
        X = sp.csr_matrix((vals, hide[cols].astype(np.int32), indptr),
                          shape=(n_rows, n_features))
        X.sum_duplicates()  # common terms repeat: fewer distinct than drawn
        return X

    pilot = draw(min(n_samples, 2000), nnz_per_row)
    distinct = pilot.nnz / pilot.shape[0]
    X = draw(n_samples, nnz_per_row * nnz_per_row / max(distinct, 1e-9))
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    X = sp.diags(1.0 / np.maximum(norms, 1e-12)) @ X
    X = X.tocsr().astype(dtype)
    w = rng.standard_normal(n_features) * (rng.random_sample(n_features) < 0.2)
    score = X @ w
    y = score + noise * score.std() * rng.standard_normal(n_samples) > np.median(score)
    return X, y.astype(np.int64)
