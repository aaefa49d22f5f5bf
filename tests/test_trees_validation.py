"""TreeTelescope validates everything it is given (the red team's cases and their neighbours).

Every smoother quantity is computed from the X_train/y_train the user passes, so a wrong pair
must be refused, not silently turned into wrong weights; so must any array with the wrong
columns, and any configuration whose leaves no weighted sum of pseudo-residuals can express.
"""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)

import sktelescope.trees as trees_package
from sktelescope.trees import TreeTelescope

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

pytestmark = [
    pytest.mark.filterwarnings("ignore:TreeTelescope. weights @ pseudo_residuals"),
    pytest.mark.usefixtures("one_openmp_thread"),
]


def _data(task, rows=slice(0, 300)):
    loader = load_diabetes if task == "reg" else load_breast_cancer
    X, y = loader(return_X_y=True)
    return X[rows], y[rows]


MODELS = {
    ("xgboost", "reg"): lambda: xgb.XGBRegressor(n_estimators=8, max_depth=3, n_jobs=1),
    ("xgboost", "clf"): lambda: xgb.XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1),
    ("lightgbm", "reg"): lambda: lgb.LGBMRegressor(n_estimators=8, verbose=-1, n_jobs=1),
    ("lightgbm", "clf"): lambda: lgb.LGBMClassifier(n_estimators=8, verbose=-1, n_jobs=1),
    ("gb", "reg"): lambda: GradientBoostingRegressor(n_estimators=8, max_depth=3),
    ("gb", "clf"): lambda: GradientBoostingClassifier(n_estimators=8, max_depth=3),
    ("hgb", "reg"): lambda: HistGradientBoostingRegressor(max_iter=8, early_stopping=False),
    ("hgb", "clf"): lambda: HistGradientBoostingClassifier(max_iter=8, early_stopping=False),
}
_FITTED: dict = {}


def _fitted(lib, task):
    if (lib, task) not in _FITTED:
        X, y = _data(task)
        _FITTED[lib, task] = MODELS[lib, task]().fit(X, y)
    return _FITTED[lib, task]


def _wrong_pairs(task):
    """Training data gone wrong in the ways a caller gets it wrong."""
    X, y = _data(task)
    rng = np.random.default_rng(0)
    changed = y + 1.0 if task == "reg" else np.where(np.arange(len(y)) < 30, 1 - y, y)
    return {
        "rows reversed": (X[::-1], y),
        "labels shuffled": (X, rng.permutation(y)),
        "labels changed": (X, changed),
        "other rows": _data(task, slice(-300, None)),
    }


@pytest.mark.parametrize("lib, task", list(MODELS), ids=[f"{lib}-{task}" for lib, task in MODELS])
@pytest.mark.parametrize(
    "wrong", ["rows reversed", "labels shuffled", "labels changed", "other rows"]
)
def test_data_the_model_was_not_fitted_on_is_refused(lib, task, wrong):
    X, y = _wrong_pairs(task)[wrong]
    with pytest.raises(ValueError, match=r"X_train/y_train do not reproduce the \w+'s "):
        TreeTelescope(_fitted(lib, task), X, y)


@pytest.mark.parametrize("lib, task", list(MODELS), ids=[f"{lib}-{task}" for lib, task in MODELS])
def test_the_right_data_is_accepted_exactly(lib, task):
    X, y = _data(task)
    tel = TreeTelescope(_fitted(lib, task), X, y)
    assert tel.approximations_ == []


def test_x_train_with_fewer_features_is_refused():
    X, y = _data("reg")
    model = xgb.XGBRegressor(n_estimators=3, n_jobs=1).fit(X[:, :4], y)
    match = "X_train has 2 features, but this XGBRegressor was fitted on 4 features"
    with pytest.raises(ValueError, match=match):
        TreeTelescope(model, X[:, :2], y)


