"""Latents, first-frame conditioning and the flow-matching schedule shared by training and inference: the
one place where Wan2.2-TI2V's image conditioning is built.

TI2V conditions by replacement, not concatenation: the first latent frame of the noisy video is the clean
latent of the input image (the VAE's mode, normalised by the VAE's per-channel mean and std), and its
tokens get timestep 0 while the others get the sampling timestep. This follows diffusers'
``WanImageToVideoPipeline`` with ``expand_timesteps`` exactly (``prepare_latents`` and the denoising loop),
so that training feeds the transformer what the pipeline feeds it at inference. The VAE is causal: the
first latent frame of a clip depends on the first frame alone, so the image latent is the clip's.
"""

from __future__ import annotations

import torch


def normalise(vae, latents: torch.Tensor) -> torch.Tensor:
    """VAE latents (B, C, F, h, w) -> the transformer's scale: (z - mean) / std per channel, as the pipeline."""
    shape = (1, vae.config.z_dim, 1, 1, 1)
    mean = torch.tensor(vae.config.latents_mean).view(shape).to(latents.device, latents.dtype)
    inverse_std = 1.0 / torch.tensor(vae.config.latents_std).view(shape).to(latents.device, latents.dtype)
    return (latents - mean) * inverse_std


def encode_video(vae, video: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, 3, F, H, W) in [-1, 1] -> normalised latents (B, F', C, h, w): one sample of the posterior."""
    latents = vae.encode(video).latent_dist.sample(generator)
    return normalise(vae, latents).permute(0, 2, 1, 3, 4).contiguous()


def image_latents(vae, image: torch.Tensor) -> torch.Tensor:
    """First frames (B, 3, H, W) in [-1, 1] -> their normalised latents (B, C, 1, h, w): the VAE's mode,
    as ``prepare_latents`` computes the condition (``retrieve_latents(..., sample_mode="argmax")``)."""
    latents = vae.encode(image[:, :, None].to(vae.dtype)).latent_dist.mode()
    return normalise(vae, latents.to(torch.float32))


def first_frame_mask(latents: torch.Tensor) -> torch.Tensor:
    """(1, 1, F', h, w): 0 on the first latent frame (the condition's), 1 elsewhere (the pipeline's mask)."""
    mask = torch.ones((1, 1, *latents.shape[2:]), dtype=latents.dtype, device=latents.device)
    mask[:, :, 0] = 0
    return mask


def with_condition(latents: torch.Tensor, condition: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The transformer's input: ``condition`` on the first latent frame, ``latents`` elsewhere."""
    return (1 - mask) * condition + mask * latents


def token_timesteps(
    mask: torch.Tensor, timestep: torch.Tensor, patch_size: tuple[int, int, int]
) -> torch.Tensor:
    """(1, tokens) timesteps: 0 for the first frame's tokens, ``timestep`` for the others; the pipeline's
    ``first_frame_mask[0][0][:, ::2, ::2] * t`` for the 2x2 patch, written for the transformer's patch."""
    _, p_h, p_w = patch_size
    return (mask[0, 0][:, ::p_h, ::p_w] * timestep).flatten()[None]


def training_sigmas(shift: float, steps: int) -> torch.Tensor:
    """The ``steps`` noise levels training draws from, highest first: ``linspace(1, 0, steps + 1)[:-1]``
    shifted by ``shift * s / (1 + (shift - 1) s)`` (DiffSynth-Studio's ``FlowMatchScheduler`` with
    ``sigma_min`` 0 and ``extra_one_step``, which its Wan trainer uses with the sampling shift)."""
    sigmas = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)[:-1]
    return (shift * sigmas / (1 + (shift - 1) * sigmas)).to(torch.float32)


def training_weights(timesteps: torch.Tensor) -> torch.Tensor:
    """DiffSynth-Studio's per-timestep loss weight for Wan: a Gaussian bump over the timestep index,
    ``exp(-2 ((t - n/2) / n)^2)``, shifted to a minimum of 0 and scaled to mean 1."""
    steps = len(timesteps)
    bump = torch.exp(-2 * ((timesteps - steps / 2) / steps) ** 2)
    shifted = bump - bump.min()
    return shifted * (steps / shifted.sum())
