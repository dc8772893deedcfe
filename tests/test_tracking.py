"""MLflow tracking stays inside the working folder, also when that folder is a copy."""

from __future__ import annotations

import multiprocessing
import os
import shutil

import pytest

from progrestore import tracking


def _track(root, monkeypatch, tag: str) -> None:
    monkeypatch.chdir(root)
    monkeypatch.setenv("DVC_ROOT", str(root))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "unset-at-teardown")  # mlflow exports the URI it is given:
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # recorded here, the variable is restored after the test
    monkeypatch.delenv(tracking.DISABLE_ENV, raising=False)
    (root / "result.txt").write_text(tag)
    with tracking.start_run("progrestore-test", tag, {"tag": tag}):
        tracking.log_artifacts([root / "result.txt"])


def _artifacts(root) -> list[str]:
    return sorted(p.read_text() for p in (root / "mlartifacts").rglob("result.txt"))


def test_a_copied_folder_writes_its_artifacts_into_itself(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    original, copy = tmp_path / "original", tmp_path / "copy"
    original.mkdir()
    _track(original, monkeypatch, "first")
    assert _artifacts(original) == ["first"]
    shutil.copytree(original, copy)
    _track(copy, monkeypatch, "in the copy")
    assert _artifacts(original) == ["first"]  # nothing leaked into the original
    assert _artifacts(copy) == ["first", "in the copy"]
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{copy / 'mlflow.db'}")
    names = sorted(e.name for e in mlflow.search_experiments())
    assert "progrestore-test" in names and any(n.startswith("progrestore-test (id ") for n in names)
    _track(copy, monkeypatch, "again")  # the copy's own experiment is reused from now on
    assert len(mlflow.search_experiments()) == len(names) and _artifacts(original) == ["first"]


def test_a_run_starts_when_a_parallel_run_creates_its_experiment_first(tmp_path, monkeypatch):
    """`dvc queue start -j 2`: the other experiment creates (or renames) the MLflow experiment between this
    one's look-up and its own create; this run must still start, in that experiment (it failed once)."""
    pytest.importorskip("mlflow")
    import mlflow

    create = mlflow.create_experiment

    def raced(name, artifact_location=None, **extra):
        create(name, artifact_location=artifact_location)  # the parallel process, a moment earlier
        return create(name, artifact_location=artifact_location, **extra)

    monkeypatch.setattr(mlflow, "create_experiment", raced)
    root = tmp_path / "repo"
    root.mkdir()
    _track(root, monkeypatch, "raced")
    assert _artifacts(root) == ["raced"]
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    assert [e.name for e in mlflow.search_experiments()].count("progrestore-test") == 1


def _start_together(root: str, tag: str, barrier) -> None:
    """One of several processes that open the same new store at the same moment."""
    os.environ["DVC_ROOT"] = root
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop(tracking.DISABLE_ENV, None)
    import mlflow  # noqa: F401  (imported before the barrier: the race is in opening the store)

    barrier.wait()
    with tracking.start_run("progrestore-test", tag, {"tag": tag}):
        pass


@pytest.mark.pipeline  # three processes, each importing MLflow
def test_parallel_runs_on_a_fresh_project_all_start_in_one_new_store(tmp_path):
    """`dvc queue start -j 2` on a project without mlflow.db: every worker's run starts and lands in the one
    store (unlocked, two of them both migrated the new schema and one failed in alembic, in CI)."""
    pytest.importorskip("mlflow")
    import mlflow

    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(3)
    workers = [
        spawn.Process(target=_start_together, args=(str(tmp_path), f"run-{i}", barrier)) for i in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["progrestore-test"])
    assert sorted(runs["tags.mlflow.runName"]) == ["run-0", "run-1", "run-2"]
