"""Scoring: the one loop that scores every method's trajectory per frame (val clips and ReLoBlur pairs
alike) with :class:`~progrestore.evaluate.frame_scorer.FrameScorer`, and the data model of its results.
Writing them is :mod:`.report`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from progrestore.data.manifest import read_clip_manifest
from progrestore.errors import InputError
from progrestore.evaluate.frame_scorer import FrameScorer
from progrestore.evaluate.methods import MADE_BY_STAGE, ClipContext, method_trajectory
from progrestore.evaluate.metrics import metrics
from progrestore.evaluate.progression import COHERENCE, mean_or_null, progression, static_change, tlp
from progrestore.io.images import read_image
from progrestore.io.video import read_video

SHEET_CLIPS = 1
AGAINST = "{}_vs_{}"  # the name of one method's scores against another's frames (model_vs_vae)


@dataclass
class Evaluation:
    """Scores of several methods over several clips: values[method][metric] is a clips x frames list,
    coherence[method][measure] a list over clips (only where a reference trajectory was known), and
    against[<a>_vs_<b>][metric] a clips x frames list of method a's frames scored against method b's."""

    methods: list[str]
    values: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    clip_ids: list[str] = field(default_factory=list)
    coherence: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    against: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)

    def add(
        self,
        clip_id: str,
        scores: dict[str, dict[str, list[float]]],
        coherence: dict[str, dict[str, float | None]] | None = None,
        against: dict[str, dict[str, list[float]]] | None = None,
    ) -> None:
        self.clip_ids.append(clip_id)
        for table, given in ((self.values, scores), (self.against, against or {})):
            for name, per_metric in given.items():
                for metric, series in per_metric.items():
                    table.setdefault(name, {}).setdefault(metric, []).append(series)
        for method, per_measure in (coherence or {}).items():
            for name, value in per_measure.items():
                self.coherence.setdefault(method, {}).setdefault(name, []).append(value)

    def per_frame(self) -> dict[str, dict[str, list[float]]]:
        return _means(self.values)

    def restricted(self, methods: list[str]) -> Evaluation:
        """The scores of ``methods`` only, in that order (with the comparisons between methods)."""
        coherence = {m: self.coherence[m] for m in methods if m in self.coherence}
        values = {m: self.values[m] for m in methods}
        return Evaluation(methods, values, list(self.clip_ids), coherence, dict(self.against))

    def merged(self, other: Evaluation, methods: list[str]) -> Evaluation:
        """This evaluation's and ``other``'s scores (the same clips), the methods in the order given."""
        if other.clip_ids != self.clip_ids:
            raise InputError(
                "the baseline scores and the model's are of different clips: run both stages again"
            )
        values, coherence = self.values | other.values, self.coherence | other.coherence
        kept = {m: coherence[m] for m in methods if m in coherence}
        against = self.against | other.against
        return Evaluation(methods, {m: values[m] for m in methods}, list(self.clip_ids), kept, against)

    def progression(self) -> dict[str, dict[str, list[dict]]]:
        """progression[method][metric]: each clip's monotonicity and progress (registered metrics only)."""
        return {
            method: {
                m.name: [progression(series, m) for series in per[m.name]] for m in metrics() if m.name in per
            }
            for method, per in self.values.items()
        }

    def summary(self) -> dict:
        curves, clips = self.per_frame(), self.progression()
        means = {
            method: {
                metric: {key: mean_or_null([clip[key] for clip in rows]) for key in rows[0]}
                for metric, rows in per.items()
            }
            for method, per in clips.items()
        }
        coherence = {
            method: {name: mean_or_null(per[name]) for name in COHERENCE}
            for method, per in self.coherence.items()
        }
        per_clip = {}
        for i, clip_id in enumerate(self.clip_ids):
            per_clip[clip_id] = {}
            for method, per in self.values.items():
                entry: dict = {k: rows[i][-1] for k, rows in per.items()}
                entry["progression"] = {metric: rows[i] for metric, rows in clips[method].items()}
                if method in self.coherence:
                    entry["coherence"] = {name: self.coherence[method][name][i] for name in COHERENCE}
                per_clip[clip_id][method] = entry
        for name, per in self.against.items():
            for i, clip_id in enumerate(self.clip_ids):
                per_clip[clip_id][name] = {k: rows[i][-1] for k, rows in per.items()}
        against = _means(self.against)
        return {
            "clips": len(self.clip_ids),
            "final": {m: {k: series[-1] for k, series in per.items()} for m, per in curves.items()},
            "per_frame": curves,
            "progression": means,
            "coherence": coherence,
            "against": {
                name: {"final": {k: series[-1] for k, series in per.items()}, "per_frame": per}
                for name, per in against.items()
            },
            "per_clip": per_clip,
        }


def _means(table: dict[str, dict[str, list[list[float]]]]) -> dict[str, dict[str, list[float]]]:
    """{name: {metric: the mean over clips of each frame's value}}."""
    return {
        name: {metric: [float(v) for v in np.mean(rows, axis=0)] for metric, rows in per_metric.items()}
        for name, per_metric in table.items()
    }


