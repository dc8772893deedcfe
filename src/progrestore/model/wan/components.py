"""Load the Wan TI2V components a stage uses from a pipeline folder (the same code for both profiles), and
build the real architecture with random weights for the benchmarks.

Each stage loads only the parts it uses (``model.specification.PARTS``): UMT5-XXL alone is 11 GB in bf16.
"""

from __future__ import annotations

import torch

from progrestore.model.hub_folder import FolderLayout, device_and_dtype, pretrained_components, seeded
from progrestore.model.profiles import Profile
from progrestore.model.specification import PARTS, TEXT
from progrestore.model.wan.configs import (
    ACCEPTED_CLASSES,
    LAYOUT_MARKERS,
    MARKER_DEFAULTS,
    MODEL_INDEX,
    PIPELINE_CLASSES,
    PIPELINE_CONFIG,
    REAL_TRANSFORMER,
    REAL_UMT5,
    REAL_VAE,
    SCHEDULER,
    TINY_UMT5,
)
from progrestore.model.wan.pipeline_folder import tiny_pipeline_folder
from progrestore.model.wan.profiles import PROFILES

FOLDER = FolderLayout(
    architecture="Wan TI2V",
    pipeline_classes=PIPELINE_CLASSES,
    components={name: tuple(entry) for name, entry in MODEL_INDEX.items()},
    accepted_classes=ACCEPTED_CLASSES,
    markers=LAYOUT_MARKERS,
    marker_defaults=MARKER_DEFAULTS,
)


def load_components(profile: Profile, path: str | None, seed: int, parts: frozenset[str] = PARTS) -> dict:
    """The components of ``parts`` on the device, frozen; the tiny profile from its cached pipeline folder,
    the real one from ``path`` (default: the profile's hub id)."""
    device, dtype = device_and_dtype()
    folder = str(tiny_pipeline_folder(FOLDER, seed)) if profile.tiny else path or profile.default_path
    components = pretrained_components(folder, FOLDER, profile, FOLDER.part_components(parts), dtype)
    if components["vae"] is not None and not profile.tiny:
        components["vae"].enable_tiling()  # a 704x1280 clip's full-resolution activations otherwise dominate
    for name in ("text_encoder", "vae", "transformer"):
        if components[name] is not None:
            components[name] = components[name].to(device).eval().requires_grad_(False)  # dtype: loaded so
    return components


def tiny_components(seed: int = 0, parts: frozenset[str] = PARTS) -> dict:
    """The ``parts`` of the tiny model, in fp32 on the CPU, loaded from its folder."""
    profile = next(p for p in PROFILES.values() if p.tiny)
    return pretrained_components(
        str(tiny_pipeline_folder(FOLDER, seed)), FOLDER, profile, FOLDER.part_components(parts), torch.float32
    )


def real_architecture_components(
    dtype: torch.dtype,
    device: str | torch.device = "cpu",
    num_layers: int | None = None,
    vae_width: int | None = None,
    seed: int = 0,
) -> dict:
    """Wan2.2-TI2V-5B's architecture from its published configs with random weights, for benchmarks and
    checks that cannot download weights: the transformer at its real widths and module names (``num_layers``
    fewer blocks, if given), the VAE at its real latent layout (``vae_width`` narrow, if given: it is frozen
    and outside the LoRA), and a tiny UMT5 (prompt embeddings are given directly, at the real width)."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    transformer_config = REAL_TRANSFORMER | ({"num_layers": num_layers} if num_layers else {})
    vae_config = REAL_VAE | ({"base_dim": vae_width, "decoder_base_dim": vae_width} if vae_width else {})
    tokenizer = tiny_components(0, frozenset({TEXT}))["tokenizer"]
    umt5 = {**TINY_UMT5, "d_model": REAL_UMT5["d_model"], "vocab_size": len(tokenizer)}
    modules = seeded(
        seed,
        dtype,
        lambda: {
            "transformer": WanTransformer3DModel(**transformer_config),
            "vae": AutoencoderKLWan(**vae_config),
            "text_encoder": UMT5EncoderModel(UMT5Config(**umt5)),
        },
        device,
    )
    return {"tokenizer": tokenizer, **modules, "scheduler": UniPCMultistepScheduler(**SCHEDULER)}


def make_pipeline(components: dict):
    """The image-to-video pipeline over ``components`` in the TI2V mode (first-frame latent at timestep 0);
    those a stage did not load are None."""
    from diffusers import WanImageToVideoPipeline

    pipe = WanImageToVideoPipeline(
        **components, image_encoder=None, image_processor=None, transformer_2=None, **PIPELINE_CONFIG
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
