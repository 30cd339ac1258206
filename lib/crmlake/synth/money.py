"""Money: prepaid top-ups, postpaid bills on each line's cycle day and their payments (on time,
late, or never), all landing as the ``recharges`` entity."""

from __future__ import annotations

import math

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.core.settings import IdentityConfig
from crmlake.synth.draws import _case, _date_str, _hour_sec, _int_below, _key, _money, _pick, _ts_str, _u, _x
from crmlake.synth.msisdn import _msisdn_as_exported
from crmlake.synth.params import (
    AVG_PREPAID_SPEND_PER_EVENT,
    BILL_CHANNEL,
    BILL_CYCLE_DAYS,
    BILL_EXTRA_MAX,
    BILL_ROUNDING_IRR,
    BILL_RUN_HOUR,
    CURRENCY,
    DEFAULT_MONTH,
    HOUR_WEIGHTS_OFFICE,
    HOUR_WEIGHTS_USAGE,
    LATE_PAYMENT_MAX_DAYS,
    MAX_TOPUP_PROB,
    MONTHLY_FEE_IRR,
    ODD_TOPUP_SHARE,
    PAYMENT_CHANNELS,
    PAYMENT_DUE_DAYS,
    TOPUP_CHANNELS,
    TOPUP_DAYS_OF_SPEND,
    TOPUP_DENOMINATIONS,
    GenParams,
)


def recharges_df(spark: SparkSession, subs_df: DataFrame, sub_days_df: DataFrame, p: GenParams,
                 ident: IdentityConfig) -> DataFrame:  # fmt: skip
    """Prepaid top-ups (the more a line spends the more often, so they fade before churn),
    postpaid bills on the line's cycle day and their payments (on time, late, or never)."""
    usual_spend = f"intensity * {p.events_per_day * AVG_PREPAID_SPEND_PER_EVENT * TOPUP_DAYS_OF_SPEND!r}D"
    usual = " ".join(f"WHEN {usual_spend} >= {d} THEN {float(d)!r}D" for d in reversed(TOPUP_DENOMINATIONS[1:]))
    topups = sub_days_df.where("plan_type = 'prepaid'").withColumn(
        "usual_topup", _x(f"CASE {usual} ELSE {float(TOPUP_DENOMINATIONS[0])!r}D END")
    )
    spend = f"lam * {AVG_PREPAID_SPEND_PER_EVENT}D"
    topups = topups.where(_x(f"{_u('bk', 'topup')} < least({MAX_TOPUP_PROB!r}D, {spend} / usual_topup)"))
    topups = topups.withColumn("rk", _x(_key(p.seed, "topup", "sub_id", "day")))
    odd = _pick(_u("rk", "odd_amount"), [(float(d), 1.0) for d in TOPUP_DENOMINATIONS])
    topups = topups.select(
        "sub_id", "nat", "day", "rk",
        _x("concat('T', date_compact, '-', sub_id)").alias("txn_id"),
        _x(_hour_sec("rk", "topup_time", HOUR_WEIGHTS_USAGE)).alias("sec"),
        F.lit("topup").alias("txn_type"),
        _x(f"CASE WHEN {_u('rk', 'odd_topup')} < {ODD_TOPUP_SHARE!r}D THEN {odd} ELSE usual_topup END")
        .alias("value"),
        _x(_pick(_u("rk", "channel"), TOPUP_CHANNELS)).alias("channel"),
    )  # fmt: skip

    months = spark.range(DEFAULT_MONTH - 1, math.ceil(p.total_days / BILL_CYCLE_DAYS) + 1, numPartitions=1)
    bills = subs_df.where("plan_type = 'postpaid'").crossJoin(
        F.broadcast(months.select(F.col("id").cast("int").alias("month")))
    )
    month_start = p.start.replace(day=1).isoformat()
    bill_date = f"date_add(add_months(DATE'{month_start}', month), bill_cycle_day - 1)"
    bills = bills.withColumns({
        "bill_day": _x(f"datediff({bill_date}, DATE'{p.start.isoformat()}')"),
        "bill_month": _x(f"date_format({bill_date}, 'yyyyMM')"),
        "mk": _x(_key(p.seed, "bill", "sub_id", "month")),
    })  # fmt: skip
    bills = bills.where("bill_day > activation_day AND (churn_day IS NULL OR bill_day < churn_day)")
    tariff = "CASE WHEN tariff_change_day <= bill_day THEN tariff_new ELSE tariff END"
    extra = f"{_u('mk', 'extra')} * least(intensity, 3D) / 3D * {BILL_EXTRA_MAX!r}D"
    fee = _case(tariff, MONTHLY_FEE_IRR)
    on_time = f"bill_day + {_int_below('mk', 'pay_day', PAYMENT_DUE_DAYS + 1)}"
    late = f"bill_day + {PAYMENT_DUE_DAYS + 1} + {_int_below('mk', 'pay_late', LATE_PAYMENT_MAX_DAYS)}"
    bills = bills.withColumns({
        "value": _x(f"round({fee} * (1D + {extra}) / {BILL_ROUNDING_IRR}D) * {BILL_ROUNDING_IRR}D"),
        # a non-payer's defaulted bills have no payment
        "pay_day": _x(f"CASE payer_type WHEN 'on_time' THEN {on_time} WHEN 'late' THEN {late}"
                      f" WHEN 'non_payer' THEN CASE WHEN month < {DEFAULT_MONTH} THEN {on_time} END END"),
    })  # fmt: skip
    bill_rows = bills.where(f"bill_day >= 0 AND bill_day < {p.total_days}").select(
        "sub_id", "nat", F.col("bill_day").alias("day"),
        _x("xxhash64('bill_row', mk)").alias("rk"),
        _x("concat('B', bill_month, '-', sub_id)").alias("txn_id"),
        _x(f"{BILL_RUN_HOUR * 3600} + {_int_below('mk', 'bill_sec', 3600)}").alias("sec"),
        F.lit("bill").alias("txn_type"), "value", F.lit(BILL_CHANNEL).alias("channel"),
    )  # fmt: skip
    payment_rows = bills.where(
        f"pay_day >= 0 AND pay_day < {p.total_days} AND (churn_day IS NULL OR pay_day < churn_day)"
    ).select(
        "sub_id", "nat", F.col("pay_day").alias("day"),
        _x("xxhash64('payment_row', mk)").alias("rk"),
        _x("concat('P', bill_month, '-', sub_id)").alias("txn_id"),
        _x(_hour_sec("mk", "pay_time", HOUR_WEIGHTS_OFFICE)).alias("sec"),
        F.lit("payment").alias("txn_type"), "value",
        _x(_pick(_u("mk", "pay_channel"), PAYMENT_CHANNELS)).alias("channel"),
    )  # fmt: skip
    rows = topups.unionByName(bill_rows).unionByName(payment_rows)
    rows = rows.withColumn("date", _x(_date_str(p, "day")))
    return rows.select(
        "sub_id", "nat", "day", "rk", "date", F.col("txn_id").alias("key"), "value",
        "txn_id",
        _x(_msisdn_as_exported("nat", _u("rk", "msisdn_form"), ident)).alias("msisdn"),
        _x(_ts_str("date", "sec")).alias("txn_time"),
        "txn_type",
        _x(_money("value")).alias("amount"),
        F.lit(CURRENCY).alias("currency"),
        "channel",
    )  # fmt: skip
