"""Build (tiny, seeded; real architecture, random) or load (pretrained) the CogVideoX I2V components."""

from __future__ import annotations

from pathlib import Path

import torch

from progrestore.errors import InputError
from progrestore.model.cogvideox.configs import (
    REAL_TRANSFORMERS,
    REAL_VAES,
    SCHEDULER,
    TEXT_TOKENS,
    TINY_LAYOUTS,
    TINY_T5,
    TINY_TRANSFORMER,
    TINY_VAE,
)
from progrestore.model.profiles import Profile


def device_and_dtype() -> tuple[torch.device, torch.dtype]:
    """bf16 on GPU (fp16 gives black videos on CogVideoX 5B and 1.5), fp32 on CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda"), torch.bfloat16
    return torch.device("cpu"), torch.float32


def byte_tokenizer():
    """A T5-style tokenizer with one token per byte: handles any prompt, needs no download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>"]
    vocab = {token: i for i, token in enumerate(specials + sorted(pre_tokenizers.ByteLevel.alphabet()))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=TEXT_TOKENS,
    )


def tiny_components(layout: str, seed: int) -> dict:
    """Randomly initialised components of the real classes; the same seed gives the same weights."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    tokenizer = byte_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = CogVideoXTransformer3DModel(**TINY_TRANSFORMER, **TINY_LAYOUTS[layout])
        vae = AutoencoderKLCogVideoX(**TINY_VAE, invert_scale_latents=layout == "1.5")
        text_encoder = T5EncoderModel(
            T5Config(
                vocab_size=len(tokenizer), pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, **TINY_T5
            )
        )
    return {
        "tokenizer": tokenizer,
        "text_encoder": text_encoder.eval(),
        "vae": vae.eval(),
        "transformer": transformer.eval(),
        "scheduler": CogVideoXDPMScheduler(**SCHEDULER),
    }


def real_architecture_components(
    name: str,
    dtype: torch.dtype,
    device: str | torch.device = "cpu",
    num_layers: int | None = None,
    vae_width: int | None = None,
    seed: int = 0,
) -> dict:
    """A real profile's architecture from its published config with random weights, for benchmarks and
    checks that cannot download weights: the transformer at its real widths and module names
    (``num_layers`` fewer blocks, if given), the VAE at its real latent layout (channels ``vae_width``
    wide, if given: it is frozen and outside the LoRA), a tiny text encoder (give prompt embeddings)."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    transformer_config = REAL_TRANSFORMERS[name] | ({"num_layers": num_layers} if num_layers else {})
    vae_config = REAL_VAES[name] | (
        {"block_out_channels": [vae_width] * 4, "layers_per_block": 1} if vae_width else {}
    )
    tokenizer = byte_tokenizer()
    default = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        torch.set_default_dtype(dtype)  # built in ``dtype``: a 5B model in fp32 first would need 22 GB
        try:
            transformer = CogVideoXTransformer3DModel(**transformer_config)
            vae = AutoencoderKLCogVideoX(**vae_config)
            text_encoder = T5EncoderModel(
                T5Config(vocab_size=len(tokenizer), pad_token_id=0, eos_token_id=1, **TINY_T5)
            )
        finally:
            torch.set_default_dtype(default)
    return {
        "tokenizer": tokenizer,
        "text_encoder": text_encoder.eval().requires_grad_(False),
        "vae": vae.eval().requires_grad_(False),
        "transformer": transformer.eval().requires_grad_(False),
        "scheduler": CogVideoXDPMScheduler(**SCHEDULER),
    }


def pretrained_components(path: str, dtype: torch.dtype) -> dict:
    from diffusers import CogVideoXImageToVideoPipeline

    local = Path(path).expanduser()
    try:
        pipe = CogVideoXImageToVideoPipeline.from_pretrained(
            str(local) if local.exists() else path, dtype=dtype
        )
    except (OSError, ValueError) as err:
        raise InputError(
            f"model.path: cannot load {path!r} ({err.__class__.__name__}): give a local folder with the "
            "CogVideoX I2V weights (model_index.json, transformer/, vae/, text_encoder/, tokenizer/, scheduler/), "
            "or a hub id on a machine that can reach the hub"
        ) from err
    return dict(pipe.components)


def drop_learned_positional_embedding(transformer) -> None:
    """CogVideoX-5B-I2V at sizes other than 480x720: remove the learned PE (training and inference alike)."""
    embed = transformer.patch_embed
    embed.use_learned_positional_embeddings = False
    embed.use_positional_embeddings = False
    if hasattr(embed, "pos_embedding"):
        del embed.pos_embedding
    transformer.register_to_config(use_learned_positional_embeddings=False)


def save_vae_memory(vae) -> None:
    """Slice and tile the VAE, as the official trainer and demo do: a 768x1360 clip's full-resolution
    activations otherwise dominate memory (1.5 on an H100: sampling peak 47.6 GB whole-frame, 17.0 GB
    tiled, in the same 43 s; BENCHMARKS.md)."""
    vae.enable_slicing()
    vae.enable_tiling()


def load_components(profile: Profile, path: str | None, seed: int, drop_learned_pe: bool = False) -> dict:
    device, dtype = device_and_dtype()
    if profile.tiny:
        components = tiny_components(profile.layout, seed)
    else:
        components = pretrained_components(path or profile.default_path, dtype)
        save_vae_memory(components["vae"])
    if drop_learned_pe:
        drop_learned_positional_embedding(components["transformer"])
    for name in ("text_encoder", "vae", "transformer"):
        module = components[name].to(device=device)
        if next(module.parameters()).dtype != dtype:  # tiny models are built in fp32 already
            module = module.to(dtype=dtype)
        components[name] = module.eval().requires_grad_(False)
    return components


def make_pipeline(components: dict):
    from diffusers import CogVideoXImageToVideoPipeline

    pipe = CogVideoXImageToVideoPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    return pipe
