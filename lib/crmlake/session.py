"""The one place a SparkSession is built, for every job and the test fixture.

Delta's JVM jars come from Maven Central through ``spark.jars.packages`` by default. Where
Spark's resolver cannot reach the repository, ``scripts/fetch-jars.sh`` resolves the same
artifacts with Maven into a folder; point ``spark.jars_dir`` (or ``CRMLAKE_JARS_DIR``) at it, or
leave them in the repository's ``.jars/``, and the session uses them through ``spark.jars``.

Under ``spark-submit`` the JVM already runs: its master and jars come from the command line
(``scripts/submit.sh`` adds them), and only the SQL settings here are applied.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyspark.sql import SparkSession

from crmlake.config import Config

JARS_DIR_VAR = "CRMLAKE_JARS_DIR"
REPO_JARS_DIR = Path(__file__).resolve().parents[2] / ".jars"


def launched_by_spark_submit() -> bool:
    """PySpark under spark-submit connects to a JVM that is already running."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def local_jars(cfg: Config) -> list[str]:
    """Jars resolved into a local folder, if one is configured or present; else []."""
    candidates = [os.environ.get(JARS_DIR_VAR), cfg["spark"].get("jars_dir"), str(REPO_JARS_DIR)]
    for folder in candidates:
        if folder and Path(folder).is_dir():
            jars = sorted(str(p.resolve()) for p in Path(folder).glob("*.jar"))
            if jars:
                return jars
    return []


def spark_settings(cfg: Config) -> dict[str, str]:
    """All Spark properties the config asks for, as strings."""
    spark_cfg = cfg["spark"]
    settings = {
        "spark.app.name": spark_cfg["app_name"],
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(spark_cfg["shuffle_partitions"]),
        "spark.sql.session.timeZone": spark_cfg["time_zone"],
        "spark.ui.enabled": str(spark_cfg["ui_enabled"]).lower(),
        "spark.driver.memory": spark_cfg["driver_memory"],
        # Delta rebuilds table state with this many tasks; its default (50) is far too
        # many for local runs and small tables.
        "spark.databricks.delta.snapshotPartitions": str(spark_cfg["delta_snapshot_partitions"]),
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        # Progress goes to the structured log (stage, rows, elapsed); console bars would garble it.
        "spark.ui.showConsoleProgress": "false",
    }
    settings.update({k: str(v) for k, v in (spark_cfg.get("conf") or {}).items()})
    return settings


def build_session(cfg: Config) -> SparkSession:
    """Build (or return the running) SparkSession with Delta enabled."""
    settings = spark_settings(cfg)
    builder = SparkSession.builder
    if not launched_by_spark_submit():
        master = cfg["spark"]["master"]
        if master:
            builder = builder.master(master)
        jars = local_jars(cfg)
        if jars:
            settings["spark.jars"] = ",".join(jars)
        else:
            settings["spark.jars.packages"] = cfg["spark"]["delta_package"]
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(cfg["spark"]["log_level"])
    # Settings that a running session (spark-submit, notebooks) must still honour.
    for key in ("spark.sql.shuffle.partitions", "spark.sql.session.timeZone"):
        spark.conf.set(key, settings[key])
    return spark
