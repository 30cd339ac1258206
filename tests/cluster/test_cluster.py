"""spark-submit generate, then daily (ingest, features and kpis in one application), to a real standalone cluster (a
master and two workers started from the PySpark install on 127.0.0.1), with Delta's jars resolved by Maven."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from crmlake.catalog import tables
from crmlake.contracts.entities import ENTITIES
from pyspark.sql import functions as F

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.cluster, pytest.mark.slow]
# Every JVM here (master, workers, each job's driver and executors) lives a minute or two on a
# few hundred subscribers: the optimizing compiler (C2) never pays back its CPU in that time,
# so HotSpot stops at C1. The test took 370 s with C2 and 237 s without.
SHORT_LIVED_JVM = "-XX:TieredStopAtLevel=1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("cluster")
    jars = tmp_path_factory.mktemp("jars")
    subprocess.run(["bash", str(REPO / "scripts" / "fetch-jars.sh"), str(jars)], check=True, timeout=600)
    env = dict(
        os.environ,
        CRMLAKE_CLUSTER_DIR=str(state),
        CRMLAKE_MASTER_PORT=str(free_port()),
        CRMLAKE_JARS_DIR=str(jars),
        SPARK_DAEMON_JAVA_OPTS=SHORT_LIVED_JVM,
        SPARK_SUBMIT_OPTS_EXTRA=f"--driver-java-options={SHORT_LIVED_JVM}",
    )
    started = subprocess.run(
        ["bash", str(REPO / "scripts" / "cluster.sh"), "start", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    try:
        assert started.returncode == 0, started.stderr
        yield {"env": env, "master": started.stdout.strip().splitlines()[-1], "state": state}
    finally:
        subprocess.run(["bash", str(REPO / "scripts" / "cluster.sh"), "stop"], env=env, timeout=120)


def submit(cluster, job: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(cluster["env"], CRMLAKE_HMAC_KEY="cluster-test-key")
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "submit.sh"), "--master", cluster["master"], job, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_every_job_on_a_standalone_cluster(spark, tmp_path, cluster):
    root = str(tmp_path / "root")
    # The cluster overlay's 64 shuffle partitions suit a real cluster's data; for 300
    # subscribers on two one-core workers they are 64 tiny tasks per stage (the test took 9 min).
    small = tmp_path / "small.yaml"
    executor_options = f"{SHORT_LIVED_JVM} -XX:-DontCompileHugeMethods"
    # Spark's interpreted expressions: on five short-lived JVMs, compiling Java for every stage
    # cost more than these rows (the test 258.5 s -> 208.1 s). The test checks distribution (jars,
    # Python workers, the file system, executors on both workers); the rest of the suite and every
    # production session run Spark's generated code. NO_CODEGEN is the setting Spark's own tests use.
    small.write_text(
        f"spark:\n  shuffle_partitions: 4\n  conf:\n    spark.executor.extraJavaOptions: '{executor_options}'\n"
        "    spark.sql.codegen.factoryMode: NO_CODEGEN\n    spark.sql.codegen.wholeStage: 'false'\n",
        encoding="utf-8",
    )
    gen = submit(
        cluster,
        "generate",
        "--root",
        root,
        "--subscribers",
        "300",
        "--start",
        "2026-02-01",
        "--days",
        "2",
        "--bad-rate",
        "0.02",
        "--log-format",
        "text",
        "--conf",
        str(small),
    )
    assert gen.returncode == 0, gen.stderr[-3000:]
    # what a scheduler submits for new days: ingest, features and kpis as one application
    window = ["--from", "2026-02-01", "--to", "2026-02-02"]
    daily = submit(cluster, "daily", "--root", root, *window, "--log-format", "text", "--conf", str(small))
    assert daily.returncode == 0, daily.stderr[-3000:]

    # The work ran on the workers: every application had an executor on each of the two workers.
    worker_apps = list(Path(cluster["state"], "work").glob("app-*"))
    assert len(worker_apps) == 2
    assert all(len(list(app.iterdir())) == 2 for app in worker_apps)

    every_run = tables.read(spark, root, "gold.run_log")
    assert sorted(r["job"] for r in every_run.where("status = 'succeeded'").collect()) == [
        "features",
        "generate",
        "ingest",
        "kpis",
    ]
    assert tables.read(spark, root, "gold.features").where("snapshot_date = DATE'2026-02-02'").count() > 250
    runs = every_run.where("job = 'ingest'")
    assert runs.where("status != 'succeeded'").count() == 0
    assert runs.count() == 1
    run = runs.first()
    assert (str(run["date_from"]), str(run["run_date"])) == ("2026-02-01", "2026-02-02")
    totals = runs.agg(*[F.sum(c).alias(c) for c in ("rows_read", "rows_rejected", "rows_duplicate")]).first()
    usage = tables.read(spark, root, "silver.usage")
    assert usage.count() > 1000
    assert tables.read(spark, root, "silver.subscribers").where("is_current").count() > 250
    # Every bronze row is read exactly once (by the run of its file date) and accounted for.
    entities = list(ENTITIES)
    assert totals["rows_read"] == sum(tables.read(spark, root, f"bronze.{e}").count() for e in entities)
    assert totals["rows_rejected"] == tables.read(spark, root, "silver.quarantine").count()