def test_every_public_method_checks_the_columns_it_is_given():
    X, y = _data("reg")
    tel = TreeTelescope(_fitted("xgboost", "reg"), X, y)
    stage, bad = tel.stages_[1], X[:5, :3]
    calls = {
        "X": [
            tel.telescope,
            lambda A: list(tel.staged_predict(A)),
            tel.reconstruction_errors,
            stage.predict,
            stage.kernel,
            stage.weights,
            stage.kernel_row_norms,
        ],
        "Z": [lambda A: stage.kernel(X[:5], A), lambda A: stage.kernel_row_norms(X[:5], A)],
        "X_eval": [tel.smoother, tel.effective_parameters],
    }
    for name, methods in calls.items():
        for method in methods:
            with pytest.raises(ValueError, match=f"^{name} has 3 features, but this XGBRegressor"):
                method(bad)


def test_dataframe_columns_must_be_the_fitted_ones():
    pd = pytest.importorskip("pandas")
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = GradientBoostingRegressor(n_estimators=3).fit(X, y)
    tel = TreeTelescope(model, X, y)
    np.testing.assert_allclose(tel.telescope(X).sum(axis=1), model.predict(X))
    reordered = pd.DataFrame(X[X.columns[::-1]])
    with pytest.raises(ValueError, match="X has columns .* fitted on columns"):
        tel.telescope(reordered)


