"""One Spark session for the whole test run (a session costs 6-9 s to start)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Python workers must run the interpreter that has crmlake installed.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")


# the suite's Spark settings, shared with the benches that measure what the suite pays
SUITE_CONF = Path(__file__).with_name("suite.yaml")


@pytest.fixture(scope="session")
def base_cfg(tmp_path_factory):
    from crmlake.core.config import load_config

    root = tmp_path_factory.mktemp("root")
    mlflow_db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{mlflow_db}")
    return load_config([str(SUITE_CONF)], env="local", overrides={"root": str(root)})


# Spark's interpreted expressions, the setting Spark's own tests use: for a run that selects no
# slow or cluster test (the fast suite, a module of fast tests). Their frames hold a few rows
# each, and compiling Java for every new plan costs more than running them: the silver, publish
# and catalog tests took 248 and 257 s against 323 and 308 s compiled, alternating; the fast
# tests 372 s (436 s compiled an hour before). A run with slow or cluster tests (CI's whole
# suite) runs Spark's generated code throughout, as every crmlake session does.
INTERPRETED = {"spark.sql.codegen.factoryMode": "NO_CODEGEN", "spark.sql.codegen.wholeStage": "false"}


_interpreted = pytest.StashKey[bool]()
_session_started = pytest.StashKey[bool]()


def pytest_collection_finish(session):
    session.config.stash[_interpreted] = not any(
        item.get_closest_marker("slow") or item.get_closest_marker("cluster") for item in session.items
    )


def pytest_terminal_summary(terminalreporter, config):
    if config.stash.get(_session_started, False):
        said = "interpreted (no slow or cluster test selected)" if config.stash[_interpreted] else "generated code"
        terminalreporter.write_line(f"Spark expressions: {said}")


@pytest.fixture(scope="session")
def spark(base_cfg, tmp_path_factory, request):
    from crmlake.core.log import setup_logging
    from crmlake.core.session import build_session

    setup_logging("INFO", "text")
    warehouse = tmp_path_factory.mktemp("warehouse")
    base_cfg["spark"]["conf"]["spark.sql.warehouse.dir"] = str(warehouse)
    if request.config.stash.get(_interpreted, False):
        base_cfg["spark"]["conf"].update(INTERPRETED)
    session = build_session(base_cfg)
    request.config.stash[_session_started] = True
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
