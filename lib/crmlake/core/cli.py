"""``crmlake <job> [options]``: one subcommand per job, each the same ``main`` that
``spark-submit jobs/<job>.py`` runs."""

from __future__ import annotations

import importlib
import sys

JOBS = (
    "generate",
    "ingest",
    "features",
    "kpis",
    "daily",
    "clv",
    "segment",
    "train-churn",
    "score-churn",
    "train-uplift",
    "score-uplift",
    "publish",
    "measure",
    "erase",
)


def _job_module(name: str):
    return importlib.import_module(f"crmlake_jobs.{name.replace('-', '_')}")


def usage() -> str:
    lines = ["usage: crmlake <job> [--conf FILE]... [--date YYYY-MM-DD] [--root DIR] [options]", "", "jobs:"]
    for name in JOBS:
        lines.append(f"  {name:<12} {_job_module(name).DESCRIPTION}")
    lines += ["", "crmlake <job> --help explains a job's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    job, rest = argv[0], argv[1:]
    if job not in JOBS:
        print(f"crmlake: unknown job {job!r}\n\n{usage()}", file=sys.stderr)
        return 2
    return _job_module(job).main(rest)


if __name__ == "__main__":
    sys.exit(main())
