"""The one place a SparkSession is built, for every job and the test fixture.

Which Delta jars the JVM needs follows from the two Python pins, as
``delta.configure_spark_with_delta_pip`` derives it: the installed ``pyspark`` names the Spark
line (``4.2``) and the installed ``delta-spark`` the Delta version, so the artifact is
``io.delta:delta-spark_<line>_2.13:<delta>``. Nothing else pins it, so it cannot drift.

``scripts/fetch-jars.sh`` resolves exactly that artifact with Maven and keeps only the jars that
Spark does not ship into ``.jars/`` (or ``CRMLAKE_JARS_DIR`` / ``spark.jars_dir``); the session
puts them on ``spark.jars``. Without such a folder it asks Spark's own resolver
(``spark.jars.packages``), which needs direct access to Maven Central.

Under ``spark-submit`` the JVM already runs: its master and jars come from the command line
(``scripts/submit.sh`` adds them), and only the SQL settings here are applied. In every case the
running JVM's Spark and Delta versions are checked against the Python packages at start, so a
mismatch fails with both versions and the fix, not with a ``ClassNotFoundException`` in a job.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pyspark
from pyspark import inheritable_thread_target
from pyspark.sql import SparkSession

from crmlake.core.config import Config, default_conf_dir
from crmlake.core.errors import VersionMismatchError

JARS_DIR_VAR = "CRMLAKE_JARS_DIR"
REPO_JARS_DIR = Path(__file__).resolve().parents[3] / ".jars"
SCALA_BINARY = "2.13"
FIX = "run scripts/fetch-jars.sh (it replaces .jars/ with the jars these packages need)"
# delta-spark_4.2_2.13-4.4.0.jar, or the pre-4.1 name without a Spark line: delta-spark_2.13-4.0.1.jar
DELTA_JAR = re.compile(r"^delta-spark_(?:(?P<line>\d+\.\d+)_)?(?P<scala>\d+\.\d+)-(?P<version>[^-]+)\.jar$")
# PostgreSQL's JDBC driver, for the optional push of published lists (crmlake.publish.jdbc):
# scripts/fetch-jars.sh resolves it into .jars/ beside Delta's jars; Spark does not ship one.
JDBC_DRIVER = "org.postgresql:postgresql:42.7.8"


# crmlake's own JVM classes (lib/jvm), built by scripts/build-jvm.sh into the jar folder
JVM_SOURCES = Path(__file__).resolve().parents[2] / "jvm"
# Hadoop's local file system with the calls that fork a process done in Java (NoForkRawLocalFileSystem)
NO_FORK_LOCAL_FS = {
    "spark.hadoop.fs.file.impl": "org.crmlake.fs.NoForkLocalFileSystem",
    "spark.hadoop.fs.AbstractFileSystem.file.impl": "org.crmlake.fs.NoForkLocalFs",
}
# Hadoop's own classes for the same keys: set under spark.conf, the way back to them
HADOOP_LOCAL_FS = {
    "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.LocalFileSystem",
    "spark.hadoop.fs.AbstractFileSystem.file.impl": "org.apache.hadoop.fs.local.LocalFs",
}

# spark.driver_gc → the HotSpot option that selects that collector
GARBAGE_COLLECTORS = {"parallel": "-XX:+UseParallelGC", "g1": "-XX:+UseG1GC"}


def spark_line(version: str) -> str:
    """``4.2.0`` → ``4.2``."""
    return ".".join(version.split(".")[:2])


@dataclass(frozen=True)
class DeltaPin:
    """The Spark and Delta versions installed in this Python, and the JVM artifact they need."""

    spark_version: str
    delta_version: str

    @classmethod
    def installed(cls) -> DeltaPin:
        return cls(pyspark.__version__, importlib.metadata.version("delta-spark"))

    @property
    def artifact(self) -> str:
        return f"delta-spark_{spark_line(self.spark_version)}_{SCALA_BINARY}"

    @property
    def coordinate(self) -> str:
        return f"io.delta:{self.artifact}:{self.delta_version}"

    @property
    def jar_name(self) -> str:
        return f"{self.artifact}-{self.delta_version}.jar"


def local_fs_jar_name() -> str | None:
    """``crmlake-jvm-<hash of lib/jvm's sources>.jar``, so a jar built from other sources is never
    taken for it; None where the sources are not installed (a package without the repository)."""
    sources = sorted(JVM_SOURCES.rglob("*.java"))
    if not sources:
        return None
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.relative_to(JVM_SOURCES).as_posix().encode() + b"\0" + source.read_bytes() + b"\0")
    return f"crmlake-jvm-{digest.hexdigest()[:12]}.jar"


def no_fork_local_fs_settings(jars: list[str], master: str, settings: Mapping[str, str]) -> dict[str, str]:
    """Hadoop's local file system forks ``chmod`` for each file it creates and ``readlink`` twice
    for each rename through FileContext (how Delta commits): 25 forks for a small append, which
    took 169-178 ms against 93-96 ms without them (scripts/bench/local_fs.py); crmlake's jar does
    both in Java. Used where crmlake starts a local JVM and the jar is among ``jars``: its classes
    go on the driver's own class path (Hadoop looks its file systems up there), which in local
    mode is the executors' too. A
    cluster's executors and a driver started by spark-submit keep Hadoop's. A configuration that
    sets either key itself keeps its choice (``HADOOP_LOCAL_FS`` under spark.conf: the way back
    to Hadoop's)."""
    name = local_fs_jar_name()
    jar = next((j for j in jars if Path(j).name == name), None)
    if jar is None or (master and not master.startswith("local")):  # "": Spark's default, local[*]
        return {}
    if any(key in settings for key in NO_FORK_LOCAL_FS):
        return {}  # the configuration chose a local file system itself
    extra = dict(NO_FORK_LOCAL_FS)
    path = settings.get("spark.driver.extraClassPath")
    extra["spark.driver.extraClassPath"] = f"{path}{os.pathsep}{jar}" if path else jar
    return extra


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


def check_local_jars(jars: list[str], pin: DeltaPin) -> None:
    """Refuse a jar folder whose Delta is not the one the Python packages need."""
    found = [(Path(j).name, DELTA_JAR.match(Path(j).name)) for j in jars]
    delta = [(name, m) for name, m in found if m]
    folder = str(Path(jars[0]).parent) if jars else ""
    if not delta:
        raise VersionMismatchError(
            f"{folder} holds no delta-spark jar; pyspark {pin.spark_version} with delta-spark "
            f"{pin.delta_version} needs {pin.coordinate}: {FIX}"
        )
    wrong = [name for name, m in delta if name != pin.jar_name]
    if wrong or len(delta) > 1:
        raise VersionMismatchError(
            f"{folder} holds {', '.join(name for name, _ in delta)}, but pyspark {pin.spark_version} with "
            f"delta-spark {pin.delta_version} needs {pin.jar_name} ({pin.coordinate}): {FIX}"
        )


def jvm_versions(spark: SparkSession) -> tuple[str, str | None]:
    """The running JVM's Spark version and Delta version (None when Delta is not loaded)."""
    try:
        delta = str(spark._jvm.io.delta.package.VERSION())
    except Exception:  # noqa: BLE001 - py4j raises a generic error when the class is absent
        delta = None
    return spark.version, delta


def check_runtime(spark: SparkSession, pin: DeltaPin) -> None:
    """The JVM must run the Spark line and the Delta version the Python packages were pinned to."""
    jvm_spark, jvm_delta = jvm_versions(spark)
    problems = []
    if spark_line(jvm_spark) != spark_line(pin.spark_version):
        problems.append(f"the JVM runs Spark {jvm_spark} but Python has pyspark {pin.spark_version}")
    if jvm_delta is None:
        problems.append(f"Delta is not on the JVM's classpath (io.delta.VERSION not found); it needs {pin.coordinate}")
    elif jvm_delta != pin.delta_version:
        problems.append(f"the JVM loaded Delta {jvm_delta} but Python has delta-spark {pin.delta_version}")
    if problems:
        raise VersionMismatchError(
            "; ".join(problems) + f". Fix: install matching pins (pip install -e .) and {FIX}; under spark-submit "
            f"pass --jars from .jars/ (scripts/submit.sh does) or --packages {pin.coordinate}"
        )


def spark_settings(cfg: Config, verbose: bool = False) -> dict[str, str]:
    """All Spark properties the config asks for, as strings. ``verbose``: the JVM's errors keep
    their stack traces on the console."""
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
        # PySpark records the Python line of every Column function call for error messages: four
        # more JVM round trips per call, 12 % of a small ingest run (median of five, 12.0 s ->
        # 10.5 s). crmlake's errors name the file, table or column themselves; set it back to
        # "true" under spark.conf to see Python lines in Spark's error context.
        "spark.python.sql.dataFrameDebugging.enabled": "false",
        # Spark keeps the Java it compiled for the last 100 distinct expressions and stages;
        # a session that runs job after job (crmlake daily, a notebook, the test suite) compiled
        # the same code again and again. The customer-360 tests (seven job runs in one session),
        # alternating: 277 s and 262 s with 5,000 kept, 316 s with 100.
        "spark.sql.codegen.cache.maxEntries": "5000",
    }
    # HotSpot leaves a method of more than 8,000 bytes of bytecode to the interpreter; the code
    # Spark generates for a stage with many expressions (ingest's typing and contract rules) is
    # that big, and ran 1.7 times as slow interpreted.
    java_options = ["-XX:-DontCompileHugeMethods"]
    settings["spark.executor.extraJavaOptions"] = " ".join(java_options)
    # The driver collects garbage with HotSpot's parallel collector unless spark.driver_gc says
    # g1 (Java's default here): a batch job wants throughput, not short pauses, and G1's
    # concurrent marking and write barriers took their share of two cores. Ingest of 990 k
    # usage records 70.1 and 76.7 s against 82.0 and 81.4 s with G1, peak memory 0.7 GiB higher;
    # at 10.9 M records level, both in time and at the peak; the fast tests 308 and 322 s against
    # 340 and 361 s (alternating; scripts/bench/RESULTS.md). A local run's executor is this JVM.
    # A cluster's executors keep their JVM's default: their heaps were not measured. Under
    # spark-submit the driver's JVM is already running, so this setting cannot reach it.
    driver_options = [*java_options, GARBAGE_COLLECTORS[spark_cfg["driver_gc"]]]
    log4j = default_conf_dir() / ("log4j2-verbose.properties" if verbose else "log4j2.properties")
    if log4j.exists():
        # Spark's console logging from the JVM's first line on (setLogLevel only acts later).
        driver_options.append(f"-Dlog4j2.configurationFile={log4j.as_uri()}")
    settings["spark.driver.extraJavaOptions"] = " ".join(driver_options)
    settings.update({k: str(v) for k, v in (spark_cfg.get("conf") or {}).items()})
    return settings


