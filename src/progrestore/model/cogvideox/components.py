"""Load the CogVideoX I2V components a stage uses from a pipeline folder (the same code for every profile),
and build a real profile's architecture with random weights for the benchmarks.

Each stage names the parts it uses (``model.specification.PARTS``): ``encode_text`` the tokenizer and
T5, ``encode_video`` the VAE, ``train`` and ``restore`` the transformer and the VAE. Only those are read
from disk and moved to the device: T5-XXL alone is 9.5 GB in bf16.
"""

from __future__ import annotations

import torch

from progrestore.model.cogvideox.configs import (
    REAL_T5,
    REAL_TRANSFORMERS,
    REAL_VAES,
    SCHEDULER,
    TINY_T5,
)
from progrestore.model.cogvideox.pipeline_folder import FOLDER, tiny_pipeline_folder
from progrestore.model.cogvideox.profiles import PROFILES
from progrestore.model.hub_folder import device_and_dtype, pretrained_components, seeded
from progrestore.model.profiles import Profile
from progrestore.model.specification import PARTS, TEXT


def drop_learned_positional_embedding(transformer) -> None:
    """CogVideoX-5B-I2V at sizes other than 480x720: remove the learned PE (training and inference alike)."""
    embed = transformer.patch_embed
    embed.use_learned_positional_embeddings = False
    embed.use_positional_embeddings = False
    if hasattr(embed, "pos_embedding"):
        del embed.pos_embedding
    transformer.register_to_config(use_learned_positional_embeddings=False)


def slice_learned_positional_embedding(transformer) -> None:
    """The official SAT behaviour for fewer frames than the table was learned for: the first rows of the
    learned table (``pos_embedding[:, :text_length + seq_length]``), i.e. its first latent frames, instead
    of diffusers' sin-cos replacement. diffusers asks ``_get_positional_embeddings`` for any frame count
    other than ``sample_frames``; this instance's answer is the slice."""
    embed = transformer.patch_embed

    def sliced(height: int, width: int, frames: int, device: torch.device | None = None) -> torch.Tensor:
        latent = (frames - 1) // embed.temporal_compression_ratio + 1
        learned = (embed.sample_frames - 1) // embed.temporal_compression_ratio + 1
        if (height, width) != (embed.sample_height, embed.sample_width) or latent > learned:
            raise ValueError(
                f"the learned positional embedding covers {learned} latent frames at "
                f"{embed.sample_height}x{embed.sample_width}, not {latent} at {height}x{width}"
            )
        patches = latent * (height // embed.patch_size) * (width // embed.patch_size)
        return embed.pos_embedding[:, : embed.max_text_seq_length + patches]

    embed._get_positional_embeddings = sliced


def use_positional_embedding(transformer, choice: str | None) -> None:
    """``model.positional_embedding`` on a loaded transformer: ``sincos`` (diffusers' own path) and None
    leave it as diffusers runs it."""
    if choice == "none":
        drop_learned_positional_embedding(transformer)
    elif choice == "sliced":
        slice_learned_positional_embedding(transformer)


def save_vae_memory(vae) -> None:
    """Slice and tile the VAE, as the official trainer and demo do: a 768x1360 clip's full-resolution
    activations otherwise dominate memory (1.5 on an H100: sampling peak 47.6 GB whole-frame, 17.0 GB
    tiled, in the same 43 s; BENCHMARKS.md)."""
    vae.enable_slicing()
    vae.enable_tiling()


def load_components(
    profile: Profile,
    path: str | None,
    seed: int,
    parts: frozenset[str] = PARTS,
    positional_embedding: str | None = None,
) -> dict:
    """The components of ``parts`` on the device, frozen; tiny profiles from their cached pipeline folder,
    real ones from ``path`` (default: the profile's hub id)."""
    device, dtype = device_and_dtype()
    folder = str(tiny_pipeline_folder(profile.layout, seed)) if profile.tiny else path or profile.default_path
    components = pretrained_components(folder, FOLDER, profile, FOLDER.part_components(parts), dtype)
    if components["vae"] is not None and not profile.tiny:
        save_vae_memory(components["vae"])
    if components["transformer"] is not None:
        use_positional_embedding(components["transformer"], positional_embedding)
    for name in ("text_encoder", "vae", "transformer"):
        if components[name] is not None:
            components[name] = components[name].to(device).eval().requires_grad_(False)  # dtype: loaded so
    return components


def tiny_components(layout: str, seed: int, parts: frozenset[str] = PARTS) -> dict:
    """The ``parts`` of a tiny model (``layout`` 1.5 or 1.0), in fp32 on the CPU, loaded from its folder."""
    return pretrained_components(
        str(tiny_pipeline_folder(layout, seed)),
        FOLDER,
        _tiny_profile(layout),
        FOLDER.part_components(parts),
        torch.float32,
    )


def _tiny_profile(layout: str) -> Profile:
    return next(p for p in PROFILES.values() if p.tiny and p.layout == layout)


def real_architecture_components(
    name: str,
    dtype: torch.dtype,
    device: str | torch.device = "cpu",
    num_layers: int | None = None,
    vae_width: int | None = None,
    seed: int = 0,
    real_text_encoder: bool = False,
) -> dict:
    """A real profile's architecture from its published config with random weights, for benchmarks and
    checks that cannot download weights: the transformer at its real widths and module names
    (``num_layers`` fewer blocks, if given), the VAE at its real latent layout (channels ``vae_width``
    wide, if given: it is frozen and outside the LoRA), and T5: the real T5-XXL with ``real_text_encoder``
    (what a stage that encodes text holds), else a tiny one (prompt embeddings are given directly)."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    transformer_config = REAL_TRANSFORMERS[name] | ({"num_layers": num_layers} if num_layers else {})
    vae_config = REAL_VAES[name] | (
        {"block_out_channels": [vae_width] * 4, "layers_per_block": 1} if vae_width else {}
    )
    tokenizer = tiny_components("1.5", 0, frozenset({TEXT}))[
        "tokenizer"
    ]  # ids below T5-XXL's vocabulary: any prompt encodes
    t5 = (
        REAL_T5
        if real_text_encoder
        else {"vocab_size": len(tokenizer), "pad_token_id": 0, "eos_token_id": 1, **TINY_T5}
    )
    modules = seeded(
        seed,
        dtype,
        lambda: {
            "transformer": CogVideoXTransformer3DModel(**transformer_config),
            "vae": AutoencoderKLCogVideoX(**vae_config),
            "text_encoder": T5EncoderModel(T5Config(**t5)),
        },
        device,
    )
    return {"tokenizer": tokenizer, **modules, "scheduler": CogVideoXDPMScheduler(**SCHEDULER)}


def make_pipeline(components: dict):
    """The I2V pipeline over ``components``; those a stage did not load are None."""
    from diffusers import CogVideoXImageToVideoPipeline

    pipe = CogVideoXImageToVideoPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    return pipe
