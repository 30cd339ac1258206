"""Structured logging and visible progress.

Log records go to stderr as one JSON object a line (or plain text with ``logging.format:
text``), so a scheduler can parse them. :func:`stage` wraps a unit of work and logs its start,
its end, rows and elapsed seconds.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextlib import contextmanager

LOGGER_NAME = "crmlake"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname,
            "msg": record.getMessage(),
        }
        payload.update(getattr(record, "fields", {}))
        return json.dumps(payload, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        stamp = time.strftime("%H:%M:%S", time.gmtime(record.created))
        return f"{stamp} {record.levelname:<5} {record.getMessage()} {extra}".rstrip()


def setup_logging(level: str = "INFO", fmt: str = "json") -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return logger


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def log(msg: str, level: int = logging.INFO, **fields) -> None:
    get_logger().log(level, msg, extra={"fields": fields})


@contextmanager
def stage(name: str, **fields):
    """Log the start and end of a stage; the body may set ``info['rows']`` and other fields."""
    info: dict = {}
    started = time.monotonic()
    log(f"{name}: started", stage=name, **fields)
    try:
        yield info
    except Exception:
        log(
            f"{name}: failed",
            logging.ERROR,
            stage=name,
            elapsed_s=round(time.monotonic() - started, 2),
            **fields,
        )
        raise
    log(
        f"{name}: done",
        stage=name,
        elapsed_s=round(time.monotonic() - started, 2),
        **fields,
        **info,
    )
