"""The published diffusers configs of Wan2.2-TI2V-5B, and the tiny random model's configs.

``REAL_TRANSFORMER``, ``REAL_VAE``, ``REAL_UMT5`` and ``SCHEDULER`` are the hub folder's
(``Wan-AI/Wan2.2-TI2V-5B-Diffusers``: transformer/config.json, vae/config.json, text_encoder/config.json,
scheduler/scheduler_config.json); they build the real architecture offline with random weights, for
benchmarks and checks. The tiny model is of the same classes and the same TI2V layout: 48 latent channels,
the VAE's 2x2 pixel patch and 16x spatial, 4x temporal compression, the 1x2x2 transformer patch.
"""

from __future__ import annotations

SIZE_STEP = 32  # the VAE's 16x spatial compression times the transformer's 2x2 patch
TEXT_TOKENS = (
    512  # Wan's UMT5 sequence length (``text_len``), kept for the tiny model: the one place it is written
)
# the flow-matching shift of Wan2.2-TI2V-5B (the scheduler's ``flow_shift``, the official ``sample_shift``);
# training draws its noise levels on the same shifted schedule
FLOW_SHIFT = 5.0
TRAIN_TIMESTEPS = 1000

# transformer/config.json: diffusers' scripts/convert_wan_to_diffusers.py ("Wan2.2-TI2V-5B"), with the
# class defaults save_pretrained writes; the official wan/configs/wan_ti2v_5B.py agrees (dim 3072 = 24 x 128)
REAL_TRANSFORMER = {
    "added_kv_proj_dim": None,
    "attention_head_dim": 128,
    "cross_attn_norm": True,
    "eps": 1e-06,
    "ffn_dim": 14336,
    "freq_dim": 256,
    "image_dim": None,
    "in_channels": 48,
    "num_attention_heads": 24,
    "num_layers": 30,
    "out_channels": 48,
    "patch_size": [1, 2, 2],
    "pos_embed_seq_len": None,
    "qk_norm": "rms_norm_across_heads",
    "rope_max_seq_len": 1024,
    "text_dim": 4096,
}
# vae/config.json: the same script's ``vae22_diffusers_config`` and the class defaults
REAL_VAE = {
    "attn_scales": [],
    "base_dim": 160,
    "decoder_base_dim": 256,
    "dim_mult": [1, 2, 4, 4],
    "dropout": 0.0,
    "in_channels": 12,  # 3 colours x the 2x2 pixel patch
    "is_residual": True,
    "num_res_blocks": 2,
    "out_channels": 12,
    "patch_size": 2,
    "scale_factor_spatial": 16,
    "scale_factor_temporal": 4,
    "temperal_downsample": [False, True, True],
    "z_dim": 48,
    "latents_mean": [
        -0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557,
        -0.1382, 0.0542, 0.2813, 0.0891, 0.1570, -0.0098, 0.0375, -0.1825,
        -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108, -0.2158, 0.2502,
        -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.1230,
        -0.0313, -0.1649, 0.0117, 0.0723, -0.2839, -0.2083, -0.0520, 0.3748,
        0.0152, 0.1957, 0.1433, -0.2944, 0.3573, -0.0548, -0.1681, -0.0667,
    ],
    "latents_std": [
        0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013,
        0.8158, 1.0344, 0.5894, 1.0901, 0.6885, 0.6165, 0.8454, 0.4978,
        0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
        0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093,
        0.5709, 0.6065, 0.6415, 0.4944, 0.5726, 1.2042, 0.5458, 1.6887,
        0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744,
    ],
}  # fmt: skip
# text_encoder/config.json: google/umt5-xxl's encoder (the conversion script loads it as is)
REAL_UMT5 = {
    "d_model": 4096,
    "d_ff": 10240,
    "d_kv": 64,
    "num_heads": 64,
    "num_layers": 24,
    "vocab_size": 256384,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "layer_norm_epsilon": 1e-06,
    "feed_forward_proj": "gated-gelu",
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
    "tie_word_embeddings": False,
}
# scheduler/scheduler_config.json: UniPC on the flow-matching schedule (the script's arguments; the rest
# are the class defaults)
SCHEDULER = {
    "num_train_timesteps": TRAIN_TIMESTEPS,
    "prediction_type": "flow_prediction",
    "use_flow_sigmas": True,
    "flow_shift": FLOW_SHIFT,
}

TINY_TRANSFORMER = {
    "patch_size": [1, 2, 2],
    "num_attention_heads": 2,
    "attention_head_dim": 12,  # the 3D rotary embedding splits it in three: a multiple of 6
    "in_channels": 48,
    "out_channels": 48,
    "text_dim": 32,
    "freq_dim": 32,
    "ffn_dim": 64,
    "num_layers": 2,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "image_dim": None,
    "added_kv_proj_dim": None,
    "rope_max_seq_len": 1024,
}
TINY_VAE_WIDTHS = {"base_dim": 8, "decoder_base_dim": 8, "num_res_blocks": 1}  # the rest: the real VAE's
TINY_UMT5 = {
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 64,
    "num_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "dropout_rate": 0.0,
    "feed_forward_proj": "gated-gelu",
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
}

# The hub folder's layout: model_index.json's entries. The published index names WanPipeline (TI2V does
# text- and image-to-video); the image-to-video pipeline over the same components is ours.
PIPELINE_CLASSES = ("WanPipeline", "WanImageToVideoPipeline")
MODEL_INDEX = {
    "scheduler": ["diffusers", "UniPCMultistepScheduler"],
    "text_encoder": ["transformers", "UMT5EncoderModel"],
    "tokenizer": ["transformers", "T5TokenizerFast"],
    "transformer": ["diffusers", "WanTransformer3DModel"],
    "vae": ["diffusers", "AutoencoderKLWan"],
}
PIPELINE_CONFIG = {"boundary_ratio": None, "expand_timesteps": True}  # model_index.json's own keys
ACCEPTED_CLASSES = {
    "scheduler": (
        "UniPCMultistepScheduler",
        "FlowMatchEulerDiscreteScheduler",
        "DPMSolverMultistepScheduler",
    ),
    "tokenizer": ("T5TokenizerFast", "T5Tokenizer", "AutoTokenizer"),
}
# What tells TI2V from the other Wan models (2.1, 2.2-A14B) in the folder's configs
LAYOUT_MARKERS = {
    "2.2": {
        "": {"expand_timesteps": True},
        "transformer": {"in_channels": 48, "image_dim": None},
        "vae": {"z_dim": 48, "scale_factor_spatial": 16},
    },
}
MARKER_DEFAULTS = {"expand_timesteps": False, "image_dim": None, "scale_factor_spatial": 8}

TOKENIZER_EXTRA_IDS = 300  # umt5's <extra_id_0..299>


def tiny_vae_config() -> dict:
    """The real VAE's layout (48 channels, its patch, compression and latent statistics), narrow."""
    return REAL_VAE | TINY_VAE_WIDTHS
