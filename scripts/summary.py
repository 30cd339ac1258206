"""Print what a crmlake root holds, read with delta-rs (no Spark needed): table row counts,
the quarantine by rule, and the last runs. Usage: python scripts/summary.py ROOT"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import pyarrow.compute as pc
from deltalake import DeltaTable


def main(root: str) -> None:
    base = Path(root).resolve()
    print(f"tables under {base}:")
    for layer in ("bronze", "silver", "gold"):
        for path in sorted((base / layer).glob("*/_delta_log")):
            table = DeltaTable(str(path.parent))
            rows = table.to_pyarrow_dataset().count_rows()
            print(f"  {layer}.{path.parent.name:<24} {rows:>12,} rows  version {table.version()}  {path.parent}")
    quarantine = base / "silver" / "quarantine"
    if (quarantine / "_delta_log").exists():
        data = DeltaTable(str(quarantine)).to_pyarrow_table(columns=["entity", "rule"])
        counts = data.group_by(["entity", "rule"]).aggregate([("rule", "count")]).sort_by("entity")
        print("quarantine by entity and rule:")
        for row in counts.to_pylist():
            print(f"  {row['entity']:<20} {row['rule']:<20} {row['rule_count']:>8,}")
    kpis = base / "gold" / "kpis"
    if (kpis / "_delta_log").exists():
        print_kpis(DeltaTable(str(kpis)).to_pyarrow_table())
    run_log = base / "gold" / "run_log"
    if (run_log / "_delta_log").exists():
        runs = DeltaTable(str(run_log)).to_pyarrow_table(
            columns=[
                "job",
                "run_date",
                "status",
                "rows_read",
                "rows_written",
                "rows_rejected",
                "rows_duplicate",
                "duration_s",
            ]
        )
        failed = pc.sum(pc.equal(runs["status"], "failed")).as_py() or 0
        print(f"run_log: {runs.num_rows} runs, {failed} failed; totals:")
        for job in sorted(set(runs["job"].to_pylist())):
            mine = runs.filter(pc.equal(runs["job"], job))
            total = {
                c: pc.sum(mine[c]).as_py()
                for c in ("rows_read", "rows_written", "rows_rejected", "rows_duplicate", "duration_s")
            }
            print(
                f"  {job:<10} read {total['rows_read'] or 0:>11,}  written {total['rows_written'] or 0:>11,}  "
                f"rejected {total['rows_rejected'] or 0:>8,}  duplicates {total['rows_duplicate'] or 0:>7,}  "
                f"{total['duration_s'] or 0:,.0f} s"
            )


HEADLINE = {
    "active_base": "{:,.0f}",
    "gross_adds": "{:,.0f}",
    "churners": "{:,.0f}",
    "churn_rate": "{:.2%}",
    "arpu": "{:,.0f}",
    "mou": "{:,.1f}",
    "data_mb_per_subscriber": "{:,.1f}",
    "csat": "{:.1%}",
    "nps": "{:+.1f}",
    "fcr_rate": "{:.1%}",
    "escalation_rate": "{:.1%}",
    "avg_handle_time_s": "{:,.0f}",
}


def print_kpis(kpis) -> None:
    """The latest month-to-date headline KPIs, overall and per plan type."""
    months = kpis.filter(pc.equal(kpis["period"], "month"))
    if months.num_rows == 0:
        return
    end = pc.max(months["period_end"]).as_py()
    latest = months.filter(pc.equal(months["period_end"], end)).to_pylist()
    groups = [("overall", "all"), ("plan_type", "prepaid"), ("plan_type", "postpaid")]
    value = {(r["dimension"], r["dimension_value"], r["kpi"]): r["value"] for r in latest if r["breakdown"] is None}
    print(f"KPIs, month to date through {end}:")
    print(f"  {'':<24}" + "".join(f"{v:>14}" for _, v in groups))
    for kpi, fmt in HEADLINE.items():
        cells = [value.get((d, v, kpi)) for d, v in groups]
        print(f"  {kpi:<24}" + "".join(f"{(fmt.format(c) if c is not None else '-'):>14}" for c in cells))


def run_and_exit(argv: list[str]) -> None:
    """Run, then leave without interpreter finalization. The deltalake (delta-rs) binding can
    abort while Python shuts down after it read tables ("terminate called without an active
    exception", exit 134): its runtime's threads outlive the interpreter's teardown. Everything is
    printed and flushed by then, so skipping the finalizers loses nothing."""
    try:
        main(argv[1] if len(argv) > 1 else "data")
        code = 0
    except Exception:  # noqa: BLE001 - print the error as Python would, then exit 1 the same way
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run_and_exit(sys.argv)
