"""What one benchmark run covers: its datasets, models, budget, splits, protocol and lens.

A :class:`RunScope` is built once per run (:func:`paper_defaults` fills in the paper protocol)
and passed, whole, to the report code: which rows of the results files belong to the run, and
what the summary says about them, both come from it.

Two protocols:

- ``"suite"`` (the default): the models, budget and splits the caller names, on any datasets;
  the lens looks at ``telescoping_mlp`` and ``sklearn_gbt`` (or the first trees model).
- ``"paper"``: the paper's Case 2 setup as the primary analysis (:data:`PAPER_DATASETS`):
  regression with MSE, the network :data:`~sktelescope.bench._models.PAPER_NETWORK`
  (``paper_mlp``) against scikit-learn's gradient boosting (``sklearn_gbt``), 25 random-search
  draws per model, 5 disjoint test folds of at most 4,000 points, 2 network seeds per fold,
  and R from the per-step kernel.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

from sktelescope.bench._models import default_models, get_model, is_telescoping
from sktelescope.bench._protocol import Protocol
from sktelescope.datasets import DatasetRef, resolve_datasets

__all__ = [
    "KERNELS",
    "LensSettings",
    "PAPER_CLOSEST",
    "PAPER_DATASETS",
    "PROTOCOLS",
    "RunScope",
    "paper_defaults",
    "resolve_lens_networks",
    "resolve_lens_trees",
    "resolve_models",
    "resolve_scope",
]

PROTOCOLS = ("suite", "paper")
#: How the lens computes R: ``"step"`` the paper's per-step kernel (batch mask, step size and
#: the optimizer's preconditioner as applied), ``"stage"`` the plain tangent kernel at each
#: recorded stage (cheaper; no mask, step size or preconditioner).
KERNELS = ("step", "stage")
#: The paper's Case 2 datasets that are available offline (superconduct is not):
#: ``houses`` is its Fig 5 and, as the same California-housing source, its Fig 14
#: ``california``; ``house_sales`` is in Fig 14.
PAPER_DATASETS = ("reg_num/houses", "reg_cat/house_sales")
#: The closest others in the shared data folder, by the paper's own criterion (regression
#: datasets of the Grinsztajn et al. benchmark with more than 20,000 rows), one per source.
PAPER_CLOSEST = ("reg_num/house_16H", "reg_cat/diamonds", "reg_cat/seattlecrime6")


@dataclass(frozen=True)
class LensSettings:
    """How the lens step measures each split (:mod:`sktelescope.bench._lens`).

    Parameters
    ----------
    network, trees : str
        The models it refits (a TelescopingMLP model of the registry, a trees model).
    kernel : {"step", "stage"}, default="step"
        See :data:`KERNELS`.
    set_size : int, default=500
        Points in every mixed test set, on every dataset: the verdict's tests use only splits
        whose test set can hold this many (see :mod:`sktelescope.bench._lens`).
    network_seeds : int, default=1
        Network refits per split with different seeds; R and the loss are their means.
    step_stride : int, default=10
        With ``kernel="step"``: every ``step_stride``-th optimizer step is measured (R is a
        mean over steps, estimated from an evenly spaced subset).
    max_train : int, default=2000
        Training rows whose kernel norms form R's denominator (a random subset of the rows
        the run trained on).

    Examples
    --------
    >>> LensSettings("paper_mlp", "sklearn_gbt", network_seeds=2).key
    'paper_mlp|step|500|2|10|2000'
    """

    network: str = "telescoping_mlp"
    trees: str = "sklearn_gbt"
    kernel: str = "step"
    set_size: int = 500
    network_seeds: int = 1
    step_stride: int = 10
    max_train: int = 2000

    def __post_init__(self) -> None:
        if self.kernel not in KERNELS:
            raise ValueError(
                f"lens kernel (--lens-kernel) must be one of {list(KERNELS)}; got {self.kernel!r}."
            )
        for name in ("set_size", "network_seeds", "step_stride", "max_train"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"lens {name} must be a positive integer; got {value!r}.")

    @property
    def key(self) -> str:
        """The settings a lens row's meaning depends on, as one string (part of its key)."""
        parts = (self.network, self.kernel, self.set_size, self.network_seeds,
                 self.step_stride, self.max_train)  # fmt: skip
        return "|".join(map(str, parts))

    def describe(self) -> str:
        """One line for the report."""
        every = "every" if self.step_stride == 1 else f"every {self.step_stride}th"
        kernel = (
            f"per-step kernel ({every} optimizer step, batch-masked, with the step size and "
            "the optimizer's preconditioner)"
            if self.kernel == "step"
            else "stage kernel (plain tangent kernel at each recorded stage)"
        )
        seeds = f"{self.network_seeds} network seed{'s' if self.network_seeds > 1 else ''}"
        return (
            f"{self.network} against {self.trees}; {kernel}; mixed test sets of "
            f"{self.set_size} points; {seeds} per split; R's denominator over "
            f"{self.max_train} training rows"
        )


