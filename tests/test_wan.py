"""The Wan family (Wan2.2-TI2V): its hub-layout folder and loading, the conditioning training builds against
the one the pipeline builds, the flow-matching loss's known answers, samplers, LoRA round trip, and the
refusals of another family's folder, LoRA and caches."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors import safe_open

from progrestore.cli import main
from progrestore.config import load_params
from progrestore.errors import InputError
from progrestore.infer.restore import sampling_settings
from progrestore.model.families import load_specification
from progrestore.model.profiles import profile_named
from progrestore.model.settings import ModelSettings, model_frames, model_settings
from progrestore.model.specification import AUTOENCODER, DENOISER, PARTS, TEXT, Sampling
from progrestore.model.wan.components import FOLDER
from progrestore.model.wan.conditioning import token_timesteps, training_sigmas, training_weights
from progrestore.model.wan.configs import REAL_TRANSFORMER, REAL_VAE, TEXT_TOKENS
from progrestore.model.wan.pipeline_folder import build_tiny_folder

from .conftest import HUB_FOLDER_FILES, REPO

HEIGHT, WIDTH, FRAMES = 96, 160, 9


def _settings(profile: str = "wan-tiny", path: str | None = None) -> ModelSettings:
    return ModelSettings(profile_named(profile), path, 0, None, HEIGHT, WIDTH)


@pytest.fixture(scope="module")
def model():
    return load_specification(_settings())


@pytest.fixture(scope="module")
def hub_folder(tmp_path_factory) -> Path:
    """The tiny model's folder as downloaded: the same builder as the cache, without our record."""
    folder = tmp_path_factory.mktemp("hub") / "Wan2.2-TI2V-tiny"
    build_tiny_folder(folder, FOLDER, seed=0)
    return folder


def _frames(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)


def _first_frame(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames[0]).permute(2, 0, 1).contiguous()


def test_the_folder_has_the_published_layout_and_loads_part_by_part(hub_folder):
    files = {str(p.relative_to(hub_folder)) for p in hub_folder.rglob("*") if p.is_file()}
    shards = {f for f in files if f.startswith("transformer/diffusion_pytorch_model-")}
    assert files - shards == HUB_FOLDER_FILES and len(shards) >= 2
    index = json.loads((hub_folder / "model_index.json").read_text())
    assert index["_class_name"] == "WanPipeline" and index["expand_timesteps"] is True
    assert index["transformer"] == ["diffusers", "WanTransformer3DModel"]
    assert index["text_encoder"] == ["transformers", "UMT5EncoderModel"]
    scheduler = json.loads((hub_folder / "scheduler/scheduler_config.json").read_text())
    assert scheduler["_class_name"] == "UniPCMultistepScheduler"
    assert (scheduler["flow_shift"], scheduler["prediction_type"], scheduler["use_flow_sigmas"]) == (
        5.0,
        "flow_prediction",
        True,
    )
    vae = json.loads((hub_folder / "vae/config.json").read_text())
    assert (vae["z_dim"], vae["scale_factor_spatial"], vae["patch_size"]) == (48, 16, 2)
    assert vae["latents_mean"] == REAL_VAE["latents_mean"] and vae["latents_std"] == REAL_VAE["latents_std"]
    settings = _settings("wan2.2-ti2v-5b", str(hub_folder))  # the real profile's code on the tiny folder
    text = load_specification(settings, frozenset({TEXT}))
    assert text.parts == {TEXT} and text.pipe.transformer is None
    embeds = text.encode_prompt("The image becomes sharper and higher in resolution.")
    assert embeds.shape == (TEXT_TOKENS, 32)
    tokens = int((embeds.abs().sum(-1) > 0).sum())  # the pipeline zeroes the padding's embeddings
    assert 0 < tokens < 40 and not embeds[tokens:].any()
    autoencoder = load_specification(settings, frozenset({AUTOENCODER}))
    assert autoencoder.parts == {AUTOENCODER}
    latents = autoencoder.encode_video(_frames(), torch.Generator().manual_seed(0))
    assert latents.shape == (3, 48, HEIGHT // 16, WIDTH // 16)  # 9 frames -> 3 latent frames, 16x spatial
    with pytest.raises(RuntimeError, match="loaded without its denoiser part"):
        autoencoder.sample(_frames()[0], embeds, embeds, FRAMES, Sampling(1, 1.0, 0, "unipc", False))


def _one_line(call) -> str:
    with pytest.raises(InputError) as refused:
        call()
    assert "\n" not in str(refused.value)
    return str(refused.value)


def test_another_familys_folder_or_a_wan_of_another_layout_is_refused_in_one_line(tmp_path, hub_folder):
    from progrestore.model.cogvideox.pipeline_folder import build_tiny_folder as build_cogvideox

    cogvideox = tmp_path / "cogvideox"
    build_cogvideox(cogvideox, "1.5", seed=0)
    message = _one_line(lambda: load_specification(_settings("wan2.2-ti2v-5b", str(cogvideox)), PARTS))
    assert "is a CogVideoXImageToVideoPipeline, not a WanPipeline or WanImageToVideoPipeline" in message
    # Wan2.1 (no first-frame timestep expansion), and a 16-channel transformer: not TI2V
    older = tmp_path / "wan21"
    shutil.copytree(hub_folder, older)
    index = json.loads((older / "model_index.json").read_text())
    (older / "model_index.json").write_text(json.dumps(index | {"expand_timesteps": False}))
    message = _one_line(lambda: load_specification(_settings("wan2.2-ti2v-5b", str(older)), PARTS))
    assert (
        "is not of the Wan 2.2 layout that wan2.2-ti2v-5b needs (expand_timesteps is false, not true)"
        in message
    )
    (older / "model_index.json").write_text(json.dumps(index))
    config = json.loads((older / "transformer/config.json").read_text())
    (older / "transformer/config.json").write_text(json.dumps(config | {"in_channels": 16}))
    message = _one_line(lambda: load_specification(_settings("wan2.2-ti2v-5b", str(older)), PARTS))
    assert (
        f"{older}/transformer is not of the Wan 2.2 layout" in message
        and "in_channels is 16, not 48" in message
    )


def _transformer_calls(model, monkeypatch) -> list[dict]:
    """The keyword arguments of every call of the denoiser, recorded."""
    calls: list[dict] = []
    transformer = model.pipe.transformer
    original = type(transformer).forward

    def spy(self, *args, **kwargs):
        calls.append({k: v.detach().clone() if torch.is_tensor(v) else v for k, v in kwargs.items()})
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(transformer), "forward", spy)
    return calls