REFUSED = {
    "xgb scale_pos_weight": (
        lambda: xgb.XGBClassifier(n_estimators=3, scale_pos_weight=10, n_jobs=1),
        "clf",
        "scale_pos_weight=10",
    ),
    "lgbm scale_pos_weight": (
        lambda: lgb.LGBMClassifier(n_estimators=3, scale_pos_weight=10, verbose=-1),
        "clf",
        "scale_pos_weight=10",
    ),
    "lgbm is_unbalance": (
        lambda: lgb.LGBMClassifier(n_estimators=3, is_unbalance=True, verbose=-1),
        "clf",
        "is_unbalance",
    ),
    "lgbm reg_sqrt": (
        lambda: lgb.LGBMRegressor(n_estimators=3, reg_sqrt=True, verbose=-1),
        "reg",
        "reg_sqrt",
    ),
    "lgbm dart": (
        lambda: lgb.LGBMRegressor(n_estimators=3, boosting_type="dart", verbose=-1),
        "reg",
        "boosting=dart",
    ),
    "lgbm rf": (
        lambda: lgb.LGBMRegressor(
            n_estimators=3, boosting_type="rf", subsample=0.5, subsample_freq=1, verbose=-1
        ),
        "reg",
        "boosting=rf",
    ),
    "lgbm monotone": (
        lambda: lgb.LGBMRegressor(n_estimators=3, monotone_constraints=[1] + [0] * 9, verbose=-1),
        "reg",
        "monotone_constraints",
    ),
    "lgbm categorical": (
        lambda: lgb.LGBMRegressor(n_estimators=3, verbose=-1),
        "reg-categorical",
        "categorical_feature",
    ),
    "xgb monotone": (
        lambda: xgb.XGBRegressor(n_estimators=3, monotone_constraints=(1,) + (0,) * 9),
        "reg",
        "monotone_constraints",
    ),
    "hgb monotone": (
        lambda: HistGradientBoostingRegressor(max_iter=3, monotonic_cst=[1] + [0] * 9),
        "reg",
        "monotonic_cst",
    ),
    "hgb class_weight": (
        lambda: HistGradientBoostingClassifier(max_iter=3, class_weight="balanced"),
        "clf",
        "class_weight",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_what_cannot_be_represented_is_refused(case):
    make, task, match = REFUSED[case]
    X, y = _data(task.split("-")[0])
    fit_kw = {"categorical_feature": [1]} if task.endswith("categorical") else {}
    model = make().fit(X, y, **fit_kw)
    with pytest.raises(ValueError, match=f"does not support {match}"):
        TreeTelescope(model, X, y)


def test_changing_the_callers_arrays_changes_nothing():
    X, y = _data("reg")
    X_mine, y_mine = X.copy(), y.copy()
    model = _fitted("gb", "reg")
    tel = TreeTelescope(model, X_mine, y_mine)
    residuals, errors = tel.pseudo_residuals(3).copy(), tel.reconstruction_errors()
    X_mine[:] = X_mine[::-1].copy()
    y_mine += 100.0
    np.testing.assert_allclose(tel.telescope(X_mine).sum(axis=1), model.predict(X_mine))
    np.testing.assert_array_equal(tel.pseudo_residuals(3), residuals)
    np.testing.assert_array_equal(tel.reconstruction_errors()["weights"], errors["weights"])
    X_mine[:5] = X[200:205]  # changed in place again: the leaf cache follows the content
    np.testing.assert_allclose(tel.telescope(X_mine).sum(axis=1), model.predict(X_mine))
    with pytest.raises(ValueError, match="read-only"):
        tel.stages_[0].pseudo_residuals[0] = 0.0


def _with_missing(X, rate, seed, infinite=False):
    rng = np.random.default_rng(seed)
    X = X.copy()
    X[rng.random(X.shape) < rate] = np.nan
    if infinite:
        X[0, 0], X[1, 1], X[2, 2] = np.inf, -np.inf, np.inf
    return X


@pytest.mark.parametrize("lib", ["xgboost", "lightgbm", "hgb"])
def test_missing_and_infinite_values_follow_the_library(lib):
    X, y = _data("reg")
    X_nan = _with_missing(X, 0.1, 0)
    model = MODELS[lib, "reg"]().fit(X_nan, y)
    tel = TreeTelescope(model, X_nan, y)
    assert tel.approximations_ == []
    X_eval = _with_missing(X[:40], 0.2, 1, infinite=True)
    raw = model.predict(X_eval, output_margin=True) if lib == "xgboost" else model.predict(X_eval)
    scale = np.abs(raw).max()
    np.testing.assert_allclose(tel.telescope(X_eval).sum(axis=1), raw, rtol=0, atol=1e-6 * scale)
    errors = tel.reconstruction_errors(X_eval)
    assert errors["weights"].max() < 1e-5 * np.abs(y).max()


def test_gradient_boosting_refuses_missing_values_as_it_does():
    X, y = _data("reg")
    tel = TreeTelescope(_fitted("gb", "reg"), X, y)
    for value, match in [(np.nan, "Input X contains NaN"), (np.inf, "Input X contains infinity")]:
        X_bad = X[:5].copy()
        X_bad[0, 0] = value
        with pytest.raises(ValueError, match=match):
            tel.telescope(X_bad)
        with pytest.raises(ValueError, match=match.replace(" X ", " X_train ")):
            TreeTelescope(_fitted("gb", "reg"), np.vstack([X_bad, X[5:]]), y)


APPROXIMATE = {  # sampled rows the library does not store: only a range check is possible
    "xgb subsample": lambda: xgb.XGBRegressor(n_estimators=8, subsample=0.5, n_jobs=1),
    "lgbm bagging": lambda: lgb.LGBMRegressor(
        n_estimators=8, subsample=0.5, subsample_freq=1, verbose=-1, n_jobs=1
    ),
    "gb subsample": lambda: GradientBoostingRegressor(n_estimators=8, subsample=0.5),
    "gb split not re-drawable": lambda: GradientBoostingRegressor(
        n_estimators=50, n_iter_no_change=2, random_state=np.random.RandomState(0)
    ),
}


@pytest.mark.parametrize("case", list(APPROXIMATE))
def test_approximate_checks_are_listed_in_approximations(case):
    X, y = _data("reg")
    model = APPROXIMATE[case]().fit(X, y)
    with pytest.warns(UserWarning, match="could only be checked approximately"):
        tel = TreeTelescope(model, X, y)
    assert any("could only be checked approximately" in note for note in tel.approximations_)
    assert len(tel.approximations_) >= 2  # the approximation itself, then the check
    with pytest.raises(ValueError, match="even allowing for|leaf sizes"):
        TreeTelescope(model, X[:, ::-1], y)  # columns swapped: the leaves hold other points


EXACT_DESPITE_APPROXIMATION = {  # the smoother is approximate, the leaf formula is known
    "xgb reg_alpha": lambda: xgb.XGBRegressor(n_estimators=8, reg_alpha=20.0, n_jobs=1),
    "xgb max_delta_step": lambda: xgb.XGBRegressor(n_estimators=8, max_delta_step=5, n_jobs=1),
    "lgbm reg_alpha": lambda: lgb.LGBMRegressor(n_estimators=8, reg_alpha=20.0, verbose=-1),
    "lgbm path_smooth": lambda: lgb.LGBMRegressor(n_estimators=8, path_smooth=5.0, verbose=-1),
    "lgbm max_delta_step": lambda: lgb.LGBMRegressor(
        n_estimators=8, max_delta_step=2.0, verbose=-1
    ),
}


@pytest.mark.parametrize("case", list(EXACT_DESPITE_APPROXIMATION))
def test_penalised_clipped_and_smoothed_leaves_are_checked_exactly(case):
    X, y = _data("reg")
    model = EXACT_DESPITE_APPROXIMATION[case]().fit(X, y)
    with pytest.warns(UserWarning, match="only approximates"):
        tel = TreeTelescope(model, X, y)
    assert len(tel.approximations_) == 1  # the smoother's approximation, not the check's
    assert "checked approximately" not in tel.approximations_[0]
    shuffled = np.random.default_rng(0).permutation(y)
    with pytest.raises(ValueError, match="leaf values \\(largest relative error"):
        TreeTelescope(model, X, shuffled)


def test_trees_package_imports_run_one_way():
    """telescope -> stage -> spec, backends -> spec: no cycle, no import hidden in a function
    except the optional libraries, no TYPE_CHECKING import, nothing from lens or bench."""
    folder = pathlib.Path(trees_package.__file__).parent
    graph = {}
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        module = f"sktelescope.trees.{path.stem}"
        imports = _project_imports(tree)
        assert not any(i.startswith(("sktelescope.lens", "sktelescope.bench")) for i in imports)
        assert "TYPE_CHECKING" not in path.read_text(), path.name
        for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            nested = [n for n in ast.walk(function) if isinstance(n, ast.Import | ast.ImportFrom)]
            names = {a.name for n in nested for a in n.names} | {
                n.module for n in nested if isinstance(n, ast.ImportFrom)
            }
            assert names <= {"xgboost", "lightgbm"}, (path.name, function.name, names)
        graph[module] = {i for i in imports if i.startswith("sktelescope.trees")} - {module}
    assert "sktelescope.trees._telescope" not in graph["sktelescope.trees._stage"]
    for backend in ("_xgboost", "_lightgbm", "_sklearn"):
        assert graph[f"sktelescope.trees.{backend}"] <= {"sktelescope.trees._spec"}
    _assert_acyclic({k: v for k, v in graph.items() if not k.endswith("__init__")})


def _project_imports(tree: ast.Module) -> set[str]:
    """The sktelescope modules a module imports (``from package import module`` included)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module == "sktelescope.trees":
                found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {name for name in found if name.startswith("sktelescope")}


def _assert_acyclic(graph: dict) -> None:
    done: set = set()

    def visit(node, path):
        assert node not in path, f"import cycle: {' -> '.join([*path, node])}"
        if node in done:
            return
        for child in graph.get(node, ()):
            visit(child, [*path, node])
        done.add(node)

    for node in graph:
        visit(node, [])


def test_the_public_names_are_re_exported():
    assert trees_package.__all__ == ["TreeSmoother", "TreeStage", "TreeTelescope"]
    for name in trees_package.__all__:
        assert getattr(trees_package, name).__module__.startswith("sktelescope.trees._")


def test_a_round_that_does_not_exist_is_named():
    X, y = load_diabetes(return_X_y=True)
    tel = TreeTelescope(GradientBoostingRegressor(n_estimators=3).fit(X, y), X, y)
    with pytest.raises(IndexError, match="k must index one of the 3 stages, got 99"):
        tel.pseudo_residuals(99)
    assert tel.pseudo_residuals(-1).shape == (len(X),)
