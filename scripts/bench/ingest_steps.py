"""Where an ingest run's time goes, step by step, on a fresh root with another root's landing files.

    python scripts/bench/ingest_steps.py --landing-from ROOT --root NEW_ROOT [--conf FILE]...
        [--entities subscribers,usage]

Runs ``crmlake ingest --all`` in this Python process (a cold JVM, as ``scripts/bench.sh`` does)
with each step timed: landing files to bronze (per entity), each entity's bronze → silver stage
(its first read, the counts, builds the batch's numbers keyed once each, the rules' cache and
the keys seen twice), the quarantine and silver within it, the derivations record (once a
run). Prints one line per step and entity; appends nothing to RESULTS.md (copy the lines there
with this command). ``NEW_ROOT`` is replaced.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import crmlake.silver.run as ingest_run
from crmlake.core.cli import main as crmlake_main

# The steps timed: module functions of crmlake.silver.run (as it calls them) and methods of
# its Ingestor. Nested steps count inside their caller (``_ingest_entity`` is the whole stage).
STEPS = {
    "land_to_bronze": "landing files → bronze",
    "_write_quarantine": "quarantine compared and written",
    "_write_silver": "silver written",
    "record_derivations": "derivations recorded",
    "_ingest_entity": "the entity's bronze → silver stage",
}


def timed(name: str, fn, spent: dict[str, list[float]]):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        started = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name].append(time.monotonic() - started)
            print(f"  {name}: {spent[name][-1]:.1f} s", flush=True)

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--landing-from", required=True, help="a root whose landing files are ingested")
    parser.add_argument("--root", required=True, help="the fresh root (replaced)")
    parser.add_argument("--conf", action="append", default=[])
    parser.add_argument("--entities", default="subscribers,usage")
    args = parser.parse_args()
    root = Path(args.root)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(Path(args.landing_from) / "landing"), str(root / "landing")], check=True)

    spent: dict[str, list[float]] = defaultdict(list)
    for name in STEPS:
        owner = ingest_run.Ingestor if name.startswith("_") else ingest_run
        setattr(owner, name, timed(name, getattr(owner, name), spent))
    conf = [arg for path in args.conf for arg in ("--conf", path)]
    started = time.monotonic()
    code = crmlake_main(["ingest", "--root", str(root), *conf, "--all", "--entities", args.entities])
    print(f"ingest exit {code}, {time.monotonic() - started:.1f} s in all")
    for name, label in STEPS.items():
        print(f"- {label} (`{name}`): " + ", ".join(f"{s:.1f} s" for s in spent[name]))


if __name__ == "__main__":
    main()
