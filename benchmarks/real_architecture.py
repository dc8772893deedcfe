"""The real architectures (CogVideoX I2V, Wan2.2-TI2V) with random weights: checks on CPU, the benchmark on a GPU.

No weights are downloaded: each real profile is built from its published config (its family's
``configs.REAL_*``), the LoRA from the ``train`` block of params.yaml (rank 128, alpha 64,
to_q/to_k/to_v/to_out.0), and everything runs through the code the stages run (``train_lora``,
``save_lora``, the specification's ``load_lora`` and ``sample``, ``FrameScorer``). What differs by family
(building the components, a clip's tensor shapes, a direct transformer call, the stages' VAE settings, the
FLOP count, the text encoder) is one :class:`Family` record each, in ``FAMILIES``.

    python benchmarks/real_architecture.py build PROFILE   # CPU: the full transformer in bf16 + LoRA:
                                                           #   parameter counts, build time, peak RSS
    python benchmarks/real_architecture.py step PROFILE    # CPU: 2 blocks at the real widths in fp32, at
                                                           #   the profile's size: two training steps of the
                                                           #   train stage's loop, LoRA saved and loaded into
                                                           #   a fresh pipeline (same weights, same outputs,
                                                           #   scale alpha/r)
    python benchmarks/real_architecture.py gpu [--smoke] [--profiles P ...]
                                                           # GPU (make bench-gpu): the full models in bf16,
                                                           #   1.5 at 9x768x1360, 5B at 9x480x720, Wan2.2-
                                                           #   TI2V-5B at 9x704x1280, in one run: training
                                                           #   step and 50-step CFG sampling, plain, each
                                                           #   speed lever alone and all together (ratios
                                                           #   to plain, compile time apart), and the
                                                           #   card's matmul rate at their shapes: the
                                                           #   model's utilisation. --smoke: the same code
                                                           #   on CPU with the tiny profiles

Each prints one JSON line (and ``gpu`` a table); ``make check-real-cpu`` runs build and step for every
real profile, each in its own process so that peak RSS is its own. A full 42-block training step on these
2-core CPUs takes more than 13 minutes in bf16, hence the 2-block step check.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import re
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from matmul_rate import matmul_rates, matmul_seconds, utilisation  # benchmarks/, the script's folder

from progrestore.config import load_params
from progrestore.model.cogvideox import components as cogvideox_components
from progrestore.model.cogvideox.conditioning import (
    latent_frames,
    model_extras,
    padding_frames,
    rotary_embedding,
)
from progrestore.model.cogvideox.configs import REAL_T5
from progrestore.model.cogvideox.configs import TEXT_TOKENS as COGVIDEOX_TEXT_TOKENS
from progrestore.model.cogvideox.flops import ForwardFlops, forward_flops, token_parameters, video_tokens
from progrestore.model.cogvideox.specification import CogVideoXImageToVideo
from progrestore.model.profiles import profile_named, profile_names
from progrestore.model.specification import TEXT, ModelSpecification, Sampling
from progrestore.model.wan import components as wan_components
from progrestore.model.wan.conditioning import first_frame_mask, token_timesteps
from progrestore.model.wan.configs import REAL_UMT5, REAL_VAE
from progrestore.model.wan.configs import SCHEDULER as WAN_SCHEDULER
from progrestore.model.wan.configs import TEXT_TOKENS as WAN_TEXT_TOKENS
from progrestore.model.wan.specification import WanImageToVideo
from progrestore.train.config import TrainConfig
from progrestore.train.export import ADAPTER, save_lora
from progrestore.train.loop import train_lora
from progrestore.train.records import TrainData

FRAMES = 9
GPU_PROFILES = ("cogvideox1.5-5b-i2v", "cogvideox-5b-i2v", "wan2.2-ti2v-5b")  # in this order, one run
REAL_PROFILES = tuple(name for name in profile_names() if not profile_named(name).tiny)
GUIDANCE = 6.0  # params.yaml's restore.guidance_scale


def lora_config(**changes) -> TrainConfig:
    """The ``train`` block of params.yaml (the official trainer's values), with ``changes``."""
    cfg = TrainConfig.from_section(load_params(Path(__file__).parents[1] / "params.yaml").section("train"))
    return dataclasses.replace(cfg, **changes)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ---- CogVideoX I2V


def _cogvideox_shapes(pipe, height: int, width: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    latents = (latent_frames(FRAMES), pipe.vae.config.latent_channels, height // 8, width // 8)
    return latents, (COGVIDEOX_TEXT_TOKENS, pipe.transformer.config.text_embed_dim)


def _cogvideox_output(
    pipe, embeds: torch.Tensor, height: int, width: int, g: torch.Generator
) -> torch.Tensor:
    config = pipe.transformer.config
    count = latent_frames(FRAMES) + padding_frames(latent_frames(FRAMES), config.patch_size_t)
    hidden = torch.randn(1, count, config.in_channels, height // 8, width // 8, generator=g)
    rotary = rotary_embedding(config, pipe.vae.config, height, width, count, torch.device("cpu"))
    return pipe.transformer(
        hidden_states=hidden,
        encoder_hidden_states=embeds[None],
        timestep=torch.tensor([500]),
        image_rotary_emb=rotary,
        ofs=model_extras(pipe.transformer, hidden),
        return_dict=False,
    )[0]


def _cogvideox_vae_whole(vae) -> None:
    vae.disable_tiling()
    vae.disable_slicing()


def _cogvideox_flops(transformer, height: int, width: int, dtype, device, warmup: int, repeats: int) -> dict:
    """FLOPs by ``model/cogvideox/flops.py``; the card's rate at the block's products (``matmul_rate.py``),
    over the joint text and video sequence."""
    counts = token_parameters(transformer)  # with the LoRA, which both timed loops ran
    video = video_tokens(transformer.config, FRAMES, height, width)
    forward = forward_flops(counts, video)
    rates = matmul_rates(video + COGVIDEOX_TEXT_TOKENS, counts.inner_dim, dtype, device, warmup, repeats)
    return {"video_tokens": video, "text_tokens": COGVIDEOX_TEXT_TOKENS, "forward": forward} | rates


def _cogvideox_text_encoder(smoke: bool):
    from transformers import T5Config, T5EncoderModel

    tokenizer = cogvideox_components.tiny_components("1.5", 0, frozenset({TEXT}))["tokenizer"]
    config = T5Config(**REAL_T5 | ({"num_layers": 1} if smoke else {}))
    return "T5-XXL", T5EncoderModel, config, tokenizer


# ---- Wan2.2-TI2V


def _wan_latent_grid(height: int, width: int) -> tuple[int, int, int]:
    temporal, spatial = REAL_VAE["scale_factor_temporal"], REAL_VAE["scale_factor_spatial"]
    return (FRAMES - 1) // temporal + 1, height // spatial, width // spatial


def _wan_shapes(pipe, height: int, width: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    frames, h, w = _wan_latent_grid(height, width)
    latents = (frames, pipe.vae.config.z_dim, h, w)
    return latents, (WAN_TEXT_TOKENS, pipe.transformer.config.text_dim)


def _wan_output(pipe, embeds: torch.Tensor, height: int, width: int, g: torch.Generator) -> torch.Tensor:
    """As the TI2V pipeline calls it: per-token timesteps, 0 on the first latent frame."""
    config = pipe.transformer.config
    hidden = torch.randn(1, config.in_channels, *_wan_latent_grid(height, width), generator=g)
    timesteps = token_timesteps(first_frame_mask(hidden), torch.tensor(500.0), config.patch_size)
    return pipe.transformer(
        hidden_states=hidden, timestep=timesteps, encoder_hidden_states=embeds[None], return_dict=False
    )[0]


_WAN_TEXT_ONLY = re.compile(r"condition_embedder\.text_embedder\.|blocks\.\d+\.attn2\.(to_k|to_v|norm_k)\.")
_WAN_VIDEO = ("blocks", "patch_embedding", "condition_embedder", "norm_out", "proj_out", "scale_shift_table")


def wan_forward_flops(transformer, video: int, text: int = WAN_TEXT_TOKENS) -> tuple[ForwardFlops, dict]:
    """One forward of a ``WanTransformer3DModel`` (LoRA-wrapped or not) at ``video`` + ``text`` tokens, counted
    from its own parameters. Unlike CogVideoX, Wan attends over the video tokens alone and reads the text by
    cross-attention: per text token act only the text projection and the cross-attentions' k/v (and their
    norms); everything else acts per video token, the time embedding and its projection too, since TI2V
    gives every token its own timestep (``expand_timesteps``). Attention: per block the self-attention's
    scores and values over ``video``^2 and the cross-attention's over ``video`` x ``text``."""
    counts = {"video": 0, "text": 0}
    for name, parameter in transformer.named_parameters():
        if _WAN_TEXT_ONLY.match(name):
            counts["text"] += parameter.numel()
        elif name.split(".", 1)[0] in _WAN_VIDEO:
            counts["video"] += parameter.numel()
        else:
            raise ValueError(f"{name}: no rule says which tokens this parameter acts on")
    width, blocks = transformer.blocks[0].attn1.inner_dim, len(transformer.blocks)
    linear = 2 * (counts["video"] * video + counts["text"] * text)
    attention = 4 * (video * video + video * text) * width * blocks
    return ForwardFlops(linear, attention), counts | {"inner_dim": width, "blocks": blocks}


def block_matmul_rates(products: list[tuple[int, int, int, int]], dtype, device, warmup: int, repeats: int):
    """TFLOP/s of each (rows x inner) @ (inner x cols) product of a block, and of the block's mix (its
    products' FLOPs, ``count`` of each, over their summed time); ``matmul_rate.py``'s for another block."""
    rates, flops, seconds = {}, 0, 0.0
    for rows, inner, cols, count in products:
        spent = matmul_seconds(rows, inner, cols, dtype, device, warmup, repeats)
        rates[f"{rows}x{inner}@{inner}x{cols}"] = 2 * rows * inner * cols / spent / 1e12
        flops += count * 2 * rows * inner * cols
        seconds += count * spent
    return {
        "matmul_dtype": str(dtype).removeprefix("torch."),
        "matmul_tflops": rates,
        "matmul_block_tflops": flops / seconds / 1e12,
    }


def _wan_flops(transformer, height: int, width: int, dtype, device, warmup: int, repeats: int) -> dict:
    """FLOPs by :func:`wan_forward_flops`; the card's rate at a Wan block's products: q, k, v, out of the
    self-attention, q and out of the cross-attention and the feed-forward on the video tokens, the
    cross-attention's k and v on the text tokens."""
    p_t, p_h, p_w = transformer.config.patch_size
    frames, h, w = _wan_latent_grid(height, width)
    video = frames // p_t * (h // p_h) * (w // p_w)
    forward, counts = wan_forward_flops(transformer, video)
    inner, ffn = counts["inner_dim"], transformer.config.ffn_dim
    products = [(video, inner, inner, 6), (video, inner, ffn, 1), (video, ffn, inner, 1)]
    products.append((WAN_TEXT_TOKENS, inner, inner, 2))
    rates = block_matmul_rates(products, dtype, device, warmup, repeats)
    return {"video_tokens": video, "text_tokens": WAN_TEXT_TOKENS, "forward": forward} | rates


def _wan_text_encoder(smoke: bool):
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = wan_components.tiny_components(0, frozenset({TEXT}))["tokenizer"]
    # the smoke run: 1 of 24 layers, and the tokenizer's vocabulary (the real one is 1.05e9 parameters)
    smaller = {"num_layers": 1, "vocab_size": len(tokenizer)} if smoke else {}
    return "UMT5-XXL", UMT5EncoderModel, UMT5Config(**REAL_UMT5 | smaller), tokenizer


# ---- the table


@dataclasses.dataclass(frozen=True)
class Family:
    """What the checks and the benchmark need from a backbone family beyond ``ModelSpecification``."""

    # (profile, dtype, device, num_layers, vae_width) -> components: the architecture with random weights
    components: Callable[..., dict]
    specification: type[ModelSpecification]
    # (pipe, height, width) -> (latents (F', C, h, w), prompt embedding (tokens, width)) as encode writes them
    clip_shapes: Callable
    # (pipe, prompt embedding, height, width, generator) -> the transformer's prediction on a random input
    transformer_output: Callable
    stage_vae: Callable  # the VAE settings the stages load real weights with
    whole_vae: Callable  # and the VAE whole-frame
    lora_modules_per_block: int  # attention modules carrying to_q/to_k/to_v/to_out.0
    lora_parameters: int  # of the params.yaml LoRA (r128) on the full transformer
    # (transformer, height, width, dtype, device, warmup, repeats) -> tokens, ForwardFlops, the card's rate
    flops: Callable
    text_encoder: Callable  # smoke -> (label, model class, config, tokenizer): what encode_text holds
    scheduler: Callable  # () -> the folder's scheduler


def _diffusers(name: str):
    import diffusers

    return getattr(diffusers, name)


def _cogvideox_build(name, dtype, device="cpu", num_layers=None, vae_width=None) -> dict:
    return cogvideox_components.real_architecture_components(name, dtype, device, num_layers, vae_width)


def _wan_build(name, dtype, device="cpu", num_layers=None, vae_width=None) -> dict:
    return wan_components.real_architecture_components(dtype, device, num_layers, vae_width)


FAMILIES = {
    "cogvideox": Family(
        components=_cogvideox_build,
        specification=CogVideoXImageToVideo,
        clip_shapes=_cogvideox_shapes,
        transformer_output=_cogvideox_output,
        stage_vae=cogvideox_components.save_vae_memory,
        whole_vae=_cogvideox_vae_whole,
        lora_modules_per_block=4,  # attn1: joint attention over text and video
        lora_parameters=132_120_576,  # 42 blocks x 4 modules x r128 x (3072 + 3072)
        flops=_cogvideox_flops,
        text_encoder=_cogvideox_text_encoder,
        scheduler=lambda: _diffusers("CogVideoXDPMScheduler")(),
    ),
    "wan": Family(
        components=_wan_build,
        specification=WanImageToVideo,
        clip_shapes=_wan_shapes,
        transformer_output=_wan_output,
        stage_vae=lambda vae: vae.enable_tiling(),  # as wan.components.load_components
        whole_vae=lambda vae: vae.disable_tiling(),
        lora_modules_per_block=8,  # attn1 (self-attention) and attn2 (cross-attention to the text)
        lora_parameters=188_743_680,  # 30 blocks x 8 modules x r128 x (3072 + 3072)
        flops=_wan_flops,
        text_encoder=_wan_text_encoder,
        scheduler=lambda: _diffusers("UniPCMultistepScheduler")(**WAN_SCHEDULER),
    ),
}


def family_of(name: str) -> Family:
    return FAMILIES[profile_named(name).family.name]


def random_clip(pipe, family: Family, height: int, width: int, seed: int = 0) -> TrainData:
    """One clip as the encode stages write it: video latents, the first frame, a prompt embedding."""
    g = torch.Generator().manual_seed(seed)
    latents_shape, embeds_shape = family.clip_shapes(pipe, height, width)
    latents = torch.randn(*latents_shape, generator=g)
    first = torch.randint(0, 256, (3, height, width), generator=g, dtype=torch.uint8)
    embeds = torch.randn(*embeds_shape, generator=g)
    return TrainData(["clip"], {"clip": latents}, {"clip": first}, {"clip": embeds}, FRAMES)


def check_build(name: str) -> dict:
    family = family_of(name)
    start = time.perf_counter()
    transformer = family.components(name, torch.bfloat16)["transformer"]
    built = time.perf_counter() - start
    parameters = sum(p.numel() for p in transformer.parameters())
    cfg = lora_config()
    transformer.add_adapter(cfg.lora_config())
    lora = sum(p.numel() for p in transformer.parameters() if p.requires_grad)
    wrapped = sum(
        1 for n, m in transformer.named_modules() if hasattr(m, "lora_A") and n.endswith(cfg.targets)
    )
    expected = family.lora_parameters
    assert lora == expected, f"LoRA has {lora} parameters, expected {expected}"
    modules = family.lora_modules_per_block * transformer.config.num_layers
    assert wrapped == modules, f"{wrapped} modules carry the LoRA, expected {modules}"
    return {
        "check": "build",
        "profile": name,
        "parameters": parameters,
        "lora_parameters": lora,
        "lora_modules": wrapped,
        "build_s": round(built, 1),
        "total_s": round(time.perf_counter() - start, 1),
        "peak_rss_gb": round(peak_rss_gb(), 2),
    }


def _model(name: str, dtype: torch.dtype, **smaller) -> ModelSpecification:
    """A real profile's architecture with random weights (``smaller``: fewer blocks, a narrow VAE)."""
    family = family_of(name)
    return family.specification(None, family.components(name, dtype, **smaller))


def _transformer_output(
    family: Family, model: ModelSpecification, data: TrainData, height: int, width: int
) -> torch.Tensor:
    """The transformer's prediction on a fixed input at the clip's size (deterministic)."""
    with torch.no_grad():
        g = torch.Generator().manual_seed(7)
        return family.transformer_output(model.pipe, data.prompt_embeds["clip"], height, width, g)


def _lora_weights(transformer, adapter: str) -> dict[str, torch.Tensor]:
    """The LoRA ``adapter`` of ``transformer`` under peft's saved names (those of ``TrainResult.adapter``)."""
    from peft.utils import get_peft_model_state_dict

    return get_peft_model_state_dict(transformer, adapter_name=adapter)


def check_step(name: str, layers: int = 2) -> dict:
    profile = profile_named(name)
    family = family_of(name)
    height, width = profile.height, profile.width
    start = time.perf_counter()
    model = _model(name, torch.float32, num_layers=layers, vae_width=32)
    data = random_clip(model.pipe, family, height, width)
    # lr 1e-3 (not 2e-5) so that two steps move the zero-initialised LoRA B matrices measurably
    cfg = lora_config(steps=2, checkpoint_every=10**9, image_dropout=0.0, learning_rate=1e-3)
    with tempfile.TemporaryDirectory() as scratch:
        _, result = train_lora(model, data, cfg, Path(scratch) / "checkpoints", "real-architecture")
        weights = save_lora(model, result.adapter, cfg, Path(scratch) / "lora")
        trained = _transformer_output(family, model, data, height, width)
        fresh_model = _model(name, torch.float32, num_layers=layers, vae_width=32)
        base = _transformer_output(family, fresh_model, data, height, width)
        fresh_model.load_lora(weights.parent)
        reloaded = _transformer_output(family, fresh_model, data, height, width)
        size_mb = weights.stat().st_size / 2**20
    fresh = fresh_model.pipe
    scales = {m.scaling["restoration"] for m in fresh.transformer.modules() if hasattr(m, "scaling")}
    assert scales == {cfg.alpha / cfg.rank}, (
        f"LoRA scales {scales}, expected alpha/r = {cfg.alpha / cfg.rank}"
    )
    loaded = _lora_weights(fresh.transformer, "restoration")
    assert loaded.keys() == result.adapter.keys(), sorted(loaded.keys() ^ result.adapter.keys())[:4]
    weight_error = max(float((loaded[k].float() - v).abs().max()) for k, v in result.adapter.items())
    assert weight_error == 0.0, f"the loaded LoRA differs from the trained one by up to {weight_error}"
    lora_effect = float((trained - base).abs().max())
    reload_error = float((trained - reloaded).abs().max())
    # the LoRA changes the output well above float32 rounding (~1e-6 here), and the reload reproduces it
    assert lora_effect > 1e-5 and reload_error <= 1e-3 * lora_effect, (lora_effect, reload_error)
    return {
        "check": "step",
        "profile": name,
        "blocks": layers,
        "size": f"{FRAMES}x{height}x{width}",
        "dtype": "fp32",
        "seconds_per_step": [round(log.seconds, 2) for log in result.logs],
        "losses": [round(log.loss, 4) for log in result.logs],
        "positional_embedding": model.positional_embedding(FRAMES),
        "lora_tensors": len(loaded),
        "lora_file_mb": round(size_mb, 1),
        "lora_scale": scales.pop(),
        "reload_weights_max_error": weight_error,
        "lora_effect_max": lora_effect,
        "reload_max_error": reload_error,
        "total_s": round(time.perf_counter() - start, 1),
        "peak_rss_gb": round(peak_rss_gb(), 2),
    }


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _peak_gb() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def _reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _timed_sampling(model, image, embeds, sampling: Sampling) -> tuple[np.ndarray, float, float | None]:
    _reset_peak()
    began = time.perf_counter()
    frames = model.sample(image, embeds, torch.zeros_like(embeds), FRAMES, sampling)
    _sync()
    return frames, time.perf_counter() - began, _peak_gb()


# the gpu run's levers (README: Speed levers), each timed alone against plain, then all together
ATTENTION_TIMED = ("cudnn", "flash")  # the CUDA kernels timed against auto (the smoke run on CPU: math)
TIMED_STEPS = 3  # training steps timed after the first, which warms up (and compiles): their median
STAGE_STEPS = 50  # params.yaml's restore.steps: sampling is timed at a few steps and extrapolated to it
SAMPLING_LONG = 3  # sampling steps timed beside 1 step: the per-step time and the fixed part between them
SMOKE_PROFILES = {"cogvideox1.5-5b-i2v": "tiny", "cogvideox-5b-i2v": "tiny-1.0", "wan2.2-ti2v-5b": "wan-tiny"}


def training_levers(attention: tuple[str, ...]) -> dict[str, dict]:
    """TrainConfig changes by label: plain is params.yaml's train block (checkpointing every block, torch's
    attention kernel, eager); all is every lever at its fast setting."""
    levers = {"plain": {}, "checkpointing 0.5": {"gradient_checkpointing": 0.5}}
    levers["checkpointing off"] = {"gradient_checkpointing": False}
    levers |= {f"attention {kernel}": {"attention": kernel} for kernel in attention}
    levers["compile"] = {"compile": True}
    levers["all"] = {"attention": attention[0], "compile": True, "gradient_checkpointing": False}
    return levers


def sampling_levers(attention: tuple[str, ...]) -> dict[str, dict]:
    """Sampling changes by label: plain samples with the LoRA unfused, eager, torch's attention kernel."""
    levers = {"plain": {}} | {f"attention {kernel}": {"attention": kernel} for kernel in attention}
    levers |= {"fuse_lora": {"fuse_lora": True}, "compile": {"compile": True}}
    levers["all"] = {"attention": attention[0], "fuse_lora": True, "compile": True}
    return levers


def _eager(model: ModelSpecification) -> None:
    """Undo ``compile_blocks`` between timed variants (nn.Module.compile keeps its compiled call there), and
    forget the compiled graphs: dynamo does not guard on the attention kernel, so a graph traced under one
    kernel would otherwise serve the next variant's (a stage traces once, under its own kernel)."""
    for block in model.repeated_blocks:
        block._compiled_call_impl = None
    torch._dynamo.reset()


def _time_training(model, data: TrainData, cfg: TrainConfig, scratch: Path, label: str) -> tuple[dict, dict]:
    """``cfg.steps`` steps of the train stage's loop: median s/step after the first, the first step's
    excess over it (warm-up, compilation), peak GB; the LoRA's weights, then the model as it was."""
    _reset_peak()
    transformer, result = train_lora(model, data, cfg, scratch / label.replace(" ", "-"), label)
    seconds = [log.seconds for log in result.logs]
    steady = float(np.median(seconds[1:]))
    timed = {"s": steady, "first_excess_s": seconds[0] - steady}
    timed["peak_gb"] = max(log.peak_memory_mb for log in result.logs) / 1024
    transformer.delete_adapters(ADAPTER)
    _eager(model)
    return timed, result.adapter


def _time_sampling(
    model, image: np.ndarray, embeds: torch.Tensor, sampling: Sampling
) -> tuple[dict, np.ndarray]:
    """CFG sampling timed at 1 step twice (the first call warms up and compiles: its excess over the
    second is reported apart) and at ``SAMPLING_LONG`` steps: the per-step time and the fixed part (VAE,
    conditioning) between them, extrapolated to ``STAGE_STEPS``."""
    one = dataclasses.replace(sampling, steps=1)
    _, first, _ = _timed_sampling(model, image, embeds, one)
    _, short, _ = _timed_sampling(model, image, embeds, one)
    long_run = dataclasses.replace(sampling, steps=SAMPLING_LONG)
    frames, long, peak = _timed_sampling(model, image, embeds, long_run)
    per_step = (long - short) / (SAMPLING_LONG - 1)
    fixed = short - per_step
    timed = {"s": fixed + STAGE_STEPS * per_step, "per_step_s": per_step, "fixed_s": fixed}
    return timed | {"first_excess_s": first - short, "peak_gb": peak}, frames


def bench_profile(name: str, smoke: bool) -> dict:
    """One real architecture (the smoke run: its tiny profile, on CPU): the training step and CFG sampling,
    plain and with each lever alone, then all together (the train stage's loop, the restore stage's
    levers); LoRA save/load; sampling with the VAE whole-frame; LPIPS; FLOPs and the card's matmul rate."""
    from progrestore.evaluate.frame_scorer import FrameScorer
    from progrestore.infer.restore import use_sampling_levers
    from progrestore.model.families import load_specification
    from progrestore.model.hub_folder import device_and_dtype
    from progrestore.model.settings import ModelSettings

    family = family_of(name)
    device, dtype = device_and_dtype()
    start = time.perf_counter()
    if smoke:
        tiny = profile_named(SMOKE_PROFILES[name])
        embedding = tiny.family.positional_embeddings[0] if tiny.learned_pe else None
        model = load_specification(ModelSettings(tiny, None, 0, embedding, tiny.height, tiny.width))
        height, width = tiny.height, tiny.width
    else:
        model = family.specification(None, family.components(name, dtype, device))
        height, width = profile_named(name).height, profile_named(name).width
    family.stage_vae(model.pipe.vae)
    _sync()
    row = {"profile": name, "size": f"{FRAMES}x{height}x{width}", "build_s": time.perf_counter() - start}
    if smoke:
        row["smoke_profile"] = SMOKE_PROFILES[name]
    attention = ("math",) if smoke else ATTENTION_TIMED
    data = random_clip(model.pipe, family, height, width)
    cfg = lora_config(steps=TIMED_STEPS + 1, checkpoint_every=10**9, image_dropout=0.0)
    training, adapter = {}, None
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        for label, changes in training_levers(attention).items():
            training[label], trained = _time_training(
                model, data, dataclasses.replace(cfg, **changes), scratch, label
            )
            adapter = adapter or trained  # plain's
            print(json.dumps({"profile": name, "train": label, **training[label]}), flush=True)
        began = time.perf_counter()
        weights = save_lora(model, adapter, cfg, scratch / "lora")
        model.load_lora(weights.parent)
        _sync()
        row["lora_save_load_s"] = time.perf_counter() - began
    image = data.first_frames["clip"].permute(1, 2, 0).numpy()
    embeds = data.prompt_embeds["clip"]
    plain = Sampling(STAGE_STEPS, GUIDANCE, 0, model.samplers[0], dynamic_cfg=False)
    sampling = {}
    for label, changes in sampling_levers(attention).items():
        levers = dataclasses.replace(plain, **changes)
        use_sampling_levers(model, levers, lora_loaded=True)
        sampling[label], frames = _time_sampling(model, image, embeds, levers)
        if levers.fuse_lora:
            model.pipe.unfuse_lora(components=["transformer"])
        _eager(model)
        print(json.dumps({"profile": name, "sampling": label, **sampling[label]}), flush=True)
    family.whole_vae(model.pipe.vae)
    whole, _ = _time_sampling(model, image, embeds, plain)
    family.stage_vae(model.pipe.vae)
    row |= {
        "training": training,
        "sampling": sampling,
        "sampling_whole_vae": whole,
        "sampler": plain.scheduler,
    }
    row["positional_embedding"] = model.positional_embedding(FRAMES)
    warmup, repeats = (1, 1) if smoke else (3, 20)
    counted = family.flops(
        model.pipe.transformer, height, width, dtype, device, warmup, repeats
    )  # with the LoRA
    forward = counted.pop("forward")
    del model
    gc.collect()  # the trainer's accelerator holds the model in a reference cycle: free it before the next
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    scorer = FrameScorer()
    began = time.perf_counter()
    scores = scorer.score(frames, scorer.reference(image))
    _sync()
    lpips_device = str(scorer.measures["lpips"].network.device)
    row |= {"lpips_device": lpips_device, "lpips_9_frames_s": time.perf_counter() - began}
    assert len(scores["lpips"]) == FRAMES
    row |= counted
    args = (training["plain"]["s"], training["checkpointing off"]["s"], sampling["plain"]["s"], STAGE_STEPS)
    return row | utilisation(forward, *args, row["matmul_block_tflops"])


def bench_text_encoder(name: str, smoke: bool, prompts: int = 8) -> dict:
    """What ``encode_text`` holds, and ``progrestore restore`` before it frees it: the family's text
    encoder (T5-XXL, UMT5-XXL; random weights, bf16) alone on the device, loading time, seconds per prompt
    over ``prompts`` prompts, peak memory. The smoke run keeps 1 of its 24 layers."""
    from progrestore.model.hub_folder import device_and_dtype

    family = family_of(name)
    device, dtype = device_and_dtype()
    _reset_peak()
    start = time.perf_counter()
    label, encoder_class, config, tokenizer = family.text_encoder(smoke)
    default = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(0)
        torch.set_default_dtype(dtype)
        try:
            text_encoder = encoder_class(config)
        finally:
            torch.set_default_dtype(default)
    components = dict.fromkeys(("vae", "transformer")) | {"tokenizer": tokenizer}
    components |= {"text_encoder": text_encoder.eval().requires_grad_(False)}
    components["scheduler"] = family.scheduler()
    model = family.specification(None, components)
    _sync()
    row = {"family": profile_named(name).family.name, "component": label + (" (1 layer)" if smoke else "")}
    row |= {
        "build_s": time.perf_counter() - start,
        "parameters": sum(p.numel() for p in text_encoder.parameters()),
    }
    began = time.perf_counter()
    for i in range(prompts):
        model.encode_prompt(f"Scene {i}: the image becomes sharper and higher in resolution. Nothing moves.")
    _sync()
    row |= {"encode_s_per_prompt": (time.perf_counter() - began) / prompts, "peak_gb": _peak_gb()}
    del model, components, text_encoder
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return row


def _gb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _ratio(value: float | None, plain: float) -> str:
    return "-" if value is None else f"{value / plain:.2f}"


def _lever_rows(row: dict) -> list[str]:
    """The ratio table's rows of one profile: each lever's time relative to plain, steady state, with the
    first step's or call's excess (compilation) apart."""
    training, sampling = row["training"], row["sampling"]
    lines = []
    for label in dict.fromkeys([*training, *sampling]):
        t, s = training.get(label), sampling.get(label)
        cells = [row["profile"], label]
        if t is None:
            cells += ["-"] * 4
        else:
            cells += [f"{t['s']:.2f}", _ratio(t["s"], training["plain"]["s"]), f"{t['first_excess_s']:.1f}"]
            cells.append(f"{t['peak_gb']:.1f}")
        if s is None:
            cells += ["-"] * 4
        else:
            cells += [f"{s['s']:.1f}", _ratio(s["s"], sampling["plain"]["s"]), f"{s['first_excess_s']:.1f}"]
            cells.append(_gb(s["peak_gb"]))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def run_gpu(smoke: bool, profiles: tuple[str, ...] = GPU_PROFILES) -> list[dict]:
    if not smoke and not torch.cuda.is_available():
        raise SystemExit("gpu: no CUDA device here (use --smoke to run the same code on CPU at a tiny scale)")
    card = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (smoke)"
    out = os.environ.get("OUT")
    first_of_family = {}
    for name in profiles:
        first_of_family.setdefault(profile_named(name).family.name, name)
    texts = []
    for name in first_of_family.values():  # each family's text encoder, before the transformers
        texts.append(bench_text_encoder(name, smoke))
        print(json.dumps(texts[-1]), flush=True)
    rows = []
    for name in profiles:
        rows.append({"card": card, **bench_profile(name, smoke)})
        print(json.dumps(rows[-1]), flush=True)
        if out:  # after each profile: a run stopped by its time limit keeps what it measured
            Path(out, "bench-gpu.json").write_text(
                json.dumps({"text_encoders": texts, "profiles": rows}, indent=1)
            )
    scale = "tiny profiles, fp32" if smoke else "random weights, bf16"
    print(f"\ncard: {card}; {scale}, LoRA r128 (alpha 64), batch 1")
    print(
        f"training: median of {TIMED_STEPS} steps after the first; sampling: {STAGE_STEPS}-step CFG "
        f"extrapolated from 1 and {SAMPLING_LONG} timed steps (VAE as the stages)"
    )
    print(
        "\n| profile | lever | train s/step | ratio | first step's excess s (compile) | train peak GB "
        f"| sampling {STAGE_STEPS} steps s | ratio | first call's excess s (compile) | sampling peak GB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("\n".join(_lever_rows(r)))
    print(
        "\n| profile | size | LoRA save+load (s) | sampling, VAE whole-frame s (peak GB) | LPIPS 9 frames (s) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        whole = r["sampling_whole_vae"]
        print(
            f"| {r['profile']} | {r['size']} | {r['lora_save_load_s']:.1f} | {whole['s']:.1f} "
            f"({_gb(whole['peak_gb'])}) | {r['lpips_9_frames_s']:.2f} |"
        )
    print(
        "\n| profile | tokens (video + text) | forward TFLOP | card's matmul TFLOP/s (block mix) "
        "| plain step TFLOP/s (checkpointing on, off) | utilisation (on, off) | plain sampling TFLOP/s "
        "| utilisation |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['profile']} | {r['video_tokens']} + {r['text_tokens']} | {r['forward_tflop']:.1f} "
            f"| {r['matmul_block_tflops']:.0f} | {r['step_tflops']:.0f}, {r['step_no_checkpointing_tflops']:.0f} "
            f"| {r['step_utilisation']:.2f}, {r['step_no_checkpointing_utilisation']:.2f} "
            f"| {r['sampling_tflops']:.0f} | {r['sampling_utilisation']:.2f} |"
        )
    by_profile = {r["profile"]: r for r in rows}
    if {"cogvideox1.5-5b-i2v", "wan2.2-ti2v-5b"} <= by_profile.keys():
        cog, wan = by_profile["cogvideox1.5-5b-i2v"], by_profile["wan2.2-ti2v-5b"]
        print(
            "\nwan2.2-ti2v-5b / cogvideox1.5-5b-i2v, same card and run, plain: s/step "
            f"{wan['training']['plain']['s'] / cog['training']['plain']['s']:.2f}; "
            f"sampling {wan['sampling']['plain']['s'] / cog['sampling']['plain']['s']:.2f}"
        )
    for text in texts:
        print(
            f"\nencode_text alone ({text['family']}: {text['component']}, {text['parameters']:,} parameters): "
            f"peak {_gb(text['peak_gb'])} GB, {text['encode_s_per_prompt']:.3f} s per prompt"
        )
    print("train and restore hold no text encoder (their rows above)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=("build", "step", "gpu"))
    parser.add_argument("profile", nargs="?", choices=REAL_PROFILES, default="cogvideox1.5-5b-i2v")
    parser.add_argument(
        "--smoke", action="store_true", help="gpu: the same code on CPU with the tiny profiles"
    )
    parser.add_argument(
        "--profiles", nargs="+", choices=REAL_PROFILES, default=GPU_PROFILES, help="gpu: these, in this order"
    )
    args = parser.parse_args()
    if args.check == "gpu":
        run_gpu(args.smoke, tuple(args.profiles))
    else:
        print(json.dumps((check_build if args.check == "build" else check_step)(args.profile)))


if __name__ == "__main__":
    main()
