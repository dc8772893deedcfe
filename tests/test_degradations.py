"""The three degradation families: the paper's protocol, frame by frame."""

from __future__ import annotations

import numpy as np
import pytest

from progrestore import tasks
from progrestore.data.synthesis import (
    clip_rng,
    progress_points,
    render_clip,
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
    definition = tasks.get(task)
    one_by_one = [
        definition.render(definition.prepare(clean_image, params), params, p) for p in progress_points(9)
    ]
    assert np.array_equal(render_clip(task, clean_image, params, 9), np.stack(one_by_one))


def test_clip_generator_depends_only_on_seed_image_task_and_variant():
    draw = lambda *key: clip_rng(*key).random(4).tolist()  # noqa: E731
    assert draw(1, "a", "sr", 0) == draw(1, "a", "sr", 0)
    keys = [(2, "a", "sr", 0), (1, "b", "sr", 0), (1, "a", "deblur", 0), (1, "a", "sr", 1)]
    assert all(draw(*key) != draw(1, "a", "sr", 0) for key in keys)


def test_unknown_task_is_refused():
    with pytest.raises(
        ParamsError, match=r"unknown task 'denoise'; known tasks: deblur, lowlight, mixed, sr"
    ):
        tasks.get("denoise")


def test_progress_points():
    assert progress_points(9) == [t / 8 for t in range(9)]
