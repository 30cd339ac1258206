"""Measuring a campaign list: what treatment did against the control group, with intervals.

A list (one campaign, one publish date P, in ``gold.campaign_targets``) is measured once its
outcome window ``(P, P + H]`` has closed, H being the churn label horizon. Each target gets:

- **retention**: 1 when ``gold.churn_labels`` at snapshot P (horizon H) says not churned, 0 when
  churned; a target with no label row (a prepaid line silent for the inactivity period already
  at P, a line out of the base) is outcome-unknown: counted in ``n_unknown`` and left out.
- **revenue_cents**: rated usage plus bills (the ``revenue`` of ``gold.features``) summed over
  the window from ``gold.subscriber_daily``, in whole cents; a day without a row is a day without
  revenue, so it is observed for every target of both groups.
- **acceptance**: treated lines only: 1 when a contact of the campaign between P and the list's
  ``valid_until`` (``silver.campaign_responses``, by campaign and subscriber key) has
  ``has_accepted_offer``; a treated line with no such contact (not delivered, no answer) is 0.
  Controls are never offered, so their acceptance is null: the row reports the treatment rate
  (``mean_treatment``), and ``abs_lift`` with its interval is that rate against the zero that
  no offer can be accepted at (no relative lift, no p-value).

Statistics, per list, breakdown value and metric, from Spark aggregations per group (count,
mean, sample variance, sample covariance with the covariate); the arithmetic on those few
numbers is Python:

- **difference**: ``abs_lift = mean_t - mean_c`` with a Welch normal-approximation interval,
  ``SE = sqrt(s_t^2/n_t + s_c^2/n_c)``, ``abs_lift ± z SE``, two-sided ``p = erfc(|lift/SE| / √2)``;
  ``rel_lift = abs_lift / mean_c`` with a delta-method interval,
  ``SE_rel^2 = s_t^2/(n_t mean_c^2) + mean_t^2 s_c^2/(n_c mean_c^4)`` (null when ``mean_c`` is 0).
- **cuped** (Deng et al. 2013): ``θ = cov(X, Y) / var(X)`` pooled over both groups,
  ``Y' = Y - θ (X - mean X)``, and the same interval on Y'. X is the same quantity over the
  H days up to P (``[P - H + 1, P]``, known at publish time): revenue for revenue, and the days
  with revenue activity (outgoing usage, a top-up or a payment) for retention — the rule that
  churns a silent prepaid line, so it is what correlates with staying. ``variance_reduction``
  is the share of the pooled variance of Y that θ removes, ``cov^2 / (var X var Y)``.

``incremental`` is ``abs_lift × n_treatment`` (retained lines, revenue cents, accepted offers);
``offer_cost_total_cents`` is the cost of the offers accepted in the row's treated lines
(accepted × ``offer_cost``: an offer costs when it is taken, not when it is sent), and
``incremental_revenue_net_cents`` (revenue rows) is the incremental revenue minus that cost.
A row whose treated or control group is below ``min_group_size`` carries a ``note`` and no
number but its counts (acceptance needs treated lines only).
"""

from __future__ import annotations

import datetime as dt
import math
from statistics import NormalDist

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from crmlake.catalog.registry import CAMPAIGN_RESULTS_SCHEMA
from crmlake.publish.targets import CONTROL, TREATMENT

ALL = "all"
RISK_BAND = "risk_band"
SEGMENT_PREFIX = "segment:"
UNKNOWN = "unknown"  # a breakdown value nobody recorded (no score band, no segment snapshot)
RETENTION, REVENUE, ACCEPTANCE = "retention", "revenue_cents", "acceptance"
DIFFERENCE, CUPED = "difference", "cuped"
MIN_GROUP_KEY = "publish.measure.min_group_size"

LIST_KEY = ["campaign_id", "publish_date"]
CELL_KEY = [*LIST_KEY, "target_run_id", "breakdown", "breakdown_value", "metric"]
UNIT_COLUMNS = [
    "campaign_id",
    "publish_date",
    "target_run_id",
    "subscriber_key",
    "group",
    "score_band",
    "offer_cost_cents",
    "is_retained",
    "active_days_pre",
    "revenue_cents",
    "revenue_cents_pre",
    "is_accepted",
]