#: The paper protocol's lens: 2 network seeds per fold; every 20th step (a 4,500-row run of
#: batch 128 has ~35 steps per epoch: 90 or more steps measured after 50 epochs), as the
#: preconditioned per-step kernel costs ~0.17 s per step on one core for 3,000 rows.
PAPER_LENS = LensSettings("paper_mlp", "sklearn_gbt", "step", network_seeds=2, step_stride=20)


@dataclass(frozen=True)
class RunScope:
    """One run: its datasets, models, budget, split protocol and lens settings.

    Parameters
    ----------
    datasets, models : tuple of str
    budget : int
        Configurations per model (configuration 0 is the default).
    protocol : Protocol
        The splits (and the protocol's name).
    lens : LensSettings or None
        ``None`` when the run has no lens step.
    notes : tuple of str
        What the scope's resolution decided that a reader should know (datasets left out).
    compared : tuple of LensSettings
        Further networks measured like ``lens.network`` (same trees, kernel and sets), shown
        beside its verdict (``--lens-network plain_mlp,embedded_mlp``).

    Examples
    --------
    >>> scope = RunScope(("sklearn:diabetes",), ("hgb",), 2, Protocol(n_splits=1))
    >>> scope.n_splits, scope.name
    (1, 'suite')
    """

    datasets: tuple[str, ...]
    models: tuple[str, ...]
    budget: int
    protocol: Protocol
    lens: LensSettings | None = None
    notes: tuple[str, ...] = field(default=())
    compared: tuple[LensSettings, ...] = field(default=())

    @property
    def lenses(self) -> tuple[LensSettings, ...]:
        """Every lens of the run: :attr:`lens` (the verdict's), then the :attr:`compared`
        networks measured the same way (empty without a lens step)."""
        return () if self.lens is None else (self.lens, *self.compared)

    @property
    def n_splits(self) -> int:
        """The number of splits (folds with K-fold)."""
        return self.protocol.n_splits

    @property
    def name(self) -> str:
        """The protocol's name (:data:`PROTOCOLS`)."""
        return self.protocol.name

    def to_dict(self) -> dict:
        """The scope as a JSON-ready dict."""
        return asdict(self)

    def describe(self) -> str:
        """A short paragraph for the report: what was run, on what."""
        split = self.protocol.describe()
        text = (
            f"Protocol **{self.name}**: {len(self.datasets)} datasets, models "
            f"{', '.join(self.models)}, {self.budget} configurations per model and split "
            f"(the default and {self.budget - 1} random draw{'' if self.budget == 2 else 's'} "
            "seeded by dataset and split); "
            f"{split}."
        )
        if self.lens is not None:
            text += f" Lens: {self.lens.describe()}."
        if self.compared:
            others = ", ".join(c.network for c in self.compared)
            text += f" The same lens, beside {self.lens.network}'s verdict: {others}."
        return text


def paper_defaults(max_train: int = 10_000, seed: int = 0) -> dict:
    """The paper protocol's settings: what :func:`~sktelescope.bench.run_benchmark` uses for
    every argument the caller leaves out under ``protocol="paper"``.

    Examples
    --------
    >>> d = paper_defaults()
    >>> d["budget"], d["protocol"].n_splits, d["protocol"].max_test, d["models"]
    (25, 5, 4000, ('paper_mlp', 'sklearn_gbt'))
    """
    return {
        "datasets": PAPER_DATASETS + PAPER_CLOSEST,
        "models": ("paper_mlp", "sklearn_gbt"),
        "budget": 25,
        "protocol": Protocol(
            n_splits=5, kfold=True, max_train=max_train, max_test=4_000, seed=seed, name="paper"
        ),  # fmt: skip
        "lens": PAPER_LENS,
    }


#: The network the lens looks at by default (the project's own).
NETWORK = "telescoping_mlp"
#: The lens's trees model by default: the paper's (scikit-learn GradientBoosting).
LENS_TREES = "sklearn_gbt"


