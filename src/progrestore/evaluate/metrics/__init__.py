"""The per-frame metrics: one module each, registered once, looked up here by everything that scores,
checks, plots or writes them.

A metric module ``progrestore/evaluate/metrics/<name>.py`` registers one :class:`Metric`: how to build its
:class:`Measure` (what scores frames against a reference, with the work on the reference done once per
clip), its direction, its range, its exact value on a frame identical to the reference, the finite value
progress is measured to, its label and protocol, and whether it has a masked variant. ``FrameScorer``, the
gates, the plot data, the curves figure, the progression measures and ReLoBlur's masked scores read it, so
adding a metric is one module plus its ``gates.tolerance.<name>`` (and its per-frame outputs and plot in
dvc.yaml).

The metric list is the package's module list, ordered by each record's ``position`` (the paper's order:
PSNR, SSIM, LPIPS); records are light (no torch), the heavy work is imported by ``measure`` when called.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class Measure(Protocol):
    """Scores frames against one reference; ``reference`` caches what every frame of a clip shares."""

    def reference(self, clean: np.ndarray) -> Any: ...

    def score(self, frames: np.ndarray, reference: Any, mask: np.ndarray | None = None) -> list[float]:
        """Values for an (N, H, W, 3) uint8 stack; with ``mask`` (H, W, bool), inside the mask only
        (only metrics registered ``maskable``)."""
        ...


@dataclass(frozen=True)
class Metric:
    """One per-frame metric, as every consumer needs to know it."""

    name: str
    label: str  # axis and panel title ("PSNR (dB)")
    protocol: str  # how it is computed, stated in about.json
    higher_is_better: bool
    lower: float  # finite values are valid within [lower, upper]
    upper: float
    exact: float  # the value of a frame identical to its reference (may be infinite: PSNR)
    clean: float  # finite value progress is measured to; values beyond it count as clean (PSNR's cap)
    position: int  # order in files, tables and figures
    measure: Callable[[], Measure]  # builds the scorer (loads weights once per FrameScorer)
    maskable: bool = False  # has ``<name>_masked`` (ReLoBlur's moving regions)

    @property
    def tolerance_key(self) -> str:
        """The gate parameter ``gates.tolerance.<name>``: how much worse a final-frame mean may get."""
        return self.name

    def signed(self, value: float) -> float:
        """``value`` with the sign that makes larger better (LPIPS negated)."""
        return value if self.higher_is_better else -value

    def valid(self, value: float, exact_frame: bool) -> bool:
        """In range and finite, or the exact value on a frame that is exactly the reference."""
        return (exact_frame and value == self.exact) or (
            bool(np.isfinite(value)) and self.lower <= value <= self.upper
        )


_REGISTERED: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Called once by each metric module, which must be named after its metric."""
    if metric.name in _REGISTERED:
        raise ValueError(f"metric {metric.name!r} is registered twice")
    if f"{__name__}.{metric.name}" not in {
        f"{__name__}.{info.name}" for info in pkgutil.iter_modules(__path__)
    }:
        raise ValueError(f"metric {metric.name!r} must live in {__name__}.{metric.name}")
    _REGISTERED[metric.name] = metric
    return metric


def metrics() -> tuple[Metric, ...]:
    """Every registered metric, in ``position`` order (each module imported once)."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return tuple(sorted(_REGISTERED.values(), key=lambda m: m.position))


def names() -> tuple[str, ...]:
    """The metrics' names, in ``position`` order."""
    return tuple(m.name for m in metrics())


def get(name: str) -> Metric:
    """The metric ``name``; a ValueError naming the known ones otherwise."""
    found = {m.name: m for m in metrics()}
    if name not in found:
        raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(found)}")
    return found[name]
