"""One source for the parameter docs the regressor and the classifier share.

As xgboost writes its shared parameter docs once: each estimator's class docstring holds a
``{parameters}`` line in its Parameters section, and :func:`document_parameters` fills it
with the docs of every ``__init__`` parameter in signature order, taking the estimator's
own entries (``loss``, ``early_stopping``, ...) first and :data:`SHARED_PARAMETERS` for the
rest. numpydoc and Sphinx read the assembled ``__doc__``. ``tests/test_docs.py`` checks that
every parameter is documented, in order.
"""

from __future__ import annotations

import inspect
import textwrap

from sktelescope._core.network import ACTIVATIONS
from sktelescope._core.optim import SCHEDULES
from sktelescope._mlp._presets import PRESETS, preset_choices
from sktelescope._mlp._scaling import INPUT_SCALINGS

__all__ = ["SHARED_PARAMETERS", "document_parameters"]

_MARKER = "{parameters}"


def _options(names) -> str:
    return "{" + ", ".join(f'"{n}"' for n in names) + "}"


#: numpydoc entries (``name : type, default=...`` then the description indented by 4) of
#: the parameters both estimators have.
SHARED_PARAMETERS: dict[str, str] = {
    "hidden_layer_sizes": f"""\
hidden_layer_sizes : tuple of int or "auto", default="auto"
    Width of each hidden layer; ``()`` gives a linear model, for which the
    telescoping model is exact.
    {preset_choices("hidden_layer_sizes")}""",
    "activation": f"""\
activation : {_options(ACTIVATIONS)} or "auto", default="auto"
    Activation after each hidden layer (RealMLP-TD uses ``"selu"`` for
    classification and ``"mish"`` for regression).
    {preset_choices("activation")}""",
    "preset": f"""\
preset : {_options(PRESETS)}, default="tabular"
    Where every setting left at ``"auto"`` takes its value (a value set explicitly
    always wins; ``resolved_params_`` shows what a fit used). "tabular" is the
    network chosen by measurement on the 20 core datasets of the benchmark
    (``benchmarks/defaults.py core``): RealMLP's periodic embeddings and feature
    scale, Adam with ``beta_2=0.95``, dropout 0.15, a flat-then-cosine schedule over
    64 epochs keeping the best validation epoch, and for the classifier SELU, three
    layers and label smoothing; it ranks with RealMLP-TD at about a tenth of its fit
    time. "paper" is the plain ReLU network of the paper (and the package's default
    until 2026-12-07): no embedding, constant learning rate, early stopping at
    patience 20.""",
    "optimizer": """\
optimizer : {"adam", "adamw", "sgd"}, default="adam"
    The torch optimizer (fused implementation where available).""",
    "learning_rate": """\
learning_rate : float, default=1e-3
    Base step size; see ``lr_schedule`` and ``warmup_steps``.""",
    "momentum": """\
momentum : float, default=0.9
    SGD momentum, in PyTorch's convention ``buf = μ buf + g``.""",
    "nesterov": """\
nesterov : bool, default=False
    Nesterov momentum for SGD.""",
    "beta_1": """\
beta_1 : float, default=0.9
    Adam/AdamW first-moment decay.""",
    "beta_2": f"""\
beta_2 : float or "auto", default="auto"
    Adam/AdamW second-moment decay (the paper's AdamW runs use 0.99, RealMLP 0.95).
    {preset_choices("beta_2")}""",
    "weight_decay": """\
weight_decay : float, default=0.0
    Coupled L2 penalty for "sgd"/"adam", decoupled decay for "adamw".""",
    "weight_decay_biases": """\
weight_decay_biases : bool, default=True
    Whether ``weight_decay`` acts on the biases too. ``False`` decays the weights only
    (as scikit-learn's MLP and RealMLP do): the optimizer then has one parameter group
    for the weights and one for the biases, and the lens replays both exactly.""",
    "lr_schedule": f"""\
lr_schedule : {_options(SCHEDULES)} or "auto", default="auto"
    Factor of the learning rate after warm-up, over the planned steps: constant, a
    linear or cosine decay to 0, "flat_cosine" (constant for the first half, then a
    cosine to 0: RealMLP's "flat_cos") or "coslog4" (RealMLP's multi-cycle schedule:
    four cosine cycles, each rising from 0 to 1 and back, of lengths 1, 2, 4 and 8
    fifteenths of the run).
    {preset_choices("lr_schedule")}""",
    "warmup_steps": """\
warmup_steps : int, default=0
    Optimizer steps of linear learning-rate warm-up.""",
    "batch_size": """\
batch_size : int or None, default=256
    Mini-batch size; ``None`` trains full batch.""",
    "max_iter": f"""\
max_iter : int or "auto", default="auto"
    Maximum number of epochs (passes over the training data).
    {preset_choices("max_iter")}""",
    "validation_fraction": """\
validation_fraction : float, default=0.1
    Share of the training data held out for early stopping.""",
    "n_iter_no_change": f"""\
n_iter_no_change : int, None or "auto", default="auto"
    Epochs without an improvement of more than ``tol`` (validation loss with early
    stopping, training loss without) before training stops; ``None`` trains
    ``max_iter`` epochs (and still keeps the best validation epoch with early
    stopping). For the paper's network, 20 rather than scikit-learn's 10: on the 20
    core datasets of the benchmark it ranked ahead on 11, tied on 5 and was never worse
    by more than one split-std (``benchmarks/defaults.py``), for about 1.4x the fit
    time.
    {preset_choices("n_iter_no_change")}""",
    "tol": """\
tol : float, default=1e-4
    Smallest improvement of the loss that counts, in the network's units.""",
    "init_scale": """\
init_scale : float, default=1.0
    Multiplies the initial weights and biases of the linear layers (the paper's ``α``
    for grokking; the embedding and the feature scale keep their own initialisation).""",
    "input_scaling": f"""\
input_scaling : {_options(INPUT_SCALINGS)}, default="standard"
    How the features are scaled for the network, learnt on the training inputs:
    "standard" subtracts the mean and divides by the standard deviation; "robust"
    centres each column by its median, divides it by its interquartile range and
    clips it smoothly, ``x / sqrt(1 + (x / 3)²)`` (RealMLP's preprocessing: a few
    outliers cannot compress the rest of a column); "quantile" maps each column
    through its empirical quantiles to a standard normal. Constant columns become 0
    under "robust" and "quantile".""",
    "max_stages": """\
max_stages : int, default=50
    Most stages kept. Stages adapt to the run actually made: checkpoints are taken
    every ``k`` steps, starting with ``k = 1``; when more than ``max_stages`` stages
    exist, every other one is merged and ``k`` doubles, so a run of at least
    ``max_stages`` steps ends with between ``max_stages // 2`` and ``max_stages``
    stages, whether it stops early, is interrupted or runs to ``max_iter``. Each stage
    holds ``4 * n_params`` bytes (``8 * n_params`` with Adam/AdamW, whose
    preconditioner is kept too): a 20-256-256-1 network has 71,425 parameters, 286 kB
    per stage, 571 kB with Adam.""",
    "stage_every": """\
stage_every : int or None, default=None
    A fixed number of optimizer steps per stage instead (refused when the planned run
    would need more than ``max_stages`` stages).""",
    "warm_start": """\
warm_start : bool, default=False
    When fitted, ``fit`` continues the fitted run for up to ``max_iter`` more epochs and
    adds stages (like ``GradientBoostingRegressor``'s ``warm_start`` adds trees). It goes
    on from the model kept: after early stopping, the restored best epoch with that
    epoch's optimizer state, batch order and dropout generators, not the epochs after
    it. The random seed, the input and target scaling (and the classes) of the first fit
    are kept; the data may differ, and each fit's data, seed and settings are recorded
    (``run_.fits``) so the lens replays every part. The learning-rate schedule is
    re-planned over all steps, and every other optimizer setting is the continued fit's;
    a changed architecture (layer sizes, activation, embedding and its settings, feature
    scale, dropout), loss, optimizer, ``init_scale``, ``device``, ``input_scaling`` or
    ``label_smoothing`` is refused, whether set directly or through ``preset``. A
    continuation that fails (bad input, divergence, an interrupt) leaves the fitted model
    as it was.""",
    "n_jobs": """\
n_jobs : int or None, default=None
    The torch threads while fitting. ``None``: one thread for networks whose per-step work
    (batch size x parameters) is below 2**27 multiply-adds, where a second thread gains
    little and costs much on a loaded machine, else every available thread; ``-1``:
    every available thread. Never more than ``OMP_NUM_THREADS``,
    ``threadpoolctl.threadpool_limits`` and ``torch.set_num_threads`` allow.""",
    "random_state": """\
random_state : int, RandomState instance or None, default=None
    Seeds initialisation, batch order and the validation split through private
    generators; the global torch RNG is not touched. An integer makes the run
    replayable by the lens.""",
    "device": """\
device : str, default="cpu"
    Where to train: any torch device string this machine has ("cpu", "cuda",
    "cuda:1", "mps", ...) or "auto" (CUDA when available). Fitted models pickle on
    the CPU whatever device trained them.""",
    "verbose": """\
verbose : int, default=0
    ``1`` shows a progress bar over epochs with the training loss.""",
    "numerical_embedding": f"""\
numerical_embedding : {{None, "pbld", "plr", "ple", "auto"}}, default="auto"
    A small learned embedding of each (standardised) feature before the first linear
    layer; ``None`` is the plain network. "pbld" (RealMLP's): ``embedding_dim − 1``
    values ``W_j cos(2π c_j x_j + φ_j) + b_j`` and ``x_j`` itself; "plr" (Gorishniy et
    al. 2022): ``ReLU(W_j [cos(2π c_j x_j), sin(2π c_j x_j)] + b_j)``; "ple":
    piecewise-linear encoding over ``embedding_bins`` quantile bins of the training
    inputs, then a per-feature linear layer. Every embedding is a layer of the tangent
    kernel (stages, kernels, the lens and its monitors see through it).
    {preset_choices("numerical_embedding")}""",
    "embedding_dim": """\
embedding_dim : int or None, default=None
    Outputs per feature: ``None`` is 4 for "pbld" (including ``x_j``), 16 for "plr"
    and "ple".""",
    "embedding_frequencies": """\
embedding_frequencies : int, default=16
    Learnable frequencies per feature of the periodic embeddings.""",
    "embedding_sigma": """\
embedding_sigma : float, default=0.1
    Standard deviation of the initial frequencies (cycles per standard deviation of
    the feature).""",
    "embedding_bins": """\
embedding_bins : int, default=48
    Most quantile bins per feature of "ple" (fewer where the feature has fewer
    distinct values).""",
    "embedding_lr_factor": """\
embedding_lr_factor : float, default=0.1
    Learning-rate factor of the embedding's parameters (RealMLP's for "pbld"). It is
    a parametrisation, not an optimizer group: the layer computes with ``α φ`` and the
    optimizer steps ``φ``, with ``α`` the factor for Adam/AdamW (whose steps do not
    depend on the gradient's scale) and its square root for SGD; so the optimizer has
    one learning rate and the lens's kernels and preconditioners, taken in the
    optimizer's coordinates, stay exact.""",
    "feature_scaling": f"""\
feature_scaling : bool or "auto", default="auto"
    A learnable diagonal scale ``s ⊙ h`` (``s = 1`` at initialisation) on the first
    linear layer's input, after the embedding (RealMLP's front scale layer).
    {preset_choices("feature_scaling")}""",
    "feature_scaling_lr_factor": """\
feature_scaling_lr_factor : float, default=6.0
    Learning-rate factor of the scale (RealMLP's), a parametrisation as for
    ``embedding_lr_factor``.""",
    "dropout": f"""\
dropout : float or "auto", default="auto"
    Dropout probability after every hidden activation. Masks come from the run's own
    generators (a fit replays bit for bit) and act in training steps only; every
    prediction, stage and stage kernel is the evaluation network's. A step's own
    kernel uses its masks on the batch side (``∇f(x)·∇f_mask(x_i)``): the kernel
    extremity and smoother monitors take it so, and the one-step identity holds with
    it (see :func:`sktelescope.lens.tangent_kernel`'s ``dropout_masks``).
    {preset_choices("dropout")}""",
}


