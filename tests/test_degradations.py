"""The three degradation families: the paper's protocol, frame by frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from progrestore import portable
from progrestore.data import degradations
from progrestore.data.degradations import deblur, lowlight, sr
from progrestore.data.synthesis import (
    clip_rng,
    frame_schedule,
    progress_points,
    render_clip,
    render_clip_frame_by_frame,
    sample_params,
)
from progrestore.errors import ParamsError

from .conftest import TASKS, psnr


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("variant", [0, 1])
def test_last_frame_is_exactly_the_clean_image(task, variant, settings, clean_image):
    params = sample_params(task, settings[task], 7, "astronaut", variant)
    clip = render_clip(task, clean_image, params, 9)
    assert clip.shape == (9, *clean_image.shape)
    assert np.array_equal(clip[-1], clean_image)
    assert not np.array_equal(clip[0], clean_image)


@pytest.mark.parametrize("task", TASKS)
def test_mean_psnr_rises_frame_by_frame(task, settings, clean_image, other_image):
    curves = []
    for image_id, image in (("astronaut", clean_image), ("coffee", other_image)):
        for variant in range(3):
            params = sample_params(task, settings[task], 11, image_id, variant)
            curves.append([psnr(frame, image) for frame in render_clip(task, image, params, 9)[:-1]])
    mean = np.mean(curves, axis=0)
    assert np.all(np.diff(mean) > 0), mean


@pytest.mark.parametrize("task", TASKS)
def test_shared_per_clip_work_gives_the_same_frames_as_frame_by_frame(task, settings, clean_image):
    params = sample_params(task, settings[task], 3, "astronaut", 0)
    assert np.array_equal(
        render_clip(task, clean_image, params, 9), render_clip_frame_by_frame(task, clean_image, params, 9)
    )


def test_sampled_parameters_lie_in_the_papers_ranges(settings):
    for variant in range(200):
        p = sample_params("sr", settings["sr"], 1, f"img{variant}", variant % 2)
        assert 0.05 <= p["scale_first"] <= 0.25 and 30 <= p["jpeg_quality_first"] <= 60
        p = sample_params("deblur", settings["deblur"], 1, f"img{variant}", variant % 2)
        assert 40 <= p["length_max"] <= 200 and 0 <= p["angle"] < 360
        p = sample_params("lowlight", settings["lowlight"], 1, f"img{variant}", variant % 2)
        assert 0.02 <= p["noise_sigma"] <= 0.08 and 0 < p["exposure"] < 1


def test_schedules_follow_the_paper():
    s = frame_schedule("sr", {"scale_first": 0.1, "jpeg_quality_first": 40}, 9)
    assert [round(f["scale"], 6) for f in s] == [round(0.1 + 0.9 * t / 8, 6) for t in range(9)]
    assert s[0]["jpeg_quality"] == 40 and s[-1]["jpeg_quality"] == 100
    d = frame_schedule("deblur", {"length_max": 160.0, "angle": 30.0}, 9)
    assert [f["length"] for f in d] == [160.0 * (1 - t / 8) for t in range(9)]
    params = {"exposure": 0.1, "gamma": 1.4, "blur_sigma": 1.0, "noise_sigma": 0.05}
    params |= {"white_balance_red": 1.2, "white_balance_blue": 0.8}
    low = frame_schedule("lowlight", params, 9)
    assert [f["strength"] for f in low] == [1 - t / 8 for t in range(9)]
    assert low[0]["gain"] == pytest.approx(0.1) and low[-1]["gain"] == 1.0
    assert low[0]["noise_sigma"] == 0.05 and low[-1]["noise_sigma"] == 0.0


def test_clip_generator_depends_only_on_seed_image_task_and_variant():
    draw = lambda *key: clip_rng(*key).random(4).tolist()  # noqa: E731
    assert draw(1, "a", "sr", 0) == draw(1, "a", "sr", 0)
    keys = [(2, "a", "sr", 0), (1, "b", "sr", 0), (1, "a", "deblur", 0), (1, "a", "sr", 1)]
    assert all(draw(*key) != draw(1, "a", "sr", 0) for key in keys)


def test_unknown_task_is_refused():
    with pytest.raises(ParamsError, match=r"unknown task 'denoise'.*sr, deblur, lowlight"):
        degradations.get("denoise")


# --- super-resolution -------------------------------------------------------------------------------


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


# --- motion blur ------------------------------------------------------------------------------------


def test_motion_kernel_known_answer_horizontal():
    kernel = deblur.motion_kernel(2.0, 0.0)
    assert kernel.shape == (5, 5)
    expected = np.zeros((5, 5), np.float32)
    expected[2, 1:4] = np.array([2.5, 4.0, 2.5]) / 9.0  # 9 points at -1..1 step 1/4, split bilinearly
    np.testing.assert_allclose(kernel, expected, atol=1e-7)


@pytest.mark.parametrize("length", [1.0, 7.3, 40.0, 201.0])
@pytest.mark.parametrize("angle", [0.0, 33.0, 90.0, 271.5])
def test_motion_kernel_is_normalised_centred_and_as_long_as_asked(length, angle):
    kernel = deblur.motion_kernel(length, angle).astype(np.float64)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    radius = kernel.shape[0] // 2
    ys, xs = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    assert (kernel * xs).sum() == pytest.approx(0.0, abs=1e-4) and (kernel * ys).sum() == pytest.approx(
        0.0, abs=1e-4
    )
    direction = np.array([np.cos(np.radians(angle)), -np.sin(np.radians(angle))])
    along = xs * direction[0] + ys * direction[1]
    # n evenly spaced points over [-L/2, L/2] have variance L^2/12 (n+1)/(n-1); bilinear splatting
    # adds f(1-f) <= 1/4 along the line
    n = np.ceil(length * deblur.SAMPLES_PER_PIXEL) + 1
    points = length**2 / 12 * (n + 1) / (n - 1)
    variance = (kernel * along**2).sum()
    assert points - 1e-3 <= variance <= points + 0.25


def test_motion_kernel_angle_convention_counter_clockwise_on_screen():
    up_right = deblur.motion_kernel(10.0, 45.0)
    r = up_right.shape[0] // 2
    assert up_right[r - 3, r + 3] > 0 and up_right[r - 3, r - 3] == 0  # +x right, +45 deg points up-right
    assert np.allclose(deblur.motion_kernel(10.0, 90.0), deblur.motion_kernel(10.0, 0.0).T, atol=1e-7)


def test_short_motion_is_a_delta():
    assert np.array_equal(deblur.motion_kernel(0.6, 10.0), np.ones((1, 1), np.float32))


def test_fft_blur_equals_opencv_spatial_filtering(clean_image):
    params = {"length_max": 40.0, "angle": 30.0}
    frame = deblur.render(deblur.prepare(clean_image, params), params, 0.25)
    kernel = deblur.motion_kernel(30.0, 30.0)
    reference = cv2.filter2D(clean_image.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    difference = np.abs(frame.astype(int) - np.clip(np.rint(reference), 0, 255).astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01


# --- low light --------------------------------------------------------------------------------------


def test_srgb_transfer_functions_are_inverse():
    x = np.linspace(0, 1, 1001)
    linear = np.array([lowlight.srgb_to_linear(v) for v in x], np.float32)
    with portable.opencv_baseline():
        np.testing.assert_allclose(lowlight.display_srgb(linear, 1.0), x, atol=2e-6)
        # gamma applies before encoding: sRGB(x^2) decodes to x^2
        squared = lowlight.display_srgb(linear, 2.0)
    decoded = np.array([lowlight.srgb_to_linear(float(v)) for v in np.clip(squared, 0, 1)])
    np.testing.assert_allclose(decoded, linear.astype(np.float64) ** 2, atol=2e-6)


def test_lowlight_darkens_tints_and_adds_a_fixed_noise_field(clean_image):
    params = {"exposure": 0.1, "gamma": 1.0, "blur_sigma": 0.0, "noise_sigma": 0.05, "noise_seed": 5}
    params |= {"white_balance_red": 1.3, "white_balance_blue": 0.7}
    state = lowlight.prepare(clean_image, params)
    first = lowlight.render(state, params, 0.0).astype(float)
    assert first.mean() < 0.6 * clean_image.mean()
    assert (
        first[..., 0].mean() / first[..., 2].mean() > clean_image[..., 0].mean() / clean_image[..., 2].mean()
    )
    # the noise field is drawn once per clip: frames 1 and 2 carry the same pattern, not fresh noise
    quiet = params | {"noise_sigma": 0.0}
    noise1 = first - lowlight.render(state, quiet, 0.0)
    noise2 = lowlight.render(state, params, 1 / 8).astype(float) - lowlight.render(state, quiet, 1 / 8)
    assert np.corrcoef(noise1.ravel(), noise2.ravel())[0, 1] > 0.8


def test_progress_points():
    assert progress_points(9) == [t / 8 for t in range(9)]
