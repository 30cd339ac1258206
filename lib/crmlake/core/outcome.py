"""What a job body's library call reports back, for the job to put in its ``gold.run_log`` row.

Every ``<layer>/run.py`` entry point returns one :class:`JobOutcome`; the job copies it into its
:class:`~crmlake.catalog.runlog.RunRecord` with :meth:`JobOutcome.into` and adds what only it
knows (the run date, the event dates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class RunRecordLike(Protocol):
    """The fields of a run record this fills (``crmlake.catalog.runlog.RunRecord``): core sits
    upstream of catalog, so it names the shape, not the class."""

    rows_read: Any
    rows_written: Any
    details: Any
    tables_written: Any
    model_version: Any
    message: Any


@dataclass
class JobOutcome:
    rows_read: int = 0
    rows_written: int = 0
    tables: set[str] = field(default_factory=set)
    details: dict = field(default_factory=dict)
    model_version: str | None = None
    message: str | None = None

    def into(self, record: RunRecordLike) -> None:
        """Copy the counts, details and tables written into ``record``; the model version and
        message only when the run set them, so a record's own (or its default, null) stands
        otherwise."""
        record.rows_read = self.rows_read
        record.rows_written = self.rows_written
        record.details = self.details
        record.tables_written = set(self.tables)
        if self.model_version is not None:
            record.model_version = self.model_version
        if self.message is not None:
            record.message = self.message
