"""What training and inference need from a backbone, behind one interface (after finetrainers'
``ModelSpecification``): ``train/`` and ``infer/`` call these methods and name no model family.

A family (``Profile.family``) is one subclass in its own package ``model/<family>/``, named by the
family's record in that package's ``profiles`` module (see ``model/profiles.py``). A second backbone adds
such a package and nothing in ``train/``, ``infer/`` or the generic ``model/`` modules.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.utils.checkpoint

from progrestore.config import Section
from progrestore.model.settings import ModelSettings

# The parts a stage may load, by what they do (each family maps them to its components): a stage loads only
# what it uses, so that, e.g., training never holds the text encoder (T5-XXL: 9.5 GB in bf16)
TEXT, AUTOENCODER, DENOISER = "text", "autoencoder", "denoiser"
PARTS = frozenset({TEXT, AUTOENCODER, DENOISER})
LORA_WEIGHTS = "pytorch_lora_weights.safetensors"  # diffusers' LoRA file name, in every family
TRAIN_METRICS = "train.json"  # beside it: the training run's reproducible numbers (a DVC metric)
TRAIN_RUN_LOG = "run.json"  # and its costs (time, memory, resume point): untracked, also in MLflow
TRAIN_ABOUT = "about.json"  # beside it: the backbone, size and tasks it was trained for

# ``restore.attention`` / ``train.attention``: torch's scaled-dot-product-attention kernels by name (auto:
# torch's own choice); every family's attention goes through F.scaled_dot_product_attention
ATTENTION_KERNELS = {
    "auto": None,
    "cudnn": "CUDNN_ATTENTION",
    "flash": "FLASH_ATTENTION",
    "efficient": "EFFICIENT_ATTENTION",
    "math": "MATH",
}
CPU_ATTENTION_KERNELS = ("auto", "math")  # the others are CUDA kernels


def attention_setting(section: Section, name: str = "attention") -> str:
    """``<block>.attention``, checked when the stage starts: a CUDA kernel without CUDA is refused here,
    not deep inside the first attention call."""
    kernel = section.choice(name, tuple(ATTENTION_KERNELS))
    if kernel not in CPU_ATTENTION_KERNELS and not torch.cuda.is_available():
        raise section.fail(
            name, f"one of {', '.join(CPU_ATTENTION_KERNELS)} without CUDA ({kernel} is a CUDA kernel)"
        )
    return kernel


def attention_kernel(kernel: str) -> AbstractContextManager:
    """The attention kernel ``kernel`` for everything run inside (``auto``: no constraint). A context around
    the call, not diffusers' ``set_attention_backend``: some families' attention processors call
    F.scaled_dot_product_attention directly, which that setting does not reach; a backward runs the kernel
    its forward chose."""
    backend = ATTENTION_KERNELS[kernel]
    if backend is None:
        return nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([getattr(SDPBackend, backend)], set_priority=True)


@dataclass(frozen=True)
class Sampling:
    """How a trajectory is sampled (the ``restore`` block)."""

    steps: int
    guidance_scale: float
    seed: int
    scheduler: str
    dynamic_cfg: bool
    # speed levers (README: Speed levers); the defaults are the plain path
    attention: str = "auto"  # ``ATTENTION_KERNELS``
    compile: bool = False  # the repeated blocks compiled (``compile_blocks``)
    fuse_lora: bool = False  # the LoRA merged into the weights it adapts (``fuse_lora``)


class ModelSpecification(ABC):
    """One loaded backbone: its components, and the operations of encode, train and restore.

    Frames cross this interface as uint8 arrays at the model's size (``settings.height`` x ``width``);
    latents and prompt embeddings as the tensors the encode stages cache.
    """

    samplers: tuple[str, ...] = ()  # the names ``restore.scheduler`` may take, the family's default first
    dynamic_cfg = False  # whether its sampling has a dynamic guidance schedule (``restore.dynamic_cfg``)

    def __init__(self, settings: ModelSettings | None):
        self.settings = settings

    @property
    @abstractmethod
    def denoiser(self) -> torch.nn.Module:
        """The module the LoRA adapts (a diffusers model, so peft's ``add_adapter`` applies)."""

    @property
    @abstractmethod
    def repeated_blocks(self) -> torch.nn.ModuleList:
        """The denoiser's stack of identical transformer blocks, where nearly all its work is done."""

    def compile_blocks(self) -> None:
        """torch.compile each repeated block in place at fixed shapes (regional compilation): one compiled
        graph serves every block, in a fraction of the whole denoiser's compile time, and the module names
        (the LoRA's keys) stay as they are. Call it once the LoRA is in place: peft's layers change the graph."""
        for block in self.repeated_blocks:
            block.compile(dynamic=False)

    def checkpoint_blocks(self, share: float) -> None:
        """Gradient checkpointing of the first ceil(``share`` x N) repeated blocks: 1 (or true) is diffusers'
        own, every block; 0 (or false) none. In between, diffusers' loop runs with a checkpointing function
        that recomputes the chosen blocks only, so memory can be traded for speed block by block."""
        denoiser = self.denoiser
        if share == 0:
            denoiser.disable_gradient_checkpointing()
            return
        if share == 1:
            denoiser.enable_gradient_checkpointing()
            return
        count = math.ceil(share * len(self.repeated_blocks))

        def checkpoint_chosen(block: torch.nn.Module, *args):
            # looked up at each call: a sharding engine may have wrapped the blocks since
            if any(block is chosen for chosen in self.repeated_blocks[:count]):  # as diffusers' default does
                return torch.utils.checkpoint.checkpoint(block.__call__, *args, use_reentrant=False)
            return block(*args)

        denoiser.enable_gradient_checkpointing(checkpoint_chosen)

    @property
    @abstractmethod
    def device(self) -> torch.device: ...

    @property
    @abstractmethod
    def dtype(self) -> torch.dtype: ...

    @abstractmethod
    def encode_video(self, frames: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        """(T, H, W, 3) uint8 clip -> the latents training reads (one sample of the posterior)."""

    @abstractmethod
    def reconstruct(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 clip -> the same clip encoded and decoded by the autoencoder (the posterior's
        mode), as uint8 frames the way sampled ones are made: the best a trajectory in its latent space can be."""

    @abstractmethod
    def encode_prompt(self, prompt: str) -> torch.Tensor:
        """The text embedding of one prompt, as training and sampling read it."""

    @abstractmethod
    def training_loss(
        self,
        denoiser: torch.nn.Module,
        latents: torch.Tensor,
        first_frame: torch.Tensor,
        prompt_embeds: torch.Tensor,
        generator: torch.Generator,
        image_dropout: float,
    ) -> torch.Tensor:
        """The loss of one clip at one random timestep; every draw comes from ``generator``.
        ``denoiser`` is ``self.denoiser``, possibly wrapped (DDP, FSDP)."""

    @abstractmethod
    def positional_embedding(self, frames: int) -> str:
        """What absolute positional embedding a ``frames``-frame clip gets (for the run records)."""

    @abstractmethod
    def save_lora(self, state: dict[str, torch.Tensor], metadata: dict, folder: Path) -> Path:
        """Write the LoRA ``state`` in the family's pipeline format into ``folder``; returns the file."""

    @property
    @abstractmethod
    def parts(self) -> frozenset[str]:
        """The parts (``PARTS``) this instance loaded."""

    @classmethod
    @abstractmethod
    def load(cls, settings: ModelSettings, parts: frozenset[str] = PARTS) -> ModelSpecification:
        """Load the ``parts`` of the backbone ``settings`` name (the tiny profiles' from their cached
        folder); ``encode_prompt`` needs ``TEXT``, ``encode_video`` ``AUTOENCODER``, training and
        sampling ``AUTOENCODER`` and ``DENOISER``."""

    @abstractmethod
    def use_sampler(self, name: str) -> None:
        """Sample with the sampler ``name`` (one of ``samplers``) from now on."""

    @abstractmethod
    def load_lora(self, folder: Path) -> None:
        """Load the LoRA saved in ``folder`` into the denoiser, for sampling."""

    @abstractmethod
    def fuse_lora(self) -> None:
        """Merge the loaded LoRA into the weights it adapts (scale 1), as the official demo samples: one
        matrix product per adapted layer instead of three."""

    @abstractmethod
    def sample(
        self,
        image: np.ndarray,
        prompt_embeds: torch.Tensor,
        negative_embeds: torch.Tensor,
        frames: int,
        sampling: Sampling,
    ) -> np.ndarray:
        """(h, w, 3) uint8 image at the model's size -> (frames, h, w, 3) uint8 trajectory."""
