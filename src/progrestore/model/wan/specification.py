"""Wan2.2-TI2V image-to-video (tiny and 5B) as a :class:`ModelSpecification`.

Training loss: flow matching as DiffSynth-Studio trains Wan2.2-TI2V-5B (``diffsynth/diffusion/loss.py``
``FlowMatchSFTLoss`` and ``flow_match.py``, after its fix of 2026-01-27 for image-to-video): a noise level
drawn uniformly from the 1,000 levels of the shifted schedule (shift 5, as sampled), ``x_t = (1 - s) x_0 +
s e``, target ``e - x_0``, the first latent frame replaced by the clean image latent at timestep 0 and left
out of the loss, and DiffSynth's Gaussian weight over the timestep. With probability ``image_dropout`` the
image is dropped: the clip is then a text-to-video sample (no replacement, every frame in the loss, one
timestep), as TI2V was also trained. Sampling: diffusers' ``WanImageToVideoPipeline`` in its TI2V mode with
the sampler ``restore.scheduler`` on the model's own schedule (UniPC: the official default; DPM++: the
official alternative; Euler).
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

from progrestore.model.pipeline_backbone import PipelineBackbone
from progrestore.model.settings import ModelSettings
from progrestore.model.specification import (
    AUTOENCODER,
    DENOISER,
    PARTS,
)
from progrestore.model.wan.components import FOLDER, load_components, make_pipeline
from progrestore.model.wan.conditioning import (
    encode_video,
    first_frame_mask,
    image_latents,
    token_timesteps,
    training_sigmas,
    training_weights,
    with_condition,
)
from progrestore.model.wan.configs import FLOW_SHIFT, TEXT_TOKENS, TRAIN_TIMESTEPS

# ``restore.scheduler``'s names for this family, the official default first
SAMPLERS = {
    "unipc": "UniPCMultistepScheduler",
    "dpm": "DPMSolverMultistepScheduler",
    "euler": "FlowMatchEulerDiscreteScheduler",
}


def pixels(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 3, H, W) -> float32 in [-1, 1] with the pipeline's arithmetic (``x / 255``, ``2x - 1``)."""
    return 2.0 * (frames.to(torch.float32) / 255.0) - 1.0


class WanImageToVideo(PipelineBackbone):
    samplers = tuple(SAMPLERS)
    folder = FOLDER
    text_tokens = TEXT_TOKENS
    pipeline_class = "WanImageToVideoPipeline"

    def __init__(self, settings: ModelSettings | None, components: dict):
        super().__init__(settings, make_pipeline(components))
        self._sigmas = training_sigmas(FLOW_SHIFT, TRAIN_TIMESTEPS)
        self._weights = training_weights(self._sigmas * TRAIN_TIMESTEPS)

    @classmethod
    def load(cls, settings: ModelSettings, parts: frozenset[str] = PARTS) -> WanImageToVideo:
        return cls(settings, load_components(settings.profile, settings.path, settings.seed, parts))

    @property
    def repeated_blocks(self) -> torch.nn.ModuleList:
        return self.pipe.transformer.blocks

    @torch.inference_mode()
    def encode_video(self, frames: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> normalised latents (T', 48, H/16, W/16), float32."""
        self.require(AUTOENCODER)
        video = pixels(torch.from_numpy(frames).permute(3, 0, 1, 2))
        return encode_video(self.pipe.vae, video[None].to(self.device, self.dtype), generator)[0].float()

    def conditioning(self, first_frame: torch.Tensor) -> torch.Tensor:
        """(3, H, W) uint8 first frame -> its latent (1, 48, 1, h, w) as the pipeline conditions on it."""
        with torch.no_grad():
            return image_latents(self.pipe.vae, pixels(first_frame[None]).to(self.device))

    def training_loss(
        self,
        denoiser: torch.nn.Module,
        latents: torch.Tensor,
        first_frame: torch.Tensor,
        prompt_embeds: torch.Tensor,
        generator: torch.Generator,
        image_dropout: float,
    ) -> torch.Tensor:
        self.require(AUTOENCODER, DENOISER)
        device, dtype = self.device, self.dtype
        clean = latents.permute(1, 0, 2, 3)[None].to(device, torch.float32)  # (1, 48, T', h, w)
        index = torch.randint(0, len(self._sigmas), (1,), generator=generator)
        sigma = self._sigmas[index].to(device)
        timestep = sigma * TRAIN_TIMESTEPS
        noise = randn_tensor(clean.shape, generator=generator, device=device, dtype=torch.float32)
        noisy = (1 - sigma) * clean + sigma * noise
        target = noise - clean
        image_kept = torch.rand((), generator=generator).item() >= image_dropout
        if image_kept:
            mask = first_frame_mask(noisy)
            noisy = with_condition(noisy, self.conditioning(first_frame), mask)
            timesteps = token_timesteps(mask, timestep, self.pipe.transformer.config.patch_size)
        else:
            timesteps = timestep
        prediction = denoiser(
            hidden_states=noisy.to(dtype),
            timestep=timesteps,
            encoder_hidden_states=prompt_embeds[None].to(device, dtype),
            return_dict=False,
        )[0]
        first = 1 if image_kept else 0  # the conditioning frame is given, not predicted
        error = (prediction[:, :, first:].float() - target[:, :, first:]) ** 2
        return error.mean() * self._weights[index].to(device)

    def positional_embedding(self, frames: int) -> str:
        return "none (3D rotary only)"

    def use_sampler(self, name: str) -> None:
        """The sampler ``name`` on the model's flow-matching schedule, with its shift (Euler names it
        ``shift``: from the config alone it would silently take 1)."""
        import diffusers

        config = self.pipe.scheduler.config
        shift = config.get("flow_shift", config.get("shift"))
        sampler = getattr(diffusers, SAMPLERS[name])
        if name == "euler":
            self.pipe.scheduler = sampler.from_config(config, shift=shift)
        else:
            self.pipe.scheduler = sampler.from_config(
                config, flow_shift=shift, use_flow_sigmas=True, prediction_type="flow_prediction"
            )
        self.sampler = name
