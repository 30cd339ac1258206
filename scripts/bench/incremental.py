"""Benchmark the cost of one new day against rebuilding the history it sits on.

    python scripts/bench/incremental.py --root ROOT [--history 90] [--new-day]

ROOT must hold ingested silver for at least ``history + 1`` days (``history`` with
``--new-day``). With the gold tables removed:

1. rebuild: ``crmlake features --date D`` builds ``gold.subscriber_daily`` for the ``history``
   days of its lookback and the snapshot at D, from scratch (D = the day before the last
   ingested day; with ``--new-day``, the last);
2. ``--new-day`` only: ``crmlake generate --continue --days 1`` lands the operator's next day
   (not timed), then ``crmlake ingest --date D+1`` takes it (timed);
3. one day: ``crmlake features --date D+1`` finds every day of its window built and current
   except D+1, builds that one day and the snapshot at D+1;
4. idle rerun: ``crmlake features --date D+1`` again (nothing to build: the fixed cost);
5. ``crmlake kpis --date D+1`` (month to date, its days already built), then again (idle).

One new day (ingest, features, KPIs) is compared with the rebuild. Appends a block to RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from deltalake import DeltaTable  # noqa: E402
from features import run_spark  # noqa: E402
from run import RESULTS, machine  # noqa: E402


def last_details(root: Path, job: str) -> dict:
    runs = [r for r in DeltaTable(str(root / "gold" / "run_log")).to_pyarrow_table().to_pylist() if r["job"] == job]
    return json.loads(max(runs, key=lambda r: r["started_at"])["details"])["subscriber_daily"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True)
    parser.add_argument("--history", type=int, default=90)
    parser.add_argument("--new-day", action="store_true", help="generate and ingest the next day, timed")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    root = Path(args.root).resolve()
    days = sorted(
        dt.date.fromisoformat(p.name.split("=", 1)[1])
        for p in (root / "silver" / "usage").glob("event_date=*")
        if p.is_dir()
    )
    needed = args.history + (0 if args.new_day else 1)
    if len(days) < needed:
        sys.exit(f"{root} has {len(days)} days of silver usage; need {needed}")
    d = days[-1] if args.new_day else days[-2]
    new_day = d + dt.timedelta(days=1)
    for table in (
        "subscriber_daily",
        "subscriber_daily_builds",
        "features",
        "churn_labels",
        "kpis",
        "cohort_retention",
        "snapshot_builds",
    ):
        shutil.rmtree(root / "gold" / table, ignore_errors=True)
    conf = root.parent / "crmlake-bench-incremental.yaml"
    conf.write_text(f"features:\n  windows: {sorted({7, 30, args.history})}\n", encoding="utf-8")
    env = dict(os.environ, CRMLAKE_HMAC_KEY=os.environ.get("CRMLAKE_HMAC_KEY", "bench-key"))

    rb_s, rb_st = run_spark(root, conf, env, "--date", d.isoformat())
    rb_n = last_details(root, "features")["days_built"]
    ing_s = ing_st = None
    if args.new_day:
        gen = [sys.executable, "-m", "crmlake", "generate", "--root", str(root), "--continue", "--days", "1"]
        subprocess.run(gen, env=env, check=True, capture_output=True, text=True)
        ing_s, ing_st = run_spark(root, conf, env, "--date", new_day.isoformat(), job="ingest")
    od_s, od_st = run_spark(root, conf, env, "--date", new_day.isoformat())
    od_n = last_details(root, "features")["days_built"]
    id_s, _ = run_spark(root, conf, env, "--date", new_day.isoformat())
    kp_s, kp_st = run_spark(root, conf, env, "--date", new_day.isoformat(), job="kpis")
    kp_idle_s, _ = run_spark(root, conf, env, "--date", new_day.isoformat(), job="kpis")

    usage_rows = DeltaTable(str(root / "silver" / "usage")).to_pyarrow_dataset().count_rows()
    lines = [
        f"## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: one new day after {args.history} days of history",
        "",
        f"- machine: {machine()}",
        f"- input: {root}, {len(days)} days of silver, {usage_rows:,} usage records; rebuild at {d}, new day {new_day}",
    ]
    rb_daily, od_daily = rb_st.get("subscriber_daily", 0), od_st.get("subscriber_daily", 0)
    if ing_s is not None:
        stages = ", ".join(f"{k} {v:,.1f} s" for k, v in ing_st.items())
        lines.append(
            f"- `ingest --date {new_day}` (the new day, all entities): {ing_s:,.1f} s whole command ({stages})"
        )
    new_total = (ing_s or 0) + od_s + kp_s
    lines += [
        f"- rebuild `features --date {d}` ({rb_n} days built): {rb_s:,.1f} s whole command, "
        f"subscriber_daily stage {rb_daily:,.1f} s, features stage {rb_st.get('features', 0):,.1f} s",
        f"- one new day `features --date {new_day}` ({od_n} day built): {od_s:,.1f} s whole command, "
        f"subscriber_daily stage {od_daily:,.1f} s, features stage {od_st.get('features', 0):,.1f} s",
        f"- rerun of the same date, nothing to build: {id_s:,.1f} s whole command",
        f"- one day / rebuild: {od_s / rb_s:.1%} whole command, {od_daily / rb_daily:.1%} subscriber_daily stage",
        f"- `kpis --date {new_day}` (its days already built): {kp_s:,.1f} s whole command, "
        f"kpis stage {kp_st.get('kpis', 0):,.1f} s, cohort stage {kp_st.get('cohort_retention', 0):,.1f} s",
        f"- rerun of the same `kpis`, nothing to write: {kp_idle_s:,.1f} s whole command",
        f"- one new day in all ({'ingest + ' if ing_s is not None else ''}features + kpis): {new_total:,.1f} s = "
        f"{new_total / rb_s:.1%} of the features rebuild",
    ]
    text = "\n".join(lines) + "\n\n"
    print(text)
    if not args.no_record:
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
