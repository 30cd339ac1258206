"""Where a test run's time went, by job: every ``gold.run_log`` that the run's roots left in
pytest's temporary folder, each run id counted once (a root copied from another repeats its
rows), summed by job and by the test folder that holds the root.

    python scripts/bench/suite_runs.py [BASETEMP] [--top N]

BASETEMP defaults to pytest's latest (``/tmp/pytest-of-<user>/pytest-current``). pytest keeps the
last three runs' folders, and removes a test's folder only when it holds too many: the figures are
a lower bound (a run whose root is gone, or that failed before its run log existed, is missing).
Reads with delta-rs; no Spark session.
"""

from __future__ import annotations

import argparse
import collections
import getpass
import os
import sys
import tempfile
from pathlib import Path


def run_logs(basetemp: Path) -> list[tuple[str, Path]]:
    """(test folder, run log) for every run log under ``basetemp``; pytest's ``*current`` links
    to the same folders are skipped."""
    found = []
    for log in sorted(basetemp.glob("**/gold/run_log/_delta_log")):
        folder = log.relative_to(basetemp).parts[0]
        if not folder.endswith("current"):
            found.append((folder, log.parent))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}" / "pytest-current"
    parser.add_argument("basetemp", nargs="?", default=str(default))
    parser.add_argument("--top", type=int, default=20, help="test folders by job shown (default 20)")
    args = parser.parse_args(argv)
    basetemp = Path(args.basetemp).resolve()
    if not basetemp.is_dir():
        print(f"suite_runs: no such folder {basetemp}", file=sys.stderr)
        return 2

    from deltalake import DeltaTable

    seen: set[str] = set()
    by_job: dict[str, list] = collections.defaultdict(lambda: [0, 0.0])
    by_folder_job: dict[tuple[str, str], list] = collections.defaultdict(lambda: [0, 0.0])
    logs = run_logs(basetemp)
    for folder, path in logs:
        frame = DeltaTable(str(path)).to_pandas(columns=["run_id", "job", "started_at", "finished_at"])
        for row in frame.itertuples():
            if row.run_id in seen:
                continue
            seen.add(row.run_id)
            seconds = (row.finished_at - row.started_at).total_seconds() if row.finished_at is not None else 0.0
            for key, table in ((row.job, by_job), ((folder, row.job), by_folder_job)):
                table[key][0] += 1
                table[key][1] += seconds

    total = sum(seconds for _, seconds in by_job.values())
    print(f"{basetemp}: {len(logs)} roots, {len(seen)} job runs, {total:,.1f} s")
    print(f"{'job':<16}{'runs':>6}{'seconds':>10}{'mean':>8}")
    for job, (runs, seconds) in sorted(by_job.items(), key=lambda kv: -kv[1][1]):
        print(f"{job:<16}{runs:>6}{seconds:>10.1f}{seconds / runs:>8.1f}")
    print(f"\n{'test folder':<44}{'job':<16}{'runs':>6}{'seconds':>10}")
    for (folder, job), (runs, seconds) in sorted(by_folder_job.items(), key=lambda kv: -kv[1][1])[: args.top]:
        print(f"{folder:<44}{job:<16}{runs:>6}{seconds:>10.1f}")
    sys.stdout.flush()
    # delta-rs's binding can abort at interpreter exit after reading tables: leave without it
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
