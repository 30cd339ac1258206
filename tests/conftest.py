"""One Spark session for the whole test run (a session costs 6-9 s to start)."""

from __future__ import annotations

import os
import sys

import pytest

# Python workers must run the interpreter that has crmlake installed.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")


@pytest.fixture(scope="session")
def base_cfg(tmp_path_factory):
    from crmlake.core.config import load_config

    root = tmp_path_factory.mktemp("root")
    mlflow_db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{mlflow_db}")
    return load_config(
        env="local",
        overrides={
            "root": str(root),
            "spark.master": "local[2]",
            "spark.shuffle_partitions": 2,
            # one JVM holds every module's caches and broadcasts for the whole run
            "spark.driver_memory": "4g",
            "spark.delta_snapshot_partitions": 1,
            "logging.format": "text",
        },
    )


@pytest.fixture(scope="session")
def spark(base_cfg, tmp_path_factory):
    from crmlake.core.log import setup_logging
    from crmlake.core.session import build_session

    setup_logging("INFO", "text")
    warehouse = tmp_path_factory.mktemp("warehouse")
    base_cfg["spark"]["conf"]["spark.sql.warehouse.dir"] = str(warehouse)
    base_cfg["spark"]["conf"]["spark.default.parallelism"] = "2"
    session = build_session(base_cfg)
    yield session
    session.stop()


@pytest.fixture
def cfg(base_cfg, tmp_path):
    """A fresh configuration whose root is this test's own folder."""
    import copy

    fresh = copy.deepcopy(base_cfg)
    fresh["root"] = str(tmp_path / "root")
    fresh["identity"]["key_file"] = ""
    return fresh


@pytest.fixture
def hmac_key(monkeypatch):
    key = "test-key-0123456789abcdef"
    monkeypatch.setenv("CRMLAKE_HMAC_KEY", key)
    return key.encode()
