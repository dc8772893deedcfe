"""Load the CogVideoX I2V components a stage uses from a pipeline folder (the same code for every profile),
and build a real profile's architecture with random weights for the benchmarks.

Each stage names the parts it uses (``model.specification.PARTS``): ``encode_text`` the tokenizer and
T5, ``encode_video`` the VAE, ``train`` and ``restore`` the transformer and the VAE. Only those are read
from disk and moved to the device: T5-XXL alone is 9.5 GB in bf16.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import torch

from progrestore.errors import InputError
from progrestore.model.cogvideox.configs import (
    ACCEPTED_CLASSES,
    LAYOUT_MARKERS,
    MARKER_DEFAULTS,
    MODEL_INDEX,
    REAL_T5,
    REAL_TRANSFORMERS,
    REAL_VAES,
    SCHEDULER,
    TINY_T5,
)
from progrestore.model.cogvideox.pipeline_folder import tiny_pipeline_folder
from progrestore.model.cogvideox.profiles import PROFILES
from progrestore.model.profiles import Profile
from progrestore.model.specification import AUTOENCODER, DENOISER, PARTS, TEXT

PART_COMPONENTS = {TEXT: ("tokenizer", "text_encoder"), AUTOENCODER: ("vae",), DENOISER: ("transformer",)}
COMPONENTS = ("tokenizer", "text_encoder", "vae", "transformer", "scheduler")
# the files each component's loading reads first (others: config.json); the tokenizer needs its vocabulary
# as spiece.model (the published folders) or tokenizer.json
CONFIG_FILES = {"scheduler": ("scheduler_config.json",), "tokenizer": ("tokenizer_config.json",)}
TOKENIZER_VOCABULARIES = ("spiece.model", "tokenizer.json")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def device_and_dtype() -> tuple[torch.device, torch.dtype]:
    """bf16 on GPU (fp16 gives black videos on CogVideoX 5B and 1.5), fp32 on CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda"), torch.bfloat16
    return torch.device("cpu"), torch.float32


def _cause(err: BaseException) -> str:
    """The first line of an exception, short enough for a one-line error."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = f"{err.__class__.__name__}: {text}" if text else err.__class__.__name__
    return text if len(text) <= 300 else text[:297] + "..."


def model_folder(path: str, components: tuple[str, ...]) -> Path:
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
            f"model.path: {path!r} is not a local folder and the hub did not give it ({_cause(err)}); "
            "download it where the hub is reachable and give the folder"
        ) from err


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"model.path: {path} is not valid JSON ({_cause(err)})") from err


def check_folder(folder: Path, profile: Profile, components: tuple[str, ...]) -> dict:
    """Refuse, naming the first problem, a folder that is not a CogVideoX I2V pipeline of ``profile``'s
    layout or lacks one of ``components``; returns its model_index.json. Reads only small JSON files."""
    if not any(folder.iterdir()):
        raise InputError(
            f"model.path: {folder} is empty: a CogVideoX I2V folder holds model_index.json, scheduler/, "
            "text_encoder/, tokenizer/, transformer/ and vae/"
        )
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise InputError(
            f"model.path: {folder} has no model_index.json: it is not a diffusers pipeline folder"
        )
    index = _read_json(index_file)
    if index.get("_class_name") != MODEL_INDEX["_class_name"]:
        raise InputError(
            f"model.path: {index_file} is a {index.get('_class_name')}, not a {MODEL_INDEX['_class_name']}"
        )
    for name in components:
        listed = index.get(name)
        wanted = ACCEPTED_CLASSES.get(name, (MODEL_INDEX[name][1],))
        if not isinstance(listed, list) or len(listed) != 2 or listed[1] not in wanted:
            raise InputError(
                f"model.path: {index_file} lists {name} as {listed}, not as {' or '.join(wanted)}"
            )
        for file in CONFIG_FILES.get(name, ("config.json",)):
            if not (folder / name / file).is_file():
                raise InputError(f"model.path: {folder} lacks {name}/{file}, which {profile.name} needs")
        if name == "tokenizer" and not any((folder / name / f).is_file() for f in TOKENIZER_VOCABULARIES):
            raise InputError(
                f"model.path: {folder} lacks tokenizer/spiece.model (or tokenizer.json), which "
                f"{profile.name} needs"
            )
    for name, markers in LAYOUT_MARKERS[profile.layout].items():
        if name not in components:
            continue
        config = _read_json(folder / name / "config.json")
        for key, value in markers.items():
            found = config.get(key, MARKER_DEFAULTS[key])
            if found != value:
                raise InputError(
                    f"model.path: {folder / name} is not of the CogVideoX {profile.layout} layout that "
                    f"{profile.name} needs ({key} is {json.dumps(found)}, not {json.dumps(value)})"
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
            f"model.path: {vocabulary} is not a SentencePiece model ({_cause(err)}): it is damaged or "
            "incomplete; download it again"
        ) from err


def load_component(folder: Path, name: str, index: dict, dtype: torch.dtype):
    """One component through its class's ``from_pretrained``: the one place a pipeline folder is read."""
    class_name = index[name][1]  # checked against the classes this family accepts
    if name == "tokenizer":
        check_vocabulary(folder / name)
    cls = getattr(importlib.import_module(MODEL_INDEX[name][0]), class_name)
    kwargs = {} if name in ("tokenizer", "scheduler") else {"dtype": dtype}
    try:
        return cls.from_pretrained(folder, subfolder=name, **kwargs)
    except Exception as err:  # missing weights, a broken shard, a tokenizer that cannot convert, ...
        raise InputError(f"model.path: cannot load {folder / name} as {class_name} ({_cause(err)})") from err


