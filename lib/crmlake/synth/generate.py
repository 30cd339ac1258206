"""A synthetic mobile operator, generated distributed in Spark.

:func:`generate_operator` writes every source entity's landing files under
``<root>/landing/<entity>/date=YYYY-MM-DD/`` (format and columns from :mod:`crmlake.schemas`)
and the ground truth, which the pipeline never reads, under ``<root>/truth/``.

How it stays distributed and reproducible:

* Every random draw is a column expression. A uniform is ``xxhash64`` of the seed, a salt that
  names the draw and the row's identity (subscriber, day, sequence number), so a value does not
  depend on partitioning and the same seed writes the same file contents. Normal draws use
  Box-Muller on two such uniforms. The draws are built as SQL text (``F.expr``): one call into
  the JVM per draw instead of dozens, which keeps building the plans fast.
* Usage, the big feed, is one row per subscriber-day carrying an event count, exploded with
  ``sequence``; only those small rows are shuffled, to group each file's records.
* Files are written partitioned by arrival date and sorted within each file by a unique key.
  The entities' writes are independent and submitted together, so their fixed costs overlap.
  Row counts come from an ``Observation`` on each write, not from an extra pass.

The operator: subscribers carry latent traits (usage intensity, complaint propensity, price
sensitivity, competitor exposure, home-cell quality, uplift type) and a churn date drawn from
competing cause-specific hazards. Usage and top-ups fade before churn and stop at it; care
contacts rise after poor network days and before churn; campaign contact keeps persuadables
and pushes sleeping dogs away. Bad records are injected at ``bad_rate`` and listed, with their
kind, in ``truth/bad_records``.

Readers of the CSV files should use ``header=true`` and ``escape='"'`` (a field holding a comma
or a quote is quoted and its quotes doubled, as RFC 4180 has it); JSON files hold one object a
line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from crmlake.contracts.entities import ENTITIES
from crmlake.core.errors import ConfigError
from crmlake.core.log import log, stage

# fmt: off
# --- numbers -----------------------------------------------------------------------------------
HASH_BITS = 53  # a uniform takes the top 53 bits of a 64-bit hash: all a double holds
UNIT = float(1 << HASH_BITS)
CURRENCY = "IRR"
SECONDS_PER_DAY = 86_400
DAYS_PER_MONTH = 30.0
# National numbers are <prefix><7 digits>. No subscriber gets UNKNOWN_PREFIX, so a number there
# is a valid mobile number that no extract knows.
OPERATOR_PREFIXES = ("912", "913", "914", "915", "916", "917", "918", "919", "990", "991")
UNKNOWN_PREFIX = "999"
LINE_DIGITS = 7
LINE_SPACE = 10**LINE_DIGITS
NUMBER_STRIDE = 7_919  # a prime, coprime with LINE_SPACE: spreads lines over a prefix's range
MSISDN_FORMS = (("local", 0.85), ("e164", 0.10), ("intl", 0.05))


# --- geography and network ---------------------------------------------------------------------
@dataclass(frozen=True)
class Region:
    name: str
    code: str
    weight: float  # share of subscribers (renormalized over the regions in use)
    cities: tuple[str, ...]  # the first is the main city
    quality: float  # network quality, 1 = national average
    competition: float  # competitor pressure, 1 = national average
    five_g_share: float  # share of 5G cells


REGIONS = (
    Region("Tehran", "THR", 0.28, ("Tehran", "Eslamshahr", "Shahriar"), 1.15, 1.4, 0.30),
    Region("Isfahan", "ISF", 0.12, ("Isfahan", "Kashan", "Najafabad"), 1.05, 1.0, 0.15),
    Region("Mashhad", "MHD", 0.13, ("Mashhad", "Neyshabur", "Sabzevar"), 0.95, 0.9, 0.10),
    Region("Shiraz", "SYZ", 0.10, ("Shiraz", "Marvdasht"), 1.00, 1.0, 0.12),
    Region("Tabriz", "TBZ", 0.10, ("Tabriz", "Maragheh", "Marand"), 0.95, 0.9, 0.10),
    Region("Karaj", "KRJ", 0.10, ("Karaj", "Fardis"), 1.05, 1.2, 0.15),
    Region("Ahvaz", "AWZ", 0.10, ("Ahvaz", "Dezful", "Abadan"), 0.80, 0.8, 0.05),
    Region("Qom", "QOM", 0.07, ("Qom",), 0.90, 0.7, 0.05),
    Region("Rasht", "RAS", 0.06, ("Rasht", "Bandar Anzali"), 0.90, 0.8, 0.05),
    Region("Kermanshah", "KSH", 0.05, ("Kermanshah", "Eslamabad-e Gharb"), 0.85, 0.7, 0.03),
)
MAIN_CITY_SHARE = 0.7
CELL_TECH_MIX_NON_5G = (("4G", 0.75), ("3G", 0.20), ("2G", 0.05))
TECH_THROUGHPUT_MBPS = {"2G": 0.1, "3G": 4.0, "4G": 28.0, "5G": 180.0}
BASE_DROP_RATE = 0.006
POOR_CELL_DROP_FACTOR = 3.5
POOR_CELL_THROUGHPUT_FACTOR = 0.35
POOR_CELL_DOWNTIME_PCT = 1.5  # mean percentage points of a day a poor cell is down
HEALTHY_CELL_DOWNTIME_PCT = 0.2
OUTAGE_DROP_FACTOR = 4.0
OUTAGE_THROUGHPUT_FACTOR = 0.3
OUTAGE_AVAILABILITY_PCT = (60.0, 95.0)
CELL_NOISE_SIGMA = 0.3
POOR_DAY_DROP_RATE = 0.025  # a cell-day with more drops, less availability or an outage is poor
POOR_DAY_AVAILABILITY_PCT = 97.0

# --- subscribers -------------------------------------------------------------------------------
PREPAID_TARIFFS = (("PRE_BASIC", 0.55), ("PRE_DATA", 0.40), ("PRE_YOUTH", 0.05))
YOUTH_PREPAID_TARIFFS = (("PRE_BASIC", 0.30), ("PRE_DATA", 0.30), ("PRE_YOUTH", 0.40))
POSTPAID_TARIFFS = (("POST_S", 0.45), ("POST_M", 0.35), ("POST_L", 0.20))
B2B_TARIFFS = (("BIZ_S", 0.40), ("BIZ_M", 0.40), ("BIZ_L", 0.20))
MONTHLY_FEE_IRR = {"POST_S": 2_500_000, "POST_M": 4_500_000, "POST_L": 8_000_000,
                   "BIZ_S": 3_500_000, "BIZ_M": 7_000_000, "BIZ_L": 15_000_000}
DATA_TARIFFS = ("PRE_DATA", "PRE_YOUTH", "POST_L", "BIZ_L")
AGE_MIX = (("18-24", 0.16), ("25-34", 0.27), ("35-44", 0.24), ("45-54", 0.16), ("55-64", 0.11),
           ("65+", 0.06))
GENDER_MIX = {"B2C": (("F", 0.47), ("M", 0.50), ("U", 0.03)),
              "B2B": (("F", 0.30), ("M", 0.50), ("U", 0.20))}
DEVICE_TYPE_MIX = (("smartphone", 0.86), ("feature_phone", 0.09), ("tablet", 0.03), ("mifi", 0.02))
DEVICE_BRANDS = {
    "smartphone": (("Samsung", 0.38), ("Xiaomi", 0.27), ("Apple", 0.14), ("Huawei", 0.08),
                   ("GLX", 0.05), ("Nokia", 0.04), ("Honor", 0.04)),
    "feature_phone": (("Nokia", 0.6), ("Samsung", 0.2), ("GLX", 0.2)),
    "tablet": (("Apple", 0.45), ("Samsung", 0.40), ("Lenovo", 0.15)),
    "mifi": (("Huawei", 0.5), ("ZTE", 0.3), ("TP-Link", 0.2)),
}
B2B_LINES_PER_ACCOUNT = 6
B2B_NAMED_USER_SHARE = 0.5  # B2B lines that name a person besides the company
NAME_CULTURES = (("fa_latin", 0.60), ("fa", 0.25), ("tr", 0.11), ("ja", 0.04))
FIRST_NAMES = {
    "fa_latin": ("Ali", "Reza", "Mohammad", "Hossein", "Mehdi", "Amir", "Zahra", "Fatemeh",
                 "Maryam", "Sara", "Narges", "Leila"),
    "fa": ("علی", "رضا", "محمد", "حسین", "مهدی", "زهرا", "فاطمه", "مریم", "نرگس", "لیلا"),
    "tr": ("Ayşe", "Gülşen", "Özge", "Çağrı", "Şükrü", "İsmail", "Ümit", "Ebru"),
    "ja": ("太郎", "花子", "さくら", "健", "陽菜", "蓮"),
}
LAST_NAMES = {
    "fa_latin": ("Ahmadi", "Hosseini", "Mohammadi", "Rezaei", "Karimi", "Moradi", "Jafari",
                 "Rahimi", "Tehrani", "Esfahani"),
    "fa": ("احمدی", "حسینی", "محمدی", "رضایی", "کریمی", "مرادی", "جعفری"),
    "tr": ("Yılmaz", "Öztürk", "Şahin", "Çelik", "Doğan", "Güneş"),
    "ja": ("佐藤", "鈴木", "高橋", "田中", "渡辺"),
}
# B2B lines carry the company as last name; commas and quotes exercise CSV quoting.
COMPANY_NAMES = ("Pars Trading Co., Ltd.", 'Kish "Blue Gulf" Shipping', "Arya Systems",
                 "شرکت نوآوران پارس", "Zagros Cement, Inc.", "Caspian Foods")
MIN_LIFE_DAYS = 7  # no line churns in its first week
MAX_TENURE_DAYS = 20 * 365
MAX_INTENSITY = 40.0
WEEKDAY_NUMBERS = {"Sun": 1, "Mon": 2, "Tue": 3, "Wed": 4, "Thu": 5, "Fri": 6, "Sat": 7}

# --- churn and campaigns -----------------------------------------------------------------------
CHURN_CAUSES = ("short_tenure", "poor_network", "complaints", "price_pressure", "competitor_offer")
BACKLASH_CAUSE = "campaign_backlash"  # a sleeping dog that a contact pushed away
SHORT_TENURE_RISK = 3.0  # hazard multiplier of a line younger than short_tenure_days
POOR_CELL_RISK = 4.0  # hazard multiplier of a line whose home cell is chronically poor
COMPLAINT_SIGMA, PRICE_SIGMA, COMPETITOR_SIGMA = 0.8, 0.6, 0.5  # of mean-one lognormal traits
UPLIFT_TYPES = ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")
UPLIFT_CHURN_RISK = {"persuadable": 2.0, "sure_thing": 0.4, "lost_cause": 1.8, "sleeping_dog": 0.8}
B2B_SLEEPING_DOG_FACTOR = 0.6
CHURN_REASONS_BY_CAUSE = {
    "short_tenure": (("service", 0.4), ("price", 0.3), ("relocation", 0.3)),
    "poor_network": (("network", 0.8), ("port_out", 0.2)),
    "complaints": (("service", 0.7), ("port_out", 0.3)),
    "price_pressure": (("price", 0.7), ("port_out", 0.3)),
    "competitor_offer": (("port_out", 0.6), ("competitor", 0.4)),
    BACKLASH_CAUSE: (("port_out", 0.5), ("service", 0.5)),
}
PREPAID_CHURN_REASON = "inactivity"
CAMPAIGN_CHANNEL_CYCLE = ("sms", "push", "email", "call")
DELIVERY_RATE = {"sms": 0.97, "push": 0.85, "email": 0.90, "call": 0.60}
OFFER_PRICES_IRR = (500_000, 1_000_000, 2_000_000)
ACCEPT_RATE = {"persuadable": 0.45, "sure_thing": 0.55, "lost_cause": 0.03, "sleeping_dog": 0.0}
RESPONSE_RATE = 0.12  # delivered contacts that respond without accepting
BACKLASH_LAG_DAYS = (2, 15)

# --- usage -------------------------------------------------------------------------------------
HOUR_WEIGHTS_USAGE = (2.0, 1.0, 0.6, 0.4, 0.4, 0.6, 1.5, 3.0, 4.5, 5.0, 5.0, 5.2, 5.5, 5.2, 5.0,
                      5.0, 5.2, 5.5, 6.0, 6.5, 7.0, 6.5, 5.0, 3.5)
HOUR_WEIGHTS_OFFICE = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.4, 1.0, 2.0, 2.2, 2.2, 1.8, 1.8, 2.0,
                       2.0, 1.8, 1.5, 1.2, 1.0, 0.8, 0.5, 0.2, 0.1)
SERVICE_MIX = {  # by usage profile (device and tariff)
    "voice_device": (("voice", 0.60), ("sms", 0.35), ("vas", 0.05)),
    "data_device": (("data", 0.95), ("vas", 0.05)),
    "data_tariff": (("voice", 0.20), ("sms", 0.08), ("data", 0.67), ("vas", 0.05)),
    "default": (("voice", 0.32), ("sms", 0.15), ("data", 0.48), ("vas", 0.05)),
}
RADIO_MIX = {
    "voice_device": (("2G", 0.6), ("3G", 0.4)),
    "data_device": (("3G", 0.15), ("4G", 0.75), ("5G", 0.10)),
    "data_tariff": (("2G", 0.04), ("3G", 0.14), ("4G", 0.67), ("5G", 0.15)),
    "default": (("2G", 0.04), ("3G", 0.14), ("4G", 0.67), ("5G", 0.15)),
}
OUTGOING_SHARE = 0.55  # of voice calls and SMS
DESTINATION_MIX = (("on_net", 0.60), ("off_net", 0.36), ("international", 0.04))
HOME_CELL_SHARE = 0.80
SAME_REGION_CELL_SHARE = 0.18  # the rest is anywhere in the country
VOICE_MEDIAN_S, VOICE_SIGMA, MAX_CALL_S = 95.0, 1.0, 7_200
SESSION_MEDIAN_S, SESSION_SIGMA, MAX_SESSION_S = 240.0, 1.2, 3_600
DATA_MEDIAN_BYTES, DATA_SIGMA = 2.0e6, 1.6
MAX_BYTES_PER_S = 5.0e7  # 400 Mbit/s: what a good record never exceeds
UPLINK_SHARE = (0.04, 0.15)
VOICE_RATE_PER_MIN = {"on_net": 6_000, "off_net": 9_000, "international": 60_000}
SMS_PRICE = {"on_net": 1_500, "off_net": 2_000, "international": 12_000}
DATA_PRICE_PER_MB = 400
VAS_PRICES = ((10_000, 0.5), (20_000, 0.3), (50_000, 0.2))
ROAMING_PRICE_FACTOR = 5.0
POSTPAID_OVER_BUNDLE_SHARE = 0.05  # postpaid records charged although a bundle covers most
ROAMING_USAGE_FACTOR = 0.3
SUSPENDED_USAGE_FACTOR = 0.2  # a suspended line only receives
POOR_DAY_USAGE_FACTOR = 0.9
MAX_EVENTS_PER_DAY = 1_500

# --- recharges ---------------------------------------------------------------------------------
AVG_PREPAID_SPEND_PER_EVENT = 8_000  # about the mean charge of the usage mix above, in IRR
TOPUP_DENOMINATIONS = (50_000, 100_000, 200_000, 500_000, 1_000_000)
TOPUP_DAYS_OF_SPEND = 4  # the usual voucher: the largest within this many days' spend
MAX_TOPUP_PROB = 0.9
ODD_TOPUP_SHARE = 0.1  # top-ups of another denomination than the usual one
TOPUP_CHANNELS = (("ussd", 0.30), ("app", 0.30), ("retail", 0.15), ("bank", 0.10),
                  ("voucher", 0.13), ("auto_debit", 0.02))
PAYMENT_CHANNELS = (("bank", 0.40), ("app", 0.35), ("auto_debit", 0.25))
BILL_CHANNEL = "billing"
BILL_RUN_HOUR = 3
BILL_EXTRA_MAX = 0.4  # usage beyond the bundle adds up to this share of the fee
BILL_ROUNDING_IRR = 1_000
BILL_CYCLE_DAYS = 28  # cycle days 1..28 exist in every month
PAYMENT_DUE_DAYS = 10
LATE_PAYMENT_MAX_DAYS = 25
SUSPEND_AFTER_DAYS = 7  # after the due date of an unpaid bill
DEFAULT_MONTH = -1  # non-payers stop paying from the bill of the month before the window

# --- care and surveys --------------------------------------------------------------------------
CARE_CHANNEL_MIX = (("call_centre", 0.40), ("app", 0.18), ("web", 0.08), ("chat", 0.14),
                    ("email", 0.05), ("social", 0.05), ("store", 0.10))
SELF_SERVICE_CHANNELS = ("app", "web")  # no agent
HANDLE_MEDIAN_S = {"call_centre": 360, "app": 120, "web": 150, "chat": 600, "email": 900,
                   "social": 420, "store": 1200}
HANDLE_SIGMA = 0.6
ESCALATION_HANDLE_FACTOR = 0.5
CARE_REASON_MIX = {
    "prepaid": (("recharge", 0.25), ("billing", 0.05), ("network_coverage", 0.12),
                ("data_speed", 0.15), ("device", 0.10), ("tariff_change", 0.12), ("roaming", 0.03),
                ("cancellation", 0.03), ("other", 0.15)),
    "postpaid": (("billing", 0.30), ("network_coverage", 0.12), ("data_speed", 0.13),
                 ("device", 0.08), ("tariff_change", 0.12), ("roaming", 0.05),
                 ("cancellation", 0.05), ("other", 0.15)),
}
NETWORK_REASONS = (("network_coverage", 0.55), ("data_speed", 0.45))
NETWORK_REASON_SHARE = 0.6  # of contacts right after a poor network day
CANCELLATION_SHARE_MAX = 0.5  # of contacts just before churn
POOR_NETWORK_CARE_BOOST = 3.0  # contact rate × (1 + this) after a poor network day
CHURN_CARE_BOOST = 4.0  # contact rate × (1 + this × fade progress) before churn
COMPLAINT_REASONS = ("billing", "network_coverage", "data_speed", "recharge", "cancellation")
COMPLAINT_SHARE, OTHER_COMPLAINT_SHARE = 0.7, 0.25  # of complaint reasons, of the others
RESOLVE_BASE, MAX_RESOLVE = 0.85, 0.95
POOR_NETWORK_RESOLVE_FACTOR = 0.6
ESCALATION_RESOLVED = ((0, 0.85), (1, 0.12), (2, 0.03))
ESCALATION_UNRESOLVED = ((0, 0.30), (1, 0.35), (2, 0.25), (3, 0.10))
FCR_RATE = 0.85
SUBSCRIBERS_PER_AGENT = 400
MIN_AGENTS = 8
NOTE_LANGUAGES = (("en", 0.60), ("fa", 0.32), ("tr", 0.05), ("ja", 0.03))
NOTES = {  # reason: (English, Persian)
    "billing": ('Customer disputes charges on last bill, says "never used roaming"',
                "مشترک به مبلغ قبض اعتراض دارد"),
    "network_coverage": ("No signal at home, calls drop after a minute",
                         "آنتن در منزل ضعیف است و تماس قطع می‌شود"),
    "data_speed": ("Mobile data very slow in the evening, speed test 0.3 Mbps",
                   "سرعت اینترنت شب‌ها خیلی کم است"),
    "device": ("Help with APN settings on new phone", "راهنمایی تنظیمات گوشی جدید"),
    "tariff_change": ("Asked for a cheaper plan, offered PRE_DATA", "درخواست تعرفه ارزان‌تر"),
    "roaming": ("Roaming not working in Istanbul, reset profile", "رومینگ در استانبول کار نمی‌کند"),
    "recharge": ("Top-up not credited, voucher checked", "شارژ به حساب نیامد"),
    "cancellation": ("Wants to cancel: competitor offers more data, retention offer declined",
                     "قصد لغو خط دارد؛ پیشنهاد رقیب بهتر است"),
    "other": ("General enquiry", "سوال عمومی"),
}
OTHER_LANGUAGE_NOTES = {"tr": "Müşteri geri arama istedi, şikâyet kaydı açıldı",
                        "ja": "お客様から折り返しの依頼あり"}
CSAT_DELAY_S = (600, 48 * 3600)
CSAT_MEAN = {"resolved": 4.4, "unresolved": 2.1}
CSAT_ESCALATION_PENALTY, CSAT_SD = 0.3, 0.8
NPS_BASE, NPS_SD = 8.2, 1.6
NPS_POOR_NETWORK_PENALTY = 2.5
NPS_COMPLAINT_PENALTY = 1.2  # per unit of complaint propensity above average
NPS_CHURN_PENALTY = 2.5  # when the line churns within NPS_CHURN_HORIZON_DAYS
NPS_CHURN_HORIZON_DAYS = 45
COMMENT_RATE = 0.4
COMMENTS = {  # score band: comments in several languages
    "low": ("Network is terrible, thinking of switching", "اینترنت خیلی ضعیف است",
            "Fatura çok yüksek", "電波が悪い"),
    "mid": ("OK, but the price went up", "قابل قبول، ولی گران شده", "まあまあです"),
    "high": ("Great service, thank you!", "خیلی خوب بود، ممنون", "Çok memnunum"),
}

# --- bad records -------------------------------------------------------------------------------
BAD_KINDS = ("malformed_line", "wrong_type", "missing_key", "odd_msisdn_format", "invalid_msisdn",
             "negative_value", "future_timestamp", "impossible_bytes", "unknown_enum", "duplicate",
             "non_ascii_text", "unknown_subscriber", "truncated_file")
_RECORD_KINDS = ("malformed_line", "wrong_type", "missing_key", "odd_msisdn_format",
                 "invalid_msisdn", "negative_value", "future_timestamp", "unknown_enum",
                 "duplicate", "unknown_subscriber")
KINDS_BY_ENTITY = {
    # usage has no free text, so non_ascii_text does not apply; truncated_file is a file kind
    "usage": (*_RECORD_KINDS, "impossible_bytes"),
    "recharges": _RECORD_KINDS,
    "subscribers": ("malformed_line", "wrong_type", "missing_key", "odd_msisdn_format",
                    "invalid_msisdn", "unknown_enum", "duplicate", "non_ascii_text"),
    "care_interactions": (*_RECORD_KINDS, "non_ascii_text"),
    "surveys": (*_RECORD_KINDS, "non_ascii_text"),
    "campaign_responses": _RECORD_KINDS,
    "network_cells": ("negative_value", "duplicate"),
}
NON_ASCII_NOTE = "مشترک از کیفیت شبکه ناراضی است — Şebeke çok yavaş — 電波が弱いです"
NON_ASCII_FIRST_NAME = "Gülşen"
NON_ASCII_LAST_NAME = "هاشمی-佐藤"
FUTURE_DAYS = (2, 10)  # a future timestamp lies this many days after its file's day
IMPOSSIBLE_BYTES = 10**15
IMPOSSIBLE_DURATION_S = 10
NEGATIVE_OFFSET = 1  # a negative value is -(good value + this): never -0
MALFORMED_VARIANTS = ("missing field", "extra field", "unbalanced quote")

# --- files -------------------------------------------------------------------------------------
# The CSV writer writes one pre-built line a row, under a header made of the column names.
_CSV_WRITE_OPTIONS = {"header": "true", "sep": "\u0001", "quote": "", "escapeQuotes": "false",
                      "ignoreLeadingWhiteSpace": "false", "ignoreTrailingWhiteSpace": "false",
                      "partitionOverwriteMode": "static"}
MAX_FILES_PER_DAY = 64
# The usage projection compiles to one large method, and HotSpot does not JIT-compile methods
# over 8000 bytes of bytecode: let Spark split such stages instead of running them interpreted.
GENERATE_SQL_CONF = {"spark.sql.codegen.hugeMethodLimit": "8000"}
ROWS_PER_WRITE_TASK = 500_000  # rows of the smaller entities one write task takes
# fmt: on


# --- parameters ----------------------------------------------------------------------------------

# float parameters that are not shares in [0, 1]
_UNBOUNDED_FLOATS = (
    "events_per_day", "intensity_sigma", "daily_noise_sigma", "mean_tenure_days", "monthly_churn"
)  # fmt: skip


@dataclass(frozen=True)
class GenParams:
    """The ``generate`` section of the configuration, typed and checked."""

    subscribers: int
    start: dt.date
    days: int
    seed: int
    bad_rate: float
    late_rate: float
    max_late_days: int
    regions: int
    cells_per_region: int
    prepaid_share: float
    b2b_share: float
    consent_share: float
    do_not_contact_share: float
    new_activation_share: float
    events_per_day: float
    monthly_churn: float
    campaigns: int
    usage_rows_per_file: int
    intensity_sigma: float
    daily_noise_sigma: float
    weekend_days: tuple[str, ...]
    weekend_factor: float
    roaming_rate: float
    mean_tenure_days: float
    short_tenure_days: int
    fade_days: int
    fade_floor: float
    prepaid_grace_days: int
    churn_cause_mix: dict[str, float]
    poor_cell_share: float
    outage_rate: float
    care_contact_rate: float
    csat_response_rate: float
    nps_monthly_share: float
    late_payer_share: float
    non_payer_share: float
    attribute_change_rate: float
    campaign_target_share: float
    campaign_treatment_share: float
    uplift_mix: dict[str, float]
    rescue_rate: float
    backlash_rate: float

    @classmethod
    def from_config(cls, gen: dict[str, Any]) -> GenParams:
        missing = [f.name for f in fields(cls) if f.name not in gen]
        if missing:
            raise ConfigError(f"generate config lacks keys {missing} (see conf/base/generate.yaml)")
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = gen[f.name]
            try:
                if f.type == "int":
                    values[f.name] = int(raw)
                elif f.type == "float":
                    values[f.name] = float(raw)
                elif f.type == "dt.date":
                    values[f.name] = dt.date.fromisoformat(str(raw))
                elif f.type.startswith("tuple"):
                    values[f.name] = tuple(str(x) for x in raw)
                else:
                    values[f.name] = {str(k): float(v) for k, v in dict(raw).items()}
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"generate.{f.name}: cannot read {raw!r} ({exc})") from None
        params = cls(**values)
        params.check()
        return params

    def check(self) -> None:
        problems = []
        capacity = len(OPERATOR_PREFIXES) * LINE_SPACE
        if not 1 <= self.subscribers <= capacity:
            problems.append(f"subscribers must be within 1..{capacity}")
        if not 1 <= self.regions <= len(REGIONS):
            problems.append(f"regions must be within 1..{len(REGIONS)}")
        for name in ("days", "cells_per_region", "usage_rows_per_file", "max_late_days"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        for f in fields(self):
            is_share = f.type == "float" and f.name not in _UNBOUNDED_FLOATS
            if is_share and not 0.0 <= getattr(self, f.name) <= 1.0:
                problems.append(f"{f.name} must be within [0, 1]")
        if not 0.0 <= self.monthly_churn < 1.0:
            problems.append("monthly_churn must be within [0, 1)")
        if self.late_payer_share + self.non_payer_share > 1.0:
            problems.append("late_payer_share + non_payer_share must not exceed 1")
        unknown_days = set(self.weekend_days) - set(WEEKDAY_NUMBERS)
        if unknown_days:
            problems.append(f"weekend_days {sorted(unknown_days)} not in {list(WEEKDAY_NUMBERS)}")
        for name, keys in (("churn_cause_mix", CHURN_CAUSES), ("uplift_mix", UPLIFT_TYPES)):
            mix = getattr(self, name)
            if set(mix) != set(keys) or min(mix.values()) < 0 or sum(mix.values()) <= 0:
                problems.append(f"{name} needs non-negative weights for exactly {list(keys)}")
        if problems:
            raise ConfigError("generate config: " + "; ".join(problems))

    @property
    def expected_usage_rows(self) -> float:
        """Usage records expected over the window (mean intensity of a median-one lognormal)."""
        per_day = self.subscribers * self.events_per_day * math.exp(self.intensity_sigma**2 / 2)
        return per_day * self.days

    @property
    def usage_files_per_day(self) -> int:
        """Usage files a day: expected records a day over usage_rows_per_file, at least one."""
        per_day = self.expected_usage_rows / self.days
        return max(1, min(MAX_FILES_PER_DAY, math.ceil(per_day / self.usage_rows_per_file)))

    @property
    def small_entity_tasks(self) -> int:
        """Write tasks of the smaller entities: enough for the daily subscriber extract."""
        return max(1, min(self.days, math.ceil(self.subscribers * self.days / ROWS_PER_WRITE_TASK)))


# --- SQL text for random draws and lookups --------------------------------------------------------


class Sql(str):
    """SQL text standing for a value (an expression or a column), not a string literal."""


def _sql(text: str) -> Sql:
    return Sql(f"({text})")


def _lit(value: Any) -> str:
    """``value`` as SQL: :class:`Sql` text as it is, Python values as literals."""
    if isinstance(value, Sql):
        return str(value)
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) < 2**31 else f"{value}L"
    if isinstance(value, float):
        return f"{value!r}D"
    escaped = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _key(seed: int, salt: str, *cols: str) -> Sql:
    """A 64-bit random key for a row: the seed, a salt naming the stream, the row's identity."""
    return _sql(f"xxhash64({seed}L, {_lit(salt)}, {', '.join(cols)})")


