"""What a write's row count costs: Delta's operation metrics of the latest commit read from the
commit file (``tables.last_operation_metrics``, what crmlake does) against ``history(1)`` (what it
did), per call, and how many calls a fresh ingest and a ``features`` run make.

    python scripts/bench/write_metadata.py --work DIR [--subscribers 300] [--days 5] [--runs 3]
        [--warm-up 1] [--label TEXT] [--no-record]

Generates the operator once into ``DIR/source`` (as ``fixed_cost.py``), then per run ingests it on
a fresh root and runs ``features`` for its last day, in one local JVM set up as the test suite's.
Every call of ``last_operation_metrics`` is counted and timed, and ``history(1)`` of the same
table is timed right after it (its metrics must be the same). Prints the medians of the timed
runs and appends a block to RESULTS.md.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from warm import fresh_root, generated_landing, report, suite_session, warm_parser  # noqa: E402

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("CRMLAKE_HMAC_KEY", "write-metadata-bench-key")

START = dt.date(2026, 1, 5)


class Calls:
    """Wraps ``tables.last_operation_metrics``: each call counted and timed, with ``history(1)``
    of the same table timed beside it and its metrics checked against the commit file's."""

    def __init__(self, tables, delta_table):
        self.tables, self.delta_table, self.read = tables, delta_table, tables.last_operation_metrics
        self.reset()

    def reset(self) -> None:
        self.count, self.file_s, self.history_s = 0, 0.0, 0.0

    def __call__(self, spark, root, name):
        started = time.perf_counter()
        metrics = self.read(spark, root, name)
        self.file_s += time.perf_counter() - started
        started = time.perf_counter()
        history = self.delta_table.forPath(spark, self.tables.table_path(root, name)).history(1).collect()[0]
        self.history_s += time.perf_counter() - started
        if (history["operationMetrics"] or {}) != metrics:
            raise SystemExit(f"{name}: the commit file's metrics {metrics} differ from history(1)'s")
        self.count += 1
        return metrics


def main() -> None:
    parser = warm_parser(__doc__, subscribers=300, days=5, runs=3, warm_up=1)
    args = parser.parse_args()

    from crmlake.catalog import tables
    from crmlake_jobs.features import main as features_main
    from crmlake_jobs.ingest import main as ingest_main
    from delta.tables import DeltaTable

    work = Path(args.work).resolve()
    source = work / "source"
    last = START + dt.timedelta(days=args.days - 1)
    calls = Calls(tables, DeltaTable)
    tables.last_operation_metrics = calls  # tables' own writers look it up at call time
    spark = suite_session(source, [])
    seen: dict[str, list[tuple[int, float, float]]] = {"ingest": [], "features": []}
    try:
        generated_landing(spark, source, args.subscribers, args.days, str(START))
        for i in range(args.warm_up + args.runs):
            root = fresh_root(work, source)
            for job, main_of, args_of in (
                ("ingest", ingest_main, ["--all"]),
                ("features", features_main, ["--date", str(last)]),
            ):
                calls.reset()
                if main_of(["--root", str(root), *args_of], spark=spark) != 0:
                    raise SystemExit(f"{job} failed")
                print(f"run {i + 1} {job}: {calls.count} calls, commit file {calls.file_s:.2f} s, "
                      f"history(1) {calls.history_s:.2f} s", flush=True)  # fmt: skip
                if i >= args.warm_up:
                    seen[job].append((calls.count, calls.file_s, calls.history_s))
    finally:
        tables.last_operation_metrics = calls.read
        spark.stop()

    facts = []
    for job, runs in seen.items():
        count = statistics.median(r[0] for r in runs)
        file_s, history_s = statistics.median(r[1] for r in runs), statistics.median(r[2] for r in runs)
        facts.append(
            f"- {job}: {count:g} calls a run; commit file {file_s:.2f} s in all ({1000 * file_s / count:.1f} ms a "
            f"call), history(1) {history_s:.2f} s ({1000 * history_s / count:.1f} ms a call); medians of {len(runs)}"
        )
    report("write_metadata.py", "a write's row count, commit file against history(1)", args, "", facts)


if __name__ == "__main__":
    main()
