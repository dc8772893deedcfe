"""The low-light task's known answers (tests/test_degradations.py checks what every task must do)."""

from __future__ import annotations

import numpy as np
import pytest

from progrestore import portable
from progrestore.data.synthesis import frame_schedule, sample_params
from progrestore.tasks import lowlight


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


def test_sampled_parameters_lie_in_the_papers_ranges(settings):
    for variant in range(200):
        p = sample_params("lowlight", settings["lowlight"], 1, f"img{variant}", variant % 2)
        assert 0.02 <= p["noise_sigma"] <= 0.08 and 0 < p["exposure"] < 1


def test_schedule_follows_the_paper():
    params = {"exposure": 0.1, "gamma": 1.4, "blur_sigma": 1.0, "noise_sigma": 0.05}
    params |= {"white_balance_red": 1.2, "white_balance_blue": 0.8}
    low = frame_schedule("lowlight", params, 9)
    assert [f["strength"] for f in low] == [1 - t / 8 for t in range(9)]
    assert low[0]["gain"] == pytest.approx(0.1) and low[-1]["gain"] == 1.0
    assert low[0]["noise_sigma"] == 0.05 and low[-1]["noise_sigma"] == 0.0