def test_the_flow_matching_schedule_and_weights_are_diffsynths():
    """Known answers: 1,000 levels from 1 down to shift(0.001), the Gaussian weight of mean 1, least at the
    ends and largest in the middle of the timestep range."""
    sigmas = training_sigmas(5.0, 1000)
    assert len(sigmas) == 1000 and sigmas[0] == 1.0
    assert sigmas[-1].item() == pytest.approx(5 * 0.001 / (1 + 4 * 0.001), rel=1e-6)
    assert (sigmas[1:] < sigmas[:-1]).all()
    assert sigmas[500].item() == pytest.approx(5 * 0.5 / (1 + 4 * 0.5), rel=1e-6)  # 0.8333: the shift at work
    weights = training_weights(sigmas * 1000)
    assert weights.mean().item() == pytest.approx(1.0, rel=1e-5) and weights.min() == 0
    middle = torch.argmin((sigmas * 1000 - 500).abs())
    assert weights.argmax() == middle and weights[0] == 0  # timestep 1000, as far from 500 as t = 0
    mask = torch.ones(1, 1, 2, 4, 4)
    mask[:, :, 0] = 0
    assert token_timesteps(mask, torch.tensor([7.0]), (1, 2, 2)).tolist() == [[0.0] * 4 + [7.0] * 4]


def test_the_loss_leaves_out_the_given_first_frame_and_dropout_makes_it_text_to_video(model, monkeypatch):
    """A prediction wrong on the first latent frame alone does not change the loss of an image-conditioned
    step; with the image dropped, the first frame is predicted and counts, under one timestep."""
    frames = _frames(2)
    latents = model.encode_video(frames, torch.Generator().manual_seed(0)).clone()
    embeds = torch.zeros(TEXT_TOKENS, 32)
    first = _first_frame(frames)
    transformer = model.pipe.transformer

    def loss(dropout: float, spoil_first: bool) -> torch.Tensor:
        def denoiser(**kwargs):
            out = transformer(**kwargs)[0]
            if spoil_first:
                out = out.clone()
                out[:, :, 0] += 100.0
            return (out,)

        with torch.no_grad():
            return model.training_loss(
                denoiser, latents, first, embeds, torch.Generator().manual_seed(5), dropout
            )

    assert torch.equal(loss(0.0, False), loss(0.0, True))
    assert loss(1.0, True) > 10 * loss(1.0, False)
    calls = _transformer_calls(model, monkeypatch)
    loss(1.0, False)
    assert calls[0]["timestep"].shape == (1,)  # text-to-video: one timestep, nothing replaced


