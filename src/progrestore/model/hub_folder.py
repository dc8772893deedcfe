"""Diffusers pipeline folders in the hub's layout, for every family: read for a real profile, written for a
tiny one and then read through the same code.

A family describes its folder once (:class:`FolderLayout`: ``model_index.json``'s entries, the classes each
component may be, what tells its variants apart); this module checks a folder against it, naming the first
problem in one line, loads the components a stage uses through their classes' ``from_pretrained``, and
keeps the tiny models' folders in the user cache, built once from a recipe and verified before each use.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from progrestore.errors import InputError
from progrestore.io.cache import cache_dir
from progrestore.model.profiles import Profile
from progrestore.model.specification import AUTOENCODER, DENOISER, TEXT

RECORD = "progrestore-tiny.json"  # written last into a tiny folder: its recipe and every file's sha256
# the files each component's loading reads first (others: config.json); a tokenizer needs its vocabulary
# as spiece.model or tokenizer.json
CONFIG_FILES = {"scheduler": ("scheduler_config.json",), "tokenizer": ("tokenizer_config.json",)}
TOKENIZER_VOCABULARIES = ("spiece.model", "tokenizer.json")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
# The tiny models' SentencePiece vocabulary is trained on this text (the prompts' register); other words
# fall back to single characters, so any prompt tokenizes
TINY_TOKENIZER_CORPUS = (
    "The image becomes sharper and higher in resolution. Nothing moves. Static image. "
    "The motion blur fades and the scene comes into focus. The dark scene brightens as the light returns, "
    "colours become natural and the noise fades away. A dim, softly coloured scene dominated by green and "
    "blue tones, with smooth surfaces and fine detail, a bright sky above, a central subject. "
    "Gradually the photograph is restored: edges, textures, faces, buildings, trees, water, animals."
)
TINY_TOKENIZER_VOCAB = 256  # an upper bound: the corpus gives fewer pieces


@dataclass(frozen=True)
class FolderLayout:
    """One family's pipeline folder: what ``check_folder`` holds a folder to."""

    architecture: str  # in messages, e.g. "a <architecture> folder holds ..."
    pipeline_classes: tuple[str, ...]  # the ``_class_name`` values model_index.json may have
    components: dict[str, tuple[str, str]]  # name -> (library, class) as model_index.json lists it
    # the other classes a component may be listed as (e.g. either scheduler of a family)
    accepted_classes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # variant (``Profile.layout``) -> component -> config key -> the value that variant has; "" is
    # model_index.json itself. A missing key takes ``marker_defaults``'
    markers: dict[str, dict[str, dict]] = field(default_factory=dict)
    marker_defaults: dict = field(default_factory=dict)
    # the components each part (``model.specification.PARTS``) is made of
    parts: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            TEXT: ("tokenizer", "text_encoder"),
            AUTOENCODER: ("vae",),
            DENOISER: ("transformer",),
        }
    )

    def classes(self, name: str) -> tuple[str, ...]:
        return self.accepted_classes.get(name, (self.components[name][1],))

    def part_components(self, parts: frozenset[str]) -> tuple[str, ...]:
        """The components a stage that uses ``parts`` loads (and the scheduler: it is small)."""
        return (*(name for part in sorted(parts) for name in self.parts[part]), "scheduler")

    def loaded_parts(self, components: dict) -> frozenset[str]:
        """The parts whose components are all in ``components`` (not None)."""
        return frozenset(
            part for part, names in self.parts.items() if all(components.get(n) is not None for n in names)
        )


def device_and_dtype() -> tuple[torch.device, torch.dtype]:
    """bf16 on GPU (the published models' dtype; fp16 gives black videos on the 5B video models), fp32 on
    CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda"), torch.bfloat16
    return torch.device("cpu"), torch.float32


def cause(err: BaseException) -> str:
    """The first line of an exception, short enough for a one-line error."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = f"{err.__class__.__name__}: {text}" if text else err.__class__.__name__
    return text if len(text) <= 300 else text[:297] + "..."


def model_folder(path: str, components: Iterable[str]) -> Path:
    """``model.path`` as a local folder: itself, or the hub snapshot of the files ``components`` need."""
    local = Path(path).expanduser()
    if local.exists():
        if not local.is_dir():
            raise InputError(f"model.path: {path} is a file, not a pipeline folder")
        return local
    if not HUB_ID.fullmatch(path):
        raise InputError(f"model.path: the folder {path} does not exist")
    from huggingface_hub import snapshot_download

    patterns = ["model_index.json", *(f"{name}/*" for name in components)]
    try:
        return Path(snapshot_download(path, allow_patterns=patterns))
    except Exception as err:  # offline, unknown repository, gated, ...: the hub's own reason, on one line
        raise InputError(
            f"model.path: {path!r} is not a local folder and the hub did not give it ({cause(err)}); "
            "download it where the hub is reachable and give the folder"
        ) from err


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"model.path: {path} is not valid JSON ({cause(err)})") from err