def filter_newest_run(targets_df: DataFrame, written_at: str = "_written_at") -> DataFrame:
    """The rows of the newest publish run of each list: where one campaign and publish date hold
    rows of several ``run_id`` (a table written by other means than ``crmlake publish``, which
    replaces a list whole), the run whose rows were written last (``written_at``, the data
    file's modification time; ties broken by run id) is the list that was handed over."""
    runs = Window.partitionBy(*LIST_KEY).orderBy(F.col("_run_written").desc(), F.col("run_id").desc())
    newest_df = (
        targets_df.groupBy(*LIST_KEY, "run_id")
        .agg(F.max(written_at).alias("_run_written"))
        .withColumn("_order", F.row_number().over(runs))
        .where(F.col("_order") == 1)
        .select(*LIST_KEY, "run_id")
    )
    return targets_df.join(newest_df, on=[*LIST_KEY, "run_id"], how="left_semi").drop(written_at)


def revenue_cents(daily_df: DataFrame) -> Column:
    """A subscriber-day's revenue (rated usage plus bills, as in ``gold.features``) in whole
    cents: the decimal amounts times 100 are exact."""
    return ((F.col("revenue_usage") + F.col("bill_amount")) * 100).cast("long")


def with_outcomes(
    targets_df: DataFrame, labels_df: DataFrame, daily_df: DataFrame, responses_df: DataFrame, horizon_days: int
) -> DataFrame:
    """One row per target (``gold.campaign_targets`` rows, one run per list) with its outcomes
    and covariates, in :data:`UNIT_COLUMNS`: ``is_retained`` (null: no label), ``revenue_cents``
    over ``(P, P + H]`` and ``revenue_cents_pre`` and ``active_days_pre`` over
    ``[P - H + 1, P]`` (0 without a row), ``is_accepted`` (treated only), ``offer_cost_cents``.

    ``labels_df``: ``gold.churn_labels``; ``daily_df``: ``gold.subscriber_daily``;
    ``responses_df``: ``silver.campaign_responses``."""
    h = horizon_days
    keys = targets_df.select(*LIST_KEY, "subscriber_key")
    p = F.col("publish_date")
    windowed_df = (
        keys.join(
            daily_df.select(
                "subscriber_key",
                "date",
                revenue_cents(daily_df).alias("_cents"),
                F.col("has_revenue_activity").alias("_active"),
            ),
            on="subscriber_key",
            how="inner",
        )
        .where(F.col("date").between(F.date_sub(p, h - 1), F.date_add(p, h)))
        .groupBy(*LIST_KEY, "subscriber_key")
        .agg(
            F.sum(F.when(F.col("date") > p, F.col("_cents"))).alias("_rev"),
            F.sum(F.when(F.col("date") <= p, F.col("_cents"))).alias("_rev_pre"),
            F.count(F.when((F.col("date") <= p) & F.col("_active"), 1)).alias("_active_pre"),
        )
    )
    labelled_df = labels_df.where(F.col("horizon_days") == h).select(
        "subscriber_key", F.col("snapshot_date").alias("publish_date"), "is_churned"
    )
    accepted_df = (
        targets_df.where(F.col("group") == TREATMENT)
        .select(*LIST_KEY, "subscriber_key", "valid_until")
        .join(
            responses_df.select("campaign_id", "subscriber_key", "event_date", "has_accepted_offer"),
            on=["campaign_id", "subscriber_key"],
            how="inner",
        )
        .where(F.col("event_date").between(p, F.col("valid_until")))
        .groupBy(*LIST_KEY, "subscriber_key")
        # a contact whose acceptance was not recorded did not accept
        .agg(F.max(F.coalesce(F.col("has_accepted_offer"), F.lit(False)).cast("int")).alias("_accepted"))
    )
    on = [*LIST_KEY, "subscriber_key"]
    joined_df = (
        targets_df.join(windowed_df, on=on, how="left")
        .join(labelled_df, on=["subscriber_key", "publish_date"], how="left")
        .join(accepted_df, on=on, how="left")
    )
    return joined_df.select(
        "campaign_id",
        "publish_date",
        F.col("run_id").alias("target_run_id"),
        "subscriber_key",
        "group",
        "score_band",
        F.round(F.col("offer_cost") * 100).cast("long").alias("offer_cost_cents"),
        F.when(F.col("is_churned").isNotNull(), (~F.col("is_churned")).cast("int")).alias("is_retained"),
        F.col("_active_pre").cast("long").alias("active_days_pre"),  # null: no row in the window, filled below
        F.col("_rev").alias("revenue_cents"),
        F.col("_rev_pre").alias("revenue_cents_pre"),
        F.when(F.col("group") == TREATMENT, F.coalesce(F.col("_accepted"), F.lit(0))).alias("is_accepted"),
    ).fillna(0, subset=["active_days_pre", "revenue_cents", "revenue_cents_pre"])


