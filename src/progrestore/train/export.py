"""The trained LoRA out of training: its weights gathered under peft's names, saved in the family's format."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from progrestore.errors import disk_full, disk_full_error
from progrestore.io.tensors import canonicalise
from progrestore.model.specification import LORA_WEIGHTS, ModelSpecification
from progrestore.train.config import TrainConfig
from progrestore.train.setup import Training

ADAPTER = "default"  # the adapter name peft gives ``add_adapter``'s LoRA


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
