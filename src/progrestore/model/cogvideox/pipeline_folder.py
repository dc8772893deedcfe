"""The CogVideoX I2V pipeline folder in the hub's layout: read for every profile, written for the tiny ones.

A real profile reads the published folder (``model_index.json``; ``scheduler/``, ``text_encoder/``,
``tokenizer/``, ``transformer/``, ``vae/``). The tiny profiles write a folder of exactly that layout once
(bf16 safetensors through ``save_pretrained``, the transformer and text encoder sharded with an index
file, a real SentencePiece ``spiece.model`` trained on a small corpus and the three tokenizer JSON files,
no ``tokenizer.json``) and then load it through the same code, so the embedded run exercises the loading
path a researcher's real folder takes. The folder is cached by its recipe and verified before each use.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path

import torch

from progrestore.errors import InputError
from progrestore.io.cache import cache_dir
from progrestore.model.cogvideox.configs import (
    MODEL_INDEX,
    SCHEDULER,
    TEXT_TOKENS,
    TINY_LAYOUTS,
    TINY_T5,
    TINY_TOKENIZER_CORPUS,
    TINY_TOKENIZER_VOCAB,
    TINY_TRANSFORMER,
    TINY_VAE,
    TOKENIZER_EXTRA_IDS,
)

RECORD = "progrestore-tiny.json"  # written last into a tiny folder: its recipe and every file's sha256
SHARDED = ("transformer", "text_encoder")  # as published: several shards and an index file


def train_sentencepiece(sentences: Iterable[str], vocab_size: int, **options) -> bytes:
    """A SentencePiece model trained on ``sentences``, T5-style unless ``options`` say otherwise (unigram;
    pad 0, eos 1, unk 2, no bos; at most ``vocab_size`` pieces), on one thread so that the same sentences
    give the same bytes."""
    import sentencepiece

    settings = {
        "model_type": "unigram",
        "hard_vocab_limit": False,
        "character_coverage": 1.0,
        "pad_id": 0,
        "eos_id": 1,
        "unk_id": 2,
        "bos_id": -1,
    }
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab_size,
        num_threads=1,
        minloglevel=2,
        **settings | options,
    )
    return model.getvalue()


def write_tokenizer(folder: Path, spiece: bytes, max_length: int = TEXT_TOKENS) -> None:
    """``tokenizer/`` as the hub folders hold it: spiece.model and three JSON files, no tokenizer.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spiece.model").write_bytes(spiece)
    extra = [f"<extra_id_{i}>" for i in range(TOKENIZER_EXTRA_IDS)]
    specials = {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    files = {
        "added_tokens.json": {},
        "special_tokens_map.json": {"additional_special_tokens": extra, **specials},
        "tokenizer_config.json": {
            "additional_special_tokens": extra,
            "clean_up_tokenization_spaces": True,
            "extra_ids": TOKENIZER_EXTRA_IDS,
            "legacy": True,
            "model_max_length": max_length,
            "sp_model_kwargs": {},
            "tokenizer_class": "T5Tokenizer",
            **specials,
        },
    }
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=2) + "\n")


