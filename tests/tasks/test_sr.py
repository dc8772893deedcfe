"""The super-resolution task's known answers (tests/test_degradations.py checks what every task must do)."""

from __future__ import annotations

import cv2
import numpy as np
import skimage.data
from PIL import Image

from progrestore import tasks
from progrestore.config import ClipSettings
from progrestore.data.framing import frame_image
from progrestore.data.synthesis import frame_schedule, sample_params
from progrestore.tasks import sr

from ..conftest import baseline_gains


def test_sr_frame_is_bicubic_down_jpeg_up(clean_image):
    params = {"scale_first": 0.2, "jpeg_quality_first": 50}
    frame = sr.render(sr.prepare(clean_image, params), params, 0.0)
    small = Image.fromarray(clean_image).resize((32, 19), Image.Resampling.BICUBIC)
    _, buf = cv2.imencode(".jpg", np.asarray(small)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 50])
    small = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    expected = np.asarray(Image.fromarray(small).resize((160, 96), Image.Resampling.BICUBIC))
    assert np.array_equal(frame, expected)


def test_sr_without_jpeg_skips_compression(clean_image):
    params = {"scale_first": 0.5, "jpeg_quality_first": None}
    frame = sr.render(sr.prepare(clean_image, params), params, 0.0)
    small = Image.fromarray(clean_image).resize((80, 48), Image.Resampling.BICUBIC)
    assert np.array_equal(frame, np.asarray(small.resize((160, 96), Image.Resampling.BICUBIC)))


def test_sampled_parameters_lie_in_the_papers_ranges(settings):
    for variant in range(200):
        p = sample_params("sr", settings["sr"], 1, f"img{variant}", variant % 2)
        assert 0.05 <= p["scale_first"] <= 0.25 and 30 <= p["jpeg_quality_first"] <= 60


def test_schedule_follows_the_paper():
    s = frame_schedule("sr", {"scale_first": 0.1, "jpeg_quality_first": 40}, 9)
    assert [round(f["scale"], 6) for f in s] == [round(0.1 + 0.9 * t / 8, 6) for t in range(9)]
    assert s[0]["jpeg_quality"] == 40 and s[-1]["jpeg_quality"] == 100


def test_the_baseline_beats_the_upscaled_input_at_the_clip_size(settings, repo_params):
    """The registered restorer on frame 1 of 8 clips at params.yaml's clip size, where the JPEG blocks are
    8 / s_1 = 33..133 px wide: measured gains +0.026..+0.256 dB, mean +0.146 (small, but none below
    identity; the unsharp mask it replaced lost PSNR on most such clips)."""
    task = tasks.get("sr")
    clip = ClipSettings.from_params(repo_params)
    cleans = {
        name: frame_image(getattr(skimage.data, name)(), clip.width, clip.height)[0]
        for name in ("astronaut", "coffee")
    }
    gains, degraded, params = baseline_gains("sr", settings["sr"], cleans)
    assert min(gains) > 0.02 and np.mean(gains) > 0.1
    # blind: the parameters are not used, so real photographs get the same filter
    assert np.array_equal(task.baseline.restore(degraded, None), task.baseline.restore(degraded, params))
    assert task.baseline.description == task.baseline.blind_description
    assert task.baseline.description.startswith("bilateral filter (15 px, sigma colour 25, sigma space 15)")
