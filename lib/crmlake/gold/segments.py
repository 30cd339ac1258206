"""Segments: every subscriber of a feature snapshot labelled by each scheme, what each segment
looks like, and how subscribers move between segments from one snapshot to another.

Input is one snapshot of ``gold.features``. Thresholds come from the ``segments`` section of
the configuration (``conf/base/segments.yaml``); rules that name several labels are ordered
lists of (label, condition) where the first condition that holds wins (one ``F.coalesce``), so a
rule is one line and the precedence is the order written here.

Rule-based schemes:

- **geographic**: ``region`` as in the master; ``city_tier`` from ``segments.city_tiers``
  (a city in no tier is ``other``).
- **demographic**: ``B2B`` for a business line (its age and gender are of whoever the company
  named, if anyone), else ``B2C <age band> <gender>``; ``age_band``, ``gender`` and
  ``customer_type`` are schemes of their own too.
- **behaviour** (last 30 days): traits ``is_dormant`` (as in lifecycle), ``is_roamer`` (share
  of events abroad), ``is_data_heavy`` and ``is_voice_heavy`` (MB, minutes), ``is_light``
  (few events); a subscriber may have several, a missing input leaves a trait false. One label:
  the first that holds of dormant → roamer → data_heavy → voice_heavy → light, else ``regular``.
- **value tier**: ARPU (``revenue_30d``) against its percentiles *of that snapshot*
  (``value_tier_cuts``, e.g. 0.5/0.8/0.95 → low/mid/high/top); a value equal to a cut point
  falls in the lower tier.
- **RFM** on top-ups and payments, each scored 1-5 against the quintiles of that snapshot:
  recency = ``days_since_last_recharge`` (fewer days score higher; quintiles over subscribers
  with a top-up or payment in the lookback; a subscriber with none scores 1), frequency =
  ``recharge_count_90d``, monetary = ``recharge_amount_90d + payment_amount_90d``. Ties share a
  score (a value equal to a cut point scores the lower side), so a score may hold more or less
  than a fifth. Postpaid lines pay a bill a month and rarely top up: they score low on
  frequency by construction. ``rfm_segment`` is the first of the rules in :data:`RFM_RULES`.
- **lifecycle stage**, first that holds: dormant (no activity for ``dormant_days`` or none in
  the lookback) → new (tenure below ``new_tenure_days``) → at_risk (inactive for
  ``at_risk_inactive_days``, or the activity trend below ``at_risk_trend``) → declining (trend
  below ``declining_trend``) → growing (tenure below ``growing_tenure_days``, or trend at or
  above ``growing_trend``) → mature. A trend is null when there was no activity in its base
  window; such a subscriber is neither declining nor growing by trend.

Clusters: KMeans on behavioural features, see :func:`cluster_pipeline`, :func:`fit_clusters`,
:func:`cluster_differences` and :func:`cluster_names`.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.clustering import KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.feature import SQLTransformer, StandardScaler, VectorAssembler
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crmlake.core.errors import ConfigError, MissingColumnsError
from crmlake.core.settings import SEGMENT_SCHEMES, SegmentClustersConfig, SegmentsConfig
from crmlake.gold.features import lit_date

SEGMENTS = "gold.segments"
SEGMENT_PROFILES = "gold.segment_profiles"
SEGMENT_MIGRATION = "gold.segment_migration"

# Thresholds, tiers, cluster settings, validated where the configuration is loaded.
SegmentParams = SegmentsConfig
ClusterParams = SegmentClustersConfig

UNKNOWN = "unknown"
OTHER_CITY = "other"
JOINED = "joined_base"
LEFT = "left_base"

# Every scheme of gold.segments (one column each); profiles are written for all of them. Config
# names them (segments.migration_schemes, kpis.dimensions), so the list is config's.
SCHEMES = typing.get_args(SEGMENT_SCHEMES)

# What the rule-based schemes read from gold.features.
RULE_INPUTS = (
    "subscriber_key",
    "snapshot_date",
    "plan_type",
    "region",
    "city",
    "customer_type",
    "age_band",
    "gender",
    "tenure_days",
    "revenue_30d",
    "data_mb_30d",
    "voice_min_30d",
    "events_30d",
    "active_days_30d",
    "roaming_share_30d",
    "days_since_last_activity",
    "days_since_last_recharge",
    "recharge_count_90d",
    "recharge_amount_90d",
    "payment_amount_90d",
)

# Means shown in each segment's profile.
PROFILE_MEANS = ("revenue_30d", "data_mb_30d", "voice_min_30d", "active_days_30d", "tenure_days", "recharge_count_90d")

RFM_QUANTILES = (0.2, 0.4, 0.6, 0.8)  # quintiles: scores 1-5
# percentile_approx's accuracy: relative error about 1/accuracy of the rank, exact on small data.
PERCENTILE_ACCURACY = 10_000


def require_columns(df: DataFrame, columns: Sequence[str], table: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MissingColumnsError(f"{table} lacks {missing}: rebuild it with `crmlake features` for the date")


def _first(rules: Sequence[tuple[str, Column]], default: str | None = None) -> Column:
    """The label of the first rule whose condition holds (a null condition does not hold)."""
    labels = [F.when(condition, F.lit(label)) for label, condition in rules]
    if default is not None:
        labels.append(F.lit(default))
    return F.coalesce(*labels)


# ---------------------------------------------------------------------------------------------
# rule-based schemes


def city_tier(city: Column, tiers: Mapping[str, Sequence[str]]) -> Column:
    """The tier whose city list holds ``city``; ``other`` for a city in no tier, ``unknown``
    without a city."""
    rules = [(tier, city.isin(*cities)) for tier, cities in tiers.items()]
    return F.when(city.isNull(), F.lit(UNKNOWN)).otherwise(_first(rules, default=OTHER_CITY))


def demographic(customer_type: Column, age_band: Column, gender: Column) -> Column:
    """``B2B``, or ``<customer type> <age band> <gender>`` (unknown parts as ``unknown``)."""
    person = F.concat_ws(" ", customer_type, F.coalesce(age_band, F.lit(UNKNOWN)), F.coalesce(gender, F.lit(UNKNOWN)))
    return F.when(customer_type.isNull(), F.lit(UNKNOWN)).when(customer_type == "B2B", F.lit("B2B")).otherwise(person)


def is_dormant(params: SegmentParams) -> Column:
    """No activity for ``dormant_days`` days, or none in the lookback (days since is null)."""
    days = F.col("days_since_last_activity")
    return days.isNull() | (days >= params.dormant_days)


def behaviour_traits(params: SegmentParams) -> dict[str, Column]:
    """One boolean per trait; a missing input leaves the trait false."""
    b = params.behaviour
    return {
        "is_dormant": is_dormant(params),
        "is_roamer": F.coalesce(F.col("roaming_share_30d") >= b.roamer_share_30d, F.lit(False)),
        "is_data_heavy": F.coalesce(F.col("data_mb_30d") >= b.data_heavy_mb_30d, F.lit(False)),
        "is_voice_heavy": F.coalesce(F.col("voice_min_30d") >= b.voice_heavy_min_30d, F.lit(False)),
        "is_light": F.coalesce(F.col("events_30d") < b.light_events_30d, F.lit(False)),
    }


BEHAVIOUR_ORDER = ("dormant", "roamer", "data_heavy", "voice_heavy", "light")
BEHAVIOUR_DEFAULT = "regular"


def behaviour() -> Column:
    """The primary behaviour over the trait columns of :func:`behaviour_traits`."""
    return _first([(label, F.col(f"is_{label}")) for label in BEHAVIOUR_ORDER], default=BEHAVIOUR_DEFAULT)


def lifecycle_rules(params: SegmentParams) -> list[tuple[str, Column]]:
    life = params.lifecycle
    trend, tenure = F.col(life.trend_feature), F.col("tenure_days")
    inactive = F.col("days_since_last_activity")
    return [
        ("dormant", is_dormant(params)),
        ("new", tenure < life.new_tenure_days),
        ("at_risk", (inactive >= life.at_risk_inactive_days) | (trend < life.at_risk_trend)),
        ("declining", trend < life.declining_trend),
        ("growing", (tenure < life.growing_tenure_days) | (trend >= life.growing_trend)),
    ]


LIFECYCLE_DEFAULT = "mature"


def lifecycle_stage(params: SegmentParams) -> Column:
    return _first(lifecycle_rules(params), default=LIFECYCLE_DEFAULT)


def cut_points(df: DataFrame, values: Mapping[str, tuple[Column, Sequence[float]]]) -> DataFrame:
    """One row: for each name, the array of ``values[name][0]``'s percentiles at the given
    probabilities over ``df`` (nulls ignored; computed by Spark, nothing on the driver)."""
    return df.agg(
        *[
            F.percentile_approx(value.cast("double"), list(probabilities), PERCENTILE_ACCURACY).alias(name)
            for name, (value, probabilities) in values.items()
        ]
    )


def tier(value: Column, cuts: Column, labels: Sequence[str]) -> Column:
    """``labels[i]`` for the first cut ``i`` with ``value <= cuts[i]``, the last label above them
    all, ``unknown`` without a value."""
    rules = [(label, value <= cuts[i]) for i, label in enumerate(labels[:-1])]
    return F.when(value.isNull(), F.lit(UNKNOWN)).otherwise(_first(rules, default=labels[-1]))


def score(value: Column, cuts: Column) -> Column:
    """1 + the number of cut points ``value`` is above (a value equal to a cut point scores
    below it); 1 without a value."""
    above = [F.coalesce((value > cuts[i]).cast("int"), F.lit(0)) for i in range(len(RFM_QUANTILES))]
    counted = functools.reduce(operator.add, above)
    return (F.lit(1) + counted).cast("int")


def rfm_rules() -> list[tuple[str, Column]]:
    r, f, m = F.col("r_score"), F.col("f_score"), F.col("m_score")
    return [
        ("champions", (r >= 4) & (f >= 4) & (m >= 4)),
        ("loyal", (r >= 3) & (f >= 3) & (m >= 3)),
        ("promising", (r >= 4) & (f <= 2)),
        ("at_risk", (r <= 2) & ((f >= 3) | (m >= 3))),
        ("hibernating", r <= 2),
    ]


RFM_DEFAULT = "needs_attention"


def monetary() -> Column:
    return F.col("recharge_amount_90d") + F.col("payment_amount_90d")


def rule_segments(features_df: DataFrame, params: SegmentParams) -> DataFrame:
    """One snapshot of gold.features (one row per subscriber) → every rule-based scheme's label.

    Requires :data:`RULE_INPUTS` and ``params.lifecycle.trend_feature``. Adds city_tier,
    demographic, the behaviour traits and label, value_tier, r/f/m scores, rfm_segment and
    lifecycle_stage; keeps revenue_30d (for profiles and migration). Percentiles are of the
    snapshot given: pass one snapshot at a time.
    """
    require_columns(features_df, [*RULE_INPUTS, params.lifecycle.trend_feature], "gold.features")
    cuts_df = cut_points(
        features_df,
        {
            "_value_cuts": (F.col("revenue_30d"), params.value_tier_cuts),
            "_r_cuts": (-F.col("days_since_last_recharge"), RFM_QUANTILES),
            "_f_cuts": (F.col("recharge_count_90d"), RFM_QUANTILES),
            "_m_cuts": (monetary(), RFM_QUANTILES),
        },
    )
    traits = behaviour_traits(params)
    labelled_df = (
        features_df.crossJoin(F.broadcast(cuts_df))
        .withColumns(traits)
        .withColumns(
            {
                # Recency scores on minus the days, so that ties fall the same way as F and M.
                "r_score": score(-F.col("days_since_last_recharge"), F.col("_r_cuts")),
                "f_score": score(F.col("recharge_count_90d"), F.col("_f_cuts")),
                "m_score": score(monetary(), F.col("_m_cuts")),
            }
        )
    )
    return labelled_df.select(
        "subscriber_key",
        "snapshot_date",
        "plan_type",
        F.coalesce(F.col("region"), F.lit(UNKNOWN)).alias("region"),
        "city",
        city_tier(F.col("city"), params.city_tiers).alias("city_tier"),
        F.coalesce(F.col("customer_type"), F.lit(UNKNOWN)).alias("customer_type"),
        F.coalesce(F.col("age_band"), F.lit(UNKNOWN)).alias("age_band"),
        F.coalesce(F.col("gender"), F.lit(UNKNOWN)).alias("gender"),
        demographic(F.col("customer_type"), F.col("age_band"), F.col("gender")).alias("demographic"),
        *traits,
        behaviour().alias("behaviour"),
        "revenue_30d",
        tier(F.col("revenue_30d"), F.col("_value_cuts"), params.value_tier_labels).alias("value_tier"),
        "r_score",
        "f_score",
        "m_score",
        _first(rfm_rules(), default=RFM_DEFAULT).alias("rfm_segment"),
        lifecycle_stage(params).alias("lifecycle_stage"),
    )


# ---------------------------------------------------------------------------------------------
# clusters

INPUT_PREFIX = "x_"  # the model's input columns: x_<feature>, log1p'd where configured
VECTOR = "cluster_vector"
SCALED = "cluster_scaled"
CLUSTER_ID = "cluster_id"

# A trend of 1 is "steady"; every other feature's missing value means none of it.
NEUTRAL_TREND = 1.0

# Readable words for a cluster that stands out above (first) or below (second) the base.
FEATURE_WORDS: dict[str, tuple[str, str]] = {
    "revenue_30d": ("high spend", "low spend"),
    "voice_min_30d": ("heavy voice", "light voice"),
    "data_mb_30d": ("heavy data", "light data"),
    "sms_out_30d": ("many SMS", "few SMS"),
    "events_30d": ("busy", "quiet"),
    "active_days_30d": ("active most days", "seldom active"),
    "roaming_share_30d": ("roaming", "stays home"),
    "recharge_count_90d": ("frequent top-ups", "rare top-ups"),
    "recharge_amount_90d": ("big top-ups", "small top-ups"),
    "payment_amount_90d": ("big payer", "small payer"),
    "tenure_days": ("long tenure", "young tenure"),
    "events_trend_7v30": ("rising use", "falling use"),
    "revenue_trend_7v30": ("rising spend", "falling spend"),
    "data_mb_trend_7v30": ("rising data", "falling data"),
    "voice_min_trend_7v30": ("rising voice", "falling voice"),
}


def feature_words(feature: str) -> tuple[str, str]:
    return FEATURE_WORDS.get(feature, (f"high {feature}", f"low {feature}"))


def _input_sql(features: Sequence[str], log_features: Sequence[str]) -> str:
    """The model's first stage as SQL: a SQLTransformer is how a Spark ML pipeline carries a
    column transformation, so a reused model prepares its inputs exactly as when it was fitted."""
    columns = []
    for feature in features:
        neutral = NEUTRAL_TREND if "_trend_" in feature else 0.0
        value = f"coalesce(CAST(`{feature}` AS DOUBLE), {neutral})"
        if feature in log_features:
            value = f"log1p(greatest({value}, 0.0))"
        columns.append(f"{value} AS `{INPUT_PREFIX}{feature}`")
    return f"SELECT *, {', '.join(columns)} FROM __THIS__"


def input_columns(features: Sequence[str]) -> list[str]:
    return [f"{INPUT_PREFIX}{f}" for f in features]


def cluster_pipeline(
    features: Sequence[str], log_features: Sequence[str], k: int, seed: int, max_iter: int
) -> Pipeline:
    """features (gold.features columns) → ``x_<feature>`` (missing as 0, or 1 for a trend;
    log1p for the heavy-tailed ``log_features``) → ``cluster_vector`` → ``cluster_scaled``
    (zero mean, unit variance) → KMeans ``cluster_id``."""
    return Pipeline(
        stages=[
            SQLTransformer(statement=_input_sql(features, log_features)),
            VectorAssembler(inputCols=input_columns(features), outputCol=VECTOR),
            StandardScaler(inputCol=VECTOR, outputCol=SCALED, withMean=True, withStd=True),
            KMeans(featuresCol=SCALED, predictionCol=CLUSTER_ID, k=k, seed=seed, maxIter=max_iter),
        ]
    )


@dataclass(frozen=True)
class ClusterFit:
    k: int
    model: PipelineModel
    silhouettes: dict[int, float]


def fit_clusters(sample_df: DataFrame, params: ClusterParams, rows: int) -> ClusterFit:
    """Fit one pipeline per k in [k_min, k_max] on ``sample_df`` (``rows`` rows) and keep the one
    with the highest silhouette (squared Euclidean, on the scaled features; a tie goes to the
    smaller k). k is at most ``rows - 1``."""
    ks = [k for k in range(params.k_min, params.k_max + 1) if k < rows]
    if not ks:
        raise ConfigError(
            f"segments.clusters.k_min is {params.k_min}: clustering needs more than that many subscribers, "
            f"the sample has {rows}"
        )
    evaluator = ClusteringEvaluator(featuresCol=SCALED, predictionCol=CLUSTER_ID, metricName="silhouette")
    fits: dict[int, PipelineModel] = {}
    silhouettes: dict[int, float] = {}
    for k in ks:
        pipeline = cluster_pipeline(params.features, params.log_features, k, params.seed, params.max_iter)
        fits[k] = pipeline.fit(sample_df)
        assigned_df = fits[k].transform(sample_df)
        # Identical subscribers can leave KMeans with one cluster, where silhouette is undefined.
        if assigned_df.select(CLUSTER_ID).distinct().limit(2).count() < 2:
            silhouettes[k] = float("-inf")
            continue
        silhouettes[k] = float(evaluator.evaluate(assigned_df))
    best = max(ks, key=lambda k: (silhouettes[k], -k))
    return ClusterFit(best, fits[best], silhouettes)


def cluster_differences(assigned_df: DataFrame, features: Sequence[str]) -> DataFrame:
    """A model's output (``cluster_id`` and the ``x_<feature>`` inputs) → cluster_id, feature,
    subscribers, difference: (mean of the cluster − mean of the base) / standard deviation of the
    base, on the model's input scale (log1p where the model logs). Null where the base does not
    vary."""
    xs = input_columns(features)
    base_df = assigned_df.agg(
        *[F.avg(x).alias(f"_mean_{x}") for x in xs], *[F.stddev_pop(x).alias(f"_std_{x}") for x in xs]
    )
    clusters_df = assigned_df.groupBy(CLUSTER_ID).agg(
        F.count(F.lit(1)).alias("subscribers"), *[F.avg(x).alias(f"_in_{x}") for x in xs]
    )
    differences = [
        F.struct(
            F.lit(feature).alias("feature"),
            F.when(F.col(f"_std_{x}") > 0, (F.col(f"_in_{x}") - F.col(f"_mean_{x}")) / F.col(f"_std_{x}")).alias(
                "difference"
            ),
        )
        for feature, x in zip(features, xs, strict=True)
    ]
    return (
        clusters_df.crossJoin(F.broadcast(base_df))
        .select(CLUSTER_ID, "subscribers", F.explode(F.array(*differences)).alias("_d"))
        .select(CLUSTER_ID, "_d.feature", "subscribers", "_d.difference")
    )


def _words_map(features: Sequence[str]) -> Column:
    pairs = []
    for feature in features:
        high, low = feature_words(feature)
        pairs += [F.lit(feature), F.array(F.lit(high), F.lit(low))]
    return F.create_map(*pairs)


def _ranked(differences_df: DataFrame, features: Sequence[str]) -> DataFrame:
    """cluster_id, items: each cluster's non-null differences as (order, feature, word, text),
    the largest absolute difference first (structs sort field by field; ties by feature name)."""
    d = F.col("difference")
    words = _words_map(features)[F.col("feature")]
    item = F.struct(
        (-F.abs(d)).alias("order"),
        F.col("feature"),
        F.when(d > 0, words[0]).when(d <= 0, words[1]).alias("word"),
        F.format_string("%s %+.2f sd", F.col("feature"), d).alias("text"),
    )
    # collect_list skips the nulls: a cluster where nothing varies keeps an empty list.
    return differences_df.groupBy(CLUSTER_ID).agg(
        F.sort_array(F.collect_list(F.when(d.isNotNull(), item))).alias("items")
    )


def _texts(items: Column, shown: int) -> Column:
    return F.array_join(F.transform(F.slice(items, 1, shown), lambda i: i["text"]), "; ")


def top_differences(differences_df: DataFrame, features: Sequence[str], shown: int = 3) -> DataFrame:
    """cluster_id, top_differences: the ``shown`` largest standardized differences of each
    cluster as text ("data_mb_30d +1.80 sd; tenure_days -1.20 sd"); null when nothing varies."""
    return _ranked(differences_df, features).select(
        F.col(CLUSTER_ID).cast("int").alias(CLUSTER_ID),
        F.when(F.size("items") > 0, _texts(F.col("items"), shown)).alias("top_differences"),
    )


def cluster_names(differences_df: DataFrame, features: Sequence[str], name_words: int = 2, shown: int = 3) -> DataFrame:
    """Per cluster, from :func:`cluster_differences`: ``cluster_name``, the words of its
    ``name_words`` largest absolute differences ("heavy data, young tenure"; one more word where
    two clusters would share a name, then the cluster id where they still do; ``cluster <id>``
    when nothing sets it apart), and ``top_differences`` as :func:`top_differences` gives it."""
    items_df = _ranked(differences_df, features)

    def named(n: int) -> Column:
        joined = F.array_join(F.transform(F.slice(F.col("items"), 1, n), lambda i: i["word"]), ", ")
        nothing = F.concat(F.lit("cluster "), F.col(CLUSTER_ID).cast("string"))
        return F.when(F.size("items") > 0, joined).otherwise(nothing)

    def shared(name: str) -> Column:
        return F.count(F.lit(1)).over(Window.partitionBy(name)) > 1

    return (
        items_df.withColumn("_short", named(name_words))
        .withColumn("_longer", F.when(shared("_short"), named(name_words + 1)).otherwise(F.col("_short")))
        .withColumn(
            "cluster_name",
            F.when(
                shared("_longer"), F.concat(F.col("_longer"), F.lit(" ("), F.col(CLUSTER_ID).cast("string"), F.lit(")"))
            ).otherwise(F.col("_longer")),
        )
        .select(
            F.col(CLUSTER_ID).cast("int").alias(CLUSTER_ID),
            "cluster_name",
            F.when(F.size("items") > 0, _texts(F.col("items"), shown)).alias("top_differences"),
        )
    )


# ---------------------------------------------------------------------------------------------
# the tables


def segments(rules_df: DataFrame, clusters_df: DataFrame, model_version: str) -> DataFrame:
    """gold.segments rows: :func:`rule_segments` plus each subscriber's ``cluster_id`` and
    ``cluster_name`` (``clusters_df``: subscriber_key, cluster_id, cluster_name, one row per
    subscriber) and the model version that assigned them."""
    return rules_df.join(clusters_df, on="subscriber_key", how="left").select(
        *rules_df.columns,
        F.col(CLUSTER_ID).cast("int").alias(CLUSTER_ID),
        F.coalesce(F.col("cluster_name"), F.lit(UNKNOWN)).alias("cluster_name"),
        F.lit(model_version).alias("segments_model_version"),
    )


def _scheme_pairs(schemes: Sequence[str]) -> Column:
    return F.explode(
        F.array(
            *[
                F.struct(F.lit(s).alias("scheme"), F.coalesce(F.col(s).cast("string"), F.lit(UNKNOWN)).alias("segment"))
                for s in schemes
            ]
        )
    )


def profiles(
    segments_df: DataFrame, features_df: DataFrame, cluster_text_df: DataFrame, schemes: Sequence[str] = SCHEMES
) -> DataFrame:
    """gold.segment_profiles of one snapshot: per (scheme, segment) the subscribers, their share
    of the base, revenue_30d (sum and per subscriber), the mean of :data:`PROFILE_MEANS`, and for
    the clusters their ``top_differences`` (``cluster_text_df``: cluster_name, top_differences).
    ``features_df`` is the same snapshot of gold.features."""
    means = [m for m in PROFILE_MEANS if m != "revenue_30d"]
    joined_df = segments_df.join(features_df.select("subscriber_key", *means), on="subscriber_key", how="left")
    base_df = segments_df.agg(F.count(F.lit(1)).alias("_base"))
    sized_df = (
        joined_df.select("snapshot_date", "revenue_30d", *means, _scheme_pairs(schemes).alias("_s"))
        .groupBy("snapshot_date", "_s.scheme", "_s.segment")
        .agg(
            F.count(F.lit(1)).alias("subscribers"),
            F.sum("revenue_30d").alias("revenue_30d"),
            F.avg(F.col("revenue_30d").cast("double")).alias("revenue_30d_per_subscriber"),
            *[F.avg(m).cast("double").alias(f"mean_{m}") for m in means],
        )
    )
    text_df = cluster_text_df.select(
        F.lit("cluster_name").alias("scheme"), F.col("cluster_name").alias("segment"), "top_differences"
    )
    return (
        sized_df.crossJoin(F.broadcast(base_df))
        .join(F.broadcast(text_df), on=["scheme", "segment"], how="left")
        .select(
            "snapshot_date",
            "scheme",
            "segment",
            "subscribers",
            (F.col("subscribers") / F.col("_base")).alias("share"),
            "revenue_30d",
            "revenue_30d_per_subscriber",
            *[f"mean_{m}" for m in means],
            "top_differences",
        )
    )


def migration(
    from_df: DataFrame, to_df: DataFrame, from_date: dt.date, to_date: dt.date, schemes: Sequence[str]
) -> DataFrame:
    """gold.segment_migration between two snapshots of gold.segments: per scheme, from_segment →
    to_segment with the subscribers who made the move, their revenue_30d on each snapshot, and
    the share of the from segment that moved so. A subscriber only in the later snapshot comes
    from ``joined_base``, one only in the earlier goes to ``left_base``."""

    def side(df: DataFrame, tag: str) -> DataFrame:
        return df.select(
            "subscriber_key",
            F.lit(True).alias(f"_in_{tag}"),
            F.struct(*[F.col(s).cast("string").alias(s) for s in schemes]).alias(f"_{tag}"),
            F.col("revenue_30d").alias(f"revenue_{tag}"),
        )

    def label(tag: str, scheme: str, absent: str) -> Column:
        present = F.col(f"_in_{tag}")
        return F.when(present.isNull(), F.lit(absent)).when(
            present, F.coalesce(F.col(f"_{tag}.{scheme}"), F.lit(UNKNOWN))
        )

    moves = F.array(
        *[
            F.struct(
                F.lit(s).alias("scheme"),
                label("from", s, JOINED).alias("from_segment"),
                label("to", s, LEFT).alias("to_segment"),
            )
            for s in schemes
        ]
    )
    moved_df = (
        side(from_df, "from")
        .join(side(to_df, "to"), on="subscriber_key", how="full")
        .select(F.explode(moves).alias("_m"), "revenue_from", "revenue_to")
        .groupBy("_m.scheme", "_m.from_segment", "_m.to_segment")
        .agg(
            F.count(F.lit(1)).alias("subscribers"),
            F.coalesce(F.sum("revenue_from"), F.lit(0)).alias("revenue_from"),
            F.coalesce(F.sum("revenue_to"), F.lit(0)).alias("revenue_to"),
        )
    )
    of_from = Window.partitionBy("scheme", "from_segment")
    return moved_df.select(
        lit_date(to_date).alias("to_date"),
        lit_date(from_date).alias("from_date"),
        "scheme",
        "from_segment",
        "to_segment",
        "subscribers",
        (F.col("subscribers") / F.sum("subscribers").over(of_from)).alias("share_of_from"),
        "revenue_from",
        "revenue_to",
    )


def cluster_assignments(assigned_df: DataFrame, names_df: DataFrame) -> DataFrame:
    """subscriber_key, cluster_id, cluster_name from a model's output and the model's names
    (``names_df``: cluster_id, cluster_name)."""
    return assigned_df.select("subscriber_key", F.col(CLUSTER_ID).cast("int").alias(CLUSTER_ID)).join(
        F.broadcast(names_df.select(CLUSTER_ID, "cluster_name")), on=CLUSTER_ID, how="left"
    )


NAMES_SCHEMA = T.StructType([T.StructField(CLUSTER_ID, T.IntegerType()), T.StructField("cluster_name", T.StringType())])
