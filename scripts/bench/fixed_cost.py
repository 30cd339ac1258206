"""Ingest's fixed cost: a small operator ingested on a fresh root, again and again in one JVM.

    python scripts/bench/fixed_cost.py --work DIR [--subscribers 300] [--days 5] [--runs 5]
        [--warm-up 2] [--conf FILE]... [--against FILE] [--label TEXT] [--no-record]

What a run costs where its rows cost little: the per-entity and per-run Spark jobs, Delta
commits and plan building that every ingest pays, as the test suite and a daily run of a small
operator pay them. Generates the operator once into ``DIR/source`` (kept for later runs), then
ingests it ``--warm-up`` + ``--runs`` times, each on a fresh root holding the same landing files
(hard links), in one local JVM set up as the test suite's (local[2], two shuffle partitions),
and after each run times an idle rerun (nothing new). Prints the median of the timed runs and
appends a block to RESULTS.md. To compare with earlier code, run this script with
``PYTHONPATH`` naming that code's ``lib`` and a folder where ``crmlake_jobs`` links its ``jobs``.
To compare settings side by side in one JVM, ``--against FILE`` runs every round twice, with
and without that config file on top of the job's configuration, in alternating order, and prints
both medians. It reaches the job's settings (``ingest:``), not the session's Spark settings, which
are fixed when the JVM starts (those go in ``--conf``, which reaches only the session).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from warm import fresh_root, generated_landing, report, suite_session, warm_parser  # noqa: E402

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("CRMLAKE_HMAC_KEY", "fixed-cost-bench-key")


def main() -> None:
    parser = warm_parser(__doc__, subscribers=300, days=5, runs=5, warm_up=2)
    parser.add_argument("--conf", action="append", default=[], help="a config file on top (e.g. other Spark settings)")
    parser.add_argument("--against", help="a job config file (ingest settings): each round also runs with it")
    args = parser.parse_args()

    from crmlake_jobs.ingest import main as ingest_main

    work = Path(args.work).resolve()
    source = work / "source"
    spark = suite_session(source, args.conf)
    # the variants of a round: the settings alone, and with --against on top
    variants = {"": [], **({f"with {args.against}": ["--conf", args.against]} if args.against else {})}
    fresh = {v: [] for v in variants}
    idle = {v: [] for v in variants}
    try:
        generated_landing(spark, source, args.subscribers, args.days)
        for i in range(args.warm_up + args.runs):
            order = list(variants) if i % 2 == 0 else list(reversed(variants))
            for variant in order:
                root = fresh_root(work, source)
                timings = []
                for _ in ("fresh", "idle"):
                    started = time.monotonic()
                    if ingest_main(["--root", str(root), "--all", *variants[variant]], spark=spark) != 0:
                        raise SystemExit("ingest failed")
                    timings.append(time.monotonic() - started)
                label = "warm-up" if i < args.warm_up else "timed"
                print(
                    f"run {i + 1} ({label}){' ' + variant if variant else ''}: "
                    f"fresh {timings[0]:.1f} s, idle rerun {timings[1]:.1f} s",
                    flush=True,
                )
                if i >= args.warm_up:
                    fresh[variant].append(timings[0])
                    idle[variant].append(timings[1])
    finally:
        spark.stop()

    facts = []
    for variant in variants:
        each = ", ".join(f"{s:.1f}" for s in fresh[variant])
        each_idle = ", ".join(f"{s:.1f}" for s in idle[variant])
        which = f" {variant}" if variant else (" without it" if args.against else "")
        facts += [
            f"- `ingest --all` on a fresh root, all entities{which}: median {statistics.median(fresh[variant]):.1f} s "
            f"of {len(fresh[variant])} ({each} s), after {args.warm_up} warm-up run(s) in the same JVM",
            f"- idle rerun (nothing new){which}: median {statistics.median(idle[variant]):.1f} s ({each_idle} s)",
        ]
    options = f" --against {args.against}" if args.against else ""
    report("fixed_cost.py", "ingest's fixed cost", args, options, facts)


if __name__ == "__main__":
    main()
