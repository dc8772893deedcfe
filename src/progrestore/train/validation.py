"""Validation during training: every ``train.validate_every`` optimizer steps the main process samples a
fixed set of val clips with the LoRA as it stands, scores them with the evaluation's own scorer and logs
the numbers and the trajectories to MLflow, so that a LoRA that is not learning shows it after minutes.

The clips are the first ``train.validate_clips`` of each trained task's val split (manifest order): the
degraded first frame and the clean image brought to the model's size as the model's input is
(``model.sizing.to_model``), and the prompt's cached embedding. Sampling is ``restore``'s (guidance,
sampler, dynamic CFG, seed) with ``train.validate_steps`` steps and ``train.attention``'s kernel, on the
unfused LoRA (fusing would change the weights being trained). The scores are at the model's size: a
training signal, not the evaluate stage's numbers, which score the whole clip.

Validation leaves the training untouched: it samples under ``inference_mode`` with its own seeded
generator and the global random state forked, and puts the denoiser back in training mode; the LoRA a
run writes is the same byte for byte with validation on or off (tests/test_validation.py).
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from progrestore import tracking
from progrestore.config import Section
from progrestore.data.manifest import read_clip_manifest, read_prompts
from progrestore.evaluate.frame_scorer import FrameScorer
from progrestore.evaluate.metrics import metrics
from progrestore.evaluate.progression import mean_or_null, progression
from progrestore.io.encoded import NEGATIVE_PROMPT, load_text_cache, prompt_key
from progrestore.io.images import read_image
from progrestore.io.video import write_video
from progrestore.model.families import sampler_setting, specification_class
from progrestore.model.settings import ModelSettings
from progrestore.model.sizing import to_model
from progrestore.model.specification import ModelSpecification, Sampling, attention_setting

ARTIFACTS = "validation"  # MLflow artifact folder: validation/step-<n>/<task>_<clip>.{mp4,gif}
GIF_FRAME_MS = 200  # 5 fps, the clips' rate


@dataclass(frozen=True)
class ValidationConfig:
    """``train.validate_*`` (``train.tiny`` on top for the tiny profiles) and the sampling they imply."""

    every: int  # optimizer steps between validations; 0: none
    clips: int  # per task
    sampling: Sampling | None  # None when off

    @classmethod
    def from_params(cls, params: Section, settings: ModelSettings) -> ValidationConfig:
        """Reads ``train.validate_every``, ``train.validate_clips``, ``train.validate_steps``,
        ``train.attention`` and ``restore.{guidance_scale, scheduler, dynamic_cfg, seed}`` (not
        ``restore.steps`` or its levers: a change there does not retrain)."""
        train = params.section("train")
        if settings.profile.tiny:
            train = train.merged("tiny")
        every = train.integer("validate_every", 0)
        if not every:
            return cls(0, 0, None)
        restore = params.section("restore")
        sampling = Sampling(
            steps=train.integer("validate_steps", 1, 1000),
            guidance_scale=restore.number("guidance_scale", 1.0, 50.0),
            seed=restore.integer("seed", 0),
            scheduler=sampler_setting(restore, settings),
            dynamic_cfg=restore.boolean("dynamic_cfg") and specification_class(settings.profile).dynamic_cfg,
            attention=attention_setting(train),
        )
        return cls(every, train.integer("validate_clips", 1, 64), sampling)


@dataclass
class ValidationClip:
    name: str  # <task>/<clip_id>
    image: np.ndarray  # the degraded first frame at the model's size
    clean: np.ndarray  # the clean image at the model's size
    prompt_embeds: torch.Tensor
    negative_embeds: torch.Tensor


def validation_clips(
    tasks: list[str], datasets: Path, encoded_text: dict[str, Path], settings: ModelSettings, count: int
) -> list[ValidationClip]:
    """The first ``count`` val clips of each task (``<datasets>/<task>/val``), with their prompts'
    embeddings from each task's text cache (``encoded_text[task]``)."""
    clips = []
    for task in tasks:
        folder = Path(datasets) / task / "val"
        every_entry = read_clip_manifest(folder)
        entries, prompts = every_entry[:count], read_prompts(folder, every_entry)[:count]
        texts = load_text_cache(encoded_text[task], settings.profile)
        for entry, prompt in zip(entries, prompts, strict=True):
            clips.append(
                ValidationClip(
                    f"{task}/{entry['clip_id']}",
                    to_model(read_image(folder / entry["image"]), settings.height, settings.width),
                    to_model(read_image(folder / entry["clean"]), settings.height, settings.width),
                    texts[prompt_key(prompt)],
                    texts[prompt_key(NEGATIVE_PROMPT)],
                )
            )
    return clips


