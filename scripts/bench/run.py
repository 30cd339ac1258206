"""Benchmark generate + ingest at a chosen scale, with DuckDB side by side: DuckDB loading the
same usage CSV files (how fast they can be read at all) and DuckDB SQL doing what ingest does to
usage (``ingest_peer.py``), checked row for row against crmlake's silver and quarantine. Every
command's memory is the sampled peak of its whole process tree (JVM included). Appends a result
block to RESULTS.md.

python scripts/bench/run.py --subscribers N --days K [--root DIR] [--keep]
python scripts/bench/run.py --landing-from ROOT  # ingest files generated before (hard-linked)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from proctree import Measured, run_sampled  # noqa: E402

RESULTS = HERE / "RESULTS.md"


def run_logged(cmd: list[str], env: dict, log_path: Path) -> Measured:
    """Run a crmlake command with its (JSON) log in ``log_path``, memory sampled."""
    with open(log_path, "w", encoding="utf-8") as log_file:
        return run_sampled(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT)


def stage_seconds(log_path: Path) -> dict[str, float]:
    """Elapsed seconds of every stage a JSON log reports as done."""
    stages = {}
    for line in log_path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("msg", "").endswith(": done") and "elapsed_s" in entry:
                stages[entry["stage"]] = entry["elapsed_s"]
    return stages


def last_run(root: Path, job: str) -> dict:
    from deltalake import DeltaTable

    runs = DeltaTable(str(root / "gold" / "run_log")).to_pyarrow_table().to_pylist()
    mine = sorted((r for r in runs if r["job"] == job), key=lambda r: r["started_at"])
    return mine[-1]


def ingest_totals(root: Path) -> dict:
    """Totals over the ingest runs of this (fresh) bench root."""
    from deltalake import DeltaTable

    runs = [
        r for r in DeltaTable(str(root / "gold" / "run_log")).to_pyarrow_table().to_pylist() if r["job"] == "ingest"
    ]
    usage = [json.loads(r["details"]).get("usage", {}) for r in runs]
    return {
        "file_days": sum((r["run_date"] - r["date_from"]).days + 1 for r in runs),
        "rows_read": sum(r["rows_read"] for r in runs),
        "usage_read": sum(u.get("read", 0) for u in usage),
        "usage_accepted": sum(u.get("accepted", 0) for u in usage),
        "rows_rejected": sum(r["rows_rejected"] for r in runs),
    }


def duckdb_load(root: Path, threads: int, spill: Path) -> tuple[float, int]:
    """DuckDB reading every usage CSV file, casting the typed columns, into a DuckDB table
    (spilling to ``spill``)."""
    import duckdb

    con = duckdb.connect(config={"threads": threads, "temp_directory": str(spill)})
    started = time.monotonic()
    pattern = str(root / "landing" / "usage" / "date=*" / "*.csv")
    con.execute(
        f"""
        CREATE TABLE usage AS
        SELECT record_id, msisdn, TRY_CAST(event_time AS TIMESTAMP) AS event_time, service_type, direction,
               TRY_CAST(duration_s AS BIGINT) AS duration_s, TRY_CAST(bytes_up AS BIGINT) AS bytes_up,
               TRY_CAST(bytes_down AS BIGINT) AS bytes_down, TRY_CAST(charge_amount AS DECIMAL(18,2)) AS charge_amount,
               currency, destination_type, is_roaming, cell_id, radio_tech
        FROM read_csv('{pattern}', header = true, all_varchar = true, ignore_errors = true, null_padding = true)
        """
    )
    elapsed = time.monotonic() - started
    rows = con.execute("SELECT count(*) FROM usage").fetchone()[0]
    con.close()
    return elapsed, rows


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo", encoding="utf-8") as fh:
        cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    system = f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB RAM, {system}"


def link_landing(source: Path, root: Path) -> None:
    """A fresh root whose landing files are hard links to ``source``'s (ingest only reads them)."""
    root.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(source / "landing"), str(root / "landing")], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--start", default="2026-01-01")
    parser.add_argument("--bad-rate", type=float, default=0.001)
    parser.add_argument("--root", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "crmlake-bench"))
    parser.add_argument("--landing-from", help="ingest the landing files of this root (generated before)")
    parser.add_argument("--skip-ingest", action="store_true", help="measure generation only")
    parser.add_argument("--no-peer", action="store_true", help="skip the DuckDB ingest peer and its check")
    # The peer's own time varied by a fifth between runs on the same files (39.7-47.7 s at 10.9 M
    # usage records): the ratio is taken against the median of several runs.
    parser.add_argument("--peer-runs", type=int, default=3, help="runs of the DuckDB peer; its median is used")
    parser.add_argument("--keep", action="store_true", help="keep the bench root")
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--conf", action="append", default=[], help="a config file on top, for every crmlake command")
    parser.add_argument("--no-record", action="store_true", help="print the block, do not append it")
    args = parser.parse_args()

    root = Path(args.root)
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    # the key in this process too: the DuckDB peer pseudonymizes here, not in a crmlake command
    os.environ.setdefault("CRMLAKE_HMAC_KEY", "bench-key")
    env = dict(os.environ)
    crmlake = [sys.executable, "-m", "crmlake"]
    common = ["--root", str(root), "--log-format", "json"]
    bench_conf = root.parent / "crmlake-bench-conf.yaml"
    # Entities one at a time: each ingest stage's logged time is then its own, as the usage
    # stage's ratio to the DuckDB peer needs (two at once share the cores; at a million usage
    # records they changed the whole run's time nothing, RESULTS.md 2026-12-07). A --conf may
    # set ingest.entities_at_once again.
    bench_conf.write_text(
        f"spark:\n  driver_memory: {args.driver_memory}\ningest:\n  entities_at_once: 1\n", encoding="utf-8"
    )
    common += ["--conf", str(bench_conf)]
    for conf in args.conf:
        common += ["--conf", str(Path(conf).resolve())]
    threads = os.cpu_count() or 1
    settings = f"Spark local[*], driver {args.driver_memory}, ingest's entities one at a time; DuckDB {threads} threads"

    if args.landing_from:
        link_landing(Path(args.landing_from), root)
        scale = f"landing files of {args.landing_from}"
        lines = []
    else:
        generate = [
            *crmlake, "generate", *common, "--subscribers", str(args.subscribers), "--start", args.start,
            "--days", str(args.days), "--seed", "7", "--bad-rate", str(args.bad_rate),
        ]  # fmt: skip
        gen = run_logged(generate, env, root.parent / "crmlake-bench-generate.log")
        counts = json.loads(last_run(root, "generate")["details"])["counts"]
        usage_rows = int(counts.get("usage", 0))
        total_rows = int(sum(counts.values()))
        scale = f"{args.subscribers:,} subscribers × {args.days} days"
        lines = [
            f"- generated: {usage_rows:,} usage records, {total_rows:,} records in all entities",
            f"- generate: {gen.seconds:,.1f} s, {usage_rows / gen.seconds:,.0f} usage records/s "
            f"({total_rows / gen.seconds:,.0f} records/s all entities), peak memory {gen.peak_tree_gib:.1f} GiB",
        ]
    command = " ".join(["scripts/bench.sh", *sys.argv[1:]])
    lines = [
        f"## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: ingest, {scale}",
        "",
        f"- machine: {machine()}; {settings}",
        f"- command: `{command}`",
        *lines,
    ]
    if not args.skip_ingest:
        ingest_log = root.parent / "crmlake-bench-ingest.log"
        ing = run_logged([*crmlake, "ingest", *common, "--all"], env, ingest_log)
        totals = ingest_totals(root)
        stages = stage_seconds(ingest_log)
        # DuckDB's spill beside the bench root, not in the working directory (a checkout)
        spill = root.parent / "crmlake-bench-duckdb-spill"
        duck_s, duck_rows = duckdb_load(root, threads, spill)
        lines += [
            f"- ingest (all entities, {totals['file_days']} file days, one run): {ing.seconds:,.1f} s whole command, "
            f"{totals['rows_read'] / ing.seconds:,.0f} records/s; peak memory of the process tree "
            f"{ing.peak_tree_gib:.1f} GiB (largest process {ing.peak_single_gib:.1f} GiB); "
            f"usage read {totals['usage_read']:,}, accepted {totals['usage_accepted']:,}, "
            f"rejected (all entities) {totals['rows_rejected']:,}",
            "- ingest stages: " + ", ".join(f"{name.removeprefix('ingest ')} {s:,.1f} s" for name, s in stages.items()),
            f"- DuckDB loading the same usage CSV files (typed, into a table, nothing else): {duck_s:,.1f} s, "
            f"{duck_rows:,} rows",
        ]
        if not args.no_peer:
            import ingest_peer

            runs = []
            for _ in range(max(1, args.peer_runs)):
                if runs:
                    runs[-1]["connection"].close()  # only the last run's tables are checked
                runs.append(ingest_peer.run_peer(root, threads, temp_dir=str(spill)))
            peer = runs[-1]
            peer_s = statistics.median(r["seconds"] for r in runs)
            each = ", ".join(f"{r['seconds']:,.1f}" for r in runs)
            # the usage stage: its bronze write (logged on its own since a run writes bronze for
            # every entity before silver) and its bronze → silver stage
            usage_s = stages.get("bronze usage", 0) + stages.get("ingest usage", 0)
            lines += [
                f"- DuckDB SQL doing what ingest does to usage (`scripts/bench/ingest_peer.py`: typed read, contract "
                f"rules, E.164, keyed HMAC, latest-wins de-duplication): median {peer_s:,.1f} s of "
                f"{len(runs)} run(s) ({each} s); read "
                f"{peer['read']:,}, accepted {peer['accepted']:,}, quarantined {peer['quarantined']:,}, duplicate "
                f"{peer['duplicate']:,}",
                f"- ratio, crmlake's usage stage (bronze + silver, {usage_s:,.1f} s) / the DuckDB peer's median: "
                f"{usage_s / peer_s:,.1f}×"
                if usage_s
                else "- ratio: crmlake's log has no usage stage",
            ]
            verdict = ingest_peer.check(root, peer["connection"])
            lines.append(f"- the peer's silver and quarantine against crmlake's, row for row: {verdict['summary']}")
            peer["connection"].close()
        shutil.rmtree(spill, ignore_errors=True)
        # The same command again with nothing new: what a rerun costs when no delivery changed.
        idle = run_logged([*crmlake, "ingest", *common, "--all"], env, root.parent / "crmlake-bench-idle.log")
        rerun = last_run(root, "ingest")
        details = json.loads(rerun["details"]).values()
        unchanged = sum(len(c.get("unchanged_days", [])) for c in details if isinstance(c, dict))
        lines.append(
            f"- idle rerun (the same `ingest --all`, nothing new): {idle.seconds:,.1f} s whole command, rows read "
            f"{rerun['rows_read']:,}, {unchanged} entity file dates left as derived; "
            f"peak memory {idle.peak_tree_gib:.1f} GiB"
        )
    text = "\n".join(lines) + "\n\n"
    print(text)
    if not args.no_record:
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write(text)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    sys.stdout.flush()
    os._exit(0)  # delta-rs can abort at interpreter exit after reading tables


if __name__ == "__main__":
    main()
