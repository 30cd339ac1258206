"""What the lifetime-value models are fitted on: the operator's own top-ups and postpaid lines,
or a team's own transactions and subscriptions named in config (bring your own data).

Either way the models see the same columns: transactions ``customer_id``, ``time``, ``amount``;
subscriptions ``customer_id``, ``group``, ``start``, ``end``, ``amount`` (revenue per contract
period, null where unknown). Bring-your-own columns are parsed here, and a value that cannot be
read stops the run with the file, column and examples named — nothing is dropped silently.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from crmlake.core.errors import BadValuesError, MissingColumnsError
from crmlake.core.settings import ClvSubscriptions, ClvTransactions
from crmlake.gold.features import filter_in_base, subscribers_as_of

EXAMPLES = 5
# Text dates that need no pattern: ISO dates and timestamps, and the compact yyyyMMdd of many
# exports (and of the CDNOW data set).
DATE_PATTERNS = ("yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd", "yyyyMMdd", "yyyy/MM/dd")


def parse_time(column: Column, pattern: str = "") -> Column:
    """A date or timestamp column from text or numbers: the given pattern, else the common ones."""
    text = column.cast("string")
    if pattern:
        return F.try_to_timestamp(text, F.lit(pattern))
    return F.coalesce(*[F.try_to_timestamp(text, F.lit(p)) for p in DATE_PATTERNS])


def _require(df: DataFrame, columns: dict[str, str], path: str, section: str) -> None:
    missing = [f"{column} (clv.{section}.{key})" for key, column in columns.items() if column not in df.columns]
    if missing:
        raise MissingColumnsError(f"{path} lacks {', '.join(missing)}; it has {', '.join(df.columns)}")


def _refuse_bad(df: DataFrame, checks: dict[str, tuple[str, Column]], path: str) -> None:
    """Raise :class:`BadValuesError` when any row fails a check: per column, how many rows and a
    few examples with their file and customer. ``df`` keeps each mapped column as it arrived in
    ``_<key>_raw``; a check names its key and the source column."""
    failing = [F.sum(F.when(bad, 1).otherwise(0)).alias(name) for name, (_, bad) in checks.items()]
    counts = df.agg(*failing).first().asDict()
    problems = []
    for name, n in counts.items():
        if not n:
            continue
        raw, bad = checks[name]
        key = name.split(" ")[0]
        examples = (
            df.where(bad)
            .select(
                F.input_file_name().alias("file"),
                F.col("_customer_raw").cast("string"),
                F.col(f"_{key}_raw").cast("string"),
            )
            .limit(EXAMPLES)
            .collect()
        )
        shown = "; ".join(f"{e[0].rsplit('/', 1)[-1]}: customer {e[1]!r} has {e[2]!r}" for e in examples)
        problems.append(f"column {raw!r} ({name}): {n} row(s) cannot be read, e.g. {shown}")
    if problems:
        raise BadValuesError(f"{path}: " + " | ".join(problems))


def byo_transactions(raw_df: DataFrame, section: ClvTransactions) -> DataFrame:
    """A team's transactions → ``customer_id``, ``time``, ``amount``."""
    mapping = {"customer": section.customer, "time": section.time, "amount": section.amount}
    _require(raw_df, mapping, section.path, "transactions")
    parsed_df = raw_df.select(
        F.col(section.customer).cast("string").alias("customer_id"),
        parse_time(F.col(section.time), section.time_format).alias("time"),
        F.col(section.amount).cast("string").try_cast("double").alias("amount"),
        F.col(section.customer).alias("_customer_raw"),
        F.col(section.time).alias("_time_raw"),
        F.col(section.amount).alias("_amount_raw"),
    )
    _refuse_bad(
        parsed_df,
        {
            "customer": (section.customer, F.col("customer_id").isNull()),
            "time": (section.time, F.col("time").isNull()),
            "amount": (section.amount, F.col("amount").isNull()),
        },
        section.path,
    )
    return parsed_df.select("customer_id", "time", "amount")


