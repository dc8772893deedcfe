"""LoRA training step and inference of the CogVideoX I2V architecture: time and peak memory.

    python benchmarks/training_step.py --architecture tiny                  # CPU, the tiny random model
    python benchmarks/training_step.py --architecture cogvideox1.5-5b-i2v   # GPU: the real 1.5-5B-I2V
                                                                            # architecture, random weights

Training (batch 1, 9 frames, LoRA on to_q/to_k/to_v/to_out.0, gradient checkpointing, bf16 on GPU) is
timed two ways in the same run: with precomputed video latents (the ``encode`` stage's way, as
``progrestore.train.loop`` trains) and straightforwardly, with the 9-frame clip VAE-encoded inside every
step. Inference: the I2V pipeline, CFG, ``--inference-steps`` steps. No weights are downloaded: the
real architecture is built from its published config with random weights (timing does not depend on
weight values). The T5 encoder is replaced by random prompt embeddings of the right shape.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch

from progrestore.config import load_params
from progrestore.model.cogvideox.components import (
    device_and_dtype,
    real_architecture_components,
    tiny_components,
)
from progrestore.model.cogvideox.conditioning import encode_video
from progrestore.model.cogvideox.specification import CogVideoXImageToVideo
from progrestore.model.profiles import profile_named
from progrestore.train.config import TrainConfig
from progrestore.train.loop import loss_for_step
from progrestore.train.records import TrainData


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", default="tiny", choices=("tiny", "cogvideox1.5-5b-i2v"))
    parser.add_argument("--steps", type=int, default=5, help="timed training steps (after one warm-up)")
    parser.add_argument("--inference-steps", type=int, default=50)
    parser.add_argument("--rank", type=int, default=128)
    args = parser.parse_args()
    device, dtype = device_and_dtype()
    profile = profile_named("tiny" if args.architecture == "tiny" else "cogvideox1.5-5b-i2v")
    if profile.name != "tiny" and device.type != "cuda":
        raise SystemExit("the 1.5-5B architecture needs a GPU (about 35 GB in bf16 with LoRA r128)")
    if profile.tiny:
        components = tiny_components("1.5", 0)
    else:
        components = real_architecture_components(profile.name, dtype, device)
        components["vae"].enable_slicing()
        components["vae"].enable_tiling()
    for name in ("vae", "transformer"):
        components[name] = components[name].to(device=device, dtype=dtype).requires_grad_(False)
    model = CogVideoXImageToVideo(None, components)
    pipe = model.pipe
    height, width, frames = profile.height, profile.width, 9
    text_dim = pipe.transformer.config.text_embed_dim
    embeds = torch.randn(226, text_dim, generator=torch.Generator().manual_seed(0))
    video = torch.rand(1, 3, frames, height, width, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        latents = encode_video(pipe.vae, video.to(device, dtype))[0].float().cpu()
    first = ((video[0, :, 0] + 1) * 127.5).round().byte()
    data = TrainData(["clip"], {"clip": latents}, {"clip": first}, {"clip": embeds}, frames)
    cfg = dataclasses.replace(  # params.yaml's train block, timed without warmup, dropout or checkpoints
        TrainConfig.from_section(load_params().section("train")),
        steps=args.steps,
        rank=args.rank,
        alpha=args.rank // 2,
        warmup_steps=0,
        image_dropout=0.0,
        checkpoint_every=10**9,
    )
    transformer = pipe.transformer
    transformer.add_adapter(cfg.lora_config())
    transformer.enable_gradient_checkpointing()
    transformer.train()
    trainable = [p for p in transformer.parameters() if p.requires_grad]
    for p in trainable:
        p.data = p.data.float()
    optimizer = torch.optim.AdamW(
        trainable, lr=cfg.learning_rate, betas=cfg.betas, weight_decay=cfg.weight_decay
    )

    def step(index: int, encode_inside: bool) -> None:
        if encode_inside:  # the straightforward loop: the clip goes through the VAE every step
            with torch.no_grad():
                data.latents["clip"] = encode_video(pipe.vae, video.to(device, dtype))[0].float()
        loss = loss_for_step(model, transformer, data, cfg, index, 0, 1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    rows = {}
    for name, inside in (("precomputed latents", False), ("VAE inside the step", True)):
        step(0, inside)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        times = []
        for i in range(1, args.steps + 1):
            start = time.perf_counter()
            step(i, inside)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        rows[name] = (float(np.median(times)), peak_mb(device))

    transformer.eval()
    image = first.permute(1, 2, 0).numpy()
    from PIL import Image

    start = time.perf_counter()
    with torch.no_grad():
        pipe(
            image=Image.fromarray(image),
            prompt_embeds=embeds[None].to(device, dtype),
            negative_prompt_embeds=torch.zeros_like(embeds)[None].to(device, dtype),
            height=height,
            width=width,
            num_frames=frames,
            num_inference_steps=args.inference_steps,
            guidance_scale=6.0,
            output_type="np",
        )
    if device.type == "cuda":
        torch.cuda.synchronize()
    inference = time.perf_counter() - start

    card = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(
        f"device: {card}, architecture: {profile.name} (random weights), {frames}x{height}x{width}, LoRA r{args.rank}, "
        f"batch 1, gradient checkpointing, {dtype}"
    )
    print("| training step | median s/step | peak memory (MB) |")
    print("|---|---|---|")
    for name, (seconds, memory) in rows.items():
        print(f"| {name} | {seconds:.3f} | {memory:.0f} |")
    print(f"inference, {args.inference_steps} steps with CFG: {inference:.2f} s")
    print(json.dumps({"device": card, "train": rows, "inference_s": inference}))


if __name__ == "__main__":
    main()