def check_folder(folder: Path, layout: FolderLayout, profile: Profile, components: Iterable[str]) -> dict:
    """Refuse, naming the first problem, a folder that is not a pipeline of ``layout`` in ``profile``'s
    variant or lacks one of ``components``; returns its model_index.json. Reads only small JSON files."""
    components = tuple(components)
    if not any(folder.iterdir()):
        raise InputError(
            f"model.path: {folder} is empty: a {layout.architecture} folder holds model_index.json, "
            f"{'/, '.join(sorted(layout.components))}/"
        )
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise InputError(
            f"model.path: {folder} has no model_index.json: it is not a diffusers pipeline folder"
        )
    index = read_json(index_file)
    if index.get("_class_name") not in layout.pipeline_classes:
        raise InputError(
            f"model.path: {index_file} is a {index.get('_class_name')}, not a "
            f"{' or '.join(layout.pipeline_classes)}"
        )
    for name in components:
        listed, allowed = index.get(name), layout.classes(name)
        library = layout.components[name][0]
        if (
            not isinstance(listed, list)
            or len(listed) != 2
            or listed[0] != library
            or listed[1] not in allowed
        ):
            raise InputError(
                f"model.path: {index_file} lists {name} as {listed}, not as {' or '.join(allowed)}"
            )
        for file in CONFIG_FILES.get(name, ("config.json",)):
            if not (folder / name / file).is_file():
                raise InputError(f"model.path: {folder} lacks {name}/{file}, which {profile.name} needs")
        if name == "tokenizer" and not any((folder / name / f).is_file() for f in TOKENIZER_VOCABULARIES):
            raise InputError(
                f"model.path: {folder} lacks tokenizer/spiece.model (or tokenizer.json), which "
                f"{profile.name} needs"
            )
    for name, markers in layout.markers.get(profile.layout, {}).items():
        if name and name not in components:
            continue
        config = index if not name else read_json(folder / name / "config.json")
        for key, value in markers.items():
            found = config.get(key, layout.marker_defaults.get(key))
            if found != value:
                raise InputError(
                    f"model.path: {folder / name if name else index_file} is not of the {profile.architecture} "
                    f"{profile.layout} layout that {profile.name} needs ({key} is {json.dumps(found)}, not "
                    f"{json.dumps(value)})"
                )
    return index


def check_vocabulary(tokenizer: Path) -> None:
    """Refuse a damaged ``spiece.model`` by name: given one, transformers falls back to other converters and
    reports the last one's failure (``tiktoken`` is not installed), which blames the wrong thing. Only
    when there is no ``tokenizer.json``, which transformers reads instead."""
    vocabulary = tokenizer / "spiece.model"
    if (tokenizer / "tokenizer.json").is_file() or not vocabulary.is_file():
        return
    import sentencepiece

    try:
        sentencepiece.SentencePieceProcessor(model_file=str(vocabulary))
    except (RuntimeError, OSError) as err:
        raise InputError(
            f"model.path: {vocabulary} is not a SentencePiece model ({cause(err)}): it is damaged or "
            "incomplete; download it again"
        ) from err


def load_component(folder: Path, name: str, index: dict, dtype: torch.dtype):
    """One component through its class's ``from_pretrained``: the one place a pipeline folder is read.
    ``index`` is the checked model_index.json: its library and class are ones the family accepts."""
    library, class_name = index[name]
    if name == "tokenizer":
        check_vocabulary(folder / name)
    cls = getattr(importlib.import_module(library), class_name)
    kwargs = {} if name in ("tokenizer", "scheduler") else {"dtype": dtype}
    try:
        return cls.from_pretrained(folder, subfolder=name, **kwargs)
    except Exception as err:  # missing weights, a broken shard, a tokenizer that cannot convert, ...
        raise InputError(f"model.path: cannot load {folder / name} as {class_name} ({cause(err)})") from err


def pretrained_components(
    path: str, layout: FolderLayout, profile: Profile, names: tuple[str, ...], dtype: torch.dtype
) -> dict:
    """The components ``names`` from the pipeline folder ``path``, checked first; None for the others."""
    folder = model_folder(path, names)
    index = check_folder(folder, layout, profile, names)
    loaded = {name: load_component(folder, name, index, dtype) for name in names}
    return {name: loaded.get(name) for name in layout.components}


