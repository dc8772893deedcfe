"""The real CogVideoX I2V architectures with random weights: checks on CPU, the benchmark on a GPU.

No weights are downloaded: each real profile is built from its published config
(``progrestore.model.profiles.REAL_TRANSFORMERS``), the LoRA from the ``train`` block of params.yaml (rank
128, alpha 64, to_q/to_k/to_v/to_out.0), and everything runs through the code the stages run
(``train_lora``, ``save_lora``, the specification's ``load_lora`` and ``sample``, ``FrameScorer``).

    python benchmarks/real_architecture.py build PROFILE   # CPU: the full transformer in bf16 + LoRA:
                                                           #   parameter counts, build time, peak RSS
    python benchmarks/real_architecture.py step PROFILE    # CPU: 2 blocks at the real widths in fp32, at
                                                           #   the profile's size: two training steps of the
                                                           #   train stage's loop, LoRA saved and loaded into
                                                           #   a fresh pipeline (same outputs, scale alpha/r)
    python benchmarks/real_architecture.py gpu [--smoke]   # GPU (make bench-gpu): the full models in bf16,
                                                           #   1.5 at 9x768x1360 then 5B at 9x480x720
                                                           #   and the card's matmul rate at their shapes
                                                           #   (matmul_rate.py): the model's utilisation

Each prints one JSON line (and ``gpu`` a table); ``make check-real-cpu`` runs build and step for both
profiles, each in its own process so that peak RSS is its own. A full 42-block training step on these
2-core CPUs takes more than 13 minutes in bf16, hence the 2-block step check.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from matmul_rate import matmul_rates, utilisation  # benchmarks/, the script's folder

from progrestore.config import load_params
from progrestore.model.cogvideox.components import real_architecture_components
from progrestore.model.cogvideox.conditioning import (
    latent_frames,
    model_extras,
    padding_frames,
    rotary_embedding,
)
from progrestore.model.cogvideox.configs import REAL_T5, REAL_TRANSFORMERS, TEXT_TOKENS
from progrestore.model.cogvideox.flops import forward_flops, token_parameters, video_tokens
from progrestore.model.cogvideox.specification import CogVideoXImageToVideo
from progrestore.model.profiles import profile_named
from progrestore.model.specification import TEXT, Sampling
from progrestore.train.loop import ADAPTER, TrainConfig, TrainData, save_lora, train_lora

FRAMES = 9
LORA_PARAMETERS = 132_120_576  # rank 128 on to_q, to_k, to_v, to_out.0 of 42 blocks, inner width 3072


def lora_config(**changes) -> TrainConfig:
    """The ``train`` block of params.yaml (the official trainer's values), with ``changes``."""
    cfg = TrainConfig.from_section(load_params(Path(__file__).parents[1] / "params.yaml").section("train"))
    return dataclasses.replace(cfg, **changes)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def random_clip(pipe, height: int, width: int, seed: int = 0) -> TrainData:
    """One clip as the encode stages write it: video latents, the first frame, a prompt embedding."""
    g = torch.Generator().manual_seed(seed)
    channels = pipe.vae.config.latent_channels
    latents = torch.randn(latent_frames(FRAMES), channels, height // 8, width // 8, generator=g)
    first = torch.randint(0, 256, (3, height, width), generator=g, dtype=torch.uint8)
    embeds = torch.randn(TEXT_TOKENS, pipe.transformer.config.text_embed_dim, generator=g)
    return TrainData(["clip"], {"clip": latents}, {"clip": first}, {"clip": embeds}, FRAMES)


def check_build(name: str) -> dict:
    start = time.perf_counter()
    transformer = real_architecture_components(name, torch.bfloat16)["transformer"]
    built = time.perf_counter() - start
    parameters = sum(p.numel() for p in transformer.parameters())
    cfg = lora_config()
    transformer.add_adapter(cfg.lora_config())
    lora = sum(p.numel() for p in transformer.parameters() if p.requires_grad)
    wrapped = sum(
        1 for n, m in transformer.named_modules() if hasattr(m, "lora_A") and n.endswith(cfg.targets)
    )
    assert lora == LORA_PARAMETERS, f"LoRA has {lora} parameters, expected {LORA_PARAMETERS}"
    assert wrapped == 4 * REAL_TRANSFORMERS[name]["num_layers"], f"{wrapped} modules carry the LoRA"
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


def _model(name: str, dtype: torch.dtype, **smaller) -> CogVideoXImageToVideo:
    """A real profile's architecture with random weights (``smaller``: fewer blocks, a narrow VAE)."""
    return CogVideoXImageToVideo(None, real_architecture_components(name, dtype, **smaller))


def _transformer_output(pipe, data: TrainData, height: int, width: int) -> torch.Tensor:
    """The transformer's prediction on a fixed input at the clip's size (deterministic)."""
    g = torch.Generator().manual_seed(7)
    config = pipe.transformer.config
    count = latent_frames(FRAMES) + padding_frames(latent_frames(FRAMES), config.patch_size_t)
    hidden = torch.randn(1, count, config.in_channels, height // 8, width // 8, generator=g)
    rotary = rotary_embedding(config, pipe.vae.config, height, width, count, torch.device("cpu"))
    with torch.no_grad():
        return pipe.transformer(
            hidden_states=hidden,
            encoder_hidden_states=data.prompt_embeds["clip"][None],
            timestep=torch.tensor([500]),
            image_rotary_emb=rotary,
            ofs=model_extras(pipe.transformer, hidden),
            return_dict=False,
        )[0]


def check_step(name: str, layers: int = 2) -> dict:
    profile = profile_named(name)
    height, width = profile.height, profile.width
    start = time.perf_counter()
    model = _model(name, torch.float32, num_layers=layers, vae_width=32)
    pipe = model.pipe
    data = random_clip(pipe, height, width)
    # lr 1e-3 (not 2e-5) so that two steps move the zero-initialised LoRA B matrices measurably
    cfg = lora_config(steps=2, checkpoint_every=10**9, image_dropout=0.0, learning_rate=1e-3)
    with tempfile.TemporaryDirectory() as scratch:
        _, result = train_lora(model, data, cfg, Path(scratch) / "checkpoints", "real-architecture")
        weights = save_lora(model, result.adapter, cfg, Path(scratch) / "lora")
        trained = _transformer_output(pipe, data, height, width)
        fresh_model = _model(name, torch.float32, num_layers=layers, vae_width=32)
        fresh = fresh_model.pipe
        base = _transformer_output(fresh, data, height, width)
        fresh_model.load_lora(weights.parent)
        reloaded = _transformer_output(fresh, data, height, width)
        size_mb = weights.stat().st_size / 2**20
    scales = {m.scaling["restoration"] for m in fresh.transformer.modules() if hasattr(m, "scaling")}
    assert scales == {cfg.alpha / cfg.rank}, (
        f"LoRA scales {scales}, expected alpha/r = {cfg.alpha / cfg.rank}"
    )
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
        "lora_file_mb": round(size_mb, 1),
        "lora_scale": scales.pop(),
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


def _timed_training(model, data: TrainData, cfg: TrainConfig, scratch: Path, label: str):
    """Train ``cfg.steps`` steps; (median s/step after the first, which warms up, peak GB, result)."""
    _reset_peak()
    transformer, result = train_lora(model, data, cfg, scratch / label, label)
    timed = [log.seconds for log in result.logs[1:]]
    return float(np.median(timed)), max(log.peak_memory_mb for log in result.logs) / 1024, transformer, result


def _timed_sampling(model, image, embeds, sampling: Sampling) -> tuple[np.ndarray, float, float | None]:
    _reset_peak()
    began = time.perf_counter()
    frames = model.sample(image, embeds, torch.zeros_like(embeds), FRAMES, sampling)
    _sync()
    return frames, time.perf_counter() - began, _peak_gb()


def bench_profile(name: str, height: int, width: int, smoke: bool, steps: int, sampling_steps: int) -> dict:
    """Training steps (with and without gradient checkpointing), LoRA save/load, CFG sampling (with the
    VAE sliced and tiled, as the stages load real weights; then whole-frame) and LPIPS of one real
    architecture."""
    from progrestore.evaluate.metrics import FrameScorer
    from progrestore.model.cogvideox.components import device_and_dtype, save_vae_memory

    device, dtype = device_and_dtype()
    start = time.perf_counter()
    layers, vae_width = (1, 32) if smoke else (None, None)
    components = real_architecture_components(name, dtype, device, num_layers=layers, vae_width=vae_width)
    save_vae_memory(components["vae"])
    model = CogVideoXImageToVideo(None, components)
    pipe = model.pipe
    _sync()
    row = {"profile": name, "size": f"{FRAMES}x{height}x{width}", "build_s": time.perf_counter() - start}
    data = random_clip(pipe, height, width)
    cfg = lora_config(steps=steps + 1, checkpoint_every=10**9, image_dropout=0.0)
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        row["step_s"], row["train_peak_gb"], transformer, _ = _timed_training(
            model, data, cfg, scratch, "ckpt"
        )
        transformer.delete_adapters(ADAPTER)
        transformer.disable_gradient_checkpointing()
        plain = dataclasses.replace(cfg, gradient_checkpointing=False)
        timed = _timed_training(model, data, plain, scratch, "plain")
        row["step_no_checkpointing_s"], row["train_no_checkpointing_peak_gb"], transformer, result = timed
        began = time.perf_counter()
        weights = save_lora(model, result.adapter, cfg, scratch / "lora")
        transformer.delete_adapters(ADAPTER)
        model.load_lora(weights.parent)
        _sync()
        row["lora_save_load_s"] = time.perf_counter() - began
    counts = token_parameters(pipe.transformer)  # with the LoRA, which both timed loops ran
    row["video_tokens"] = video_tokens(pipe.transformer.config, FRAMES, height, width)
    forward = forward_flops(counts, row["video_tokens"])
    image = data.first_frames["clip"].permute(1, 2, 0).numpy()
    embeds = data.prompt_embeds["clip"]
    sampling = Sampling(sampling_steps, 6.0, 0, "dpm", dynamic_cfg=False)
    frames, row["sampling_s"], row["sampling_peak_gb"] = _timed_sampling(model, image, embeds, sampling)
    pipe.vae.disable_tiling()
    pipe.vae.disable_slicing()
    _, row["sampling_whole_s"], row["sampling_whole_peak_gb"] = _timed_sampling(
        model, image, embeds, sampling
    )
    row["sampling_steps"] = sampling_steps
    row["positional_embedding"] = model.positional_embedding(FRAMES)
    del model, pipe, components, transformer
    gc.collect()  # the trainer's accelerator holds the model in a reference cycle: free it before the next
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    scorer = FrameScorer()
    began = time.perf_counter()
    scores = scorer.score(frames, scorer.reference(image))
    _sync()
    row |= {"lpips_device": str(scorer.perceptual.device), "lpips_9_frames_s": time.perf_counter() - began}
    assert len(scores["lpips"]) == FRAMES
    warmup, repeats = (1, 1) if smoke else (3, 20)
    row |= matmul_rates(row["video_tokens"] + TEXT_TOKENS, counts.inner_dim, dtype, device, warmup, repeats)
    args = (row["step_s"], row["step_no_checkpointing_s"], row["sampling_s"], sampling_steps)
    return row | utilisation(forward, *args, row["matmul_block_tflops"])


def bench_text_encoder(smoke: bool, prompts: int = 8) -> dict:
    """What ``encode_text`` holds, and ``progrestore restore`` before it frees it: T5-XXL (random weights,
    bf16) alone on the device, loading time, seconds per prompt over ``prompts`` prompts, peak memory.
    The smoke run keeps 1 of its 24 layers."""
    from diffusers import CogVideoXDPMScheduler
    from transformers import T5Config, T5EncoderModel

    from progrestore.model.cogvideox.components import device_and_dtype, tiny_components

    device, dtype = device_and_dtype()
    _reset_peak()
    start = time.perf_counter()
    default = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(0)
        torch.set_default_dtype(dtype)
        try:
            text_encoder = T5EncoderModel(T5Config(**REAL_T5 | ({"num_layers": 1} if smoke else {})))
        finally:
            torch.set_default_dtype(default)
    components = dict.fromkeys(("vae", "transformer"))
    tokenizer = tiny_components("1.5", 0, frozenset({TEXT}))["tokenizer"]
    components |= {"tokenizer": tokenizer, "scheduler": CogVideoXDPMScheduler()}
    model = CogVideoXImageToVideo(
        None, components | {"text_encoder": text_encoder.eval().requires_grad_(False)}
    )
    _sync()
    row = {"component": "T5-XXL" + (" (1 layer)" if smoke else ""), "build_s": time.perf_counter() - start}
    row["parameters"] = sum(p.numel() for p in text_encoder.parameters())
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


def run_gpu(smoke: bool) -> list[dict]:
    if not smoke and not torch.cuda.is_available():
        raise SystemExit("gpu: no CUDA device here (use --smoke to run the same code on CPU at a tiny scale)")
    card = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (smoke)"
    steps, sampling = (1, 2) if smoke else (5, 50)
    text = bench_text_encoder(smoke)
    print(json.dumps(text), flush=True)
    rows = []
    for name in ("cogvideox1.5-5b-i2v", "cogvideox-5b-i2v"):
        profile = profile_named(name)
        # the smoke run shrinks 1.5 (any multiple of 16 fits it); 5B's learned PE fixes its size
        height, width = (96, 160) if smoke and not profile.learned_pe else (profile.height, profile.width)
        rows.append({"card": card, **bench_profile(name, height, width, smoke, steps, sampling)})
        print(json.dumps(rows[-1]), flush=True)
    dtype = "fp32, 1 block" if smoke else "bf16"
    print(f"\ncard: {card}; random weights, {dtype}, LoRA r128 (alpha 64), batch 1")
    print(
        "| profile | size | s/step (checkpointing on, off) | train peak GB (on, off) "
        f"| {sampling}-step CFG sampling s (VAE tiled, whole) | sampling peak GB (tiled, whole) "
        "| LoRA save+load (s) | LPIPS 9 frames (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['profile']} | {r['size']} | {r['step_s']:.2f}, {r['step_no_checkpointing_s']:.2f} "
            f"| {r['train_peak_gb']:.1f}, {r['train_no_checkpointing_peak_gb']:.1f} "
            f"| {r['sampling_s']:.1f}, {r['sampling_whole_s']:.1f} "
            f"| {_gb(r['sampling_peak_gb'])}, {_gb(r['sampling_whole_peak_gb'])} "
            f"| {r['lora_save_load_s']:.1f} | {r['lpips_9_frames_s']:.2f} |"
        )
    print(
        "\n| profile | tokens | forward TFLOP | matmul TFLOP/s (block mix) | step TFLOP/s (checkpointing on, off) "
        "| utilisation (on, off) | sampling TFLOP/s | utilisation |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['profile']} | {r['video_tokens'] + TEXT_TOKENS} | {r['forward_tflop']:.1f} "
            f"| {r['matmul_block_tflops']:.0f} | {r['step_tflops']:.0f}, {r['step_no_checkpointing_tflops']:.0f} "
            f"| {r['step_utilisation']:.2f}, {r['step_no_checkpointing_utilisation']:.2f} "
            f"| {r['sampling_tflops']:.0f} | {r['sampling_utilisation']:.2f} |"
        )
    print(
        f"\nencode_text alone ({text['component']}, {text['parameters']:,} parameters): "
        f"peak {_gb(text['peak_gb'])} GB, {text['encode_s_per_prompt']:.3f} s per prompt; train and restore "
        "hold no text encoder (their rows above)"
    )
    out = os.environ.get("OUT")
    if out:
        Path(out, "bench-gpu.json").write_text(json.dumps({"text_encoder": text, "profiles": rows}, indent=1))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=("build", "step", "gpu"))
    parser.add_argument("profile", nargs="?", choices=tuple(REAL_TRANSFORMERS), default="cogvideox1.5-5b-i2v")
    parser.add_argument("--smoke", action="store_true", help="gpu: the same code on CPU, 1 block, 2 steps")
    args = parser.parse_args()
    if args.check == "gpu":
        run_gpu(args.smoke)
    else:
        print(json.dumps((check_build if args.check == "build" else check_step)(args.profile)))


if __name__ == "__main__":
    main()
