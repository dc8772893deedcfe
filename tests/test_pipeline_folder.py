"""The real profiles' loading code, run on tiny folders in the exact layout of the published hub folders
(THUDM/CogVideoX1.5-5B-I2V, THUDM/CogVideoX-5b-I2V): what each stage loads, what it produces, and the one
line a wrong folder gets."""

from __future__ import annotations

import gc
import json
import shutil
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors import safe_open

from progrestore.cli import main
from progrestore.config import load_params
from progrestore.errors import InputError
from progrestore.io.video import read_video
from progrestore.model import hub_folder as loading
from progrestore.model.cogvideox.pipeline_folder import build_tiny_folder
from progrestore.model.families import load_specification
from progrestore.model.settings import model_settings
from progrestore.model.specification import AUTOENCODER, DENOISER, PARTS, TEXT, Sampling

from .conftest import HUB_FOLDER_FILES, REPO
from .helpers.stages import run_stage

PROFILE_OF_LAYOUT = {"1.5": "cogvideox1.5-5b-i2v", "1.0": "cogvideox-5b-i2v"}


@pytest.fixture(scope="session")
def hub_folders(tmp_path_factory) -> dict[str, str]:
    """One tiny pipeline folder per layout, written by the same builder as the tiny profiles' cache."""
    root = tmp_path_factory.mktemp("hub")
    folders = {}
    for layout in ("1.5", "1.0"):
        folder = root / f"CogVideoX-{layout}-tiny"
        build_tiny_folder(folder, layout, seed=0)  # as downloaded: without our record
        folders[layout] = str(folder)
    return folders


def _params(tmp_path, layout: str, folder: str, **model):
    values = yaml.safe_load((REPO / "params.yaml").read_text())
    values["model"] |= {"profile": PROFILE_OF_LAYOUT[layout], "path": folder, "height": 96, "width": 160}
    values["model"] |= {"positional_embedding": "none" if layout == "1.0" else None} | model
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return load_params(path)


@pytest.fixture
def loaded(monkeypatch) -> list[str]:
    """The components read from disk, in order, through the one loading function."""
    names: list[str] = []
    original = loading.load_component

    def spy(folder, name, index, dtype):
        names.append(name)
        return original(folder, name, index, dtype)

    monkeypatch.setattr(loading, "load_component", spy)
    return names


@pytest.mark.parametrize("layout", ["1.5", "1.0"])
def test_the_folder_has_the_hub_layout(hub_folders, layout):
    folder = Path(hub_folders[layout])
    files = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    shards = {f for f in files if f.startswith("transformer/diffusion_pytorch_model-")}
    assert files - shards == HUB_FOLDER_FILES and len(shards) >= 2
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "CogVideoXImageToVideoPipeline"
    assert index["tokenizer"] == ["transformers", "T5Tokenizer"]
    scheduler = json.loads((folder / "scheduler/scheduler_config.json").read_text())
    assert (
        scheduler["_class_name"] == "CogVideoXDDIMScheduler"
        and scheduler["prediction_type"] == "v_prediction"
    )
    for shard in [*shards, "vae/diffusion_pytorch_model.safetensors"]:
        with safe_open(folder / shard, "pt") as weights:
            assert {weights.get_slice(k).get_dtype() for k in weights.keys()} == {"BF16"}  # noqa: SIM118


