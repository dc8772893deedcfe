"""Stage ``restore``: trajectories of a task's val clips (the ``model`` method of the evaluation)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from progrestore import tasks
from progrestore.config import ClipSettings, Section
from progrestore.data.framing import centre_window
from progrestore.data.manifest import read_clip_manifest, read_prompts
from progrestore.entry import Stage
from progrestore.infer.restore import restore_image, sampling_model
from progrestore.io.atomic import staged_output_dir, write_json
from progrestore.io.encoded import NEGATIVE_PROMPT, load_text_cache, prompt_key
from progrestore.io.images import read_image, write_png
from progrestore.io.video import write_video
from progrestore.layout import RESTORED_RECORD
from progrestore.model.settings import model_settings


def run_restore(params: Section, dataset: Path, text_cache: Path, lora: Path, out: Path, task: str) -> None:
    """Every val clip's degraded first frame + its prompt -> ``<out>/<clip_id>.mp4`` at the clip size.
    Reads ``model``, ``restore`` and ``clip``.

    ``restored.json`` records the window of the clip the model restored (the centre window of the model's
    aspect ratio; outside it the frames keep the input's pixels), which the evaluation scores.
    """
    clip = ClipSettings.from_params(params)
    folder = Path(dataset) / "val"
    entries = read_clip_manifest(folder)  # the inputs are checked before the model is built
    prompts = read_prompts(folder, entries)
    settings = model_settings(params)
    texts = load_text_cache(text_cache, settings.profile)
    model, sampling, _ = sampling_model(params, lora)
    x, y, width, height = centre_window(clip.width, clip.height, settings.width, settings.height)
    with staged_output_dir(
        Path(out), RESTORED_RECORD, overwrite=True
    ) as staging:  # DVC owns the stage's output
        for entry, prompt in tqdm(
            list(zip(entries, prompts, strict=True)), desc=f"restore {task}", unit="clip"
        ):
            degraded = read_image(folder / entry["image"])
            negative = texts[prompt_key(NEGATIVE_PROMPT)]
            frames = restore_image(
                model, degraded, texts[prompt_key(prompt)], negative, clip.frames, sampling
            )
            write_video(staging / f"{entry['clip_id']}.mp4", frames, clip.fps)
            write_png(staging / f"{entry['clip_id']}_last.png", frames[-1])
        record = {
            "family": settings.profile.family.name,
            "profile": settings.profile.name,
            "label": settings.label,
            "model_size": [settings.height, settings.width],
            "positional_embedding": model.positional_embedding(clip.frames),
            "restored_window": {"x": x, "y": y, "width": width, "height": height},
            "sampling": asdict(sampling),
        }
        write_json(staging / RESTORED_RECORD, record)
    print(f"{task}: trajectories -> {out}")


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=tasks.names())
    parser.add_argument("--dataset", type=Path, required=True, help="the task's dataset folder (its val/)")
    parser.add_argument("--text", type=Path, required=True, help="the task's text.safetensors")
    parser.add_argument("--lora", type=Path, required=True, help="the LoRA's folder")
    parser.add_argument("--out", type=Path, required=True, help="the trajectories' folder")


def _run(params: Section, args: argparse.Namespace) -> None:
    run_restore(params, args.dataset, args.text, args.lora, args.out, args.task)


RESTORE = Stage("restore", "the LoRA's trajectories of a task's val clips", _arguments, _run)
