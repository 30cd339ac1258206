"""Benchmark generate + ingest at a chosen scale, with DuckDB loading the same usage CSV files
side by side as the reference for ingest speed. Appends a result block to RESULTS.md.

python scripts/bench/run.py --subscribers N --days K [--root DIR] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"


def run_measured(cmd: list[str], env: dict) -> tuple[float, float]:
    """Run a command; return (seconds, peak RSS in GiB of its largest process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    subprocess.run(cmd, check=True, env=env)
    elapsed = time.monotonic() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far; report it only if this run raised it.
    return elapsed, max(peak_kib, before) / 1024 / 1024


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


def duckdb_load(root: Path) -> tuple[float, int]:
    """DuckDB reading every usage CSV file, casting the typed columns, into a DuckDB table."""
    import duckdb

    con = duckdb.connect()
    started = time.monotonic()
    pattern = str(root / "landing" / "usage" / "date=*" / "*.csv")
    rows = con.execute(
        f"""
        CREATE TABLE usage AS
        SELECT record_id, msisdn, TRY_CAST(event_time AS TIMESTAMP) AS event_time, service_type, direction,
               TRY_CAST(duration_s AS BIGINT) AS duration_s, TRY_CAST(bytes_up AS BIGINT) AS bytes_up,
               TRY_CAST(bytes_down AS BIGINT) AS bytes_down, TRY_CAST(charge_amount AS DECIMAL(18,2)) AS charge_amount,
               currency, destination_type, is_roaming, cell_id, radio_tech
        FROM read_csv('{pattern}', header = true, all_varchar = true, ignore_errors = true, null_padding = true)
        """
    ).fetchall()
    elapsed = time.monotonic() - started
    rows = con.execute("SELECT count(*) FROM usage").fetchone()[0]
    return elapsed, rows


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo", encoding="utf-8") as fh:
        cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    system = f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB RAM, {system}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--start", default="2026-01-01")
    parser.add_argument("--bad-rate", type=float, default=0.001)
    parser.add_argument("--root", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "crmlake-bench"))
    parser.add_argument("--skip-ingest", action="store_true", help="measure generation only")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--driver-memory", default="8g")
    args = parser.parse_args()

    root = Path(args.root)
    shutil.rmtree(root, ignore_errors=True)
    env = dict(os.environ, CRMLAKE_HMAC_KEY=os.environ.get("CRMLAKE_HMAC_KEY", "bench-key"))
    crmlake = [sys.executable, "-m", "crmlake"]
    common = ["--root", str(root), "--log-format", "text"]
    memory_conf = root.parent / "crmlake-bench-conf.yaml"
    memory_conf.write_text(f"spark:\n  driver_memory: {args.driver_memory}\n", encoding="utf-8")
    common += ["--conf", str(memory_conf)]

    gen_s, gen_peak = run_measured(
        [
            *crmlake,
            "generate",
            *common,
            "--subscribers",
            str(args.subscribers),
            "--start",
            args.start,
            "--days",
            str(args.days),
            "--seed",
            "7",
            "--bad-rate",
            str(args.bad_rate),
        ],
        env,
    )
    counts = json.loads(last_run(root, "generate")["details"])["counts"]
    usage_rows = int(counts.get("usage", 0))
    total_rows = int(sum(counts.values()))
    lines = [
        f"## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: {args.subscribers:,} subscribers × {args.days} days",
        "",
        f"- machine: {machine()}",
        f"- generated: {usage_rows:,} usage records, {total_rows:,} records in all entities",
        f"- generate: {gen_s:,.1f} s, {usage_rows / gen_s:,.0f} usage records/s "
        f"({total_rows / gen_s:,.0f} records/s all entities), peak RSS {gen_peak:.1f} GiB",
    ]
    if not args.skip_ingest:
        ing_s, ing_peak = run_measured([*crmlake, "ingest", *common, "--all"], env)
        totals = ingest_totals(root)
        duck_s, duck_rows = duckdb_load(root)
        lines += [
            f"- ingest (all entities, {totals['file_days']} file days): {ing_s:,.1f} s, "
            f"{totals['rows_read'] / ing_s:,.0f} records/s, "
            f"peak RSS {ing_peak:.1f} GiB; usage read {totals['usage_read']:,}, accepted {totals['usage_accepted']:,}, "
            f"rejected (all entities) {totals['rows_rejected']:,}",
            f"- DuckDB loading the same usage CSV files (typed, into a table): {duck_s:,.1f} s, {duck_rows:,} rows, "
            f"{duck_rows / duck_s:,.0f} records/s",
            f"- ratio, Spark ingest of usage-dominated data / DuckDB CSV load: {ing_s / duck_s:,.1f}×",
        ]
    text = "\n".join(lines) + "\n\n"
    print(text)
    with open(RESULTS, "a", encoding="utf-8") as fh:
        fh.write(text)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
