"""How a trajectory progresses, per clip and method: monotonicity and progress from its per-frame
metric values, temporal coherence from its frames.

Monotonicity (per metric): ``spearman``, Spearman's rank correlation between frame index and value,
signed so that +1 is "always improving" (LPIPS negated); ranks are taken on the raw values, an infinite
PSNR (a frame equal to the clean image) being the largest, ties averaged; a constant trajectory has no
defined correlation and gets 0 (distinct values use the exact formula 1 - 6 sum d^2 / (n (n^2 - 1)), ties
scipy's correlation of the ranks). ``steps_not_worse``: the fraction of the T - 1 frame-to-frame steps that
do not get worse (equal counts as not worse: a constant trajectory gets 1.0).

Progress (per metric), on values capped at the metric's clean value (``Metric.clean``: SSIM 1, LPIPS 0,
PSNR 20 log10 255 = 48.13 dB, an RMS error of one grey level, so the oracle's infinite last frame counts as
clean): ``area``, the normalised area under the curve between the first frame's value (0) and the clean
value (1), trapezoids over the T frames divided by T - 1 (a linear ramp to clean gives 0.5, a constant
trajectory 0, a step to clean at frame 2 gives 1 - 1 / (2 (T - 1))); null when the first frame is already
clean (no gain to make). ``frame_90``: the first frame (1..T) whose gain over frame 1 reaches 90 % of the
final frame's gain; null when the final frame gains nothing (a constant trajectory).

Temporal coherence (per method, against the reference trajectory: the synthetic clip): ``tlp``, TecoGAN's
tLP, the mean over steps of |LPIPS(out_t, out_t-1) - LPIPS(ref_t, ref_t-1)| (0 for the reference itself);
``static_change``, the mean absolute frame-to-frame change of the output (grey levels, over pixels and
channels) where the reference changes by at most :data:`STATIC_LEVEL` grey levels in every channel; null
when no pixel of any step is that still (low light brightens every pixel at every step).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.stats import rankdata, spearmanr

from progrestore.evaluate.metrics import Metric

STATIC_LEVEL = 1  # grey levels: a reference pixel that changes by at most this much "changes little"
MONOTONICITY = ("spearman", "steps_not_worse")
PROGRESS = ("area", "frame_90")
COHERENCE = ("tlp", "static_change")


def spearman(values: list[float], metric: Metric) -> float:
    """Signed Spearman correlation of frame index and value: +1 always improving, 0 when constant."""
    signed = [metric.signed(v) for v in values]
    if len(set(signed)) == 1:
        return 0.0
    ranks = rankdata(signed)
    if len(set(signed)) == len(signed):  # distinct ranks: the exact formula (+1 and -1 come out exactly)
        n, squares = len(ranks), float(sum((r - i) ** 2 for i, r in enumerate(ranks, start=1)))
        return 1.0 - 6.0 * squares / (n * (n * n - 1))
    return float(spearmanr(np.arange(len(signed)), ranks).statistic)


def steps_not_worse(values: list[float], metric: Metric) -> float:
    signed = [metric.signed(v) for v in values]
    steps = list(itertools.pairwise(signed))
    return sum(after >= before for before, after in steps) / len(steps)


def _capped(values: list[float], metric: Metric) -> np.ndarray:
    """Signed values, nothing beyond the signed clean value."""
    return np.minimum([metric.signed(v) for v in values], metric.signed(metric.clean))


def area(values: list[float], metric: Metric) -> float | None:
    capped = _capped(values, metric)
    span = metric.signed(metric.clean) - capped[0]
    if span <= 0:
        return None
    gain = (capped - capped[0]) / span
    return float((gain[:-1] + gain[1:]).sum() / 2 / (len(gain) - 1))


def frame_90(values: list[float], metric: Metric) -> int | None:
    gain = _capped(values, metric) - _capped(values, metric)[0]
    if gain[-1] <= 0:
        return None
    return int(np.argmax(gain >= 0.9 * gain[-1])) + 1


def progression(values: list[float], metric: Metric) -> dict[str, float | int | None]:
    """Every monotonicity and progress measure of one per-frame series of ``metric``."""
    return {
        "spearman": spearman(values, metric),
        "steps_not_worse": steps_not_worse(values, metric),
        "area": area(values, metric),
        "frame_90": frame_90(values, metric),
    }


def static_change(frames: np.ndarray, reference: np.ndarray) -> float | None:
    """Mean |out_t - out_t-1| (grey levels) where the reference changes by at most STATIC_LEVEL."""
    out = np.abs(np.diff(frames.astype(np.int16), axis=0))
    still = np.abs(np.diff(reference.astype(np.int16), axis=0)).max(axis=-1) <= STATIC_LEVEL
    if not still.any():
        return None
    return float(out[still].mean(dtype=np.float64))


def tlp(consecutive: list[float], reference_consecutive: list[float]) -> float:
    """TecoGAN's tLP from the LPIPS of consecutive output frames and of the reference's."""
    pairs = zip(consecutive, reference_consecutive, strict=True)
    return float(np.mean([abs(a - b) for a, b in pairs]))


def mean_or_null(values: list[float | int | None]) -> float | None:
    """The mean over the clips where a measure is defined; null where it is defined for none."""
    defined = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(defined)) if defined else None
