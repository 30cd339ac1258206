"""The platform's versions agree: the JVM runs the Spark line and the Delta version that the Python
packages pin, Delta's jars come alone (no second copy of a jar Spark ships), and a mismatch stops
a job at start with both versions and the fix."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyspark
import pytest
from crmlake.core.errors import VersionMismatchError
from crmlake.core.session import (
    DeltaPin,
    check_local_jars,
    check_runtime,
    concurrently,
    jvm_versions,
    local_fs_jar_name,
    session_settings,
    spark_settings,
)

REPO = Path(__file__).resolve().parents[2]
SPARK_JARS = Path(pyspark.__file__).parent / "jars"


def artifact(jar_name: str) -> str:
    """``jackson-core-2.21.2.jar`` → ``jackson-core``."""
    return re.sub(r"-\d[^-]*(-[A-Za-z0-9.]+)*\.jar$", "", jar_name)


def test_the_jvm_runs_the_delta_and_spark_the_python_packages_pin(spark):
    import importlib.metadata

    jvm_spark, jvm_delta = jvm_versions(spark)
    assert jvm_delta == importlib.metadata.version("delta-spark")
    assert jvm_spark == pyspark.__version__
    assert DeltaPin.installed().coordinate == f"io.delta:delta-spark_{jvm_spark[:3]}_2.13:{jvm_delta}"


def test_no_jar_on_spark_jars_duplicates_one_that_spark_ships(spark):
    on_jars = [Path(j).name for j in spark.sparkContext.getConf().get("spark.jars", "").split(",") if j]
    assert DeltaPin.installed().jar_name in on_jars
    shipped = {artifact(p.name) for p in SPARK_JARS.glob("*.jar")}
    assert len(shipped) > 200
    assert sorted(artifact(j) for j in on_jars if artifact(j) in shipped) == []


def test_the_driver_jvm_collects_garbage_with_the_parallel_collector(spark):
    """Asked of the running JVM itself, not of the settings: an option Java ignored or a later one
    that overrode it would leave G1's collectors here."""
    beans = spark._jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
    collectors = sorted(str(bean.getName()) for bean in beans)
    assert collectors == ["PS MarkSweep", "PS Scavenge"]


def test_the_driver_gc_setting_chooses_the_driver_collector_and_rejects_others(tmp_path):
    from crmlake.core.config import load_config
    from crmlake.core.errors import ConfigError

    def driver_options(gc: str) -> list[str]:
        cfg = load_config(overrides={"spark.driver_gc": gc})
        return spark_settings(cfg)["spark.driver.extraJavaOptions"].split()

    assert "-XX:+UseParallelGC" in driver_options("parallel")
    assert "-XX:+UseG1GC" in driver_options("g1")
    assert not any("Parallel" in option for option in driver_options("g1"))
    assert "GC" not in spark_settings(load_config())["spark.executor.extraJavaOptions"]
    bad = tmp_path / "gc.yaml"
    bad.write_text("spark:\n  driver_gc: zgc\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"gc\.yaml: key 'spark\.driver_gc'"):
        load_config([str(bad)])


def test_jars_of_another_delta_are_refused_before_the_jvm_starts(tmp_path):
    old = tmp_path / "delta-spark_2.13-4.0.1.jar"
    old.write_bytes(b"")
    pin = DeltaPin("4.2.0", "4.4.0")
    with pytest.raises(VersionMismatchError) as err:
        check_local_jars([str(old)], pin)
    message = str(err.value)
    assert "delta-spark_2.13-4.0.1.jar" in message and "delta-spark_4.2_2.13-4.4.0.jar" in message
    assert "pyspark 4.2.0" in message and "scripts/fetch-jars.sh" in message
    check_local_jars([str(tmp_path / "delta-spark_4.2_2.13-4.4.0.jar")], pin)  # the right one passes


def test_a_jvm_running_other_versions_is_named_with_the_fix(spark):
    jvm_spark, jvm_delta = jvm_versions(spark)
    with pytest.raises(VersionMismatchError) as err:
        check_runtime(spark, DeltaPin("4.1.1", "4.3.0"))
    message = str(err.value)
    assert f"Spark {jvm_spark}" in message and "pyspark 4.1.1" in message
    assert f"Delta {jvm_delta}" in message and "delta-spark 4.3.0" in message
    assert "io.delta:delta-spark_4.1_2.13:4.3.0" in message
    check_runtime(spark, DeltaPin.installed())


def test_a_job_pointed_at_old_delta_jars_exits_2_at_start(tmp_path):
    (tmp_path / "delta-spark_2.13-4.0.1.jar").write_bytes(b"")
    (tmp_path / "delta-storage-4.0.1.jar").write_bytes(b"")
    env = dict(os.environ, CRMLAKE_JARS_DIR=str(tmp_path), CRMLAKE_HMAC_KEY="k")
    done = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "kpis.py"), "--root", str(tmp_path / "root"), "--date", "2026-01-01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "VersionMismatchError" in done.stderr and "delta-spark_2.13-4.0.1.jar" in done.stderr
    assert "Traceback" not in done.stderr


