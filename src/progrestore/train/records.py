"""What training reads and records: the encoded clips, the per-step log, and the run's figures
(``train.json``, MLflow and the run log)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


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
