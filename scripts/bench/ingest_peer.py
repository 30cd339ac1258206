"""DuckDB SQL doing what crmlake's ingest does to usage, from the same landing files, and a row-for-row
check of its result against crmlake's ``silver.usage`` and ``silver.quarantine``: the benchmark peer of
the ingest stage (Spark and DuckDB in one run; the goal is Spark within 4× of DuckDB).

    python scripts/bench/ingest_peer.py --root ROOT [--threads 2] [--db PATH] [--check]

stdout: one JSON line, the DuckDB seconds and the counts (read, accepted, quarantined, duplicate).
``--check``: the comparison goes to stderr; exit 1 if anything differs, 0 if identical. Another bench
script imports :func:`run_peer` and :func:`check`.

What is timed (:func:`run_peer`), each step a table in one DuckDB database (``--db PATH`` for an
on-disk one, needed at 100 M records; in memory otherwise):

1. ``bronze_usage``: every line of ``ROOT/landing/usage/date=YYYY-MM-DD/*`` (the files crmlake's
   ingest takes: not ``_*`` or ``.*``, not empty), read whole with a four-byte delimiter no text
   holds and no quote character, then split as Spark's CSV reader splits a line (see below). The
   contract's columns stay strings; a line that does not make 14 fields is kept whole in
   ``_corrupt_record``; ``_source_file`` and ``_file_date`` come from the path.
2. ``usage_numbers``: per distinct raw ``msisdn`` (a few per subscriber, not one per record), the
   E.164 form as ``identity.normalize_msisdn`` makes it, ``subscriber_key`` as HMAC-SHA256 of it
   (RFC 2104 from DuckDB's ``sha256`` over blobs, as ``identity.hmac_sha256_hex`` writes it from
   ``sha2``; DuckDB 1.5.5 has no HMAC function) and whether the subscriber master knows the key.
   The known keys are an input: the distinct ``subscriber_key`` of crmlake's
   ``ROOT/silver/subscribers`` (read with ``delta_scan``, inside the timing), as the ingest of usage
   reads them after its subscribers are written.
3. ``usage_classified``: typed columns (``contracts.rules.typed``), the first rule each row breaks
   in ``contracts.rule_checks`` order, the quarantine's ``raw``, ``event_date`` and ``_row_hash``.
4. ``quarantine_usage`` (entity, ``_file_date``, ``_source_file``, rule, column, raw): every
   rejected row. ``duplicate_usage``: the accepted rows that another accepted row of their
   ``record_id`` outranks (newest ``_file_date`` first, then ``_source_file``, then ``_row_hash``,
   descending); only keys with more than one accepted row are ranked.
5. ``silver_usage`` (business columns, ``event_date``, ``_row_hash``, ``_source_file``,
   ``_file_date``): what is left of ``usage_classified`` once those rows are deleted.

Limits and configuration come from crmlake's own config (``load_config``: ``conf/base``, the
``CRMLAKE_ENV`` overlay), the entity's columns, required columns, enumerations and ranges from
``contracts.entities``, the HMAC key from ``identity.load_hmac_key`` (``CRMLAKE_HMAC_KEY``). Zone-less
timestamps are read in ``spark.time_zone``, as the Spark session reads them.

Malformed lines. Spark reads a CSV file line by line (PERMISSIVE, escape ``"``): a line whose
fields do not number 14 is corrupt, and an unbalanced quote spoils only its own line (the field
it opens runs to the end of the line). Here a line without a quote is split at its commas; a line
with one must be a run of RFC 4180 fields (``"..."`` with quotes doubled inside, or unquoted text
not starting with a quote) or it is malformed. Lines Spark skips (empty, or blank after Java's
``trim``) are skipped. On the generator's faults (a field missing, a field extra, a stray quote
at the start of a line, the cut last line of a file) both readings agree. Where they can
disagree: an unterminated quote in the 14th field (Spark reads 14 fields: not malformed; here it
is), a quoted field followed by more text (``"a"b``: Spark's parser may read it as one field,
here the line is malformed), a line holding the delimiter bytes 0x1E 0x1F 0x1E 0x1F (cut there), invalid UTF-8
(Spark substitutes U+FFFD, DuckDB's reader stops) and line breaks inside quotes: crmlake reads
such a file again as multi-line CSV (``bronze.land._reread_split_records``); this peer does not.

Typed values. Spark's ``try_cast`` is ANSI: ``12.5`` and ``1_000`` are not longs, where DuckDB's
cast would round or read them, so each cast is guarded by a pattern of what both read the same: an
optionally signed integer, a decimal (optionally with an exponent), an ISO date or date-time with
an optional ``Z`` or ``±HH:MM``. Values Spark also reads but the patterns leave out (tabs around a
number, a one-digit month, ``yyyy`` alone) are invalid here. The E.164 check uses full matches,
where Java's ``$`` would also match before a final U+2028 or U+0085.

De-duplication. Within one ingest run every row has the same ``_ingested_at`` and ``_batch_id``,
so crmlake's order (``_file_date``, ``_ingested_at``, ``_batch_id``, ``_source_file``,
``_row_hash``, all descending) is the one used here. ``_row_hash`` is what crmlake computes for an
event (``classify.row_hash``): a 64-bit hash of the typed business columns, here DuckDB's own
``hash`` of them (Spark's is xxHash64, which DuckDB lacks). Rows of one file with the same
``record_id`` and different content, told apart by the hash alone, may therefore be settled
otherwise: the check accepts crmlake's row where it is one of the peer's duplicates from the
file of the peer's row, and reports how many keys it accepted so.

The check (:func:`check`) reads crmlake's tables with ``delta_scan`` and compares, as multisets,
every business column, ``event_date``, ``_source_file`` and ``_file_date`` of every silver row,
and (``_source_file``, rule, column, raw) of every quarantine row of entity usage; the peer's
read count is compared with the rows of ``bronze.usage``. It presumes crmlake took these files in
one ingest run, as the benchmark has it (later runs could re-derive days, and re-deliveries add
batches this peer does not model).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from pathlib import Path

import duckdb
import duckdb_extension_delta
from crmlake.contracts.entities import ENTITIES, business_columns
from crmlake.contracts.rules import BITS_PER_BYTE, FALSE_WORDS, TRUE_WORDS
from crmlake.core.config import Settings, load_config
from crmlake.landing.files import FILE_DATE_PATTERN, LANDING_FILE_PATTERN
from crmlake.silver.identity import SHA256_BLOCK_BYTES, load_hmac_key
from pyspark.sql import types as T

USAGE = ENTITIES["usage"]
SHOWN_DIFFERENCES = 10

# Four control bytes no CSV text holds: DuckDB's reader then hands over each line whole.
LINE_DELIMITER = "\x1e\x1f\x1e\x1f"
# Java's String.trim: what Spark strips before it decides a line is blank (and skips it).
BLANK_LINE = r"[\x00-\x20]*"
# One RFC 4180 field: quoted (quotes doubled inside), or unquoted text not starting with a quote.
CSV_FIELD = r'"(?:[^"]|"")*"|[^",][^,]*|'
CSV_LINE = rf"(?:{CSV_FIELD})(?:,(?:{CSV_FIELD}))*"

# Values both Spark's ANSI try_cast and DuckDB's TRY_CAST read, and read the same.
INTEGER_TEXT = r"[+-]?[0-9]+"
DECIMAL_TEXT = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
TIMESTAMP_TEXT = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[ T][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?"
)

# identity.normalize_msisdn: Persian and Arabic-Indic digits, and the separators people type
# (Java's \s is [ \t\n\x0B\f\r]; RE2's lacks \x0B, so the class is spelled out).
LOCAL_DIGITS = "۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩"
ASCII_DIGITS = "0123456789" * 2
MSISDN_SEPARATORS = r"[ \t\n\x0B\f\r\-.()/\x{200c}\x{00a0}]"

# silver.usage's columns (classify.silver_rows), less the batch id and time, alike for every row of a run.
SILVER_COLUMNS = [*business_columns(USAGE), "event_date", "_row_hash", "_source_file", "_file_date"]
# What the check compares of a silver row: the business columns, the event date and lineage.
SILVER_COMPARED = [*business_columns(USAGE), "event_date", "_source_file", "_file_date"]
QUARANTINE_COMPARED = ["_source_file", "rule", "column", "raw"]
# Each kind of difference the check counts: the rows of one side (a view) the other lacks.
DIFFERENCES = {
    "silver_only_duckdb": ("duckdb_silver", "crmlake_silver"),
    "silver_only_crmlake": ("crmlake_silver", "duckdb_silver"),
    "quarantine_only_duckdb": ("duckdb_quarantine", "crmlake_quarantine"),
    "quarantine_only_crmlake": ("crmlake_quarantine", "duckdb_quarantine"),
}


def quoted(name: str) -> str:
    return f'"{name}"'


def text(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def text_list(values) -> str:
    return "(" + ", ".join(text(v) for v in values) + ")"


def delta_extension_path() -> str:
    """DuckDB's delta extension as the duckdb-extension-delta wheel ships it (DuckDB would
    download it at run time, which cannot work offline)."""
    found = list(Path(duckdb_extension_delta.__file__).parent.glob("extensions/*/delta.duckdb_extension"))
    if len(found) != 1:
        raise FileNotFoundError(f"expected one delta extension in the duckdb-extension-delta wheel, found {found}")
    return str(found[0])


def landing_files(root: Path) -> list[str]:
    """The usage files crmlake's ingest takes (``landing.files.list_landing_files``, less the
    empty files ``inspect_files`` sets aside)."""
    folders = sorted((root / "landing" / USAGE.name).glob("date=*"))
    return [
        str(path)
        for folder in folders
        if folder.is_dir() and re.fullmatch(FILE_DATE_PATTERN, folder.name)
        for path in sorted(folder.iterdir())
        if path.is_file() and not path.name.startswith(("_", ".")) and path.stat().st_size > 0
    ]


def bronze_sql() -> str:
    """``bronze_usage`` from the files (parameter 1): landing columns as strings (empty fields
    null, as Spark's CSV reader makes them), ``_corrupt_record``, ``_source_file``, ``_file_date``."""
    width = len(USAGE.landing_columns)
    unquoted = "CASE WHEN starts_with(field, '\"') THEN replace(field[2:-2], '\"\"', '\"') ELSE field END"
    columns = ",\n  ".join(
        f"CASE WHEN len(fields) = {width} THEN nullif(fields[{i}], '') END AS {quoted(c)}"
        for i, c in enumerate(USAGE.landing_columns, start=1)
    )
    return f"""
CREATE OR REPLACE TABLE bronze_usage AS
WITH lines AS (
  SELECT line,
    regexp_extract(filename, {text(LANDING_FILE_PATTERN)}, 1) AS _source_file,
    CAST(regexp_extract(filename, {text(FILE_DATE_PATTERN)}, 1) AS DATE) AS _file_date
  FROM read_csv($1, columns = {{'line': 'VARCHAR'}}, header = true, delim = {text(LINE_DELIMITER)}, quote = '',
    escape = '', auto_detect = false, strict_mode = false, filename = true)
  WHERE line IS NOT NULL AND NOT regexp_full_match(line, {text(BLANK_LINE)})
), split AS (
  SELECT *,
    CASE
      WHEN NOT contains(line, '"') THEN string_split(line, ',')
      WHEN regexp_full_match(line, {text(CSV_LINE)})
        THEN list_transform(regexp_extract_all(line || ',', {text(f"({CSV_FIELD}),")}, 1), field -> {unquoted})
    END AS fields
  FROM lines
)
SELECT
  {columns},
  CASE WHEN len(fields) IS DISTINCT FROM {width} THEN line END AS _corrupt_record,
  _source_file, _file_date
FROM split
"""


def hmac_sha256_hex_sql(message: str, key: bytes) -> str:
    """Hex HMAC-SHA256 of a VARCHAR expression under ``key``: RFC 2104, ``H((K ^ opad) || H((K ^
    ipad) || m))``, the padded keys computed here and written as blob literals (null in, null out)."""
    if len(key) > SHA256_BLOCK_BYTES:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(SHA256_BLOCK_BYTES, b"\x00")
    inner_key = bytes(b ^ 0x36 for b in padded).hex()
    outer_key = bytes(b ^ 0x5C for b in padded).hex()
    inner = f"unhex(sha256(unhex('{inner_key}') || encode({message})))"
    return f"sha256(unhex('{outer_key}') || {inner})"


def numbers_sql(settings: Settings, key: bytes) -> str:
    """``usage_numbers``: per distinct raw ``msisdn`` of bronze (``number``), ``msisdn_e164`` (null
    when it is not a mobile number of the operator's country), ``subscriber_key`` and ``is_known``."""
    identity = settings.identity
    country, trunk, international = identity.country_code, identity.trunk_prefix, identity.international_prefix
    length = identity.national_number_length
    mobile = f"{country}({'|'.join(identity.mobile_prefixes)})[0-9]{{{length - 1}}}"
    return f"""
CREATE OR REPLACE TABLE usage_numbers AS
WITH cleaned AS (
  SELECT msisdn,
    regexp_replace(translate(trim(msisdn, ' '), {text(LOCAL_DIGITS)}, {text(ASCII_DIGITS)}),
      {text(MSISDN_SEPARATORS)}, '', 'g') AS cleaned
  FROM (SELECT DISTINCT msisdn FROM bronze_usage WHERE msisdn IS NOT NULL)
), international AS (
  SELECT msisdn, cleaned,
    CASE
      WHEN starts_with(cleaned, '+') THEN substring(cleaned, 2, 64)
      WHEN starts_with(cleaned, {text(international)}) THEN substring(cleaned, {len(international) + 1}, 64)
      WHEN starts_with(cleaned, {text(trunk)}) THEN {text(country)} || substring(cleaned, {len(trunk) + 1}, 64)
      WHEN length(cleaned) = {length} THEN {text(country)} || cleaned
      ELSE cleaned
    END AS international
  FROM cleaned
), e164 AS (
  SELECT msisdn,
    CASE WHEN regexp_full_match(cleaned, '\\+?[0-9]+') AND regexp_full_match(international, {text(mobile)})
      THEN '+' || international END AS msisdn_e164
  FROM international
), keyed AS (
  SELECT msisdn, msisdn_e164, {hmac_sha256_hex_sql("msisdn_e164", key)} AS subscriber_key FROM e164
)
SELECT keyed.msisdn AS number, keyed.msisdn_e164, keyed.subscriber_key, known.subscriber_key IS NOT NULL AS is_known
FROM keyed LEFT JOIN known_subscribers AS known USING (subscriber_key)
"""


def duckdb_type(dtype: T.DataType) -> str:
    if isinstance(dtype, T.DecimalType):
        return f"DECIMAL({dtype.precision},{dtype.scale})"
    # TIMESTAMPTZ: an instant, as Spark's timestamp is, read and shown in the session's zone
    names = {T.StringType: "VARCHAR", T.LongType: "BIGINT", T.BooleanType: "BOOLEAN", T.TimestampType: "TIMESTAMPTZ"}
    return names[type(dtype)]


def raw_text_sql(name: str) -> str:
    """``contracts.rules.raw_text``: trimmed of spaces, empty as null."""
    return f"nullif(trim({quoted(name)}, ' '), '')"


def typed_sql(raw: str, dtype: T.DataType) -> str:
    """``contracts.rules.typed`` of a raw text column: its contract type, null where it does not read."""
    if isinstance(dtype, T.StringType):
        return raw
    if isinstance(dtype, T.BooleanType):
        lowered = f"lower({raw})"
        return (
            f"CASE WHEN {lowered} IN {text_list(TRUE_WORDS)} THEN true "
            f"WHEN {lowered} IN {text_list(FALSE_WORDS)} THEN false END"
        )
    pattern = {T.LongType: INTEGER_TEXT, T.DecimalType: DECIMAL_TEXT, T.TimestampType: TIMESTAMP_TEXT}[type(dtype)]
    return f"CASE WHEN regexp_full_match({raw}, {text(pattern)}) THEN TRY_CAST({raw} AS {duckdb_type(dtype)}) END"


def rules_sql(settings: Settings) -> list[tuple[str, str, str | None]]:
    """``contracts.rule_checks`` for usage, in order: (condition over the typed columns, rule,
    column). The first that holds is the row's reject reason."""
    ingest = settings.ingest
    rules: list[tuple[str, str, str | None]] = [("_corrupt_record IS NOT NULL", "malformed_row", None)]
    rules += [(f"raw_{c} IS NULL", "missing_required", c) for c in USAGE.required]
    rules += [
        (f"raw_{f.name} IS NOT NULL AND typed_{f.name} IS NULL", "invalid_type", f.name)
        for f in USAGE.silver.fields
        if not isinstance(f.dataType, T.StringType)
    ]
    rules.append(("raw_msisdn IS NOT NULL AND msisdn_e164 IS NULL", "invalid_msisdn", "msisdn"))
    rules += [(f"typed_{c} NOT IN {text_list(values)}", "invalid_enum", c) for c, values in USAGE.enums.items()]
    rules.append((f"typed_currency NOT IN {text_list(ingest.currencies)}", "invalid_enum", "currency"))
    for c, (low, high) in USAGE.ranges.items():
        if low is not None:
            rules.append((f"typed_{c} < {low}", "out_of_range", c))
        if high is not None:
            rules.append((f"typed_{c} > {high}", "out_of_range", c))
    rules.append((f"CAST(typed_charge_amount AS DOUBLE) > {ingest.max_amount!r}", "out_of_range", "charge_amount"))
    rules.append((f"typed_duration_s > {ingest.max_duration_s}", "out_of_range", "duration_s"))
    # A link carries at most max_throughput_bps; short records get one second's worth.
    capacity = f"greatest(coalesce(typed_duration_s, 0), 1) * {ingest.max_throughput_bps // BITS_PER_BYTE}"
    volume = "coalesce(typed_bytes_up, 0) + coalesce(typed_bytes_down, 0)"
    rules.append((f"{volume} > {capacity}", "impossible_bytes", "bytes_down"))
    rules.append(("typed_event_time > latest_event_time", "future_event_time", "event_time"))
    rules.append(("event_date < earliest_event_date", "too_late", "event_time"))
    rules.append(("subscriber_key IS NOT NULL AND NOT is_known", "unknown_subscriber", "msisdn"))
    return rules


def spark_json_sql(members: list[tuple[str, str]]) -> str:
    """Spark's ``to_json(struct(...))`` of (name, JSON value SQL) pairs: null fields left out."""
    parts = ", ".join(f"{text(json.dumps(name) + ':')} || {value}" for name, value in members)
    return f"'{{' || concat_ws(',', {parts}) || '}}'"


def spark_json_value_sql(value: str) -> str:
    """A text value as Spark's ``to_json`` writes it, null for null."""
    return f"CAST(to_json({value}) AS VARCHAR)"


def classify_sql(settings: Settings) -> str:
    """``usage_classified``: every bronze row in silver's columns (``SILVER_COLUMNS``: typed
    business columns, ``event_date``, ``_row_hash`` for an accepted row, lineage), then the rule it
    breaks (``rule``, ``column``, null for none) and ``raw`` for a rejected row."""
    ingest = settings.ingest
    fields = USAGE.silver.fields
    trimmed = ",\n    ".join(f"{raw_text_sql(c)} AS raw_{c}" for c in USAGE.landing_columns)
    typed = ",\n    ".join(f"{typed_sql(f'raw_{f.name}', f.dataType)} AS typed_{f.name}" for f in fields)
    reasons = "\n      ".join(
        f"WHEN {condition} THEN {{'rule': {text(rule)}, 'column': {text(column) if column else 'NULL'}}}"
        for condition, rule, column in rules_sql(settings)
    )
    landing_json = spark_json_sql([(c, spark_json_value_sql(quoted(c))) for c in USAGE.landing_columns])
    types = {f.name: f.dataType for f in fields}
    business = [(c, f"typed_{c}" if c in types else c) for c in business_columns(USAGE)]
    return f"""
CREATE OR REPLACE TABLE usage_classified AS
WITH file_days AS (
  -- the bounds of an event's time, which depend on its file's day alone
  SELECT _file_date,
    CAST(_file_date AS TIMESTAMPTZ) + to_days(1) + to_hours({ingest.future_tolerance_hours}) AS latest_event_time,
    _file_date - {ingest.max_lateness_days} AS earliest_event_date
  FROM (SELECT DISTINCT _file_date FROM bronze_usage)
), trimmed AS (
  SELECT bronze.*, numbers.msisdn_e164, numbers.subscriber_key, numbers.is_known,
    file_days.latest_event_time, file_days.earliest_event_date,
    {trimmed}
  FROM bronze_usage AS bronze
  LEFT JOIN usage_numbers AS numbers ON numbers.number = bronze.msisdn
  JOIN file_days USING (_file_date)
), typed AS (
  SELECT *,
    {typed}
  FROM trimmed
), dated AS (
  SELECT *, CAST(typed_event_time AS DATE) AS event_date
  FROM typed
), judged AS (
  SELECT *,
    CASE
      {reasons}
    END AS reject
  FROM dated
)
SELECT {", ".join(f"{v} AS {quoted(c)}" for c, v in business)}, event_date,
  CASE WHEN reject IS NULL THEN hash({", ".join(v for _, v in business)}) END AS _row_hash,
  _source_file, _file_date, reject.rule AS rule, reject."column" AS "column",
  -- what arrived, for the quarantine: the line, or the fields as the strings they were
  CASE WHEN reject IS NOT NULL THEN coalesce(_corrupt_record, {landing_json}) END AS raw
FROM judged
"""


# Accepted rows that another accepted row of the same record_id outranks: newer file date, then
# file, then _row_hash. Only keys with more than one accepted row are ranked.
DUPLICATES_SQL = """
CREATE OR REPLACE TABLE usage_duplicate_rows AS
WITH contested AS (
  SELECT record_id FROM usage_classified WHERE rule IS NULL GROUP BY record_id HAVING count(*) > 1
), ranked AS (
  SELECT rowid AS row_id,
    row_number() OVER (PARTITION BY record_id ORDER BY _file_date DESC, _source_file DESC, _row_hash DESC) AS rank
  FROM usage_classified
  WHERE rule IS NULL AND record_id IN (SELECT record_id FROM contested)
)
SELECT row_id FROM ranked WHERE rank > 1
"""


def connect(db: str | None, threads: int, time_zone: str, temp_dir: str | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(db or ":memory:", config={"allow_unsigned_extensions": "true"})
    if temp_dir:
        # where DuckDB spills what does not fit in memory (by default a .tmp folder in the
        # working directory: a checkout, at 100 M records tens of gigabytes)
        con.execute(f"SET temp_directory = {text(temp_dir)}")
    con.execute(f"LOAD '{delta_extension_path()}'")
    con.execute(f"SET threads = {int(threads)}")
    con.execute(f"SET TimeZone = {text(time_zone)}")
    # no query here needs its rows in insertion order; without it DuckDB writes tables in parallel
    con.execute("SET preserve_insertion_order = false")
    return con


def delta_table(root: Path, layer: str, name: str) -> Path | None:
    """The folder of crmlake's ``<layer>.<name>``, None where it has not been written."""
    path = root / layer / name
    return path if (path / "_delta_log").is_dir() else None


def run_peer(root: str | Path, threads: int, db: str | None = None, temp_dir: str | None = None) -> dict:
    """Do what crmlake's ingest does to usage with DuckDB SQL, timed. Returns the seconds, the
    counts (read, accepted, quarantined, duplicate) and, under ``connection``, the DuckDB
    connection holding ``silver_usage``, ``quarantine_usage`` and ``duplicate_usage``. DuckDB
    spills to ``temp_dir`` (its default: ``.tmp`` in the working directory)."""
    root = Path(root)
    settings = load_config().settings
    files = landing_files(root)
    if not files:
        raise FileNotFoundError(f"no usage landing files under {root / 'landing' / USAGE.name}")
    key = load_hmac_key(settings.identity, str(root))
    con = connect(db, threads, settings.spark.time_zone, temp_dir)
    subscribers = delta_table(root, "silver", "subscribers")
    silver_columns = ", ".join(quoted(c) for c in SILVER_COLUMNS)

    started = time.perf_counter()
    con.execute(
        "CREATE OR REPLACE TABLE known_subscribers AS "
        + (
            f"SELECT DISTINCT subscriber_key FROM delta_scan({text(str(subscribers))})"
            if subscribers
            else "SELECT CAST(NULL AS VARCHAR) AS subscriber_key WHERE false"
        )
    )
    con.execute(bronze_sql(), [files])
    con.execute(numbers_sql(settings, key))
    con.execute(classify_sql(settings))
    con.execute(DUPLICATES_SQL)
    con.execute(
        f"CREATE OR REPLACE TABLE quarantine_usage AS SELECT {text(USAGE.name)} AS entity, _file_date, _source_file, "
        'rule, "column", raw FROM usage_classified WHERE rule IS NOT NULL'
    )
    con.execute(
        f"CREATE OR REPLACE TABLE duplicate_usage AS SELECT {silver_columns} FROM usage_classified "
        "WHERE rowid IN (SELECT row_id FROM usage_duplicate_rows)"
    )
    # What is left is silver: made in place, as copying a million rows costs more than the rest of
    # the de-duplication.
    con.execute(
        "DELETE FROM usage_classified WHERE rule IS NOT NULL OR rowid IN (SELECT row_id FROM usage_duplicate_rows)"
    )
    for column in ["rule", "column", "raw"]:
        con.execute(f"ALTER TABLE usage_classified DROP COLUMN {quoted(column)}")
    con.execute("DROP TABLE IF EXISTS silver_usage")
    con.execute("ALTER TABLE usage_classified RENAME TO silver_usage")
    counts = con.execute(
        "SELECT (SELECT count(*) FROM bronze_usage), (SELECT count(*) FROM silver_usage), "
        "(SELECT count(*) FROM quarantine_usage), (SELECT count(*) FROM duplicate_usage)"
    ).fetchone()
    for table in ["usage_duplicate_rows", "usage_numbers"]:
        con.execute(f"DROP TABLE {table}")
    seconds = time.perf_counter() - started

    return {
        "engine": f"duckdb {duckdb.__version__}",
        "entity": USAGE.name,
        "files": len(files),
        "threads": threads,
        "seconds": round(seconds, 3),
        **dict(zip(["read", "accepted", "quarantined", "duplicate"], counts, strict=True)),
        "connection": con,
    }


def same_row(left: str, right: str, columns: list[str]) -> str:
    return " AND ".join(f"{left}.{quoted(c)} IS NOT DISTINCT FROM {right}.{quoted(c)}" for c in columns)


def check(root: str | Path, con: duckdb.DuckDBPyConnection) -> dict:
    """Compare the peer's tables in ``con`` with crmlake's ``silver.usage`` (every row) and
    ``silver.quarantine`` (entity usage), as multisets, and the peer's rows read with those of
    ``bronze.usage``. Returns ``identical``, ``summary`` (one line), ``read``, and per kind of
    difference (``DIFFERENCES``) its rows and the first of them; ``ties_settled_differently``
    counts the keys whose tie crmlake settled otherwise (tolerated: see the module's doc)."""
    root = Path(root)
    tables = {
        "silver.usage": delta_table(root, "silver", USAGE.name),
        "silver.quarantine": delta_table(root, "silver", "quarantine"),
        "bronze.usage": delta_table(root, "bronze", USAGE.name),
    }
    missing = [name for name, path in tables.items() if path is None]
    if missing:
        raise FileNotFoundError(f"crmlake has not written {missing} under {root}")
    silver_list = ", ".join(quoted(c) for c in SILVER_COMPARED)
    quarantine_list = ", ".join(quoted(c) for c in QUARANTINE_COMPARED)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW crmlake_silver AS SELECT {silver_list} "
        f"FROM delta_scan({text(str(tables['silver.usage']))})"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW crmlake_quarantine AS SELECT {quarantine_list} "
        f"FROM delta_scan({text(str(tables['silver.quarantine']))}) WHERE entity = {text(USAGE.name)}"
    )
    con.execute(f"CREATE OR REPLACE TEMP VIEW duckdb_silver AS SELECT {silver_list} FROM silver_usage")
    con.execute(f"CREATE OR REPLACE TEMP VIEW duckdb_quarantine AS SELECT {quarantine_list} FROM quarantine_usage")
    for kind, (ours, theirs) in DIFFERENCES.items():
        con.execute(f"CREATE OR REPLACE TEMP TABLE {kind} AS SELECT * FROM {ours} EXCEPT ALL SELECT * FROM {theirs}")
    # A key whose accepted rows from its newest file were told apart by _row_hash alone, settled
    # otherwise: crmlake's row is one of the peer's duplicates from the file of the peer's row.
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE ties AS
SELECT DISTINCT crmlake.record_id
FROM silver_only_crmlake AS crmlake
JOIN duplicate_usage AS duplicate ON {same_row("crmlake", "duplicate", SILVER_COMPARED)}
JOIN silver_usage AS peer ON peer.record_id = crmlake.record_id AND peer._file_date = crmlake._file_date
  AND peer._source_file = crmlake._source_file
""")

    differences = {}
    for kind in DIFFERENCES:
        untied = f"FROM {kind}" + (" WHERE record_id NOT IN (SELECT record_id FROM ties)" if "silver" in kind else "")
        rows = con.execute(f"SELECT count(*) {untied}").fetchone()[0]
        first = con.execute(f"SELECT * {untied} ORDER BY ALL LIMIT {SHOWN_DIFFERENCES}").fetchall()
        differences[kind] = {"rows": rows, "first": [[str(v) for v in row] for row in first]}
    ties = con.execute("SELECT count(*) FROM ties").fetchone()[0]
    peer_read, bronze_read, silver_rows, quarantine_rows = con.execute(
        "SELECT (SELECT count(*) FROM silver_usage) + (SELECT count(*) FROM quarantine_usage) "
        "+ (SELECT count(*) FROM duplicate_usage), "
        f"(SELECT count(*) FROM delta_scan({text(str(tables['bronze.usage']))})), "
        "(SELECT count(*) FROM crmlake_silver), (SELECT count(*) FROM crmlake_quarantine)"
    ).fetchone()

    found = [f"{kind} {d['rows']:,}" for kind, d in differences.items() if d["rows"]]
    if peer_read != bronze_read:
        found.insert(0, f"read {peer_read:,} against bronze.usage's {bronze_read:,}")
    tied = f"; {ties:,} ties settled differently (tolerated)" if ties else ""
    summary = (
        f"DIFFERENT: {', '.join(found)}{tied}"
        if found
        else f"identical: {silver_rows:,} silver rows and {quarantine_rows:,} quarantine rows, every compared "
        f"column{tied}"
    )
    return {
        "identical": not found,
        "summary": summary,
        "read": {"duckdb": peer_read, "bronze.usage": bronze_read},
        "ties_settled_differently": ties,
        **differences,
    }


def report(verdict: dict) -> None:
    """The check's verdict on stderr, with the first rows of each kind of difference."""
    print(f"check: {verdict['summary']}", file=sys.stderr)
    for kind in DIFFERENCES:
        found = verdict[kind]
        if found["rows"]:
            columns = SILVER_COMPARED if kind.startswith("silver") else QUARANTINE_COMPARED
            print(f"{kind}: {found['rows']:,} rows; columns {columns}", file=sys.stderr)
            for row in found["first"]:
                print(f"  {row}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="a crmlake root with landing/usage (and, to check, silver)")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB's threads (default: 2)")
    parser.add_argument("--db", help="a DuckDB database file for the tables (default: in memory)")
    parser.add_argument("--check", action="store_true", help="compare with crmlake's silver and quarantine")
    args = parser.parse_args(argv)
    peer = run_peer(args.root, args.threads, args.db)
    con = peer.pop("connection")
    print(json.dumps(peer), flush=True)
    if not args.check:
        return 0
    verdict = check(args.root, con)
    report(verdict)
    return 0 if verdict["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
