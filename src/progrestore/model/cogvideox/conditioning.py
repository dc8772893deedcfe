"""Latents and rotary tables shared by training and inference: the one place where the I2V conditioning is built.

The image conditioning follows diffusers' ``CogVideoXImageToVideoPipeline.prepare_latents`` exactly, so
that what the LoRA is trained on is what the pipeline feeds it at inference: the first frame is VAE-
encoded (after optional pixel noise, a training augmentation), scaled by the VAE's factor (multiplied; for
the 1.5 VAE, ``invert_scale_latents``, *divided*, as the pipeline does, whereas the official trainer
multiplies: the known 2x mismatch is avoided by using this function on both sides), zero-padded to the
clip's latent frame count, and, for 1.5 (``patch_size_t`` 2), padded to an even count the pipeline's way.
Video latents are padded for 1.5 by prepending copies of latent frame 0: the pipeline drops the first
latent frame before decoding.
"""

from __future__ import annotations

import torch
from diffusers.utils.torch_utils import randn_tensor


def latent_frames(num_frames: int, temporal_ratio: int = 4) -> int:
    return (num_frames - 1) // temporal_ratio + 1


def padding_frames(count: int, patch_size_t: int | None) -> int:
    """Extra latent frames 1.5 needs so the count divides ``patch_size_t`` (the pipeline's additional_frames)."""
    return 0 if not patch_size_t or count % patch_size_t == 0 else patch_size_t - count % patch_size_t


def encode_video(vae, video: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, C, F, H, W) in [-1, 1] -> scaled latents (B, F', C', h, w), as the finetune trainers do."""
    latents = vae.encode(video).latent_dist.sample(generator) * vae.config.scaling_factor
    return latents.permute(0, 2, 1, 3, 4).contiguous()


def pad_video_latents(latents: torch.Tensor, patch_size_t: int | None) -> torch.Tensor:
    extra = padding_frames(latents.shape[1], patch_size_t)
    return torch.cat([latents[:, :1].repeat(1, extra, 1, 1, 1), latents], dim=1) if extra else latents


def image_latents(
    vae,
    image: torch.Tensor,
    num_frames: int,
    patch_size_t: int | None,
    generator: torch.Generator | None = None,
    noise_sigma: torch.Tensor | None = None,
) -> torch.Tensor:
    """First frames (B, C, H, W) in [-1, 1] -> conditioning latents (B, F', C', h, w) for ``num_frames``."""
    if noise_sigma is not None:
        # drawn on the generator's device, then moved: a CPU generator cannot fill a CUDA tensor
        noise = randn_tensor(image.shape, generator=generator, device=image.device, dtype=image.dtype)
        image = image + noise * noise_sigma.view(-1, 1, 1, 1).to(image.dtype)
    encoded = [vae.encode(img[None, :, None]).latent_dist.sample(generator) for img in image]
    latents = torch.cat(encoded).permute(0, 2, 1, 3, 4)  # (B, 1, C', h, w)
    factor = vae.config.scaling_factor
    latents = (
        1 / factor * latents if vae.config.invert_scale_latents else factor * latents
    )  # pipeline's order
    count = latent_frames(num_frames) + padding_frames(latent_frames(num_frames), patch_size_t)
    padding = latents.new_zeros((latents.shape[0], count - 1, *latents.shape[2:]))
    latents = torch.cat([latents, padding], dim=1)
    if patch_size_t:  # the pipeline prepends count % patch_size_t first frames (none once count is even)
        latents = torch.cat([latents[:, : latents.shape[1] % patch_size_t], latents], dim=1)
    return latents


def model_extras(transformer, latents: torch.Tensor) -> torch.Tensor | None:
    """The ``ofs`` input of the 1.5 transformer (2.0, as the pipeline passes), None for 1.0."""
    return None if transformer.config.ofs_embed_dim is None else latents.new_full((1,), fill_value=2.0)


def rotary_embedding(transformer_config, vae_config, height: int, width: int, latent_count: int, device):
    """(cos, sin) rotary tables of the transformer for a clip of ``latent_count`` latent frames at
    ``height`` x ``width`` pixels, computed as the I2V pipeline does for its own sampling (1.0: the grid
    cropped from the base size; 1.5: sliced from the maximum size, over temporal patches)."""
    from diffusers.models.embeddings import get_3d_rotary_pos_embed

    spatial = 2 ** (len(vae_config.block_out_channels) - 1)  # the VAE's downsampling (8)
    p, p_t = transformer_config.patch_size, transformer_config.patch_size_t
    grid = (height // (spatial * p), width // (spatial * p))
    base = (transformer_config.sample_height // p, transformer_config.sample_width // p)
    if p_t is None:
        return get_3d_rotary_pos_embed(
            embed_dim=transformer_config.attention_head_dim,
            crops_coords=_centre_crop_of_grid(grid, base),
            grid_size=grid,
            temporal_size=latent_count,
            device=device,
        )
    return get_3d_rotary_pos_embed(
        embed_dim=transformer_config.attention_head_dim,
        crops_coords=None,
        grid_size=grid,
        temporal_size=(latent_count + p_t - 1) // p_t,
        grid_type="slice",
        max_size=base,
        device=device,
    )


def _centre_crop_of_grid(
    grid: tuple[int, int], base: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, left), (bottom, right)) of ``grid`` resized to fit ``base`` (height, width), centred."""
    height, width = grid
    base_height, base_width = base
    if height / width > base_height / base_width:
        resized = (base_height, round(base_height / height * width))
    else:
        resized = (round(base_width / width * height), base_width)
    top = round((base_height - resized[0]) / 2.0)
    left = round((base_width - resized[1]) / 2.0)
    return (top, left), (top + resized[0], left + resized[1])
