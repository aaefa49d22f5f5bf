"""The classifier: a telescoping MLP on class indices, binary or multiclass."""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import check_classification_targets

from sktelescope._core.losses import classification_loss
from sktelescope._mlp._base import BaseTelescopingMLP
from sktelescope._mlp._targets import ClassTargets

__all__ = ["TelescopingMLPClassifier"]


class TelescopingMLPClassifier(ClassifierMixin, BaseTelescopingMLP):
    """MLP classifier whose training run is an additive, boosting-like ensemble of stages.

    Binary problems use one output (a logit, or a ±1 regression with
    ``loss="squared_error"``), multiclass problems one output per class. ``telescope``
    and the stages decompose ``decision_function``.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(256, 256)
        Width of each hidden layer; ``()`` gives a linear model, for which the
        telescoping model is exact.
    activation : {"relu", "gelu", "tanh", "identity"}, default="relu"
        Activation after each hidden layer.
    loss : {"auto", "log_loss", "squared_error"}, default="auto"
        "auto" is "log_loss" (a logit for binary problems, softmax cross-entropy for
        multiclass); "squared_error" regresses one output on ±1 (binary) or one output per
        class on one-hot targets, as in the paper, and gives uncalibrated
        ``predict_proba`` (clipped outputs).
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        The torch optimizer (fused implementation where available).
    learning_rate : float, default=1e-3
        Base step size; see ``lr_schedule`` and ``warmup_steps``.
    momentum : float, default=0.9
        SGD momentum, in PyTorch's convention ``buf = μ buf + g``.
    nesterov : bool, default=False
        Nesterov momentum for SGD.
    beta_1 : float, default=0.9
        Adam/AdamW first-moment decay.
    beta_2 : float, default=0.999
        Adam/AdamW second-moment decay (the paper's AdamW runs use 0.99).
    weight_decay : float, default=0.0
        Coupled L2 penalty for "sgd"/"adam", decoupled decay for "adamw".
    lr_schedule : {"constant", "linear", "cosine"}, default="constant"
        Decay of the learning rate after warm-up, over the planned steps.
    warmup_steps : int, default=0
        Optimizer steps of linear learning-rate warm-up.
    batch_size : int or None, default=256
        Mini-batch size; ``None`` trains full batch.
    max_iter : int, default=200
        Maximum number of epochs (passes over the training data).
    early_stopping : "auto" or bool, default="auto"
        Hold out ``validation_fraction`` of the data (or use ``X_val, y_val`` given to
        ``fit``), stop when the validation loss stops improving and keep the best epoch.
        "auto" enables it from 1,000 samples on: below that, holding out a validation
        split costs the classifier more accuracy than early stopping saves (measured on
        scikit-learn's bundled datasets at 10 to 160 rows; ``benchmarks/defaults.py``).
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping.
    n_iter_no_change : int or None, default=20
        Epochs without an improvement of more than ``tol`` (validation loss with early
        stopping, training loss without) before training stops; ``None`` trains
        ``max_iter`` epochs. 20 rather than scikit-learn's 10: on the 20 core datasets of
        the benchmark it ranked ahead on 11, tied on 5 and was never worse by more than one
        split-std (``benchmarks/defaults.py``), for about 1.4x the fit time.
    tol : float, default=1e-4
        Smallest improvement of the loss that counts, in the network's units.
    init_scale : float, default=1.0
        Multiplies the initial weights and biases (the paper's ``α`` for grokking).
    max_stages : int, default=50
        Most stages kept. Stages adapt to the run actually made: checkpoints are taken
        every ``k`` steps, starting with ``k = 1``; when more than ``max_stages`` stages
        exist, every other one is merged and ``k`` doubles, so a run of at least
        ``max_stages`` steps ends with between ``max_stages // 2`` and ``max_stages``
        stages, whether it stops early, is interrupted or runs to ``max_iter``. Each stage
        holds ``4 * n_params`` bytes (``8 * n_params`` with Adam/AdamW, whose
        preconditioner is kept too): a 20-256-256-1 network has 71,425 parameters, 286 kB
        per stage, 571 kB with Adam.
    stage_every : int or None, default=None
        A fixed number of optimizer steps per stage instead (refused when the planned run
        would need more than ``max_stages`` stages).
    warm_start : bool, default=False
        When fitted, ``fit`` continues training from the current parameters and
        optimizer state and adds stages (like ``GradientBoostingRegressor``'s
        ``warm_start`` adds trees); the input and target scaling (and the classes) of
        the first fit are kept. The learning-rate schedule is re-planned over all steps.
    n_jobs : int or None, default=None
        torch threads while fitting. ``None``: one thread for networks whose per-step work
        (batch size x parameters) is below 2**27 multiply-adds, where a second thread gains
        little and costs much on a loaded machine, else every available thread; ``-1``:
        every available thread. Never more than ``OMP_NUM_THREADS``,
        ``threadpoolctl.threadpool_limits`` and ``torch.set_num_threads`` allow.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, batch order and the validation split through private
        generators; the global torch RNG is not touched. An integer makes the run
        replayable by the lens.
    device : str, default="cpu"
        Where to train: any torch device string this machine has ("cpu", "cuda",
        "cuda:1", "mps", ...) or "auto" (CUDA when available). Fitted models pickle on
        the CPU whatever device trained them.
    verbose : int, default=0
        ``1`` shows a progress bar over epochs with the training loss.
    numerical_embedding : {None, "pbld", "plr", "ple"}, default=None
        A small learned embedding of each (standardised) feature before the first linear
        layer; ``None`` is the plain network. "pbld" (RealMLP's): ``embedding_dim − 1``
        values ``W_j cos(2π c_j x_j + φ_j) + b_j`` and ``x_j`` itself; "plr" (Gorishniy et
        al. 2022): ``ReLU(W_j [cos(2π c_j x_j), sin(2π c_j x_j)] + b_j)``; "ple":
        piecewise-linear encoding over ``embedding_bins`` quantile bins of the training
        inputs, then a per-feature linear layer. Every embedding is a layer of the tangent
        kernel (stages, kernels, the lens and its monitors see through it).
    embedding_dim : int or None, default=None
        Outputs per feature: ``None`` is 4 for "pbld" (including ``x_j``), 16 for "plr"
        and "ple".
    embedding_frequencies : int, default=16
        Learnable frequencies per feature of the periodic embeddings.
    embedding_sigma : float, default=0.1
        Standard deviation of the initial frequencies (cycles per standard deviation of
        the feature).
    embedding_bins : int, default=48
        Most quantile bins per feature of "ple" (fewer where the feature has fewer
        distinct values).
    embedding_lr_factor : float, default=0.1
        Learning-rate factor of the embedding's parameters (RealMLP's for "pbld"). It is
        a parametrisation, not an optimizer group: the layer computes with ``α φ`` and the
        optimizer steps ``φ``, with ``α`` the factor for Adam/AdamW (whose steps do not
        depend on the gradient's scale) and its square root for SGD; so the optimizer has
        one learning rate and the lens's kernels and preconditioners, taken in the
        optimizer's coordinates, stay exact.
    feature_scaling : bool, default=False
        A learnable diagonal scale ``s ⊙ h`` (``s = 1`` at initialisation) on the first
        linear layer's input, after the embedding (RealMLP's front scale layer).
    feature_scaling_lr_factor : float, default=6.0
        Learning-rate factor of the scale (RealMLP's), a parametrisation as for
        ``embedding_lr_factor``.
    dropout : float, default=0.0
        Dropout probability after every hidden activation. Masks come from the run's own
        generators (a fit replays bit for bit) and act in training steps only; every
        prediction, stage and stage kernel is the evaluation network's. A step's own
        kernel uses its masks on the batch side (``∇f(x)·∇f_mask(x_i)``): the kernel
        extremity and smoother monitors take it so, and the one-step identity holds with
        it (see :func:`sktelescope.lens.tangent_kernel`'s ``dropout_masks``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    run_ : TrainingRun
        The fitted run: network, checkpoints, input/output mappings and loss.
    module_ : torch.nn.Sequential
        The trained network (outputs in decision-function units).
    stages_ : list of Stage
        The run as consecutive blocks of optimizer steps.
    n_stages_ : int
        ``len(stages_)``.
    n_iter_ : int
        Epochs run (accumulated over ``warm_start`` fits).
    n_steps_ : int
        Optimizer steps run.
    best_step_ : int
        Step whose parameters the model keeps.
    loss_curve_ : list of float
        Mean training loss per epoch.
    validation_score_ : ndarray
        Negative validation loss per epoch (only with early stopping).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of str
        Names of the features seen during ``fit`` (pandas input only).

    See Also
    --------
    TelescopingMLPRegressor : The regressor.
    sklearn.neural_network.MLPClassifier : scikit-learn's MLP, without stages.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sktelescope import TelescopingMLPClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = TelescopingMLPClassifier(hidden_layer_sizes=(16,), max_iter=10,
    ...                                random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    >>> clf.telescope(X[:2]).shape == (2, 1 + clf.n_stages_)
    True
    """

    _parameter_constraints = {
        **BaseTelescopingMLP._parameter_constraints,
        "loss": [StrOptions({"auto", "log_loss", "squared_error"})],
    }

    def _target_spec(self, y) -> ClassTargets:
        check_classification_targets(y)
        classes = LabelEncoder().fit(y).classes_
        if len(classes) < 2:
            raise ValueError(
                "The classifier needs samples of at least 2 classes in the data, but the "
                f"data contains only one class: {classes[0]!r}."
            )
        return ClassTargets(classes)

    def _fitted_target_attributes(self, targets) -> dict:
        return {"classes_": targets.classes}

    def _make_loss(self, targets):
        name = "log_loss" if self.loss == "auto" else self.loss
        return classification_loss(name, len(targets.classes))

    def _stratify(self, indices, targets) -> np.ndarray | None:
        counts = np.bincount(indices, minlength=len(targets.classes))
        counts = counts[counts > 0]
        n_val = math.ceil(self.validation_fraction * len(indices))
        n_train = len(indices) - n_val
        every_class_twice = counts.min() >= 2
        room_for_each_class = n_val >= len(counts) and n_train >= len(counts)
        return indices if every_class_twice and room_for_each_class else None

    def decision_function(self, X) -> np.ndarray:
        """Raw network output: a logit (binary) or one score per class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        return self._raw_output(X)

    def predict(self, X) -> np.ndarray:
        """Predict class labels for ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        run = self._fitted_run()
        return run.classes[run.loss.class_index(run.predict_raw(X))]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities for ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        run = self._fitted_run()
        return run.loss.predict_proba(run.predict_raw(X))

    def staged_decision_function(self, X):
        """Yield ``decision_function(X)`` after each stage.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Yields
        ------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        yield from self._staged_raw_output(X)

    def staged_predict(self, X):
        """Yield ``predict(X)`` after each stage; the last equals ``predict(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Yields
        ------
        labels : ndarray of shape (n_samples,)
        """
        run = self._fitted_run()
        for scores in run.staged_raw(X):
            yield run.classes[run.loss.class_index(scores)]

    def staged_predict_proba(self, X):
        """Yield ``predict_proba(X)`` after each stage.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Yields
        ------
        proba : ndarray of shape (n_samples, n_classes)
        """
        run = self._fitted_run()
        for scores in run.staged_raw(X):
            yield run.loss.predict_proba(scores)
