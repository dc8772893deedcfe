"""The rule that brings any source image to the clip size."""

from __future__ import annotations

import numpy as np
import pytest

from progrestore.data.framing import frame_image


def test_div2k_landscape_takes_the_centre_16_9_band():
    image = np.zeros((1356, 2040, 3), np.uint8)
    out, framing = frame_image(image, 1360, 768)
    assert out.shape == (768, 1360, 3)
    assert (framing.crop_x, framing.crop_y, framing.crop_width, framing.crop_height) == (0, 102, 2040, 1152)
    assert not framing.upscaled and not framing.rotated


def test_wide_image_loses_its_sides():
    image = np.zeros((100, 400, 3), np.uint8)
    _, framing = frame_image(image, 160, 90)
    assert (framing.crop_x, framing.crop_width, framing.crop_height) == (111, 178, 100)


def test_portrait_band_keeps_orientation_and_rotate_turns_clockwise():
    image = np.zeros((200, 100, 3), np.uint8)
    image[0, :, 0] = 255  # top row red
    _, band = frame_image(image, 160, 90, "band")
    assert not band.rotated and (band.crop_width, band.crop_height, band.crop_y) == (100, 56, 72)
    out, turned = frame_image(image, 200, 100, "rotate")
    assert turned.rotated and (turned.crop_width, turned.crop_height) == (200, 100)
    assert out[:, -1, 0].min() == 255  # clockwise: the top row ends up as the right column


def test_exact_size_passes_through_and_small_images_are_flagged_upscaled():
    image = np.random.default_rng(0).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    out, framing = frame_image(image, 160, 90)
    assert np.array_equal(out, image) and not framing.upscaled
    _, small = frame_image(image, 320, 180)
    assert small.upscaled


def test_unknown_portrait_rule_is_refused():
    with pytest.raises(ValueError, match="portrait rule"):
        frame_image(np.zeros((4, 4, 3), np.uint8), 16, 16, "squash")