@dataclass(frozen=True)
class Window:
    """The region of the frames that is scored: (x, y, width, height) in pixels."""

    x: int
    y: int
    width: int
    height: int

    def crop(self, images: np.ndarray) -> np.ndarray:
        """The window of an (H, W, 3) image or a (T, H, W, 3) trajectory, contiguous."""
        return np.ascontiguousarray(
            images[..., self.y : self.y + self.height, self.x : self.x + self.width, :]
        )


@dataclass(frozen=True)
class Sample:
    """One thing scored: a val clip or a ReLoBlur pair, at the resolution it is scored at."""

    sample_id: str
    clean: np.ndarray
    trajectories: dict[str, np.ndarray]
    reference_trajectory: np.ndarray | None = None  # the synthetic clip: what coherence is measured against
    mask: np.ndarray | None = None  # the moving region, for the masked variants


def score_samples(
    samples: Iterable[Sample],
    methods: list[str],
    scorer: FrameScorer,
    desc: str,
    against: tuple[str, str] | None = None,
) -> Evaluation:
    """The one scoring loop: every method's trajectory of every sample, per frame, with its coherence
    against the sample's reference trajectory when it has one; ``against`` = (a, b): also method a's
    trajectory scored frame by frame against method b's (``Evaluation.against``)."""
    evaluation = Evaluation(methods)
    for sample in tqdm(samples, desc=desc, unit="clip"):
        reference = scorer.reference(sample.clean)
        scores = {m: scorer.score(f, reference, sample.mask) for m, f in sample.trajectories.items()}
        compared = None
        if against is not None:
            compared = {
                AGAINST.format(*against): scorer.score_against(*(sample.trajectories[m] for m in against))
            }
        coherence = None
        if sample.reference_trajectory is not None:
            steps = scorer.consecutive("lpips", sample.reference_trajectory)
            coherence = {
                m: {
                    "tlp": tlp(scorer.consecutive("lpips", f), steps),
                    "static_change": static_change(f, sample.reference_trajectory),
                }
                for m, f in sample.trajectories.items()
            }
        evaluation.add(sample.sample_id, scores, coherence, compared)
    return evaluation


def scored_trajectories(ctx: ClipContext, methods: list[str], window: Window | None) -> dict[str, np.ndarray]:
    """Every method's trajectory of one clip, cropped to ``window`` (if any): what is scored and shown.
    The methods see the whole frame; only the scoring is restricted to the window."""
    trajectories = {method: method_trajectory(method, ctx) for method in methods}
    return trajectories if window is None else {m: window.crop(f) for m, f in trajectories.items()}


def _clip_context(task: str, split_dir: Path, entry: dict, methods: list[str], made: Mapping[str, Path]):
    """One clip's context, with the trajectories the model stages wrote for it (``made``: method -> folder)."""
    clip = read_video(Path(split_dir) / entry["video"])
    trajectories = {}
    for method in (m for m in methods if m in MADE_BY_STAGE):
        path = Path(made.get(method, "")) / f"{entry['clip_id']}.mp4"
        if not path.is_file():
            stage = MADE_BY_STAGE[method]
            raise InputError(f"{path} not found: run the {stage} stage first (dvc repro {stage}@{task})")
        trajectories[method] = read_video(path)
    return ClipContext(task, clip[0], len(clip), clip, entry["params"], trajectories)


def _clip_samples(
    task: str, split_dir: Path, methods: list[str], made: Mapping[str, Path], window: Window | None
) -> Iterator[Sample]:
    for entry in read_clip_manifest(split_dir):
        ctx = _clip_context(task, split_dir, entry, methods, made)
        clean = read_image(Path(split_dir) / entry["clean"])
        clip = ctx.clip
        if window is not None:
            clean, clip = window.crop(clean), window.crop(clip)
        yield Sample(entry["clip_id"], clean, scored_trajectories(ctx, methods, window), clip)


def evaluate_dataset(
    task: str,
    split_dir: Path,
    methods: list[str],
    scorer: FrameScorer,
    made: Mapping[str, Path] | None = None,
    window: Window | None = None,
    against: tuple[str, str] | None = None,
) -> Evaluation:
    """Score ``methods`` on every clip listed in ``<split_dir>/manifest.jsonl`` (inside ``window`` if given);
    ``made``: the folders of the model stages' trajectories, by method; ``against``: see :func:`score_samples`."""
    samples = _clip_samples(task, split_dir, methods, made or {}, window)
    return score_samples(samples, methods, scorer, f"evaluate {task}", against)


def sheet_rows(
    task: str,
    split_dir: Path,
    methods: list[str],
    made: Mapping[str, Path] | None = None,
    display: dict[str, str] | None = None,
    window: Window | None = None,
) -> list:
    """Every method's trajectory (inside ``window``) of the first clips, labelled, for the contact sheet."""
    rows, names = [], display or {}
    where = "" if window is None else f", window {window.width}x{window.height}+{window.x}+{window.y}"
    for entry in read_clip_manifest(split_dir)[:SHEET_CLIPS]:
        ctx = _clip_context(task, split_dir, entry, methods, made or {})
        for method, frames in scored_trajectories(ctx, methods, window).items():
            rows.append((f"{names.get(method, method)} {entry['clip_id']}{where}", frames))
    return rows
