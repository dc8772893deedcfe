"""Peak host memory of each model stage with what it really loads, at the real size (random weights).

A pipeline folder in the published 1.5 layout is written once with random weights of the real
architectures (transformer 5.57e9 and T5-XXL 4.76e9 parameters, VAE; bf16 safetensors, about 21 GB on
disk), then each stage's loading runs in its own process through the stages' code (``load_specification``
with the stage's parts, ``embed_prompts`` for ``progrestore restore``), in bf16 as on a GPU, and reports
its peak RSS after every loaded weight has been read once (safetensors are memory-mapped: a weight never
read is never resident). ``encode_text`` also encodes one prompt with the real-size T5; the transformer's
and the VAE's real-size compute does not fit a 2-core CPU, so their activations are not included.

    python benchmarks/stage_memory.py [--folder DIR] [--keep]   # DIR: scratch space for the 21 GB folder
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from progrestore.model.cogvideox.configs import (
    REAL_T5,
    REAL_TRANSFORMERS,
    REAL_VAES,
)
from progrestore.model.cogvideox.pipeline_folder import (
    SHARDED,
    tiny_modules,
    write_pipeline_folder,
)
from progrestore.model.hub_folder import save_component, tiny_vocabulary
from progrestore.model.specification import AUTOENCODER, DENOISER, TEXT

PROFILE = "cogvideox1.5-5b-i2v"
STAGES = {  # what each stage loads (train/run.py, train/encode.py, infer/restore.py)
    "encode_text": [TEXT],
    "encode_video": [AUTOENCODER],
    "train": [AUTOENCODER, DENOISER],
    "restore": [AUTOENCODER, DENOISER],
    "progrestore restore": "text, freed, then autoencoder + denoiser",
}


def write_folder(folder: Path) -> float:
    """The real architectures with random weights as a hub folder, one component in memory at a time (all
    three at once would not fit 24 GB); returns the seconds it took."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    start = time.perf_counter()
    write_pipeline_folder(folder, tiny_modules("1.5", 0, REAL_T5["vocab_size"]), tiny_vocabulary())
    builders = {
        "text_encoder": lambda: T5EncoderModel(T5Config(**REAL_T5)),
        "vae": lambda: AutoencoderKLCogVideoX(**REAL_VAES[PROFILE]),
        "transformer": lambda: CogVideoXTransformer3DModel(**REAL_TRANSFORMERS[PROFILE]),
    }
    default = torch.get_default_dtype()
    for name, build in builders.items():
        shutil.rmtree(folder / name)
        torch.set_default_dtype(torch.bfloat16)
        try:
            module = build()
        finally:
            torch.set_default_dtype(default)
        save_component(folder, name, module, sharded=name in SHARDED)
        del module
    return time.perf_counter() - start


def measure(folder: Path, stage: str) -> dict:
    """In this process: load what ``stage`` loads from ``folder`` in bf16; peak RSS and timings."""
    from progrestore.model.cogvideox import components
    from progrestore.model.families import load_specification
    from progrestore.model.profiles import profile_named
    from progrestore.model.settings import ModelSettings

    components.device_and_dtype = lambda: (torch.device("cpu"), torch.bfloat16)  # as on a GPU
    settings = ModelSettings(profile_named(PROFILE), str(folder), 0, None, 768, 1360)
    start = time.perf_counter()
    result: dict = {"stage": stage}
    if stage == "progrestore restore":
        from progrestore.infer.restore import embed_prompts

        embed_prompts(settings, ["The image becomes sharper.", ""])
        result["text_phase_peak_rss_gb"] = _peak_rss_gb()
        result["rss_after_text_freed_gb"] = _rss_gb("VmRSS")
        model = load_specification(settings, frozenset({AUTOENCODER, DENOISER}))
    else:
        model = load_specification(settings, frozenset(STAGES[stage]))
        if stage == "encode_text":
            loaded = time.perf_counter()
            model.encode_prompt("The image becomes sharper and higher in resolution. Nothing moves.")
            result["encode_one_prompt_s"] = round(time.perf_counter() - loaded, 1)
    modules = [m for name in ("text_encoder", "vae", "transformer") if (m := getattr(model.pipe, name))]
    with torch.no_grad():  # every weight read once, as running the stage does: mmapped pages become resident
        for parameter in (p for m in modules for p in m.parameters()):
            parameter.sum()
    result["loaded"] = sorted(model.parts)
    result["parameters"] = sum(p.numel() for m in modules for p in m.parameters())
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["peak_rss_gb"] = _peak_rss_gb()
    return result


def _peak_rss_gb() -> float:
    """This process's peak RSS: VmHWM, which (unlike getrusage's ru_maxrss, kept across exec on Linux)
    starts anew in each child and so is not the parent's 11 GB of writing the folder."""
    return _rss_gb("VmHWM")


def _rss_gb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 2**20, 2)  # kB
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="where the real-size folder is (or is written)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (without --folder)")
    parser.add_argument("--stage", help=argparse.SUPPRESS)  # the child's
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(measure(args.folder, args.stage)))
        return
    created = args.folder is None
    folder = Path(tempfile.mkdtemp(prefix="progrestore-real-")) if created else args.folder
    if not (folder / "model_index.json").is_file():
        if folder.exists() and any(folder.iterdir()):
            parser.error(f"--folder {folder}: holds files but no pipeline; give a new or empty folder")
        print(
            json.dumps({"wrote_folder": str(folder), "seconds": round(write_folder(folder), 1)}), flush=True
        )
    try:
        for stage in STAGES:
            command = [sys.executable, __file__, "--folder", str(folder), "--stage", stage]
            run = subprocess.run(command, capture_output=True, text=True, check=True)
            print(run.stdout.strip().splitlines()[-1], flush=True)
    finally:
        if created and not args.keep:  # only a folder this run made
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