def document_parameters(**own: str):
    """Class decorator: fill the docstring's ``{parameters}`` line with the parameter docs.

    Every ``__init__`` parameter, in signature order, gets the entry given here (the
    estimator's own wording) or else its :data:`SHARED_PARAMETERS` entry; a parameter with
    neither is left out (and ``tests/test_docs.py`` fails).

    Examples
    --------
    >>> @document_parameters(size="size : int, default=1\\n    How many.")
    ... class Thing:
    ...     '''A thing.
    ...
    ...     Parameters
    ...     ----------
    ...     {parameters}
    ...     '''
    ...     def __init__(self, size=1, verbose=0): ...
    >>> print(Thing.__doc__.split("----------")[1].rstrip())
    <BLANKLINE>
        size : int, default=1
            How many.
        verbose : int, default=0
            ``1`` shows a progress bar over epochs with the training loss.
    """

    def decorate(cls):
        names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
        entries = [own.get(n, SHARED_PARAMETERS.get(n)) for n in names]
        block = "\n".join(e for e in entries if e is not None)
        indented = textwrap.indent(block, "    ").lstrip()
        if _MARKER not in (cls.__doc__ or ""):
            raise TypeError(f"{cls.__name__}'s docstring has no {_MARKER} line to fill.")
        cls.__doc__ = cls.__doc__.replace(_MARKER, indented)
        return cls

    return decorate