def test_samplers_keep_the_models_shift_and_default_is_unipc(model, tmp_path):
    values = yaml.safe_load((REPO / "params.yaml").read_text())
    values["model"]["profile"] = "wan-tiny"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(values))
    params = load_params(tmp_path / "params.yaml")
    sampling = sampling_settings(params.section("restore"), model_settings(params))
    assert sampling.scheduler == "unipc" and sampling.dynamic_cfg is False  # CogVideoX's option: not Wan's
    assert model_frames(params) == 9
    for name, cls, key in (
        ("unipc", "UniPCMultistepScheduler", "flow_shift"),
        ("dpm", "DPMSolverMultistepScheduler", "flow_shift"),
        ("euler", "FlowMatchEulerDiscreteScheduler", "shift"),
    ):
        model.use_sampler(name)
        assert type(model.pipe.scheduler).__name__ == cls and model.pipe.scheduler.config[key] == 5.0
    values["clip"]["frames"] = 11
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(values))
    with pytest.raises(
        Exception, match=r"clip\.frames must be 4k\+1 for model\.profile wan-tiny \(Wan's VAE"
    ):
        model_frames(load_params(tmp_path / "params.yaml"))


def test_a_lora_saves_and_loads_through_diffusers_wan_loader(model, tmp_path):
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    settings = _settings()
    trained = load_specification(settings, frozenset({AUTOENCODER, DENOISER}))
    config = LoraConfig(r=4, lora_alpha=2, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    trained.denoiser.add_adapter(config)
    with torch.no_grad():
        for name, param in trained.denoiser.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn_like(param))
    state = get_peft_model_state_dict(trained.denoiser)
    written = trained.save_lora(state, config.to_dict(), tmp_path)
    with safe_open(str(written), "pt") as saved:
        metadata = json.loads(saved.metadata()["lora_adapter_metadata"])
    assert (metadata["transformer.r"], metadata["transformer.lora_alpha"]) == (4, 2)
    fresh = load_specification(settings, frozenset({AUTOENCODER, DENOISER}))
    fresh.load_lora(tmp_path)
    loaded = get_peft_model_state_dict(fresh.denoiser, adapter_name="restoration")
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    assert fresh.denoiser.peft_config["restoration"].lora_alpha == 2
    # self- and cross-attention are both adapted, under diffusers' Wan module names
    assert any(".attn1.to_q." in k for k in state) and any(".attn2.to_q." in k for k in state)


