"""The generation record, ``<root>/truth/generation.json``: what ``crmlake generate`` drew and
wrote (its ``generate`` settings, the number formats, the days generated so far and the
published lists honoured), so that ``crmlake generate --continue`` can carry the same operator
on. Read and written through the Hadoop FileSystem, so it works on any store the lake is on."""

from __future__ import annotations

import json
from typing import Any

from pyspark.sql import SparkSession

from crmlake.catalog import tables
from crmlake.core.errors import CrmlakeError
from crmlake.core.settings import IdentityConfig

RECORD_NAME = "generation.json"
RECORD_VERSION = 1
# the identity settings that format the numbers the generator writes
IDENTITY_KEYS = ("country_code", "trunk_prefix", "international_prefix")


class GenerationRecordError(CrmlakeError):
    """``crmlake generate --continue`` has no generation to continue, or was told something
    that contradicts the one recorded (seed, subscribers, start, number formats)."""

    exit_code = 2


def record_path(root: str) -> str:
    return f"{root.rstrip('/')}/truth/{RECORD_NAME}"


def identity_formats(identity: IdentityConfig) -> dict[str, str]:
    return {key: str(getattr(identity, key)) for key in IDENTITY_KEYS}


def read_record(spark: SparkSession, root: str) -> dict[str, Any]:
    """The record of the operator generated under ``root``; a named error when there is none."""
    path = record_path(root)
    fs, hpath = tables.hadoop_fs(spark, path)
    if not fs.exists(hpath):
        raise GenerationRecordError(
            f"nothing to continue: {path} does not exist (run crmlake generate on this root first; "
            "operators generated before the record existed cannot be continued)"
        )
    stream = fs.open(hpath)
    try:
        data = bytes(spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()
    try:
        record = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise GenerationRecordError(f"{path} is not a generation record ({exc})") from None
    if record.get("version") != RECORD_VERSION:
        raise GenerationRecordError(f"{path}: version {record.get('version')!r}, this crmlake reads {RECORD_VERSION}")
    return record


def write_record(spark: SparkSession, root: str, record: dict[str, Any]) -> None:
    fs, hpath = tables.hadoop_fs(spark, record_path(root))
    out = fs.create(hpath, True)
    try:
        out.write(bytearray(json.dumps({"version": RECORD_VERSION, **record}, indent=2, sort_keys=True).encode()))
    finally:
        out.close()
