"""DVC's experiment queue on a copy of the built pipeline: queued runs go to parallel workers and are
tracked into the project's MLflow store. Its own file so that, under `make test`'s workers, it runs beside
the pipeline's checks on the same session build (tests/helpers/dvc_project.py) instead of after them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

from .helpers.dvc_project import dvc, dvc_env, run

pytestmark = pytest.mark.pipeline


def test_queued_experiments_run_in_parallel_and_track_into_the_projects_mlflow(own_repo, tmp_path):
    """`dvc exp run --queue` twice, `dvc queue start -j 2`: both run in temporary copies, appear in `dvc exp
    show` with their metrics, and their MLflow runs land in the project's mlflow.db (DVC_ROOT), with no
    MLFLOW_TRACKING_URI set."""
    import mlflow

    run(["git", "add", "-A"], own_repo)
    run(["git", "commit", "-qm", "baseline for the queue", "--allow-empty"], own_repo)
    default_store = {"MLFLOW_TRACKING_URI": ""}  # tracking's own default: <DVC_ROOT>/mlflow.db
    for name, change in (("seed-1", "restore.seed=1"), ("seed-2", "restore.seed=2")):
        dvc("exp", "run", "--queue", "-n", name, "-S", change, "evaluate@sr", cwd=own_repo, **default_store)
    # The workers inherit `queue start`'s stdout and stderr and keep them open until the queue is empty, so a
    # captured pipe would make this call last as long as the experiments: write to a file instead.
    with (tmp_path / "queue-start.log").open("w") as log:
        started = subprocess.run(
            [sys.executable, "-m", "dvc", "queue", "start", "-j", "2"],
            cwd=own_repo,
            env=dvc_env(own_repo, **default_store),
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
    assert started.returncode == 0, (tmp_path / "queue-start.log").read_text()
    deadline = time.monotonic() + 1800  # an upper bound for slow machines; the loop ends when the queue does
    while time.monotonic() < deadline:
        # while a worker writes a task's record, `dvc queue status` may read it half-written and fail
        # ("unexpected error - Expecting value: line 1 column 1"): that poll says nothing, ask again
        polled = dvc("queue", "status", cwd=own_repo, check=False)
        if polled.returncode == 0 and not re.search(r"\b(Queued|Running)\b", polled.stdout):
            break
        time.sleep(5)
    status = dvc("queue", "status", cwd=own_repo).stdout  # once the queue is done, it must answer
    failed = re.findall(r"^\w+\s+(\S+)\s.*\bFailed\b", status, flags=re.MULTILINE)
    logs = "".join(dvc("queue", "logs", name, cwd=own_repo, check=False).stdout for name in failed)
    assert re.findall(r"\bSuccess\b", status) and not failed, f"{status}\n{logs}"
    shown = json.loads(dvc("exp", "show", "--json", cwd=own_repo).stdout)
    names = {
        run["name"] for rev in shown for group in (rev.get("experiments") or []) for run in group["revs"]
    }
    assert {"seed-1", "seed-2"} <= names, names
    mlflow.set_tracking_uri(f"sqlite:///{own_repo / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["progrestore-evaluate"])
    queued = runs[runs["tags.dvc_experiment"].isin(["seed-1", "seed-2"])]
    assert sorted(queued["tags.dvc_experiment"]) == ["seed-1", "seed-2"]
    assert set(queued["tags.dvc_stage"]) == {"evaluate@sr"}
    assert not list((own_repo / ".dvc" / "tmp" / "exps").glob("*/mlflow.db"))  # nothing left in the copies
