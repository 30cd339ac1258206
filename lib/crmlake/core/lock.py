"""One writer at a time for the tables of a root: a lock file under ``<root>/_locks/``.

Ingest and erasure both rewrite bronze and silver, and a failed ingest restores the tables it
moved; two of them at once on one root would commit into each other's snapshots and undo each
other's work. A run takes the lock before it reads a table version and gives it back when it
ends, whatever the end; a second run stops at once with a message naming the holder.

The lock file is made with an exclusive create, which is atomic on a local or mounted POSIX
folder. A holder killed on this machine leaves a lock whose process is gone: the next run takes
it over with a warning. A holder on another machine cannot be checked: its lock says where it
ran, and must be removed by hand once that run is known to be dead.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from crmlake.core.errors import RootLockedError
from crmlake.core.log import log

LOCKS = "_locks"


def _local_folder(root: str) -> Path | None:
    parsed = urlparse(root)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else root)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@contextmanager
def root_lock(root: str, name: str, job: str, run_id: str) -> Iterator[None]:
    """Hold ``<root>/_locks/<name>.lock`` for the block; :class:`RootLockedError` if another run
    holds it."""
    folder = _local_folder(root)
    if folder is None:
        log("no lock on this kind of root: runs on it must not overlap", logging.WARNING, root=root, lock=name)
        yield
        return
    path = folder / LOCKS / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {
        "job": job,
        "run_id": run_id,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    for attempt in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(path)
            stale = (
                holder.get("host") == me["host"] and isinstance(holder.get("pid"), int) and not _alive(holder["pid"])
            )
            if stale and attempt == 0:
                log("taking over a lock whose run is gone", logging.WARNING, lock=str(path), holder=holder)
                path.unlink(missing_ok=True)
                continue
            who = (
                f"{holder.get('job', '?')} run {holder.get('run_id', '?')} (pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')}, since {holder.get('since', '?')})"
                if holder
                else "a run that has not said who it is yet"
            )
            raise RootLockedError(
                f"{root} is held by {who}: one {name} writer at a time. Wait for it to end; if it is known to "
                f"be dead, delete {path}"
            ) from None
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(me, out)
        break
    try:
        yield
    finally:
        if _read(path).get("run_id") == run_id:
            path.unlink(missing_ok=True)


# Ingest and erasure rewrite bronze and silver: one of them at a time on a root.
SILVER_WRITERS = "silver"
