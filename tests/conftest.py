"""One Spark session for the whole test run (a session costs 6-9 s to start)."""

from __future__ import annotations

import collections
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


# Spark's interpreted expressions for a fast test, the setting Spark's own tests use: its frames
# hold a few rows each, and compiling Java for every new plan costs more than running them (the
# silver, publish and catalog fast tests took 248 and 257 s against 323 and 308 s compiled,
# alternating; the silver and publish ones beside their slow tests 129.2 s against 148.1 s). A
# slow or cluster test runs Spark's generated code, as every crmlake session does. The mode is set
# before each test's fixtures, so a module fixture built for a slow test is compiled too; both are
# runtime settings of the one session. pytest's summary counts the tests that used Spark each way.
INTERPRETED = {"spark.sql.codegen.factoryMode": "NO_CODEGEN", "spark.sql.codegen.wholeStage": "false"}


def _interpreted(item: pytest.Item) -> bool:
    return not (item.get_closest_marker("slow") or item.get_closest_marker("cluster"))


_current = pytest.StashKey[pytest.Item]()
_modes = pytest.StashKey[collections.Counter]()


def _apply_mode(config: pytest.Config) -> None:
    """The current test's mode, if it uses Spark and the session has started."""
    from pyspark.sql import SparkSession

    item, session = config.stash.get(_current, None), SparkSession.getActiveSession()
    if item is None or session is None or "spark" not in item.fixturenames:
        return
    interpreted = _interpreted(item)
    for key, value in INTERPRETED.items():
        if interpreted:
            session.conf.set(key, value)
        else:
            session.conf.unset(key)
    config.stash.setdefault(_modes, collections.Counter())["interpreted" if interpreted else "generated code"] += 1


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.config.stash[_current] = item
    _apply_mode(item.config)


def pytest_terminal_summary(terminalreporter, config):
    modes = config.stash.get(_modes, None)
    if modes:
        said = ", ".join(f"{n} tests {mode}" for mode, n in modes.items())
        terminalreporter.write_line(f"Spark expressions: {said}")


@pytest.fixture(scope="session")
def spark(base_cfg, tmp_path_factory, request):
    from crmlake.core.log import setup_logging
    from crmlake.core.session import build_session

    setup_logging("INFO", "text")
    warehouse = tmp_path_factory.mktemp("warehouse")
    base_cfg["spark"]["conf"]["spark.sql.warehouse.dir"] = str(warehouse)
    session = build_session(base_cfg)
    _apply_mode(request.config)  # the first test's mode, set before its session existed
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
