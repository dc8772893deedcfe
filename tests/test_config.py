"""Parameters are validated at stage start, with errors that name the key."""

from __future__ import annotations

import copy

import pytest
import yaml

from progrestore.config import ClipSettings, Section
from progrestore.data.dataset import task_settings
from progrestore.errors import ParamsError

from .conftest import REPO

BASE = yaml.safe_load((REPO / "params.yaml").read_text())


def params_with(path: str, value) -> Section:
    values = copy.deepcopy(BASE)
    *parents, leaf = path.split(".")
    node = values
    for key in parents:
        node = node[key]
    node[leaf] = value
    return Section(values)


def test_repository_params_are_valid():
    params = Section(BASE)
    assert ClipSettings.from_params(params) == ClipSettings(1360, 768, 9, 5, 2)
    for task in BASE["tasks"]:
        task_settings(params, task)


@pytest.mark.parametrize("frames", [8, 10, 16])
def test_frame_count_must_be_8k_plus_1(frames):
    with pytest.raises(ParamsError, match=r"clip\.frames must be 8k\+1"):
        ClipSettings.from_params(params_with("clip.frames", frames))


def test_clip_size_must_be_a_multiple_of_16():
    with pytest.raises(ParamsError, match=r"clip\.width must be a multiple of 16"):
        ClipSettings.from_params(params_with("clip.width", 1366))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("degrade.sr.scale_first", [0.25, 0.05]),  # inverted
        ("degrade.sr.scale_first", [0.0, 0.25]),  # out of bounds
        ("degrade.deblur.length_max", [40]),  # not a pair
        ("degrade.lowlight.noise_sigma", [0.02, 1.5]),
        ("degrade.sr.jpeg_quality_first", [30.5, 60]),
        ("degrade.mixed.jpeg_quality_first", [30, 80.5]),
    ],
)
def test_bad_ranges_name_their_key(key, value):
    task = key.split(".")[1]
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        task_settings(params_with(key, value), task)


def test_missing_and_mistyped_values_are_named():
    values = copy.deepcopy(BASE)
    del values["degrade"]["deblur"]["angle"]
    with pytest.raises(ParamsError, match=r"degrade\.deblur\.angle is missing"):
        task_settings(Section(values), "deblur")
    with pytest.raises(ParamsError, match=r"degrade\.sr\.jpeg must be true or false"):
        task_settings(params_with("degrade.sr.jpeg", "yes"), "sr")


def test_unknown_task_is_named():
    with pytest.raises(ParamsError, match="unknown task 'dehaze'"):
        task_settings(Section(BASE), "dehaze")
