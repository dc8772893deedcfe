"""CogVideoX image-to-video (1.0 and 1.5 layouts, tiny and 5B) as a :class:`ModelSpecification`.

Training loss: the v-prediction written as x0 with weight 1/(1 - alpha_bar_t), as the official trainer
and diffusers' example do (equal to MSE on v). The conditioning image gets pixel noise of
sigma = exp(N(-3, 0.5)) and is dropped with probability ``image_dropout``. Sampling: the I2V pipeline
with the sampler ``restore.scheduler`` made from the model's own noise schedule with trailing timestep
spacing, as the official demo does, whatever scheduler class a hub folder ships (DDIM for 1.5).
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

from progrestore.model.cogvideox.components import FOLDER, load_components, make_pipeline
from progrestore.model.cogvideox.conditioning import (
    encode_video,
    image_latents,
    model_extras,
    pad_video_latents,
    rotary_embedding,
)
from progrestore.model.cogvideox.configs import TEXT_TOKENS
from progrestore.model.pipeline_backbone import PipelineBackbone
from progrestore.model.settings import ModelSettings
from progrestore.model.specification import (
    AUTOENCODER,
    DENOISER,
    PARTS,
    Sampling,
)

SAMPLERS = {"dpm": "CogVideoXDPMScheduler", "ddim": "CogVideoXDDIMScheduler"}


class CogVideoXImageToVideo(PipelineBackbone):
    samplers = tuple(SAMPLERS)
    dynamic_cfg = True  # the pipeline's ``use_dynamic_cfg``
    folder = FOLDER
    text_tokens = TEXT_TOKENS
    pipeline_class = "CogVideoXImageToVideoPipeline"

    def __init__(self, settings: ModelSettings | None, components: dict):
        super().__init__(settings, make_pipeline(components))

    @classmethod
    def load(cls, settings: ModelSettings, parts: frozenset[str] = PARTS) -> CogVideoXImageToVideo:
        components = load_components(
            settings.profile, settings.path, settings.seed, parts, settings.positional_embedding
        )
        return cls(settings, components)

    @property
    def repeated_blocks(self) -> torch.nn.ModuleList:
        return self.pipe.transformer.transformer_blocks

    @torch.inference_mode()
    def encode_video(self, frames: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> scaled latents (T', C, h, w), float32."""
        self.require(AUTOENCODER)
        video = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1.0
        return encode_video(self.pipe.vae, video[None].to(self.device, self.dtype), generator)[0].float()

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
        pipe, device, dtype = self.pipe, self.device, self.dtype
        config = pipe.transformer.config  # ``denoiser`` may be wrapped (DDP); the config is the pipeline's
        frames = (latents.shape[0] - 1) * pipe.vae.config.temporal_compression_ratio + 1
        latents = pad_video_latents(latents[None].to(device, dtype), config.patch_size_t)
        image = (first_frame[None].to(device, dtype) / 127.5) - 1.0
        sigma = torch.exp(torch.normal(-3.0, 0.5, (1,), generator=generator)).to(device, dtype)
        with torch.no_grad():
            conditioning = image_latents(
                pipe.vae, image, frames, config.patch_size_t, generator, noise_sigma=sigma
            )
        if torch.rand((), generator=generator).item() < image_dropout:
            conditioning = torch.zeros_like(conditioning)
        timestep = torch.randint(0, pipe.scheduler.config.num_train_timesteps, (1,), generator=generator).to(
            device
        )
        noise = randn_tensor(latents.shape, generator=generator, device=device, dtype=torch.float32).to(dtype)
        noisy = pipe.scheduler.add_noise(latents, noise, timestep)
        height, width = image.shape[-2:]
        rotary = rotary_embedding(config, pipe.vae.config, height, width, latents.shape[1], device)
        prediction = denoiser(
            hidden_states=torch.cat([noisy, conditioning], dim=2),
            encoder_hidden_states=prompt_embeds[None].to(device, dtype),
            timestep=timestep,
            ofs=model_extras(pipe.transformer, latents),
            image_rotary_emb=rotary,
            return_dict=False,
        )[0]
        predicted_x0 = pipe.scheduler.get_velocity(prediction, noisy, timestep)
        alphas = pipe.scheduler.alphas_cumprod.to(device)[timestep]
        weights = (1.0 / (1.0 - alphas)).view(-1, 1, 1, 1, 1)
        return torch.mean(weights * (predicted_x0.float() - latents.float()) ** 2)

    def positional_embedding(self, frames: int) -> str:
        """What absolute embedding a ``frames``-frame clip gets (``model.positional_embedding``): 5B-I2V
        learned its table for 49 frames; for any other count diffusers' patch embedding silently adds a 3D
        sin-cos embedding instead (``sincos``, kept by default: what every diffusers-based finetune of
        5B-I2V at 9 frames runs), or the official SAT code's first rows of the table (``sliced``)."""
        embed = self.pipe.transformer.patch_embed
        if embed.use_learned_positional_embeddings:
            if embed.sample_frames == frames:
                return "learned"
            if "_get_positional_embeddings" in vars(embed):  # slice_learned_positional_embedding's
                return (
                    f"learned, sliced (SAT: the table's first rows, trained for {embed.sample_frames} frames)"
                )
            return f"sin-cos (diffusers replaces the learned one: trained for {embed.sample_frames} frames, not {frames})"
        return "sin-cos" if embed.use_positional_embeddings else "none (rotary only)"

    def sampling_options(self, sampling: Sampling) -> dict:
        return {"use_dynamic_cfg": sampling.dynamic_cfg}

    def use_sampler(self, name: str) -> None:
        """The sampler ``name`` on the model's noise schedule, with trailing spacing."""
        import diffusers

        sampler = getattr(diffusers, SAMPLERS[name])
        self.pipe.scheduler = sampler.from_config(self.pipe.scheduler.config, timestep_spacing="trailing")
        self.sampler = name
