"""Parameters are validated at stage start, with errors that name the key."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from progrestore.config import ClipSettings, Section
from progrestore.data.dataset import task_settings
from progrestore.errors import ParamsError
from progrestore.model.settings import model_frames

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


@pytest.mark.parametrize("profile", ["tiny", "tiny-1.0", "cogvideox1.5-5b-i2v", "cogvideox-5b-i2v"])
@pytest.mark.parametrize("frames", [8, 10, 16])
def test_a_model_stage_takes_only_the_frame_counts_of_its_profiles_family(frames, profile):
    values = copy.deepcopy(BASE)
    values["clip"]["frames"], values["model"]["profile"] = frames, profile
    message = (
        f"params.yaml: clip.frames must be 8k+1 for model.profile {profile} (CogVideoX's VAE takes 8k+1 "
        f"frames: 9, 17, 25, ...), got {frames}"
    )
    with pytest.raises(ParamsError, match=f"^{re.escape(message)}$"):
        model_frames(Section(values, source="params.yaml"))


@pytest.mark.parametrize("frames", [2, 9, 10, 17])
def test_the_data_stages_take_any_clip_length_of_two_frames_or_more(frames):
    assert ClipSettings.from_params(params_with("clip.frames", frames)).frames == frames
    if (frames - 1) % 8 == 0:
        values = copy.deepcopy(BASE)
        values["clip"]["frames"] = frames
        assert model_frames(Section(values)) == frames


def test_a_clip_of_one_frame_is_refused():
    with pytest.raises(ParamsError, match=r"clip\.frames must be an integer >= 2, got 1$"):
        ClipSettings.from_params(params_with("clip.frames", 1))


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
