"""LoRA fine-tuning of a backbone's denoiser with peft, run through accelerate.

Every random draw of step s (clip order, timestep, noise, pixel noise of the conditioning image, image
dropout) comes from a generator seeded by (seed, s, process rank), so a run killed after a checkpoint and
resumed takes exactly the steps it would have taken: resume restores the LoRA weights, optimizer and
learning-rate state (``accelerator.save_state``, LoRA weights only) and the per-step log so far, so that the run's record
describes every step, as an uninterrupted run's does. The loss is the model specification's.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from progrestore.config import Section
from progrestore.errors import ProgrestoreError, disk_full, disk_full_error
from progrestore.io.atomic import write_json
from progrestore.io.tensors import canonicalise
from progrestore.model.specification import (
    LORA_WEIGHTS,
    ModelSpecification,
    attention_kernel,
    attention_setting,
)

CHECKPOINT_PREFIX = "checkpoint-"
PARTIAL_PREFIX = ".partial-"  # a checkpoint being written: never resumed, removed by the next save
FULL_DISK_BYTES = 2**20  # less room than this after a failed save: the disk was full
ADAPTER = "default"  # the adapter name peft gives ``add_adapter``'s LoRA
SHARDING_ENGINES = ("FSDP", "DEEPSPEED")  # accelerate runs them on accelerator backends only


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
    gradient_checkpointing: bool | float  # true: every block, false: none, or the share of the blocks
    image_dropout: float
    checkpoint_every: int
    keep_checkpoints: int
    seed: int
    attention: str = "auto"  # speed levers (README: Speed levers); the defaults are the plain path
    compile: bool = False

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
            gradient_checkpointing=checkpointing_share(train),
            image_dropout=train.number("image_dropout", 0.0, 1.0),
            checkpoint_every=train.integer("checkpoint_every", 1),
            keep_checkpoints=train.integer("keep_checkpoints", 1),
            seed=train.integer("seed", 0),
            attention=attention_setting(train),
            compile=train.boolean("compile"),
        )

    def lora_config(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.rank, lora_alpha=self.alpha, target_modules=list(self.targets), init_lora_weights=True
        )


def checkpointing_share(train: Section) -> bool | float:
    """``train.gradient_checkpointing``: true (every block), false (none) or a share in (0, 1) of the
    blocks, the first ones (``ModelSpecification.checkpoint_blocks``)."""
    value = train.raw("gradient_checkpointing")
    if isinstance(value, bool) or (isinstance(value, int | float) and 0 < value < 1):
        return value
    raise train.fail("gradient_checkpointing", "true, false or a share of the blocks in (0, 1)")


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
    adapter: dict[str, torch.Tensor] = field(default_factory=dict)  # the LoRA, whole on the main process


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


def _latest_checkpoint(folder: Path, fingerprint: str) -> tuple[Path, dict] | None:
    """(folder, metadata) of the newest checkpoint of this fingerprint that logs every step before it."""
    candidates = []
    for path in Path(folder).glob(f"{CHECKPOINT_PREFIX}*"):  # not the hidden .partial-checkpoint-*
        meta_file = path / "progrestore.json"
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        if meta.get("fingerprint") == fingerprint and len(meta.get("history", ())) == meta["step"]:
            candidates.append((meta["step"], path, meta))
    return max(candidates, key=lambda c: c[0])[1:] if candidates else None


def lora_only_checkpoints(accelerator) -> None:
    """Make ``save_state`` keep the LoRA weights only, not the frozen base model (11 GB for the 5B models
    in bf16), as the official trainer's hooks do; ``load_state`` sets them back into the adapter.

    Not under a sharding engine: FSDP and DeepSpeed write and read their own sharded checkpoint format
    (no whole-model weights pass through these hooks there)."""
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


@dataclass
class Training:
    """What the loop steps: accelerate's objects around the denoiser, and the names of its LoRA."""

    accelerator: object
    denoiser: torch.nn.Module  # prepared (possibly wrapped for DDP or FSDP)
    optimizer: torch.optim.Optimizer
    lr_scheduler: object
    adapter_keys: list[str]  # the LoRA's names in the unwrapped denoiser's state dict