def resolve_models(models: Sequence[str] | None) -> list[str]:
    """Check model names (default: every installed model but the slow ``realmlp``).

    Examples
    --------
    >>> resolve_models(["hgb"])
    ['hgb']
    """
    if models is None:
        return default_models()
    if isinstance(models, str) or not models:
        raise ValueError(
            f"models must be a non-empty list of model names; got {models!r}. Pass e.g. "
            "['hgb', 'xgboost'] (--models hgb,xgboost), or None for every installed model."
        )
    for name in models:
        spec = get_model(name)
        if not spec.is_available():
            raise ImportError(
                f"Model {name!r} needs {list(spec.requires)}, which cannot be imported here. "
                "Install it or leave it out of --models."
            )
    return list(dict.fromkeys(models))


def resolve_lens_trees(
    lens: bool, models: Sequence[str], lens_trees: str | None, network: str = NETWORK
) -> str | None:
    """The trees model the lens looks at, or ``None`` when the lens step is skipped.

    An explicit ``lens_trees`` must be a trees model among ``models``. By default it is
    ``sklearn_gbt`` (the paper's trees), or the first trees model of ``models`` when that one
    is not run. The lens looks at the run's own fits, so it needs ``network`` and a trees
    model among ``models``: without them it is skipped with a warning.

    Examples
    --------
    >>> resolve_lens_trees(True, ["telescoping_mlp", "sklearn_gbt", "hgb"], None)
    'sklearn_gbt'
    >>> resolve_lens_trees(True, ["telescoping_mlp", "xgboost"], None)
    'xgboost'
    """
    if lens_trees is not None:
        if lens_trees not in models or get_model(lens_trees).family != "trees":
            raise ValueError(
                f"lens_trees (--lens-trees) must be a trees model among the run's models "
                f"{list(models)}; got {lens_trees!r}. Add it to --models, or choose one of "
                f"{[m for m in models if get_model(m).family == 'trees']}."
            )
    if not lens:
        return None
    trees = [m for m in models if get_model(m).family == "trees"]
    chosen = lens_trees or (LENS_TREES if LENS_TREES in models else next(iter(trees), None))
    missing = [m for m, ok in ((network, network in models), ("a trees model", chosen)) if not ok]
    if missing:
        warnings.warn(
            f"The lens step looks at the run's fits of {network} and a trees model, but "
            f"--models has no {' and no '.join(missing)}: skipped. Add them to --models, or "
            "pass --no-lens.",
            stacklevel=3,
        )
        return None
    return chosen


@dataclass(frozen=True)
class _Request:
    """What the caller of :func:`~sktelescope.bench.run_benchmark` asked for (``None``: the
    protocol's default)."""

    datasets: Sequence[str] | None
    models: Sequence[str] | None
    data_dir: object
    tier: str
    budget: int | None
    n_splits: int | None
    kfold: bool
    max_train: int
    seed: int
    lens: bool
    lens_trees: str | None
    lens_kernel: str | None
    lens_networks: Sequence[str] | None = None


