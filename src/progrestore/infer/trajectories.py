"""The restore stage's computation: trajectories of a task's val clips (the ``model`` method of the
evaluation).

Under ``accelerate launch`` (or with ``PROGRESTORE_PROCESSES=N``, see
:func:`progrestore.stages.restore.launch_processes`) every process samples its share of the clips on its own device; each clip is sampled with the same seeded
generator, so its bytes do not depend on the process that made it. Finished clips are kept beside the
output (:func:`~progrestore.io.atomic.kept_work_dir`) until all are done, so that an interrupted run,
rerun with the same settings, inputs and code, samples only the clips that are missing.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from progrestore.config import ClipSettings, Section
from progrestore.data.framing import centre_window
from progrestore.data.manifest import read_clip_manifest, read_prompts
from progrestore.entry import loaded_module_files
from progrestore.infer.restore import lora_file, restore_image, sampling_model, sampling_settings
from progrestore.io.atomic import (
    check_output_dir,
    kept_work_dir,
    link_or_copy,
    staged_output_dir,
    start_kept_work,
    write_json,
)
from progrestore.io.encoded import NEGATIVE_PROMPT, load_text_cache, prompt_key
from progrestore.io.images import read_image, write_png
from progrestore.io.video import write_video
from progrestore.layout import RESTORED_RECORD
from progrestore.model.settings import ModelSettings, model_frames, model_settings


def clip_files(clip_id: str) -> tuple[str, str]:
    """A restored clip's files, the video first: the still is written last, after the video."""
    return f"{clip_id}.mp4", f"{clip_id}_last.png"


def restore_fingerprint(params: Section, device: str, inputs: RestoreInputs) -> str:
    """What a kept clip must have been made by to be reused: the settings, each clip's prompt, the input
    files (images, manifest, embeddings, LoRA), the code, and the device kind and torch build (CPU and GPU
    samples differ in their last bits)."""
    prompts = [(entry["clip_id"], prompt) for entry, _, prompt in inputs.work]
    settings = (params.raw("model"), params.raw("restore"), params.raw("clip"), device, torch.__version__)
    digest = hashlib.sha256(repr((*settings, prompts)).encode())
    for path in [*inputs.files, *loaded_module_files()]:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class RestoreInputs:
    """The stage's inputs, checked."""

    clip: ClipSettings
    settings: ModelSettings
    work: list[tuple[dict, Path, str]]  # (manifest entry, degraded image, prompt), in manifest order
    texts: dict[str, torch.Tensor]
    kept: Path  # where finished clips wait for the others
    files: list[Path]  # the input files the kept clips' fingerprint reads


def restore_inputs(
    params: Section, dataset: Path, text_cache: Path, lora: Path, out: Path, check_out: bool = True
) -> RestoreInputs:
    """The inputs, parameters and (with ``check_out``) output checked before the model is built; under
    ``PROGRESTORE_PROCESSES`` also once before the processes start, so that a bad input is one line.
    The output check makes and removes folders: one process alone makes it, as several would race."""
    clip = ClipSettings.from_params(params)
    folder = Path(dataset) / "val"
    entries = read_clip_manifest(folder)
    prompts = read_prompts(folder, entries)
    settings = model_settings(params)
    model_frames(params)
    sampling_settings(params.section("restore"), settings)
    texts = load_text_cache(text_cache, settings.profile)
    if check_out:
        check_output_dir(Path(out), RESTORED_RECORD, overwrite=True)  # DVC owns the stage's output
    kept = kept_work_dir(Path(out))
    images = [folder / entry["image"] for entry in entries]
    files = [*images, folder / "manifest.jsonl", Path(text_cache), lora_file(lora, settings)]
    return RestoreInputs(clip, settings, list(zip(entries, images, prompts, strict=True)), texts, kept, files)


def run_restore(params: Section, dataset: Path, text_cache: Path, lora: Path, out: Path, task: str) -> None:
    """Every val clip's degraded first frame + its prompt -> ``<out>/<clip_id>.mp4`` at the clip size.
    Reads ``model``, ``restore`` and ``clip``.

    ``restored.json`` records the window of the clip the model restored (the centre window of the model's
    aspect ratio; outside it the frames keep the input's pixels), which the evaluation scores. The main
    process writes it and publishes the folder once every process has sampled its clips.
    """
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())  # on GPUs: this process's cuda:i is current
    inputs = restore_inputs(params, dataset, text_cache, lora, out, check_out=state.is_main_process)
    clip, settings, texts, kept = inputs.clip, inputs.settings, inputs.texts, inputs.kept
    model, sampling, _ = sampling_model(params, lora)
    x, y, width, height = centre_window(clip.width, clip.height, settings.width, settings.height)
    if state.is_main_process:  # once the model is loaded, so that its code is in the fingerprint
        start_kept_work(kept, restore_fingerprint(params, state.device.type, inputs))
    state.wait_for_everyone()  # kept clips of another fingerprint are gone before any process looks
    with state.split_between_processes(inputs.work) as share:  # consecutive runs, in manifest order
        missing = [
            item for item in share if not all((kept / n).is_file() for n in clip_files(item[0]["clip_id"]))
        ]
        for entry, image, prompt in tqdm(missing, desc=f"restore {task}", unit="clip"):
            frames = restore_image(
                model,
                read_image(image),
                texts[prompt_key(prompt)],
                texts[prompt_key(NEGATIVE_PROMPT)],
                clip.frames,
                sampling,
            )
            video, last = clip_files(entry["clip_id"])
            write_video(kept / video, frames, clip.fps)  # each renamed into place when complete
            write_png(kept / last, frames[-1])
        reused = len(share) - len(missing)
    print(
        f"{task}: process {state.process_index}: {len(missing)} clips sampled, {reused} kept from an earlier run"
    )
    state.wait_for_everyone()
    if not state.is_main_process:
        return
    with staged_output_dir(Path(out), RESTORED_RECORD, overwrite=True) as staging:
        for entry, _, _ in inputs.work:
            for name in clip_files(entry["clip_id"]):
                link_or_copy(kept / name, staging / name)
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
    shutil.rmtree(kept)
    print(f"{task}: trajectories -> {out}")