def byo_subscriptions(raw_df: DataFrame, section: ClvSubscriptions) -> DataFrame:
    """A team's subscriptions → ``customer_id``, ``group`` (the cohort, or ``all``), ``start``,
    ``end`` (null while active), ``amount`` per period (null without an amount column)."""
    mapping = {"customer": section.customer, "start": section.start, "end": section.end}
    mapping.update({k: v for k, v in (("cohort", section.cohort), ("amount", section.amount)) if v})
    _require(raw_df, mapping, section.path, "subscriptions")
    end_text = F.trim(F.col(section.end).cast("string"))
    has_end = F.col(section.end).isNotNull() & (end_text != "")
    parsed_df = raw_df.select(
        F.col(section.customer).cast("string").alias("customer_id"),
        (F.col(section.cohort).cast("string") if section.cohort else F.lit("all")).alias("group"),
        F.to_date(parse_time(F.col(section.start), section.time_format)).alias("start"),
        F.when(has_end, F.to_date(parse_time(F.col(section.end), section.time_format))).alias("end"),
        (
            F.col(section.amount).cast("string").try_cast("double") if section.amount else F.lit(None).cast("double")
        ).alias("amount"),
        has_end.alias("_has_end"),
        *[F.col(c).alias(f"_{k}_raw") for k, c in mapping.items()],
    )
    checks = {
        "customer": (section.customer, F.col("customer_id").isNull()),
        "start": (section.start, F.col("start").isNull()),
        "end": (section.end, F.col("_has_end") & F.col("end").isNull()),
        "end before start": (section.end, F.coalesce(F.col("end") < F.col("start"), F.lit(False))),
    }
    if section.cohort:
        checks["cohort"] = (section.cohort, F.col("group").isNull())
    if section.amount:
        checks["amount"] = (section.amount, F.col(f"_{'amount'}_raw").isNotNull() & F.col("amount").isNull())
    _refuse_bad(parsed_df, checks, section.path)
    return parsed_df.select("customer_id", "group", "start", "end", "amount")


def operator_transactions(history_df: DataFrame, recharges_df: DataFrame, as_of: dt.date) -> DataFrame:
    """Top-ups of the lines that are prepaid on ``as_of`` (including lines gone by then: the
    model learns from customers who stopped as well). Every top-up is kept, including those after
    ``as_of``, which the holdout report compares against."""
    prepaid_df = subscribers_as_of(history_df, as_of).where(F.col("plan_type") == "prepaid").select("subscriber_key")
    return (
        recharges_df.where(F.col("txn_type") == "topup")
        .join(prepaid_df, on="subscriber_key", how="left_semi")
        .select(
            F.col("subscriber_key").alias("customer_id"),
            F.col("txn_time").alias("time"),
            F.col("amount").cast("double").alias("amount"),
        )
    )


def operator_subscriptions(
    history_df: DataFrame, recharges_df: DataFrame, as_of: dt.date, cohort_by: str, period_months: int
) -> DataFrame:
    """The lines that are postpaid on ``as_of``, active or not: ``group`` is the acquisition
    cohort (activation year, quarter or month) and tariff; ``amount`` per contract period is the
    mean bill of the 90 days to ``as_of`` times the months in a period (null without a bill)."""
    master_df = subscribers_as_of(history_df, as_of).where(F.col("plan_type") == "postpaid")
    day = F.lit(as_of).cast("date")
    bills_df = (
        recharges_df.where((F.col("txn_type") == "bill") & F.col("event_date").between(F.date_sub(day, 89), day))
        .groupBy("subscriber_key")
        .agg((F.avg(F.col("amount").cast("double")) * period_months).alias("amount"))
    )
    activated = F.col("activation_date")
    cohort = {
        "year": F.date_format(activated, "yyyy"),
        "quarter": F.concat(F.date_format(activated, "yyyy"), F.lit("Q"), F.quarter(activated).cast("string")),
        "month": F.date_format(activated, "yyyy-MM"),
    }[cohort_by]
    ended = F.col("deactivation_date").isNotNull() | (F.col("status") == "deactivated")
    return master_df.join(bills_df, on="subscriber_key", how="left").select(
        F.col("subscriber_key").alias("customer_id"),
        F.concat(F.lit("cohort="), cohort, F.lit("|tariff="), F.col("tariff")).alias("group"),
        F.col("activation_date").alias("start"),
        F.when(ended, F.coalesce("deactivation_date", "valid_from")).alias("end"),
        "amount",
    )


def in_base(history_df: DataFrame, as_of: dt.date) -> DataFrame:
    """``customer_id`` of the lines in the base on ``as_of``: the operator's lines to score."""
    return filter_in_base(subscribers_as_of(history_df, as_of), as_of).select(
        F.col("subscriber_key").alias("customer_id")
    )
