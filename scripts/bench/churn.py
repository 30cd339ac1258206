"""Benchmark churn-model training and scoring, crmlake (Spark ML through its own jobs) against
scikit-learn on one node, on the same simulated subscriber snapshots. Appends a result block to
RESULTS.md.

python scripts/bench/churn.py [--rows 1000000] [--candidates gbt logistic_regression]
                              [--peer-timeout 1800] [--driver-memory 8g] [--no-record]

Data (not timed): ``--rows`` subscriber snapshots (rows / 6 subscribers × 6 weekly snapshot
dates) written as Parquet, shaped like gold.features: subscriber_key, snapshot_date, four text
columns (plan_type, tariff, region, device_type), 42 numeric ones (counts, amounts, shares and
ratios that are null where their denominator is zero, trends) and ``churn``, drawn per row from
a known rule: a logistic score with thresholds and interactions (a lapsed prepaid recharge, a
falling revenue trend in the first year, unresolved care contacts, a basic prepaid tariff in a
contested region), its intercept set so that 5 % of rows churn. Trees can learn that rule; a
linear model only approximates it. ``split`` holds the time split: the last snapshot is
``test``, the others ``train``.

crmlake (timed): train-churn on the Parquet as a team's own table (churn.dataset, the split
column given; crmlake keeps a random 20 % of the training subscribers for validation and
calibration), run in-process with the same session: every ``--candidates`` with a one-point
grid, MLflow logging and registration under the temporary root, gold.model_metrics; then
score-churn on the same table (every row: probability, decile, band, reasons, a Delta write).
The test metrics are read back from gold.model_metrics.

scikit-learn (a child process with a time limit, so a crash or running out of memory is
recorded as where it stops): HistGradientBoostingClassifier (text columns as categories, nulls
as they are) and LogisticRegression (median imputation and standard scaling of the numbers,
one-hot text) fitted on every ``train`` row, scored on every row, evaluated on the ``test``
rows with the same metrics (the top decile cut the way crmlake cuts it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from clv import RESULTS, machine  # noqa: E402

SNAPSHOTS = 6
FIRST_SNAPSHOT = dt.date(2025, 12, 20)
SNAPSHOT_EVERY_DAYS = 7
SCORE_DATE = dt.date(2026, 1, 31)
CHURN_RATE = 0.05
ID, LABEL, SPLIT, SNAPSHOT = "subscriber_key", "churn", "split", "snapshot_date"
TEXT = ("plan_type", "tariff", "region", "device_type")
PLANS = {"prepaid": 0.65, "postpaid": 0.30, "hybrid": 0.05}
TARIFFS = {"prepaid": ("pre_basic", "pre_data", "pre_youth"), "postpaid": ("post_s", "post_m", "post_l"),
           "hybrid": ("hybrid_flex",)}  # fmt: skip
MONTHLY_REVENUE = {"pre_basic": 4.0, "pre_data": 9.0, "pre_youth": 6.0, "post_s": 15.0, "post_m": 25.0,
                   "post_l": 40.0, "hybrid_flex": 12.0}  # fmt: skip
REGIONS = tuple(f"region_{i:02d}" for i in range(1, 13))
CONTESTED = REGIONS[:3]  # where a rival's offer pulls basic prepaid subscribers away
DEVICES = {"smartphone": 0.78, "feature_phone": 0.12, "tablet": 0.04, "router": 0.06}
# crmlake's one-point grids (Spark ML parameter names); scikit-learn keeps its defaults.
GRIDS = {
    "gbt": {"maxIter": [40], "maxDepth": [5]},
    "logistic_regression": {"regParam": [0.01], "elasticNetParam": [0.0]},
}
PEERS = {"gbt": "HistGradientBoostingClassifier", "logistic_regression": "LogisticRegression"}
# crmlake's decile cut: the score ranked rows × (1/10 − 1e-12) from the top (evaluation.decile_cuts)
RANK_NUDGE = 1e-12


# ---------------------------------------------------------------------------------------------
# data


def sigmoid(x):
    import numpy as np

    return 1.0 / (1.0 + np.exp(-x))


def subscriber_traits(rng, n: int) -> dict:
    """What stays with a subscriber across snapshots: plan, tariff, region, device, tenure at
    the first snapshot, and latent engagement, spend, discontent and a fade (usage falling off
    from a snapshot on, which most subscribers never reach in the window)."""
    import numpy as np

    plan = rng.choice(list(PLANS), n, p=list(PLANS.values()))
    tariff = np.empty(n, dtype=object)
    for name, choices in TARIFFS.items():
        held = plan == name
        tariff[held] = rng.choice(choices, held.sum())
    weights = np.linspace(2.0, 0.5, len(REGIONS))
    return {
        "plan_type": plan,
        "tariff": tariff.astype(str),
        "region": rng.choice(REGIONS, n, p=weights / weights.sum()),
        "device_type": rng.choice(list(DEVICES), n, p=list(DEVICES.values())),
        "tenure_days": np.clip(np.exp(rng.normal(6.0, 1.1, n)), 1, 7000).astype(np.int32),
        "is_b2b": (rng.random(n) < np.where(plan == "postpaid", 0.2, 0.02)).astype(np.int8),
        "engagement": rng.normal(0.0, 1.0, n),
        "spend": rng.normal(0.0, 1.0, n) + 0.5 * (plan == "postpaid"),
        "discontent": rng.normal(0.0, 1.0, n),
        "abroad_ties": np.minimum(rng.exponential(1.0, n), 10.0),
        "fade_start": rng.integers(0, SNAPSHOTS + 6, n),
        "fade_rate": rng.exponential(0.4, n),
    }


def snapshot_columns(rng, tr: dict, t: int) -> dict:
    """The numeric columns of snapshot ``t`` (0 = the first), as gold.features names them;
    NaN stands for null (a share or ratio whose denominator is zero, a survey not answered)."""
    import numpy as np

    n = len(tr["engagement"])
    nan = np.nan
    fading = t >= tr["fade_start"]
    u = tr["engagement"] + 0.35 * rng.normal(size=n) - tr["fade_rate"] * np.maximum(0, t - tr["fade_start"] + 1)
    u7 = u - 1.5 * tr["fade_rate"] * fading  # the last week falls off faster than the month
    prepaid, billed = tr["plan_type"] == "prepaid", tr["plan_type"] != "prepaid"
    device = tr["device_type"]
    voice = np.where(device == "router", 0.02, np.where(device == "tablet", 0.1, 1.0))
    data = np.where(device == "feature_phone", 0.05, np.where(np.isin(device, ("router", "tablet")), 2.0, 1.0))
    unhappy = tr["discontent"] + 0.3 * rng.normal(size=n)

    active_30 = rng.binomial(30, sigmoid(1.6 + 1.2 * u))
    active_7 = rng.binomial(np.minimum(7, active_30), sigmoid(1.6 + 1.2 * u7))
    calls_out_30 = rng.poisson(active_30 * np.exp(0.9 + 0.4 * u) * voice)
    calls_out_7 = rng.poisson(active_7 * np.exp(0.9 + 0.4 * u7) * voice)
    calls_in_30 = rng.poisson(active_30 * np.exp(0.7 + 0.3 * u) * voice)
    sms_out_30 = rng.poisson(active_30 * np.exp(-0.6 + 0.4 * rng.normal(size=n)))
    sessions_30 = rng.poisson(active_30 * np.exp(1.4 + 0.5 * u) * data)
    sessions_7 = rng.poisson(active_7 * np.exp(1.4 + 0.5 * u7) * data)
    bytes_down_30 = sessions_30 * np.exp(rng.normal(16.3, 0.8, n))
    cells_30 = np.where(active_30 > 0, 1 + rng.poisson(active_30 * 0.25 * np.exp(0.4 * rng.normal(size=n))), 0)
    roaming_30 = rng.poisson(active_30 * 0.01 * rng.exponential(1.0, n))
    intl_30 = rng.binomial(calls_out_30, np.minimum(0.03 * tr["abroad_ties"], 1.0))
    events_30 = calls_out_30 + calls_in_30 + sms_out_30 + sessions_30
    base = np.vectorize(MONTHLY_REVENUE.get)(tr["tariff"])
    revenue_30 = base * np.exp(0.25 * tr["spend"] + 0.1 * rng.normal(size=n)) * (0.6 + active_30 / 75)
    revenue_7 = revenue_30 * 7 / 30 * (0.3 + active_7 / 7) / (0.3 + active_30 / 30) * np.exp(0.2 * rng.normal(size=n))
    revenue_90 = revenue_30 * 3 * (1 + 0.5 * tr["fade_rate"] * fading) * np.exp(0.08 * rng.normal(size=n))
    topups_30 = np.where(prepaid, rng.poisson(0.5 + 2.5 * sigmoid(u)), 0)
    topups_90 = topups_30 + np.where(prepaid, rng.poisson(2 * (0.5 + 2.5 * sigmoid(u + tr["fade_rate"]))), 0)
    bill_90 = np.where(billed, revenue_90 * np.exp(0.05 * rng.normal(size=n)), 0.0)
    paid_share = np.clip(1.0 - 0.15 * np.maximum(0, unhappy) * rng.random(n) - 0.1 * (rng.random(n) < 0.05), 0, 1.2)
    care_90 = rng.poisson(np.exp(-1.0 + 0.6 * unhappy))
    complaints_90 = rng.binomial(care_90, sigmoid(-1.0 + unhappy))
    on_net = rng.beta(4, 3, n)
    has_calls, has_revenue = calls_out_30 > 0, revenue_30 > 0
    intl_share = np.where(has_calls, intl_30 / np.maximum(calls_out_30, 1), nan)
    return {
        "active_days_30d": active_30.astype(np.int32),
        "active_days_7d": active_7.astype(np.int32),
        "calls_out_30d": calls_out_30,
        "calls_in_30d": calls_in_30,
        "sms_out_30d": sms_out_30,
        "voice_minutes_30d": calls_out_30 * rng.gamma(2.0, 1.4, n),
        "data_sessions_30d": sessions_30,
        "bytes_down_30d": bytes_down_30,
        "bytes_up_30d": bytes_down_30 * rng.beta(2, 18, n),
        "distinct_cells_30d": cells_30,
        "distinct_contacts_30d": rng.poisson(0.35 * calls_out_30 + 0.2 * sms_out_30),
        "roaming_events_30d": roaming_30,
        "intl_calls_30d": intl_30,
        "events_30d": events_30,
        "revenue_7d": revenue_7,
        "revenue_30d": revenue_30,
        "revenue_90d": revenue_90,
        "topup_count_30d": topups_30,
        "topup_amount_30d": np.where(topups_30 > 0, revenue_30 * rng.uniform(0.8, 1.3, n), 0.0),
        "avg_topup_amount_90d": np.where(topups_90 > 0, rng.gamma(4.0, base / 2), nan),
        "bill_amount_90d": bill_90,
        "payment_amount_90d": bill_90 * paid_share,
        "payment_ratio_90d": np.where(billed, paid_share, nan),
        "care_contacts_90d": care_90,
        "complaints_90d": complaints_90,
        "fcr_rate_90d": np.where(
            care_90 > 0, rng.binomial(care_90, sigmoid(0.8 - 0.7 * unhappy)) / np.maximum(care_90, 1), nan
        ),
        "last_csat": np.where(
            rng.random(n) < 0.3, np.clip(np.round(4 - 0.8 * unhappy + 0.7 * rng.normal(size=n)), 1, 5), nan
        ),
        "last_nps": np.where(
            rng.random(n) < 0.2, np.clip(np.round(7 - 1.5 * unhappy + 1.5 * rng.normal(size=n)), 0, 10) + 0.0, nan
        ),
        "days_since_last_activity": np.where(
            active_7 > 0,
            rng.integers(0, 7, n),
            np.where(active_30 > 0, rng.integers(7, 30, n), rng.integers(30, 90, n)),
        ),
        "days_since_last_recharge": np.where(
            prepaid,
            np.where(
                topups_30 > 0,
                rng.uniform(0, 30, n) / np.maximum(topups_30, 1),
                np.minimum(30 + rng.exponential(20, n), 120),
            ),
            nan,
        ),
        "days_since_last_complaint": np.where(complaints_90 > 0, rng.integers(0, 90, n), nan),
        "on_net_share_30d": np.where(has_calls, on_net * (1 - intl_share), nan),
        "off_net_share_30d": np.where(has_calls, (1 - on_net) * (1 - intl_share), nan),
        "intl_share_30d": intl_share,
        "roaming_share_30d": np.where(events_30 > 0, roaming_30 / np.maximum(events_30, 1), nan),
        "cells_per_active_day_30d": np.where(active_30 > 0, cells_30 / np.maximum(active_30, 1), nan),
        "revenue_trend_7v30": np.where(has_revenue, (revenue_7 / 7) / (revenue_30 / 30), nan),
        "calls_trend_7v30": np.where(has_calls, (calls_out_7 / 7) / (np.maximum(calls_out_30, 1) / 30), nan),
        "data_trend_7v30": np.where(sessions_30 > 0, (sessions_7 / 7) / (np.maximum(sessions_30, 1) / 30), nan),
        "active_days_slope_30d": -0.3 * tr["fade_rate"] * fading + 0.05 * rng.normal(size=n),
        "tenure_days": tr["tenure_days"] + SNAPSHOT_EVERY_DAYS * t,
        "is_b2b": tr["is_b2b"],
    }


def churn_logit(c: dict, tr: dict):
    """The known rule, without its intercept: a linear part (activity, complaints, B2B,
    postpaid) and threshold × segment interactions a linear model cannot draw (in the contested
    regions basic prepaid churns more and postpaid, held by a retention offer, less)."""
    import numpy as np

    lapsed = (tr["plan_type"] == "prepaid") & (np.nan_to_num(c["days_since_last_recharge"]) > 21)
    falling = (np.nan_to_num(c["revenue_trend_7v30"], nan=1.0) < 0.6) & (c["tenure_days"] < 365)
    unresolved = (c["care_contacts_90d"] >= 2) & (np.nan_to_num(c["fcr_rate_90d"], nan=1.0) < 0.5)
    contested = np.isin(tr["region"], CONTESTED)
    lured = contested & (tr["tariff"] == "pre_basic")
    kept = contested & (tr["plan_type"] == "postpaid")  # the operator's retention offer there
    detractor = np.nan_to_num(c["last_nps"], nan=10.0) <= 6
    return (
        -0.06 * (c["active_days_30d"] - 20)
        + 0.4 * np.minimum(c["complaints_90d"], 3)
        + 2.0 * lapsed
        + 1.5 * falling
        + 1.2 * unresolved
        + 1.8 * lured
        - 1.2 * kept
        + 0.6 * detractor
        - 0.6 * c["is_b2b"]
        - 0.4 * (tr["plan_type"] == "postpaid")
    )


def intercept_for(logits, rate: float) -> float:
    """The intercept at which the mean churn probability is ``rate`` (bisection: the mean
    increases with the intercept)."""
    lo, hi = -20.0, 20.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sigmoid(mid + logits).mean() < rate else (lo, mid)
    return (lo + hi) / 2


def simulate(path: Path, rows: int, seed: int) -> dict:
    """Write the snapshots to ``path`` (one Parquet file per snapshot date); returns the counts
    and the metrics of the rule's own probability on the test rows (the ceiling)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n = max(rows // SNAPSHOTS, 10)
    tr = subscriber_traits(rng, n)
    keys = pa.array([f"sub-{i:08d}" for i in range(n)])
    frames = [snapshot_columns(rng, tr, t) for t in range(SNAPSHOTS)]
    logits = [churn_logit(c, tr) for c in frames]
    intercept = intercept_for(np.concatenate(logits), CHURN_RATE)
    path.mkdir(parents=True)
    churners = 0
    for t, (columns, logit) in enumerate(zip(frames, logits, strict=True)):
        probability = sigmoid(intercept + logit)
        churn = (rng.random(n) < probability).astype(np.int32)
        churners += int(churn.sum())
        is_test = t == SNAPSHOTS - 1
        table = pa.table(
            {
                ID: keys,
                SNAPSHOT: pa.array([FIRST_SNAPSHOT + dt.timedelta(days=SNAPSHOT_EVERY_DAYS * t)] * n, pa.date32()),
                **{c: pa.array(tr[c]) for c in TEXT},
                **{name: pa.array(values, from_pandas=True) for name, values in columns.items()},
                LABEL: pa.array(churn),
                SPLIT: pa.array(["test" if is_test else "train"] * n),
            }
        )
        pq.write_table(table, path / f"part-{t}.parquet")
        if is_test:
            ceiling = metrics(churn, probability)
    return {
        "rows": n * SNAPSHOTS,
        "subscribers": n,
        "numeric": len(frames[0]),
        "features": [*TEXT, *frames[0]],
        "churn_rate": churners / (n * SNAPSHOTS),
        "train_rows": n * (SNAPSHOTS - 1),
        "test_rows": n,
        "ceiling": ceiling,
    }