def _salt(salt: str) -> str:
    """A salt as a 64-bit literal (stable across runs): hashing a long is cheaper than a string."""
    return f"{int.from_bytes(hashlib.blake2b(salt.encode(), digest_size=8).digest(), 'big', signed=True)}L"


def _u(key: str, salt: str) -> Sql:
    """A uniform draw in [0, 1) for the row ``key``; different salts give independent draws."""
    return _sql(f"shiftrightunsigned(xxhash64({_salt(salt)}, {key}), {64 - HASH_BITS}) / {UNIT!r}D")


def _normal(key: str, salt: str) -> Sql:
    """A standard normal draw (Box-Muller; 1 - u is in (0, 1], so the log is finite)."""
    radius = f"sqrt(-2D * ln(1D - {_u(key, salt + ':r')}))"
    return _sql(f"{radius} * cos({_u(key, salt + ':t')} * {2.0 * math.pi!r}D)")


def _lognormal(key: str, salt: str, median: float | Sql, sigma: float) -> Sql:
    return _sql(f"exp({_normal(key, salt)} * {sigma!r}D) * {_lit(median)}")


def _mean_one(key: str, salt: str, sigma: float) -> Sql:
    """A lognormal multiplier whose mean is 1."""
    return _sql(f"exp({_normal(key, salt)} * {sigma!r}D - {sigma * sigma / 2.0!r}D)")


