"""The evaluate stage's library: methods, per-frame scores, reports, MLflow curves."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from progrestore import tracking
from progrestore.data.dataset import build_task_dataset
from progrestore.data.prepare import prepare_images
from progrestore.data.sources import SourceItem
from progrestore.evaluate.frame_scorer import FrameScorer
from progrestore.evaluate.methods import ClipContext, describe, method_trajectory
from progrestore.evaluate.metrics import get
from progrestore.evaluate.progression import progression
from progrestore.evaluate.report import write_report
from progrestore.evaluate.scoring import evaluate_dataset
from progrestore.evaluate.scoring import sheet_rows as sheet_rows_of

from .conftest import TASKS, TINY_CLIP

METHODS = ["oracle", "identity", "classical"]


@pytest.fixture(scope="module")
def scorer() -> FrameScorer:
    return FrameScorer()


@pytest.fixture(scope="module")
def val_folders(tmp_path_factory, settings) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval")
    items = [SourceItem("coffee", "train", "skimage:coffee"), SourceItem("chelsea", "val", "skimage:chelsea")]
    prepare_images(items, root / "images", TINY_CLIP.width, TINY_CLIP.height, "band", skip_bad=False)
    folders = {}
    for task in TASKS:
        build_task_dataset(
            task, settings[task], TINY_CLIP, 3, root / "images", root / task, root / f"{task}.png"
        )
        folders[task] = root / task / "val"
    return folders


@pytest.mark.parametrize("task", TASKS)
def test_every_method_is_scored_per_frame(task, val_folders, scorer):
    evaluation = evaluate_dataset(task, val_folders[task], METHODS, scorer)
    sheet_rows = sheet_rows_of(task, val_folders[task], METHODS)
    summary = evaluation.summary()
    assert summary["clips"] == 2 and set(summary["per_clip"]) == {"chelsea_v0", "chelsea_v1"}
    oracle, identity = summary["per_frame"]["oracle"], summary["per_frame"]["identity"]
    assert (oracle["psnr"][-1], oracle["ssim"][-1], oracle["lpips"][-1]) == (math.inf, 1.0, 0.0)
    assert np.all(np.diff(oracle["psnr"][:-1]) > 0) and np.all(np.diff(oracle["lpips"]) < 0)
    assert len(set(identity["psnr"])) == 1 and identity["psnr"][0] == oracle["psnr"][0]
    assert all(len(series) == 9 for per in summary["per_frame"].values() for series in per.values())
    assert [label.split()[0] for label, _ in sheet_rows] == METHODS


@pytest.mark.parametrize("task", TASKS)
def test_progression_known_answers_on_the_synthetic_clips(task, val_folders, scorer):
    """The oracle improves at every frame (+1; SSIM on one deblur clip aside), the same clip played
    backwards gets -1 (the negation), a repeated frame (identity) is constant: Spearman 0, every step not
    worse, area 0, no frame reaching 90 %."""
    evaluation = evaluate_dataset(task, val_folders[task], ["oracle", "identity"], scorer)
    trends = evaluation.progression()
    for metric in ("psnr", "ssim", "lpips"):
        for i, clip in enumerate(trends["oracle"][metric]):
            assert 0.0 < clip["area"] < 1.0 and clip["frame_90"] is not None
            if (task, metric, i) == ("deblur", "ssim", 0):
                # the one exception: SSIM falls from frame 4 to 5 (0.3437 -> 0.3393) as the blur shortens,
                # one adjacent swap: 1 - 6 * 2 / (9 * 80)
                assert clip["spearman"] == 1.0 - 12.0 / 720.0 and clip["steps_not_worse"] == 7 / 8
                continue
            assert clip["spearman"] == 1.0 and clip["steps_not_worse"] == 1.0
        for clip in trends["identity"][metric]:
            assert clip == {"spearman": 0.0, "steps_not_worse": 1.0, "area": 0.0, "frame_90": None}
        for series, forwards in zip(
            evaluation.values["oracle"][metric], trends["oracle"][metric], strict=True
        ):
            backwards = progression(series[::-1], get(metric))
            if forwards["spearman"] == 1.0:
                assert backwards["spearman"] == -1.0
            else:  # the same ranks reversed: the negation, up to the last bit of 1 - 6 sum d^2 / (n (n^2 - 1))
                assert backwards["spearman"] == pytest.approx(-forwards["spearman"], abs=1e-12)
            assert backwards["steps_not_worse"] == 1.0 - forwards["steps_not_worse"]
            assert backwards["area"] is None and backwards["frame_90"] is None  # starts at the clean image
    assert evaluation.coherence["oracle"]["tlp"] == [0.0, 0.0]
    assert all(v > 0 for v in evaluation.coherence["identity"]["tlp"])  # the reference moves, identity not


def test_classical_baselines_restore_something(val_folders):
    lowlight = json.loads((val_folders["lowlight"] / "manifest.jsonl").read_text().splitlines()[0])
    from progrestore.io.video import read_video

    clip = read_video(val_folders["lowlight"] / lowlight["video"])
    ctx = ClipContext("lowlight", clip[0], 9, clip, lowlight["params"])
    brightened = method_trajectory("classical", ctx)
    assert brightened.shape == clip.shape and brightened[0].mean() > clip[0].mean() + 20
    with pytest.raises(ValueError, match="oracle needs a synthetic clip"):
        method_trajectory("oracle", ClipContext("deblur", clip[0], 9))


def test_report_files_and_plot_rows(val_folders, scorer, tmp_path):
    evaluation = evaluate_dataset("sr", val_folders["sr"], METHODS, scorer)
    summary = evaluation.summary()
    write_report(
        "sr",
        summary,
        describe(METHODS, "sr"),
        {"data": "test fixture"},
        tmp_path / "sr.json",
        {metric: tmp_path / "curves" / metric / "sr.json" for metric in ("psnr", "ssim", "lpips")},
    )
    report = json.loads((tmp_path / "sr.json").read_text())  # the DVC metric: numbers only
    assert set(report) == {"clips", "final", "progression", "coherence"} and report["clips"] == 2
    assert {k: report["progression"]["oracle"][k]["spearman"] for k in ("psnr", "ssim", "lpips")} == {
        "psnr": 1.0,
        "ssim": 1.0,
        "lpips": 1.0,
    }
    assert report["progression"]["identity"]["psnr"] == {
        "spearman": 0.0,
        "steps_not_worse": 1.0,
        "area": 0.0,
        "frame_90": None,
    }
    assert report["coherence"]["oracle"]["tlp"] == 0.0 and report["coherence"]["identity"]["tlp"] > 0
    assert report["final"]["oracle"] == {"psnr": None, "ssim": 1.0, "lpips": 0.0}  # null: infinite PSNR
    assert all(isinstance(v, float) for m in METHODS[1:] for v in report["final"][m].values())
    about = json.loads((tmp_path / "sr" / "about.json").read_text())
    assert about["lpips_weights_sha256"] and "valid region" in about["protocol"]["ssim"]
    assert about["methods"]["classical"] == (
        "the task's classical restorer: bilateral filter (15 px, sigma colour 25, sigma space 15) against "
        "upscaled JPEG blocking, no sharpening"
    )
    rows = json.loads((tmp_path / "curves" / "psnr" / "sr.json").read_text())
    assert [r["frame"] for r in rows] == list(range(1, 10))
    assert rows[-1]["oracle"] is None and rows[0]["identity"] == pytest.approx(
        summary["per_frame"]["identity"]["psnr"][0]
    )

    def no_constants(name: str) -> None:
        raise AssertionError(f"{name} in strict JSON")

    clips = json.loads((tmp_path / "sr" / "clips.json").read_text(), parse_constant=no_constants)
    assert set(clips) == {"chelsea_v0", "chelsea_v1"}
    oracle = clips["chelsea_v0"]["oracle"]
    assert oracle["psnr"] is None and oracle["progression"]["psnr"]["frame_90"] == 9  # inf: clean, capped
    assert oracle["coherence"] == {"tlp": 0.0, "static_change": oracle["coherence"]["static_change"]}
    assert clips["chelsea_v0"]["identity"]["coherence"]["static_change"] == 0.0  # a repeated frame


def test_mlflow_run_holds_step_indexed_curves(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("DVC_STAGE", "evaluate@sr")
    monkeypatch.delenv(tracking.DISABLE_ENV, raising=False)
    with tracking.start_run("test-exp", "run", {"task": "sr"}) as run:
        tracking.log_curve("oracle/psnr", [10.0, 20.0, math.inf])
        run_id = run.info.run_id
    history = mlflow.MlflowClient().get_metric_history(run_id, "oracle/psnr")
    assert [(m.step, m.value) for m in history] == [(1, 10.0), (2, 20.0)]
    tags = mlflow.get_run(run_id).data.tags
    assert tags["dvc_stage"] == "evaluate@sr" and "git_commit" in tags


def test_curves_figure_is_a_deterministic_png(val_folders, scorer, tmp_path):
    from progrestore.evaluate.report import write_curves

    evaluation = evaluate_dataset("deblur", val_folders["deblur"], METHODS, scorer)
    curves = evaluation.summary()["per_frame"]
    write_curves("deblur", curves, "test fixture", tmp_path / "a.png")
    write_curves("deblur", curves, "test fixture", tmp_path / "b.png")
    data = (tmp_path / "a.png").read_bytes()
    assert data.startswith(b"\x89PNG") and data == (tmp_path / "b.png").read_bytes()


def test_each_distinct_image_goes_through_alexnet_once_per_clip_and_the_values_do_not_change():
    """A clip's frames recur (against the clean image, against their neighbours for tLP, against another
    trajectory): the remembered features give the values of computing every pass anew, with one pass per
    distinct image."""
    from progrestore.evaluate.perceptual import Lpips, LpipsMeasure
    from progrestore.evaluate.scoring import Sample, score_samples

    network = Lpips()
    passes = []
    counted = network.features
    network.features = lambda images: passes.append(len(images)) or counted(images)
    rng = np.random.default_rng(3)
    clean = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    reference = np.clip(
        clean + rng.normal(0, 30, (9, 32, 48, 3)) * np.linspace(1, 0, 9)[:, None, None, None], 0, 255
    )
    model = np.clip(clean + rng.normal(0, 20, (9, 32, 48, 3)), 0, 255).astype(np.uint8)
    vae = np.clip(clean + rng.normal(0, 10, (9, 32, 48, 3)), 0, 255).astype(np.uint8)
    sample = Sample("clip", clean, {"vae": vae, "model": model}, reference.astype(np.uint8))
    remembered = score_samples(
        [sample], ["vae", "model"], FrameScorer({"lpips": LpipsMeasure(network)}), "t", ("model", "vae")
    )
    assert sum(passes) == 1 + 9 + 9 + 8  # clean, vae, model, the reference's frames 1-8 (9 is clean)

    class Fresh(LpipsMeasure):  # every pass anew: nothing remembered
        def features(self, images):
            self._features.clear()
            return super().features(images)

    anew = score_samples(
        [sample], ["vae", "model"], FrameScorer({"lpips": Fresh(Lpips())}), "t", ("model", "vae")
    )
    assert remembered.values == anew.values and remembered.against == anew.against
    assert remembered.coherence == anew.coherence
