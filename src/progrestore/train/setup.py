"""The training's accelerate objects: the LoRA adapter on the frozen denoiser, AdamW, the warmup schedule,
the sharding engines' checks and LoRA-only checkpoints."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from progrestore.errors import ProgrestoreError
from progrestore.model.specification import ModelSpecification
from progrestore.train.config import TrainConfig

SHARDING_ENGINES = ("FSDP", "DEEPSPEED")  # accelerate runs them on accelerator backends only


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