def test_fetch_jars_resolves_the_derived_coordinate_keeps_only_deltas_jars_and_builds_crmlakes(tmp_path):
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "fetch-jars.sh"), str(tmp_path)],
        env=dict(os.environ, PYSPARK_PYTHON=sys.executable),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in tmp_path.glob("*.jar"))
    assert DeltaPin.installed().jar_name in names
    shipped = {artifact(p.name) for p in SPARK_JARS.glob("*.jar")}
    assert [n for n in names if artifact(n) in shipped] == []
    assert all(n.startswith(("delta-", "unitycatalog-", "postgresql-", "crmlake-jvm-")) for n in names), names
    assert "postgresql-42.7.8.jar" in names  # the JDBC hand-off's driver (crmlake.core.session.JDBC_DRIVER)
    assert local_fs_jar_name() in names  # crmlake's own classes, compiled from lib/jvm


def test_settings_for_a_block_are_put_back_after_it_even_when_it_fails(spark):
    key, unset_key = "spark.sql.inMemoryColumnarStorage.compressed", "spark.crmlake.test.unset"
    before = spark.conf.get(key)
    with pytest.raises(RuntimeError), session_settings(spark, {key: "false", unset_key: "1"}):
        assert (spark.conf.get(key), spark.conf.get(unset_key)) == ("false", "1")
        raise RuntimeError("the block fails")
    assert spark.conf.get(key) == before
    assert spark.conf.get(unset_key, None) is None


def test_tasks_run_at_once_carry_the_callers_properties_and_the_first_failure_stops_the_rest(spark):
    sc = spark.sparkContext
    sc.setLocalProperty("crmlake.test.owner", "caller")
    try:
        started, gate = [], threading.Barrier(2, timeout=30)

        def seen(name: str) -> str:
            started.append(name)
            gate.wait()  # both of the first two run at the same time, or this times out
            return f"{name}:{sc.getLocalProperty('crmlake.test.owner')}"

        assert concurrently(spark, {"b": lambda: seen("b"), "a": lambda: seen("a")}, 2) == {
            "b": "b:caller",
            "a": "a:caller",
        }

        started.clear()

        def fails(name: str, after: float) -> None:
            started.append(name)
            time.sleep(after)
            raise ValueError(name)

        def slow() -> str:
            started.append("slow")
            time.sleep(1.0)
            return "done"

        tasks = {"slow": slow, "fails": lambda: fails("fails", 0.5), "next": lambda: fails("next", 0.0)}
        tasks |= {"last": lambda: started.append("last")}
        with pytest.raises(ValueError, match="fails"):
            concurrently(spark, tasks, 2)
        # the two after the failure were not started; the one running beside it finished
        assert sorted(started) == ["fails", "slow"]
        assert concurrently(spark, {"x": lambda: sc.getLocalProperty("crmlake.test.owner")}, 1) == {"x": "caller"}
    finally:
        sc.setLocalProperty("crmlake.test.owner", None)
