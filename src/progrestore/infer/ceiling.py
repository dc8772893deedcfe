"""The reconstruct stage's computation (:mod:`progrestore.stages.reconstruct`): the autoencoder ceiling, the
evaluation's ``vae`` method.

A latent model restores no better than its VAE reconstructs: each val clip (the synthetic progression) is
brought to the model's size as the model's input is, encoded and decoded by the model's own VAE, and
brought back as the model's frames are (:mod:`progrestore.model.sizing`). Scored like the other methods it
shows how much of a gap to the clean image is the VAE's; the model's frames scored against these
(``model_vs_vae``) show how much is the denoiser's. It needs the VAE only, not the LoRA, so a training
change does not rerun it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from progrestore import tasks
from progrestore.config import ClipSettings, Section
from progrestore.data.framing import centre_window
from progrestore.data.manifest import read_clip_manifest
from progrestore.errors import InputError
from progrestore.io.atomic import staged_output_dir, write_json
from progrestore.io.video import read_video, write_video
from progrestore.layout import RECONSTRUCTED_RECORD
from progrestore.model.families import load_specification
from progrestore.model.settings import model_frames, model_settings
from progrestore.model.sizing import from_model, to_model
from progrestore.model.specification import AUTOENCODER, ModelSpecification


def reconstruct_clip(model: ModelSpecification, clip: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 clip -> its VAE reconstruction at the clip's size: the model's window of each
    frame goes through the autoencoder at the model's size, the rest keeps the clip's pixels."""
    settings = model.settings
    small = np.stack([to_model(frame, settings.height, settings.width) for frame in clip])
    return from_model(model.reconstruct(small), clip)


def run_reconstruct(params: Section, dataset: Path, out: Path, task: str) -> None:
    """Every val clip of ``dataset`` -> ``<out>/<clip_id>.mp4``, and ``reconstructed.json`` (what made them,
    the window of the frames that went through the VAE). Reads ``model`` and ``clip``."""
    tasks.check(task)
    clip_settings = ClipSettings.from_params(params)
    frames = model_frames(params)  # the clip length, checked against the family's rule
    folder = Path(dataset) / "val"
    entries = read_clip_manifest(folder)  # the inputs are checked before the model is built
    settings = model_settings(params)
    model = load_specification(settings, frozenset({AUTOENCODER}))
    x, y, width, height = centre_window(
        clip_settings.width, clip_settings.height, settings.width, settings.height
    )
    with staged_output_dir(
        Path(out), RECONSTRUCTED_RECORD, overwrite=True
    ) as staging:  # DVC owns the stage's output
        for entry in tqdm(entries, desc=f"reconstruct {task}", unit="clip"):
            clip = read_video(folder / entry["video"])
            if clip.shape[0] != frames:
                raise InputError(
                    f"{folder / entry['video']}: {clip.shape[0]} frames, clip.frames is {frames}: "
                    f"run degrade@{task} again"
                )
            write_video(staging / f"{entry['clip_id']}.mp4", reconstruct_clip(model, clip), clip_settings.fps)
        record = {
            "family": settings.profile.family.name,
            "profile": settings.profile.name,
            "label": settings.label,
            "model_size": [settings.height, settings.width],
            "reconstructed_window": {"x": x, "y": y, "width": width, "height": height},
        }
        write_json(staging / RECONSTRUCTED_RECORD, record)
    print(f"{task}: VAE reconstructions -> {out}")