def _finite(value: float | int | None) -> float | int | None:
    return value if value is None or math.isfinite(value) else None  # strict JSON: PSNR inf -> null


def summary(step: int, names: list[str], scores: list[dict[str, list[float]]], sampling: Sampling) -> dict:
    """What one validation found: per metric, the clips' mean per frame and at the last frame, and the
    means of the progression measures; each clip's last-frame values."""
    per_frame, final, measures = {}, {}, {}
    for metric in metrics():
        series = [clip[metric.name] for clip in scores]
        frames = [mean_or_null([s[t] for s in series]) for t in range(len(series[0]))]
        per_frame[metric.name] = [_finite(v) for v in frames]
        final[metric.name] = per_frame[metric.name][-1]
        rows = [progression(s, metric) for s in series]
        measures[metric.name] = {key: mean_or_null([row[key] for row in rows]) for key in rows[0]}
    clips = {name: {m: _finite(s[m][-1]) for m in final} for name, s in zip(names, scores, strict=True)}
    return {
        "step": step,
        "sampling": asdict(sampling),
        "final": final,
        "per_frame": per_frame,
        "progression": measures,
        "clips": clips,
    }


def mlflow_values(record: dict) -> dict[str, float | None]:
    """One validation as step-indexed MLflow metrics: ``val/<metric>`` (last frame),
    ``val/<metric>_frame<t>`` and ``val/<metric>_<measure>``."""
    values: dict[str, float | None] = {}
    for metric, final in record["final"].items():
        values[f"val/{metric}"] = final
        for t, value in enumerate(record["per_frame"][metric], start=1):
            values[f"val/{metric}_frame{t}"] = value
        for measure, value in record["progression"][metric].items():
            values[f"val/{metric}_{measure}"] = value
    return values


def write_gif(path: Path, frames: np.ndarray) -> None:
    """The trajectory as a looping GIF, which the MLflow UI shows inline (it plays no mp4)."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=GIF_FRAME_MS, loop=0)


class Validator:
    """Samples and scores the validation clips; called on the main process only."""

    def __init__(
        self,
        model: ModelSpecification,
        clips: list[ValidationClip],
        config: ValidationConfig,
        frames: int,
        fps: int,
    ):
        self.model, self.clips, self.config, self.frames, self.fps = model, clips, config, frames, fps
        self.scorer = FrameScorer()
        self.last: dict | None = None
        self.seconds = 0.0  # all validations together: not part of any step's time

    def trajectories(self) -> list[np.ndarray]:
        """Each clip's trajectory with the denoiser as it is now, the training state left as it was."""
        denoiser = self.model.denoiser
        training = denoiser.training
        denoiser.eval()
        try:
            with torch.random.fork_rng(devices=[]), torch.inference_mode():
                return [
                    self.model.sample(
                        clip.image,
                        clip.prompt_embeds,
                        clip.negative_embeds,
                        self.frames,
                        self.config.sampling,
                    )
                    for clip in self.clips
                ]
        finally:
            denoiser.train(training)

    def __call__(self, step: int, track: bool) -> dict:
        """Validate after optimizer step ``step``; with ``track``, log to the active MLflow run."""
        start = time.perf_counter()
        trajectories = self.trajectories()
        scores = [
            self.scorer.score(frames, self.scorer.reference(clip.clean))
            for frames, clip in zip(trajectories, self.clips, strict=True)
        ]
        record = summary(step, [clip.name for clip in self.clips], scores, self.config.sampling)
        if track:
            tracking.log_step(mlflow_values(record), step)
            with tempfile.TemporaryDirectory(prefix="progrestore-validation-") as scratch:
                files = []
                for frames, clip in zip(trajectories, self.clips, strict=True):
                    stem = Path(scratch) / clip.name.replace("/", "_")
                    write_video(stem.with_suffix(".mp4"), frames, self.fps)
                    write_gif(stem.with_suffix(".gif"), frames)
                    files += [stem.with_suffix(".mp4"), stem.with_suffix(".gif")]
                tracking.log_artifacts(files, f"{ARTIFACTS}/step-{step:06d}")
        seconds = time.perf_counter() - start
        self.seconds += seconds
        if track:
            tracking.log_step({"val/seconds": seconds}, step)
        finals = ", ".join(f"{m} {v:.4g}" for m, v in record["final"].items() if v is not None)
        print(f"validation at step {step} ({len(self.clips)} clips, {seconds:.1f} s): {finals}")
        self.last = record
        return record
