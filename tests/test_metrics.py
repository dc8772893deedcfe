"""Metric known answers: the LPIPS authors' examples, skimage's SSIM and PSNR, and the cached fast path."""

from __future__ import annotations

import math
from pathlib import Path

import lpips
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from progrestore.evaluate.frame_scorer import FrameScorer
from progrestore.evaluate.lpips_weights import load_trunk
from progrestore.evaluate.metrics.psnr import psnr
from progrestore.evaluate.metrics.ssim import SKIMAGE_SSIM_ARGS, SKIMAGE_SSIM_TOLERANCE, ssim
from progrestore.evaluate.perceptual import Lpips, LpipsMeasure
from progrestore.io.images import read_image

DATA = Path(__file__).parent / "data" / "lpips"


@pytest.fixture(scope="module")
def perceptual() -> Lpips:
    return Lpips()


@pytest.fixture(scope="module")
def examples() -> dict[str, np.ndarray]:
    return {name: read_image(DATA / f"{name}.png") for name in ("ex_ref", "ex_p0", "ex_p1")}


def test_lpips_reproduces_the_authors_example_distances(perceptual, examples):
    assert perceptual(examples["ex_p0"], examples["ex_ref"]) == pytest.approx(0.7218807, abs=1e-5)
    assert perceptual(examples["ex_p1"], examples["ex_ref"]) == pytest.approx(0.1375656, abs=1e-5)
    assert perceptual(examples["ex_ref"], examples["ex_ref"]) == 0.0


def test_ssim_and_psnr_equal_skimage(examples):
    """Flat bright pairs are where float32 statistics cancel (a 128 vs 129 flat pair was 7e-5 off)."""
    rng = np.random.default_rng(0)
    pairs = [(examples["ex_p0"], examples["ex_ref"]), (examples["ex_p1"], examples["ex_ref"])]
    pairs.append(
        (rng.integers(0, 256, (40, 56, 3), dtype=np.uint8), rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))
    )
    pairs.append((np.full((40, 56, 3), 128, np.uint8), np.full((40, 56, 3), 129, np.uint8)))
    bright = np.full((64, 64, 3), 255, np.uint8)
    pairs.append((bright - rng.integers(0, 2, bright.shape, dtype=np.uint8), bright))
    for image, reference in pairs:
        expected = structural_similarity(image, reference, **SKIMAGE_SSIM_ARGS)
        assert ssim(image, reference) == pytest.approx(expected, abs=SKIMAGE_SSIM_TOLERANCE)
        assert psnr(image, reference) == pytest.approx(
            peak_signal_noise_ratio(reference, image, data_range=255), abs=1e-9
        )
    assert psnr(examples["ex_ref"], examples["ex_ref"]) == math.inf


def test_cached_reference_path_equals_pairwise_lpips_and_skimage(perceptual):
    """The fast scorer (reference features once, batched frames) against lpips' own pairwise call."""
    rng = np.random.default_rng(1)
    clean = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
    noise = rng.normal(0, 1, (5, 48, 80, 3)) * np.array([40, 20, 10, 5, 0])[:, None, None, None]
    frames = np.clip(clean + noise, 0, 255).astype(np.uint8)
    frames[1] = frames[0]  # repeated frames are scored once and get the same values
    scorer = FrameScorer({"lpips": LpipsMeasure(perceptual, batch=2)})
    scores = scorer.score(frames, scorer.reference(clean))

    reference_model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    reference_model.net.load_state_dict(load_trunk())
    reference_model.eval()
    for t, frame in enumerate(frames):
        pairwise = reference_model(lpips.im2tensor(frame), lpips.im2tensor(clean)).item()
        assert scores["lpips"][t] == pytest.approx(pairwise, abs=1e-6)
        skimage_ssim = structural_similarity(frame, clean, **SKIMAGE_SSIM_ARGS)
        assert scores["ssim"][t] == pytest.approx(skimage_ssim, abs=SKIMAGE_SSIM_TOLERANCE)
    assert scores["psnr"][0] == scores["psnr"][1] and scores["lpips"][0] == scores["lpips"][1]
    assert (scores["psnr"][-1], scores["ssim"][-1], scores["lpips"][-1]) == (math.inf, 1.0, 0.0)


def test_metrics_order_degradations_sensibly(perceptual, examples):
    ref = examples["ex_ref"].astype(float)
    rng = np.random.default_rng(2)
    light, heavy = (np.clip(ref + rng.normal(0, s, ref.shape), 0, 255).astype(np.uint8) for s in (5, 30))
    scorer = FrameScorer({"lpips": LpipsMeasure(perceptual)})
    scores = scorer.score(np.stack([heavy, light]), scorer.reference(examples["ex_ref"]))
    assert scores["psnr"][0] < scores["psnr"][1] and scores["ssim"][0] < scores["ssim"][1]
    assert scores["lpips"][0] > scores["lpips"][1]
