"""The compound task's known answers (tests/test_degradations.py checks what every task must do)."""

from __future__ import annotations

import itertools
import json

import cv2
import numpy as np
from PIL import Image

from progrestore import tasks
from progrestore.data.dataset import build_task_dataset
from progrestore.data.synthesis import frame_schedule, render_clip, sample_params
from progrestore.imaging import gaussian_blur, jpeg_roundtrip, to_uint8
from progrestore.tasks import mixed

from ..conftest import TINY_CLIP, baseline_gains


def test_sampled_parameters_lie_in_their_ranges_and_every_order_occurs(settings):
    orders = set()
    for variant in range(300):
        p = sample_params("mixed", settings["mixed"], 1, f"img{variant}", variant % 2)
        assert sorted(p["order"]) == sorted(mixed.OPERATIONS)
        assert 0.5 <= p["blur_sigma"] <= 3.0 and 0.25 <= p["scale_first"] <= 0.5
        assert 0.01 <= p["noise_sigma"] <= 0.05 and 30 <= p["jpeg_quality_first"] <= 80
        orders.add(tuple(p["order"]))
    assert len(orders) == 24  # all 4! orders are drawn


def test_every_degradation_fades_linearly_to_nothing():
    params = {"blur_sigma": 2.0, "scale_first": 0.25, "noise_sigma": 0.04, "jpeg_quality_first": 40}
    s = frame_schedule("mixed", params | {"order": list(mixed.OPERATIONS), "noise_seed": 1}, 9)
    assert [f["blur_sigma"] for f in s] == [2.0 * (1 - t / 8) for t in range(9)]
    assert [f["scale"] for f in s] == [0.25 + 0.75 * t / 8 for t in range(9)]
    assert [f["noise_sigma"] for f in s] == [0.04 * (1 - t / 8) for t in range(9)]
    assert s[0]["jpeg_quality"] == 40 and s[-1]["jpeg_quality"] == 100
    assert s[-1] == {"blur_sigma": 0.0, "scale": 1.0, "noise_sigma": 0.0, "jpeg_quality": 100}


def test_a_frame_applies_the_operations_in_the_clips_order(clean_image):
    """Known answer: the first frame equals the four operations done by hand in the sampled order, and
    another order gives another frame (the operations do not commute)."""
    params = {
        "order": ["jpeg", "noise", "blur", "downscale"],
        "blur_sigma": 1.5,
        "scale_first": 0.5,
        "noise_sigma": 0.03,
        "jpeg_quality_first": 35,
        "noise_seed": 5,
    }
    frame = mixed.render(mixed.prepare(clean_image, params), params, 0.0)
    noise = np.random.default_rng(5).standard_normal(clean_image.shape, dtype=np.float32)
    x = jpeg_roundtrip(clean_image, 35)
    x = to_uint8(x.astype(np.float32) + noise * np.float32(0.03 * 255.0))
    x = to_uint8(gaussian_blur(x.astype(np.float32), 1.5))
    small = Image.fromarray(x).resize((80, 48), Image.Resampling.BICUBIC)
    expected = np.asarray(small.resize((160, 96), Image.Resampling.BICUBIC))
    assert np.array_equal(frame, expected)
    reordered = params | {"order": ["downscale", "blur", "noise", "jpeg"]}
    assert not np.array_equal(mixed.render(mixed.prepare(clean_image, reordered), reordered, 0.0), frame)


def test_the_noise_field_is_fixed_and_fades(clean_image):
    params = {
        "order": ["noise", "blur", "downscale", "jpeg"],
        "blur_sigma": 0.0,
        "scale_first": 1.0,
        "noise_sigma": 0.05,
        "jpeg_quality_first": 100,
        "noise_seed": 9,
    }
    clip = render_clip("mixed", clean_image, params, 9)
    residuals = [np.abs(frame.astype(float) - clean_image).mean() for frame in clip]
    assert all(a > b for a, b in itertools.pairwise(residuals)) and residuals[-1] == 0.0
    first, second = (clip[t].astype(float) - clean_image for t in (0, 2))
    assert np.corrcoef(first.ravel(), second.ravel())[0, 1] > 0.9  # the same field, weaker: no flicker


def test_the_baseline_improves_mixed_frames_and_the_theme_is_its_own(settings, clean_image, other_image):
    """The registered restorer on frame 1 of 8 clips: measured gains +0.37..+1.19 dB over identity, mean
    +0.77 (its bilateral step alone gives -0.04..+0.46 dB and is below identity on 3 of them)."""
    task = tasks.get("mixed")
    cleans = {"astronaut": clean_image, "coffee": other_image}
    gains, degraded, params = baseline_gains("mixed", settings["mixed"], cleans)
    assert min(gains) > 0.3 and np.mean(gains) > 0.7
    # blind: the parameters are not used, so real photographs get the same restorer
    assert np.array_equal(task.baseline.restore(degraded, None), task.baseline.restore(degraded, params))
    assert task.baseline.restore is mixed.restore and "bilateral" in task.baseline.description
    assert task.baseline.description == task.baseline.blind_description
    assert task.theme.carried_by("The street becomes clean and sharp.")
    assert not task.theme.carried_by("The street brightens.")


def test_the_manifest_records_the_order_and_every_parameter(settings, tmp_path):
    from progrestore.data.prepare import prepare_images
    from progrestore.data.sources import SourceItem

    rng = np.random.default_rng(0)
    items = []
    for split, name in (("train", "a"), ("val", "b")):
        path = tmp_path / f"{name}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (96, 160, 3), dtype=np.uint8))
        items.append(SourceItem(name, split, str(path)))
    prepare_images(items, tmp_path / "images", TINY_CLIP.width, TINY_CLIP.height, "band", skip_bad=False)
    build_task_dataset(
        "mixed", settings["mixed"], TINY_CLIP, 1, tmp_path / "images", tmp_path / "mixed", tmp_path / "m.png"
    )
    entry = json.loads((tmp_path / "mixed" / "val" / "manifest.jsonl").read_text().splitlines()[0])
    assert entry["task"] == "mixed" and set(entry["params"]) == {
        "order",
        "blur_sigma",
        "scale_first",
        "noise_sigma",
        "jpeg_quality_first",
        "noise_seed",
    }
    assert len(entry["schedule"]) == 9 and entry["schedule"][-1]["jpeg_quality"] == 100
