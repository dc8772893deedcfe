"""Progression measures on hand-made series and frames: the stated answers, infinite PSNR included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from progrestore.evaluate.metrics import get, names
from progrestore.evaluate.metrics.psnr import CLEAN_DB
from progrestore.evaluate.progression import (
    area,
    frame_90,
    mean_or_null,
    progression,
    spearman,
    static_change,
    steps_not_worse,
    tlp,
)


def test_the_registry_lists_the_papers_metrics_in_order():
    assert names() == ("psnr", "ssim", "lpips")
    assert (get("psnr").exact, get("ssim").exact, get("lpips").exact) == (math.inf, 1.0, 0.0)
    assert get("lpips").higher_is_better is False and get("ssim").maskable and not get("lpips").maskable
    with pytest.raises(ValueError, match="unknown metric 'fid'; known metrics: psnr, ssim, lpips"):
        get("fid")


def test_an_infinite_last_psnr_ranks_highest_and_counts_as_clean():
    series = [10.0, 20.0, 30.0, math.inf]
    psnr = get("psnr")
    assert spearman(series, psnr) == 1.0 and steps_not_worse(series, psnr) == 1.0
    gains = [0.0, 10.0 / (CLEAN_DB - 10.0), 20.0 / (CLEAN_DB - 10.0), 1.0]
    expected = (gains[0] / 2 + gains[1] + gains[2] + gains[3] / 2) / 3
    assert area(series, psnr) == pytest.approx(expected, abs=1e-12)
    assert frame_90(series, psnr) == 4  # 30 dB is 52 % of the way to the capped 48.13 dB
    assert pytest.approx(48.1308036, abs=1e-7) == CLEAN_DB


def test_a_linear_ramp_to_clean_and_a_jump():
    ssim = get("ssim")
    assert area([0.0, 0.25, 0.5, 0.75, 1.0], ssim) == 0.5 and frame_90([0.0, 0.25, 0.5, 0.75, 1.0], ssim) == 5
    assert area([0.0, 1.0, 1.0, 1.0, 1.0], ssim) == 1.0 - 1.0 / (2 * 4)
    lpips = get("lpips")  # lower is better: the same trajectory in LPIPS terms
    assert progression([0.8, 0.6, 0.4, 0.2, 0.0], lpips) == {
        "spearman": 1.0,
        "steps_not_worse": 1.0,
        "area": 0.5,
        "frame_90": 5,
    }


def test_reversed_and_constant_trajectories():
    lpips = get("lpips")
    assert spearman([0.0, 0.2, 0.4, 0.6, 0.8], lpips) == -1.0
    assert steps_not_worse([0.0, 0.2, 0.4, 0.6, 0.8], lpips) == 0.0
    assert progression([0.5] * 9, lpips) == {
        "spearman": 0.0,
        "steps_not_worse": 1.0,
        "area": 0.0,
        "frame_90": None,
    }
    psnr = get("psnr")
    assert progression([math.inf] * 9, psnr) == {
        "spearman": 0.0,
        "steps_not_worse": 1.0,
        "area": None,  # already clean: no gain to make
        "frame_90": None,
    }
    # ties are ranked by their average: an improving trajectory that pauses is below +1
    assert 0.9 < spearman([1.0, 2.0, 2.0, 3.0], psnr) < 1.0
    assert steps_not_worse([1.0, 2.0, 2.0, 1.5], psnr) == pytest.approx(2 / 3)


def test_coherence_of_frames():
    reference = np.zeros((3, 4, 4, 3), np.uint8)
    reference[1:, :, :2] = 100  # the left half moves at step 1, the right half never
    output = reference.copy()
    output[2, :, 2:] = 6  # flicker where the reference is still
    assert static_change(output, reference) == pytest.approx(6 * 8 * 3 / (2 * 8 * 3 + 8 * 3 * 0 + 8 * 3))
    assert static_change(reference, reference) == 0.0
    moving = np.arange(3 * 4 * 4 * 3, dtype=np.uint8).reshape(3, 4, 4, 3) * 9
    assert static_change(moving, moving) is None  # no pixel is still: undefined
    assert tlp([0.1, 0.3], [0.1, 0.3]) == 0.0 and tlp([0.0, 0.0], [0.1, 0.3]) == pytest.approx(0.2)
    assert mean_or_null([None, 1.0, 3.0]) == 2.0 and mean_or_null([None, None]) is None
