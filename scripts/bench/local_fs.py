"""What crmlake's local file system (lib/jvm) saves against Hadoop's: the processes the driver's
JVM forks, and the time, for small appends to a Delta table, the test suite's kind of write.

Each file system runs in its own JVM set up as the test suite's (``tests/suite.yaml``), first
under ``strace`` (execve only, filtered in the kernel) to count the processes forked between two
markers around the appends, then without it, for time: ``--runs`` rounds, alternating, each of
``--appends`` appends of 100 rows after ``--warm-up`` untimed ones. Needs strace for the counts.

    python scripts/bench/local_fs.py --work DIR [--appends 40] [--runs 2] [--no-record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from run import RESULTS, machine

EXECVE = re.compile(r'^(\d+)\s+execve\("([^"]+)"')  # strace -f: the process and the program it tried
MARK = "/bin/true"  # run by the child just before and after its appends: strace's markers


def child(fs: str, work: Path, appends: int, warm_up: int) -> None:
    """One JVM: ``warm_up`` appends, a marker, ``appends`` timed appends, a marker; prints JSON."""
    from crmlake.core.session import HADOOP_LOCAL_FS
    from warm import suite_session

    confs = []
    if fs == "hadoop":
        conf = work / "hadoop-fs.yaml"
        conf.write_text(json.dumps({"spark": {"conf": HADOOP_LOCAL_FS}}))
        confs.append(str(conf))
    root = Path(tempfile.mkdtemp(dir=work))
    spark = suite_session(root, confs)
    jvm = spark._jvm
    used = str(
        jvm.org.apache.hadoop.fs.FileSystem.getLocal(spark.sparkContext._jsc.hadoopConfiguration()).getClass().getName()
    )
    table = str(root / "t")
    for _ in range(warm_up):
        spark.range(100).write.format("delta").mode("append").save(table)
    subprocess.run([MARK], check=True)
    seconds = []
    for _ in range(appends):
        start = time.perf_counter()
        spark.range(100).write.format("delta").mode("append").save(table)
        seconds.append(time.perf_counter() - start)
    subprocess.run([MARK], check=True)
    print(json.dumps({"class": used, "seconds": seconds}))
    spark.stop()
    shutil.rmtree(root, ignore_errors=True)


def run_child(fs: str, args: argparse.Namespace, trace: Path | None) -> dict:
    command = [sys.executable, __file__, "--child", fs, "--work", args.work, "--appends", str(args.appends)]
    command += ["--warm-up", str(args.warm_up)]
    if trace is not None:
        command = ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=execve", "-o", str(trace), *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {fs} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def forks_between_markers(trace: Path) -> tuple[int, Counter]:
    """Processes the JVM started between the two markers (each fork runs Java's jspawnhelper,
    which then runs the program, trying each folder on PATH), and the programs they ran."""
    lines = trace.read_text().splitlines()
    marks = [i for i, line in enumerate(lines) if f'execve("{MARK}"' in line]
    if len(marks) != 2:
        raise SystemExit(f"{trace}: expected two markers, found {len(marks)}")
    tried: dict[str, list[str]] = {}
    for line in lines[marks[0] + 1 : marks[1]]:
        if m := EXECVE.match(line):
            tried.setdefault(m.group(1), []).append(m.group(2))
    forked = [paths for paths in tried.values() if "jspawnhelper" in paths[0]]
    return len(forked), Counter(Path(paths[-1]).name for paths in forked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="a folder for the tables (emptied of them after)")
    parser.add_argument("--appends", type=int, default=40)
    parser.add_argument("--warm-up", type=int, default=10)
    parser.add_argument("--runs", type=int, default=2, help="timed rounds, alternating the two file systems")
    parser.add_argument("--child", choices=["hadoop", "crmlake"], help=argparse.SUPPRESS)
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    if args.child:
        child(args.child, Path(args.work), args.appends, args.warm_up)
        return
    order = ["hadoop", "crmlake"]
    forks = {}
    for fs in order:
        trace = Path(args.work) / f"strace-{fs}.txt"
        got = run_child(fs, args, trace)
        forks[fs] = (got["class"], forks_between_markers(trace))
    medians: dict[str, list[float]] = {fs: [] for fs in order}
    for _ in range(args.runs):
        for fs in order:
            medians[fs].append(statistics.median(run_child(fs, args, None)["seconds"]))
    command = (
        f"python scripts/bench/local_fs.py --work {args.work} --appends {args.appends} "
        f"--warm-up {args.warm_up} --runs {args.runs}"
    )
    lines = [
        "",
        f"## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: the local file system, Hadoop's against crmlake's (lib/jvm)",
        "",
        f"- machine: {machine()}; Spark local[2], two shuffle partitions (as the test suite)",
        f"- command: `{command}`",
        f"- workload: {args.appends} appends of 100 rows to one Delta table after {args.warm_up} untimed",
    ]
    for fs in order:
        used, (count, programs) = forks[fs]
        times = ", ".join(f"{m * 1000:.0f}" for m in medians[fs])
        ran = ", ".join(f"{name} {n}" for name, n in programs.most_common()) or "none"
        lines.append(
            f"- {fs} ({used}): {count} processes forked ({ran}), {count / args.appends:.1f} an append; "
            f"median append {times} ms (rounds in order)"
        )
    print("\n".join(lines))
    if not args.no_record:
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