def pretrained_components(path: str, profile: Profile, parts: frozenset[str], dtype: torch.dtype) -> dict:
    """The components of ``parts`` (and the scheduler) from the pipeline folder ``path``; None for the rest."""
    names = (*(name for part in sorted(parts) for name in PART_COMPONENTS[part]), "scheduler")
    folder = model_folder(path, names)
    index = check_folder(folder, profile, names)
    loaded = {name: load_component(folder, name, index, dtype) for name in names}
    return {name: loaded.get(name) for name in COMPONENTS}


def drop_learned_positional_embedding(transformer) -> None:
    """CogVideoX-5B-I2V at sizes other than 480x720: remove the learned PE (training and inference alike)."""
    embed = transformer.patch_embed
    embed.use_learned_positional_embeddings = False
    embed.use_positional_embeddings = False
    if hasattr(embed, "pos_embedding"):
        del embed.pos_embedding
    transformer.register_to_config(use_learned_positional_embeddings=False)


def slice_learned_positional_embedding(transformer) -> None:
    """The official SAT behaviour for fewer frames than the table was learned for: the first rows of the
    learned table (``pos_embedding[:, :text_length + seq_length]``), i.e. its first latent frames, instead
    of diffusers' sin-cos replacement. diffusers asks ``_get_positional_embeddings`` for any frame count
    other than ``sample_frames``; this instance's answer is the slice."""
    embed = transformer.patch_embed

    def sliced(height: int, width: int, frames: int, device: torch.device | None = None) -> torch.Tensor:
        latent = (frames - 1) // embed.temporal_compression_ratio + 1
        learned = (embed.sample_frames - 1) // embed.temporal_compression_ratio + 1
        if (height, width) != (embed.sample_height, embed.sample_width) or latent > learned:
            raise ValueError(
                f"the learned positional embedding covers {learned} latent frames at "
                f"{embed.sample_height}x{embed.sample_width}, not {latent} at {height}x{width}"
            )
        patches = latent * (height // embed.patch_size) * (width // embed.patch_size)
        return embed.pos_embedding[:, : embed.max_text_seq_length + patches]

    embed._get_positional_embeddings = sliced


def use_positional_embedding(transformer, choice: str | None) -> None:
    """``model.positional_embedding`` on a loaded transformer: ``sincos`` (diffusers' own path) and None
    leave it as diffusers runs it."""
    if choice == "none":
        drop_learned_positional_embedding(transformer)
    elif choice == "sliced":
        slice_learned_positional_embedding(transformer)


def save_vae_memory(vae) -> None:
    """Slice and tile the VAE, as the official trainer and demo do: a 768x1360 clip's full-resolution
    activations otherwise dominate memory (1.5 on an H100: sampling peak 47.6 GB whole-frame, 17.0 GB
    tiled, in the same 43 s; BENCHMARKS.md)."""
    vae.enable_slicing()
    vae.enable_tiling()


def load_components(
    profile: Profile,
    path: str | None,
    seed: int,
    parts: frozenset[str] = PARTS,
    positional_embedding: str | None = None,
) -> dict:
    """The components of ``parts`` on the device, frozen; tiny profiles from their cached pipeline folder,
    real ones from ``path`` (default: the profile's hub id)."""
    device, dtype = device_and_dtype()
    folder = str(tiny_pipeline_folder(profile.layout, seed)) if profile.tiny else path or profile.default_path
    components = pretrained_components(folder, profile, parts, dtype)
    if components["vae"] is not None and not profile.tiny:
        save_vae_memory(components["vae"])
    if components["transformer"] is not None:
        use_positional_embedding(components["transformer"], positional_embedding)
    for name in ("text_encoder", "vae", "transformer"):
        if components[name] is not None:
            components[name] = components[name].to(device).eval().requires_grad_(False)  # dtype: loaded so
    return components


def tiny_components(layout: str, seed: int, parts: frozenset[str] = PARTS) -> dict:
    """The ``parts`` of a tiny model (``layout`` 1.5 or 1.0), in fp32 on the CPU, loaded from its folder."""
    return pretrained_components(
        str(tiny_pipeline_folder(layout, seed)), _tiny_profile(layout), parts, torch.float32
    )


def _tiny_profile(layout: str) -> Profile:
    return next(p for p in PROFILES.values() if p.tiny and p.layout == layout)


def real_architecture_components(
    name: str,
    dtype: torch.dtype,
    device: str | torch.device = "cpu",
    num_layers: int | None = None,
    vae_width: int | None = None,
    seed: int = 0,
    real_text_encoder: bool = False,
) -> dict:
    """A real profile's architecture from its published config with random weights, for benchmarks and
    checks that cannot download weights: the transformer at its real widths and module names
    (``num_layers`` fewer blocks, if given), the VAE at its real latent layout (channels ``vae_width``
    wide, if given: it is frozen and outside the LoRA), and T5: the real T5-XXL with ``real_text_encoder``
    (what a stage that encodes text holds), else a tiny one (prompt embeddings are given directly)."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    transformer_config = REAL_TRANSFORMERS[name] | ({"num_layers": num_layers} if num_layers else {})
    vae_config = REAL_VAES[name] | (
        {"block_out_channels": [vae_width] * 4, "layers_per_block": 1} if vae_width else {}
    )
    tokenizer = tiny_components("1.5", 0, frozenset({TEXT}))[
        "tokenizer"
    ]  # ids below T5-XXL's vocabulary: any prompt encodes
    t5 = (
        REAL_T5
        if real_text_encoder
        else {"vocab_size": len(tokenizer), "pad_token_id": 0, "eos_token_id": 1, **TINY_T5}
    )
    default = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        torch.set_default_dtype(dtype)  # built in ``dtype``: a 5B model in fp32 first would need 22 GB
        try:
            transformer = CogVideoXTransformer3DModel(**transformer_config)
            vae = AutoencoderKLCogVideoX(**vae_config)
            text_encoder = T5EncoderModel(T5Config(**t5))
        finally:
            torch.set_default_dtype(default)
    return {
        "tokenizer": tokenizer,
        "text_encoder": text_encoder.eval().requires_grad_(False),
        "vae": vae.eval().requires_grad_(False),
        "transformer": transformer.eval().requires_grad_(False),
        "scheduler": CogVideoXDPMScheduler(**SCHEDULER),
    }


def make_pipeline(components: dict):
    """The I2V pipeline over ``components``; those a stage did not load are None."""
    from diffusers import CogVideoXImageToVideoPipeline

    pipe = CogVideoXImageToVideoPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    return pipe
