"""LoRA fine-tuning of the CogVideoX I2V transformer with peft, run through accelerate.

Every random draw of step s (clip order, timestep, noise, pixel noise of the conditioning image, image
dropout) comes from a generator seeded by (seed, s, process rank), so a run killed after a checkpoint and
resumed takes exactly the steps it would have taken: resume restores the LoRA weights, optimizer and
learning-rate state (``accelerator.save_state``, LoRA weights only) and the per-step log so far, so that the run's record
describes every step, as an uninterrupted run's does. Loss: the v-prediction written as x0 with weight
1/(1 - alpha_bar_t), as the official trainer and diffusers' example do (equal to MSE on v).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from diffusers.utils.torch_utils import randn_tensor

from progrestore.config import Section
from progrestore.io.atomic import write_json
from progrestore.io.tensors import canonicalise
from progrestore.model.conditioning import image_latents, model_extras, pad_video_latents

CHECKPOINT_PREFIX = "checkpoint-"


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    rank: int
    alpha: int
    targets: tuple[str, ...]
    learning_rate: float
    betas: tuple[float, float]
    weight_decay: float
    warmup_steps: int
    max_grad_norm: float
    gradient_checkpointing: bool
    image_dropout: float
    checkpoint_every: int
    keep_checkpoints: int
    seed: int

    @classmethod
    def from_section(cls, train: Section, tiny: bool = False) -> TrainConfig:
        """``train.*`` (the official trainer's defaults), with ``train.tiny.*`` on top for tiny profiles."""
        if tiny:
            train = train.merged("tiny")
        targets = train.names("target_modules")
        betas = train.interval("betas", 0.0, 0.99999)
        return cls(
            steps=train.integer("steps", 1),
            rank=train.integer("rank", 1, 1024),
            alpha=train.integer("alpha", 1, 4096),
            targets=targets,
            learning_rate=train.number("learning_rate", 0.0, 1.0),
            betas=betas,
            weight_decay=train.number("weight_decay", 0.0, 1.0),
            warmup_steps=train.integer("warmup_steps", 0),
            max_grad_norm=train.number("max_grad_norm", 0.0),
            gradient_checkpointing=train.boolean("gradient_checkpointing"),
            image_dropout=train.number("image_dropout", 0.0, 1.0),
            checkpoint_every=train.integer("checkpoint_every", 1),
            keep_checkpoints=train.integer("keep_checkpoints", 1),
            seed=train.integer("seed", 0),
        )

    def lora_config(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.rank, lora_alpha=self.alpha, target_modules=list(self.targets), init_lora_weights=True
        )


@dataclass
class TrainData:
    """Encoded clips: video latents (F, C, h, w), first frames (3, H, W) uint8, prompt embeddings."""

    clip_ids: list[str]
    latents: dict[str, torch.Tensor]
    first_frames: dict[str, torch.Tensor]
    prompt_embeds: dict[str, torch.Tensor]  # by clip id
    num_frames: int


@dataclass
class StepLog:
    step: int
    loss: float
    lr: float
    seconds: float
    peak_memory_mb: float


@dataclass
class TrainResult:
    logs: list[StepLog] = field(default_factory=list)
    resumed_from: int = 0


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step * 1009 + rank)