def write_model_index(folder: Path, layout: FolderLayout, extra: dict | None = None) -> None:
    """``model_index.json`` of ``layout`` (its first pipeline class), with the pipeline's ``extra`` config."""
    from diffusers import __version__ as diffusers_version

    index = {"_class_name": layout.pipeline_classes[0], "_diffusers_version": diffusers_version}
    index |= {name: list(entry) for name, entry in layout.components.items()} | (extra or {})
    (folder / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def write_scheduler(folder: Path, class_name: str, config: dict) -> None:
    from diffusers import __version__ as diffusers_version

    (folder / "scheduler").mkdir(parents=True, exist_ok=True)
    content = {"_class_name": class_name, "_diffusers_version": diffusers_version} | config
    (folder / "scheduler" / "scheduler_config.json").write_text(
        json.dumps(content, indent=2, sort_keys=True) + "\n"
    )


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


def tiny_vocabulary() -> bytes:
    """The tiny models' ``spiece.model``."""
    return train_sentencepiece(TINY_TOKENIZER_CORPUS.split(". "), TINY_TOKENIZER_VOCAB)


def piece_count(spiece: bytes) -> int:
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_proto=spiece).get_piece_size()


def write_t5_tokenizer(folder: Path, spiece: bytes, max_length: int, extra_ids: int) -> None:
    """A T5-style ``tokenizer/`` as the hub folders hold it: spiece.model and three JSON files, no
    tokenizer.json (transformers converts the SentencePiece model at load time)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spiece.model").write_bytes(spiece)
    extra = [f"<extra_id_{i}>" for i in range(extra_ids)]
    specials = {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    files = {
        "added_tokens.json": {},
        "special_tokens_map.json": {"additional_special_tokens": extra, **specials},
        "tokenizer_config.json": {
            "additional_special_tokens": extra,
            "clean_up_tokenization_spaces": True,
            "extra_ids": extra_ids,
            "legacy": True,
            "model_max_length": max_length,
            "sp_model_kwargs": {},
            "tokenizer_class": "T5Tokenizer",
            **specials,
        },
    }
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=2) + "\n")


def save_component(folder: Path, name: str, module, sharded: bool) -> None:
    """``module`` as ``folder/name`` through its ``save_pretrained``: bf16 safetensors, in several shards
    and an index file if ``sharded`` (as the hub holds the big ones), else one file."""
    size = sum(p.numel() * p.element_size() for p in module.state_dict().values())
    shard = min(size // 2 + 1, 5 * 2**30) if sharded else max(size, 1) * 2
    module.save_pretrained(folder / name, safe_serialization=True, max_shard_size=shard)


def seeded(
    seed: int, dtype: torch.dtype, build: Callable[[], dict], device: str | torch.device = "cpu"
) -> dict:
    """``build()``'s modules, randomly initialised from ``seed`` directly in ``dtype`` on ``device`` (a cast
    afterwards would warn, and a 5B model built in fp32 first would need 20 GB), frozen; the global random
    state is left as it was."""
    default = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        torch.set_default_dtype(dtype)
        try:
            modules = build()
        finally:
            torch.set_default_dtype(default)
    return {name: module.eval().requires_grad_(False) for name, module in modules.items()}


def tiny_bf16(seed: int, build: Callable[[], dict]) -> dict:
    """The tiny models of ``build``, in bf16 as published, their float buffers too (some are computed in
    float64, e.g. a sin-cos table that a model learns)."""
    modules = seeded(seed, torch.bfloat16, build)
    for module in modules.values():
        for buffer in module.buffers():
            if buffer.is_floating_point():
                buffer.data = buffer.data.to(torch.bfloat16)
    return modules


def library_versions() -> dict[str, str]:
    """The libraries a tiny folder's bytes depend on, with their versions (part of every recipe)."""
    from importlib.metadata import version

    return {
        name: version(name) for name in ("torch", "diffusers", "transformers", "sentencepiece", "safetensors")
    }


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != RECORD
    }


def write_record(folder: Path, recipe: dict) -> None:
    """The folder's record, written last: what marks a tiny folder finished and ours."""
    (folder / RECORD).write_text(
        json.dumps({"recipe": recipe, "files": file_hashes(folder)}, indent=2) + "\n"
    )


def cached_folder(stem: str, recipe: dict, build: Callable[[Path], None]) -> Path:
    """The folder ``build`` writes from ``recipe``, in the user cache as ``<stem>-<digest of recipe>``,
    built on first use.

    Built in a temporary folder beside it and renamed into place, so a killed build leaves nothing that
    looks finished and two processes building at once keep one. A folder whose files no longer match its
    record (edited, truncated) is rebuilt; a folder without our record is not ours and is refused.
    """
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_dir() / "models" / f"{stem}-{digest}"
    if folder.exists():
        record = folder / RECORD
        if not record.is_file():
            raise InputError(
                f"{folder} exists but is not a tiny model folder progrestore wrote: move it away"
            )
        if json.loads(record.read_text()).get("files") == file_hashes(folder):
            return folder
        shutil.rmtree(folder)  # ours, damaged: build it again
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        build(staging)
        write_record(staging, recipe)
        try:
            os.rename(staging, folder)
        except OSError:
            if not (folder / RECORD).is_file():  # not another process's finished build
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
