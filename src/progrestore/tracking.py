"""MLflow tracking for training and evaluation runs.

Default store: SQLite at the repository root (``sqlite:///<root>/mlflow.db``, MLflow 3's default kind of
store), where root is ``$DVC_ROOT`` under DVC, else the git top level, else the working directory;
artifacts go to ``<root>/mlartifacts`` of the folder the run is in, also when mlflow.db was copied from
another folder (the copied experiment is kept, renamed). ``MLFLOW_TRACKING_URI`` overrides both. Queued
experiments share the project's store (DVC sets ``DVC_ROOT`` to the project in their temporary copies), so
a new SQLite store is created under a lock. Per-frame curves are step-indexed metrics with
step = frame (1..T); values that are not finite (PSNR of an exact frame) are left out, since MLflow
cannot plot them. ``PROGRESTORE_MLFLOW=off`` disables tracking.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

DISABLE_ENV = "PROGRESTORE_MLFLOW"


def enabled() -> bool:
    return os.environ.get(DISABLE_ENV, "on").lower() not in {"off", "0", "false", "no"}


def project_root() -> Path:
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"])
    result = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    return Path(result.stdout.strip()) if result.returncode == 0 else Path.cwd()


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"


def git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=project_root())
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def _ensure_experiment(experiment: str, artifacts: str | None, attempts: int = 5) -> None:
    """``experiment`` exists in the store, with its artifacts in ``artifacts`` (None: MLflow's default).

    mlflow.db may have come with a copied or moved folder: its experiment then still names the old
    folder's artifact store (an absolute URI MLflow cannot change). It is kept, renamed, with its runs,
    and this folder's runs get an experiment of their own, so that nothing is written into the other
    folder. Parallel runs (``dvc queue start -j 2``) may do the same at the same moment: a step another
    process has just taken fails here, so the state is read again and the rest done.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    for attempt in range(attempts):
        existing = mlflow.get_experiment_by_name(experiment)
        if existing is not None and (artifacts is None or existing.artifact_location == artifacts):
            return
        try:
            if existing is not None:
                renamed = (
                    f"{experiment} (id {existing.experiment_id}, artifacts in {existing.artifact_location})"
                )
                mlflow.MlflowClient().rename_experiment(existing.experiment_id, renamed)
            mlflow.create_experiment(experiment, artifact_location=artifacts)
            return
        except MlflowException:
            if attempt == attempts - 1:
                raise


def _store_creation_lock(uri: str) -> contextlib.AbstractContextManager:
    """A lock beside a SQLite store while this process first opens it.

    The first client of a new SQLite file creates and migrates its schema. Two runs that start together
    on a fresh project (``dvc queue start -j 2``) would both migrate, and one would fail in alembic
    ("expected to match one row ... 0 found"); under the lock the second finds the schema made.
    """
    if not uri.startswith("sqlite:///"):
        return contextlib.nullcontext()  # a server or file store serialises its own writes
    from filelock import FileLock

    return FileLock(f"{uri.removeprefix('sqlite:///')}.lock", timeout=600)


@contextlib.contextmanager
def start_run(
    experiment: str, run_name: str, params: dict, tags: dict | None = None
) -> Iterator[object | None]:
    """An MLflow run with the project's tags, or ``None`` when tracking is disabled."""
    if not enabled():
        yield None
        return
    import mlflow

    user_uri = os.environ.get("MLFLOW_TRACKING_URI")  # read first: set_tracking_uri exports the variable
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    artifacts = None if user_uri else (project_root() / "mlartifacts").resolve().as_uri()
    with _store_creation_lock(uri):
        _ensure_experiment(experiment, artifacts)
        mlflow.set_experiment(experiment)
    all_tags = {
        "git_commit": git_commit(),
        "dvc_stage": os.environ.get("DVC_STAGE", ""),
        "dvc_experiment": os.environ.get("DVC_EXP_NAME", ""),
        **(tags or {}),
    }
    with mlflow.start_run(run_name=run_name, tags=all_tags) as run:
        mlflow.log_params(params)
        yield run


def log_curve(name: str, values: list[float]) -> None:
    """One value per frame, logged with step = frame number (1-based)."""
    import mlflow

    for step, value in enumerate(values, start=1):
        if math.isfinite(value):
            mlflow.log_metric(name, value, step=step)


def log_finite(metrics: dict[str, float | None]) -> None:
    """The defined, finite values of ``metrics`` (MLflow stores no inf; None is an undefined measure)."""
    import mlflow

    mlflow.log_metrics({k: v for k, v in metrics.items() if v is not None and math.isfinite(v)})


def log_artifacts(paths: list[Path], folder: str | None = None) -> None:
    """``paths`` into the run's artifacts, under ``folder`` (None: at the top)."""
    import mlflow

    for path in paths:
        mlflow.log_artifact(str(path), artifact_path=folder)


def log_step(metrics: dict[str, float | None], step: int) -> None:
    """The defined, finite values of ``metrics`` at ``step`` (a training step, or a frame)."""
    import mlflow

    mlflow.log_metrics({k: v for k, v in metrics.items() if v is not None and math.isfinite(v)}, step=step)
