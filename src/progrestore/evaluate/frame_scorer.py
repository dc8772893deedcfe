"""The scorer every evaluation uses: trajectories frame by frame against a clean reference, with every
metric of the registry (:mod:`progrestore.evaluate.metrics`).

Every frame of a trajectory is compared with the same clean image, so each metric's work on the reference
is done once per clip; identical frames (the identity method repeats one frame) are scored once, and a
frame equal to the clean image gets each metric's exact value (PSNR inf, SSIM 1, LPIPS 0) without being
computed. Light on imports: training's validation scores with it too.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from progrestore.evaluate.metrics import Measure, Metric, metrics

MASKED = "{}_masked"  # the name of a metric's masked variant (ReLoBlur's moving regions)


@dataclass
class Reference:
    """A clean image with what each metric caches about it."""

    image: np.ndarray
    cached: dict[str, Any]


class FrameScorer:
    """Scores trajectories frame by frame against a clean reference, with every registered metric."""

    def __init__(self, measures: dict[str, Measure] | None = None) -> None:
        """``measures`` replaces the registry's own measure of the metrics it names (a shared network)."""
        self.metrics: tuple[Metric, ...] = metrics()
        given = measures or {}
        self.measures = {m.name: given[m.name] if m.name in given else m.measure() for m in self.metrics}

    def reference(self, clean: np.ndarray) -> Reference:
        return Reference(clean, {name: measure.reference(clean) for name, measure in self.measures.items()})

    def score(
        self, frames: np.ndarray, ref: Reference, mask: np.ndarray | None = None
    ) -> dict[str, list[float]]:
        """{metric: [value per frame]} for a (T, H, W, 3) uint8 trajectory; with ``mask`` (H, W) also
        ``<metric>_masked`` for the maskable metrics (NaN when the mask is empty)."""
        unique: dict[bytes, int] = {}
        index = [unique.setdefault(frame.tobytes(), len(unique)) for frame in frames]
        distinct = [frames[index.index(i)] for i in range(len(unique))]
        clean_bytes = ref.image.tobytes()
        to_score = [i for i, frame in enumerate(distinct) if frame.tobytes() != clean_bytes]
        stack = np.stack([distinct[i] for i in to_score]) if to_score else None
        inside = None if mask is None else np.asarray(mask) > 0
        values: dict[str, list[float]] = {}
        for metric in self.metrics:
            variants = [(metric.name, None)]
            if inside is not None and metric.maskable:
                variants.append((MASKED.format(metric.name), inside))
            for name, where in variants:
                per = [metric.exact] * len(distinct)
                if where is not None and not where.any():
                    per = [float("nan")] * len(distinct)
                elif stack is not None:
                    scored = self.measures[metric.name].score(stack, ref.cached[metric.name], where)
                    for i, value in zip(to_score, scored, strict=True):
                        per[i] = value
                values[name] = [per[i] for i in index]
        return values

    def score_against(self, frames: np.ndarray, references: np.ndarray) -> dict[str, list[float]]:
        """{metric: [value per frame]}: each frame of ``frames`` against the same frame of ``references``
        (a trajectory against another one, e.g. the model's against its VAE's ceiling)."""
        values: dict[str, list[float]] = {}
        for frame, reference in zip(frames, references, strict=True):
            for name, per in self.score(frame[None], self.reference(reference)).items():
                values.setdefault(name, []).extend(per)
        return values

    def consecutive(self, name: str, frames: np.ndarray) -> list[float]:
        """Metric ``name`` between each frame and the one before it (T - 1 values; exact where equal)."""
        metric = next(m for m in self.metrics if m.name == name)
        measure, values = self.measures[name], []
        for before, frame in itertools.pairwise(frames):
            if before.tobytes() == frame.tobytes():
                values.append(metric.exact)
            else:
                values.append(measure.score(frame[None], measure.reference(before))[0])
        return values