def prepare_training(model: ModelSpecification, cfg: TrainConfig) -> Training:
    """The LoRA adapter on the frozen denoiser, AdamW and the warmup schedule, prepared by accelerate."""
    from accelerate import Accelerator
    from diffusers.optimization import get_scheduler

    gpu = torch.cuda.is_available()
    sharded = [
        name for name in SHARDING_ENGINES if os.environ.get(f"ACCELERATE_USE_{name}", "").lower() == "true"
    ]
    if sharded and not gpu:
        raise ProgrestoreError(
            f"accelerate launch with {sharded[0]} needs GPUs: on CPU processes accelerate drops the "
            f"{sharded[0]} plugin and would train plain DDP; use configs/accelerate/ddp-cpu.yaml"
        )
    # cpu=True lets several CPU processes (torchrun / accelerate launch) form a gloo group
    accelerator = Accelerator(mixed_precision="bf16" if gpu else "no", cpu=not gpu)
    engine = accelerator.distributed_type.value
    denoiser = model.denoiser
    denoiser.requires_grad_(False)
    if engine == "FSDP":
        # FSDP flattens each unit's parameters into one tensor of one dtype: the frozen base is kept in
        # fp32 beside the fp32 LoRA, and FSDP's mixed precision (bf16, from the launch config) computes
        denoiser.float()
    if engine == "DEEPSPEED":
        # one clip per process and step, with no dataloader for accelerate to read the batch size from
        accelerator.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = 1
    with torch.random.fork_rng(devices=[]):  # LoRA A matrices start random: from train.seed, not a global RNG
        torch.manual_seed(cfg.seed)
        denoiser.add_adapter(cfg.lora_config())
    model.checkpoint_blocks(cfg.gradient_checkpointing)
    if cfg.compile:  # after the LoRA: its layers are part of the compiled graph
        model.compile_blocks()
    denoiser.train()
    adapter = {name: p for name, p in denoiser.named_parameters() if p.requires_grad}
    for p in adapter.values():
        p.data = p.data.float()  # LoRA weights train in fp32 even when the base model is bf16
    optimizer = torch.optim.AdamW(
        list(adapter.values()), lr=cfg.learning_rate, betas=cfg.betas, weight_decay=cfg.weight_decay, eps=1e-8
    )
    # accelerate steps a prepared scheduler once per process at every optimizer step, so the warmup is
    # counted in process-steps, as the official trainer does (warmup_steps * num_processes)
    lr_scheduler = get_scheduler(
        "constant_with_warmup", optimizer, num_warmup_steps=cfg.warmup_steps * accelerator.num_processes
    )
    wrapped, optimizer, lr_scheduler = accelerator.prepare(denoiser, optimizer, lr_scheduler)
    if engine not in SHARDING_ENGINES:
        lora_only_checkpoints(accelerator)
    return Training(accelerator, wrapped, optimizer, lr_scheduler, list(adapter))


def resume(training: Training, checkpoints: Path, fingerprint: str) -> TrainResult:
    """The state and step log of the newest matching checkpoint, or a fresh start."""
    result = TrainResult()
    latest = _latest_checkpoint(checkpoints, fingerprint)
    if latest is not None:
        folder, meta = latest
        training.accelerator.load_state(str(folder))
        result.resumed_from = meta["step"]
        result.logs = [StepLog(**entry) for entry in meta["history"]]
    return result


def _save_failure(err: BaseException, partial: Path, folder: Path) -> OSError | None:
    """A full disk, as an error naming the checkpoint: in safetensors' words or as an errno, or, from
    torch's writer (whose errors do not say why: ``unexpected pos``, ``iostream error``), a disk with
    no room left."""
    code = disk_full(err)
    if code is None and isinstance(err, RuntimeError) and partial.parent.is_dir():
        code = errno.ENOSPC if shutil.disk_usage(partial.parent).free < FULL_DISK_BYTES else None
    return None if code is None else disk_full_error(code, folder)


