"""MLflow for every job that fits something: where tracking lives, and one run per fit.

The embedded default keeps tracking and registry in a SQLite file beside the tables
(``<root>/mlflow/mlflow.db``) and artifacts beside it (``<root>/mlflow/artifacts``), so a root
folder carries its models with it. ``mlflow.tracking_uri`` in config, else ``MLFLOW_TRACKING_URI``,
points elsewhere (a tracking server on a cluster). Experiments are ``<prefix>-<job>``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from crmlake.core.errors import ConfigError
from crmlake.core.settings import MlflowConfig

SQLITE_PREFIX = "sqlite:///"


def tracking_uri(root: str, config: MlflowConfig) -> str:
    """The tracking URI a job uses for tables under ``root``."""
    if config.tracking_uri:
        return config.tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    parsed = urlparse(root)
    if parsed.scheme not in ("", "file"):
        raise ConfigError(
            f"root {root!r} is not a local folder: set mlflow.tracking_uri (a tracking server or a sqlite file)"
        )
    folder = Path(parsed.path if parsed.scheme else root).resolve() / "mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    return f"{SQLITE_PREFIX}{folder / 'mlflow.db'}"  # an absolute path: four slashes


def artifact_location(uri: str) -> str | None:
    """Artifacts beside a SQLite tracking file; a server decides for itself (None)."""
    if not uri.startswith(SQLITE_PREFIX):
        return None
    return (Path(uri[len(SQLITE_PREFIX) :]).parent / "artifacts").as_uri()


def use(root: str, config: MlflowConfig, job: str) -> str:
    """Point MLflow at this root's tracking store and the job's experiment (created on first
    use); returns the experiment id."""
    import mlflow

    uri = tracking_uri(root, config)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    name = f"{config.experiment_prefix}-{job}"
    found = mlflow.get_experiment_by_name(name)
    experiment_id = found.experiment_id if found else mlflow.create_experiment(name, artifact_location(uri))
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


@contextlib.contextmanager
def run(root: str, config: MlflowConfig, job: str, run_name: str, tags: dict[str, str] | None = None) -> Iterator:
    """An MLflow run of ``job`` (ended as FAILED if the block raises)."""
    import mlflow

    use(root, config, job)
    with mlflow.start_run(run_name=run_name, tags={"crmlake.job": job, **(tags or {})}) as active:
        yield active
