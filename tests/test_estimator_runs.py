"""The run as users meet it: stages that fit the run made, monitors on the real fit,
continued runs, warnings at the caller, threads, devices and pickles."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktelescope import TelescopingMLPClassifier, TelescopingMLPRegressor
from sktelescope._core.checkpoints import CheckpointStore
from sktelescope._core.observers import StageRecorder
from sktelescope._core.training import Step, TrainResult
from sktelescope._mlp._threads import resolve_threads, thread_ceiling
from sktelescope.exceptions import FitInterruptedWarning
from sktelescope.lens import TelescopingMonitor, telescoping_trace

SMALL = dict(hidden_layer_sizes=(8,), batch_size=16, random_state=0)


# ------------------------------------------------------------------ stage budget
class _FakeTrainer:
    """Just enough of a Trainer for a StageRecorder: a step count and a module."""

    def __init__(self):
        self.step, self.module = 0, torch.nn.Linear(1, 1)
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=0.1)


def _record_run(n_steps: int, max_stages: int) -> CheckpointStore:
    store, trainer = CheckpointStore(), _FakeTrainer()
    recorder = StageRecorder(store, max_stages)
    recorder.on_train_begin(trainer)
    for t in range(1, n_steps + 1):
        trainer.step = t
        recorder.on_step(Step(t, 0, torch.arange(1), torch.zeros(()), trainer.module,
                              trainer.optimizer, trainer))  # fmt: skip
    recorder.on_train_end(trainer, TrainResult(n_steps=n_steps))
    return store


@pytest.mark.parametrize("max_stages", [1, 2, 7, 50])
def test_stage_count_ends_between_half_and_all_of_max_stages_for_any_run_length(max_stages):
    for n_steps in range(1, 20 * max_stages + 3):
        store = _record_run(n_steps, max_stages)
        assert store.steps[0] == 0 and store.steps[-1] == n_steps
        assert all(a < b for a, b in zip(store.steps, store.steps[1:]))
        assert store.n_stages <= max_stages
        assert store.n_stages >= min(n_steps, max_stages // 2)


def test_early_stopping_keeps_enough_stages_of_the_run_up_to_the_best_epoch():
    for n in (2000, 3000):  # the make_regression cases: 6 and 8 stages before
        X, y = make_regression(n_samples=n, n_features=20, noise=10.0, random_state=0)
        est = TelescopingMLPRegressor(random_state=0, max_iter=150).fit(X, y)
        assert est.best_step_ < est.n_steps_  # early stopping ended the run
        assert 25 <= est.n_stages_ <= 50
        assert est.stages_[-1].steps.stop - 1 == est.best_step_
        np.testing.assert_allclose(est.telescope(X).sum(1), est.predict(X), rtol=1e-10)
        np.testing.assert_allclose(list(est.staged_predict(X))[-1], est.predict(X), rtol=1e-12)


def test_a_user_stage_every_still_wins():
    X, y = make_regression(n_samples=64, n_features=3, random_state=0)
    est = TelescopingMLPRegressor(**SMALL, max_iter=5, stage_every=3, max_stages=10).fit(X, y)
    assert [s.steps.start for s in est.stages_] == [1, 4, 7, 10, 13, 16, 19]


def test_an_interrupted_run_keeps_a_full_stage_budget(monkeypatch):
    from sktelescope._core import training

    original = training.Trainer._train_step

    def interrupting(self, *args):
        if self.step == 137:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(training.Trainer, "_train_step", interrupting)
    X, y = make_regression(n_samples=64, n_features=3, random_state=0)
    with pytest.warns(FitInterruptedWarning):
        est = TelescopingMLPRegressor(**SMALL, max_iter=100, max_stages=20).fit(X, y)
    assert est.n_steps_ == 137 and 10 <= est.n_stages_ <= 20


# ------------------------------------------------------------------ monitors
def test_a_monitor_on_the_users_own_fit_sees_the_run_a_replay_sees():
    X, y = make_regression(n_samples=64, n_features=3, random_state=0)
    monitor = TelescopingMonitor(X[:5])
    est = TelescopingMLPRegressor(**SMALL, max_iter=3).fit(X, y, monitors=[monitor])
    replayed = telescoping_trace(est, X, y, X[:5])
    own = est.run_.outputs(torch.as_tensor(monitor.exact_, dtype=torch.float64))
    np.testing.assert_array_equal(own, replayed.exact)
    np.testing.assert_allclose(own[-1], est.predict(X[:5]), rtol=1e-6)


def test_monitors_are_routed_through_a_pipeline_and_checked():
    X, y = make_regression(n_samples=64, n_features=3, random_state=0)
    monitor = TelescopingMonitor(X[:4])
    pipe = make_pipeline(StandardScaler(), TelescopingMLPRegressor(**SMALL, max_iter=2))
    pipe.fit(X, y, telescopingmlpregressor__monitors=[monitor])
    assert monitor.exact_.shape[0] == pipe[-1].n_steps_ + 1
    with pytest.raises(TypeError, match="monitors must be training observers"):
        TelescopingMLPRegressor(**SMALL, max_iter=2).fit(X, y, monitors=[print])


# ------------------------------------------------------------------ warm start
def test_warm_start_continues_the_same_run_bit_for_bit():
    X, y = make_regression(n_samples=80, n_features=4, noise=5.0, random_state=0)
    params = dict(**SMALL, n_iter_no_change=None, early_stopping=False)
    whole = TelescopingMLPRegressor(**params, max_iter=5, preset="paper").fit(X, y)
    cont = TelescopingMLPRegressor(**params, max_iter=3, warm_start=True, preset="paper").fit(X, y)
    n_stages_before = cont.n_stages_
    cont.set_params(max_iter=2).fit(X, y)
    assert cont.n_steps_ == whole.n_steps_ and cont.n_iter_ == 5
    assert torch.equal(cont.run_.final_parameters, whole.run_.final_parameters)
    assert cont.n_stages_ >= n_stages_before
    assert [s.steps for s in cont.stages_][-1].stop - 1 == cont.n_steps_
    np.testing.assert_allclose(cont.telescope(X).sum(1), cont.predict(X), rtol=1e-10)


def test_warm_start_refuses_new_classes_and_new_features():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.repeat([0, 1], 20)
    clf = TelescopingMLPClassifier(**SMALL, max_iter=2, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="labels not seen"):
        clf.fit(X, np.repeat([0, 2], 20))
    with pytest.raises(ValueError, match="features"):
        clf.fit(X[:, :2], y)


# ------------------------------------------------------------------ warnings, threads, devices
def test_warnings_point_at_the_callers_line_also_through_a_pipeline():
    X, y = make_regression(n_samples=64, n_features=3, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TelescopingMLPRegressor(**SMALL, max_iter=1, preset="paper").fit(X, y)
        make_pipeline(
            StandardScaler(), TelescopingMLPRegressor(**SMALL, max_iter=1, preset="paper")
        ).fit(X, y)
    convergence = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(convergence) == 2
    assert all(w.filename == __file__ for w in convergence)


def test_default_threads_are_one_for_small_networks_and_respect_limits():
    from threadpoolctl import threadpool_limits

    assert resolve_threads(None, work_per_step=256 * 71_425) == 1
    assert resolve_threads(-1, work_per_step=1) == thread_ceiling()
    with threadpool_limits(limits=1, user_api="openmp"):
        assert thread_ceiling() == 1
        assert resolve_threads(8, work_per_step=1) == 1
    before = torch.get_num_threads()
    X, y = make_regression(n_samples=64, n_features=3, random_state=0)
    TelescopingMLPRegressor(**SMALL, max_iter=1, n_jobs=1).fit(X, y)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("device", ["cuda:7", "mps", "meta", "not-a-device"])
def test_devices_that_do_not_work_here_are_refused_before_training(device):
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that GPU")
    X, y = make_regression(n_samples=32, n_features=3, random_state=0)
    with pytest.raises(ValueError, match="device="):
        TelescopingMLPRegressor(**SMALL, max_iter=1, device=device).fit(X, y)


def test_fitted_models_pickle_on_the_cpu_and_predict_the_same():
    X, y = make_regression(n_samples=64, n_features=3, random_state=0)
    est = TelescopingMLPRegressor(**SMALL, max_iter=2, device="cpu").fit(X, y)
    back = pickle.loads(pickle.dumps(est))
    assert back.run_.device.type == "cpu" and back.stages_[0]._run is back.run_
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    np.testing.assert_array_equal(back.telescope(X), est.telescope(X))
