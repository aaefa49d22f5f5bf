"""scikit-learn's estimator checks on both estimators, with small budgets."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sktelescope import TelescopingMLPClassifier, TelescopingMLPRegressor

ESTIMATORS = (TelescopingMLPRegressor, TelescopingMLPClassifier)

SMALL = dict(hidden_layer_sizes=(16,), max_iter=30, learning_rate=1e-2, random_state=0)
#: The network options (tests/test_network_options.py): a periodic embedding with the
#: feature scale and dropout, and the piecewise-linear embedding (bins fitted on the data).
OPTIONS = [
    dict(numerical_embedding="pbld", embedding_frequencies=4, feature_scaling=True, dropout=0.1),
    dict(numerical_embedding="ple", embedding_bins=8, embedding_dim=4),
]

MINIBATCH_REASON = (
    "mini-batch training visits samples in batches: a zero weight and a removed sample, "
    "or an integer weight and a repeated sample, give different batches and so different "
    "parameter trajectories"
)

EXPECTED_FAILED_CHECKS = {
    "TelescopingMLPRegressor": {
        "check_sample_weight_equivalence_on_dense_data": MINIBATCH_REASON,
    },
    "TelescopingMLPClassifier": {
        "check_sample_weight_equivalence_on_dense_data": MINIBATCH_REASON,
    },
}


@parametrize_with_checks(
    [
        *(cls(**SMALL, **options) for options in [{}, *OPTIONS] for cls in ESTIMATORS),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
