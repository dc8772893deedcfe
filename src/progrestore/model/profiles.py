"""Model profiles: which CogVideoX image-to-video backbone, at which size, from where.

- ``tiny`` / ``tiny-1.0``: randomly initialised models of the same diffusers classes
  (``CogVideoXTransformer3DModel``, ``AutoencoderKLCogVideoX``, ``CogVideoXDPMScheduler``, a small
  ``T5EncoderModel`` with a byte-level tokenizer made locally), built from the configs below with a fixed
  seed, in the 1.5 layout (``patch_size_t`` 2, ``ofs`` embedding, VAE ``invert_scale_latents``) or the 1.0
  layout. They run on 2 CPU cores; their results are plumbing, not quality, and are labelled so.
- ``cogvideox1.5-5b-i2v``: the paper's clip size, 768x1360 (the native size of CogVideoX1.5-5B-I2V).
- ``cogvideox-5b-i2v``: 480x720; with ``model.drop_learned_pe`` its learned positional embedding is removed
  (training and inference alike) so that it runs at 768x1360.
Real weights come from ``model.path`` (hub id or local folder); bf16 on GPU (fp16 gives black videos on
these models), fp32 on CPU.
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
    "sample_frames": 9,
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
    },
    "1.0": {
        "patch_size_t": None,
        "ofs_embed_dim": None,
        "patch_bias": True,
        "use_learned_positional_embeddings": True,
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


def profile_from_params(model: Section) -> Profile:
    name = model.choice("profile", tuple(PROFILES))
    return PROFILES[name]
