"""Suppression, contact policy, ranking under the cap and the control group, on constructed
cases and, for opt-outs, as a property over generated populations."""

from __future__ import annotations

import datetime as dt
import hashlib
import random

import pytest
from crmlake.core.config import load_config
from crmlake.core.errors import BadValuesError
from crmlake.publish.targets import (
    CONTROL,
    assign_groups,
    held_by_contact_policy,
    suppressed,
    take_ranked,
)
from crmlake.silver.identity import hmac_sha256_hex, keys_of_listed_numbers
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

D = dt.date(2026, 2, 1)
KEY = b"publish-test-key"


def test_control_draw_is_stable_engine_free_at_the_fraction_and_blind_to_rank(spark):
    keys = [f"sub{i:05d}" for i in range(20_000)]
    df = spark.createDataFrame([(k, i) for i, k in enumerate(keys)], "subscriber_key string, rank int")
    grouped = {r["subscriber_key"]: r["group"] for r in assign_groups(df, "ret-1", 0.2).collect()}
    controls = sum(g == CONTROL for g in grouped.values())
    assert abs(controls - 4_000) < 4 * (20_000 * 0.2 * 0.8) ** 0.5  # within 4 standard deviations
    # the same draw computed without Spark: the first 52 bits of sha-256("<campaign>:<key>")
    python = {k: int(hashlib.sha256(f"ret-1:{k}".encode()).hexdigest()[:13], 16) / 16**13 < 0.2 for k in keys}
    assert all((grouped[k] == CONTROL) == python[k] for k in keys)
    # reversed ranks, another order, a rerun: the same groups
    shuffled = spark.createDataFrame([(k, -i) for i, k in enumerate(reversed(keys))], "subscriber_key string, rank int")
    assert {r["subscriber_key"]: r["group"] for r in assign_groups(shuffled, "ret-1", 0.2).collect()} == grouped
    # another campaign draws independently: about 20 % of this one's controls are controls there too
    other = {r["subscriber_key"] for r in assign_groups(df, "upsell-7", 0.2).where(F.col("group") == CONTROL).collect()}
    both = sum(grouped[k] == CONTROL for k in other)
    assert abs(both - 800) < 4 * (4_000 * 0.2 * 0.8) ** 0.5
    # a rank column in the draw would show as a trend of control share across the ranks
    top, bottom = [sum(grouped[k] == CONTROL for k in part) for part in (keys[:10_000], keys[10_000:])]
    assert abs(top - bottom) < 4 * (2 * 10_000 * 0.16) ** 0.5


def test_suppression_names_every_reason(spark):
    eligible = spark.createDataFrame([(k,) for k in "abcdefg"], "subscriber_key string")
    master = spark.createDataFrame(
        [
            ("a", True, False),
            ("b", False, False),
            ("c", True, True),
            ("d", None, False),
            ("e", True, False),
            ("f", True, False),
        ],  # fmt: skip
        "subscriber_key string, is_marketing_consent boolean, is_do_not_contact boolean",
    )
    base = spark.createDataFrame([(k,) for k in "abcdef"], "subscriber_key string")
    opted = spark.createDataFrame([("e",), ("zz",)], "subscriber_key string")
    erased = spark.createDataFrame([("f",)], "subscriber_key string")
    got = suppressed(eligible, master, base, opted, erased)
    expected = [
        ("b", "marketing_opt_out"), ("c", "do_not_contact"), ("d", "marketing_opt_out"), ("e", "opt_out_list"),
        ("f", "erased"), ("g", "not_in_base"), ("g", "no_master_row"), ("g", "marketing_opt_out"),
    ]  # fmt: skip
    assertDataFrameEqual(got, spark.createDataFrame(expected, "subscriber_key string, reason string"))


def test_contact_policy_limits_contacts_in_the_window_and_keeps_a_quiet_period(spark):
    eligible = spark.createDataFrame([(k,) for k in "abcde"], "subscriber_key string")
    day = lambda n: D - dt.timedelta(days=n)  # noqa: E731
    contacts = spark.createDataFrame(
        [
            ("a", day(20)),
            ("a", day(10)),
            ("b", day(2)),
            ("c", day(40)),
            ("c", day(35)),
            ("d", day(29)),
            ("d", day(25)),
            ("e", D),
        ],  # fmt: skip
        "subscriber_key string, contact_date date",
    )
    # at most 2 contacts in 30 days, 3 quiet days after a contact; D's own lists are not history
    got = held_by_contact_policy(eligible, contacts, D, max_contacts=2, window_days=30, quiet_days=3)
    expected = [("a", "contact_limit"), ("b", "quiet_period"), ("d", "contact_limit")]
    assertDataFrameEqual(got, spark.createDataFrame(expected, "subscriber_key string, reason string"))


def test_the_cap_takes_the_best_ranked_ties_by_key_and_unscored_last(spark):
    df = spark.createDataFrame(
        [("a", 0.5), ("b", 0.9), ("c", None), ("d", 0.5), ("e", 0.1)], "subscriber_key string, rank_score double"
    )
    got = take_ranked(df, 4).select("subscriber_key", "rank")
    expected = [("b", 1), ("a", 2), ("d", 3), ("e", 4)]
    assertDataFrameEqual(got, spark.createDataFrame(expected, "subscriber_key string, rank int"))


def _formats(national: str) -> list[str]:
    """Ways an operator's systems write +98 912 345 6789."""
    persian = national.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    return [f"0{national}", f"+98{national}", f"0098{national}", f"98{national}", national,
            f"+98-{national[:3]}-{national[3:6]}-{national[6:]}", f"0{national[:3]} {national[3:6]} {national[6:]}",
            f"0{persian}"]  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_opted_out_subscriber_is_never_kept_whatever_the_format_of_their_number(spark, seed):
    rng = random.Random(seed)
    identity = load_config().settings.identity
    nationals = [f"9{rng.randrange(10**9):09d}" for _ in range(400)]
    nationals = sorted(set(nationals))
    master_rows = [(n, rng.random() < 0.8, rng.random() < 0.05) for n in nationals]
    opted = rng.sample(nationals, 60)
    subs = spark.createDataFrame(
        master_rows, "national string, is_marketing_consent boolean, is_do_not_contact boolean"
    )
    subs = subs.withColumn("subscriber_key", hmac_sha256_hex(F.concat(F.lit("+98"), F.col("national")), KEY))
    opt_list = spark.createDataFrame([(rng.choice(_formats(n)),) for n in opted], "msisdn string")
    out = suppressed(subs, subs, subs, keys_of_listed_numbers(opt_list, identity, KEY, "opt_out.csv"))
    kept = subs.join(out, on="subscriber_key", how="left_anti")
    kept_nationals = {r["national"] for r in kept.select("national").collect()}
    assert kept_nationals, "the population keeps someone"
    assert not kept_nationals & set(opted)
    no = {n for n, consent, dnc in master_rows if not consent or dnc}
    assert not kept_nationals & no


def test_an_unreadable_number_in_the_opt_out_list_stops_the_run_naming_it(spark):
    identity = load_config().settings.identity
    numbers = spark.createDataFrame([("09123456789",), ("12345",), ("",)], "msisdn string")
    with pytest.raises(BadValuesError, match=r"opt_out.csv: 1 number\(s\) in column 'msisdn' .*'12345'"):
        keys_of_listed_numbers(numbers, identity, KEY, "opt_out.csv")
