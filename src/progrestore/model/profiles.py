"""Model profiles: which CogVideoX image-to-video backbone, at which native size, from where.

- ``tiny`` / ``tiny-1.0``: randomly initialised models of the same diffusers classes
  (``CogVideoXTransformer3DModel``, ``AutoencoderKLCogVideoX``, ``CogVideoXDPMScheduler``, a small
  ``T5EncoderModel`` with a byte-level tokenizer made locally), built from the configs below with a fixed
  seed, in the 1.5 layout (``patch_size_t`` 2, ``ofs`` embedding, VAE ``invert_scale_latents``) or the 1.0
  layout (learned positional embedding, whose ``sample_frames`` differs from the clip's 9 frames as the
  real 5B-I2V's 49 does, so the tests see diffusers' sin-cos replacement). They run on 2 CPU cores; their
  results are plumbing, not quality, and are labelled so.
- ``cogvideox1.5-5b-i2v``: native 768x1360, the paper's clip size.
- ``cogvideox-5b-i2v``: native 480x720 (learned positional embedding); other sizes need
  ``model.drop_learned_pe``.
Real weights come from ``model.path`` (hub id or local folder); bf16 on GPU (fp16 gives black videos on
these models), fp32 on CPU. ``REAL_TRANSFORMERS`` and ``REAL_VAES`` are the published configs of the real
models, used to build their architecture offline with random weights (benchmarks and checks only).
"""

from __future__ import annotations

from dataclasses import dataclass

from progrestore.config import Section


@dataclass(frozen=True)
class Profile:
    name: str
    layout: str  # "1.0" or "1.5"
    tiny: bool
    height: int
    width: int
    default_path: str | None = None

    @property
    def learned_pe(self) -> bool:
        """The 1.0 layout adds a learned positional embedding that fixes the latent height and width."""
        return self.layout == "1.0"

    @property
    def label(self) -> str:
        if self.tiny:
            return f"{self.name}: randomly initialised tiny CogVideoX ({self.layout} layout) - plumbing, not quality"
        return f"{self.name}: LoRA-fine-tuned CogVideoX {self.layout} I2V"


PROFILES = {
    "tiny": Profile("tiny", "1.5", True, 96, 160),
    "tiny-1.0": Profile("tiny-1.0", "1.0", True, 96, 160),
    "cogvideox1.5-5b-i2v": Profile(
        "cogvideox1.5-5b-i2v", "1.5", False, 768, 1360, "THUDM/CogVideoX1.5-5B-I2V"
    ),
    "cogvideox-5b-i2v": Profile("cogvideox-5b-i2v", "1.0", False, 480, 720, "THUDM/CogVideoX-5b-I2V"),
}
TEXT_TOKENS = 226  # CogVideoX's T5 sequence length, kept for the tiny models too

TINY_TRANSFORMER = {
    "num_attention_heads": 2,
    "attention_head_dim": 16,  # rotary embeddings need a multiple of 16
    "in_channels": 8,
    "out_channels": 4,
    "time_embed_dim": 4,
    "text_embed_dim": 32,
    "num_layers": 2,
    "sample_width": 20,  # latent size of 160x96 (1/8)
    "sample_height": 12,
    "patch_size": 2,
    "temporal_compression_ratio": 4,
    "max_text_seq_length": TEXT_TOKENS,
    "use_rotary_positional_embeddings": True,
    "dropout": 0.0,
}
TINY_LAYOUTS = {
    "1.5": {
        "patch_size_t": 2,
        "ofs_embed_dim": 4,
        "patch_bias": False,
        "use_learned_positional_embeddings": False,
        "sample_frames": 9,
    },
    "1.0": {
        "patch_size_t": None,
        "ofs_embed_dim": None,
        "patch_bias": True,
        "use_learned_positional_embeddings": True,
        "sample_frames": 13,  # not the clip's 9 frames: diffusers then uses sin-cos, as for 5B-I2V (49)
    },
}
TINY_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["CogVideoXDownBlock3D"] * 4,
    "up_block_types": ["CogVideoXUpBlock3D"] * 4,
    "block_out_channels": [8, 8, 8, 8],
    "latent_channels": 4,
    "layers_per_block": 1,
    "norm_num_groups": 2,
    "temporal_compression_ratio": 4,
    "scaling_factor": 0.7,
}
# the schedule of the real models (the class defaults differ: epsilon, leading spacing)
SCHEDULER = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "timestep_spacing": "trailing",
    "snr_shift_scale": 1.0,
    "clip_sample": False,
    "set_alpha_to_one": True,
    "steps_offset": 0,
    "num_train_timesteps": 1000,
}
TINY_T5 = {
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 64,
    "num_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 8,
    "dropout_rate": 0.0,
}


# the published diffusers configs (transformer/config.json, vae/config.json of the hub folders)
_REAL_COMMON = {
    "num_attention_heads": 48,
    "attention_head_dim": 64,
    "in_channels": 32,
    "out_channels": 16,
    "time_embed_dim": 512,
    "text_embed_dim": 4096,
    "num_layers": 42,
    "temporal_compression_ratio": 4,
    "max_text_seq_length": TEXT_TOKENS,
    "use_rotary_positional_embeddings": True,
    "spatial_interpolation_scale": 1.875,
    "temporal_interpolation_scale": 1.0,
}
REAL_TRANSFORMERS = {
    "cogvideox1.5-5b-i2v": _REAL_COMMON
    | {
        "sample_width": 300,
        "sample_height": 300,
        "sample_frames": 81,
        "patch_size": 2,
        "patch_size_t": 2,
        "patch_bias": False,
        "ofs_embed_dim": 512,
        "use_learned_positional_embeddings": False,
    },
    "cogvideox-5b-i2v": _REAL_COMMON
    | {
        "sample_width": 90,
        "sample_height": 60,
        "sample_frames": 49,
        "patch_size": 2,
        "use_learned_positional_embeddings": True,
    },
}
REAL_VAES = {
    name: {
        "block_out_channels": [128, 256, 256, 512],
        "latent_channels": 16,
        "layers_per_block": 3,
        "temporal_compression_ratio": 4,
        "scaling_factor": 0.7,
        "invert_scale_latents": name == "cogvideox1.5-5b-i2v",
    }
    for name in REAL_TRANSFORMERS
}


def profile_from_params(model: Section) -> Profile:
    name = model.choice("profile", tuple(PROFILES))
    return PROFILES[name]
