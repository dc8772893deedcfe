"""What every family built on one diffusers image-to-video pipeline shares: the loaded parts, where the
modules are, the LoRA in diffusers' format, the sampler in use, and sampling through the pipeline.

A family subclasses :class:`PipelineBackbone` with its ``folder`` (its pipeline folder's layout) and its
``pipeline_class`` (the diffusers pipeline whose LoRA loader saves and loads the family's LoRAs), and
writes the rest of the :class:`ModelSpecification`: encoding, the loss, the samplers (``use_sampler``) and
its pipeline's own sampling options.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from progrestore.model.hub_folder import FolderLayout
from progrestore.model.settings import ModelSettings
from progrestore.model.specification import (
    AUTOENCODER,
    DENOISER,
    LORA_WEIGHTS,
    TEXT,
    ModelSpecification,
    Sampling,
    attention_kernel,
)


class PipelineBackbone(ModelSpecification):
    folder: FolderLayout  # the family's pipeline folder
    pipeline_class: str  # the diffusers pipeline with the family's LoRA loader
    text_tokens: int  # the text encoder's sequence length (the family's text budget)
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

    @torch.inference_mode()
    def reconstruct(self, frames: np.ndarray) -> np.ndarray:
        """Through the pipeline's own VAE and post-processing: the pixels as its image processor makes them
        (``2 x / 255 - 1``), the latent distribution's mode, decoded (the latent scaling the pipeline applies
        to samples cancels out) and rounded as :meth:`sample` rounds."""
        self.require(AUTOENCODER)
        vae = self.pipe.vae
        video = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].to(self.device, torch.float32)
        latents = vae.encode((2.0 * (video / 255.0) - 1.0).to(vae.dtype)).latent_dist.mode()
        decoded = vae.decode(latents, return_dict=False)[0]
        return to_uint8(self.pipe.video_processor.postprocess_video(decoded, output_type="np")[0])

    @torch.inference_mode()
    def encode_prompt(self, prompt: str) -> torch.Tensor:
        """The text embedding (``text_tokens``, D) of one prompt, as the family's pipeline builds it."""
        self.require(TEXT)
        embeds, _ = self.pipe.encode_prompt(
            prompt=prompt,
            do_classifier_free_guidance=False,
            max_sequence_length=self.text_tokens,
            device=self.device,
        )
        return embeds[0].float()

    def save_lora(self, state: dict[str, torch.Tensor], metadata: dict, folder: Path) -> Path:
        import diffusers

        getattr(diffusers, self.pipeline_class).save_lora_weights(
            str(folder), transformer_lora_layers=state, transformer_lora_adapter_metadata=metadata
        )
        return Path(folder) / LORA_WEIGHTS

    def load_lora(self, folder: Path) -> None:
        self.pipe.load_lora_weights(str(folder), weight_name=LORA_WEIGHTS, adapter_name=self.adapter_name)

    def fuse_lora(self) -> None:
        self.pipe.fuse_lora(components=["transformer"], lora_scale=1.0, adapter_names=[self.adapter_name])

    def sampling_options(self, sampling: Sampling) -> dict:
        """The family pipeline's own keyword arguments for ``sampling`` (e.g. a guidance schedule)."""
        return {}

    @torch.inference_mode()
    def sample(
        self,
        image: np.ndarray,
        prompt_embeds: torch.Tensor,
        negative_embeds: torch.Tensor,
        frames: int,
        sampling: Sampling,
    ) -> np.ndarray:
        """Through the family's pipeline, the same call for every family, with the sampler
        ``sampling.scheduler`` and the attention kernel ``sampling.attention``; the pipeline's float frames
        are rounded to uint8."""
        self.require(AUTOENCODER, DENOISER)
        if self.sampler != sampling.scheduler:
            self.use_sampler(sampling.scheduler)
        device, dtype = self.device, self.dtype
        with attention_kernel(sampling.attention):
            output = self.pipe(
                image=Image.fromarray(image),
                prompt_embeds=prompt_embeds[None].to(device, dtype),
                negative_prompt_embeds=negative_embeds[None].to(device, dtype),
                height=image.shape[0],
                width=image.shape[1],
                num_frames=frames,
                num_inference_steps=sampling.steps,
                guidance_scale=sampling.guidance_scale,
                generator=torch.Generator(device).manual_seed(sampling.seed),
                output_type="np",
                **self.sampling_options(sampling),
            ).frames[0]
        return to_uint8(output)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """The pipeline's float frames in [0, 1] -> uint8, rounded to nearest."""
    return (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