def segment_labels_as_of(segments_df: DataFrame, lists_df: DataFrame, schemes: list[str]) -> DataFrame:
    """Each list's segment labels: ``lists_df`` (campaign_id, publish_date) × the rows of the
    newest ``gold.segments`` snapshot on or before its publish date, one row per (list,
    subscriber_key) with the ``schemes`` columns."""
    snapshots_df = (
        lists_df.select(*LIST_KEY)
        .distinct()
        .join(segments_df.select("snapshot_date").distinct(), on=F.col("snapshot_date") <= F.col("publish_date"))
        .groupBy(*LIST_KEY)
        .agg(F.max("snapshot_date").alias("snapshot_date"))
    )
    return snapshots_df.join(segments_df, on="snapshot_date", how="inner").select(*LIST_KEY, "subscriber_key", *schemes)


def with_breakdowns(units_df: DataFrame, labels_df: DataFrame | None, schemes: list[str]) -> DataFrame:
    """``units_df`` plus ``breakdowns``: an array of (breakdown, breakdown_value) a unit counts
    in: ``all``, its ``risk_band`` (the list's ``score_band``) and ``segment:<scheme>`` for each
    scheme (``labels_df`` from :func:`segment_labels_as_of`); a missing value is ``unknown``."""
    df = units_df
    if schemes and labels_df is not None:
        df = df.join(labels_df, on=[*LIST_KEY, "subscriber_key"], how="left")
    else:
        schemes = []

    def pair(name: str, value: Column) -> Column:
        return F.struct(F.lit(name).alias("breakdown"), F.coalesce(value, F.lit(UNKNOWN)).alias("breakdown_value"))

    pairs = [pair(ALL, F.lit(ALL)), pair(RISK_BAND, F.col("score_band"))]
    pairs += [pair(f"{SEGMENT_PREFIX}{s}", F.col(s).cast("string")) for s in schemes]
    return df.withColumn("breakdowns", F.array(*pairs)).select(*UNIT_COLUMNS, "breakdowns")


def group_stats(units_df: DataFrame) -> DataFrame:
    """Per list, breakdown value, metric and group: ``n`` (outcome known), ``n_unknown``, mean
    and sample variance of the outcome Y, mean and sample variance of the covariate X, their
    sample covariance, and the cost of the offers accepted. ``units_df`` from
    :func:`with_breakdowns`. A few rows per list: what the statistics are computed from."""
    metrics = F.array(
        F.struct(
            F.lit(RETENTION).alias("metric"),
            F.col("is_retained").cast("double").alias("y"),
            F.col("active_days_pre").cast("double").alias("x"),
            F.col("is_retained").isNull().alias("is_unknown"),
        ),
        F.struct(
            F.lit(REVENUE).alias("metric"),
            F.col("revenue_cents").cast("double").alias("y"),
            F.col("revenue_cents_pre").cast("double").alias("x"),
            F.lit(False).alias("is_unknown"),
        ),
        F.struct(
            F.lit(ACCEPTANCE).alias("metric"),
            F.col("is_accepted").cast("double").alias("y"),
            F.lit(None).cast("double").alias("x"),
            F.lit(False).alias("is_unknown"),  # a control's acceptance is null by design, not unknown
        ),
    )
    long_df = (
        units_df.withColumn("b", F.explode("breakdowns"))
        .withColumn("m", F.explode(metrics))
        .select(
            *LIST_KEY,
            "target_run_id",
            "b.breakdown",
            "b.breakdown_value",
            "m.metric",
            "group",
            "m.y",
            F.when(F.col("m.y").isNotNull(), F.col("m.x")).alias("x"),
            "m.is_unknown",
            F.when((F.col("is_accepted") == 1), F.col("offer_cost_cents")).alias("_cost"),
        )
    )
    return long_df.groupBy(*CELL_KEY, "group").agg(
        F.count(F.when(~F.col("is_unknown"), 1)).alias("n"),
        F.count(F.when(F.col("is_unknown"), 1)).alias("n_unknown"),
        F.avg("y").alias("mean_y"),
        F.var_samp("y").alias("var_y"),
        F.avg("x").alias("mean_x"),
        F.var_samp("x").alias("var_x"),
        F.covar_samp("x", "y").alias("cov_xy"),
        F.sum("_cost").alias("offer_cost_cents"),
    )


