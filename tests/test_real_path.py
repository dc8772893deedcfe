"""The real CogVideoX path's options, proven on the tiny models: model size, positional embedding, sampler,
warmup, the scored window."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from safetensors import safe_open

from progrestore.config import Section, load_params
from progrestore.errors import InputError, ParamsError
from progrestore.infer.restore import restore_image, sampling_model
from progrestore.model.settings import model_settings
from progrestore.model.specification import Sampling

from .conftest import REPO, psnr
from .helpers.stages import run_stage
from .helpers.tiny_training import tiny_model


def _params(tmp_path, **model) -> Section:
    values = yaml.safe_load((REPO / "params.yaml").read_text())
    values["model"] |= model
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return load_params(path)


def test_model_size_defaults_to_the_profiles_native_one(tmp_path):
    settings = model_settings(_params(tmp_path, profile="cogvideox1.5-5b-i2v"))
    assert (settings.height, settings.width) == (768, 1360)
    settings = model_settings(_params(tmp_path, profile="cogvideox-5b-i2v"))
    assert (settings.height, settings.width) == (480, 720)
    settings = model_settings(_params(tmp_path, profile="cogvideox1.5-5b-i2v", height=480, width=848))
    assert (settings.height, settings.width) == (480, 848) and "480x848" in settings.label


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            {"profile": "cogvideox-5b-i2v", "height": 768, "width": 1360},
            r"model\.height .*positional_embedding: none",
        ),
        ({"profile": "tiny-1.0", "width": 128}, r"model\.height .*learned positional"),
        ({"profile": "tiny", "height": 100}, r"model\.height must be null or a multiple of 16"),
        ({"profile": "tiny", "width": 8}, r"model\.width must be .*>= 16"),
        (
            {"profile": "tiny", "positional_embedding": "none"},
            r"model\.positional_embedding must be null: tiny has no learned",
        ),
        ({"profile": "tiny-1.0", "positional_embedding": "learned"}, r"must be one of sincos, sliced, none"),
    ],
)
def test_bad_model_sizes_are_named(tmp_path, model, message):
    with pytest.raises(ParamsError, match=message):
        model_settings(_params(tmp_path, **model))


def test_the_5b_learned_pe_is_replaced_by_sin_cos_at_nine_frames_as_in_tiny_1_0():
    """tiny-1.0's sample_frames (13) differs from the clip's 9, as 5B-I2V's 49 does: diffusers then adds a
    sin-cos embedding, so the learned buffer does not reach the output. Known answer: scrambling the buffer
    changes nothing at 9 frames, and changes the output at 13."""
    model = tiny_model("tiny-1.0")
    transformer = model.denoiser
    assert model.positional_embedding(9).startswith("sin-cos (diffusers replaces the learned one")
    assert model.positional_embedding(13) == "learned"

    def output(frames: int) -> torch.Tensor:
        latent = (frames - 1) // 4 + 1
        g = torch.Generator().manual_seed(0)
        hidden = torch.randn(1, latent, 8, 12, 20, generator=g)
        text = torch.randn(1, 226, 32, generator=g)
        with torch.no_grad():
            return transformer(hidden, text, torch.tensor([500]), return_dict=False)[0]

    before = {frames: output(frames) for frames in (9, 13)}
    transformer.patch_embed.pos_embedding.normal_(generator=torch.Generator().manual_seed(1))
    assert torch.equal(output(9), before[9])
    assert not torch.allclose(output(13), before[13])


def test_the_sliced_embedding_is_exactly_the_learned_tables_first_rows():
    """``model.positional_embedding: sliced`` (the official SAT code): at 9 frames (3 latent frames of the
    4 that tiny-1.0's table covers) the patch embedding adds ``pos_embedding[:, :226 + 3 * 60]``. Known
    answer: with zero inputs and zero biases its output is that slice, bit for bit; the rows past it do
    not matter; diffusers' default (sincos) gives another embedding."""
    model = tiny_model("tiny-1.0", positional_embedding="sliced")
    assert model.positional_embedding(9).startswith("learned, sliced (SAT")
    embed = model.denoiser.patch_embed
    with torch.no_grad():
        embed.proj.bias.zero_()
        embed.text_proj.bias.zero_()
        table = torch.randn(embed.pos_embedding.shape, generator=torch.Generator().manual_seed(0))
        embed.pos_embedding.copy_(table)
        text, latents = torch.zeros(1, 226, 32), torch.zeros(1, 3, 8, 12, 20)  # noisy + image latents
        rows = 226 + 3 * (12 // 2) * (20 // 2)
        assert torch.equal(embed(text, latents), table[:, :rows])
        embed.pos_embedding[:, rows:] = 7.0
        assert torch.equal(embed(text, latents), table[:, :rows])
        default = tiny_model("tiny-1.0").denoiser.patch_embed
        default.proj.bias.zero_()
        default.text_proj.bias.zero_()
        default.pos_embedding.copy_(table)
        assert not torch.allclose(default(text, latents), table[:, :rows])


def test_sampler_is_the_same_class_for_every_profile_with_trailing_spacing():
    model = tiny_model()
    pipe = model.pipe
    for name, cls in (("ddim", "CogVideoXDDIMScheduler"), ("dpm", "CogVideoXDPMScheduler")):
        pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, timestep_spacing="leading")
        model.use_sampler(name)
        assert type(pipe.scheduler).__name__ == cls
        assert pipe.scheduler.config.timestep_spacing == "trailing"
        assert pipe.scheduler.config.prediction_type == "v_prediction"  # the model's own schedule is kept


def test_sampling_settings_reach_the_pipeline(tmp_path, monkeypatch):
    params = _params(tmp_path)
    model, sampling, _ = sampling_model(params, None)
    pipe = model.pipe
    # restore.tiny.steps over restore.*; the levers as params.yaml sets them
    assert sampling == Sampling(8, 6.0, 0, "dpm", True, attention="auto", compile=False, fuse_lora=True)
    calls = {}
    original = type(pipe).__call__

    def spy(self, *args, **kwargs):
        calls.update(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(pipe), "__call__", spy)
    image = np.zeros((96, 160, 3), np.uint8)
    embeds = torch.zeros(226, 32)
    restore_image(model, image, embeds, embeds, 9, Sampling(2, 6.0, 0, "dpm", True))
    assert calls["use_dynamic_cfg"] is True and calls["num_inference_steps"] == 2
    bad = _params(tmp_path)
    bad.section("restore")._values["scheduler"] = "euler"
    with pytest.raises(ParamsError, match=r"restore\.scheduler must be one of default, dpm, ddim"):
        sampling_model(bad, None)


def test_a_cache_at_another_size_or_of_another_backbone_is_refused(tmp_path):
    from progrestore.io.encoded import encoder_metadata, load_text_cache, load_video_cache
    from progrestore.io.tensors import save_tensors
    from progrestore.model.profiles import profile_named

    tiny, wan = profile_named("tiny"), profile_named("wan-tiny")
    path = tmp_path / "video.safetensors"
    meta = {"height": "96", "width": "160", "frames": "9"} | encoder_metadata(tiny)
    save_tensors({"latents/a": torch.zeros(3, 4, 12, 20)}, path, meta)
    assert set(load_video_cache(path, tiny, 96, 160)) == {"a"}
    with pytest.raises(InputError, match=r"96x160, the model works at 64x128 \(model\.height/model\.width\)"):
        load_video_cache(path, tiny, 64, 128)
    refused = rf"{path} was encoded by model.profile tiny \(cogvideox family\), not wan-tiny \(wan family\): run the encode_video stage again"
    with pytest.raises(InputError, match=refused):
        load_video_cache(path, wan, 96, 160)
    text = tmp_path / "text.safetensors"
    save_tensors({"k": torch.zeros(2, 3)}, text, {"prompts": "1"} | encoder_metadata(wan))
    assert set(load_text_cache(text, wan)) == {"k"}
    with pytest.raises(
        InputError,
        match=r"encoded by model.profile wan-tiny \(wan family\), not tiny \(cogvideox family\): run the encode_text",
    ):
        load_text_cache(text, tiny)


@pytest.mark.pipeline
def test_tiny_1_0_trains_restores_and_is_scored_off_its_native_size(tmp_path, monkeypatch):
    """Every stage of the model path through its run_* function, with tiny-1.0 at 64x128 (native 96x160):
    encode, train and restore all work at the model size, and evaluate scores the restored window only."""
    from progrestore.data.manifest import read_clip_manifest
    from progrestore.io.images import read_image
    from progrestore.io.video import read_video

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROGRESTORE_MLFLOW", "off")
    values = yaml.safe_load((REPO / "params.yaml").read_text())
    values["clip"] |= {"width": 160, "height": 96, "clips_per_image": 1}
    values["data"]["sample"] = {"train": ["astronaut", "coffee"], "val": ["chelsea"]}
    values["model"] |= {"profile": "tiny-1.0", "height": 64, "width": 128, "positional_embedding": "none"}
    values["train"]["tiny"] |= {"steps": 2, "checkpoint_every": 2}
    values["restore"]["tiny"] = {"steps": 2}
    values["evaluate"]["methods"] = ["identity", "model"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(values, sort_keys=False))

    run_stage("prepare")
    for stage in ("degrade", "prompts", "encode_video", "encode_text"):
        run_stage(stage, "deblur")
    with safe_open("data/encoded/deblur/video.safetensors", "pt") as cache:
        assert (cache.metadata()["height"], cache.metadata()["width"]) == ("64", "128")
        latents = cache.get_tensor(next(k for k in cache.keys() if k.startswith("latents/")))  # noqa: SIM118
    assert latents.shape == (3, 4, 8, 16)  # 9 frames -> 3 latent frames at 64x128 / 8
    run_stage("train", "deblur")
    record = json.loads((tmp_path / "models/deblur/about.json").read_text())
    assert "64x128" in record["profile"] and record["positional_embedding"] == "none (rotary only)"
    run_stage("restore", "deblur")
    restored = json.loads((tmp_path / "data/restored/deblur/restored.json").read_text())
    assert restored["model_size"] == [64, 128]
    # the 2:1 window of a 160x96 clip: 160x80 at y = 8
    assert restored["restored_window"] == {"x": 0, "y": 8, "width": 160, "height": 80}
    run_stage("score_baselines", "deblur")
    run_stage("evaluate", "deblur")
    report = json.loads((tmp_path / "metrics/deblur.json").read_text())
    about = json.loads((tmp_path / "metrics/deblur/about.json").read_text())
    assert {k: about["scored_region"][k] for k in ("x", "y", "width", "height")} == restored[
        "restored_window"
    ]
    # known answer: identity's score is the PSNR of the degraded frame inside the window, not the whole frame
    val = tmp_path / "data/datasets/deblur/val"
    entry = read_clip_manifest(val)[0]
    degraded, clean = read_video(val / entry["video"])[0], read_image(val / entry["clean"])
    inside = psnr(degraded[8:88], clean[8:88])
    assert report["final"]["identity"]["psnr"] == pytest.approx(inside, abs=1e-9)
    assert abs(psnr(degraded, clean) - inside) > 1e-3
