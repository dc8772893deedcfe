"""The published diffusers configs of the real CogVideoX I2V models, and the tiny random models' configs.

``REAL_TRANSFORMERS`` and ``REAL_VAES`` (transformer/config.json, vae/config.json of the hub folders) build
a real profile's architecture offline with random weights, for benchmarks and checks. The tiny models are
of the same classes: the 1.5 layout (``patch_size_t`` 2, ``ofs`` embedding, VAE ``invert_scale_latents``)
or the 1.0 layout (learned positional embedding, whose ``sample_frames`` differs from the clip's 9 frames
as the real 5B-I2V's 49 does, so the tests see diffusers' sin-cos replacement).
"""

from __future__ import annotations

SIZE_STEP = 16  # the VAE's 8x spatial compression times the transformer's 2x2 patch
TEXT_TOKENS = 226  # CogVideoX's T5 sequence length, kept for the tiny models too: the one place it is written

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


# T5-XXL v1.1 as the hub folders' text_encoder/config.json (about 4.76e9 parameters, 9.5 GB in bf16):
# what ``encode_text`` and ``progrestore restore`` hold, and the GPU benchmark builds where a stage does
REAL_T5 = {
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "feed_forward_proj": "gated-gelu",
    "layer_norm_epsilon": 1e-6,
    "dropout_rate": 0.1,
    "tie_word_embeddings": False,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
}

# The hub folders' layout (THUDM/CogVideoX1.5-5B-I2V, THUDM/CogVideoX-5b-I2V): model_index.json's entries
MODEL_INDEX = {
    "_class_name": "CogVideoXImageToVideoPipeline",
    "scheduler": ["diffusers", "CogVideoXDDIMScheduler"],
    "text_encoder": ["transformers", "T5EncoderModel"],
    "tokenizer": ["transformers", "T5Tokenizer"],
    "transformer": ["diffusers", "CogVideoXTransformer3DModel"],
    "vae": ["diffusers", "AutoencoderKLCogVideoX"],
}
# the classes model_index.json may name for a component (either scheduler may be shipped; the sampler is
# ours in any case); the others must be MODEL_INDEX's
ACCEPTED_CLASSES = {
    "scheduler": ("CogVideoXDDIMScheduler", "CogVideoXDPMScheduler"),
    "tokenizer": ("T5Tokenizer", "T5TokenizerFast"),  # one class in transformers 5
}
# tokenizer/: spiece.model and these three JSON files, no tokenizer.json (transformers converts the
# SentencePiece model at load time, which needs the sentencepiece and protobuf packages)
TOKENIZER_EXTRA_IDS = 100

# What tells the two layouts apart in the component configs (a missing key takes the class default)
LAYOUT_MARKERS = {
    "1.5": {
        "transformer": {"patch_size_t": 2, "use_learned_positional_embeddings": False},
        "vae": {"invert_scale_latents": True},
    },
    "1.0": {
        "transformer": {"patch_size_t": None, "use_learned_positional_embeddings": True},
        "vae": {"invert_scale_latents": False},
    },
}
MARKER_DEFAULTS = {
    "patch_size_t": None,
    "use_learned_positional_embeddings": True,
    "invert_scale_latents": False,
}
