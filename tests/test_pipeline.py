"""The DVC pipeline end to end in a scratch copy of the repository, at a tiny clip size."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from progrestore.evaluate.metrics import get
from progrestore.evaluate.metrics import metrics as metrics_of

from .conftest import REPO, TASKS
from .helpers.dvc_project import BuiltPipeline, copy_project, dvc, edit_params, run
from .test_paper_report import section, table_row
from .test_stage_deps import StageInstance, import_closure, stage_instances

pytestmark = pytest.mark.pipeline
# params read only under another setting than the tiny pipeline's, with the setting that reads them
CONDITIONAL_PARAMS = {
    "prompts.llava": "prompts.captioner: llava",
    "prompts.openai": "prompts.refiner: openai",
}


@pytest.fixture
def repo(pipeline: BuiltPipeline) -> Path:
    """The session's built project (tests/helpers/dvc_project.py): read it; change only a copy, ``own_repo``."""
    return pipeline.repo


@pytest.fixture
def audit(pipeline: BuiltPipeline) -> Path:
    return pipeline.audit


def test_repro_builds_every_task_and_leaves_a_clean_status(repo):
    for task in TASKS:
        for split, clips in (("train", 4), ("val", 2)):
            assert (
                len((repo / "data/datasets" / task / split / "videos.txt").read_text().splitlines()) == clips
            )
        assert (repo / "reports/degrade" / f"{task}.png").is_file()
        assert json.loads((repo / "metrics" / f"{task}.json").read_text())["clips"] == 2
        assert (repo / "reports/evaluate" / f"{task}.png").is_file()
    assert json.loads(dvc("status", "--json", cwd=repo).stdout) == {}
    again = dvc("repro", cwd=repo)
    assert "Running stage" not in again.stdout


def test_a_forced_rerun_of_a_whole_chain_rewrites_dvc_lock_byte_for_byte(own_repo, tmp_path):
    """Every DVC-tracked record is deterministic: one task's chain from prepare to evaluate, training
    from scratch (no checkpoint to resume), rewrites dvc.lock unchanged; the run's costs go to run.json
    and MLflow (a store of its own: the built project's holds one run per evaluate stage)."""
    before = (own_repo / "dvc.lock").read_text()
    shutil.rmtree(own_repo / "models/lowlight/checkpoints")
    store = f"sqlite:///{tmp_path / 'forced.db'}"
    forced = dvc("repro", "-f", "evaluate@lowlight", cwd=own_repo, MLFLOW_TRACKING_URI=store)
    assert "Running stage 'train@lowlight'" in forced.stdout
    assert (own_repo / "dvc.lock").read_text() == before
    costs = json.loads((own_repo / "models/lowlight/run.json").read_text())
    assert costs["resumed_from"] == 0 and costs["seconds_per_step"] > 0 and costs["peak_memory_mb"] > 0
    run(["git", "check-ignore", "-q", "models/lowlight/run.json"], own_repo)  # never committed either
    import mlflow

    mlflow.set_tracking_uri(store)
    (train,) = mlflow.search_runs(experiment_names=["progrestore-train"]).to_dict("records")
    assert train["metrics.run_seconds_per_step"] == costs["seconds_per_step"]
    assert train["metrics.run_resumed_from"] == 0
    # validation during training (on for the tiny profile): its last numbers in train.json, its curves by
    # training step and its trajectories (GIF for the UI, mp4) in the run, its time apart from the steps'
    tiny = yaml.safe_load((own_repo / "params.yaml").read_text())["train"]["tiny"]
    validated = list(range(tiny["validate_every"], tiny["steps"] + 1, tiny["validate_every"]))
    record = json.loads((own_repo / "models/lowlight/train.json").read_text())["validation"]
    assert record["step"] == tiny["steps"] == validated[-1]
    assert list(record["clips"]) == ["lowlight/chelsea_v0"]  # validate_clips: 1, the manifest's first
    client = mlflow.MlflowClient()
    history = client.get_metric_history(train["run_id"], "val/psnr")
    assert [point.step for point in history] == validated
    assert history[-1].value == pytest.approx(record["final"]["psnr"], rel=1e-12)
    assert train["metrics.run_validation_seconds"] == costs["validation_seconds"] > 0
    folder = f"validation/step-{tiny['steps']:06d}"
    assert [f.path for f in client.list_artifacts(train["run_id"], folder)] == [
        f"{folder}/lowlight_chelsea_v0.gif",
        f"{folder}/lowlight_chelsea_v0.mp4",
    ]


