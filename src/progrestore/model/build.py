"""Build (tiny, seeded) or load (pretrained) the CogVideoX image-to-video components and pipeline."""

from __future__ import annotations

from pathlib import Path

import torch

from progrestore.config import Section
from progrestore.errors import InputError
from progrestore.model.profiles import (
    SCHEDULER,
    TEXT_TOKENS,
    TINY_LAYOUTS,
    TINY_T5,
    TINY_TRANSFORMER,
    TINY_VAE,
    Profile,
    profile_from_params,
)


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


def pretrained_components(path: str, dtype: torch.dtype) -> dict:
    from diffusers import CogVideoXImageToVideoPipeline

    local = Path(path).expanduser()
    try:
        pipe = CogVideoXImageToVideoPipeline.from_pretrained(
            str(local) if local.exists() else path, torch_dtype=dtype
        )
    except (OSError, ValueError) as err:
        raise InputError(
            f"model.path: cannot load {path!r} ({err.__class__.__name__}): give a local folder with the "
            "CogVideoX I2V weights (model_index.json, transformer/, vae/, text_encoder/, tokenizer/, scheduler/), "
            "or a hub id on a machine that can reach the hub"
        ) from err
    return dict(pipe.components)


def drop_learned_positional_embedding(transformer) -> None:
    """CogVideoX-5B-I2V at sizes other than 480x720: remove the learned PE (training and inference)."""
    embed = transformer.patch_embed
    embed.use_learned_positional_embeddings = False
    embed.use_positional_embeddings = False
    if hasattr(embed, "pos_embedding"):
        del embed.pos_embedding
    transformer.register_to_config(use_learned_positional_embeddings=False)


def load_components(profile: Profile, path: str | None, seed: int, drop_learned_pe: bool = False) -> dict:
    device, dtype = device_and_dtype()
    if profile.tiny:
        components = tiny_components(profile.layout, seed)
    else:
        components = pretrained_components(path or profile.default_path, dtype)
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


def model_settings(params: Section) -> tuple[Profile, str | None, int, bool]:
    """The ``model`` block: profile, weights path (None: the profile's hub id), seed, drop_learned_pe."""
    model = params.section("model")
    profile = profile_from_params(model)
    path = None if model.raw("path") is None else model.text("path")
    return profile, path, model.integer("seed", 0), model.boolean("drop_learned_pe")


def pipeline_from_params(params: Section):
    """(profile, I2V pipeline) built or loaded as the ``model`` block says."""
    profile, path, seed, drop_pe = model_settings(params)
    return profile, make_pipeline(load_components(profile, path, seed, drop_pe))
