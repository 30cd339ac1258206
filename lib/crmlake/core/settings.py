"""The typed models every configuration is checked against, one section per job family: types,
ranges, non-empty lists, ordered thresholds, enumerations. :mod:`crmlake.core.config` merges the
YAML layers and validates the tree with :class:`Settings`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

# Entities, subscriber-master columns, weekdays, churn causes and uplift types that config may
# name. The packages that own them check in their tests that these lists match theirs.
ENTITY_NAMES = Literal[
    "subscribers", "network_cells", "usage", "recharges", "care_interactions", "surveys", "campaign_responses"
]
# Segment schemes of gold.segments: columns that profiles, migration and KPIs may break down by.
SEGMENT_SCHEMES = Literal[
    "region",
    "city_tier",
    "customer_type",
    "age_band",
    "gender",
    "demographic",
    "behaviour",
    "value_tier",
    "rfm_segment",
    "lifecycle_stage",
    "cluster_name",
]
# KPI dimensions: master columns, then segment schemes (joined from gold.segments by the kpis run).
KPI_DIMENSIONS = Literal[
    "region",
    "city",
    "plan_type",
    "tariff",
    "customer_type",
    "age_band",
    "gender",
    "device_type",
    "device_brand",
    SEGMENT_SCHEMES,  # flattened by Literal, which drops the names already listed above
]
WEEKDAYS = Literal["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
# the driver JVM's garbage collectors; crmlake.core.session.GARBAGE_COLLECTORS gives each one's option
DRIVER_GCS = Literal["parallel", "g1"]
CHURN_CAUSES = ("short_tenure", "poor_network", "complaints", "price_pressure", "competitor_offer")
UPLIFT_TYPES = ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")

Float = Annotated[float, Field(strict=True)]  # an int is a float too; a string is not
Share = Annotated[float, Field(strict=True, ge=0.0, le=1.0)]
PositiveInt = Annotated[int, Field(strict=True, ge=1)]
NonNegativeInt = Annotated[int, Field(strict=True, ge=0)]
Days = Annotated[int, Field(strict=True, ge=1, le=3660)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _increasing(values: tuple) -> tuple:
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise ValueError(f"must be strictly increasing, got {list(values)}")
    return values


def _unique(values: tuple) -> tuple:
    if len(set(values)) != len(values):
        raise ValueError(f"lists a value twice: {list(values)}")
    return values


Increasing = AfterValidator(_increasing)
Unique = AfterValidator(_unique)


class SparkConfig(Section):
    master: StrictStr
    app_name: StrictStr
    shuffle_partitions: PositiveInt
    time_zone: StrictStr
    ui_enabled: StrictBool
    driver_memory: Annotated[str, Field(strict=True, pattern=r"^\d+[kKmMgGtT]$")]
    driver_gc: DRIVER_GCS
    log_level: Literal["ALL", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"]
    delta_snapshot_partitions: PositiveInt
    jars_dir: StrictStr
    conf: dict[str, StrictStr | StrictInt | Float | StrictBool] = {}


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    format: Literal["json", "text"]


class IdentityConfig(Section):
    country_code: Annotated[str, Field(strict=True, pattern=r"^[1-9]\d{0,2}$")]
    trunk_prefix: Annotated[str, Field(strict=True, pattern=r"^\d*$")]
    international_prefix: Annotated[str, Field(strict=True, pattern=r"^\d+$")]
    national_number_length: Annotated[int, Field(strict=True, ge=4, le=14)]
    mobile_prefixes: Annotated[tuple[Annotated[str, Field(strict=True, pattern=r"^\d+$")], ...], Field(min_length=1)]
    key_env: Annotated[str, Field(strict=True, min_length=1)]
    key_file: StrictStr
    generate_local_key: StrictBool


class IngestConfig(Section):
    entities: Annotated[tuple[ENTITY_NAMES, ...], Field(min_length=1), Unique]
    future_tolerance_hours: NonNegativeInt
    max_lateness_days: Days
    max_duration_s: PositiveInt
    max_throughput_bps: PositiveInt
    max_amount: Annotated[float, Field(strict=True, gt=0)]
    currencies: Annotated[tuple[Annotated[str, Field(strict=True, pattern=r"^[A-Z]{3}$")], ...], Field(min_length=1)]
    fail_on_day_without_files: StrictBool = False
    rederive: StrictBool = False
    entities_at_once: PositiveInt = 2


class FeaturesConfig(Section):
    windows: Annotated[tuple[Days, ...], Field(min_length=1), Increasing] = (7, 30, 90)
    trend_recent_days: Days = 7
    trend_base_days: Days = 30
    slope_days: Annotated[int, Field(strict=True, ge=2, le=3660)] = 30
    network_window_days: Days = 30
    poor_cell_dropped_call_rate: Share = 0.02
    poor_cell_availability_pct: Annotated[float, Field(strict=True, ge=0.0, le=100.0)] = 98.0

    @property
    def lookback_days(self) -> int:
        """Days of history a snapshot reads: the longest window, trend span or slope span."""
        return max(*self.windows, self.trend_recent_days + self.trend_base_days, self.slope_days)

    @model_validator(mode="after")
    def _ordered(self) -> FeaturesConfig:
        if self.trend_recent_days >= self.trend_base_days:
            raise ValueError(
                f"trend_recent_days ({self.trend_recent_days}) must be shorter than trend_base_days "
                f"({self.trend_base_days})"
            )
        return self


class LabelsConfig(Section):
    horizon_days: Days = 30
    prepaid_inactivity_days: Days = 30
    # The outcome window of campaigns (measure, train-uplift). A contact's effect on a prepaid line
    # shows only once the line has been silent prepaid_inactivity_days, so the window must be
    # longer than that rule: 0 = horizon_days + prepaid_inactivity_days.
    campaign_horizon_days: Annotated[int, Field(strict=True, ge=0)] = 0

    @property
    def campaign_horizon(self) -> int:
        return self.campaign_horizon_days or self.horizon_days + self.prepaid_inactivity_days

    @property
    def horizons(self) -> tuple[int, ...]:
        """Every horizon labels are written for: the churn model's and the campaigns'."""
        return tuple(sorted({self.horizon_days, self.campaign_horizon}))

    def at_horizon(self, horizon_days: int) -> LabelsConfig:
        return self.model_copy(update={"horizon_days": horizon_days})

    def daily_range(self, s: dt.date) -> tuple[dt.date, dt.date]:
        """The subscriber-days a label at ``s`` reads."""
        return s - dt.timedelta(days=self.prepaid_inactivity_days - 1), s + dt.timedelta(days=self.horizon_days)


class KpisConfig(Section):
    dimensions: Annotated[tuple[KPI_DIMENSIONS, ...], Unique] = ("region", "plan_type", "tariff", "lifecycle_stage")
    tenure_bands_months: Annotated[tuple[PositiveInt, ...], Field(min_length=1), Increasing] = (3, 6, 12, 24)
    cohort_months: Annotated[int, Field(strict=True, ge=1, le=240)] = 24


class GenerateConfig(Section):
    subscribers: PositiveInt
    start: dt.date
    days: Days
    seed: StrictInt
    bad_rate: Share
    late_rate: Share
    max_late_days: Days
    regions: Annotated[int, Field(strict=True, ge=1, le=10)]
    cells_per_region: PositiveInt
    prepaid_share: Share
    b2b_share: Share
    consent_share: Share
    do_not_contact_share: Share
    new_activation_share: Share
    events_per_day: Annotated[float, Field(strict=True, gt=0)]
    monthly_churn: Annotated[float, Field(strict=True, ge=0.0, lt=1.0)]
    campaigns: NonNegativeInt
    usage_rows_per_file: PositiveInt
    intensity_sigma: Annotated[float, Field(strict=True, ge=0)]
    daily_noise_sigma: Annotated[float, Field(strict=True, ge=0)]
    weekend_days: tuple[WEEKDAYS, ...]
    weekend_factor: Annotated[float, Field(strict=True, ge=0)]
    roaming_rate: Share
    mean_tenure_days: Annotated[float, Field(strict=True, gt=0)]
    short_tenure_days: PositiveInt
    fade_days: PositiveInt
    fade_floor: Share
    prepaid_grace_days: PositiveInt
    churn_cause_mix: dict[StrictStr, Annotated[float, Field(strict=True, ge=0)]]
    poor_cell_share: Share
    outage_rate: Share
    care_contact_rate: Share
    csat_response_rate: Share
    nps_monthly_share: Share
    late_payer_share: Share
    non_payer_share: Share
    attribute_change_rate: Share
    campaign_target_share: Share
    campaign_treatment_share: Share
    uplift_mix: dict[StrictStr, Annotated[float, Field(strict=True, ge=0)]]
    rescue_rate: Share
    backlash_rate: Share

    @model_validator(mode="after")
    def _consistent(self) -> GenerateConfig:
        problems = []
        if self.late_payer_share + self.non_payer_share > 1.0:
            problems.append("late_payer_share + non_payer_share must not exceed 1")
        for name, keys in (("churn_cause_mix", CHURN_CAUSES), ("uplift_mix", UPLIFT_TYPES)):
            mix = getattr(self, name)
            if set(mix) != set(keys) or sum(mix.values()) <= 0:
                problems.append(f"{name} needs weights for exactly {list(keys)}, not all zero")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class MlflowConfig(Section):
    # "" = a SQLite file beside the tables (<root>/mlflow/mlflow.db), unless MLFLOW_TRACKING_URI is set.
    tracking_uri: StrictStr = ""
    experiment_prefix: Annotated[str, Field(strict=True, min_length=1)] = "crmlake"


TableFormat = Literal["csv", "parquet", "delta"]
ColumnName = Annotated[str, Field(strict=True, min_length=1)]


class ClvTransactions(Section):
    """Bring-your-own transactions: one row per purchase (top-up, order, payment)."""

    path: Annotated[str, Field(strict=True, min_length=1)]
    format: TableFormat = "csv"
    customer: ColumnName = "customer_id"
    time: ColumnName = "date"
    amount: ColumnName = "amount"
    time_format: StrictStr = ""  # a Spark datetime pattern where the column is text in another form


class ClvSubscriptions(Section):
    """Bring-your-own contracts: one row per customer with its start and (empty while active) end."""

    path: Annotated[str, Field(strict=True, min_length=1)]
    format: TableFormat = "csv"
    customer: ColumnName = "customer_id"
    cohort: StrictStr = ""  # "" = one cohort of everybody
    start: ColumnName = "start"
    end: ColumnName = "end"
    amount: StrictStr = ""  # revenue per contract period, "" = none (CLV then left unknown)
    time_format: StrictStr = ""


class ClvConfig(Section):
    transactions: ClvTransactions | None = None
    subscriptions: ClvSubscriptions | None = None
    time_unit: Literal["day", "week", "month"] = "week"
    # Purchases on the same day are one transaction ("day", as the papers' data), or all those in
    # the same time unit ("unit"); recency and age are in time units either way.
    merge: Literal["day", "unit"] = "day"
    period: Literal["month", "year"] = "month"
    # The operator's own postpaid lines: acquisition cohorts by activation month, quarter or year.
    cohort_by: Literal["month", "quarter", "year"] = "year"
    min_group_customers: PositiveInt = 30
    discount_rate_annual: Annotated[float, Field(strict=True, ge=0.0, le=5.0)] = 0.10
    margin: Share = 1.0
    horizons_days: Annotated[tuple[Days, ...], Field(min_length=1), Unique] = (90, 365)
    clv_months: Annotated[tuple[Annotated[int, Field(strict=True, ge=1, le=600)], ...], Field(min_length=1), Unique] = (
        12,
        36,
    )
    penalty: Annotated[float, Field(strict=True, ge=0.0)] = 0.0
    tolerance: Annotated[float, Field(strict=True, gt=0.0, le=1e-2)] = 1e-10
    max_iter: PositiveInt = 5000
    frequency_buckets: Annotated[tuple[NonNegativeInt, ...], Field(min_length=1), Increasing] = (0, 1, 2, 3, 5, 10)


ColumnList = Annotated[tuple[ColumnName, ...], Field(min_length=1), Unique]
Positive = Annotated[float, Field(strict=True, gt=0)]


class SegmentBehaviourConfig(Section):
    """Behavioural traits over the last 30 days (gold.features' 30-day window)."""

    data_heavy_mb_30d: Positive = 5000.0  # data at or above this is data-heavy
    voice_heavy_min_30d: Positive = 900.0  # voice at or above this is voice-heavy
    roamer_share_30d: Annotated[float, Field(strict=True, gt=0.0, le=1.0)] = 0.01  # share of events abroad
    light_events_30d: PositiveInt = 60  # fewer events than this is light


class SegmentLifecycleConfig(Section):
    """Lifecycle stage thresholds; the stages and their precedence are in crmlake.gold.segments."""

    trend_feature: ColumnName = "events_trend_7v30"  # recent against base activity, 1 = steady
    new_tenure_days: Days = 90
    growing_tenure_days: Days = 365
    growing_trend: Positive = 1.25
    declining_trend: Positive = 0.8
    at_risk_trend: Positive = 0.5
    at_risk_inactive_days: Days = 7

    @model_validator(mode="after")
    def _ordered(self) -> SegmentLifecycleConfig:
        problems = []
        if self.new_tenure_days >= self.growing_tenure_days:
            problems.append(
                f"new_tenure_days ({self.new_tenure_days}) must be below growing_tenure_days "
                f"({self.growing_tenure_days})"
            )
        if not self.at_risk_trend < self.declining_trend < self.growing_trend:
            problems.append(
                f"trends must be ordered at_risk_trend < declining_trend < growing_trend, got "
                f"{self.at_risk_trend}, {self.declining_trend}, {self.growing_trend}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class SegmentClustersConfig(Section):
    """KMeans on behavioural features: k by silhouette on a sample, the model kept in MLflow."""

    features: ColumnList = (
        "revenue_30d",
        "voice_min_30d",
        "data_mb_30d",
        "sms_out_30d",
        "active_days_30d",
        "roaming_share_30d",
        "recharge_count_90d",
        "tenure_days",
        "events_trend_7v30",
    )
    log_features: Annotated[tuple[ColumnName, ...], Unique] = (
        "revenue_30d",
        "voice_min_30d",
        "data_mb_30d",
        "sms_out_30d",
        "recharge_count_90d",
        "tenure_days",
        "events_trend_7v30",
    )
    k_min: Annotated[int, Field(strict=True, ge=2, le=50)] = 3
    k_max: Annotated[int, Field(strict=True, ge=2, le=50)] = 8
    sample_size: Annotated[int, Field(strict=True, ge=10)] = 20000
    seed: StrictInt = 42
    max_iter: PositiveInt = 30
    top_differences: PositiveInt = 3  # standardized differences shown per cluster in the profiles
    model_name: Annotated[str, Field(strict=True, min_length=1)] = "crmlake-segments"
    alias: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")] = "current"

    @model_validator(mode="after")
    def _consistent(self) -> SegmentClustersConfig:
        problems = []
        if self.k_min > self.k_max:
            problems.append(f"k_min ({self.k_min}) must not exceed k_max ({self.k_max})")
        stray = [c for c in self.log_features if c not in self.features]
        if stray:
            problems.append(f"log_features {stray} are not among features")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class SegmentsConfig(Section):
    # City tier -> cities (as in the master's city column); a city in no tier is "other".
    city_tiers: dict[Annotated[str, Field(strict=True, min_length=1)], ColumnList] = {}
    # ARPU (revenue_30d) percentiles of the snapshot date that cut the value tiers, and their labels.
    value_tier_cuts: Annotated[tuple[Annotated[float, Field(strict=True, gt=0.0, lt=1.0)], ...], Increasing] = (
        0.5,
        0.8,
        0.95,
    )
    value_tier_labels: Annotated[tuple[ColumnName, ...], Unique] = ("low", "mid", "high", "top")
    dormant_days: Days = 14  # no activity for this many days (or none in the lookback) is dormant
    behaviour: SegmentBehaviourConfig = SegmentBehaviourConfig()
    lifecycle: SegmentLifecycleConfig = SegmentLifecycleConfig()
    clusters: SegmentClustersConfig = SegmentClustersConfig()
    # Migration compares a snapshot with the latest one at least this many days earlier.
    migration_gap_days: Days = 30
    migration_schemes: Annotated[tuple[SEGMENT_SCHEMES, ...], Field(min_length=1), Unique] = (
        "lifecycle_stage",
        "value_tier",
        "behaviour",
        "rfm_segment",
        "cluster_name",
    )

    @model_validator(mode="after")
    def _consistent(self) -> SegmentsConfig:
        problems = []
        if len(self.value_tier_labels) != len(self.value_tier_cuts) + 1:
            problems.append(
                f"value_tier_labels needs one label more than value_tier_cuts: {len(self.value_tier_cuts)} cuts, "
                f"{len(self.value_tier_labels)} labels"
            )
        seen: dict[str, str] = {}
        for tier, cities in self.city_tiers.items():
            for city in cities:
                if city in seen:
                    problems.append(f"city_tiers: {city!r} is in both {seen[city]!r} and {tier!r}")
                seen.setdefault(city, tier)
        if self.lifecycle.at_risk_inactive_days >= self.dormant_days:
            problems.append(
                f"lifecycle.at_risk_inactive_days ({self.lifecycle.at_risk_inactive_days}) must be below "
                f"dormant_days ({self.dormant_days})"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


CHURN_CANDIDATES = Literal["logistic_regression", "random_forest", "gbt"]
ParamValue = StrictInt | Float | StrictStr | StrictBool


class ChurnDataset(Section):
    """Bring-your-own features: any table with an id, a label and feature columns."""

    path: Annotated[str, Field(strict=True, min_length=1)]
    format: TableFormat = "csv"
    id: ColumnName = "customer_id"
    label: ColumnName = "churn"
    split: StrictStr = ""  # a column holding train/test; "" = a stratified random split
    features: Annotated[tuple[ColumnName, ...], Unique] = ()  # () = every other column
    name: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] | None = None


class ChurnConfig(Section):
    """Churn models: training snapshots and split, candidates and their grids, promotion,
    scoring (deciles, risk bands, reasons) and monitoring."""

    dataset: ChurnDataset | None = None
    model_name: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] = "crmlake-churn"
    # Snapshots of gold.features with matured labels: explicit dates, or (empty) the latest ones
    # on or before --date minus the horizon, one every snapshot_every_days.
    snapshot_dates: Annotated[tuple[dt.date, ...], Unique] = ()
    snapshot_every_days: Days = 7
    train_snapshots: PositiveInt = 4
    validation_snapshots: PositiveInt = 1
    test_snapshots: PositiveInt = 1
    # A split's label horizons end on or before the next split's first snapshot, so no churn
    # event is seen on both sides (an operator training on day t only knows labels closed by t).
    embargo: StrictBool = True
    exclude_features: Annotated[tuple[ColumnName, ...], Unique] = ("home_cell_id", "city", "status")
    max_categories: Annotated[int, Field(strict=True, ge=2, le=1000)] = 50
    class_weight: Literal["balanced", "none"] = "balanced"
    candidates: Annotated[tuple[CHURN_CANDIDATES, ...], Field(min_length=1), Unique] = (
        "logistic_regression",
        "random_forest",
        "gbt",
    )
    # Hyper-parameter grids per candidate (Spark ML param names), searched by TrainValidationSplit
    # on the training snapshots; the candidates then compete on the validation snapshots.
    grids: dict[CHURN_CANDIDATES, dict[StrictStr, Annotated[tuple[ParamValue, ...], Field(min_length=1)]]] = {
        "logistic_regression": {"regParam": (0.001, 0.01, 0.1), "elasticNetParam": (0.0,)},
        "random_forest": {"numTrees": (100,), "maxDepth": (6, 10)},
        "gbt": {"maxIter": (40,), "maxDepth": (3, 5), "stepSize": (0.1,)},
    }
    tuning_train_ratio: Annotated[float, Field(strict=True, gt=0.0, lt=1.0)] = 0.75
    parallelism: PositiveInt = 2
    selection_metric: Literal["pr_auc", "roc_auc", "top_decile_lift"] = "pr_auc"
    calibration: Literal["auto", "platt", "none"] = "auto"
    # Promotion: the new version becomes @champion when it beats the champion's metric on the
    # same test snapshot by at least this margin; otherwise @challenger.
    promotion_metric: Literal["pr_auc", "roc_auc", "top_decile_lift"] = "pr_auc"
    promotion_margin: Annotated[float, Field(strict=True, ge=0.0)] = 0.005
    champion_alias: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")] = "champion"
    challenger_alias: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")] = "challenger"
    contact_capacity: PositiveInt = 1000  # subscribers a retention team can contact per cycle
    # Risk bands by score decile (1 = riskiest): a band holds deciles up to its bound.
    risk_bands: dict[
        Annotated[str, Field(strict=True, min_length=1)], Annotated[int, Field(strict=True, ge=1, le=10)]
    ] = {
        "high": 1,
        "medium": 3,
        "low": 10,
    }
    reasons: Annotated[int, Field(strict=True, ge=1, le=10)] = 3
    psi_threshold: Annotated[float, Field(strict=True, gt=0.0)] = 0.2
    psi_features: NonNegativeInt = 10  # the most important features whose PSI is monitored
    psi_bins: Annotated[int, Field(strict=True, ge=2, le=100)] = 10
    test_share: Annotated[float, Field(strict=True, gt=0.0, lt=1.0)] = 0.25  # BYO without a split column
    validation_share: Annotated[float, Field(strict=True, gt=0.0, lt=1.0)] = 0.2  # of BYO training rows
    seed: StrictInt = 42

    @model_validator(mode="after")
    def _consistent(self) -> ChurnConfig:
        problems = []
        bounds = list(self.risk_bands.values())
        if any(b <= a for a, b in zip(bounds, bounds[1:], strict=False)) or (bounds and bounds[-1] != 10):
            problems.append(f"risk_bands: decile bounds must increase and end at 10, got {self.risk_bands}")
        if self.champion_alias == self.challenger_alias:
            problems.append("champion_alias and challenger_alias must differ")
        if problems:
            raise ValueError("; ".join(problems))
        return self


UPLIFT_LEARNERS = Literal["two_model", "class_transformation"]


class UpliftConfig(Section):
    """Uplift models: which published lists train them (treatment against the hash-drawn
    control, outcome = retained over the label horizon), learners and classifiers, the subscriber
    split, evaluation (Qini and AUUC curves, bootstrap intervals) and promotion."""

    model_name: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] = "crmlake-uplift"
    # Campaign ids whose lists train the model; () = every campaign with objective "retention".
    campaigns: Annotated[tuple[Annotated[str, Field(strict=True, min_length=1)], ...], Unique] = ()
    learners: Annotated[tuple[UPLIFT_LEARNERS, ...], Field(min_length=1), Unique] = (
        "two_model",
        "class_transformation",
    )
    candidates: Annotated[tuple[CHURN_CANDIDATES, ...], Field(min_length=1), Unique] = ("logistic_regression", "gbt")
    # Every point of a candidate's grid is fitted; the validation Qini picks learner, candidate and point.
    grids: dict[CHURN_CANDIDATES, dict[StrictStr, Annotated[tuple[ParamValue, ...], Field(min_length=1)]]] = {
        "logistic_regression": {"regParam": (0.01,)},
        "random_forest": {"numTrees": (50,), "maxDepth": (5,)},
        "gbt": {"maxIter": (30,), "maxDepth": (3,)},
    }
    exclude_features: Annotated[tuple[ColumnName, ...], Unique] = ("home_cell_id", "city", "status")
    # Subscribers (not rows) are split by a seeded hash: one subscriber is never on two sides.
    validation_share: Annotated[float, Field(strict=True, gt=0.0, lt=1.0)] = 0.25
    test_share: Annotated[float, Field(strict=True, gt=0.0, lt=1.0)] = 0.25
    min_rows_per_group: PositiveInt = 50  # treatment and control rows needed in each split
    curve_bins: Annotated[int, Field(strict=True, ge=2, le=1000)] = 100  # Qini/uplift curve points
    bootstrap_resamples: NonNegativeInt = 200
    interval: Annotated[float, Field(strict=True, gt=0.0, lt=1.0)] = 0.95
    # Promotion: @champion when the test Qini beats the champion's on the same rows by this much.
    promotion_margin: Annotated[float, Field(strict=True, ge=0.0)] = 0.001
    champion_alias: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")] = "champion"
    challenger_alias: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")] = "challenger"
    seed: StrictInt = 42

    @model_validator(mode="after")
    def _consistent(self) -> UpliftConfig:
        problems = []
        if self.validation_share + self.test_share >= 1.0:
            problems.append(
                f"validation_share + test_share must leave training rows, got {self.validation_share + self.test_share}"
            )
        if self.champion_alias == self.challenger_alias:
            problems.append("champion_alias and challenger_alias must differ")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ContactPolicy(Section):
    """Across every campaign: how often one subscriber may be contacted."""

    max_contacts: Annotated[int, Field(strict=True, ge=1)] = 2  # treatments in the window
    window_days: Annotated[int, Field(strict=True, ge=1)] = 30
    quiet_days: Annotated[int, Field(strict=True, ge=0)] = 7  # none after the last contact