def test_outputs_are_copies_of_the_cache_that_verify_and_survive_checkout(repo, own_repo):
    """cache.type (reflink, copy): no write into an output reaches .dvc/cache; a checkout restores them."""
    clip = next((repo / "data/datasets/lowlight/val/videos").glob("*.mp4")).relative_to(repo)
    video, cache = repo / clip, repo / ".dvc/cache/files/md5"  # the links as the repro made them
    assert not video.is_symlink() and video.stat().st_nlink == 1, f"{video} is linked into .dvc/cache"
    assert video.stat().st_ino not in {obj.stat().st_ino for obj in cache.rglob("*") if obj.is_file()}
    verified = run([sys.executable, "-m", "progrestore", "verify"], repo)
    assert verified.stdout.startswith("verify: all ") and verified.stdout.endswith(" match dvc.lock\n")
    before = video.read_bytes()
    (own_repo / clip).unlink()
    dvc("checkout", "degrade@lowlight", cwd=own_repo)
    assert (own_repo / clip).read_bytes() == before
    assert "degrade@lowlight" not in json.loads(dvc("status", "--json", cwd=own_repo).stdout)


def test_a_pushed_run_is_pulled_into_a_fresh_clone_without_rerunning(repo, tmp_path):
    """A DVC remote (here a local folder; S3, GCS or SSH the same way) shares a finished run."""
    work = copy_project(repo, tmp_path / "work")
    assert json.loads(dvc("status", "--json", cwd=work).stdout) == {}  # no test leaves repo edited
    run(["git", "add", "-A"], work)
    run(["git", "commit", "-q", "-m", "finished run"], work)
    dvc("remote", "add", "-d", "shared", str(tmp_path / "remote"), cwd=work)
    dvc("push", cwd=work)
    fresh = tmp_path / "fresh"
    run(["git", "clone", "-q", str(work), str(fresh)], tmp_path)
    dvc("remote", "add", "-d", "shared", str(tmp_path / "remote"), cwd=fresh)
    dvc("pull", cwd=fresh)
    assert json.loads(dvc("status", "--json", cwd=fresh).stdout) == {}
    assert "Running stage" not in dvc("repro", cwd=fresh).stdout
    clip = "data/datasets/deblur/val/manifest.jsonl"
    assert (fresh / clip).read_bytes() == (repo / clip).read_bytes()


def _covers(declared: str, read: str) -> bool:
    return read == declared or read.startswith(declared + ".")


def _params_problems(stage: StageInstance, reads: list[str]) -> list[str]:
    problems = [
        f"{stage.name}: reads {key}, not in its params"
        for key in reads
        if not any(_covers(declared, key) for declared in stage.params)
    ]
    for declared in stage.params:
        used = any(_covers(declared, key) or _covers(key, declared) for key in reads)
        if not used and declared not in CONDITIONAL_PARAMS:
            problems.append(f"{stage.name}: declares {declared}, which it never reads")
    return problems


def test_each_stage_ran_exactly_its_declared_code_and_read_exactly_its_params(repo, audit):
    tasks = yaml.safe_load((repo / "params.yaml").read_text())["tasks"]
    problems = []
    for stage in stage_instances(yaml.safe_load((repo / "dvc.yaml").read_text()), tasks):
        record = json.loads((audit / f"{stage.name}.json").read_text())
        loaded = {f"src/{module}" for module in record["modules"]} | {
            stage.entry.relative_to(REPO).as_posix()
        }
        declared = stage.code_deps
        problems += [f"{stage.name}: ran {path}, not in its deps" for path in sorted(loaded - declared)]
        unseen = declared - import_closure(stage.entry) - loaded  # what neither the source nor the run shows
        problems += [f"{stage.name}: dep {path} neither imported nor loaded" for path in sorted(unseen)]
        problems += _params_problems(stage, record["params"])
    assert not problems, "\n".join(problems)