def clip_for_step(data: TrainData, seed: int, step: int, rank: int, world: int) -> str:
    """Each epoch visits every clip once in a seeded order; processes take interleaved positions."""
    position = step * world + rank
    epoch, index = divmod(position, len(data.clip_ids))
    order = torch.randperm(len(data.clip_ids), generator=torch.Generator().manual_seed(seed + epoch)).tolist()
    return data.clip_ids[order[index]]


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def loss_for_step(
    pipe, transformer, data: TrainData, cfg: TrainConfig, step: int, rank: int, world: int
) -> torch.Tensor:
    device, dtype = pipe.vae.device, pipe.vae.dtype
    clip_id = clip_for_step(data, cfg.seed, step, rank, world)
    generator = step_generator(cfg.seed, step, rank)
    p_t = (
        pipe.transformer.config.patch_size_t
    )  # ``transformer`` may be wrapped (DDP); the config is the pipeline's
    latents = pad_video_latents(data.latents[clip_id][None].to(device, dtype), p_t)
    image = (data.first_frames[clip_id][None].to(device, dtype) / 127.5) - 1.0
    sigma = torch.exp(torch.normal(-3.0, 0.5, (1,), generator=generator)).to(device, dtype)
    with torch.no_grad():
        conditioning = image_latents(pipe.vae, image, data.num_frames, p_t, generator, noise_sigma=sigma)
    if torch.rand((), generator=generator).item() < cfg.image_dropout:
        conditioning = torch.zeros_like(conditioning)
    timestep = torch.randint(0, pipe.scheduler.config.num_train_timesteps, (1,), generator=generator).to(
        device
    )
    noise = randn_tensor(latents.shape, generator=generator, device=device, dtype=torch.float32).to(dtype)
    noisy = pipe.scheduler.add_noise(latents, noise, timestep)
    height, width = image.shape[-2:]
    rotary = pipe._prepare_rotary_positional_embeddings(height, width, latents.shape[1], device)
    prediction = transformer(
        hidden_states=torch.cat([noisy, conditioning], dim=2),
        encoder_hidden_states=data.prompt_embeds[clip_id][None].to(device, dtype),
        timestep=timestep,
        ofs=model_extras(pipe.transformer, latents),
        image_rotary_emb=rotary,
        return_dict=False,
    )[0]
    predicted_x0 = pipe.scheduler.get_velocity(prediction, noisy, timestep)
    alphas = pipe.scheduler.alphas_cumprod.to(device)[timestep]
    weights = (1.0 / (1.0 - alphas)).view(-1, 1, 1, 1, 1)
    return torch.mean(weights * (predicted_x0.float() - latents.float()) ** 2)


def _latest_checkpoint(folder: Path, fingerprint: str) -> tuple[Path, dict] | None:
    """(folder, metadata) of the newest checkpoint of this fingerprint that logs every step before it."""
    candidates = []
    for path in Path(folder).glob(f"{CHECKPOINT_PREFIX}*"):
        meta_file = path / "progrestore.json"
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        if meta.get("fingerprint") == fingerprint and len(meta.get("history", ())) == meta["step"]:
            candidates.append((meta["step"], path, meta))
    return max(candidates, key=lambda c: c[0])[1:] if candidates else None


def lora_only_checkpoints(accelerator) -> None:
    """Make ``save_state`` keep the LoRA weights only, not the frozen base model (11 GB for the 5B models
    in bf16), as the official trainer's hooks do; ``load_state`` sets them back into the adapter."""
    from accelerate.utils import SAFE_MODEL_NAME
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file

    def save(models, weights, output_dir) -> None:
        for i, model in enumerate(models):
            weights[i] = get_peft_model_state_dict(accelerator.unwrap_model(model))

    def load(models, input_dir) -> None:
        while models:  # popped: accelerate then loads none of them itself
            index = len(models) - 1
            model = models.pop()
            name = f"{SAFE_MODEL_NAME}{f'_{index}' if index else ''}.safetensors"  # as accelerate names it
            state = load_file(str(Path(input_dir) / name))
            set_peft_model_state_dict(accelerator.unwrap_model(model), state)

    accelerator.register_save_state_pre_hook(save)
    accelerator.register_load_state_pre_hook(load)


