"""scikit-learn's estimator checks on both estimators, with small budgets, at the defaults,
on the paper preset, with the network options and with the optimisation options on."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sktelescope import TelescopingMLPClassifier, TelescopingMLPRegressor

ESTIMATORS = (TelescopingMLPRegressor, TelescopingMLPClassifier)

SMALL = dict(hidden_layer_sizes=(16,), max_iter=30, learning_rate=1e-2, random_state=0)
#: The plain network of the paper (the defaults are the "tabular" preset).
PAPER = dict(preset="paper")
#: The network options (tests/test_network_options.py): a periodic embedding with the
#: feature scale and dropout, and the piecewise-linear embedding (bins fitted on the data).
OPTIONS = [
    dict(numerical_embedding="pbld", embedding_frequencies=4, feature_scaling=True, dropout=0.1),
    dict(numerical_embedding="ple", embedding_bins=8, embedding_dim=4),
]

#: The optimisation options (tests/test_training_options.py): each is on in one of the two.
REGRESSOR_OPTIONS = dict(
    input_scaling="robust", lr_schedule="coslog4", optimizer="adamw", weight_decay=0.05,
    weight_decay_biases=False, beta_2=0.95,
)  # fmt: skip
CLASSIFIER_OPTIONS = dict(
    input_scaling="quantile", lr_schedule="flat_cosine", label_smoothing=0.1,
    weight_decay=0.01, weight_decay_biases=False,
)  # fmt: skip

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
        *(cls(**SMALL, **options) for options in [{}, PAPER, *OPTIONS] for cls in ESTIMATORS),
        TelescopingMLPRegressor(**SMALL, **REGRESSOR_OPTIONS),
        TelescopingMLPClassifier(**SMALL, **CLASSIFIER_OPTIONS),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
