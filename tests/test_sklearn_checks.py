"""scikit-learn's estimator checks over the asynchronous SGD estimators.

The configuration follows scikit-learn's own for SGDClassifier/SGDRegressor
(``max_iter=5``), and the only checks allowed to fail are the ones that
scikit-learn itself expects to fail for SGD."""
from sklearn.utils.estimator_checks import parametrize_with_checks

from pyasync import AsyncSGDClassifier, AsyncSGDRegressor

# Exactly what scikit-learn lists for SGDClassifier / SGDRegressor in
# sklearn/utils/_test_common/instance_generator.py (PER_ESTIMATOR_XFAIL_CHECKS).
SGD_EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "sample_weight is not equivalent to removing/repeating samples."
    ),
    "check_sample_weight_equivalence_on_sparse_data": (
        "sample_weight is not equivalent to removing/repeating samples."
    ),
}


def _expected_failed_checks(estimator):
    return SGD_EXPECTED_FAILED_CHECKS


SIMULATED = dict(asynchrony="simulated", n_workers=4)


@parametrize_with_checks(
    [AsyncSGDClassifier(max_iter=5), AsyncSGDRegressor(max_iter=5),
     AsyncSGDClassifier(max_iter=5, momentum="auto"),
     AsyncSGDRegressor(max_iter=5, momentum="auto"),
     AsyncSGDClassifier(max_iter=5, **SIMULATED), AsyncSGDRegressor(max_iter=5, **SIMULATED),
     AsyncSGDClassifier(max_iter=5, momentum="auto", **SIMULATED),
     AsyncSGDRegressor(max_iter=5, momentum="auto", **SIMULATED),
     AsyncSGDClassifier(max_iter=5, average=True), AsyncSGDRegressor(max_iter=5, average=10)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
