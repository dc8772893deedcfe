"""The speed levers (README: Speed levers) against the plain path, on the tiny models (CogVideoX's and
Wan's) in float32 on the CPU: the attention kernel, regional compilation, the fused LoRA and gradient
checkpointing of a share of the blocks. Speed itself is measured in benchmarks/ (BENCHMARKS.md), never here."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from peft.tuners.lora import LoraLayer
from peft.utils import get_peft_model_state_dict

from progrestore.config import Section, load_params
from progrestore.errors import ParamsError
from progrestore.infer.restore import sampling_settings, use_sampling_levers
from progrestore.model import pipeline_backbone
from progrestore.model.specification import Sampling, attention_kernel
from progrestore.train.config import TrainConfig
from progrestore.train.export import save_lora
from progrestore.train.loop import loss_for_step

from .helpers.tiny_training import REPO, synthetic_data, tiny_config, tiny_model

PLAIN = Sampling(steps=2, guidance_scale=6.0, seed=0, scheduler="dpm", dynamic_cfg=False)


@pytest.fixture
def float_frames(monkeypatch):
    """``sample`` returns the pipeline's float frames, before rounding to uint8: differences below one
    grey level stay visible."""
    monkeypatch.setattr(pipeline_backbone, "to_uint8", lambda frames: frames)


def _trajectory(model, data, sampling: Sampling) -> np.ndarray:
    image = data.first_frames["c0"].permute(1, 2, 0).numpy()
    embeds = data.prompt_embeds["c0"]
    return model.sample(image, embeds, torch.zeros_like(embeds), 9, sampling)


def _loss_and_gradients(model, data, cfg: TrainConfig) -> tuple[float, dict[str, torch.Tensor]]:
    """One training loss under ``cfg``'s levers and the LoRA's gradients, as ``optimizer_step`` runs them."""
    denoiser = model.denoiser
    denoiser.zero_grad(set_to_none=True)
    with attention_kernel(cfg.attention):
        loss = loss_for_step(model, denoiser, data, cfg, step=0, rank=0, world=1)
        loss.backward()
    return float(loss.detach()), {
        n: p.grad.clone() for n, p in denoiser.named_parameters() if p.requires_grad
    }


def _with_random_lora(model, cfg: TrainConfig, seed: int = 0) -> None:
    """The LoRA of ``cfg`` with every matrix random (peft starts B at zero: a fused zero would prove nothing)."""
    model.denoiser.add_adapter(cfg.lora_config())
    g = torch.Generator().manual_seed(seed)
    for name, parameter in model.denoiser.named_parameters():
        if "lora_" in name:
            parameter.data = 0.05 * torch.randn(parameter.shape, generator=g)
            parameter.requires_grad_(True)


def _gradient_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest difference between two sets of gradients, relative to the largest gradient of ``b``."""
    largest = max(float(grad.abs().max()) for grad in b.values())
    return max(float((a[name] - grad).abs().max()) for name, grad in b.items()) / largest


def _max_difference(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


@pytest.mark.parametrize("profile", ["tiny", "wan-tiny"])
def test_the_math_attention_kernel_gives_what_torchs_own_choice_gives(float_frames, profile):
    model = tiny_model(profile)
    data = synthetic_data(model, clips=1)
    plain = _trajectory(model, data, PLAIN)
    math = _trajectory(model, data, dataclasses.replace(PLAIN, attention="math"))
    print(f"math - auto: trajectory {_max_difference(plain, math):.3g}")
    # torch's CPU choice is its fused flash kernel, which sums in another order than the math one: float32
    # rounding (measured: frames in [0, 1] 9.2e-6, 1/400 of a grey level; loss 2e-9; gradients 1.3e-6 of the largest)
    assert 0 < _max_difference(plain, math) <= 5e-5  # not 0: the kernel did change
    cfg = tiny_config()
    _with_random_lora(model, cfg)
    loss, grads = _loss_and_gradients(model, data, cfg)
    loss_math, grads_math = _loss_and_gradients(model, data, dataclasses.replace(cfg, attention="math"))
    worst = _gradient_difference(grads_math, grads)
    print(f"math - auto: loss {abs(loss - loss_math) / loss:.3g} (relative), gradients {worst:.3g}")
    assert abs(loss - loss_math) <= 1e-6 * abs(loss)
    assert worst <= 1e-4


def _params_with(**blocks) -> Section:
    params = load_params(REPO / "params.yaml")
    values = dict(params._values)
    for block, changes in blocks.items():
        values[block] = values[block] | changes
    return Section(values, source="params.yaml")


def test_the_levers_defaults_are_the_plain_path_with_the_lora_fused():
    model = tiny_model()
    sampling = sampling_settings(load_params(REPO / "params.yaml").section("restore"), model.settings)
    assert (sampling.attention, sampling.compile, sampling.fuse_lora) == ("auto", False, True)
    cfg = TrainConfig.from_section(load_params(REPO / "params.yaml").section("train"))
    assert (cfg.attention, cfg.compile, cfg.gradient_checkpointing) == ("auto", False, True)


@pytest.mark.parametrize("kernel", ["cudnn", "flash", "efficient"])
def test_a_cuda_attention_kernel_without_cuda_is_refused_naming_the_key(kernel, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model = tiny_model()
    params = _params_with(restore={"attention": kernel}, train={"attention": kernel})
    with pytest.raises(
        ParamsError, match=rf"restore\.attention must be one of auto, math without CUDA.*{kernel}"
    ):
        sampling_settings(params.section("restore"), model.settings)
    with pytest.raises(ParamsError, match=r"train\.attention must be one of auto, math without CUDA"):
        TrainConfig.from_section(params.section("train"), tiny=True)


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.5, "half"])
def test_gradient_checkpointing_takes_true_false_or_a_share(value):
    params = _params_with(train={"gradient_checkpointing": value})
    with pytest.raises(ParamsError, match=r"train\.gradient_checkpointing must be true, false or a share"):
        TrainConfig.from_section(params.section("train"))
    good = _params_with(train={"gradient_checkpointing": 0.5})
    assert TrainConfig.from_section(good.section("train")).gradient_checkpointing == 0.5