def save_checkpoint(
    training: Training, checkpoints: Path, done: int, fingerprint: str, cfg: TrainConfig, logs: list[StepLog]
) -> None:
    """``checkpoint-<done>`` with the LoRA, optimizer and scheduler state and the log so far; older
    checkpoints beyond ``keep_checkpoints`` go.

    Written whole into a hidden sibling, then renamed: a save cut short (a full disk, an interrupt) leaves
    no half checkpoint, prunes nothing, and the previous checkpoint stays the one to resume."""
    accelerator = training.accelerator
    folder = Path(checkpoints) / f"{CHECKPOINT_PREFIX}{done}"
    partial = folder.with_name(f"{PARTIAL_PREFIX}{folder.name}")  # every process writes its part there
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)  # a killed save's leftover
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(partial))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            history = [asdict(entry) for entry in logs]
            meta = {"step": done, "fingerprint": fingerprint, "config": asdict(cfg), "history": history}
            write_json(partial / "progrestore.json", meta)
            if folder.exists():  # a checkpoint of other settings at this step
                shutil.rmtree(folder)
            os.replace(partial, folder)
    except BaseException as err:
        full = _save_failure(err, partial, folder) if accelerator.is_main_process else None
        shutil.rmtree(partial, ignore_errors=True)
        if full is not None:
            raise full from err
        raise
    if accelerator.is_main_process:
        kept = sorted(
            Path(checkpoints).glob(f"{CHECKPOINT_PREFIX}*"), key=lambda p: int(p.name.split("-")[1])
        )
        for old in kept[: -cfg.keep_checkpoints]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


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


def adapter_state(training: Training) -> dict[str, torch.Tensor]:
    """The LoRA weights under peft's saved names (adapter name dropped), whole on the main process.

    Every process calls it: under FSDP ``get_state_dict`` gathers the shards (a collective). The entries
    are picked by the names the LoRA had before accelerate wrapped the model, since peft's own picker
    walks the module tree, which FSDP's per-block wrappers rename."""
    whole = training.accelerator.get_state_dict(training.denoiser)
    if not whole:  # FSDP gathers onto the main process only
        return {}
    return {
        key.replace(f".{ADAPTER}.", "."): whole[key].detach().float().cpu().contiguous()
        for key in training.adapter_keys
    }


def save_lora(
    model: ModelSpecification, adapter: dict[str, torch.Tensor], cfg: TrainConfig, out_dir: Path
) -> Path:
    """The family's LoRA format (``adapter``: ``TrainResult.adapter``), with the adapter metadata so that
    alpha/rank survives a reload."""
    if not adapter:
        raise ValueError("save_lora: no LoRA weights (only the main process holds the gathered adapter)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metadata = cfg.lora_config().to_dict()
    metadata["target_modules"] = sorted(metadata["target_modules"])
    weights = out_dir / LORA_WEIGHTS
    # written beside, then renamed over: an earlier file may be a DVC cache link that must not be written
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".lora.") as scratch:
        try:
            written = model.save_lora(adapter, metadata, Path(scratch))
            canonicalise(written)
        except Exception as err:  # safetensors says a full disk in words only
            code = disk_full(err)
            if code is None:
                raise
            raise disk_full_error(code, weights) from err
        os.replace(written, weights)
    return weights


def mean_loss(logs: list[StepLog], last: int) -> float:
    if not logs:
        raise ValueError("no training step was logged")
    values = [log.loss for log in logs[-last:]]
    return sum(values) / len(values)


def run_record(logs: list[StepLog]) -> dict:
    """What ``train.json`` (a DVC metric) says of a whole run, every step across resumes: figures that
    the same inputs reproduce exactly, so a rerun leaves dvc.lock unchanged."""
    return {"final_loss_mean10": mean_loss(logs, 10), "steps_logged": len(logs)}


def run_costs(result: TrainResult) -> dict:
    """What this run cost and where it started: figures of the machine and its history, never of the
    inputs, so they go to MLflow and the untracked run log instead of a DVC-tracked file."""
    return {
        "seconds_per_step": sum(log.seconds for log in result.logs) / len(result.logs),
        "peak_memory_mb": max(log.peak_memory_mb for log in result.logs),
        "resumed_from": result.resumed_from,
    }