def resolve_scope(protocol: str = "suite", **request) -> tuple[RunScope, list[DatasetRef]]:
    """The run's :class:`RunScope` and its dataset references, from what the caller asked for.

    Parameters
    ----------
    protocol : {"suite", "paper"}
    **request
        ``datasets``, ``models``, ``data_dir``, ``tier``, ``budget``, ``n_splits``, ``kfold``,
        ``max_train``, ``seed``, ``lens``, ``lens_trees``, ``lens_kernel``, ``lens_networks``, as
        :func:`~sktelescope.bench.run_benchmark` takes them (``None``: the protocol's
        default).

    Examples
    --------
    >>> scope, refs = resolve_scope("suite", datasets=["sklearn:diabetes"], models=["hgb"],
    ...                             data_dir=None, tier="core", budget=None, n_splits=None,
    ...                             kfold=False, max_train=10_000, seed=0, lens=False,
    ...                             lens_trees=None, lens_kernel=None)
    >>> scope.budget, scope.n_splits, scope.lens is None
    (5, 3, True)
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol (--protocol) must be one of {list(PROTOCOLS)}; got "
                         f"{protocol!r}.")  # fmt: skip
    req = _Request(**request)
    if protocol == "paper":
        return _paper_scope(req)
    models = resolve_models(req.models)
    split = Protocol(n_splits=3 if req.n_splits is None else req.n_splits, kfold=req.kfold,
                     max_train=req.max_train, seed=req.seed)  # fmt: skip
    networks = resolve_lens_networks(req.lens_networks, models, NETWORK)
    trees = resolve_lens_trees(req.lens, models, req.lens_trees, networks[0])
    lens = None if trees is None else LensSettings(networks[0], trees, req.lens_kernel or "step")
    refs = resolve_datasets(req.datasets, data_dir=req.data_dir, tier=req.tier)
    budget = 5 if req.budget is None else req.budget
    scope = RunScope(tuple(r.name for r in refs), tuple(models), budget, split, lens,
                     compared=_compared(lens, networks))  # fmt: skip
    return scope, refs


def _compared(lens: LensSettings | None, networks: Sequence[str]) -> tuple[LensSettings, ...]:
    return () if lens is None else tuple(replace(lens, network=n) for n in networks[1:])


def resolve_lens_networks(
    names: Sequence[str] | None, models: Sequence[str], default: str
) -> list[str]:
    """The networks the lens measures: the first one's verdict, the others beside it.

    ``None`` gives ``[default]``. Each name must be a TelescopingMLP model of the registry
    (the lens opens its run) among ``models`` (the lens refits the run's best configuration).

    Examples
    --------
    >>> resolve_lens_networks(None, ["telescoping_mlp", "hgb"], "telescoping_mlp")
    ['telescoping_mlp']
    >>> resolve_lens_networks(["telescoping_mlp", "embedded_mlp"],
    ...                       ["telescoping_mlp", "embedded_mlp", "hgb"], "telescoping_mlp")
    ['telescoping_mlp', 'embedded_mlp']
    """
    if names is None:
        return [default]
    if isinstance(names, str) or not names:
        raise ValueError(
            f"lens_networks (--lens-network) must be a non-empty list of model names; got "
            f"{names!r}. Pass e.g. ['plain_mlp', 'embedded_mlp'] "
            "(--lens-network plain_mlp,embedded_mlp)."
        )
    lensable = [m for m in models if is_telescoping(m)]
    for name in names:
        if name not in lensable:
            raise ValueError(
                f"lens_networks (--lens-network) names {name!r}, which is not a TelescopingMLP "
                f"model among the run's models {list(models)}: the lens refits the run's best "
                f"configuration of a telescoping network. Choose from {lensable}, or add the "
                "model to --models."
            )
    return list(dict.fromkeys(names))


def _paper_scope(req: _Request) -> tuple[RunScope, list[DatasetRef]]:
    defaults = paper_defaults(req.max_train, req.seed)
    models = resolve_models(req.models or defaults["models"])
    n_splits = defaults["protocol"].n_splits if req.n_splits is None else req.n_splits
    if not isinstance(n_splits, int) or n_splits < 5:
        raise ValueError(
            f"The paper protocol needs at least 5 disjoint test folds; got n_splits (--splits) "
            f"= {n_splits!r}. Leave --splits out for 5."
        )
    refs, notes = _paper_datasets(req)
    split = Protocol(n_splits=n_splits, kfold=True, max_train=req.max_train, max_test=4_000,
                     seed=req.seed, name="paper")  # fmt: skip
    network = next((m for m in ("paper_mlp", NETWORK) if m in models), "paper_mlp")
    networks = resolve_lens_networks(req.lens_networks, models, network)
    trees = resolve_lens_trees(req.lens, models, req.lens_trees, networks[0])
    lens = None if trees is None else replace(
        PAPER_LENS, network=networks[0], trees=trees, kernel=req.lens_kernel or "step"
    )  # fmt: skip
    budget = defaults["budget"] if req.budget is None else req.budget
    scope = RunScope(tuple(r.name for r in refs), tuple(models), budget, split, lens, notes,
                     _compared(lens, networks))  # fmt: skip
    return scope, refs


def _paper_datasets(req: _Request) -> tuple[list[DatasetRef], tuple[str, ...]]:
    """The paper's datasets present in the data folder (or the ones named), regression only."""
    if req.datasets is not None:
        refs = resolve_datasets(req.datasets, data_dir=req.data_dir, tier=req.tier)
        notes: tuple[str, ...] = ()
    elif req.data_dir is None:
        raise ValueError(
            "The paper protocol runs on the paper's datasets (houses, house_sales and the "
            "closest others of the Grinsztajn et al. benchmark): pass the data folder with "
            "--data-dir (e.g. ../shared/data/tabular), or name regression datasets with "
            "--datasets."
        )
    else:
        refs, missing = [], []
        for name in PAPER_DATASETS + PAPER_CLOSEST:
            try:
                refs += resolve_datasets([name], data_dir=req.data_dir)
            except ValueError:
                missing.append(name)
        notes = tuple(f"{name} is not in the data folder: left out." for name in missing)
        if not refs:
            raise ValueError(
                f"None of the paper protocol's datasets {list(PAPER_DATASETS + PAPER_CLOSEST)} "
                f"is in {str(req.data_dir)!r}; name regression datasets with --datasets."
            )
    wrong = [r.name for r in refs if r.task not in (None, "regression")]
    if wrong:
        raise ValueError(
            f"The paper protocol is regression with MSE; {wrong} are not regression "
            "datasets. Leave them out, or use --protocol suite."
        )
    return refs, notes