def write_pipeline_folder(folder: Path, modules: dict, spiece: bytes) -> None:
    """Write ``modules`` (text_encoder, transformer, vae, in bf16) and the scheduler's config as a hub
    pipeline folder."""
    from diffusers import __version__ as diffusers_version

    folder.mkdir(parents=True, exist_ok=True)
    index = {"_class_name": MODEL_INDEX["_class_name"], "_diffusers_version": diffusers_version}
    index |= {k: v for k, v in MODEL_INDEX.items() if not k.startswith("_")}
    (folder / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    scheduler = {"_class_name": MODEL_INDEX["scheduler"][1], "_diffusers_version": diffusers_version}
    (folder / "scheduler").mkdir()
    (folder / "scheduler" / "scheduler_config.json").write_text(
        json.dumps(scheduler | SCHEDULER, indent=2, sort_keys=True) + "\n"
    )
    write_tokenizer(folder / "tokenizer", spiece)
    for name in ("text_encoder", "transformer", "vae"):
        save_component(folder, name, modules[name])


def save_component(folder: Path, name: str, module) -> None:
    """``module`` as ``folder/name`` through its ``save_pretrained``: bf16 safetensors, sharded as the
    hub's (several shards and an index for the transformer and the text encoder, one file for the VAE)."""
    size = sum(p.numel() * p.element_size() for p in module.state_dict().values())
    shard = min(size // 2 + 1, 5 * 2**30) if name in SHARDED else max(size, 1) * 2
    module.save_pretrained(folder / name, safe_serialization=True, max_shard_size=shard)


def tiny_modules(layout: str, seed: int, vocab_size: int) -> dict:
    """The tiny models of the real classes, randomly initialised in bf16; the same seed gives the same
    weights."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    default = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_default_dtype(torch.bfloat16)  # as published; a cast afterwards would warn
        try:
            transformer = CogVideoXTransformer3DModel(**TINY_TRANSFORMER, **TINY_LAYOUTS[layout])
            vae = AutoencoderKLCogVideoX(**TINY_VAE, invert_scale_latents=layout == "1.5")
            text_encoder = T5EncoderModel(
                T5Config(
                    vocab_size=vocab_size, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, **TINY_T5
                )
            )
        finally:
            torch.set_default_dtype(default)
    modules = {"text_encoder": text_encoder, "transformer": transformer, "vae": vae}
    for module in modules.values():  # buffers computed in float64 (1.0's sin-cos table, which it learns)
        for buffer in module.buffers():
            if buffer.is_floating_point():
                buffer.data = buffer.data.to(torch.bfloat16)
    return modules


def _recipe(layout: str, seed: int) -> dict:
    """Everything a tiny folder's bytes depend on: a change of any makes another folder."""
    libraries = ("torch", "diffusers", "transformers", "sentencepiece", "safetensors")
    return {
        "layout": layout,
        "seed": seed,
        "configs": repr((TINY_TRANSFORMER, TINY_LAYOUTS[layout], TINY_VAE, TINY_T5, SCHEDULER, MODEL_INDEX)),
        "tokenizer": [TINY_TOKENIZER_CORPUS, TINY_TOKENIZER_VOCAB, TOKENIZER_EXTRA_IDS, TEXT_TOKENS],
        "libraries": {name: version(name) for name in libraries},
    }


def _file_hashes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != RECORD
    }


def build_tiny_folder(folder: Path, layout: str, seed: int) -> None:
    """Write the tiny ``layout`` model into ``folder`` in the hub's layout, with its record last."""
    import sentencepiece

    spiece = train_sentencepiece(TINY_TOKENIZER_CORPUS.split(". "), TINY_TOKENIZER_VOCAB)
    pieces = sentencepiece.SentencePieceProcessor(model_proto=spiece).get_piece_size()
    vocab_size = pieces + TOKENIZER_EXTRA_IDS  # the tokenizer's length: its pieces and the extra ids
    write_pipeline_folder(folder, tiny_modules(layout, seed, vocab_size), spiece)
    record = {"recipe": _recipe(layout, seed), "files": _file_hashes(folder)}
    (folder / RECORD).write_text(json.dumps(record, indent=2) + "\n")


def tiny_pipeline_folder(layout: str, seed: int) -> Path:
    """The tiny ``layout`` model's pipeline folder in the user cache, built on first use.

    Built in a temporary folder beside it and renamed into place, so a killed build leaves nothing that
    looks finished and two processes building at once keep one. A folder whose files no longer match its
    record (edited, truncated) is rebuilt; a folder without our record is not ours and is refused.
    """
    recipe = _recipe(layout, seed)
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_dir() / "models" / f"cogvideox-tiny-{layout}-seed{seed}-{digest}"
    if folder.exists():
        record = folder / RECORD
        if not record.is_file():
            raise InputError(
                f"{folder} exists but is not a tiny model folder progrestore wrote: move it away"
            )
        if json.loads(record.read_text()).get("files") == _file_hashes(folder):
            return folder
        shutil.rmtree(folder)  # ours, damaged: build it again
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        build_tiny_folder(staging, layout, seed)
        try:
            os.rename(staging, folder)
        except OSError:
            if not (folder / RECORD).is_file():  # not another process's finished build
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