def test_a_lora_of_the_other_family_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    values = yaml.safe_load((REPO / "params.yaml").read_text())
    values["model"]["profile"] = "wan-tiny"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(values))
    lora = tmp_path / "lora"
    lora.mkdir()
    (lora / "pytorch_lora_weights.safetensors").write_bytes(b"")
    record = {"model": {"family": "cogvideox", "profile": "tiny", "height": 96, "width": 160}}
    (lora / "about.json").write_text(json.dumps(record))
    from PIL import Image

    Image.fromarray(_frames()[0]).save(tmp_path / "photo.png")
    assert main(["restore", "photo.png", "--task", "sr", "--lora", "lora", "--out", "o"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [
        "progrestore restore: error: lora/pytorch_lora_weights.safetensors is a LoRA of the cogvideox family "
        "(lora/about.json); model.profile wan-tiny is of the wan family: train a LoRA for it"
    ]
    assert not (tmp_path / "o").exists()


def test_the_real_configs_build_the_published_5b_architecture():
    """Wan2.2-TI2V-5B's transformer from the transcribed config, on the meta device: its published size."""
    from diffusers import WanTransformer3DModel

    with torch.device("meta"):
        transformer = WanTransformer3DModel(**REAL_TRANSFORMER)
    count = sum(p.numel() for p in transformer.parameters())
    assert 4.9e9 < count < 5.1e9, count  # "5B"; the official 3072-wide, 30-block DiT
    assert transformer.config.num_attention_heads * transformer.config.attention_head_dim == 3072
    assert len(transformer.blocks) == 30


@pytest.mark.pipeline
def test_wan_tiny_runs_every_model_stage_restore_and_reloblur(tmp_path, monkeypatch):
    """The model path with ``model.profile: wan-tiny`` and nothing else changed but sizes: encode (caches
    naming the family), train (its record naming it), restore at a framed size, evaluate and its gates,
    then ``progrestore restore`` and ``progrestore reloblur`` with the trained LoRA."""
    from .helpers.stages import run_stage
    from .test_reloblur import _masked_fixture

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROGRESTORE_MLFLOW", "off")
    values = yaml.safe_load((REPO / "params.yaml").read_text())
    values["clip"] |= {"width": 160, "height": 96, "clips_per_image": 1}
    values["data"]["sample"] = {"train": ["astronaut", "coffee"], "val": ["chelsea"]}
    values["model"] |= {"profile": "wan-tiny", "height": 64, "width": 128}
    values["train"]["tiny"] |= {"steps": 2, "checkpoint_every": 2}
    values["restore"]["tiny"] = {"steps": 2}
    values["evaluate"]["methods"] = ["identity", "vae", "model"]
    values["tasks"] = ["deblur"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())  # names the metrics folder, for gate

    run_stage("prepare")
    for stage in ("degrade", "prompts", "encode_video", "encode_text"):
        run_stage(stage, "deblur")
    for cache in ("video", "text"):
        with safe_open(f"data/encoded/deblur/{cache}.safetensors", "pt") as handle:
            assert {k: handle.metadata()[k] for k in ("family", "profile")} == {
                "family": "wan",
                "profile": "wan-tiny",
            }
            if cache == "video":
                key = next(k for k in handle.keys() if k.startswith("latents/"))  # noqa: SIM118
                assert handle.get_tensor(key).shape == (3, 48, 4, 8)  # 9 frames at 64x128 / (4, 16, 16)
    run_stage("train", "deblur")
    about = json.loads((tmp_path / "models/deblur/about.json").read_text())
    assert about["model"] == {
        "family": "wan",
        "profile": "wan-tiny",
        "height": 64,
        "width": 128,
        "positional_embedding": None,
    }
    assert "randomly initialised tiny Wan" in about["profile"] and "plumbing, not quality" in about["profile"]
    run_stage("restore", "deblur")
    restored = json.loads((tmp_path / "data/restored/deblur/restored.json").read_text())
    assert restored["family"] == "wan" and restored["model_size"] == [64, 128]
    assert restored["sampling"]["scheduler"] == "unipc" and restored["sampling"]["dynamic_cfg"] is False
    assert restored["restored_window"] == {"x": 0, "y": 8, "width": 160, "height": 80}  # 2:1 in 160x96
    run_stage("reconstruct", "deblur")
    reconstructed = json.loads((tmp_path / "data/reconstructed/deblur/reconstructed.json").read_text())
    assert reconstructed["family"] == "wan" and reconstructed["model_size"] == [64, 128]
    assert reconstructed["reconstructed_window"] == restored["restored_window"]
    run_stage("score_baselines", "deblur")
    run_stage("evaluate", "deblur")
    report = json.loads((tmp_path / "metrics/deblur.json").read_text())
    assert set(report["final"]) == {"identity", "vae", "model"} and set(report["against"]) == {"model_vs_vae"}
    assert main(["gate"]) == 0
    photo = tmp_path / "data/datasets/deblur/val/images/chelsea_v0.png"  # the degraded first frame
    assert main(["restore", str(photo), "--task", "deblur", "--lora", "models/deblur", "--out", "one"]) == 0
    assert json.loads((tmp_path / "one/restore.json").read_text())["profile"].startswith("wan-tiny")
    _masked_fixture(tmp_path / "reloblur")
    out = tmp_path / "metrics/reloblur.json"
    assert main(["reloblur", "reloblur", "--lora", "models/deblur", "--out", str(out)]) == 0
    assert "model" in json.loads(out.read_text())["final"]


def test_the_size_rule_is_wans_and_the_clips_are_framed_to_its_native_size(tmp_path):
    """Multiples of 32 (the 16x VAE times the 2x2 patch); the paper's 1360x768 clips are framed to 704x1280
    by the centre window of the model's aspect ratio."""
    from progrestore.data.framing import centre_window
    from progrestore.errors import ParamsError

    values = yaml.safe_load((REPO / "params.yaml").read_text())
    values["model"] |= {"profile": "wan2.2-ti2v-5b", "height": 720}  # a CogVideoX-valid height, not Wan's
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(values))
    with pytest.raises(
        ParamsError, match=r"model\.height must be null or a multiple of 32 up to 4096 \(Wan's size step\)"
    ):
        model_settings(load_params(tmp_path / "params.yaml"))
    values["model"]["height"] = None
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(values))
    settings = model_settings(load_params(tmp_path / "params.yaml"))
    assert (settings.height, settings.width) == (704, 1280)
    # 1360x768 is a little taller than 1280x704: the full width, 748 rows from y = 10
    assert centre_window(1360, 768, settings.width, settings.height) == (0, 10, 1360, 748)