def test_the_params_check_catches_an_undeclared_and_an_unread_key():
    stage = StageInstance(
        "restore@sr", "sr", "python stages/restore.py sr", (), ("model", "prompts.uniform.sr")
    )
    assert _params_problems(stage, ["model.profile", "restore.steps"]) == [
        "restore@sr: reads restore.steps, not in its params",
        "restore@sr: declares prompts.uniform.sr, which it never reads",
    ]


def test_a_comment_in_the_parameter_module_marks_every_stage_stale(own_repo):
    config = own_repo / "src/progrestore/config.py"
    original = config.read_text()
    config.write_text(original + "# a comment\n")
    stale = set(json.loads(dvc("status", "--json", cwd=own_repo).stdout))
    tasks = yaml.safe_load((own_repo / "params.yaml").read_text())["tasks"]
    assert stale == {
        s.name for s in stage_instances(yaml.safe_load((own_repo / "dvc.yaml").read_text()), tasks)
    }
    config.write_text(original)
    assert json.loads(dvc("status", "--json", cwd=own_repo).stdout) == {}


def test_metrics_plots_gates_and_mlflow_work_on_the_result(repo, tmp_path):
    shown = json.loads(dvc("metrics", "show", "--json", cwd=repo).stdout)
    assert "metrics/deblur.json" in json.dumps(shown)
    dvc("plots", "show", "-o", str(tmp_path / "plots-html"), cwd=repo)
    assert (tmp_path / "plots-html" / "index.html").stat().st_size > 0
    gate = run([sys.executable, "-m", "progrestore.cli", "gate"], repo)
    assert "0 failing" in gate.stdout
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["progrestore-evaluate"])
    assert sorted(runs["tags.dvc_stage"]) == sorted(f"evaluate@{task}" for task in TASKS)
    client = mlflow.MlflowClient()
    history = client.get_metric_history(runs["run_id"][0], "identity/lpips")
    assert [m.step for m in history] == list(range(1, 10))
    against = client.get_metric_history(runs["run_id"][0], "model_vs_vae/lpips")  # the denoiser's share
    assert [m.step for m in against] == list(range(1, 10))
    logged = client.get_run(runs["run_id"][0]).data.metrics
    assert logged["oracle/psnr_spearman"] == 1.0 and "model/tlp" in logged
    for task in TASKS:  # the ceiling is scored as a method, and the model against it, clip by clip
        numbers = json.loads((repo / "metrics" / f"{task}.json").read_text())
        clips = json.loads((repo / "metrics" / task / "clips.json").read_text())
        assert "vae" in numbers["final"] and numbers["final"]["vae"]["ssim"] < 1.0
        per_clip = [clip["model_vs_vae"]["lpips"] for clip in clips.values()]
        assert numbers["against"]["model_vs_vae"]["lpips"] == pytest.approx(
            sum(per_clip) / len(per_clip), abs=1e-12
        )


def test_editing_one_task_marks_only_its_branch_stale(own_repo):
    edit_params(own_repo, degrade__deblur__length_max=[30, 90])
    # evaluate@deblur follows once degrade@deblur has rerun; status lists the stage whose inputs changed
    assert set(json.loads(dvc("status", "--json", cwd=own_repo).stdout)) == {"degrade@deblur"}


