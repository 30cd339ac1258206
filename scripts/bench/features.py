"""Benchmark the features stage against DuckDB on the same silver files.

    python scripts/bench/features.py --root ROOT [--date D] [--window 30] [--no-warm]

Spark: ``crmlake features --date D`` on a root whose gold tables were removed, with a
``window``-day lookback (windows 7 and ``window``): it builds ``gold.subscriber_daily`` for the
window and the feature snapshot at D. Then, unless ``--no-warm``, the same run twice in one
Python process and JVM, timing the second: what the work costs once the JVM is up and its JIT
has compiled Spark's generated code. DuckDB (same machine, same run) computes the same
subscriber-days and activity features from the same silver Parquet files (the Delta tables'
current files, listed with delta-rs), written independently in SQL. The two results are then
compared column by column (doubles to 1e-9 relative). A block is appended to RESULTS.md.

The cost of one new day against a rebuild is ``scripts/bench/incremental.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import duckdb  # noqa: E402
from deltalake import DeltaTable  # noqa: E402
from run import RESULTS, machine  # noqa: E402

MONEY = "DECIMAL(18,2)"


def delta_files(path: Path) -> list[str]:
    return [u.removeprefix("file://") for u in DeltaTable(str(path)).file_uris()]


def parquet_view(con, name: str, path: Path, partition: str) -> None:
    """A DuckDB view over a Delta table's current files (partition value taken from the path)."""
    files = delta_files(path)
    listing = ", ".join(f"'{f}'" for f in files)
    con.execute(
        f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet([{listing}], hive_partitioning = true, "
        f"hive_types = {{'{partition}': DATE}})"
    )


DAILY_SQL = """
CREATE OR REPLACE TABLE daily AS
WITH u AS (
  SELECT subscriber_key, event_date AS date,
    count(*) AS events,
    count(*) FILTER (direction = 'out') AS out_events,
    count(*) FILTER (service_type = 'voice' AND direction = 'out') AS voice_out_calls,
    count(*) FILTER (service_type = 'voice' AND direction = 'in') AS voice_in_calls,
    coalesce(sum(duration_s) FILTER (service_type = 'voice' AND direction = 'out'), 0) AS voice_out_s,
    coalesce(sum(duration_s) FILTER (service_type = 'voice' AND direction = 'in'), 0) AS voice_in_s,
    count(*) FILTER (service_type = 'sms' AND direction = 'out') AS sms_out,
    count(*) FILTER (service_type = 'sms' AND direction = 'in') AS sms_in,
    count(*) FILTER (service_type = 'data') AS data_sessions,
    coalesce(sum(bytes_up) FILTER (service_type = 'data'), 0) AS bytes_up,
    coalesce(sum(bytes_down) FILTER (service_type = 'data'), 0) AS bytes_down,
    count(*) FILTER (service_type = 'vas') AS vas_events,
    count(*) FILTER (service_type IN ('voice', 'sms') AND direction = 'out' AND destination_type = 'on_net')
      AS on_net_out,
    count(*) FILTER (service_type IN ('voice', 'sms') AND direction = 'out' AND destination_type = 'off_net')
      AS off_net_out,
    count(*) FILTER (service_type IN ('voice', 'sms') AND direction = 'out' AND destination_type = 'international')
      AS intl_out,
    count(*) FILTER (is_roaming) AS roaming_events,
    count(DISTINCT cell_id) AS distinct_cells,
    coalesce(sum(charge_amount) FILTER (service_type = 'voice'), 0) AS revenue_voice,
    coalesce(sum(charge_amount) FILTER (service_type = 'sms'), 0) AS revenue_sms,
    coalesce(sum(charge_amount) FILTER (service_type = 'data'), 0) AS revenue_data,
    coalesce(sum(charge_amount) FILTER (service_type = 'vas'), 0) AS revenue_vas
  FROM usage WHERE event_date BETWEEN DATE '{lo}' AND DATE '{hi}' GROUP BY ALL
), r AS (
  SELECT subscriber_key, event_date AS date,
    count(*) FILTER (txn_type = 'topup') AS topup_count,
    coalesce(sum(amount) FILTER (txn_type = 'topup'), 0) AS topup_amount,
    count(*) FILTER (txn_type = 'bill') AS bill_count,
    coalesce(sum(amount) FILTER (txn_type = 'bill'), 0) AS bill_amount,
    count(*) FILTER (txn_type = 'payment') AS payment_count,
    coalesce(sum(amount) FILTER (txn_type = 'payment'), 0) AS payment_amount
  FROM recharges WHERE event_date BETWEEN DATE '{lo}' AND DATE '{hi}' GROUP BY ALL
), c AS (
  SELECT subscriber_key, event_date AS date,
    count(*) AS care_contacts,
    count(*) FILTER (is_complaint) AS complaints,
    count(*) FILTER (NOT is_resolved) AS unresolved_contacts,
    count(*) FILTER (escalation_level > 0) AS escalated_contacts,
    count(*) FILTER (is_first_contact_resolution) AS fcr_contacts,
    coalesce(sum(handle_time_s), 0) AS handle_time_s
  FROM care WHERE event_date BETWEEN DATE '{lo}' AND DATE '{hi}' GROUP BY ALL
), s AS (
  SELECT subscriber_key, event_date AS date,
    count(*) FILTER (survey_type = 'csat') AS csat_answers,
    count(*) FILTER (survey_type = 'csat' AND score >= 4) AS csat_satisfied,
    coalesce(sum(score) FILTER (survey_type = 'csat'), 0) AS csat_score_sum,
    arg_max(score, (answered_at, survey_id)) FILTER (survey_type = 'csat') AS csat_last,
    count(*) FILTER (survey_type = 'nps') AS nps_answers,
    count(*) FILTER (survey_type = 'nps' AND score >= 9) AS nps_promoters,
    count(*) FILTER (survey_type = 'nps' AND score <= 6) AS nps_detractors,
    arg_max(score, (answered_at, survey_id)) FILTER (survey_type = 'nps') AS nps_last
  FROM surveys WHERE event_date BETWEEN DATE '{lo}' AND DATE '{hi}' GROUP BY ALL
), j AS (
  SELECT * FROM u FULL JOIN r USING (subscriber_key, date) FULL JOIN c USING (subscriber_key, date)
    FULL JOIN s USING (subscriber_key, date)
)
SELECT subscriber_key, date,
  {counts},
  {amounts},
  CAST(coalesce(revenue_voice, 0) + coalesce(revenue_sms, 0) + coalesce(revenue_data, 0) + coalesce(revenue_vas, 0)
    AS {money}) AS revenue_usage,
  coalesce(voice_out_s, 0) / 60.0 AS voice_out_min, coalesce(voice_in_s, 0) / 60.0 AS voice_in_min,
  coalesce(bytes_up, 0) / 1e6 AS data_mb_up, coalesce(bytes_down, 0) / 1e6 AS data_mb_down,
  CASE WHEN coalesce(voice_out_calls, 0) + coalesce(sms_out, 0) > 0
    THEN on_net_out / (voice_out_calls + sms_out) END AS on_net_share,
  CASE WHEN coalesce(voice_out_calls, 0) + coalesce(sms_out, 0) > 0
    THEN off_net_out / (voice_out_calls + sms_out) END AS off_net_share,
  CASE WHEN coalesce(voice_out_calls, 0) + coalesce(sms_out, 0) > 0
    THEN intl_out / (voice_out_calls + sms_out) END AS intl_share,
  CASE WHEN coalesce(events, 0) > 0 THEN roaming_events / events END AS roaming_share,
  csat_last, nps_last,
  coalesce(out_events, 0) > 0 OR coalesce(topup_count, 0) > 0 OR coalesce(payment_count, 0) > 0
    AS has_revenue_activity
FROM j
"""

COUNTS = [
    "events", "out_events", "voice_out_calls", "voice_in_calls", "sms_out", "sms_in", "data_sessions", "vas_events",
    "on_net_out", "off_net_out", "intl_out", "roaming_events", "distinct_cells", "topup_count", "bill_count",
    "payment_count", "care_contacts", "complaints", "unresolved_contacts", "escalated_contacts", "fcr_contacts",
    "handle_time_s", "csat_answers", "csat_satisfied", "csat_score_sum", "nps_answers", "nps_promoters",
    "nps_detractors",
]  # fmt: skip
AMOUNTS = ["revenue_voice", "revenue_sms", "revenue_data", "revenue_vas", "topup_amount", "bill_amount",
           "payment_amount"]  # fmt: skip


def daily_sql(lo: dt.date, hi: dt.date) -> str:
    return DAILY_SQL.format(
        lo=lo,
        hi=hi,
        money=MONEY,
        counts=",\n  ".join(f"CAST(coalesce({c}, 0) AS BIGINT) AS {c}" for c in COUNTS),
        amounts=",\n  ".join(f"CAST(coalesce({c}, 0) AS {MONEY}) AS {c}" for c in AMOUNTS),
    )


def features_sql(d: dt.date, window: int, observed_from: dt.date | None) -> str:
    """Activity features at d over [d - window + 1, d], windows 7 and ``window``, trend 7 against
    the ``window - 7`` days before, slope over ``window`` days; the base from the master. A trend
    or slope whose span starts before ``observed_from`` (the first master extract) is unknown
    (NULL), as crmlake computes it, not a trend over unobserved days taken as silent."""
    w, r = window, 7
    b = w - r
    measures = {
        "revenue": "revenue_usage + bill_amount",
        "voice_min": "voice_out_min + voice_in_min",
        "voice_out_calls": "voice_out_calls",
        "sms_out": "sms_out",
        "data_mb": "data_mb_up + data_mb_down",
        "events": "events",
        "active_days": "CAST(events > 0 AS BIGINT)",
    }

    def wsum(expr: str, lo: int, hi: int) -> str:
        return f"coalesce(sum(CASE WHEN age >= {lo} AND age < {hi} THEN {expr} ELSE 0 END), 0)"

    def ratio(num: str, den: str) -> str:
        return f"CASE WHEN {den} > 0 THEN CAST({num} AS DOUBLE) / CAST({den} AS DOUBLE) END"

    def since(cond: str) -> str:
        return f"date_diff('day', max(CASE WHEN {cond} THEN date END), DATE '{d}')"

    cols = []
    for win in sorted({7, w}):
        cols += [f"{wsum(e, 0, win)} AS {m}_{win}d" for m, e in measures.items()]
    t_mean, t_var = (w - 1) / 2, w * (w * w - 1) / 12
    unobserved = observed_from is not None and d - dt.timedelta(days=w - 1) < observed_from
    for m in ("revenue", "voice_min", "data_mb", "events"):
        e = f"CAST({measures[m]} AS DOUBLE)"
        trend = ratio(f"{wsum(e, 0, r)} / {r}", f"{wsum(e, r, r + b)} / {b}")
        slope = f"({wsum(f'({w - 1} - age) * {e}', 0, w)} - {t_mean} * {wsum(e, 0, w)}) / {t_var}"
        if unobserved:
            trend = slope = "CAST(NULL AS DOUBLE)"
        cols += [f"{trend} AS {m}_trend_{r}v{b}", f"{slope} AS {m}_slope_{w}d"]
    talk = "voice_out_calls + sms_out"
    cols += [
        f"{ratio(wsum('on_net_out', 0, w), wsum(talk, 0, w))} AS on_net_share_{w}d",
        f"{ratio(wsum('off_net_out', 0, w), wsum(talk, 0, w))} AS off_net_share_{w}d",
        f"{ratio(wsum('intl_out', 0, w), wsum(talk, 0, w))} AS intl_share_{w}d",
        f"{ratio(wsum('roaming_events', 0, w), wsum('events', 0, w))} AS roaming_share_{w}d",
        f"{ratio(wsum('distinct_cells', 0, w), wsum(measures['active_days'], 0, w))}"
        f" AS distinct_cells_per_active_day_{w}d",
        f"{since('events > 0')} AS days_since_last_activity",
        f"{since('has_revenue_activity')} AS days_since_last_revenue_activity",
        f"{since('topup_count > 0 OR payment_count > 0')} AS days_since_last_recharge",
        f"{wsum('topup_count', 0, w)} AS recharge_count_{w}d",
        f"{wsum('topup_amount', 0, w)} AS recharge_amount_{w}d",
        f"{ratio(wsum('topup_amount', 0, w), wsum('topup_count', 0, w))} AS avg_recharge_amount_{w}d",
        f"{wsum('bill_amount', 0, w)} AS bill_amount_{w}d",
        f"{wsum('payment_amount', 0, w)} AS payment_amount_{w}d",
        f"{ratio(wsum('payment_amount', 0, w), wsum('bill_amount', 0, w))} AS payment_ratio_{w}d",
        f"{since('bill_count > 0')} AS days_since_last_bill",
        f"{since('payment_count > 0')} AS days_since_last_payment",
        f"{wsum('care_contacts', 0, w)} AS care_contacts_{w}d",
        f"{wsum('complaints', 0, w)} AS complaints_{w}d",
        f"{wsum('unresolved_contacts', 0, w)} AS unresolved_contacts_{w}d",
        f"{wsum('escalated_contacts', 0, w)} AS escalations_{w}d",
        f"{ratio(wsum('fcr_contacts', 0, w), wsum('care_contacts', 0, w))} AS fcr_rate_{w}d",
        f"{since('complaints > 0')} AS days_since_last_complaint",
        "arg_max(csat_last, date) FILTER (csat_last IS NOT NULL) AS last_csat",
        "arg_max(nps_last, date) FILTER (nps_last IS NOT NULL) AS last_nps",
    ]
    return f"""
CREATE OR REPLACE TABLE feats AS
WITH a AS (
  SELECT subscriber_key, {", ".join(cols)}
  FROM (SELECT *, date_diff('day', date, DATE '{d}') AS age FROM daily
        WHERE date BETWEEN DATE '{d - dt.timedelta(days=w - 1)}' AND DATE '{d}')
  GROUP BY subscriber_key
), base AS (
  SELECT subscriber_key FROM subscribers
  WHERE valid_from <= DATE '{d}' AND (valid_to IS NULL OR valid_to > DATE '{d}')
    AND activation_date <= DATE '{d}'
    AND NOT coalesce(status = 'deactivated' OR deactivation_date <= DATE '{d}', false)
)
SELECT base.subscriber_key, a.* EXCLUDE (subscriber_key) FROM base LEFT JOIN a USING (subscriber_key)
"""


def mismatches(con, left: str, right: str, key: list[str]) -> dict[str, int]:
    """Per column, rows where the two tables disagree (doubles to 1e-9 relative), joined on key;
    plus rows present on one side only."""
    cols = [r[0] for r in con.execute(f"DESCRIBE {left}").fetchall() if r[0] not in key]
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {left}").fetchall()}
    using = ", ".join(key)
    out = {}
    for side, other in ((left, right), (right, left)):
        out[f"only in {side}"] = con.execute(
            f"SELECT count(*) FROM {side} ANTI JOIN {other} USING ({using})"
        ).fetchone()[0]
    silent_zero = {
        c for c in cols if not re.search(r"days_since|last_|avg_|fcr_rate|payment_ratio|_share|_trend_|_per_", c)
    }
    checks = []
    for c in cols:
        lv = f"coalesce(l.{c}, 0)" if c in silent_zero else f"l.{c}"
        rv = f"coalesce(r.{c}, 0)" if c in silent_zero else f"r.{c}"
        if types[c] in ("DOUBLE", "FLOAT"):
            checks.append(
                f"count(*) FILTER (NOT (({lv} IS NULL AND {rv} IS NULL) OR "
                f"abs({lv} - {rv}) <= 1e-9 * greatest(1, abs({lv})))) AS {c}"
            )
        else:
            checks.append(f"count(*) FILTER ({lv} IS DISTINCT FROM {rv}) AS {c}")
    row = con.execute(f"SELECT {', '.join(checks)} FROM {left} l JOIN {right} r USING ({using})").fetchone()
    out.update({c: n for c, n in zip(cols, row, strict=True) if n})
    return {k: v for k, v in out.items() if v}


def stage_seconds(log: str) -> dict[str, float]:
    """Seconds of each stage in a job's text log (summed over repeats of a stage)."""
    stages: dict[str, float] = {}
    for line in log.splitlines():
        m = re.search(r"^\S+ \S+\s+(.+?): done stage=.+? elapsed_s=([\d.]+)", line)  # names may hold spaces
        if m:
            stages[m.group(1)] = stages.get(m.group(1), 0.0) + float(m.group(2))
    return stages


def run_spark(root: Path, conf: Path, env: dict, *args: str, job: str = "features") -> tuple[float, dict[str, float]]:
    """Run a crmlake job; return its wall time and the seconds of each logged stage."""
    cmd = [sys.executable, "-m", "crmlake", job, "--root", str(root), "--conf", str(conf),
           "--log-format", "text", *args]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return time.monotonic() - started, stage_seconds(proc.stderr)


GOLD_BUILT = ("subscriber_daily", "subscriber_daily_builds", "features", "churn_labels", "snapshot_builds")
WARM_MARK = "=== second run ==="


def drop_gold(root: Path) -> None:
    for table in GOLD_BUILT:
        shutil.rmtree(root / "gold" / table, ignore_errors=True)


def run_warm(root: Path, conf: Path, env: dict, date: str) -> tuple[float, dict[str, float]]:
    """``features --date`` twice in one Python process and JVM, its gold tables removed before
    each (as a scheduler or notebook holding a session would run it): the second run's wall time
    and stages, without the JVM's start and the JIT's first compilation of the generated code."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--warm-child", str(root), str(conf), date]
    proc = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    second = proc.stderr.split(WARM_MARK, 1)[1]
    return float(re.search(r"second run: ([\d.]+) s", proc.stdout).group(1)), stage_seconds(second)


def warm_child(root: str, conf: str, date: str) -> None:
    from crmlake.core.config import load_config
    from crmlake.core.session import build_session
    from crmlake_jobs.features import main as features_main

    spark = build_session(load_config([Path(conf)]))
    argv = ["--root", root, "--conf", conf, "--log-format", "text", "--date", date]
    for run in range(2):
        drop_gold(Path(root))
        if run:
            print(WARM_MARK, file=sys.stderr, flush=True)
        started = time.monotonic()
        if features_main(argv, spark=spark) != 0:
            sys.exit(f"features --date {date} failed")
    print(f"second run: {time.monotonic() - started:.3f} s", flush=True)
    spark.stop()


def main() -> None:
    if sys.argv[1:2] == ["--warm-child"]:
        warm_child(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True)
    parser.add_argument("--date", type=dt.date.fromisoformat, help="snapshot (default: last usage day)")
    parser.add_argument("--window", type=int, default=30)
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--no-warm", action="store_true", help="skip the second, warm run in one JVM")
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if args.window < 8:
        parser.error("--window must be at least 8: its trend compares the last 7 days with the days before")

    root = Path(args.root).resolve()
    silver = root / "silver"
    days = sorted(
        dt.date.fromisoformat(p.name.split("=", 1)[1]) for p in (silver / "usage").glob("event_date=*") if p.is_dir()
    )
    d = args.date or days[-1]
    lo = d - dt.timedelta(days=args.window - 1)
    drop_gold(root)
    conf = root.parent / "crmlake-bench-features.yaml"
    conf.write_text(
        f"spark:\n  driver_memory: {args.driver_memory}\n  shuffle_partitions: {args.shuffle_partitions}\n"
        f"features:\n  windows: {sorted({7, args.window})}\n  trend_base_days: {args.window - 7}\n"
        f"  slope_days: {args.window}\n  network_window_days: {args.window}\n"
        f"labels:\n  horizon_days: {len(days) + 1}\n",  # no label falls due: the bench times features only
        encoding="utf-8",
    )
    env = dict(os.environ, CRMLAKE_HMAC_KEY=os.environ.get("CRMLAKE_HMAC_KEY", "bench-key"))

    spark_s, stages = run_spark(root, conf, env, "--date", d.isoformat())
    spark_work = stages.get("subscriber_daily", 0) + stages.get("features", 0)
    if not args.no_warm:
        warm_s, warm_stages = run_warm(root, conf, env, d.isoformat())
        warm_work = warm_stages.get("subscriber_daily", 0) + warm_stages.get("features", 0)

    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    started = time.monotonic()
    for view, table in (("usage", "usage"), ("recharges", "recharges"), ("care", "care_interactions"),
                        ("surveys", "surveys")):  # fmt: skip
        parquet_view(con, view, silver / table, "event_date")
    con.execute(
        f"CREATE OR REPLACE VIEW subscribers AS SELECT * FROM read_parquet({delta_files(silver / 'subscribers')})"
    )
    con.execute(daily_sql(lo, d))
    duck_daily_s = time.monotonic() - started
    observed_from = con.execute("SELECT min(valid_from) FROM subscribers").fetchone()[0]
    con.execute(features_sql(d, args.window, observed_from))
    duck_s = time.monotonic() - started
    usage_rows = con.execute(
        f"SELECT count(*) FROM usage WHERE event_date BETWEEN DATE '{lo}' AND DATE '{d}'"
    ).fetchone()[0]
    daily_rows = con.execute("SELECT count(*) FROM daily").fetchone()[0]

    parquet_view(con, "spark_daily", root / "gold" / "subscriber_daily", "date")
    feature_cols = [r[0] for r in con.execute("DESCRIBE feats").fetchall()]
    con.execute(
        f"CREATE OR REPLACE VIEW spark_feats AS SELECT {', '.join(feature_cols)} FROM "
        f"read_parquet({delta_files(root / 'gold' / 'features')})"
    )
    daily_cols = [r[0] for r in con.execute("DESCRIBE daily").fetchall()]
    con.execute(f"CREATE OR REPLACE VIEW spark_daily_cols AS SELECT {', '.join(daily_cols)} FROM spark_daily")
    bad_daily = mismatches(con, "daily", "spark_daily_cols", ["subscriber_key", "date"])
    bad_feats = mismatches(con, "feats", "spark_feats", ["subscriber_key"])
    agree = not bad_daily and not bad_feats

    lines = [
        f"## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: features stage, {args.window}-day window at {d}",
        "",
        f"- machine: {machine()}",
        f"- input: {usage_rows:,} usage records in the window ({root}); {daily_rows:,} subscriber-days",
        f"- Spark `crmlake features --date {d}` (local[*], {args.shuffle_partitions} shuffle partitions, "
        f"{args.driver_memory} driver): {spark_s:,.1f} s whole command (JVM start, fingerprints, writes); "
        f"stages: subscriber_daily {stages.get('subscriber_daily', 0):,.1f} s, "
        f"features {stages.get('features', 0):,.1f} s",
        f"- DuckDB {duckdb.__version__} ({args.threads} threads) on the same silver Parquet files: subscriber-days "
        f"{duck_daily_s:,.1f} s, + feature window {duck_s - duck_daily_s:,.1f} s = {duck_s:,.1f} s",
        f"- ratio Spark / DuckDB: {spark_work / duck_s:,.2f}× on the two stages, "
        f"{spark_s / duck_s:,.2f}× whole command",
    ]
    if not args.no_warm:
        lines.append(
            f"- warm, the same run a second time in one JVM (no JVM start, generated code already "
            f"compiled): {warm_s:,.1f} s; stages: subscriber_daily {warm_stages.get('subscriber_daily', 0):,.1f} s, "
            f"features {warm_stages.get('features', 0):,.1f} s; ratio {warm_work / duck_s:,.2f}× on the two stages"
        )
    lines += [
        f"- results agree: {'yes, every column of every row' if agree else 'NO'}"
        + ("" if agree else f" (subscriber_daily: {bad_daily}; features: {bad_feats})"),
    ]
    text = "\n".join(lines) + "\n\n"
    print(text)
    if not args.no_record:
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write(text)
    if not agree:
        sys.exit(1)


if __name__ == "__main__":
    main()