def _int_below(key: str, salt: str, n: int | Sql) -> Sql:
    """A uniform integer in [0, n)."""
    return _sql(f"CAST(floor({_u(key, salt)} * {_lit(n)}) AS INT)")


def _pick(u: Sql, choices: Sequence[tuple[Any, float | Sql]]) -> Sql:
    """The value whose bracket of cumulative weight holds the uniform ``u`` (a categorical
    draw). Weights may be numbers or, varying by row, SQL expressions."""
    if len(choices) == 1:
        return Sql(_lit(choices[0][0]))
    if all(isinstance(w, int | float) for _, w in choices):
        total = float(sum(w for _, w in choices))
        bounds, acc = [], 0.0
        for _, weight in choices[:-1]:
            acc += weight / total
            bounds.append(_lit(acc))
        scaled = str(u)
    else:
        terms = [_lit(w) for _, w in choices]
        bounds = [_sql(" + ".join(terms[: i + 1])) for i in range(len(terms) - 1)]
        scaled = f"{u} * ({' + '.join(terms)})"
    whens = " ".join(f"WHEN {scaled} < {b} THEN {_lit(v)}" for (v, _), b in zip(choices[:-1], bounds, strict=True))
    return _sql(f"CASE {whens} ELSE {_lit(choices[-1][0])} END")  # the last bracket


def _case(column: str, branches: dict[str, Any]) -> Sql:
    """``CASE column WHEN key THEN value …``; null for a key not listed."""
    whens = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in branches.items())
    return _sql(f"CASE {column} {whens} END")


def _at(values: Sequence[Any], index0: str) -> Sql:
    """``values[index0]`` for a 0-based index."""
    return _sql(f"element_at(array({', '.join(_lit(v) for v in values)}), {index0} + 1)")


def _hour_sec(key: str, salt: str, weights: Sequence[float]) -> Sql:
    """Seconds into the day: an hour from the profile, then uniform within it."""
    hour = _pick(_u(key, salt + ":h"), list(enumerate(weights)))
    return _sql(f"{hour} * 3600 + {_int_below(key, salt + ':s', 3600)}")


def _x(text: str) -> Column:
    return F.expr(text)


# --- formatting ------------------------------------------------------------------------------------


def _date(p: GenParams, day: str) -> Sql:
    return _sql(f"date_add(DATE'{p.start.isoformat()}', {day})")


def _date_str(p: GenParams, day: str) -> Sql:
    return _sql(f"CAST({_date(p, day)} AS STRING)")


def _ts_str(date_str: str, sec: str) -> Sql:
    """``yyyy-MM-dd HH:mm:ss`` from a date string and seconds into the day (UTC, any session)."""
    parts = [f"{sec} div 3600", f"({sec} div 60) % 60", f"{sec} % 60"]
    hms = ", ':', ".join(f"lpad(CAST({x} AS STRING), 2, '0')" for x in parts)
    return _sql(f"concat({date_str}, ' ', {hms})")


def _money(x: str) -> Sql:
    """An amount in whole rials (IRR has no minor unit in use) written with two decimals."""
    return _sql(f"concat(CAST(CAST(round({x}) AS BIGINT) AS STRING), '.00')")


def _bool_str(x: str) -> Sql:
    return _sql(f"CASE WHEN {x} THEN 'true' WHEN NOT {x} THEN 'false' END")


# --- phone numbers -----------------------------------------------------------------------------------


def _national_number(p: GenParams, sub_id: str) -> Sql:
    """A unique national number per subscriber: a prefix, then a scrambled line number."""
    n = len(OPERATOR_PREFIXES)
    offset = (p.seed * 104_729) % LINE_SPACE
    line = f"pmod(({sub_id} div {n}) * {NUMBER_STRIDE} + {offset}, {LINE_SPACE})"
    prefix = _at(OPERATOR_PREFIXES, f"CAST(pmod({sub_id}, {n}) AS INT)")
    return _sql(f"concat({prefix}, lpad(CAST({line} AS STRING), {LINE_DIGITS}, '0'))")


def _e164(nat: str, ident: dict) -> Sql:
    return _sql(f"concat({_lit('+' + ident['country_code'])}, {nat})")


def _msisdn_as_exported(nat: str, u: Sql, ident: dict) -> Sql:
    """The forms good rows carry: mostly ``09…``, some ``+989…``, some ``989…``."""
    forms = {
        "local": _sql(f"concat({_lit(ident['trunk_prefix'])}, {nat})"),
        "e164": _e164(nat, ident),
        "intl": _sql(f"concat({_lit(ident['country_code'])}, {nat})"),
    }
    return _pick(u, [(forms[name], weight) for name, weight in MSISDN_FORMS])


def _odd_msisdn(nat: str, u: Sql, ident: dict) -> Sql:
    """The same valid number in a form that normalizes: spaced, dashed, 00-prefixed, Persian."""
    trunk, cc = ident["trunk_prefix"], ident["country_code"]
    head, mid, tail = f"substr({nat}, 1, 3)", f"substr({nat}, 4, 3)", f"substr({nat}, 7, 4)"
    forms = [
        _sql(f"concat({_lit(trunk)}, {head}, ' ', {mid}, ' ', {tail})"),
        _sql(f"concat({_lit('+' + cc + '-')}, {head}, '-', {mid}, '-', {tail})"),
        _sql(f"concat({_lit(ident['international_prefix'] + cc)}, {nat})"),
        _sql(f"translate(concat({_lit(trunk)}, {nat}), '0123456789', '۰۱۲۳۴۵۶۷۸۹')"),
    ]
    return _pick(u, [(form, 1.0) for form in forms])


def _invalid_msisdn(nat: str, key: str, ident: dict) -> Sql:
    """Not a mobile number: a Tehran landline, too short, or letters inside."""
    trunk = _lit(ident["trunk_prefix"])
    forms = [
        _sql(f"concat({trunk}, '21', lpad(CAST(pmod({key}, 100000000) AS STRING), 8, '0'))"),
        _sql(f"concat({trunk}, substr({nat}, 1, 6))"),
        _sql(f"concat({trunk}, substr({nat}, 1, 3), 'ABC', substr({nat}, 7, 4))"),
    ]
    return _pick(_u(key, "invalid_msisdn"), [(form, 1.0) for form in forms])


def _unknown_msisdn(key: str, ident: dict) -> Sql:
    line = f"lpad(CAST(pmod(xxhash64('unknown', {key}), {LINE_SPACE}) AS STRING), {LINE_DIGITS}, '0')"
    return _sql(f"concat({_lit(ident['trunk_prefix'] + UNKNOWN_PREFIX)}, {line})")


# --- network -------------------------------------------------------------------------------------------


def _region_attr(p: GenParams, attr: str, region_idx: str) -> Sql:
    return _at([getattr(r, attr) for r in REGIONS[: p.regions]], region_idx)


def _cell_key(p: GenParams, region_idx: str, cell_idx: str) -> Sql:
    return _key(p.seed, "cell", region_idx, cell_idx)


def _cell_id(p: GenParams, region_idx: str, cell_idx: str) -> Sql:
    code = _region_attr(p, "code", region_idx)
    return _sql(f"concat({code}, '-', lpad(CAST({cell_idx} + 1 AS STRING), 4, '0'))")


def _cell_is_poor(p: GenParams, cell_key: str) -> Sql:
    return _sql(f"{_u(cell_key, 'chronic')} < {_lit(p.poor_cell_share)}")


def _cell_day(p: GenParams, region_idx: str, cell_idx: str, day: str) -> dict[str, Sql]:
    """A cell's radio technology and quality on a day. A pure function of (cell, day): the
    subscriber-day rows recompute it for their home cell instead of joining the cell table."""
    ck = _cell_key(p, region_idx, cell_idx)
    dk = _sql(f"xxhash64('cell_day', {ck}, {day})")
    quality = _region_attr(p, "quality", region_idx)
    poor = _cell_is_poor(p, ck)
    outage = _sql(f"{_u(dk, 'outage')} < {_lit(p.outage_rate)}")
    five_g = _region_attr(p, "five_g_share", region_idx)
    tech = _pick(
        _u(ck, "tech"),
        [("5G", five_g)] + [(t, _sql(f"(1D - {five_g}) * {w!r}D")) for t, w in CELL_TECH_MIX_NON_5G],
    )

    def factor(cond: Sql, value: float) -> str:
        return f"CASE WHEN {cond} THEN {value!r}D ELSE 1D END"

    drop = _sql(
        f"least(1D, {BASE_DROP_RATE!r}D / {quality} * {factor(poor, POOR_CELL_DROP_FACTOR)}"
        f" * {factor(outage, OUTAGE_DROP_FACTOR)} * {_mean_one(dk, 'drop', CELL_NOISE_SIGMA)})"
    )
    throughput = _sql(
        f"{_case(tech, TECH_THROUGHPUT_MBPS)} * {quality}"
        f" * {factor(poor, POOR_CELL_THROUGHPUT_FACTOR)} * {factor(outage, OUTAGE_THROUGHPUT_FACTOR)}"
        f" * {_mean_one(dk, 'throughput', CELL_NOISE_SIGMA)}"
    )
    low, high = OUTAGE_AVAILABILITY_PCT
    u_avail = _u(dk, "availability")
    downtime = f"CASE WHEN {poor} THEN {POOR_CELL_DOWNTIME_PCT!r}D ELSE {HEALTHY_CELL_DOWNTIME_PCT!r}D END"
    availability = _sql(  # exponential downtime on a normal day
        f"CASE WHEN {outage} THEN {u_avail} * {high - low!r}D + {low!r}D"
        f" ELSE greatest(0D, 100D + ln(1D - {u_avail}) * {downtime}) END"
    )
    return {
        "radio_tech": tech,
        "dropped_call_rate": _sql(f"round({drop}, 4)"),
        "avg_throughput_mbps": _sql(f"round({throughput}, 2)"),
        "availability_pct": _sql(f"round({availability}, 2)"),
        "is_poor_day": _sql(
            f"{outage} OR {drop} > {POOR_DAY_DROP_RATE!r}D OR {availability} < {POOR_DAY_AVAILABILITY_PCT!r}D"
        ),
    }


def network_cells_df(spark: SparkSession, p: GenParams) -> DataFrame:
    """One row per cell per day, typed as ``ENTITIES["network_cells"].silver``, plus ``day``."""
    cells = spark.range(p.regions * p.cells_per_region, numPartitions=1).select(
        _x(f"CAST(id div {p.cells_per_region} AS INT)").alias("region_idx"),
        _x(f"CAST(id % {p.cells_per_region} AS INT)").alias("cell_idx"),
    )
    df = cells.crossJoin(_days_df(spark, p))
    metrics = _cell_day(p, "region_idx", "cell_idx", "day")
    return df.select(
        "day",
        _x(_cell_id(p, "region_idx", "cell_idx")).alias("cell_id"),
        _x(_date(p, "day")).alias("date"),
        _x(_region_attr(p, "name", "region_idx")).alias("region"),
        _x(metrics["radio_tech"]).alias("radio_tech"),
        *[_x(f"CAST({metrics[c]} AS DOUBLE)").alias(c)
          for c in ("dropped_call_rate", "avg_throughput_mbps", "availability_pct")],
    )  # fmt: skip


def _days_df(spark: SparkSession, p: GenParams) -> DataFrame:
    return spark.range(p.days, numPartitions=1).select(F.col("id").cast("int").alias("day"))


# --- subscribers ----------------------------------------------------------------------------------------