@pytest.mark.parametrize("layout", ["1.5", "1.0"])
def test_each_part_loads_alone_and_works(tmp_path, hub_folders, layout, loaded):
    """The real profile's code path on the tiny folder: text only, VAE only, then VAE and denoiser."""
    settings = model_settings(_params(tmp_path, layout, hub_folders[layout]))
    text = load_specification(settings, frozenset({TEXT}))
    assert loaded == ["tokenizer", "text_encoder", "scheduler"] and text.parts == {TEXT}
    assert type(text.pipe.tokenizer).__name__ == "T5Tokenizer"  # converted from spiece.model
    embeds = text.encode_prompt("The image becomes sharper and higher in resolution.")
    assert embeds.shape == (226, 32)
    loaded.clear()
    vae = load_specification(settings, frozenset({AUTOENCODER}))
    assert loaded == ["vae", "scheduler"] and vae.pipe.transformer is None and vae.pipe.text_encoder is None
    frames = np.random.default_rng(0).integers(0, 256, (9, 96, 160, 3), dtype=np.uint8)
    assert vae.encode_video(frames, torch.Generator().manual_seed(0)).shape == (3, 4, 12, 20)
    loaded.clear()
    model = load_specification(settings, frozenset({AUTOENCODER, DENOISER}))
    assert loaded == ["vae", "transformer", "scheduler"] and model.parts == {AUTOENCODER, DENOISER}
    image = frames[0]
    trajectory = model.sample(image, embeds, embeds, 9, Sampling(2, 6.0, 0, "dpm", True))
    assert trajectory.shape == (9, 96, 160, 3) and trajectory.dtype == np.uint8
    with pytest.raises(RuntimeError, match="loaded without its text part"):  # what it did not load
        model.encode_prompt("no text encoder here")


def _one_line(err: InputError) -> str:
    message = str(err)
    assert "\n" not in message
    return message


