"""The Wan family and its profiles (light: the generic code imports this to list the profiles).

- ``wan-tiny``: a randomly initialised model of the same diffusers classes and the same TI2V layout as
  Wan2.2-TI2V-5B (48 latent channels, the 16x16x4 VAE, the first frame's latent put in at timestep 0),
  with a small UMT5 encoder and a SentencePiece tokenizer trained locally, saved in the hub's folder
  layout and loaded from it as the real profile is. Plumbing, not quality, and labelled so.
- ``wan2.2-ti2v-5b``: native 704x1280 (the clips' 768x1360 is framed to it), text budget 512 tokens.
Real weights come from ``model.path`` (hub id or local folder); bf16 on GPU, fp32 on CPU.
"""

from __future__ import annotations

from progrestore.model.profiles import Family, Profile, register
from progrestore.model.wan.configs import SIZE_STEP, TEXT_TOKENS

FAMILY = Family(
    "wan",
    architecture="Wan",
    specification="progrestore.model.wan.specification:WanImageToVideo",
    frames=(4, 1),
    frames_reason="Wan's VAE",
    size_step=SIZE_STEP,
    text_tokens=TEXT_TOKENS,
)

PROFILES = register(
    FAMILY,
    Profile("wan-tiny", FAMILY, layout="2.2", tiny=True, height=96, width=160),
    Profile(
        "wan2.2-ti2v-5b",
        FAMILY,
        layout="2.2",
        tiny=False,
        height=704,
        width=1280,
        default_path="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
    ),
)
