"""The DVC pipeline end to end in a scratch copy of the repository, at a tiny clip size."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO

pytestmark = pytest.mark.pipeline


def _run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = os.environ | {
        "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "dvc", *args], cwd, check)


def _edit_params(repo: Path, **changes) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = params
        for key in parents:
            node = node[key]
        node[leaf] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pipeline")
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(REPO / name, root / name)
    for folder in ("stages", "src"):
        shutil.copytree(
            REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    _run(["git", "init", "-q"], root)
    _dvc("init", "-q", cwd=root)
    _edit_params(
        root,
        clip__width=160,
        clip__height=96,
        data__sample__train=["astronaut", "coffee"],
        data__sample__val=["chelsea"],
    )
    _dvc("repro", cwd=root)
    return root


def test_repro_builds_every_task_and_leaves_a_clean_status(repo):
    for task in ("sr", "deblur", "lowlight"):
        for split, clips in (("train", 4), ("val", 2)):
            assert (
                len((repo / "data/datasets" / task / split / "videos.txt").read_text().splitlines()) == clips
            )
        assert (repo / "reports/degrade" / f"{task}.png").is_file()
        assert json.loads((repo / "metrics" / f"{task}.json").read_text())["clips"] == 2
        assert (repo / "reports/evaluate" / f"{task}.png").is_file()
    assert json.loads(_dvc("status", "--json", cwd=repo).stdout) == {}
    again = _dvc("repro", cwd=repo)
    assert "Running stage" not in again.stdout


def test_metrics_plots_gates_and_mlflow_work_on_the_result(repo):
    shown = json.loads(_dvc("metrics", "show", "--json", cwd=repo).stdout)
    assert "metrics/deblur.json" in json.dumps(shown)
    _dvc("plots", "show", "-o", str(repo / "plots-html"), cwd=repo)
    assert (repo / "plots-html" / "index.html").stat().st_size > 0
    gate = _run([sys.executable, "-m", "progrestore.cli", "gate"], repo)
    assert "0 failing" in gate.stdout
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["progrestore-evaluate"])
    assert sorted(runs["tags.dvc_stage"]) == ["evaluate@deblur", "evaluate@lowlight", "evaluate@sr"]
    history = mlflow.MlflowClient().get_metric_history(runs["run_id"][0], "identity/lpips")
    assert [m.step for m in history] == list(range(1, 10))


def test_editing_one_task_marks_only_its_branch_stale(repo):
    original = (repo / "params.yaml").read_text()
    try:
        _edit_params(repo, degrade__deblur__length_max=[30, 90])
        # evaluate@deblur follows once degrade@deblur has rerun; status lists the stage whose inputs changed
        assert set(json.loads(_dvc("status", "--json", cwd=repo).stdout)) == {"degrade@deblur"}
    finally:
        (repo / "params.yaml").write_text(original)


def test_prompt_strategy_experiment_reruns_only_the_prompt_consuming_stages(repo):
    original = (repo / "params.yaml").read_text()
    try:
        _edit_params(repo, prompts__strategy="scene")
        stale = set(json.loads(_dvc("status", "--json", cwd=repo).stdout))
        assert stale == {"prompts@sr", "prompts@deblur", "prompts@lowlight"}
    finally:
        (repo / "params.yaml").write_text(original)
    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-qm", "baseline"], repo)
    run = _dvc("exp", "run", "-n", "scene-prompts", "-S", "prompts.strategy=scene", cwd=repo)
    ran = {line.split("'")[1] for line in run.stdout.splitlines() if line.startswith("Running stage")}
    consumers = ("prompts", "encode_text", "train", "restore", "evaluate")
    assert ran == {f"{stage}@{task}" for stage in consumers for task in ("sr", "deblur", "lowlight")}
    diff = json.loads(_dvc("exp", "diff", "HEAD", "scene-prompts", "--json", cwd=repo).stdout)
    assert diff["params"]["params.yaml"]["prompts.strategy"] == {"old": "uniform", "new": "scene"}
    metrics = json.loads(_dvc("metrics", "diff", "HEAD", "scene-prompts", "--json", cwd=repo).stdout)
    assert "final.model.psnr" in metrics["metrics/sr.json"]  # the model rows of the two strategies
    scene = (repo / "data/datasets/sr/val/prompt.txt").read_text()
    assert scene == (repo / "data/datasets/sr/val/prompt_scene.txt").read_text()


def test_bad_parameter_stops_the_stage_with_its_name(repo):
    original = (repo / "params.yaml").read_text()
    try:
        _edit_params(repo, clip__frames=10)
        result = _dvc("repro", "degrade@sr", cwd=repo, check=False)
        assert result.returncode != 0
        assert "clip.frames must be 8k+1" in result.stdout + result.stderr
    finally:
        (repo / "params.yaml").write_text(original)