def test_a_wrong_folder_is_refused_in_one_line_naming_the_cause(tmp_path, hub_folders, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refusal(path: str, parts=PARTS, profile_layout: str = "1.5") -> str:
        with pytest.raises(InputError) as err:
            wanted = model_settings(_params(tmp_path, profile_layout, path))
            load_specification(wanted, parts)
        return _one_line(err.value)

    missing = tmp_path / "no-such-folder"
    assert f"the folder {missing} does not exist" in refusal(str(missing))
    (tmp_path / "empty").mkdir()
    assert "empty: a CogVideoX I2V folder holds model_index.json" in refusal(str(tmp_path / "empty"))
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.png").write_bytes(b"not a model")
    assert "has no model_index.json: it is not a diffusers pipeline folder" in refusal(
        str(tmp_path / "photos")
    )
    # a hub id on a machine without the hub: the hub's own reason, on one line
    assert "is not a local folder and the hub did not give it" in refusal("THUDM/CogVideoX1.5-5B-I2V")

    def copy(name: str) -> str:
        target = tmp_path / name
        shutil.copytree(hub_folders["1.5"], target)
        return str(target)

    lacking = copy("no-vae")
    shutil.rmtree(f"{lacking}/vae")
    assert f"{lacking} lacks vae/config.json" in refusal(lacking, frozenset({AUTOENCODER}))
    assert load_specification(
        model_settings(_params(tmp_path, "1.5", lacking)), frozenset({TEXT})
    )  # not needed
    lacking_tokenizer = copy("no-spiece")
    (tmp_path / "no-spiece" / "tokenizer" / "spiece.model").unlink()
    assert "lacks tokenizer/spiece.model" in refusal(lacking_tokenizer, frozenset({TEXT}))
    broken = copy("broken-spiece")
    (tmp_path / "broken-spiece" / "tokenizer" / "spiece.model").write_bytes(b"\x00garbage")
    message = refusal(
        broken, frozenset({TEXT})
    )  # was blamed on tiktoken, a converter transformers tried next
    assert f"{broken}/tokenizer/spiece.model is not a SentencePiece model (RuntimeError: " in message
    assert message.endswith("it is damaged or incomplete; download it again") and "tiktoken" not in message
    unreadable = copy("broken-tokenizer-config")
    (tmp_path / "broken-tokenizer-config" / "tokenizer" / "tokenizer_config.json").write_text("{")
    message = refusal(unreadable, frozenset({TEXT}))
    assert f"cannot load {unreadable}/tokenizer as T5Tokenizer (JSONDecodeError: " in message
    assert len(message) < 600
    # a component of the other layout: the 1.0 transformer in the 1.5 folder
    mixed = copy("mixed")
    shutil.rmtree(f"{mixed}/transformer")
    shutil.copytree(f"{hub_folders['1.0']}/transformer", f"{mixed}/transformer")
    message = refusal(mixed, frozenset({DENOISER}))
    assert f"{mixed}/transformer is not of the CogVideoX 1.5 layout that cogvideox1.5-5b-i2v needs" in message
    assert "patch_size_t is null, not 2" in message
    # the whole 1.0 folder under the 1.5 profile, and the other way round
    assert "not of the CogVideoX 1.5 layout" in refusal(hub_folders["1.0"], frozenset({AUTOENCODER}))
    assert "not of the CogVideoX 1.0 layout" in refusal(hub_folders["1.5"], PARTS, profile_layout="1.0")


@pytest.mark.pipeline
def test_every_stage_of_a_real_profile_loads_only_what_it_uses(tmp_path, hub_folders, loaded, monkeypatch):
    """encode_text, encode_video, train, restore and ``progrestore restore`` with ``model.path`` set to a
    folder of the published 1.5 layout: which components each loads, and the shapes it writes."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROGRESTORE_MLFLOW", "off")
    values = yaml.safe_load((REPO / "params.yaml").read_text())
    values["clip"] |= {"width": 160, "height": 96, "clips_per_image": 1}
    values["data"]["sample"] = {"train": ["astronaut"], "val": ["chelsea"]}
    values["model"] |= {
        "profile": "cogvideox1.5-5b-i2v",
        "path": hub_folders["1.5"],
        "height": 96,
        "width": 160,
    }
    values["train"] |= {"steps": 2, "rank": 4, "warmup_steps": 1, "checkpoint_every": 2}
    values["restore"] |= {"steps": 2}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    run_stage("prepare")
    for stage in ("degrade", "prompts"):
        run_stage(stage, "deblur")

    def stage(name: str) -> list[str]:
        loaded.clear()
        run_stage(name, "deblur")
        return list(loaded)

    assert stage("encode_text") == ["tokenizer", "text_encoder", "scheduler"]
    with safe_open("data/encoded/deblur/text.safetensors", "pt") as cache:
        assert {cache.get_tensor(k).shape for k in cache.keys()} == {(226, 32)}  # noqa: SIM118
    assert stage("encode_video") == ["vae", "scheduler"]
    with safe_open("data/encoded/deblur/video.safetensors", "pt") as cache:
        shapes = {k.split("/")[0]: cache.get_tensor(k).shape for k in cache.keys()}  # noqa: SIM118
    assert shapes == {"latents": (3, 4, 12, 20), "first_frame": (3, 96, 160)}
    assert stage("train") == ["vae", "transformer", "scheduler"]
    about = json.loads((tmp_path / "models/deblur/about.json").read_text())
    assert about["model"] == {
        "family": "cogvideox",
        "profile": "cogvideox1.5-5b-i2v",
        "height": 96,
        "width": 160,
        "positional_embedding": None,
    }
    with safe_open(tmp_path / "models/deblur/pytorch_lora_weights.safetensors", "pt") as lora:
        assert lora.get_tensor(next(k for k in lora.keys() if "lora_A" in k)).shape[0] == 4  # noqa: SIM118
    assert stage("restore") == ["vae", "transformer", "scheduler"]
    frames = read_video(next((tmp_path / "data/restored/deblur").glob("*.mp4")))
    assert frames.shape == (9, 96, 160, 3)

    # progrestore restore IMAGE: the text encoder is loaded, used and gone before the transformer loads
    text_encoders: list[weakref.ref] = []
    alive_at_transformer: list[bool] = []
    original = loading.load_component

    def watch(folder, name, index, dtype):
        if name == "transformer":
            gc.collect()
            alive_at_transformer.append(any(ref() is not None for ref in text_encoders))
        component = original(folder, name, index, dtype)
        if name == "text_encoder":
            text_encoders.append(weakref.ref(component))
        return component

    monkeypatch.setattr(loading, "load_component", watch)
    loaded.clear()
    image = (
        "data/datasets/deblur/val/"
        + json.loads((tmp_path / "data/datasets/deblur/val/manifest.jsonl").read_text().splitlines()[0])[
            "image"
        ]
    )
    assert main(["restore", image, "--task", "deblur", "--lora", "models/deblur", "--out", "mine"]) == 0
    assert alive_at_transformer == [False] and len(text_encoders) == 1
    assert read_video(tmp_path / "mine/trajectory.mp4").shape == (9, 96, 160, 3)
