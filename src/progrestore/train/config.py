"""The ``train`` block of params.yaml, validated once: :class:`TrainConfig`."""

from __future__ import annotations

from dataclasses import dataclass

from progrestore.config import Section
from progrestore.model.specification import attention_setting


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
