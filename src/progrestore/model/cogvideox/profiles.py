"""The CogVideoX family and its profiles (light: the generic code imports this to list the profiles).

- ``tiny`` / ``tiny-1.0``: randomly initialised models of the same diffusers classes as CogVideoX 1.5 /
  1.0 (a small ``T5EncoderModel`` with a SentencePiece tokenizer trained locally), built with a fixed
  seed and saved in the hub's folder layout, from which they load as a real profile does.
  They run on 2 CPU cores; their results are plumbing, not quality, and are labelled so.
- ``cogvideox1.5-5b-i2v``: native 768x1360, the paper's clip size.
- ``cogvideox-5b-i2v``: native 480x720 (learned positional embedding); other sizes need
  ``model.positional_embedding: none``.
Real weights come from ``model.path`` (hub id or local folder); bf16 on GPU, fp32 on CPU.
"""

from __future__ import annotations

from progrestore.model.cogvideox.configs import SIZE_STEP, TEXT_TOKENS
from progrestore.model.profiles import Family, Profile, register

FAMILY = Family(
    "cogvideox",
    architecture="CogVideoX",
    specification="progrestore.model.cogvideox.specification:CogVideoXImageToVideo",
    frames=(8, 1),
    frames_reason="CogVideoX's VAE",
    size_step=SIZE_STEP,
    text_tokens=TEXT_TOKENS,
    # ``model.positional_embedding`` for a profile with a learned table (CogVideoX-5B-I2V, trained for 49
    # frames), at 9 frames. ``sincos`` (default): diffusers' replacement by a 3D sin-cos embedding, which
    # every diffusers-based finetune (the official one included) trains and samples with; ``sliced``: the
    # official SAT code's first rows of the learned table; ``none``: no absolute embedding (rotary only),
    # for other sizes.
    positional_embeddings=("sincos", "sliced", "none"),
    fixed_size_embeddings=("sincos", "sliced"),
)

PROFILES = register(
    FAMILY,
    Profile("tiny", FAMILY, layout="1.5", tiny=True, height=96, width=160),
    Profile("tiny-1.0", FAMILY, layout="1.0", tiny=True, height=96, width=160, learned_pe=True),
    Profile(
        "cogvideox1.5-5b-i2v",
        FAMILY,
        layout="1.5",
        tiny=False,
        height=768,
        width=1360,
        default_path="THUDM/CogVideoX1.5-5B-I2V",
    ),
    Profile(
        "cogvideox-5b-i2v",
        FAMILY,
        layout="1.0",
        tiny=False,
        height=480,
        width=720,
        learned_pe=True,
        default_path="THUDM/CogVideoX-5b-I2V",
    ),
)