def build_session(cfg: Config, verbose: bool = False) -> SparkSession:
    """Build (or return the running) SparkSession with Delta enabled, its versions checked."""
    pin = DeltaPin.installed()
    settings = spark_settings(cfg, verbose)
    builder = SparkSession.builder
    if not launched_by_spark_submit():
        master = cfg["spark"]["master"]
        if master:
            builder = builder.master(master)
        jars = local_jars(cfg)
        if jars:
            check_local_jars(jars, pin)
            settings.update(no_fork_local_fs_settings(jars, master or "", settings))
            settings["spark.jars"] = ",".join(j for j in jars if not Path(j).name.startswith("crmlake-"))
        else:
            settings["spark.jars.packages"] = f"{pin.coordinate},{JDBC_DRIVER}"
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(cfg["spark"]["log_level"])
    check_runtime(spark, pin)
    # Settings that a running session (spark-submit, notebooks) must still honour.
    for key in ("spark.sql.shuffle.partitions", "spark.sql.session.timeZone"):
        spark.conf.set(key, settings[key])
    return spark


K = TypeVar("K")
T = TypeVar("T")

_settings_lock = threading.Lock()
_settings_users: dict[str, int] = {}
_settings_saved: dict[str, str | None] = {}


@contextmanager
def session_settings(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """Runtime SQL ``settings`` for the duration of a block, the session's own put back when the
    last of the (possibly concurrent) blocks using them ends, failing or not."""
    with _settings_lock:
        for key, value in settings.items():
            if _settings_users.get(key, 0) == 0:
                _settings_saved[key] = spark.conf.get(key, None)
                spark.conf.set(key, value)
            _settings_users[key] = _settings_users.get(key, 0) + 1
    try:
        yield
    finally:
        with _settings_lock:
            for key in settings:
                _settings_users[key] -= 1
                if _settings_users[key] == 0:
                    previous = _settings_saved.pop(key)
                    if previous is None:
                        spark.conf.unset(key)
                    else:
                        spark.conf.set(key, previous)


def concurrently(spark: SparkSession, tasks: Mapping[K, Callable[[], T]], at_once: int) -> dict[K, T]:
    """Runs ``tasks``, at most ``at_once`` at a time, each in a thread that carries the caller's
    Spark local properties and tags; returns their results in the tasks' order.

    Jobs submitted together overlap their driver's share (planning, Delta's log and commits,
    Python) with each other's tasks: on a small batch that share is most of a job. Once a task
    has failed no other starts; those running finish, and the first failure in the tasks' order
    is raised. ``at_once`` 1 runs them one after the other in the caller's thread.
    """
    if at_once <= 1 or len(tasks) <= 1:
        return {key: task() for key, task in tasks.items()}
    failed = threading.Event()

    def guarded(task: Callable[[], T]) -> Callable[[], T | None]:
        def run() -> T | None:
            if failed.is_set():
                return None  # not started: an earlier task failed
            try:
                return task()
            except BaseException:
                failed.set()
                raise

        return inheritable_thread_target(spark)(run)

    with ThreadPoolExecutor(max_workers=min(at_once, len(tasks))) as pool:
        futures = {key: pool.submit(guarded(task)) for key, task in tasks.items()}
    for future in futures.values():
        if future.exception() is not None:
            raise future.exception()
    return {key: future.result() for key, future in futures.items()}


if __name__ == "__main__":
    # scripts/fetch-jars.sh and scripts/submit.sh ask for the coordinate here.
    print(DeltaPin.installed().coordinate)
