"""The features job over a range of dates: a backfill's cost, where a small operator's snapshots
cost more in commits and plans than in rows.

    python scripts/bench/snapshot_range.py --work DIR [--subscribers 500] [--days 38] [--range-days 28]
        [--runs 3] [--warm-up 1] [--conf FILE]... [--label TEXT] [--no-record]

Generates and ingests the operator once into ``DIR/source`` (kept for later runs), then runs
``features --from D --to E`` (the last ``--range-days`` days of the window) ``--warm-up`` +
``--runs`` times, each on a fresh copy of the ingested root, in one local JVM set up as the test
suite's (local[2], two shuffle partitions). A ``--conf`` with a short label horizon (``labels:
horizon_days: 7``) has the range write churn labels too, as a backfill of a year's history does.
Prints the median of the timed runs and appends a
block to RESULTS.md. To compare with earlier code, run it with ``PYTHONPATH`` naming that code's
``lib`` and a folder where ``crmlake_jobs`` links its ``jobs``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import RESULTS, machine  # noqa: E402

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("CRMLAKE_HMAC_KEY", "snapshot-range-bench-key")

START = dt.date(2026, 3, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="a folder for the operator and the copies")
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--days", type=int, default=38)
    parser.add_argument("--range-days", type=int, default=28, help="the range's length, ending on the last day")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warm-up", type=int, default=1, help="runs first, not timed (the JIT's first compilations)")
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--conf", action="append", default=[], help="a config file for the features runs")
    parser.add_argument("--label", default="", help="what code ran (a commit, when comparing with PYTHONPATH)")
    args = parser.parse_args()

    from crmlake.core.config import load_config
    from crmlake.core.log import setup_logging
    from crmlake.core.session import build_session
    from crmlake_jobs.features import main as features_main
    from crmlake_jobs.generate import main as generate_main
    from crmlake_jobs.ingest import main as ingest_main

    work = Path(args.work).resolve()
    source = work / "source"
    cfg = load_config(
        env="local",
        overrides={
            "root": str(source),
            "spark.master": "local[2]",
            "spark.shuffle_partitions": 2,
            "spark.driver_memory": "4g",
            "spark.delta_snapshot_partitions": 1,
            "logging.format": "text",
        },
    )
    cfg["spark"]["conf"]["spark.default.parallelism"] = "2"
    setup_logging("WARNING", "text")
    last = START + dt.timedelta(days=args.days - 1)
    first = last - dt.timedelta(days=args.range_days - 1)
    spark = build_session(cfg)
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
            if features_main(["--root", str(root), *confs, "--from", str(first), "--to", str(last)], spark=spark) != 0:
                raise SystemExit("features failed")
            took = time.monotonic() - started
            label = "warm-up" if i < args.warm_up else "timed"
            print(f"run {i + 1} ({label}): features {first}..{last} {took:.1f} s", flush=True)
            if i >= args.warm_up:
                timed.append(took)
    finally:
        spark.stop()

    each = ", ".join(f"{s:.1f}" for s in timed)
    lines = [
        "",
        f"## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: features over a {args.range_days}-day range, "
        f"{args.subscribers} subscribers × {args.days} days, warm JVM" + (f", {args.label}" if args.label else ""),
        "",
        f"- machine: {machine()}; Spark local[2], two shuffle partitions (as the test suite)",
        f"- command: `python scripts/bench/snapshot_range.py --work {args.work} --subscribers {args.subscribers} "
        f"--days {args.days} --range-days {args.range_days} --runs {args.runs} --warm-up {args.warm_up}"
        + "".join(f" --conf {c}" for c in args.conf)
        + "`",
        f"- `features --from {first} --to {last}` on a fresh copy of the ingested root: median "
        f"{statistics.median(timed):.1f} s of {len(timed)} ({each} s), after {args.warm_up} warm-up run(s)",
    ]
    print("\n".join(lines))
    if not args.no_record:
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
