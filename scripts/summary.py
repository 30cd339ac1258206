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
    if (base / "gold" / "segments" / "_delta_log").exists():
        print_segments(base)
    if (base / "gold" / "clv" / "_delta_log").exists():
        print_clv(base)
    if (base / "gold" / "model_metrics" / "_delta_log").exists():
        print_churn_model(base)
    if (base / "gold" / "churn_scores" / "_delta_log").exists():
        print_churn_scores(base)
    print_campaigns(base)
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


def _latest(table, column: str):
    return table.filter(pc.equal(table[column], pc.max(table[column])))


def print_segments(base: Path) -> None:
    """Segment sizes of the latest snapshot, and the named clusters."""
    segments = _latest(DeltaTable(str(base / "gold" / "segments")).to_pyarrow_table(), "snapshot_date")
    date = segments["snapshot_date"][0].as_py()
    print(f"segments on {date} ({segments.num_rows:,} subscribers):")
    for scheme in ("lifecycle_stage", "value_tier", "behaviour", "cluster_name"):
        if scheme not in segments.column_names:
            continue
        counts = segments.group_by(scheme).aggregate([(scheme, "count")]).sort_by([(f"{scheme}_count", "descending")])
        cells = ", ".join(f"{r[scheme]} {r[f'{scheme}_count']:,}" for r in counts.to_pylist())
        print(f"  {scheme:<16} {cells}")


def print_clv(base: Path) -> None:
    """Mean CLV of the operator's customers on the latest date, by model and plan, and by
    lifecycle stage where segments exist for that date."""
    clv = DeltaTable(str(base / "gold" / "clv")).to_pyarrow_table()
    clv = _latest(clv.filter(pc.equal(clv["source"], "operator")), "as_of_date")
    if clv.num_rows == 0:
        return
    date = clv["as_of_date"][0].as_py()
    fits = DeltaTable(str(base / "gold" / "clv_models")).to_pyarrow_table()
    fits = fits.filter(pc.and_(pc.equal(fits["source"], "operator"), pc.equal(fits["calibration_end"], date)))
    print(f"lifetime value on {date}: fits")
    for fit in fits.filter(pc.equal(fits["group"], "all")).to_pylist():
        params = ", ".join(f"{k} {v:.3g}" for k, v in sorted(fit["params"]))
        print(f"  {fit['model']:<12} {fit['customers']:>7,} customers  {params}  converged {fit['converged']}")
    months = sorted(int(c[4:-1]) for c in clv.column_names if c.startswith("clv_") and c.endswith("m"))
    label = f"clv_{months[0]}m" if months else None
    if label is None:
        return
    by = ["model"]
    for table, column in (("features", "plan_type"), ("segments", "lifecycle_stage")):
        path = base / "gold" / table
        if not (path / "_delta_log").exists():
            continue
        labels = DeltaTable(str(path)).to_pyarrow_table(
            partitions=[("snapshot_date", "=", str(date))], columns=["subscriber_key", column]
        )
        if labels.num_rows:
            clv = clv.join(labels, "subscriber_key", join_type="left outer")
            by.append(column)
    table = clv.group_by(by).aggregate([(label, "mean"), (label, "count")]).sort_by([(c, "ascending") for c in by])
    print(f"mean {label} by {', '.join(by)}:")
    for row in table.to_pylist():
        keys = "  ".join(f"{str(row[c]):<18}" for c in by)
        print(f"  {keys} {row[f'{label}_mean'] or 0:>16,.0f}  ({row[f'{label}_count']:,} customers)")


def print_churn_model(base: Path) -> None:
    """The latest training run's candidates on the validation and test snapshots."""
    metrics = DeltaTable(str(base / "gold" / "model_metrics")).to_pyarrow_table()
    if metrics.num_rows == 0:
        return
    # the churn model's rows (the uplift model's are trained on gold.campaign_targets)
    metrics = metrics.filter(pc.not_equal(metrics["dataset"], "gold.campaign_targets"))
    if metrics.num_rows == 0:
        return
    run = metrics.sort_by([("model_version", "descending")])["run_id"][0].as_py()
    rows = metrics.filter(pc.equal(metrics["run_id"], run)).to_pylist()
    first = next(r for r in rows if r["is_registered"])
    print(f"churn model {first['model_name']} version {first['model_version']} (holdout metrics):")
    names = ("roc_auc", "pr_auc", "top_decile_lift", "brier")
    print(f"  {'candidate':<22} {'split':<11} " + " ".join(f"{n:>16}" for n in names))
    for (candidate, split), values in sorted(_by(rows, ("candidate", "split")).items()):
        chosen = "*" if values[0]["is_registered"] else " "
        got = {v["metric"]: v["value"] for v in values}
        print(f"  {chosen}{candidate:<21} {split:<11} " + " ".join(f"{got.get(n, float('nan')):>16.3f}" for n in names))


def _by(rows: list[dict], keys: tuple[str, ...]) -> dict:
    grouped: dict = {}
    for row in rows:
        grouped.setdefault(tuple(row[k] for k in keys), []).append(row)
    return grouped


def print_churn_scores(base: Path) -> None:
    """The latest scores: subscribers per risk band, and the three riskiest with their reasons."""
    scores = _latest(DeltaTable(str(base / "gold" / "churn_scores")).to_pyarrow_table(), "score_date")
    if scores.num_rows == 0:
        return
    date = scores["score_date"][0].as_py()
    bands = scores.group_by("risk_band").aggregate([("probability", "mean"), ("probability", "count")])
    print(f"churn scores on {date}:")
    for row in bands.sort_by("probability_mean").to_pylist()[::-1]:
        band, count, mean = row["risk_band"], row["probability_count"], row["probability_mean"]
        print(f"  {band:<8} {count:>7,} subscribers  mean P(churn) {mean:.3f}")
    print("  three of the riskiest subscribers and why:")
    for row in scores.sort_by([("probability", "descending")]).slice(0, 3).to_pylist():
        reasons = "; ".join(d["reason"] for d in row["drivers"]) or "no feature pushed the score up"
        print(f"    {row['subscriber_key'][:12]}…  P(churn) {row['probability']:.2f}  {reasons}")


def print_campaigns(base: Path) -> None:
    """Each measured list: retention, revenue and acceptance, treatment against control."""
    path = base / "gold" / "campaign_results"
    if not path.exists():
        return
    results = DeltaTable(str(path)).to_pyarrow_table()
    overall = results.filter(pc.equal(results["breakdown"], "all")).to_pylist()
    for (campaign, published), rows in sorted(_by(overall, ("campaign_id", "publish_date")).items()):
        first = rows[0]
        print(f"campaign {campaign} published {published}, measured {first['horizon_days']} days on "
              f"({first['n_treatment']:,} treated, {first['n_control']:,} controls):")  # fmt: skip
        for row in sorted(rows, key=lambda r: (r["metric"], r["method"])):
            if row["note"]:
                print(f"  {row['metric']:<14} {row['method']:<10} {row['note']}")
                continue
            scale, unit = (100.0, " pts") if row["metric"] in ("retention", "acceptance") else (0.01, "")
            lift, lo, hi = (row[k] * scale for k in ("abs_lift", "abs_lift_lo", "abs_lift_hi"))
            control = "" if row["mean_control"] is None else f"  control {row['mean_control'] * scale:,.2f}"
            print(f"  {row['metric']:<14} {row['method']:<10} treated {row['mean_treatment'] * scale:,.2f}{control}"
                  f"  lift {lift:+,.2f}{unit} [{lo:+,.2f}, {hi:+,.2f}]")  # fmt: skip


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