@pytest.mark.parametrize("profile", ["tiny", "wan-tiny"])
def test_checkpointing_a_share_of_the_blocks_gives_the_same_gradients(monkeypatch, profile):
    model = tiny_model(profile)
    data = synthetic_data(model, clips=1)
    cfg = tiny_config()
    _with_random_lora(model, cfg)
    blocks = len(model.repeated_blocks)
    recomputed = []
    checkpoint = torch.utils.checkpoint.checkpoint

    def counted(function, *args, **kwargs):
        recomputed.append(function)
        return checkpoint(function, *args, **kwargs)

    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", counted)
    results = {}
    for share in (False, 0.5, True):
        recomputed.clear()
        model.checkpoint_blocks(share)
        results[share] = _loss_and_gradients(model, data, cfg)
        assert len(recomputed) == {False: 0, 0.5: 1, True: blocks}[share]
    loss, grads = results[False]
    for share in (0.5, True):
        assert results[share][0] == loss
        assert all(torch.equal(results[share][1][name], grad) for name, grad in grads.items())  # bitwise
    assert any(float(grad.abs().max()) > 0 for grad in grads.values())


@pytest.mark.parametrize("profile", ["tiny", "wan-tiny"])
def test_sampling_with_the_lora_fused_gives_the_unfused_trajectory(float_frames, tmp_path, profile):
    model = tiny_model(profile)
    data = synthetic_data(model, clips=1)
    cfg = tiny_config()
    _with_random_lora(model, cfg)
    adapter = get_peft_model_state_dict(model.denoiser)
    model.denoiser.delete_adapters("default")
    base = _trajectory(model, data, PLAIN)
    save_lora(model, adapter, cfg, tmp_path)
    model.load_lora(tmp_path)
    unfused = _trajectory(model, data, PLAIN)
    use_sampling_levers(model, dataclasses.replace(PLAIN, fuse_lora=True), lora_loaded=True)
    assert all(layer.merged for layer in model.denoiser.modules() if isinstance(layer, LoraLayer))
    fused = _trajectory(model, data, PLAIN)
    effect, difference = _max_difference(unfused, base), _max_difference(fused, unfused)
    print(f"LoRA effect {effect:.3g}, fused - unfused {difference:.3g}")
    # W + s B A rounded once in float32 against W x + s B (A x): float32 rounding, measured 7.4e-6 on
    # frames in [0, 1] for a LoRA that moves them by 0.71 (wan-tiny: 1.3e-6 for 0.014)
    assert effect > 1e-2 and difference <= 5e-5


@pytest.mark.pipeline  # inductor compiles the blocks with gcc: about 2 minutes on 2 cores
def test_compiled_blocks_give_the_eager_trajectory_and_loss(float_frames):
    model = tiny_model()
    data = synthetic_data(model, clips=1)
    cfg = tiny_config(gradient_checkpointing=True)
    _with_random_lora(model, cfg)
    model.checkpoint_blocks(True)
    eager = _trajectory(model, data, PLAIN)
    loss, grads = _loss_and_gradients(model, data, cfg)
    torch._dynamo.reset()
    model.compile_blocks()
    compiled = _trajectory(model, data, dataclasses.replace(PLAIN, compile=True))
    loss_compiled, grads_compiled = _loss_and_gradients(model, data, cfg)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # compiled, not run eagerly
    difference = _max_difference(compiled, eager)
    print(f"compiled - eager: trajectory {difference:.3g}, loss {abs(loss - loss_compiled):.3g}")
    # inductor fuses the elementwise work and reorders the norms' sums: float32 rounding (measured 5.8e-6 on
    # frames in [0, 1], loss 2e-9 relative)
    assert difference <= 5e-5
    assert abs(loss - loss_compiled) <= 1e-6 * abs(loss)
    for name, grad in grads.items():
        assert torch.allclose(grads_compiled[name], grad, rtol=1e-3, atol=1e-5 * float(grad.abs().max())), (
            name
        )