# ---------------------------------------------------------------------------------------------
# the arithmetic on the aggregated numbers


def z_value(confidence: float) -> float:
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def lift(mt: float, vt: float, nt: int, mc: float, vc: float, nc: int, z: float) -> dict:
    """Difference of means with its Welch normal-approximation interval and two-sided p-value,
    and the relative lift with its delta-method interval (null when the control mean is 0). A
    zero standard error gives a point interval and no p-value."""
    diff = mt - mc
    se = math.sqrt(vt / nt + vc / nc)
    out = {
        "mean_treatment": mt,
        "mean_control": mc,
        "abs_lift": diff,
        "abs_lift_lo": diff - z * se,
        "abs_lift_hi": diff + z * se,
        "p_value": math.erfc(abs(diff / se) / math.sqrt(2)) if se > 0 else None,
        "rel_lift": None,
        "rel_lift_lo": None,
        "rel_lift_hi": None,
    }
    if mc != 0:
        rel = diff / mc
        se_rel = math.sqrt(vt / (nt * mc**2) + mt**2 * vc / (nc * mc**4))
        out.update(rel_lift=rel, rel_lift_lo=rel - z * se_rel, rel_lift_hi=rel + z * se_rel)
    return out


def pooled(t: dict, c: dict) -> tuple[float, float, float, float]:
    """Sample variance of X, of Y, their covariance and the mean of X over both groups together, from each
    group's count, means, variances and covariance (the parallel formula of Chan et al.)."""
    n = t["n"] + c["n"]
    mx = (t["n"] * t["mean_x"] + c["n"] * c["mean_x"]) / n
    my = (t["n"] * t["mean_y"] + c["n"] * c["mean_y"]) / n

    def comoment(g: dict, a: str, b: str) -> float:
        within = {("x", "x"): g["var_x"], ("y", "y"): g["var_y"], ("x", "y"): g["cov_xy"]}[(a, b)]
        centre = {"x": mx, "y": my}
        return (g["n"] - 1) * within + g["n"] * (g[f"mean_{a}"] - centre[a]) * (g[f"mean_{b}"] - centre[b])

    var_x = (comoment(t, "x", "x") + comoment(c, "x", "x")) / (n - 1)
    var_y = (comoment(t, "y", "y") + comoment(c, "y", "y")) / (n - 1)
    cov = (comoment(t, "x", "y") + comoment(c, "x", "y")) / (n - 1)
    return var_x, var_y, cov, mx


def cuped(t: dict, c: dict, z: float) -> dict:
    """The lift on ``Y' = Y - θ (X - mean X)`` with θ pooled over both groups, and the share of
    the pooled variance of Y it removes."""
    var_x, var_y, cov, mx = pooled(t, c)
    theta = cov / var_x if var_x > 0 else 0.0

    def adjusted(g: dict) -> tuple[float, float]:
        mean = g["mean_y"] - theta * (g["mean_x"] - mx)
        var = g["var_y"] - 2 * theta * g["cov_xy"] + theta**2 * g["var_x"]
        return mean, max(var, 0.0)

    (mt, vt), (mc, vc) = adjusted(t), adjusted(c)
    out = lift(mt, vt, t["n"], mc, vc, c["n"], z)
    out["variance_reduction"] = cov**2 / (var_x * var_y) if var_x > 0 and var_y > 0 else None
    return out


