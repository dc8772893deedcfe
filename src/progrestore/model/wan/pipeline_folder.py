"""The tiny Wan TI2V model's pipeline folder, in the hub's layout (``model_index.json``; ``scheduler/``,
``text_encoder/``, ``tokenizer/``, ``transformer/``, ``vae/``; bf16 safetensors, the transformer and the
text encoder sharded with an index file; a SentencePiece ``spiece.model`` trained locally), written once
into the user cache and then loaded through the code a real folder takes (``model.hub_folder``)."""

from __future__ import annotations

from pathlib import Path

from progrestore.model.hub_folder import (
    TINY_TOKENIZER_CORPUS,
    TINY_TOKENIZER_VOCAB,
    FolderLayout,
    cached_folder,
    library_versions,
    piece_count,
    save_component,
    tiny_bf16,
    tiny_vocabulary,
    write_model_index,
    write_scheduler,
    write_t5_tokenizer,
)
from progrestore.model.wan.configs import (
    MODEL_INDEX,
    PIPELINE_CONFIG,
    SCHEDULER,
    TEXT_TOKENS,
    TINY_TRANSFORMER,
    TINY_UMT5,
    TOKENIZER_EXTRA_IDS,
    tiny_vae_config,
)

SHARDED = ("transformer", "text_encoder")  # as published: several shards and an index file


def tiny_modules(seed: int, vocab_size: int) -> dict:
    """The tiny models of the real classes, randomly initialised in bf16; the same seed, the same weights."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    return tiny_bf16(
        seed,
        lambda: {
            "text_encoder": UMT5EncoderModel(UMT5Config(vocab_size=vocab_size, **TINY_UMT5)),
            "transformer": WanTransformer3DModel(**TINY_TRANSFORMER),
            "vae": AutoencoderKLWan(**tiny_vae_config()),
        },
    )


def build_tiny_folder(folder: Path, layout: FolderLayout, seed: int) -> None:
    """Write the tiny model into ``folder`` in the hub's layout (without our record)."""
    spiece = tiny_vocabulary()
    modules = tiny_modules(seed, piece_count(spiece) + TOKENIZER_EXTRA_IDS)
    folder.mkdir(parents=True, exist_ok=True)
    write_model_index(folder, layout, PIPELINE_CONFIG)
    write_scheduler(folder, MODEL_INDEX["scheduler"][1], SCHEDULER)
    write_t5_tokenizer(folder / "tokenizer", spiece, TEXT_TOKENS, TOKENIZER_EXTRA_IDS)
    for name in ("text_encoder", "transformer", "vae"):
        save_component(folder, name, modules[name], sharded=name in SHARDED)


def tiny_pipeline_folder(layout: FolderLayout, seed: int) -> Path:
    """The tiny model's folder in the user cache, built on first use (see ``hub_folder.cached_folder``)."""
    recipe = {
        "seed": seed,
        "configs": repr((TINY_TRANSFORMER, tiny_vae_config(), TINY_UMT5, SCHEDULER, layout, PIPELINE_CONFIG)),
        "tokenizer": [TINY_TOKENIZER_CORPUS, TINY_TOKENIZER_VOCAB, TOKENIZER_EXTRA_IDS, TEXT_TOKENS],
        "libraries": library_versions(),
    }
    return cached_folder(
        f"wan-tiny-seed{seed}", recipe, lambda folder: build_tiny_folder(folder, layout, seed)
    )
