"""What the warm-JVM benches share (``fixed_cost.py``, ``snapshot_range.py``,
``write_metadata.py``): their common arguments, a local Spark session set up as the test suite's,
a small generated operator and fresh roots holding its landing files, and appending their block
to RESULTS.md."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
from pathlib import Path

from run import RESULTS, machine

# the test suite's Spark settings (local[2], two shuffle partitions, 4g), read by its conftest too
SUITE_CONF = Path(__file__).resolve().parents[2] / "tests" / "suite.yaml"


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
    """One local JVM set up as the test suite's (``tests/suite.yaml``), with ``confs`` (config
    files) on top. Spark's generated code, as crmlake runs and the suite's slow tests run; its
    fast tests interpret (``tests/conftest.py``)."""
    from crmlake.core.config import load_config
    from crmlake.core.log import setup_logging
    from crmlake.core.session import build_session

    cfg = load_config([str(SUITE_CONF), *confs], env="local", overrides={"root": str(root)})
    setup_logging("WARNING", "text")
    return build_session(cfg)


def generated_landing(spark, source: Path, subscribers: int, days: int, start: str = "2026-01-05") -> None:
    """The bench's operator generated into ``source`` (seed 5), once: its landing files are kept
    for later runs."""
    from crmlake_jobs.generate import main as generate_main

    if (source / "landing").exists():
        return
    source.mkdir(parents=True, exist_ok=True)
    gen = ["--subscribers", str(subscribers), "--start", start, "--days", str(days), "--seed", "5"]
    if generate_main(["--root", str(source), *gen], spark=spark) != 0:
        raise SystemExit("generate failed")


def fresh_root(work: Path, source: Path) -> Path:
    """``work/root`` made anew, holding the landing files of ``source`` (hard links: the same
    files, sizes and modification times)."""
    root = work / "root"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(source / "landing"), str(root / "landing")], check=True)
    return root


def report(script: str, title: str, args: argparse.Namespace, options: str, facts: list[str]) -> None:
    """Print the bench's block (``title``; the machine; the command, from the common arguments,
    the bench's own ``options`` and its ``--conf`` files; then ``facts``); append it to
    RESULTS.md unless ``--no-record``."""
    command = (
        f"python scripts/bench/{script} --work {args.work} --subscribers {args.subscribers} --days {args.days}"
        f"{options} --runs {args.runs} --warm-up {args.warm_up}"
        + "".join(f" --conf {c}" for c in getattr(args, "conf", []))
    )
    lines = [
        "",
        f"## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: {title}, {args.subscribers} subscribers × {args.days} "
        "days, warm JVM" + (f", {args.label}" if args.label else ""),
        "",
        f"- machine: {machine()}; Spark local[2], two shuffle partitions (as the test suite)",
        f"- command: `{command}`",
        *facts,
    ]
    print("\n".join(lines))
    if not args.no_record:
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
