"""LoRA fine-tuning of a backbone's denoiser with peft, run through accelerate.

Every random draw of step s (clip order, timestep, noise, pixel noise of the conditioning image, image
dropout) comes from a generator seeded by (seed, s, process rank), so a run killed after a checkpoint and
resumed takes exactly the steps it would have taken: resume restores the LoRA weights, optimizer and
learning-rate state (``accelerator.save_state``, LoRA weights only) and the per-step log so far, so that the run's record
describes every step, as an uninterrupted run's does. The loss is the model specification's.

The loop's parts: :mod:`~progrestore.train.config` (TrainConfig), :mod:`~progrestore.train.setup`
(accelerate's objects), :mod:`~progrestore.train.checkpoints` (save, prune, resume),
:mod:`~progrestore.train.export` (the LoRA out) and :mod:`~progrestore.train.records` (data, logs, figures).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from progrestore.errors import ProgrestoreError
from progrestore.model.specification import ModelSpecification, attention_kernel
from progrestore.train.checkpoints import resume, save_checkpoint
from progrestore.train.config import TrainConfig
from progrestore.train.export import adapter_state
from progrestore.train.records import StepLog, TrainData, TrainResult
from progrestore.train.setup import Training, prepare_training


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
    model: ModelSpecification, denoiser, data: TrainData, cfg: TrainConfig, step: int, rank: int, world: int
) -> torch.Tensor:
    """The loss of this process's clip at ``step``, every draw from the step's generator."""
    clip_id = clip_for_step(data, cfg.seed, step, rank, world)
    return model.training_loss(
        denoiser,
        data.latents[clip_id],
        data.first_frames[clip_id],
        data.prompt_embeds[clip_id],
        step_generator(cfg.seed, step, rank),
        cfg.image_dropout,
    )


def optimizer_step(
    model: ModelSpecification, training: Training, data: TrainData, cfg: TrainConfig, step: int
) -> StepLog:
    """One step of this process: loss, backward (gradients averaged over processes), clip, update."""
    accelerator = training.accelerator
    start = time.perf_counter()
    rank, world = accelerator.process_index, accelerator.num_processes
    with attention_kernel(cfg.attention):  # the backward too: checkpointed blocks recompute there
        loss = loss_for_step(model, training.denoiser, data, cfg, step, rank, world)
        accelerator.backward(loss)
    if cfg.max_grad_norm > 0:
        # the prepared module's own parameters: under FSDP accelerate then takes FSDP's norm over all shards
        # (only the LoRA has gradients; the frozen parameters are skipped)
        accelerator.clip_grad_norm_(training.denoiser.parameters(), cfg.max_grad_norm)
    training.optimizer.step()
    training.lr_scheduler.step()
    training.optimizer.zero_grad(set_to_none=True)
    lr = training.lr_scheduler.get_last_lr()[0]
    return StepLog(step + 1, float(loss.detach()), lr, time.perf_counter() - start, peak_memory_mb())


def train_lora(
    model: ModelSpecification,
    data: TrainData,
    cfg: TrainConfig,
    checkpoints: Path,
    fingerprint: str,
    stop_after: int | None = None,
    on_step=None,
    validate: Callable[[int], None] | None = None,
    validate_every: int = 0,
) -> tuple[object, TrainResult]:
    """Train; returns the (unwrapped) denoiser with its LoRA adapter and the per-step logs.

    ``stop_after`` ends the run early (after checkpointing), as a kill would: used to test resume.
    ``validate(step)`` runs on the main process every ``validate_every`` steps and after the last, once
    the step's checkpoint is written, while the other processes wait; it is outside every step's time.
    """
    training = prepare_training(model, cfg)
    accelerator = training.accelerator
    if validate is not None and validate_every and accelerator.distributed_type.value == "FSDP":
        raise ProgrestoreError(
            "train.validate_every needs the whole denoiser on the main process, but FSDP shards its "
            "weights across processes: set train.validate_every: 0, or train with DDP or DeepSpeed"
        )
    result = resume(training, checkpoints, fingerprint)
    for step in range(result.resumed_from, cfg.steps):
        log = optimizer_step(model, training, data, cfg, step)
        result.logs.append(log)
        if on_step is not None and accelerator.is_main_process:
            on_step(log)
        if log.step % cfg.checkpoint_every == 0 or log.step in (cfg.steps, stop_after):
            save_checkpoint(training, checkpoints, log.step, fingerprint, cfg, result.logs)
        if (
            validate is not None
            and validate_every
            and (log.step % validate_every == 0 or log.step == cfg.steps)
        ):
            if accelerator.is_main_process:
                validate(log.step)
            accelerator.wait_for_everyone()
        if log.step == stop_after:
            break
    result.adapter = adapter_state(training)
    unwrapped = training.accelerator.unwrap_model(training.denoiser)
    unwrapped.eval()
    return unwrapped, result
