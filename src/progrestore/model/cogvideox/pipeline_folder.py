"""The CogVideoX I2V pipeline folder in the hub's layout: read for every profile, written for the tiny ones.

A real profile reads the published folder (``model_index.json``; ``scheduler/``, ``text_encoder/``,
``tokenizer/``, ``transformer/``, ``vae/``). The tiny profiles write a folder of exactly that layout once
(bf16 safetensors through ``save_pretrained``, the transformer and text encoder sharded with an index
file, a real SentencePiece ``spiece.model`` trained on a small corpus and the three tokenizer JSON files,
no ``tokenizer.json``) and then load it through the same code, so the embedded run exercises the loading
path a researcher's real folder takes. The folder is cached by its recipe and verified before each use.
"""

from __future__ import annotations

from pathlib import Path

from progrestore.model.cogvideox.configs import (
    ACCEPTED_CLASSES,
    LAYOUT_MARKERS,
    MARKER_DEFAULTS,
    MODEL_INDEX,
    SCHEDULER,
    TEXT_TOKENS,
    TINY_LAYOUTS,
    TINY_T5,
    TINY_TRANSFORMER,
    TINY_VAE,
    TOKENIZER_EXTRA_IDS,
)
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

SHARDED = ("transformer", "text_encoder")  # as published: several shards and an index file
FOLDER = FolderLayout(
    architecture="CogVideoX I2V",
    pipeline_classes=(MODEL_INDEX["_class_name"],),
    components={name: tuple(entry) for name, entry in MODEL_INDEX.items() if not name.startswith("_")},
    accepted_classes=ACCEPTED_CLASSES,
    markers=LAYOUT_MARKERS,
    marker_defaults=MARKER_DEFAULTS,
)


def write_pipeline_folder(folder: Path, modules: dict, spiece: bytes) -> None:
    """Write ``modules`` (text_encoder, transformer, vae, in bf16) and the scheduler's config as a hub
    pipeline folder."""
    folder.mkdir(parents=True, exist_ok=True)
    write_model_index(folder, FOLDER)
    write_scheduler(folder, MODEL_INDEX["scheduler"][1], SCHEDULER)
    write_t5_tokenizer(folder / "tokenizer", spiece, TEXT_TOKENS, TOKENIZER_EXTRA_IDS)
    for name in ("text_encoder", "transformer", "vae"):
        save_component(folder, name, modules[name], sharded=name in SHARDED)


def tiny_modules(layout: str, seed: int, vocab_size: int) -> dict:
    """The tiny models of the real classes, randomly initialised in bf16; the same seed gives the same
    weights."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    def build() -> dict:
        t5 = T5Config(
            vocab_size=vocab_size, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, **TINY_T5
        )
        return {
            "text_encoder": T5EncoderModel(t5),
            "transformer": CogVideoXTransformer3DModel(**TINY_TRANSFORMER, **TINY_LAYOUTS[layout]),
            "vae": AutoencoderKLCogVideoX(**TINY_VAE, invert_scale_latents=layout == "1.5"),
        }

    return tiny_bf16(seed, build)


def _recipe(layout: str, seed: int) -> dict:
    """Everything a tiny folder's bytes depend on: a change of any makes another folder."""
    return {
        "layout": layout,
        "seed": seed,
        "configs": repr((TINY_TRANSFORMER, TINY_LAYOUTS[layout], TINY_VAE, TINY_T5, SCHEDULER, MODEL_INDEX)),
        "tokenizer": [TINY_TOKENIZER_CORPUS, TINY_TOKENIZER_VOCAB, TOKENIZER_EXTRA_IDS, TEXT_TOKENS],
        "libraries": library_versions(),
    }


def build_tiny_folder(folder: Path, layout: str, seed: int) -> None:
    """Write the tiny ``layout`` model into ``folder`` in the hub's layout (without the record)."""
    spiece = tiny_vocabulary()
    vocab_size = piece_count(spiece) + TOKENIZER_EXTRA_IDS  # the tokenizer's length: pieces and extra ids
    write_pipeline_folder(folder, tiny_modules(layout, seed, vocab_size), spiece)


def tiny_pipeline_folder(layout: str, seed: int) -> Path:
    """The tiny ``layout`` model's pipeline folder in the user cache, built on first use."""
    return cached_folder(
        f"cogvideox-tiny-{layout}-seed{seed}",
        _recipe(layout, seed),
        lambda folder: build_tiny_folder(folder, layout, seed),
    )
