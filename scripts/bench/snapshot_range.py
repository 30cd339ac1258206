"""The features (or kpis) job over a range of dates: a backfill's cost, where a small operator's
snapshots cost more in commits and plans than in rows.

    python scripts/bench/snapshot_range.py --work DIR [--job features|kpis] [--subscribers 500]
        [--days 38] [--range-days 28] [--runs 3] [--warm-up 1] [--conf FILE]... [--label TEXT]
        [--no-record]

Generates and ingests the operator once into ``DIR/source`` (kept for later runs), then runs
``<job> --from D --to E`` (the last ``--range-days`` days of the window) ``--warm-up`` +
``--runs`` times, each on a fresh copy of the ingested root, in one local JVM set up as the test
suite's (local[2], two shuffle partitions). A ``--conf`` with a short label horizon (``labels:
horizon_days: 7``) has the range write churn labels too, as a backfill of a year's history does.
Prints the median of the timed runs and appends a
block to RESULTS.md. To compare with earlier code, run it with ``PYTHONPATH`` naming that code's
``lib`` and a folder where ``crmlake_jobs`` links its ``jobs``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from warm import report, suite_session, warm_parser  # noqa: E402

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("CRMLAKE_HMAC_KEY", "snapshot-range-bench-key")

START = dt.date(2026, 3, 1)


def main() -> None:
    parser = warm_parser(__doc__, subscribers=500, days=38, runs=3, warm_up=1)
    parser.add_argument("--range-days", type=int, default=28, help="the range's length, ending on the last day")
    parser.add_argument("--conf", action="append", default=[], help="a config file for the timed runs")
    parser.add_argument("--job", choices=("features", "kpis"), default="features", help="the job run over the range")
    args = parser.parse_args()

    from crmlake_jobs import features, kpis
    from crmlake_jobs.generate import main as generate_main
    from crmlake_jobs.ingest import main as ingest_main

    job_main = {"features": features.main, "kpis": kpis.main}[args.job]

    work = Path(args.work).resolve()
    source = work / "source"
    last = START + dt.timedelta(days=args.days - 1)
    first = last - dt.timedelta(days=args.range_days - 1)
    spark = suite_session(source, [])
    try:
        if not (source / "silver").exists():
            shutil.rmtree(source, ignore_errors=True)
            source.mkdir(parents=True)
            gen = ["--subscribers", str(args.subscribers), "--start", str(START), "--days", str(args.days)]
            if generate_main(["--root", str(source), *gen, "--seed", "21"], spark=spark) != 0:
                raise SystemExit("generate failed")
            if ingest_main(["--root", str(source), "--all"], spark=spark) != 0:
                raise SystemExit("ingest failed")
        timed = []
        for i in range(args.warm_up + args.runs):
            root = work / "root"
            shutil.rmtree(root, ignore_errors=True)
            shutil.copytree(source, root, symlinks=True)
            started = time.monotonic()
            confs = [a for c in args.conf for a in ("--conf", str(Path(c).resolve()))]
            if job_main(["--root", str(root), *confs, "--from", str(first), "--to", str(last)], spark=spark) != 0:
                raise SystemExit(f"{args.job} failed")
            took = time.monotonic() - started
            label = "warm-up" if i < args.warm_up else "timed"
            print(f"run {i + 1} ({label}): {args.job} {first}..{last} {took:.1f} s", flush=True)
            if i >= args.warm_up:
                timed.append(took)
    finally:
        spark.stop()

    each = ", ".join(f"{s:.1f}" for s in timed)
    facts = [
        f"- `{args.job} --from {first} --to {last}` on a fresh copy of the ingested root: median "
        f"{statistics.median(timed):.1f} s of {len(timed)} ({each} s), after {args.warm_up} warm-up run(s)",
    ]
    report(
        "snapshot_range.py",
        f"{args.job} over a {args.range_days}-day range",
        args,
        f" --job {args.job} --range-days {args.range_days}",
        facts,
    )


if __name__ == "__main__":
    main()
