"""What the warm-JVM benches share (``fixed_cost.py``, ``snapshot_range.py``): their common
arguments, a local Spark session set up as the test suite's, and appending their block to
RESULTS.md."""

from __future__ import annotations

import argparse
from pathlib import Path

from run import RESULTS


def warm_parser(doc: str, subscribers: int, days: int, runs: int, warm_up: int) -> argparse.ArgumentParser:
    """The arguments every warm bench takes; a bench adds its own."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="a folder for the operator and the roots")
    parser.add_argument("--subscribers", type=int, default=subscribers)
    parser.add_argument("--days", type=int, default=days)
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument(
        "--warm-up", type=int, default=warm_up, help="runs first, not timed (the JIT's first compilations)"
    )
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--label", default="", help="what code ran (a commit, when comparing with PYTHONPATH)")
    return parser


def suite_session(root: Path, confs: list[str]):
    """One local JVM set up as the test suite's (local[2], two shuffle partitions, 4g), with
    ``confs`` (config files) on top."""
    from crmlake.core.config import load_config
    from crmlake.core.log import setup_logging
    from crmlake.core.session import build_session

    cfg = load_config(
        confs,
        env="local",
        overrides={
            "root": str(root),
            "spark.master": "local[2]",
            "spark.shuffle_partitions": 2,
            "spark.driver_memory": "4g",
            "spark.delta_snapshot_partitions": 1,
            "logging.format": "text",
        },
    )
    cfg["spark"]["conf"]["spark.default.parallelism"] = "2"
    setup_logging("WARNING", "text")
    return build_session(cfg)


def report(lines: list[str], no_record: bool) -> None:
    """Print the block; append it to RESULTS.md unless ``no_record``."""
    print("\n".join(lines))
    if not no_record:
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
