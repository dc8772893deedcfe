"""What every family built on one diffusers image-to-video pipeline shares: the loaded parts, where the
modules are, the LoRA in diffusers' format, the sampler in use, and the pipeline's frames as uint8.

A family subclasses :class:`PipelineBackbone` with its ``folder`` (its pipeline folder's layout) and its
``pipeline_class`` (the diffusers pipeline whose LoRA loader saves and loads the family's LoRAs), and
writes the rest of the :class:`ModelSpecification`: encoding, the loss, the samplers, sampling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from progrestore.model.hub_folder import FolderLayout
from progrestore.model.settings import ModelSettings
from progrestore.model.specification import LORA_WEIGHTS, ModelSpecification


class PipelineBackbone(ModelSpecification):
    folder: FolderLayout  # the family's pipeline folder
    pipeline_class: str  # the diffusers pipeline with the family's LoRA loader
    adapter_name = "restoration"  # the name the LoRA is loaded under for sampling

    def __init__(self, settings: ModelSettings | None, pipe):
        super().__init__(settings)
        self.pipe = pipe
        modules = (getattr(pipe, name, None) for name in ("vae", "transformer", "text_encoder"))
        module = next(m for m in modules if m is not None)
        self._device, self._dtype = module.device, module.dtype  # where the loaded modules are
        self.sampler: str | None = None  # the folder's own scheduler until a sampler is chosen

    @property
    def parts(self) -> frozenset[str]:
        return self.folder.loaded_parts(
            {name: getattr(self.pipe, name, None) for name in self.folder.components}
        )

    def require(self, *parts: str) -> None:
        """A stage that loaded only some parts must not reach for the others: say so, not AttributeError."""
        missing = set(parts) - self.parts
        if missing:
            raise RuntimeError(f"the model was loaded without its {', '.join(sorted(missing))} part")

    @property
    def denoiser(self) -> torch.nn.Module:
        return self.pipe.transformer

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        return self._dtype

    def save_lora(self, state: dict[str, torch.Tensor], metadata: dict, folder: Path) -> Path:
        import diffusers

        getattr(diffusers, self.pipeline_class).save_lora_weights(
            str(folder), transformer_lora_layers=state, transformer_lora_adapter_metadata=metadata
        )
        return Path(folder) / LORA_WEIGHTS

    def load_lora(self, folder: Path) -> None:
        self.pipe.load_lora_weights(str(folder), weight_name=LORA_WEIGHTS, adapter_name=self.adapter_name)

    @staticmethod
    def to_uint8(frames: np.ndarray) -> np.ndarray:
        """The pipeline's float frames in [0, 1] (``output_type="np"``) -> uint8, rounded."""
        return (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
