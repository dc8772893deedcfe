"""The motion-blur task's known answers (tests/test_degradations.py checks what every task must do)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from progrestore.data.synthesis import frame_schedule, sample_params
from progrestore.tasks import deblur


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


def test_sampled_parameters_lie_in_the_papers_ranges(settings):
    for variant in range(200):
        p = sample_params("deblur", settings["deblur"], 1, f"img{variant}", variant % 2)
        assert 40 <= p["length_max"] <= 200 and 0 <= p["angle"] < 360


def test_schedule_follows_the_paper():
    d = frame_schedule("deblur", {"length_max": 160.0, "angle": 30.0}, 9)
    assert [f["length"] for f in d] == [160.0 * (1 - t / 8) for t in range(9)]