def test_prompt_strategy_experiment_reruns_only_the_prompt_consuming_stages(own_repo):
    original = (own_repo / "params.yaml").read_text()
    try:
        edit_params(own_repo, prompts__strategy="scene")
        stale = set(json.loads(dvc("status", "--json", cwd=own_repo).stdout))
        assert stale == {f"prompts@{task}" for task in TASKS}
    finally:
        (own_repo / "params.yaml").write_text(original)
    run(["git", "add", "-A"], own_repo)
    run(["git", "commit", "-qm", "baseline"], own_repo)
    # one task's branch (the status above covers all of them): each stage run costs a torch import
    experiment = dvc(
        "exp", "run", "-n", "scene-prompts", "-S", "prompts.strategy=scene", "evaluate@sr", cwd=own_repo
    )
    ran = {line.split("'")[1] for line in experiment.stdout.splitlines() if line.startswith("Running stage")}
    consumers = ("prompts", "encode_text", "train", "restore", "evaluate")
    assert ran == {f"{stage}@sr" for stage in consumers}
    diff = json.loads(dvc("exp", "diff", "HEAD", "scene-prompts", "--json", cwd=own_repo).stdout)
    assert diff["params"]["params.yaml"]["prompts.strategy"] == {"old": "uniform", "new": "scene"}
    metrics = json.loads(dvc("metrics", "diff", "HEAD", "scene-prompts", "--json", cwd=own_repo).stdout)
    assert "final.model.psnr" in metrics["metrics/sr.json"]  # the model rows of the two strategies
    # the paper's Fig. 2 comparison from the two strategies' revisions, each checked against its dvc.lock
    report = ["report", "--uniform", "HEAD", "--scene", "scene-prompts"]
    run([sys.executable, "-m", "progrestore.cli", *report, "--tasks", "sr"], own_repo)
    text = (own_repo / "reports" / "paper.md").read_text()
    assert (
        "- uniform prompts: `HEAD` (commit " in text and "- scene prompts: `scene-prompts` (commit " in text
    )
    assert "**Plumbing numbers, not results.**" in text and "tiny: randomly initialised tiny" in text
    final = section(text, "#### sr: final frame (9) and temporal coherence")
    header = [cell.strip() for cell in final[1].strip("|").split("|")][2:]
    for key, change in metrics["metrics/sr.json"].items():
        if key.startswith("final.model."):
            column = header.index(get(key.removeprefix("final.model.")).label)
            for strategy, side in (("uniform", "old"), ("scene", "new")):
                assert table_row(final, "`model` (tiny)", strategy)[column] == f"{change[side]:.4f}"
    ceiling = section(text, "#### sr: the model against its autoencoder's ceiling")
    names = [m.name for m in metrics_of()]
    assert "against.model_vs_vae.lpips" in metrics["metrics/sr.json"]  # the model moved: so did its distance
    for key, change in metrics["metrics/sr.json"].items():
        if key.startswith("against.model_vs_vae."):
            column = names.index(key.removeprefix("against.model_vs_vae."))
            for strategy, side in (("uniform", "old"), ("scene", "new")):
                assert table_row(ceiling, strategy)[column] == f"{change[side]:.4f}"
    assert (own_repo / "reports" / "paper" / "sr.png").is_file()
    # every task: the others' prompts did not rerun in the experiment, so they are stale there and left out
    everything = run([sys.executable, "-m", "progrestore.cli", *report, "--out", "reports/all.md"], own_repo)
    for task in set(TASKS) - {"sr"}:
        assert (
            f"{task}: left out: --scene scene-prompts: prompts@{task} ran with prompts.strategy uniform, not "
            f"scene (its outputs are stale); `dvc exp run -S prompts.strategy=scene evaluate@{task}` makes it"
        ) in everything.stdout
    scene = (own_repo / "data/datasets/sr/val/prompt.txt").read_text()
    assert scene == (own_repo / "data/datasets/sr/val/prompt_scene.txt").read_text()


def test_bad_parameter_stops_the_stage_with_its_name(own_repo):
    """clip.frames 10: the data stages take it, a model stage names the rule of the profile's family."""
    original = (own_repo / "params.yaml").read_text()
    try:
        edit_params(own_repo, clip__frames=10)
        result = dvc("repro", "--single-item", "train@sr", cwd=own_repo, check=False)
        assert result.returncode != 0
        assert (
            "clip.frames must be 8k+1 for model.profile tiny (CogVideoX's VAE takes 8k+1 frames: 9, 17, 25, "
            "...), got 10"
        ) in result.stdout + result.stderr
    finally:
        (own_repo / "params.yaml").write_text(original)


def test_an_unknown_task_stops_repro_naming_it(repo, tmp_path):
    """`tasks: [sr, denoise]`: prepare, which DVC runs first, names the bad list before DVC looks for a
    `degrade@denoise` module that does not exist."""
    copy = copy_project(repo, tmp_path / "copy")
    edit_params(copy, tasks=["sr", "denoise"])
    result = dvc("repro", cwd=copy, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    assert (
        "tasks must be a list of known tasks (deblur, lowlight, mixed, sr), got ['sr', 'denoise']" in output
    )
    assert "denoise.py" not in output