def subscriber_traits_df(spark: SparkSession, p: GenParams) -> DataFrame:
    """One row per subscriber: attributes and their changes in the window, latent traits and
    the raw (uncalibrated) churn hazard of each cause. ``sk`` is the subscriber's random key."""
    n_parts = max(1, min(spark.sparkContext.defaultParallelism * 4, p.subscribers // 25_000 + 1))
    df = spark.range(p.subscribers, numPartitions=n_parts).select(F.col("id").alias("sub_id"))
    df = df.withColumn("sk", _x(_key(p.seed, "subscriber", "sub_id")))
    regions = [(i, r.weight) for i, r in enumerate(REGIONS[: p.regions])]
    b2c_prepaid = min(1.0, p.prepaid_share / max(1e-9, 1.0 - p.b2b_share))
    tenure = f"least({MAX_TENURE_DAYS}, floor(-ln(1D - {_u('sk', 'tenure')}) * {p.mean_tenure_days!r}D))"
    n_accounts = max(1, round(p.subscribers * p.b2b_share / B2B_LINES_PER_ACCOUNT))
    df = df.withColumns({
        "nat": _x(_national_number(p, "sub_id")),
        "is_b2b": _x(f"{_u('sk', 'b2b')} < {_lit(p.b2b_share)}"),
        "region_idx": _x(_pick(_u("sk", "region"), regions)),
        "home_cell_idx": _x(_int_below("sk", "home_cell", p.cells_per_region)),
        "age_band": _x(_pick(_u("sk", "age"), AGE_MIX)),
        "device_type": _x(_pick(_u("sk", "device_type"), DEVICE_TYPE_MIX)),
        "activation_day": _x(
            f"CAST(CASE WHEN {_u('sk', 'new')} < {_lit(p.new_activation_share)}"
            f" THEN {_int_below('sk', 'activation', p.days)} ELSE -1 - {tenure} END AS INT)"),
        "intensity": _x(f"least({MAX_INTENSITY!r}D, exp({_normal('sk', 'intensity')} * {p.intensity_sigma!r}D))"),
        "complaint_propensity": _x(_mean_one("sk", "complaints", COMPLAINT_SIGMA)),
        "price_sensitivity": _x(_mean_one("sk", "price", PRICE_SIGMA)),
        "competitor_draw": _x(_mean_one("sk", "competitor", COMPETITOR_SIGMA)),
        "culture": _x(_pick(_u("sk", "culture"), NAME_CULTURES)),
        "is_marketing_consent": _x(f"{_u('sk', 'consent')} < {_lit(p.consent_share)}"),
        "is_do_not_contact": _x(f"{_u('sk', 'dnc')} < {_lit(p.do_not_contact_share)}"),
        "bill_cycle_day": _x(f"{_int_below('sk', 'bill_cycle', BILL_CYCLE_DAYS)} + 1"),
        "account_no": _x(_int_below("sk", "account", n_accounts)),
        "device_change_day": _x(_change_day(p, "device_change")),
        "tariff_change_day": _x(_change_day(p, "tariff_change")),
        "consent_optout_day": _x(_change_day(p, "optout")),
    })  # fmt: skip
    company = _at(COMPANY_NAMES, f"pmod(account_no, {len(COMPANY_NAMES)})")
    df = df.withColumns({
        "customer_type": _x("CASE WHEN is_b2b THEN 'B2B' ELSE 'B2C' END"),
        "plan_type": _x(f"CASE WHEN is_b2b OR {_u('sk', 'plan')} >= {b2c_prepaid!r}D"
                        " THEN 'postpaid' ELSE 'prepaid' END"),
        "gender": _x(f"CASE WHEN is_b2b THEN {_pick(_u('sk', 'gender'), GENDER_MIX['B2B'])}"
                     f" ELSE {_pick(_u('sk', 'gender'), GENDER_MIX['B2C'])} END"),
        "device_brand": _x(_brand(_u("sk", "brand"))),
        "device_brand_new": _x(_brand(_u("sk", "brand_new"))),
        "region": _x(_region_attr(p, "name", "region_idx")),
        "city": _x(_city(p, _u("sk", "city"))),
        "home_cell_id": _x(_cell_id(p, "region_idx", "home_cell_idx")),
        "is_home_cell_poor": _x(_cell_is_poor(p, _cell_key(p, "region_idx", "home_cell_idx"))),
        "region_quality": _x(_region_attr(p, "quality", "region_idx")),
        "competitor_exposure": _x(f"{_region_attr(p, 'competition', 'region_idx')} * competitor_draw"),
        "customer_id": _x("concat('C', lpad(CAST(sub_id AS STRING), 9, '0'))"),
        "account_id": _x("CASE WHEN is_b2b THEN concat('B', lpad(CAST(account_no AS STRING), 7, '0'))"
                         " ELSE concat('A', lpad(CAST(sub_id AS STRING), 9, '0')) END"),
        "first_name": _x(f"CASE WHEN is_b2b AND {_u('sk', 'named_user')} >= {B2B_NAMED_USER_SHARE!r}D"
                         f" THEN NULL ELSE {_name(FIRST_NAMES, _u('sk', 'first_name'))} END"),
        "last_name": _x(f"CASE WHEN is_b2b THEN {company} ELSE {_name(LAST_NAMES, _u('sk', 'last_name'))} END"),
        "consent_optout_day": _x("CASE WHEN is_marketing_consent THEN consent_optout_day END"),
        "uplift_type": _x(_pick(_u("sk", "uplift"), [
            ("persuadable", _sql(f"{p.uplift_mix['persuadable']!r}D * price_sensitivity")),
            ("sure_thing", p.uplift_mix["sure_thing"]),
            ("lost_cause", _sql(f"{p.uplift_mix['lost_cause']!r}D * complaint_propensity")),
            ("sleeping_dog", _sql(f"{p.uplift_mix['sleeping_dog']!r}D"
                                  f" * CASE WHEN is_b2b THEN {B2B_SLEEPING_DOG_FACTOR!r}D ELSE 1D END")),
        ])),
        "is_short_tenure": _x(f"activation_day > {-p.short_tenure_days}"),
    })  # fmt: skip
    # Non-payers stop paying from the bill of DEFAULT_MONTH; the line is suspended after its due date.
    month_start = p.start.replace(day=1).isoformat()
    default_bill = f"date_add(add_months(DATE'{month_start}', {DEFAULT_MONTH}), bill_cycle_day - 1)"
    payers = [("on_time", 1.0 - p.late_payer_share - p.non_payer_share),
              ("late", p.late_payer_share), ("non_payer", p.non_payer_share)]  # fmt: skip
    df = df.withColumns({
        "tariff": _x(_tariff(_u("sk", "tariff"))),
        "tariff_new": _x(_tariff(_u("sk", "tariff_new"))),
        "payer_type": _x(f"CASE WHEN plan_type = 'postpaid' THEN {_pick(_u('sk', 'payer'), payers)} END"),
        "suspended_from_day": _x(
            f"CASE WHEN plan_type = 'postpaid' AND {_pick(_u('sk', 'payer'), payers)} = 'non_payer'"
            f" THEN datediff({default_bill}, DATE'{p.start.isoformat()}')"
            f" + {PAYMENT_DUE_DAYS + SUSPEND_AFTER_DAYS} END"),
    })  # fmt: skip
    # Cause-specific hazards (competing risks); their sum is calibrated to monthly_churn later.
    hazards = {
        "short_tenure": f"CASE WHEN is_short_tenure THEN {SHORT_TENURE_RISK!r}D ELSE 1D END",
        "poor_network": f"CASE WHEN is_home_cell_poor THEN {POOR_CELL_RISK!r}D ELSE 1D END / region_quality",
        "complaints": "complaint_propensity",
        "price_pressure": "price_sensitivity",
        "competitor_offer": "competitor_exposure",
    }  # fmt: skip
    mix = p.churn_cause_mix
    df = df.withColumns({f"hazard_{c}": _x(f"({hazards[c]}) * {mix[c]!r}D") for c in CHURN_CAUSES})
    total = " + ".join(f"hazard_{c}" for c in CHURN_CAUSES)
    return df.withColumn("raw_hazard", _x(f"({total}) * {_case('uplift_type', UPLIFT_CHURN_RISK)}"))


def _brand(u: Sql) -> Sql:
    whens = " ".join(f"WHEN {_lit(t)} THEN {_pick(u, brands)}" for t, brands in DEVICE_BRANDS.items())
    return _sql(f"CASE device_type {whens} END")


def _tariff(u: Sql) -> Sql:
    return _sql(
        f"CASE WHEN is_b2b THEN {_pick(u, B2B_TARIFFS)}"
        f" WHEN plan_type = 'postpaid' THEN {_pick(u, POSTPAID_TARIFFS)}"
        f" WHEN age_band = '18-24' THEN {_pick(u, YOUTH_PREPAID_TARIFFS)}"
        f" ELSE {_pick(u, PREPAID_TARIFFS)} END"  # prepaid, not youth
    )


def _city(p: GenParams, u: Sql) -> Sql:
    """The main city of the region for MAIN_CITY_SHARE of the lines, else one of the others."""
    whens = []
    for i, region in enumerate(REGIONS[: p.regions]):
        main, others = region.cities[0], region.cities[1:]
        if others:
            rest = _at(others, f"CAST(floor(({u} - {MAIN_CITY_SHARE!r}D) / {1 - MAIN_CITY_SHARE!r}D"
                               f" * {len(others)}) AS INT)")  # fmt: skip
            value = f"CASE WHEN {u} < {MAIN_CITY_SHARE!r}D THEN {_lit(main)} ELSE {rest} END"
        else:
            value = _lit(main)
        whens.append(f"WHEN {i} THEN {value}")
    return _sql(f"CASE region_idx {' '.join(whens)} END")


def _name(pools: dict[str, tuple[str, ...]], u: Sql) -> Sql:
    whens = " ".join(
        f"WHEN {_lit(culture)} THEN {_at(pool, f'CAST(floor({u} * {len(pool)}) AS INT)')}"
        for culture, pool in pools.items()
    )
    return _sql(f"CASE culture {whens} END")


def _change_day(p: GenParams, salt: str) -> Sql:
    """The day an attribute changes inside the window, for attribute_change_rate of the lines."""
    return _sql(
        f"CASE WHEN {_u('sk', salt)} < {_lit(p.attribute_change_rate)}"
        f" THEN {_int_below('sk', salt + ':day', p.days)} END"
    )


def stable_mean(df: DataFrame, col: str) -> float:
    """The mean of a column, rounded so that the order of summation cannot change later draws."""
    value = df.agg(F.avg(col)).first()[0]
    return float(f"{value:.10g}") if value else 1.0


def with_base_churn(df: DataFrame, p: GenParams, mean_raw_hazard: float) -> DataFrame:
    """Adds ``base_churn_day`` (a day index; null when the line does not churn in the horizon),
    before any campaign, and its cause ``base_churn_cause``, drawn among the competing causes in
    proportion to their hazards. Needs the columns of :func:`subscriber_traits_df`.

    The horizon runs from the grace period before the window (so inactivity deactivations fall
    inside it) to fade_days after it (so the window shows the fade of later churners).
    """
    if p.monthly_churn <= 0:
        return df.withColumns({
            "monthly_hazard": F.lit(0.0),
            "base_churn_day": F.lit(None).cast("int"),
            "base_churn_cause": F.lit(None).cast("string"),
        })  # fmt: skip
    daily = -math.log(1.0 - p.monthly_churn) / DAYS_PER_MONTH / mean_raw_hazard
    df = df.withColumn("monthly_hazard", _x(f"raw_hazard * {daily * DAYS_PER_MONTH!r}D"))
    span_start = f"greatest({-p.prepaid_grace_days}, activation_day + {MIN_LIFE_DAYS})"
    at = f"{span_start} - ln(1D - {_u('sk', 'churn_time')}) / (raw_hazard * {daily!r}D)"
    churn_day = _sql(f"CASE WHEN {at} < {p.days + p.fade_days} THEN CAST(floor({at}) AS INT) END")
    cause = _pick(_u("sk", "churn_cause"), [(c, Sql(f"hazard_{c}")) for c in CHURN_CAUSES])
    df = df.withColumn("base_churn_day", _x(churn_day))
    return df.withColumn("base_churn_cause", _x(f"CASE WHEN base_churn_day IS NOT NULL THEN {cause} END"))


def campaign_plan(p: GenParams) -> list[tuple[int, str, int, str, float]]:
    """(index, campaign_id, day, channel, offer amount) of each campaign, spread over the window."""
    plan = []
    for i in range(p.campaigns):
        day = min(p.days - 1, max(0, round((i + 1) * p.days / (p.campaigns + 1))))
        date = p.start + dt.timedelta(days=day)
        channel = CAMPAIGN_CHANNEL_CYCLE[i % len(CAMPAIGN_CHANNEL_CYCLE)]
        offer = float(OFFER_PRICES_IRR[i % len(OFFER_PRICES_IRR)])
        plan.append((i, f"CMP-{date:%Y%m%d}-{i + 1:02d}", day, channel, offer))
    return plan


CAMPAIGN_SCHEMA = "campaign_idx int, campaign_id string, campaign_day int, channel string, offer_amount double"


def campaign_assignments_df(subs_df: DataFrame, campaigns_df: DataFrame, p: GenParams) -> DataFrame:
    """Targets of each campaign: a random sample of the lines that are active, consenting and not
    do-not-contact on the campaign day, split into treatment and control. Treated lines get the
    contact outcome their uplift type gives. ``ak`` is the assignment's random key."""
    eligible = (
        "activation_day <= campaign_day"
        " AND (base_churn_day IS NULL OR base_churn_day > campaign_day)"
        " AND is_marketing_consent"
        " AND (consent_optout_day IS NULL OR consent_optout_day > campaign_day)"
        " AND NOT is_do_not_contact"
    )
    df = subs_df.crossJoin(F.broadcast(campaigns_df)).where(eligible)
    df = df.withColumn("ak", _x(_key(p.seed, "campaign", "campaign_idx", "sub_id")))
    df = df.where(_x(f"{_u('ak', 'target')} < {_lit(p.campaign_target_share)}"))
    treated = f"{_u('ak', 'group')} < {_lit(p.campaign_treatment_share)}"
    df = df.withColumns({
        "group": _x(f"CASE WHEN {treated} THEN 'treatment' ELSE 'control' END"),
        "is_delivered": _x(f"{treated} AND {_u('ak', 'delivered')} < {_case('channel', DELIVERY_RATE)}"),
    })  # fmt: skip
    accepted = f"is_delivered AND {_u('ak', 'accept')} < {_case('uplift_type', ACCEPT_RATE)}"
    df = df.withColumn("has_accepted_offer", _x(accepted))
    return df.select(
        "sub_id", "nat", "uplift_type", "campaign_idx", "campaign_id", "campaign_day", "channel",
        "ak", "group", "is_delivered",
        _x(f"is_delivered AND (has_accepted_offer OR {_u('ak', 'respond')} < {RESPONSE_RATE!r}D)")
        .alias("has_responded"),
        "has_accepted_offer",
        _x("CASE WHEN has_accepted_offer THEN offer_amount ELSE 0D END").alias("revenue"),
        _x(_hour_sec("ak", "contact", HOUR_WEIGHTS_OFFICE)).alias("contact_sec"),
    )  # fmt: skip


def with_final_churn(subs_df: DataFrame, assignments_df: DataFrame, p: GenParams) -> DataFrame:
    """Applies the campaigns to churn: a delivered contact keeps a persuadable churner
    (rescue_rate) and pushes a sleeping dog to churn a few days later (backlash_rate). Adds
    churn_day and churn_cause, the fade window (fade_start ≤ day < fade_stop, fading towards
    fade_anchor), deactivation_day and churn_reason."""
    first_contact = assignments_df.where("is_delivered").groupBy("sub_id").agg(F.min("campaign_day").alias("treat_day"))
    df = subs_df.join(first_contact, on="sub_id", how="left")  # sub_id is unique on both sides
    lag_lo, lag_hi = BACKLASH_LAG_DAYS
    df = df.withColumn(
        "backlash_day", _x(f"treat_day + {lag_lo} + {_int_below('sk', 'backlash_lag', lag_hi - lag_lo + 1)}")
    )
    df = df.withColumns({
        "is_rescued": _x(
            f"coalesce(uplift_type = 'persuadable' AND base_churn_day > treat_day"
            f" AND {_u('sk', 'rescue')} < {_lit(p.rescue_rate)}, false)"),
        "is_backlash": _x(
            f"coalesce(uplift_type = 'sleeping_dog' AND treat_day IS NOT NULL"
            f" AND (base_churn_day IS NULL OR base_churn_day > backlash_day)"
            f" AND {_u('sk', 'backlash')} < {_lit(p.backlash_rate)}, false)"),
    })  # fmt: skip
    df = df.withColumns({
        "churn_day": _x("CASE WHEN is_rescued THEN NULL WHEN is_backlash THEN backlash_day"
                        " ELSE base_churn_day END"),
        "churn_cause": _x(f"CASE WHEN is_rescued THEN NULL WHEN is_backlash THEN {_lit(BACKLASH_CAUSE)}"
                          " ELSE base_churn_cause END"),
    })  # fmt: skip
    reasons = " ".join(
        f"WHEN {_lit(cause)} THEN {_pick(_u('sk', 'churn_reason'), options)}"
        for cause, options in CHURN_REASONS_BY_CAUSE.items()
    )
    df = df.withColumn("fade_anchor", _x("CASE WHEN is_rescued THEN base_churn_day ELSE churn_day END"))
    return df.withColumns({
        "fade_start": _x(f"CASE WHEN is_backlash THEN greatest(churn_day - {p.fade_days}, treat_day)"
                         f" ELSE fade_anchor - {p.fade_days} END"),
        "fade_stop": _x("CASE WHEN is_rescued THEN treat_day ELSE churn_day END"),
        "deactivation_day": _x(f"CASE WHEN plan_type = 'postpaid' THEN churn_day"
                               f" ELSE churn_day + {p.prepaid_grace_days} END"),
        "churn_reason": _x(f"CASE WHEN churn_day IS NULL THEN NULL"
                           f" WHEN plan_type = 'prepaid' THEN {_lit(PREPAID_CHURN_REASON)}"
                           f" ELSE CASE churn_cause {reasons} END END"),
    })  # fmt: skip


SUBSCRIBER_DAY_COLUMNS = (
    "sub_id", "day", "bk", "nat", "plan_type", "tariff_now", "device_type", "region_idx", "home_cell_id",
    "date_str", "date_compact", "is_roaming", "intensity", "complaint_propensity", "churn_day",
    "fade_progress", "is_poor_recent", "lam", "n", "n_on_time", "late_day",
)  # fmt: skip


def subscriber_days_df(subs_df: DataFrame, days_df: DataFrame, p: GenParams) -> DataFrame:
    """One row per subscriber per day the line is live (activated, not yet churned), with the
    day's expected usage ``lam``, the event count ``n`` and its late part (arriving in the file
    of ``late_day``), and the care drivers. ``bk`` is the row's random key."""
    df = subs_df.crossJoin(F.broadcast(days_df)).where(
        "activation_day <= day AND (churn_day IS NULL OR day < churn_day)"
    )
    df = df.withColumn("bk", _x(_key(p.seed, "subscriber_day", "sub_id", "day")))
    weekend = ", ".join(str(WEEKDAY_NUMBERS[d]) for d in p.weekend_days) or "0"
    today = _cell_day(p, "region_idx", "home_cell_idx", "day")["is_poor_day"]
    yesterday = _cell_day(p, "region_idx", "home_cell_idx", "day - 1")["is_poor_day"]
    df = df.withColumns({
        "date_str": _x(_date_str(p, "day")),
        "tariff_now": _x("CASE WHEN tariff_change_day <= day THEN tariff_new ELSE tariff END"),
        "fade_progress": _x("CASE WHEN day >= fade_start AND day < fade_stop"
                            " THEN least(1D, (day - fade_start) / greatest(1, fade_anchor - fade_start))"
                            " ELSE 0D END"),
        "is_poor_today": _x(today),
        "is_poor_recent": _x(f"{today} OR {yesterday}"),
        "is_suspended": _x("coalesce(suspended_from_day <= day, false)"),
        "is_roaming": _x(f"{_u('bk', 'roaming')} < {_lit(p.roaming_rate)}"),
        "is_weekend": _x(f"dayofweek({_date(p, 'day')}) IN ({weekend})"),
    })  # fmt: skip
    lam = (
        f"intensity * {p.events_per_day!r}D"
        f" * CASE WHEN is_weekend THEN {p.weekend_factor!r}D ELSE 1D END"
        f" * (1D - fade_progress * {1.0 - p.fade_floor!r}D)"
        f" * CASE WHEN is_suspended THEN {SUSPENDED_USAGE_FACTOR!r}D ELSE 1D END"
        f" * CASE WHEN is_poor_today THEN {POOR_DAY_USAGE_FACTOR!r}D ELSE 1D END"
        f" * CASE WHEN is_roaming THEN {ROAMING_USAGE_FACTOR!r}D ELSE 1D END"
        f" * {_mean_one('bk', 'daily_noise', p.daily_noise_sigma)}"
    )
    df = df.withColumn("lam", _x(lam))
    df = df.withColumn("n", _x(f"CAST(least({MAX_EVENTS_PER_DAY}, floor(lam + {_u('bk', 'n')})) AS INT)"))
    df = df.withColumns({
        "n_late": _x(f"CAST(least(n, floor(n * {p.late_rate!r}D + {_u('bk', 'n_late')})) AS INT)"),
        "late_day": _x(f"day + 1 + {_int_below('bk', 'late_lag', p.max_late_days)}"),
        "date_compact": _x("replace(date_str, '-', '')"),
    })  # fmt: skip
    df = df.withColumn("n_on_time", F.col("n") - F.col("n_late"))
    return df.select(*SUBSCRIBER_DAY_COLUMNS)  # what usage, recharges and care need: it is cached


# --- usage ----------------------------------------------------------------------------------------------

USAGE_BASE_COLUMNS = (
    "sub_id", "day", "date_str", "date_compact", "nat", "plan_type", "tariff_now", "device_type",
    "region_idx", "home_cell_id", "is_roaming",
)  # fmt: skip


def usage_arrivals_df(sub_days_df: DataFrame, p: GenParams, partitioned: bool = True) -> DataFrame:
    """Subscriber-day rows split by arrival: records ``lo..hi`` arrive in the file of
    ``file_day`` (``date``). Records ``0..n_on_time-1`` arrive on their day, the rest (the late
    ones) on ``late_day`` unless that is after the window. Partitioned by (arrival day,
    subscriber bucket) so that each write task holds whole files; only these small rows are
    shuffled, each is exploded into its records where it landed."""
    files = p.usage_files_per_day
    # what is the same for all records of a subscriber-day is formatted before the explode
    base = sub_days_df.select(
        *USAGE_BASE_COLUMNS, "n", "n_on_time", "late_day",
        _x("concat('U', date_compact, '-', sub_id, '-')").alias("record_prefix"),
    )  # fmt: skip
    columns = (*USAGE_BASE_COLUMNS, "record_prefix")
    on_time = base.where("n_on_time > 0").select(
        *columns, F.lit(0).alias("lo"), (F.col("n_on_time") - 1).alias("hi"),
        F.col("day").alias("file_day"), F.col("date_str").alias("date"),
    )  # fmt: skip
    late = base.where(f"n > n_on_time AND late_day < {p.days}").select(
        *columns, F.col("n_on_time").alias("lo"), (F.col("n") - 1).alias("hi"),
        F.col("late_day").alias("file_day"), _x(_date_str(p, "late_day")).alias("date"),
    )  # fmt: skip
    tasks = min(p.days * files, math.ceil(p.expected_usage_rows / p.usage_rows_per_file))
    arrivals = on_time.unionByName(late)
    return arrivals.repartition(tasks, "file_day", _x(f"pmod(sub_id, {files})")) if partitioned else arrivals


def usage_df(sub_days_df: DataFrame, p: GenParams, ident: dict, partitioned: bool = True) -> DataFrame:
    """All usage records with bad ones injected and their CSV ``line``, partitioned for writing
    (see :func:`usage_arrivals_df`) unless ``partitioned`` is false."""
    rows = usage_events_df(usage_arrivals_df(sub_days_df, p, partitioned), p, ident)
    rows = _apply_overrides(_with_bad_kind(rows, p, "usage"), _usage_overrides(p, ident))
    return _with_csv_line(rows, "usage", text_columns=())


def usage_events_df(base_df: DataFrame, p: GenParams, ident: dict) -> DataFrame:
    """Explodes subscriber-day rows into their usage records ``lo..hi`` (sequence numbers ``seq``).
    Returns the contract's fields as strings plus ``date`` (file date), ``rk`` (the record's
    random key), ``key`` (record_id), ``nat`` and the sort columns sub_id, day, seq."""
    df = base_df.select("*", F.explode(F.sequence("lo", "hi")).alias("seq"))
    df = df.withColumn("rk", _x(_key(p.seed, "usage", "sub_id", "day", "seq")))
    profile = (
        "CASE WHEN device_type = 'feature_phone' THEN 'voice_device'"
        " WHEN device_type IN ('tablet', 'mifi') THEN 'data_device'"
        f" WHEN tariff_now IN ({', '.join(_lit(t) for t in DATA_TARIFFS)}) THEN 'data_tariff'"
        " ELSE 'default' END"
    )

    def by_profile(salt: str, mixes: dict[str, Sequence[tuple[str, float]]]) -> Column:
        whens = " ".join(f"WHEN {_lit(k)} THEN {_pick(_u('rk', salt), mix)}" for k, mix in mixes.items())
        return _x(f"CASE profile {whens} END")

    df = df.withColumn("profile", _x(profile))
    df = df.withColumns({
        "svc": by_profile("service", SERVICE_MIX),
        "radio": by_profile("radio", RADIO_MIX),
        "sec": _x(_hour_sec("rk", "time", HOUR_WEIGHTS_USAGE)),
    })  # fmt: skip
    call_s = f"least({MAX_CALL_S}, greatest(1, floor({_lognormal('rk', 'call', VOICE_MEDIAN_S, VOICE_SIGMA)})))"
    session_s = (
        f"least({MAX_SESSION_S}, greatest(1, floor({_lognormal('rk', 'session', SESSION_MEDIAN_S, SESSION_SIGMA)})))"
    )
    df = df.withColumns({
        "dest": _x(f"CASE WHEN svc IN ('voice', 'sms') THEN {_pick(_u('rk', 'destination'), DESTINATION_MIX)} END"),
        "duration": _x(f"CAST(CASE svc WHEN 'voice' THEN {call_s} WHEN 'data' THEN {session_s} ELSE 0 END AS BIGINT)"),
    })  # fmt: skip
    lo_up, hi_up = UPLINK_SHARE
    down = f"least(duration * {MAX_BYTES_PER_S!r}D, {_lognormal('rk', 'bytes', DATA_MEDIAN_BYTES, DATA_SIGMA)})"
    df = df.withColumn("down", _x(f"CAST(CASE WHEN svc = 'data' THEN floor({down}) ELSE 0 END AS BIGINT)"))
    df = df.withColumn(
        "up", _x(f"CAST(floor(down * ({_u('rk', 'uplink')} * {hi_up - lo_up!r}D + {lo_up!r}D)) AS BIGINT)")
    )
    price = (
        f"CASE svc WHEN 'voice' THEN ceil(duration / 60D) * {_case('dest', VOICE_RATE_PER_MIN)}"
        f" WHEN 'sms' THEN {_case('dest', SMS_PRICE)}"
        f" WHEN 'data' THEN ceil((down + up) / 1000000D) * {DATA_PRICE_PER_MB}"
        f" ELSE {_pick(_u('rk', 'vas_price'), VAS_PRICES)} END"  # vas
        f" * CASE WHEN is_roaming THEN {ROAMING_PRICE_FACTOR!r}D ELSE 1D END"
    )
    charged = (
        f"plan_type = 'prepaid' OR dest = 'international' OR is_roaming"
        f" OR {_u('rk', 'over_bundle')} < {POSTPAID_OVER_BUNDLE_SHARE!r}D"
    )
    cell_u = _u("rk", "cell")
    other_region = (
        f"CASE WHEN {cell_u} < {HOME_CELL_SHARE + SAME_REGION_CELL_SHARE!r}D THEN region_idx"
        f" ELSE {_int_below('rk', 'cell_region', p.regions)} END"
    )
    other_cell = _cell_id(p, other_region, _int_below("rk", "cell_idx", p.cells_per_region))
    cell = (
        f"CASE WHEN is_roaming THEN NULL WHEN {cell_u} < {HOME_CELL_SHARE!r}D THEN home_cell_id ELSE {other_cell} END"
    )
    direction = (
        f"CASE WHEN svc IN ('voice', 'sms') AND {_u('rk', 'direction')} >= {OUTGOING_SHARE!r}D THEN 'in' ELSE 'out' END"
    )
    return df.select(
        "sub_id", "day", "seq", "rk", "nat", "file_day",
        "date",
        _x("concat(record_prefix, CAST(seq AS STRING))").alias("record_id"),
        _x(_msisdn_as_exported("nat", _u("rk", "msisdn_form"), ident)).alias("msisdn"),
        _x(_ts_str("date_str", "sec")).alias("event_time"),
        F.col("svc").alias("service_type"),
        _x(direction).alias("direction"),
        F.col("duration").cast("string").alias("duration_s"),
        F.col("up").cast("string").alias("bytes_up"),
        F.col("down").cast("string").alias("bytes_down"),
        _x(_money(f"CASE WHEN {charged} THEN {price} ELSE 0D END")).alias("charge_amount"),
        F.lit(CURRENCY).alias("currency"),
        F.col("dest").alias("destination_type"),
        _x(_bool_str("is_roaming")).alias("is_roaming"),
        _x(cell).alias("cell_id"),
        F.col("radio").alias("radio_tech"),
    ).withColumn("key", F.col("record_id"))  # fmt: skip


def _usage_overrides(p: GenParams, ident: dict) -> dict[str, dict[str, Sql]]:
    third = _u("rk", "variant")
    return {
        **_msisdn_overrides(ident),
        "wrong_type": {
            "duration_s": _sql(f"CASE WHEN {third} < {1 / 3!r}D THEN '12s'"
                               f" WHEN {third} < {2 / 3!r}D THEN 'abc' ELSE duration_s END"),
            "charge_amount": _sql(f"CASE WHEN {third} >= {2 / 3!r}D THEN '1.2.3' ELSE charge_amount END"),
        },
        "missing_key": {"record_id": Sql("''")},
        "negative_value": {"duration_s": _negative("duration_s")},
        "future_timestamp": {"event_time": _future_ts(p, "file_day")},
        "impossible_bytes": {
            "service_type": Sql("'data'"),
            "duration_s": Sql(_lit(str(IMPOSSIBLE_DURATION_S))),
            "bytes_down": Sql(_lit(str(IMPOSSIBLE_BYTES))),
        },
        "unknown_enum": {"service_type": Sql("'hologram'")},
    }  # fmt: skip


# --- bad records and lines ----------------------------------------------------------------------------


def _msisdn_overrides(ident: dict) -> dict[str, dict[str, Sql]]:
    """Bad numbers, from the national number ``nat`` and the row key ``rk``."""
    return {
        "odd_msisdn_format": {"msisdn": _odd_msisdn("nat", _u("rk", "odd_msisdn"), ident)},
        "invalid_msisdn": {"msisdn": _invalid_msisdn("nat", "rk", ident)},
        "unknown_subscriber": {"msisdn": _unknown_msisdn("rk", ident)},
    }


def _future_ts(p: GenParams, file_day: str) -> Sql:
    lo, hi = FUTURE_DAYS
    day = f"{file_day} + {lo} + {_int_below('rk', 'future_day', hi - lo + 1)}"
    return _ts_str(_date_str(p, day), _int_below("rk", "future_sec", SECONDS_PER_DAY))


def _negative(column: str) -> Sql:
    """A negative version of a non-negative numeric string column (never -0)."""
    return _sql(f"concat('-', CAST(CAST(abs(CAST({column} AS DOUBLE)) + {NEGATIVE_OFFSET} AS BIGINT) AS STRING))")


def _negative_money(value: str) -> Sql:
    return _money(f"-(abs({value}) + {NEGATIVE_OFFSET})")


def _with_bad_kind(df: DataFrame, p: GenParams, entity: str) -> DataFrame:
    """Adds ``bad_kind`` (null for a good row), drawn from the row key ``rk``; a row drawn as
    ``duplicate`` is exploded into two identical rows (``copy`` 0 and 1)."""
    if p.bad_rate <= 0:
        kind = F.lit(None).cast("string")
    else:
        kinds = [(k, 1.0) for k in KINDS_BY_ENTITY[entity]]
        kind = _x(f"CASE WHEN {_u('rk', 'bad')} < {p.bad_rate!r}D THEN {_pick(_u('rk', 'bad_kind'), kinds)} END")
    df = df.withColumn("bad_kind", kind)
    return df.withColumn("copy", F.explode(_x("CASE WHEN bad_kind = 'duplicate' THEN array(0, 1) ELSE array(0) END")))


def _apply_overrides(df: DataFrame, overrides: dict[str, dict[str, Sql]]) -> DataFrame:
    """Replaces fields of bad rows: ``overrides`` maps a kind to {column: bad value (SQL)}. Adds
    ``detail``, the bad values written, for the truth table."""
    by_column: dict[str, list[tuple[str, str]]] = {}
    for kind, columns in overrides.items():
        for column, value in columns.items():
            by_column.setdefault(column, []).append((kind, value))
    updates = {}
    for column, variants in by_column.items():
        whens = " ".join(f"WHEN {_lit(kind)} THEN {value}" for kind, value in variants)
        # kinds that leave this column alone keep it
        updates[column] = _x(
            f"CASE WHEN bad_kind IS NULL THEN {column} ELSE CASE bad_kind {whens} ELSE {column} END END"
        )
    df = df.withColumns(updates)
    notes = []
    for kind, columns in overrides.items():
        text = ", ".join(f"'{c}=', coalesce(CAST({c} AS STRING), '')" for c in columns)
        notes.append(f"WHEN {_lit(kind)} THEN concat({text})")
    detail = f"CASE bad_kind {' '.join(notes)} WHEN 'duplicate' THEN 'copy of the line before' END"
    return df.withColumn("detail", _x(detail))


def _csv_field(column: str) -> str:
    """A text field as CSV writes it: quoted, quotes doubled, when it holds a comma or a quote."""
    return (
        f"CASE WHEN {column} LIKE '%,%' OR {column} LIKE '%\"%'"
        f" THEN concat('\"', replace({column}, '\"', '\"\"'), '\"') ELSE {column} END"
    )


def _with_csv_line(df: DataFrame, entity: str, text_columns: Sequence[str]) -> DataFrame:
    """Adds ``line``: the fields joined by commas, broken for ``malformed_line`` rows."""
    columns = ENTITIES[entity].landing_columns
    parts = [f"coalesce({_csv_field(c) if c in text_columns else c}, '')" for c in columns]
    df = df.withColumn("line", _x(f"concat_ws(',', {', '.join(parts)})"))
    variant = _int_below("rk", "malformed", len(MALFORMED_VARIANTS))
    malformed = (
        f"CASE {variant} WHEN 0 THEN concat_ws(',', {', '.join(parts[:-1])})"
        f" WHEN 1 THEN concat(line, ',EXTRA') ELSE concat('\"', line) END"  # unbalanced quote
    )
    return df.withColumns({
        "line": _x(f"CASE WHEN bad_kind = 'malformed_line' THEN {malformed} ELSE line END"),
        "detail": _x(f"CASE WHEN bad_kind = 'malformed_line' THEN {_at(MALFORMED_VARIANTS, variant)}"
                     " ELSE detail END"),
    })  # fmt: skip


def _with_json_line(df: DataFrame, entity: str, wrong_types: dict[str, str]) -> DataFrame:
    """Adds ``line``: the typed fields as one JSON object (nulls written out). A ``wrong_type``
    row gets a string where the contract has a number (``wrong_types`` maps columns to such
    strings; one is chosen per row), a ``malformed_line`` row is cut in the middle."""
    columns = ENTITIES[entity].landing_columns
    df = df.withColumn("line", F.to_json(F.struct(*[F.col(c) for c in columns]), {"ignoreNullFields": "false"}))
    variant = _int_below("rk", "wrong_type", len(wrong_types))
    wrong, detail = [], []
    for i, (column, text) in enumerate(wrong_types.items()):
        wrong.append(f'WHEN {i} THEN regexp_replace(line, \'"{column}":-?[0-9]+\', \'"{column}":"{text}"\')')
        detail.append(f"WHEN {i} THEN '{column}={text}'")
    return df.withColumns({
        "line": _x("CASE bad_kind WHEN 'malformed_line' THEN substr(line, 1, length(line) div 2)"
                   f" WHEN 'wrong_type' THEN CASE {variant} {' '.join(wrong)} END ELSE line END"),
        "detail": _x("CASE bad_kind WHEN 'malformed_line' THEN 'cut in the middle'"
                     f" WHEN 'wrong_type' THEN CASE {variant} {' '.join(detail)} END ELSE detail END"),
    })  # fmt: skip


# --- subscribers extract ----------------------------------------------------------------------------


def subscriber_extract_df(subs_df: DataFrame, days_df: DataFrame, p: GenParams, ident: dict) -> DataFrame:
    """The daily full extract: every line activated on or before the day, with its status and
    attributes as of that day. The contract's fields as strings plus row bookkeeping."""
    df = subs_df.crossJoin(F.broadcast(days_df)).where("activation_day <= day")
    df = df.withColumns({
        "rk": _x(_key(p.seed, "extract", "sub_id", "day")),
        "date": _x(_date_str(p, "day")),
        "is_deactivated": _x("coalesce(deactivation_day <= day, false)"),
    })  # fmt: skip
    status = (
        "CASE WHEN is_deactivated THEN 'deactivated'"
        " WHEN coalesce(suspended_from_day <= day, false) THEN 'suspended' ELSE 'active' END"
    )
    consent = "is_marketing_consent AND NOT coalesce(consent_optout_day <= day, false)"
    return df.select(
        "sub_id", "nat", "day", "rk", "date",
        _x(_e164("nat", ident)).alias("key"),
        _x(_msisdn_as_exported("nat", _u("sk", "msisdn_form"), ident)).alias("msisdn"),
        "customer_id",
        F.col("date").alias("extract_date"),
        _x(status).alias("status"),
        "plan_type",
        _x("CASE WHEN tariff_change_day <= day THEN tariff_new ELSE tariff END").alias("tariff"),
        "customer_type", "account_id", "region", "city", "home_cell_id",
        _x(_date_str(p, "activation_day")).alias("activation_date"),
        _x(f"CASE WHEN is_deactivated THEN {_date_str(p, 'deactivation_day')} END").alias("deactivation_date"),
        _x("CASE WHEN is_deactivated THEN churn_reason END").alias("churn_reason"),
        "age_band", "gender",
        _x("CASE WHEN device_change_day <= day THEN device_brand_new ELSE device_brand END").alias("device_brand"),
        "device_type",
        _x(_bool_str(consent)).alias("is_marketing_consent"),
        _x(_bool_str("is_do_not_contact")).alias("is_do_not_contact"),
        "first_name", "last_name",
    )  # fmt: skip


def _subscriber_overrides(p: GenParams, ident: dict) -> dict[str, dict[str, Sql]]:
    half = f"{_u('rk', 'variant')} < 0.5D"
    msisdn = _msisdn_overrides(ident)
    return {
        "odd_msisdn_format": msisdn["odd_msisdn_format"],
        "invalid_msisdn": msisdn["invalid_msisdn"],
        "wrong_type": {
            "activation_date": _sql(f"CASE WHEN {half} THEN '2024-02-30' ELSE activation_date END"),
            "is_marketing_consent": _sql(f"CASE WHEN NOT {half} THEN 'perhaps' ELSE is_marketing_consent END"),
        },
        "missing_key": {"msisdn": Sql("''")},
        "unknown_enum": {
            "status": _sql(f"CASE WHEN {half} THEN 'zombie' ELSE status END"),
            "plan_type": _sql(f"CASE WHEN NOT {half} THEN 'barter' ELSE plan_type END"),
        },
        "non_ascii_text": {
            "first_name": Sql(_lit(NON_ASCII_FIRST_NAME)), "last_name": Sql(_lit(NON_ASCII_LAST_NAME)),
        },
    }  # fmt: skip


# --- recharges ---------------------------------------------------------------------------------------


def recharges_df(spark: SparkSession, subs_df: DataFrame, sub_days_df: DataFrame, p: GenParams,
                 ident: dict) -> DataFrame:  # fmt: skip
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

    months = spark.range(DEFAULT_MONTH - 1, math.ceil(p.days / BILL_CYCLE_DAYS) + 1, numPartitions=1)
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
    bill_rows = bills.where(f"bill_day >= 0 AND bill_day < {p.days}").select(
        "sub_id", "nat", F.col("bill_day").alias("day"),
        _x("xxhash64('bill_row', mk)").alias("rk"),
        _x("concat('B', bill_month, '-', sub_id)").alias("txn_id"),
        _x(f"{BILL_RUN_HOUR * 3600} + {_int_below('mk', 'bill_sec', 3600)}").alias("sec"),
        F.lit("bill").alias("txn_type"), "value", F.lit(BILL_CHANNEL).alias("channel"),
    )  # fmt: skip
    payment_rows = bills.where(
        f"pay_day >= 0 AND pay_day < {p.days} AND (churn_day IS NULL OR pay_day < churn_day)"
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


def _recharge_overrides(p: GenParams, ident: dict) -> dict[str, dict[str, Sql]]:
    half = f"{_u('rk', 'variant')} < 0.5D"
    return {
        **_msisdn_overrides(ident),
        "wrong_type": {"amount": _sql(f"CASE WHEN {half} THEN '1.2.3' ELSE 'abc' END")},
        "missing_key": {"txn_id": Sql("''")},
        "negative_value": {"amount": _negative_money("value")},
        "future_timestamp": {"txn_time": _future_ts(p, "day")},
        "unknown_enum": {
            "channel": _sql(f"CASE WHEN {half} THEN 'pigeon' ELSE channel END"),
            "txn_type": _sql(f"CASE WHEN NOT {half} THEN 'refund' ELSE txn_type END"),
        },
    }  # fmt: skip


# --- care and surveys ---------------------------------------------------------------------------------


def care_df(sub_days_df: DataFrame, p: GenParams, ident: dict) -> DataFrame:
    """Customer-care contacts (good rows, typed for JSON). Contacts rise with complaint
    propensity, after a poor network day in the home cell and as churn approaches."""
    rate = (
        f"complaint_propensity * {p.care_contact_rate!r}D"
        f" * (1D + CASE WHEN is_poor_recent THEN {POOR_NETWORK_CARE_BOOST!r}D ELSE 0D END)"
        f" * (1D + fade_progress * {CHURN_CARE_BOOST!r}D)"
    )
    df = sub_days_df.where(_x(f"{_u('bk', 'care')} < {rate}"))
    df = df.withColumn("rk", _x(_key(p.seed, "care", "sub_id", "day")))
    reason = (
        f"CASE WHEN fade_progress > 0 AND {_u('rk', 'cancel')} < fade_progress * {CANCELLATION_SHARE_MAX!r}D"
        " THEN 'cancellation'"
        f" WHEN is_poor_recent AND {_u('rk', 'network_reason')} < {NETWORK_REASON_SHARE!r}D"
        f" THEN {_pick(_u('rk', 'reason'), NETWORK_REASONS)}"
        f" WHEN plan_type = 'prepaid' THEN {_pick(_u('rk', 'reason'), CARE_REASON_MIX['prepaid'])}"
        f" ELSE {_pick(_u('rk', 'reason'), CARE_REASON_MIX['postpaid'])} END"  # postpaid
    )
    df = df.withColumns({"reason": _x(reason), "channel": _x(_pick(_u("rk", "channel"), CARE_CHANNEL_MIX))})
    complaint = (
        f"{_u('rk', 'complaint')} < CASE WHEN reason IN ({', '.join(_lit(r) for r in COMPLAINT_REASONS)})"
        f" THEN {COMPLAINT_SHARE!r}D ELSE {OTHER_COMPLAINT_SHARE!r}D END"
    )
    resolve = (
        f"least({MAX_RESOLVE!r}D, {RESOLVE_BASE!r}D / sqrt(complaint_propensity))"
        " * CASE WHEN is_poor_recent AND reason IN ('network_coverage', 'data_speed')"
        f" THEN {POOR_NETWORK_RESOLVE_FACTOR!r}D ELSE 1D END"
    )
    df = df.withColumns({
        "is_complaint": _x(complaint),
        "is_resolved": _x(f"{_u('rk', 'resolved')} < {resolve}"),
        "sec": _x(_hour_sec("rk", "care_time", HOUR_WEIGHTS_OFFICE)),
        "language": _x(_pick(_u("rk", "language"), NOTE_LANGUAGES)),
    })  # fmt: skip
    df = df.withColumn("escalation_level", _x(
        f"CAST(CASE WHEN is_resolved THEN {_pick(_u('rk', 'escalation'), ESCALATION_RESOLVED)}"
        f" ELSE {_pick(_u('rk', 'escalation'), ESCALATION_UNRESOLVED)} END AS INT)"))  # fmt: skip
    handle = (
        f"{_lognormal('rk', 'handle', _case('channel', HANDLE_MEDIAN_S), HANDLE_SIGMA)}"
        f" * (1D + escalation_level * {ESCALATION_HANDLE_FACTOR!r}D)"
    )
    n_agents = max(MIN_AGENTS, p.subscribers // SUBSCRIBERS_PER_AGENT)
    self_service = ", ".join(_lit(c) for c in SELF_SERVICE_CHANNELS)
    notes = (
        f"CASE language WHEN 'en' THEN {_case('reason', {r: n[0] for r, n in NOTES.items()})}"
        f" WHEN 'fa' THEN {_case('reason', {r: n[1] for r, n in NOTES.items()})}"
        f" ELSE {_case('language', OTHER_LANGUAGE_NOTES)} END"  # tr, ja
    )
    return df.select(
        "sub_id", "nat", "day", "rk", "sec", "churn_day", F.col("date_str").alias("date"),
        _x("concat('I', date_compact, '-', sub_id)").alias("interaction_id"),
        _x(_msisdn_as_exported("nat", _u("rk", "msisdn_form"), ident)).alias("msisdn"),
        _x(_ts_str("date_str", "sec")).alias("started_at"),
        "channel", "reason", "is_complaint", "is_resolved",
        _x(f"is_resolved AND escalation_level = 0 AND {_u('rk', 'fcr')} < {FCR_RATE!r}D")
        .alias("is_first_contact_resolution"),
        "escalation_level",
        _x(f"CAST(least({SECONDS_PER_DAY}, floor({handle})) AS BIGINT)").alias("handle_time_s"),
        _x(f"CASE WHEN channel IN ({self_service}) THEN NULL"
           f" ELSE concat('AG', lpad(CAST({_int_below('rk', 'agent', n_agents)} AS STRING), 5, '0')) END")
        .alias("agent_id"),
        _x(notes).alias("notes"),
    ).withColumn("key", F.col("interaction_id"))  # fmt: skip


def surveys_df(care_good_df: DataFrame, subs_df: DataFrame, p: GenParams, ident: dict) -> DataFrame:
    """CSAT (1-5) after some contacts, higher when resolved; relational NPS (0-10) for a sample
    of lines, lower for a poor home cell, complaint-prone lines and lines about to churn."""
    delay = f"{CSAT_DELAY_S[0]} + {_int_below('rk', 'csat_delay', CSAT_DELAY_S[1] - CSAT_DELAY_S[0])}"
    csat = care_good_df.where(_x(f"{_u('rk', 'csat')} < {_lit(p.csat_response_rate)}"))
    csat = csat.withColumns({
        "answered": _x(f"day * {SECONDS_PER_DAY}L + sec + handle_time_s + {delay}"),
        "srk": _x("xxhash64('csat', rk)"),
    })  # fmt: skip
    score = (
        f"CASE WHEN is_resolved THEN {CSAT_MEAN['resolved']!r}D ELSE {CSAT_MEAN['unresolved']!r}D END"
        f" - escalation_level * {CSAT_ESCALATION_PENALTY!r}D + {_normal('srk', 'csat_score')} * {CSAT_SD!r}D"
    )
    csat = csat.select(
        "sub_id", "nat", "churn_day", F.col("srk").alias("rk"),
        _x(f"CAST(answered div {SECONDS_PER_DAY} AS INT)").alias("answer_day"),
        _x(f"CAST(answered % {SECONDS_PER_DAY} AS INT)").alias("answer_sec"),
        _x("concat('S-', interaction_id)").alias("survey_id"),
        F.lit("csat").alias("survey_type"), "interaction_id",
        _x(f"CAST(least(5, greatest(1, round({score}))) AS INT)").alias("score"),
    )  # fmt: skip

    nps_share = min(1.0, p.nps_monthly_share * p.days / DAYS_PER_MONTH)
    nps = subs_df.where(_x(f"{_u('sk', 'nps')} < {nps_share!r}D")).withColumns({
        "answer_day": _x(_int_below("sk", "nps_day", p.days)),
        "rk": _x("xxhash64('nps', sk)"),
    }).where("activation_day <= answer_day")  # fmt: skip
    score = (
        f"{NPS_BASE!r}D"
        f" - CASE WHEN is_home_cell_poor THEN {NPS_POOR_NETWORK_PENALTY!r}D ELSE 0D END"
        f" - greatest(0D, complaint_propensity - 1D) * {NPS_COMPLAINT_PENALTY!r}D"
        f" - CASE WHEN churn_day - answer_day <= {NPS_CHURN_HORIZON_DAYS} THEN {NPS_CHURN_PENALTY!r}D ELSE 0D END"
        f" + {_normal('rk', 'nps_score')} * {NPS_SD!r}D"
    )
    nps = nps.select(
        "sub_id", "nat", "churn_day", "rk", "answer_day",
        _x(_hour_sec("rk", "nps_time", HOUR_WEIGHTS_OFFICE)).alias("answer_sec"),
        _x(f"concat('S-N', replace({_date_str(p, 'answer_day')}, '-', ''), '-', sub_id)").alias("survey_id"),
        F.lit("nps").alias("survey_type"), F.lit(None).cast("string").alias("interaction_id"),
        _x(f"CAST(least(10, greatest(0, round({score}))) AS INT)").alias("score"),
    )  # fmt: skip

    rows = csat.unionByName(nps).where(f"answer_day < {p.days} AND (churn_day IS NULL OR answer_day < churn_day)")
    band = (
        "CASE WHEN survey_type = 'csat'"
        " THEN CASE WHEN score <= 2 THEN 'low' WHEN score = 3 THEN 'mid' ELSE 'high' END"
        " ELSE CASE WHEN score <= 6 THEN 'low' WHEN score <= 8 THEN 'mid' ELSE 'high' END END"  # nps
    )
    comments = " ".join(
        f"WHEN {_lit(b)} THEN {_at(texts, _int_below('rk', 'comment_text', len(texts)))}"
        for b, texts in COMMENTS.items()
    )
    rows = rows.withColumn("date", _x(_date_str(p, "answer_day")))
    return rows.select(
        "sub_id", "nat", F.col("answer_day").alias("day"), "rk", "date",
        "survey_id",
        _x(_msisdn_as_exported("nat", _u("rk", "msisdn_form"), ident)).alias("msisdn"),
        _x(_ts_str("date", "answer_sec")).alias("answered_at"),
        "survey_type", "interaction_id", "score",
        _x(f"CASE WHEN {_u('rk', 'has_comment')} < {COMMENT_RATE!r}D THEN CASE {band} {comments} END END")
        .alias("comment"),
    ).withColumn("key", F.col("survey_id"))  # fmt: skip


def _json_overrides(ident: dict, p: GenParams, key: str, time: str, enum: tuple[str, str],
                    negative: str, text: str) -> dict[str, dict[str, Sql]]:  # fmt: skip
    """The bad-record kinds of a JSON entity (wrong_type and malformed_line are in the line)."""
    return {
        **_msisdn_overrides(ident),
        "missing_key": {key: Sql("''")},
        "negative_value": {negative: _sql(f"-({negative} + {NEGATIVE_OFFSET})")},
        "future_timestamp": {time: _future_ts(p, "day")},
        "unknown_enum": {enum[0]: Sql(_lit(enum[1]))},
        "non_ascii_text": {text: Sql(_lit(NON_ASCII_NOTE))},
    }


# --- campaign responses ---------------------------------------------------------------------------------


def campaign_responses_df(assignments_df: DataFrame, p: GenParams, ident: dict) -> DataFrame:
    """One row per contacted (treatment) line; control lines are only in the truth."""
    df = assignments_df.where("group = 'treatment'").withColumns({
        "date": _x(_date_str(p, "campaign_day")),
        "rk": F.col("ak"),
    })  # fmt: skip
    df = df.withColumn("contacted_at", _x(_ts_str("date", "contact_sec")))
    return df.select(
        "sub_id", "nat", F.col("campaign_day").alias("day"), "rk", "date", "revenue",
        _x(f"concat_ws('|', campaign_id, {_e164('nat', ident)}, contacted_at)").alias("key"),
        "campaign_id",
        _x(_msisdn_as_exported("nat", _u("rk", "msisdn_form"), ident)).alias("msisdn"),
        "contacted_at",
        "channel",
        _x(_bool_str("is_delivered")).alias("is_delivered"),
        _x(_bool_str("has_responded")).alias("has_responded"),
        _x(_bool_str("has_accepted_offer")).alias("has_accepted_offer"),
        _x(_money("revenue")).alias("revenue_amount"),
        F.lit(CURRENCY).alias("currency"),
    )  # fmt: skip


def _campaign_overrides(p: GenParams, ident: dict) -> dict[str, dict[str, Sql]]:
    half = f"{_u('rk', 'variant')} < 0.5D"
    return {
        **_msisdn_overrides(ident),
        "wrong_type": {
            "revenue_amount": _sql(f"CASE WHEN {half} THEN '1.2.3' ELSE revenue_amount END"),
            "is_delivered": _sql(f"CASE WHEN NOT {half} THEN 'maybe' ELSE is_delivered END"),
        },
        "missing_key": {"campaign_id": Sql("''")},
        "negative_value": {"revenue_amount": _negative_money("revenue")},
        "future_timestamp": {"contacted_at": _future_ts(p, "day")},
        "unknown_enum": {"channel": Sql("'pigeon'")},
    }  # fmt: skip


def network_cells_rows(spark: SparkSession, p: GenParams) -> DataFrame:
    """:func:`network_cells_df` with the row bookkeeping that bad-record injection needs."""
    df = network_cells_df(spark, p).withColumn("rk", _x(_key(p.seed, "cell_row", "cell_id", "day")))
    return df.withColumn("key", _x("concat_ws('|', cell_id, CAST(date AS STRING))"))


def _cell_overrides() -> dict[str, dict[str, Sql]]:
    return {"negative_value": {"avg_throughput_mbps": _sql(f"-(avg_throughput_mbps + {NEGATIVE_OFFSET})")}}


# --- writing ----------------------------------------------------------------------------------------------


def _hadoop_fs(spark: SparkSession, path: str) -> tuple[Any, Any]:
    """The Hadoop FileSystem and Path of ``path``, so file operations work on any store."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path


def _part_files(spark: SparkSession, folder: str) -> list[Any]:
    fs, path = _hadoop_fs(spark, folder)
    if not fs.exists(path):
        return []
    return [s for s in fs.listStatus(path) if s.isFile() and s.getPath().getName().startswith("part-")]


def _arranged(df: DataFrame, n_partitions: int, sort_columns: Sequence[str]) -> DataFrame:
    """Rows grouped so that one task writes each date's file, sorted by a unique key inside."""
    return df.repartition(n_partitions, "date").sortWithinPartitions("date", *sort_columns)


def _write_csv(df: DataFrame, path: str, entity: str) -> None:
    header = ",".join(ENTITIES[entity].landing_columns)
    (
        df.select(F.col("line").alias(header), "date")
        .write.mode("overwrite").options(**_CSV_WRITE_OPTIONS).partitionBy("date").csv(path)
    )  # fmt: skip


def _write_json(spark: SparkSession, df: DataFrame, path: str) -> None:
    """JSON lines, written as text (so broken lines can be among them), files named ``.json``."""
    (
        df.select("line", "date").write.mode("overwrite").option("partitionOverwriteMode", "static")
        .partitionBy("date").text(path)
    )  # fmt: skip
    fs, root = _hadoop_fs(spark, path)
    jvm = spark.sparkContext._jvm
    for folder in fs.listStatus(root):
        if folder.isDirectory():
            for status in _part_files(spark, folder.getPath().toString()):
                name = status.getPath().getName()
                if name.endswith(".txt"):
                    target = jvm.org.apache.hadoop.fs.Path(folder.getPath(), name[: -len(".txt")] + ".json")
                    fs.rename(status.getPath(), target)


def _write_network_cells(spark: SparkSession, df: DataFrame, path: str) -> None:
    """Parquet rows carry a ``date`` column too, so the folder column is written as
    ``file_date`` and the folders renamed to ``date=…`` afterwards."""
    columns = ENTITIES["network_cells"].landing_columns
    (
        df.select(*columns, F.col("date").cast("string").alias("file_date"), "copy")
        .repartition(1, "file_date").sortWithinPartitions("file_date", "cell_id", "copy")
        .drop("copy")
        .write.mode("overwrite").option("partitionOverwriteMode", "static")
        .partitionBy("file_date").parquet(path)
    )  # fmt: skip
    fs, root = _hadoop_fs(spark, path)
    jvm = spark.sparkContext._jvm
    for folder in fs.listStatus(root):
        name = folder.getPath().getName()
        if folder.isDirectory() and name.startswith("file_date="):
            fs.rename(folder.getPath(), jvm.org.apache.hadoop.fs.Path(root, "date=" + name.split("=", 1)[1]))


def truncate_last_line(spark: SparkSession, folder: str) -> tuple[str | None, str] | None:
    """Cuts the final line of one CSV file in ``folder`` (the smallest part file) in the middle,
    as a transfer that stopped early would. Returns (first field of that line, detail), or None
    when no file has a data line. Rewritten through the Hadoop FileSystem, so checksums match."""
    files = sorted(_part_files(spark, folder), key=lambda s: (s.getLen(), s.getPath().getName()))
    jvm = spark.sparkContext._jvm
    for status in files:
        fs, path = _hadoop_fs(spark, status.getPath().toString())
        stream = fs.open(path)
        try:
            data = bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()
        body = data[:-1] if data.endswith(b"\n") else data
        start = body.rfind(b"\n") + 1
        if start == 0:  # a header only
            continue
        last = body[start:]
        keep = max(1, len(last) // 2)
        out = fs.create(path, True)
        try:
            out.write(bytearray(body[:start] + last[:keep]))
        finally:
            out.close()
        key = last.split(b",", 1)[0].decode("utf-8", errors="replace") or None
        return key, f"last line cut after {keep} of {len(last)} bytes"
    return None


# --- truth ------------------------------------------------------------------------------------------------


def _truth_subscribers(subs_df: DataFrame, p: GenParams, ident: dict) -> DataFrame:
    def date(day: str) -> Column:
        return _x(_date(p, day))

    return subs_df.select(
        F.col("sub_id").alias("subscriber_id"),
        _x(_e164("nat", ident)).alias("msisdn"),
        "customer_id", "plan_type", "customer_type", "region", "home_cell_id",
        date("activation_day").alias("activation_date"),
        date("churn_day").alias("churn_date"),
        "churn_cause",
        date("deactivation_day").alias("deactivation_date"),
        "churn_reason",
        date("base_churn_day").alias("base_churn_date"),
        "base_churn_cause", "monthly_hazard",
        *[f"hazard_{c}" for c in CHURN_CAUSES],
        "is_short_tenure", "is_home_cell_poor", "complaint_propensity", "price_sensitivity",
        "competitor_exposure", "intensity", "payer_type", "uplift_type",
        date("treat_day").alias("first_contact_date"),
        "is_rescued", "is_backlash",
    )  # fmt: skip


def _truth_assignments(assignments_df: DataFrame, p: GenParams, ident: dict) -> DataFrame:
    return assignments_df.select(
        "campaign_id",
        _x(_date(p, "campaign_day")).alias("campaign_date"),
        "channel",
        _x(_e164("nat", ident)).alias("msisdn"),
        F.col("sub_id").alias("subscriber_id"),
        "group", "uplift_type", "is_delivered", "has_accepted_offer",
    )  # fmt: skip


def _truth_rows(df: DataFrame, entity: str) -> DataFrame:
    """The injected bad rows of an entity, as rows of truth/bad_records."""
    return df.where("bad_kind IS NOT NULL AND (bad_kind <> 'duplicate' OR copy = 1)").select(
        F.lit(entity).alias("entity"),
        F.to_date("date").alias("file_date"),
        F.col("bad_kind").alias("kind"),
        _x("CASE WHEN bad_kind = 'missing_key' THEN NULL ELSE CAST(key AS STRING) END").alias("key"),
        F.col("detail").cast("string").alias("detail"),
    )


def _write_truth(df: DataFrame, path: str, sort_columns: Sequence[str]) -> None:
    df.repartition(1).sortWithinPartitions(*sort_columns).write.mode("overwrite").parquet(path)


# --- the whole operator -----------------------------------------------------------------------------------


_conf_lock = threading.Lock()
_conf_users: dict[str, int] = {}
_conf_saved: dict[str, str | None] = {}


@contextmanager
def _session_conf(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """Runtime SQL settings for the duration of a block, restored when the last of the
    (possibly concurrent) blocks using them ends."""
    with _conf_lock:
        for key, value in settings.items():
            if _conf_users.get(key, 0) == 0:
                _conf_saved[key] = spark.conf.get(key, None)
                spark.conf.set(key, value)
            _conf_users[key] = _conf_users.get(key, 0) + 1
    try:
        yield
    finally:
        with _conf_lock:
            for key in settings:
                _conf_users[key] -= 1
                if _conf_users[key] == 0:
                    previous = _conf_saved.pop(key)
                    if previous is None:
                        spark.conf.unset(key)
                    else:
                        spark.conf.set(key, previous)


def _observed(df: DataFrame) -> tuple[DataFrame, Observation]:
    """``df`` counting its rows as the write that consumes it runs (no extra pass)."""
    observation = Observation()
    return df.observe(observation, F.count(F.lit(1)).alias("rows")), observation


def generate_operator(spark: SparkSession, root: str, gen: dict, identity: dict) -> dict[str, int]:
    """Writes a synthetic operator's landing files and ground truth under ``root``.

    ``gen`` is the ``generate`` config section, ``identity`` the ``identity`` section (country
    code and prefixes that format the numbers). Landing files go to
    ``<root>/landing/<entity>/date=YYYY-MM-DD/`` (the arrival date), truth tables (Parquet) to
    ``<root>/truth/{subscribers,campaign_assignments,bad_records}``. Returns the number of rows
    written per entity, counted while the files are written.
    """
    p = GenParams.from_config(gen)
    log("generate: started", subscribers=p.subscribers, start=str(p.start), days=p.days,
        seed=p.seed, bad_rate=p.bad_rate)  # fmt: skip
    cached: list[DataFrame] = []

    def keep(df: DataFrame) -> DataFrame:
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(df)
        return df

    try:
        with _session_conf(spark, GENERATE_SQL_CONF):
            counts = _generate(spark, p, root.rstrip("/"), identity, keep)
    finally:
        for df in cached:
            df.unpersist()
    log("generate: done", **counts)
    return counts


def _generate(
    spark: SparkSession, p: GenParams, root: str, identity: dict, keep: Callable[[DataFrame], DataFrame]
) -> dict[str, int]:
    landing, truth = f"{root}/landing", f"{root}/truth"

    def bad(rows: DataFrame, entity: str, overrides: dict[str, dict[str, Sql]]) -> DataFrame:
        return _apply_overrides(_with_bad_kind(rows, p, entity), overrides)

    with stage("generate population"):
        days_df = _days_df(spark, p)
        traits = keep(subscriber_traits_df(spark, p))
        with_churn = traits.transform(with_base_churn, p, stable_mean(traits, "raw_hazard"))
        campaigns = spark.createDataFrame(campaign_plan(p), CAMPAIGN_SCHEMA)
        assignments = keep(campaign_assignments_df(with_churn, campaigns, p))
        subs = keep(with_final_churn(with_churn, assignments, p))
        sub_days = keep(subscriber_days_df(subs, days_df, p))
        care_good = keep(care_df(sub_days, p, identity))

    json_kinds = {"care_interactions": dict(key="interaction_id", time="started_at", enum=("channel", "pigeon"),
                                            negative="handle_time_s", text="notes"),
                  "surveys": dict(key="survey_id", time="answered_at", enum=("survey_type", "smoke_signal"),
                                  negative="score", text="comment")}  # fmt: skip
    small_entities = {
        "subscribers": lambda: _with_csv_line(
            bad(subscriber_extract_df(subs, days_df, p, identity), "subscribers", _subscriber_overrides(p, identity)),
            "subscribers", ("region", "city", "first_name", "last_name")),
        "recharges": lambda: _with_csv_line(
            bad(recharges_df(spark, subs, sub_days, p, identity), "recharges", _recharge_overrides(p, identity)),
            "recharges", ()),
        "care_interactions": lambda: _with_json_line(
            bad(care_good, "care_interactions", _json_overrides(identity, p, **json_kinds["care_interactions"])),
            "care_interactions", {"escalation_level": "high", "handle_time_s": "5m"}),
        "surveys": lambda: _with_json_line(
            bad(surveys_df(care_good, subs, p, identity), "surveys",
                _json_overrides(identity, p, **json_kinds["surveys"])),
            "surveys", {"score": "five"}),
        "campaign_responses": lambda: _with_csv_line(
            bad(campaign_responses_df(assignments, p, identity), "campaign_responses",
                _campaign_overrides(p, identity)),
            "campaign_responses", ()),
    }  # fmt: skip

    def write_small(name: str) -> tuple[int, DataFrame]:
        with stage(f"generate {name}") as info:
            rows = keep(small_entities[name]())  # filled by the write, read again for the truth
            observed, observation = _observed(rows)
            arranged = _arranged(observed, p.small_entity_tasks, ("key", "copy"))
            if ENTITIES[name].fmt == "csv":
                _write_csv(arranged, f"{landing}/{name}", name)
            else:
                _write_json(spark, arranged, f"{landing}/{name}")
            info["rows"] = observation.get["rows"]
            return info["rows"], _truth_rows(rows, name)

    def write_cells() -> tuple[int, DataFrame]:
        with stage("generate network_cells") as info:
            cells = keep(bad(network_cells_rows(spark, p), "network_cells", _cell_overrides()))
            observed, observation = _observed(cells)
            _write_network_cells(spark, observed, f"{landing}/network_cells")
            info["rows"] = observation.get["rows"]
            return info["rows"], _truth_rows(cells, "network_cells")

    def write_usage() -> tuple[int, DataFrame]:
        with stage("generate usage", files_per_day=p.usage_files_per_day) as info:
            rows = usage_df(sub_days, p, identity)
            observed, observation = _observed(rows)
            _write_csv(
                observed.sortWithinPartitions("date", "sub_id", "day", "seq", "copy"), f"{landing}/usage", "usage"
            )
            info["rows"] = observation.get["rows"]
            # the truth needs the same rows, not their partitioning: no second shuffle
            return info["rows"], _truth_rows(usage_df(sub_days, p, identity, partitioned=False), "usage")

    # The writes are independent: submitted together, their fixed costs (planning, commits)
    # overlap; Spark queues their tasks on the cores it has.
    writes = {"network_cells": write_cells, **{name: partial(write_small, name) for name in small_entities},
              "usage": write_usage}  # fmt: skip
    with ThreadPoolExecutor(max_workers=len(writes)) as pool:
        done = {name: pool.submit(write) for name, write in writes.items()}
        results = {name: future.result() for name, future in done.items()}
    truth_parts = [part for _, part in results.values()]
    if p.bad_rate > 0:
        truth_parts = _truncate_usage(spark, landing, p, truth_parts)

    with stage("generate truth"):
        bad_records = truth_parts[0]
        for part in truth_parts[1:]:
            bad_records = bad_records.unionByName(part)
        tables = {
            "bad_records": (bad_records, ("entity", "file_date", "kind", "key", "detail")),
            "subscribers": (_truth_subscribers(subs, p, identity), ("subscriber_id",)),
            "campaign_assignments": (_truth_assignments(assignments, p, identity), ("campaign_id", "subscriber_id")),
        }
        with ThreadPoolExecutor(max_workers=len(tables)) as pool:
            for future in [
                pool.submit(_write_truth, df, f"{truth}/{name}", order) for name, (df, order) in tables.items()
            ]:
                future.result()
    return {name: results[name][0] for name in ENTITIES}


def _truncate_usage(spark: SparkSession, landing: str, p: GenParams, truth_parts: list[DataFrame]) -> list[DataFrame]:
    """Cuts the last line of a usage file of the last day; the truth then lists that line as
    ``truncated_file`` (and no longer as whatever it was injected as)."""
    last_day = p.start + dt.timedelta(days=p.days - 1)
    cut = truncate_last_line(spark, f"{landing}/usage/date={last_day.isoformat()}")
    if cut is None:
        return truth_parts
    key, detail = cut
    truncated = spark.createDataFrame(
        [("usage", last_day, "truncated_file", key, detail)],
        "entity string, file_date date, kind string, key string, detail string",
    )
    same_line = (F.col("entity") == "usage") & (F.col("file_date") == F.lit(last_day)) & (F.col("key") == key)
    return [t.where(~F.coalesce(same_line, F.lit(False))) for t in truth_parts] + [truncated]