class MeasureConfig(Section):
    """Measuring campaigns (``crmlake measure``): the confidence of every interval, the least
    group size a lift is reported for, and the segment schemes it is broken down by."""

    confidence: Annotated[float, Field(strict=True, gt=0.5, lt=1.0)] = 0.95
    min_group_size: Annotated[int, Field(strict=True, ge=2)] = 30  # treated and controls, per row
    segment_schemes: Annotated[tuple[SEGMENT_SCHEMES, ...], Unique] = ()  # () = every scheme in gold.segments


EnvName = Annotated[str, Field(strict=True, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class JdbcConfig(Section):
    """The optional push of each list's treatment rows to PostgreSQL (crmlake.publish.jdbc).
    Credentials come from the environment variables named here, never from YAML."""

    enabled: StrictBool = False
    url: Annotated[str, Field(strict=True, pattern=r"^$|^jdbc:postgresql://[^?]+(\?.*)?$")] = ""
    # the target table, created when absent; unquoted, so PostgreSQL folds it to lower case
    table: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")] = (
        "campaign_targets"
    )
    user_env: EnvName = "CRMLAKE_JDBC_USER"
    password_env: EnvName | Literal[""] = "CRMLAKE_JDBC_PASSWORD"  # "": no password (trust, certificates)
    batch_size: Annotated[int, Field(strict=True, ge=1, le=100_000)] = 1000  # rows per INSERT batch to staging

    @model_validator(mode="after")
    def _usable(self) -> JdbcConfig:
        if self.enabled and not self.url:
            raise ValueError("enabled needs a url (jdbc:postgresql://host:port/database)")
        if "password=" in self.url.lower():
            raise ValueError("url must not hold a password: put it in the variable named by password_env")
        return self


class PublishConfig(Section):
    """Campaign target lists: where definitions live, the contact policy, suppression inputs."""

    campaigns_dir: Annotated[str, Field(strict=True, min_length=1)] = "conf/campaigns"  # relative: to the repository
    contact_policy: ContactPolicy = ContactPolicy()
    max_master_age_days: Annotated[int, Field(strict=True, ge=0)] = 2  # newest subscriber extract vs the date
    opt_out_path: StrictStr = ""  # a CSV with an msisdn column in any format ("": none)
    exports_dir: StrictStr = ""  # where treatment lists are handed over as files ("": <root>/exports)
    measure: MeasureConfig = MeasureConfig()
    jdbc: JdbcConfig = JdbcConfig()


class Settings(Section):
    root: StrictStr
    env: StrictStr
    spark: SparkConfig
    logging: LoggingConfig
    identity: IdentityConfig
    ingest: IngestConfig
    features: FeaturesConfig
    labels: LabelsConfig
    kpis: KpisConfig
    generate: GenerateConfig
    clv: ClvConfig = ClvConfig()
    segments: SegmentsConfig = SegmentsConfig()
    churn: ChurnConfig = ChurnConfig()
    publish: PublishConfig = PublishConfig()
    uplift: UpliftConfig = UpliftConfig()
    mlflow: MlflowConfig = MlflowConfig()
