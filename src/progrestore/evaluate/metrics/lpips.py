"""LPIPS v0.1 with the ImageNet AlexNet trunk, RGB in [-1, 1], spatial mean, no resizing (the record;
the network, which needs torch, is :mod:`progrestore.evaluate.perceptual`, imported when scoring)."""

from __future__ import annotations

import math

from progrestore.evaluate.metrics import Measure, Metric, register


def _measure() -> Measure:
    from progrestore.evaluate.perceptual import LpipsMeasure

    return LpipsMeasure()


LPIPS = register(
    Metric(
        name="lpips",
        label="LPIPS (lower is better)",
        protocol="v0.1 AlexNet (ImageNet trunk), RGB in [-1, 1], spatial mean, no resize",
        higher_is_better=False,
        lower=0.0,
        upper=math.inf,
        exact=0.0,
        clean=0.0,
        position=2,
        measure=_measure,
    )
)
