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
    nnz = rng.poisson(nnz_per_row, n_samples).clip(1, n_features)
    indptr = np.zeros(n_samples + 1, dtype=np.int64)
    np.cumsum(nnz, out=indptr[1:])
    cols = np.searchsorted(cdf, rng.random_sample(indptr[-1])).clip(0, n_features - 1)
    cols = rng.permutation(n_features)[cols].astype(np.int32)  # hide the rank order
    vals = rng.exponential(1.0, indptr[-1])
    X = sp.csr_matrix((vals, cols, indptr), shape=(n_samples, n_features))
    X.sum_duplicates()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    X = sp.diags(1.0 / np.maximum(norms, 1e-12)) @ X
    X = X.tocsr().astype(dtype)
    w = rng.standard_normal(n_features) * (rng.random_sample(n_features) < 0.2)
    score = X @ w
    y = score + noise * score.std() * rng.standard_normal(n_samples) > np.median(score)
    return X, y.astype(np.int64)
