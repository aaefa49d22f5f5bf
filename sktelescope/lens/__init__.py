"""The telescoping lens: the paper's measurements on fitted networks (and, where the math
allows, boosted trees through :class:`sktelescope.trees.TreeTelescope`).

``sktelescope.lens`` is the one public import path of every name below.

- Per-step telescoping and its approximation error: :func:`telescoping_trace`,
  :class:`TelescopingMonitor`.
- Tangent kernels (plain or preconditioned), from the layer structure:
  :func:`tangent_kernel`, :func:`tangent_kernel_row_norms`.
- Smoothers and effective parameters: :func:`effective_parameters`,
  :func:`smoother_trace`, :class:`SmootherMonitor`.
- Irregular inputs and kernel extremity: :func:`irregularity_score`,
  :func:`irregular_test_sets`, :func:`kernel_extremity_ratio`,
  :class:`KernelExtremityMonitor`, :func:`kernel_row_norms`.
- Gradient stability and mode connectivity: :func:`gradient_change`,
  :func:`interpolate`, :func:`spawn_children`, :func:`weight_average`.
- Monitors are training observers (:class:`Observer`): attach them to your own fit with
  ``est.fit(X, y, monitors=[monitor])``, or let the functions above replay a fitted model.
  Under dropout, :func:`dropout_masks` gives the masks of the step an observer sees, for
  that step's kernel (``tangent_kernel(..., dropout_masks=...)``).
"""

from sktelescope._core.kernels import (
    LayerSignals,
    layer_signals,
    tangent_kernel,
    tangent_kernel_nbytes,
    tangent_kernel_row_norms,
)
from sktelescope._core.layers import dropout_masks
from sktelescope._core.observers import Observer
from sktelescope._core.training import Epoch, Step
from sktelescope._staged import EffectiveParameters
from sktelescope.lens._connectivity import (
    InterpolationResult,
    SpawnResult,
    evaluate_parameters,
    interpolate,
    spawn_children,
    weight_average,
)
from sktelescope.lens._extremity import (
    KernelExtremity,
    KernelExtremityMonitor,
    kernel_extremity_ratio,
    kernel_row_norms,
    max_row_norms,
)
from sktelescope.lens._gradients import GradientChange, gradient_change, layer_gradient_change
from sktelescope.lens._irregularity import (
    IrregularTestSet,
    irregular_test_sets,
    irregularity_score,
)
from sktelescope.lens._smoother import (
    SmootherMonitor,
    SmootherTrace,
    effective_parameters,
    smoother_trace,
)
from sktelescope.lens._telescoping import TelescopingMonitor, TelescopingTrace, telescoping_trace

__all__ = [
    "EffectiveParameters",
    "Epoch",
    "GradientChange",
    "InterpolationResult",
    "IrregularTestSet",
    "KernelExtremity",
    "KernelExtremityMonitor",
    "LayerSignals",
    "Observer",
    "SmootherMonitor",
    "SmootherTrace",
    "SpawnResult",
    "Step",
    "TelescopingMonitor",
    "TelescopingTrace",
    "dropout_masks",
    "effective_parameters",
    "evaluate_parameters",
    "gradient_change",
    "interpolate",
    "irregular_test_sets",
    "irregularity_score",
    "kernel_extremity_ratio",
    "kernel_row_norms",
    "layer_gradient_change",
    "layer_signals",
    "max_row_norms",
    "smoother_trace",
    "spawn_children",
    "tangent_kernel",
    "tangent_kernel_nbytes",
    "tangent_kernel_row_norms",
    "telescoping_trace",
    "weight_average",
]
