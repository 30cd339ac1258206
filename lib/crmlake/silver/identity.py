"""Phone-number normalization (E.164) and pseudonymization (keyed HMAC-SHA256).

Both are column expressions built from ``pyspark.sql.functions``: no Python UDF, so they run in
the JVM at full speed. HMAC is written out as RFC 2104 defines it,
``H((K ^ opad) || H((K ^ ipad) || m))``, with the two padded keys computed once on the driver
and shipped as binary literals.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from pathlib import Path

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from crmlake.core.errors import BadValuesError, MissingSecretError
from crmlake.core.log import log
from crmlake.core.settings import IdentityConfig

SHA256_BLOCK_BYTES = 64

# Persian and Arabic-Indic digits, as typed on phones and in CRM front ends.
_LOCAL_DIGITS = "۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩"
_ASCII_DIGITS = "0123456789" * 2
_SEPARATORS = r"[\s\-\.\(\)/\u200c\u00a0]"


def normalize_msisdn(
    col: Column,
    country_code: str,
    trunk_prefix: str = "0",
    international_prefix: str = "00",
    national_number_length: int = 10,
    mobile_prefixes: list[str] | tuple[str, ...] = ("9",),
) -> Column:
    """E.164 form (``+989123456789``) of a raw number, or null when it is not a valid mobile
    number of the operator's country.

    Accepts the forms an operator's systems produce: ``09123456789``, ``0912 345 6789``,
    ``+98-912-345-6789``, ``00989123456789``, ``989123456789``, ``9123456789``, and any of
    these written in Persian digits.
    """
    cleaned = F.regexp_replace(F.translate(F.trim(col), _LOCAL_DIGITS, _ASCII_DIGITS), _SEPARATORS, "")
    intl = (
        F.when(cleaned.startswith("+"), F.substring(cleaned, 2, 64))
        .when(cleaned.startswith(international_prefix), F.substring(cleaned, len(international_prefix) + 1, 64))
        .when(
            cleaned.startswith(trunk_prefix),
            F.concat(F.lit(country_code), F.substring(cleaned, len(trunk_prefix) + 1, 64)),
        )
        .when(F.length(cleaned) == national_number_length, F.concat(F.lit(country_code), cleaned))
        .otherwise(cleaned)  # already country code + national number, without the "+"
    )
    prefixes = "|".join(mobile_prefixes)
    pattern = rf"^{country_code}({prefixes})[0-9]{{{national_number_length - 1}}}$"
    return F.when(cleaned.rlike(r"^\+?[0-9]+$") & intl.rlike(pattern), F.concat(F.lit("+"), intl))


def normalize_msisdn_from_config(col: Column, identity: IdentityConfig) -> Column:
    return normalize_msisdn(
        col,
        country_code=identity.country_code,
        trunk_prefix=identity.trunk_prefix,
        international_prefix=identity.international_prefix,
        national_number_length=identity.national_number_length,
        mobile_prefixes=list(identity.mobile_prefixes),
    )


def hmac_sha256_hex(col: Column, key: bytes) -> Column:
    """Hex HMAC-SHA256 of a string column under ``key`` (null in, null out)."""
    if len(key) > SHA256_BLOCK_BYTES:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(SHA256_BLOCK_BYTES, b"\x00")
    inner_key = bytearray(b ^ 0x36 for b in padded)
    outer_key = bytearray(b ^ 0x5C for b in padded)
    message = F.encode(col, "UTF-8")
    inner = F.unhex(F.sha2(F.concat(F.lit(inner_key), message), 256))
    return F.sha2(F.concat(F.lit(outer_key), inner), 256)


def key_file_path(identity: IdentityConfig, root: str) -> Path:
    return Path(identity.key_file) if identity.key_file else Path(root) / ".secrets" / "hmac.key"


def load_hmac_key(identity: IdentityConfig, root: str) -> bytes:
    """The pseudonymization key: from the environment, else the key file.

    A missing key stops the run with a message saying how to provide it: only the embedded
    demo's ``crmlake generate`` creates one (:func:`create_demo_key`), since a new key under data
    hashed with another would quietly split every subscriber in two.
    """
    from_env = os.environ.get(identity.key_env)
    if from_env:
        return from_env.strip().encode("utf-8")
    path = key_file_path(identity, root)
    if path.exists():
        key = path.read_bytes().strip()
        if not key:
            raise MissingSecretError(f"HMAC key file {path} is empty")
        return key
    raise MissingSecretError(
        f"no pseudonymization key: set the environment variable {identity.key_env} or write "
        f"the key to {path} (identity.key_file); crmlake never keeps it in code or config"
    )


def create_demo_key(identity: IdentityConfig, root: str) -> None:
    """For the embedded demo's synthetic operator (``identity.generate_local_key: true``): a
    local key file beside the data it generates, unless a key is already given."""
    if not identity.generate_local_key or os.environ.get(identity.key_env):
        return
    path = key_file_path(identity, root)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secrets.token_hex(32) + "\n", encoding="ascii")
    path.chmod(0o600)
    log("generated a local HMAC key for the embedded demo", logging.WARNING, key_file=str(path))


def keys_of_listed_numbers(numbers_df: DataFrame, identity: IdentityConfig, hmac_key: bytes, source: str) -> DataFrame:
    """The subscriber keys of a list of numbers (``msisdn`` in any format the operator's systems
    write: an opt-out list, an erasure request). A number that does not read as one of the
    operator's mobile numbers stops the run, naming ``source`` and the first such rows: a number
    we cannot read may be someone who said no."""
    if "msisdn" not in numbers_df.columns:
        raise BadValuesError(f"{source}: no column 'msisdn' (columns: {numbers_df.columns})")
    e164 = normalize_msisdn_from_config(F.col("msisdn"), identity)
    read_df = numbers_df.select("msisdn", e164.alias("_e164"))
    bad = read_df.where(F.col("_e164").isNull() & F.col("msisdn").isNotNull() & (F.trim("msisdn") != ""))
    examples = [r["msisdn"] for r in bad.limit(5).collect()]
    if examples:
        raise BadValuesError(
            f"{source}: {bad.count()} number(s) in column 'msisdn' are not mobile numbers of the operator "
            f"(first: {examples}); fix the list: an unreadable number may be someone who said no"
        )
    return (
        read_df.where(F.col("_e164").isNotNull())
        .select(hmac_sha256_hex(F.col("_e164"), hmac_key).alias("subscriber_key"))
        .distinct()
    )