# ---------------------------------------------------------------------------------------------
# metrics, computed as crmlake computes them (models.evaluation)


def top_decile_lift(y, score) -> float:
    """Churn rate of decile 1 over the overall rate; decile 1 holds every row scoring at least
    the score ranked rows × (1/10 − 1e-12) from the top (ties go to the riskier decile)."""
    import numpy as np

    ranked = np.sort(score)[::-1]
    cut = ranked[max(1, math.ceil(len(ranked) * (0.1 - RANK_NUDGE))) - 1]
    return float(y[score >= cut].mean() / y.mean())


def metrics(y, score) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {
        "roc_auc": float(roc_auc_score(y, score)),
        "pr_auc": float(average_precision_score(y, score)),
        "top_decile_lift": top_decile_lift(y, score),
    }


# ---------------------------------------------------------------------------------------------
# crmlake


class StageSeconds(logging.Filter):
    """The elapsed seconds of the jobs' own stages (``churn candidate`` per candidate, ...),
    read from their log records. A filter on the crmlake logger, because the jobs replace its
    handlers when they set up logging but leave its filters."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record, "fields", {})
        if record.getMessage().endswith(": done") and "elapsed_s" in fields:
            name = fields.get("stage", "")
            self.seconds[f"{name}:{fields['candidate']}" if "candidate" in fields else name] = fields["elapsed_s"]
        return True


def crmlake_run(path: Path, root: Path, features: list[str], candidates: list[str], driver_memory: str) -> dict:
    import yaml
    from crmlake.catalog import tables
    from crmlake.core.config import load_config
    from crmlake.core.log import get_logger
    from crmlake.core.session import build_session
    from crmlake_jobs.score_churn import main as score
    from crmlake_jobs.train_churn import main as train
    from pyspark.sql import functions as F

    # The runs go to MLflow beside this temporary root, never to a tracking server set for other work.
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    conf = root.parent / "churn-bench.yaml"
    # The features are listed as a team would list them (the snapshot date is not one).
    dataset = {"path": str(path), "format": "parquet", "id": ID, "label": LABEL, "split": SPLIT, "features": features}
    grids = {c: GRIDS[c] for c in candidates}
    conf.write_text(yaml.safe_dump({"churn": {"dataset": dataset, "candidates": candidates, "grids": grids}}))
    common = ["--conf", str(conf), "--root", str(root), "--log-format", "text"]
    overrides = {"root": str(root), "spark.driver_memory": driver_memory, "logging.format": "text"}
    spark = build_session(load_config(overrides=overrides))
    stages = StageSeconds()
    get_logger().addFilter(stages)
    try:
        started = time.monotonic()
        code = train(common, spark=spark)
        trained = time.monotonic()
        if code:
            raise SystemExit(f"crmlake train-churn failed (exit {code}); its log is above")
        code = score([*common, "--date", str(SCORE_DATE)], spark=spark)
        scored = time.monotonic()
        if code:
            raise SystemExit(f"crmlake score-churn failed (exit {code}); its log is above")
        scored_rows = (
            tables.read(spark, str(root), "gold.churn_scores").where(F.col("score_date") == SCORE_DATE).count()
        )
        found = (
            tables.read(spark, str(root), "gold.model_metrics")
            .where(F.col("split") == "test")
            .select("candidate", "metric", "value", "is_registered")
            .collect()
        )
    finally:
        get_logger().removeFilter(stages)
        spark.stop()
    models = {c: {"train_s": stages.seconds.get(f"churn candidate:{c}", math.nan)} for c in candidates}
    registered = None
    for r in found:
        models[r["candidate"]][r["metric"]] = r["value"]
        registered = r["candidate"] if r["is_registered"] else registered
    return {
        "train_s": trained - started,
        "rows_s": stages.seconds.get("churn training rows", math.nan),
        "score_s": scored - trained,
        "scored_rows": scored_rows,
        "registered": registered,
        "models": models,
    }


# ---------------------------------------------------------------------------------------------
# scikit-learn (run as a child process: churn.py --peer PATH)


def peer(path: str) -> dict:
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    started = time.monotonic()
    df = pd.read_parquet(path)
    read_s = time.monotonic() - started
    features = [c for c in df.columns if c not in (ID, SNAPSHOT, LABEL, SPLIT)]
    text = [c for c in features if c in TEXT]
    numeric = [c for c in features if c not in TEXT]
    y = df[LABEL].to_numpy()
    train, test = (df[SPLIT] == "train").to_numpy(), (df[SPLIT] == "test").to_numpy()
    as_categories = df[features].astype({c: "category" for c in text})
    linear = make_pipeline(
        ColumnTransformer(
            [
                ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
                ("text", OneHotEncoder(handle_unknown="ignore"), text),
            ]
        ),
        LogisticRegression(max_iter=1000),
    )
    runs = {
        "gbt": (HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=42), as_categories),
        "logistic_regression": (linear, df[features]),
    }
    out: dict = {"read_s": read_s, "rows": len(df), "train_rows": int(train.sum()), "models": {}}
    for name, (model, x) in runs.items():
        began = time.monotonic()
        model.fit(x[train], y[train])
        fitted = time.monotonic()
        score = model.predict_proba(x)[:, 1]
        done = time.monotonic()
        out["models"][name] = {
            "train_s": fitted - began,
            "score_s": done - fitted,
            "score_rows_per_s": len(x) / (done - fitted),
            **metrics(y[test], np.asarray(score)[test]),
        }
    return out


def peer_run(path: Path, timeout: int) -> dict:
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--peer", str(path)], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"stopped": f"did not finish within {timeout} s"}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return {"stopped": f"failed after {time.monotonic() - started:.0f} s: {last}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="subscriber snapshots (rows / 6 subscribers)")
    parser.add_argument("--candidates", nargs="+", choices=list(GRIDS), default=["gbt"])
    parser.add_argument("--peer-timeout", type=int, default=1800, help="seconds scikit-learn may take")
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--peer", help=argparse.SUPPRESS)  # the child process: scikit-learn on this Parquet
    args = parser.parse_args()
    if args.peer:
        print(json.dumps(peer(args.peer)))
        return

    work = Path(tempfile.mkdtemp(prefix="crmlake-bench-churn-"))
    path = work / "snapshots.parquet"
    try:
        started = time.monotonic()
        data = simulate(path, args.rows, args.seed)
        simulated = time.monotonic() - started
        print(
            f"data {data['rows']:,} rows: {json.dumps({k: v for k, v in data.items() if k != 'features'})}", flush=True
        )
        ours = crmlake_run(path, work / "lake", data["features"], args.candidates, args.driver_memory)
        print(f"crmlake: {json.dumps(ours)}", flush=True)
        theirs = peer_run(path, args.peer_timeout)
        print(f"scikit-learn: {json.dumps(theirs)}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    command = ["scripts/bench.sh churn --rows", str(args.rows), "--candidates", *args.candidates]
    if args.peer_timeout != 1800:
        command += ["--peer-timeout", str(args.peer_timeout)]
    block = "\n".join(
        [
            f"## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: churn model (crmlake train-churn + score-churn "
            f"against scikit-learn), {data['rows']:,} simulated subscriber snapshots",
            "",
            f"- machine: {machine()}; Spark local[*], driver {args.driver_memory}",
            f"- command: `{' '.join(command)}`",
            *report(data, simulated, ours, theirs),
            "",
        ]
    )
    print(block)
    if not args.no_record:
        with open(RESULTS, "a") as fh:
            fh.write("\n" + block)


def _cells(m: dict) -> str:
    return f"{m['roc_auc']:.4f} | {m['pr_auc']:.4f} | {m['top_decile_lift']:.2f}"


def report(data: dict, simulated: float, ours: dict, theirs: dict) -> list[str]:
    first, last = FIRST_SNAPSHOT, FIRST_SNAPSHOT + dt.timedelta(days=SNAPSHOT_EVERY_DAYS * (SNAPSHOTS - 1))
    candidates = ", ".join(f"{c} {ours['models'][c]['train_s']:.1f} s" for c in ours["models"])
    rest = ours["train_s"] - ours["rows_s"] - sum(m["train_s"] for m in ours["models"].values())
    out = [
        f"- data (simulated in {simulated:.0f} s, not timed): {data['subscribers']:,} subscribers × {SNAPSHOTS} "
        f"weekly snapshots ({first} … {last}), {data['numeric']} numeric + {len(TEXT)} text columns, "
        f"{data['churn_rate']:.2%} churn; train {data['train_rows']:,} rows (the first {SNAPSHOTS - 1} snapshots; "
        f"crmlake keeps 20 % of them for validation and calibration, scikit-learn fits on all), test "
        f"{data['test_rows']:,} rows (the last snapshot)",
        f"- crmlake train-churn end to end {ours['train_s']:.1f} s: training rows {ours['rows_s']:.1f} s, "
        f"{candidates} (each: fit, calibration, validation and test metrics), the rest {rest:.1f} s (MLflow "
        f"logging and registration, gold.model_metrics, gold.run_log); registered: {ours['registered']}",
        f"- crmlake score-churn {ours['score_s']:.1f} s for {ours['scored_rows']:,} rows (read, score, reasons, "
        f"deciles, Delta write; the registered model)",
    ]
    if "stopped" in theirs:
        out.append(f"- scikit-learn on the same Parquet: {theirs['stopped']}")
    else:
        out.append(
            f"- scikit-learn {sklearn_version()} in one process: Parquet read {theirs['read_s']:.1f} s (not counted); "
            "score rows/s is predict_proba on every row in memory, no reasons and no write"
        )
    out += [
        "",
        "| tool | model | train s | score rows/s | test ROC AUC | PR AUC | top-decile lift |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for c, m in ours["models"].items():
        registered = c == ours["registered"]
        rate = f"{ours['scored_rows'] / ours['score_s']:,.0f}" if registered else "—"
        out.append(
            f"| crmlake | {c}{' (registered)' if registered else ''} | {m['train_s']:.1f} | {rate} | {_cells(m)} |"
        )
    for c, m in theirs.get("models", {}).items():
        out.append(f"| scikit-learn | {PEERS[c]} | {m['train_s']:.1f} | {m['score_rows_per_s']:,.0f} | {_cells(m)} |")
    out.append(f"| the rule itself | true probability (ceiling) | — | — | {_cells(data['ceiling'])} |")
    return out


def sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


if __name__ == "__main__":
    main()