def too_few(n_treatment: int, n_control: int | None, min_group_size: int) -> str | None:
    """The note of a row whose groups are too small to report (``n_control`` None: not needed)."""
    parts = []
    if n_control is not None and n_control < min_group_size:
        parts.append(f"too few controls: {n_control} < {min_group_size} ({MIN_GROUP_KEY})")
    if n_treatment < min_group_size:
        parts.append(f"too few treated: {n_treatment} < {min_group_size} ({MIN_GROUP_KEY})")
    return "; ".join(parts) or None


NUMBERS = (
    "mean_treatment",
    "mean_control",
    "abs_lift",
    "abs_lift_lo",
    "abs_lift_hi",
    "rel_lift",
    "rel_lift_lo",
    "rel_lift_hi",
    "p_value",
    "variance_reduction",
    "incremental",
    "offer_cost_total_cents",
    "incremental_revenue_net_cents",
)
EMPTY_GROUP = {
    "n": 0,
    "n_unknown": 0,
    "mean_y": None,
    "var_y": None,
    "mean_x": None,
    "var_x": None,
    "cov_xy": None,
    "offer_cost_cents": None,
}


def cell_rows(metric: str, t: dict, c: dict, z: float, min_group_size: int) -> list[dict]:
    """The result rows of one cell (list, breakdown value, metric) from its two groups' stats."""
    counts = {"n_treatment": t["n"], "n_control": c["n"], "n_unknown": t["n_unknown"] + c["n_unknown"]}
    cost = t["offer_cost_cents"] or 0
    methods = [DIFFERENCE] if metric == ACCEPTANCE else [DIFFERENCE, CUPED]
    note = too_few(t["n"], None if metric == ACCEPTANCE else c["n"], min_group_size)
    rows = []
    for method in methods:
        row = {"metric": metric, "method": method, **counts, **dict.fromkeys(NUMBERS), "note": note}
        if note is None:
            if metric == ACCEPTANCE:
                rate, se = t["mean_y"], math.sqrt(t["var_y"] / t["n"])
                row.update(mean_treatment=rate, abs_lift=rate, abs_lift_lo=rate - z * se, abs_lift_hi=rate + z * se)
            elif method == DIFFERENCE:
                row.update(lift(t["mean_y"], t["var_y"], t["n"], c["mean_y"], c["var_y"], c["n"], z))
            else:
                row.update(cuped(t, c, z))
            row["incremental"] = row["abs_lift"] * t["n"]
            row["offer_cost_total_cents"] = cost
            if metric == REVENUE:
                row["incremental_revenue_net_cents"] = round(row["incremental"]) - cost
        rows.append(row)
    return rows


def results(
    units_df: DataFrame,
    horizon_days: int,
    measured_on: dt.date,
    run_id: str,
    confidence: float,
    min_group_size: int,
) -> DataFrame:
    """``gold.campaign_results`` rows of the lists in ``units_df`` (from :func:`with_breakdowns`):
    per list, breakdown value, metric and method. The groups' aggregates are the only rows
    brought to the driver (a few per breakdown value)."""
    z = z_value(confidence)
    cells: dict[tuple, dict[str, dict]] = {}
    for r in group_stats(units_df).collect():
        cells.setdefault(tuple(r[k] for k in CELL_KEY), {})[r["group"]] = r.asDict()
    out = []
    for key, groups in sorted(cells.items()):
        t, c = groups.get(TREATMENT, EMPTY_GROUP), groups.get(CONTROL, EMPTY_GROUP)
        cell = dict(zip(CELL_KEY, key, strict=True))
        for row in cell_rows(cell["metric"], t, c, z, min_group_size):
            out.append(
                {
                    **cell,
                    **row,
                    "measured_on": measured_on,
                    "run_id": run_id,
                    "horizon_days": horizon_days,
                    "confidence": confidence,
                }
            )
    names = [f.name for f in CAMPAIGN_RESULTS_SCHEMA.fields]
    return units_df.sparkSession.createDataFrame([tuple(r[n] for n in names) for r in out], CAMPAIGN_RESULTS_SCHEMA)


def outcome_known_on(publish_date: dt.date, horizon_days: int) -> dt.date:
    """The first day a list's outcome can be measured: the end of its outcome window."""
    return publish_date + dt.timedelta(days=horizon_days)