def train_lora(
    pipe,
    data: TrainData,
    cfg: TrainConfig,
    checkpoints: Path,
    fingerprint: str,
    stop_after: int | None = None,
    on_step=None,
) -> tuple[object, TrainResult]:
    """Train; returns the (unwrapped) transformer with its LoRA adapter and the per-step logs.

    ``stop_after`` ends the run early (after checkpointing), as a kill would: used to test resume.
    """
    from accelerate import Accelerator
    from diffusers.optimization import get_scheduler

    gpu = torch.cuda.is_available()
    # cpu=True lets several CPU processes (torchrun / accelerate launch) form a gloo group
    accelerator = Accelerator(mixed_precision="bf16" if gpu else "no", cpu=not gpu)
    transformer = pipe.transformer
    transformer.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):  # LoRA A matrices start random: from train.seed, not a global RNG
        torch.manual_seed(cfg.seed)
        transformer.add_adapter(cfg.lora_config())
    if cfg.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.train()
    trainable = [p for p in transformer.parameters() if p.requires_grad]
    for p in trainable:
        p.data = p.data.float()  # LoRA weights train in fp32 even when the base model is bf16
    optimizer = torch.optim.AdamW(
        trainable, lr=cfg.learning_rate, betas=cfg.betas, weight_decay=cfg.weight_decay, eps=1e-8
    )
    # accelerate steps a prepared scheduler once per process at every optimizer step, so the warmup is
    # counted in process-steps, as the official trainer does (warmup_steps * num_processes)
    lr_scheduler = get_scheduler(
        "constant_with_warmup", optimizer, num_warmup_steps=cfg.warmup_steps * accelerator.num_processes
    )
    model, optimizer, lr_scheduler = accelerator.prepare(transformer, optimizer, lr_scheduler)
    lora_only_checkpoints(accelerator)

    result = TrainResult()
    latest = _latest_checkpoint(checkpoints, fingerprint)
    if latest is not None:
        folder, meta = latest
        accelerator.load_state(str(folder))
        result.resumed_from = meta["step"]
        result.logs = [StepLog(**entry) for entry in meta["history"]]
    rank, world = accelerator.process_index, accelerator.num_processes
    for step in range(result.resumed_from, cfg.steps):
        start = time.perf_counter()
        with accelerator.accumulate(model):
            loss = loss_for_step(pipe, model, data, cfg, step, rank, world)
            accelerator.backward(loss)
            if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                accelerator.clip_grad_norm_(trainable, cfg.max_grad_norm)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        log = StepLog(
            step + 1,
            float(loss.detach()),
            lr_scheduler.get_last_lr()[0],
            time.perf_counter() - start,
            peak_memory_mb(),
        )
        result.logs.append(log)
        if on_step is not None and accelerator.is_main_process:
            on_step(log)
        done = step + 1
        if done % cfg.checkpoint_every == 0 or done == cfg.steps or done == stop_after:
            folder = Path(checkpoints) / f"{CHECKPOINT_PREFIX}{done}"
            accelerator.save_state(str(folder))
            if accelerator.is_main_process:
                history = [asdict(entry) for entry in result.logs]
                meta = {"step": done, "fingerprint": fingerprint, "config": asdict(cfg), "history": history}
                write_json(folder / "progrestore.json", meta)
                kept = sorted(
                    Path(checkpoints).glob(f"{CHECKPOINT_PREFIX}*"), key=lambda p: int(p.name.split("-")[1])
                )
                for old in kept[: -cfg.keep_checkpoints]:
                    shutil.rmtree(old)
            accelerator.wait_for_everyone()
        if done == stop_after:
            break
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.eval()
    return unwrapped, result


def save_lora(transformer, cfg: TrainConfig, out_dir: Path) -> Path:
    """diffusers' LoRA format, with the adapter metadata so that alpha/rank survives a reload."""
    from diffusers import CogVideoXImageToVideoPipeline
    from peft.utils import get_peft_model_state_dict

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().float().cpu().contiguous() for k, v in get_peft_model_state_dict(transformer).items()
    }
    metadata = cfg.lora_config().to_dict()
    metadata["target_modules"] = sorted(metadata["target_modules"])
    weights = out_dir / "pytorch_lora_weights.safetensors"
    # written beside, then renamed over: an earlier file may be a DVC cache link that must not be written
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".lora.") as scratch:
        CogVideoXImageToVideoPipeline.save_lora_weights(
            scratch, transformer_lora_layers=state, transformer_lora_adapter_metadata=metadata
        )
        canonicalise(Path(scratch) / weights.name)
        os.replace(Path(scratch) / weights.name, weights)
    return weights


def mean_loss(logs: list[StepLog], last: int) -> float:
    if not logs:
        raise ValueError("no training step was logged")
    values = [log.loss for log in logs[-last:]]
    return sum(values) / len(values)


def run_record(logs: list[StepLog]) -> dict:
    """What ``train.json`` says of a whole run (every step, across resumes): strict-JSON numbers."""
    return {
        "final_loss_mean10": mean_loss(logs, 10),
        "steps_logged": len(logs),
        "seconds_per_step": sum(log.seconds for log in logs) / len(logs),
        "peak_memory_mb": max(log.peak_memory_mb for log in logs),
    }
