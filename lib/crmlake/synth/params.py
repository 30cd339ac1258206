"""The generator's parameters: :class:`GenParams` (the ``generate`` config section, typed and
checked) and the named constants of the operator it draws: numbering, geography and network,
subscribers, churn and campaigns, usage, recharges and bills, care and surveys, bad records."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import MISSING, dataclass, fields
from typing import Any

from crmlake.core.errors import ConfigError
from crmlake.core.settings import GenerateConfig

# fmt: off
# --- numbers -----------------------------------------------------------------------------------
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
# Lists published by `crmlake publish` and honoured by `crmlake generate --continue`: their
# channels as the campaign_responses contract names them (an in-app message lands like a push)
# and the base churn causes an offer of each objective addresses, so a delivered contact can keep
# a persuadable churning for that cause. No offer mends a poor home cell.
PUBLISHED_CHANNEL_LANDED = {"sms": "sms", "email": "email", "outbound_call": "call", "push": "push", "app": "push"}
OBJECTIVE_CAUSES = {
    "retention": ("short_tenure", "complaints", "price_pressure", "competitor_offer"),
    "upsell": ("competitor_offer",),
    "win_back": ("price_pressure", "competitor_offer"),
}

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

# --- files and write tasks ---------------------------------------------------------------------
MAX_FILES_PER_DAY = 64
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
    # Set by `crmlake generate --continue`, not by the config: days generated beyond ``days``
    # (which stays the window of every structural draw: activations, attribute changes, the
    # generator's own campaigns), and the first day whose landing files this run writes.
    extend_days: int = 0
    from_day: int = 0

    @classmethod
    def from_settings(cls, gen: GenerateConfig) -> GenParams:
        """From the validated ``generate`` section (plus the checks that need the operator's
        own constants: number capacity, regions)."""
        return cls.from_config(gen.model_dump())

    @classmethod
    def from_config(cls, gen: dict[str, Any]) -> GenParams:
        missing = [f.name for f in fields(cls) if f.name not in gen and f.default is MISSING]
        if missing:
            raise ConfigError(f"generate config lacks keys {missing} (see conf/base/generate.yaml)")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in gen:
                continue
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
        if self.extend_days < 0 or not 0 <= self.from_day <= self.total_days:
            problems.append("extend_days must be at least 0 and from_day within 0..days + extend_days")
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
    def total_days(self) -> int:
        """Days generated so far: the original window and the continuations' days."""
        return self.days + self.extend_days

    @property
    def churn_lookahead_days(self) -> int:
        """How far past the generated days churn is drawn: far enough for every look-ahead of a
        generated day (the fade before a churn, the NPS penalty of a coming churn), so that
        generating more days later cannot change a day already generated."""
        return max(self.fade_days, NPS_CHURN_HORIZON_DAYS)

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
        written = self.total_days - self.from_day
        return max(1, min(written, math.ceil(self.subscribers * written / ROWS_PER_WRITE_TASK)))
