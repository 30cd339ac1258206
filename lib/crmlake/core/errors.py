"""Named exceptions with messages a data engineer can act on.

Every error crmlake raises on purpose derives from :class:`CrmlakeError`; the CLI turns them
into one clear line on stderr and the exit code named here, never a stack trace.

Exit codes: 0 success, 1 unexpected failure, 2 configuration or usage error (also an unknown
table name or mismatched Spark/Delta versions), 3 missing secret, 4 unreadable input, 5 missing
upstream table, 6 counts that do not reconcile, 7 a push to a database that failed (and was
rolled back), 8 another run holds the root's lock; a job made of jobs exits with its failed step's code.
"""


class CrmlakeError(Exception):
    exit_code = 1


class ConfigError(CrmlakeError):
    """A configuration file or flag is wrong (unknown key, wrong type, missing file)."""

    exit_code = 2


class VersionMismatchError(CrmlakeError):
    """The JVM's Spark or Delta is not the version the Python packages were pinned to."""

    exit_code = 2


class MissingSecretError(CrmlakeError):
    """The pseudonymization key is not available."""

    exit_code = 3


class UnreadableFileError(CrmlakeError):
    """A landing file cannot be parsed at all; the run wrote nothing."""

    exit_code = 4


class MissingInputError(CrmlakeError):
    """Input a run was told to expect is not there (a day without landing files, where the
    configuration says that is an error)."""

    exit_code = 4


class MissingColumnsError(CrmlakeError):
    """A DataFrame or file lacks columns a step needs."""

    exit_code = 4


class UnknownTableError(CrmlakeError):
    """A table name that the catalog does not declare."""

    exit_code = 2


class TableNotFoundError(CrmlakeError):
    """A Delta table a job reads does not exist yet."""

    exit_code = 5


class ReconciliationError(CrmlakeError):
    """Counts do not add up: read != accepted + quarantined + duplicates. The run wrote nothing."""

    exit_code = 6


class BadValuesError(CrmlakeError):
    """Rows of an input whose values cannot be read as their column requires (names the file,
    column and examples)."""

    exit_code = 4


class IncompatibleTableError(CrmlakeError):
    """A table a model is asked to read lacks columns the model was trained on, or holds them
    with another type (names each column). Nothing was written."""

    exit_code = 4


class StaleInputError(CrmlakeError):
    """An input is older than a run may act on (a subscriber master too old to read consent
    from). Names the table, its newest date and the configured limit. Nothing was written."""

    exit_code = 5


class OutcomeNotKnownError(CrmlakeError):
    """A campaign list's outcome is not observable yet: its window (publish date + the label
    horizon) has not closed, or the churn labels of its publish date are not written. Names the
    list and the date the outcome becomes known. Nothing was written."""

    exit_code = 5


class JdbcPushError(CrmlakeError):
    """A push of a published list to a database failed; its transaction was rolled back, so the
    target table is as it was. Names the URL (never a password), the table and the cause."""

    exit_code = 7


class RootLockedError(CrmlakeError):
    """Another run writes the same tables of this root now (names it); this run wrote nothing."""

    exit_code = 8


class StepFailedError(CrmlakeError):
    """A step of a job made of jobs (``crmlake daily``) failed; names the step and the steps not
    run. The exit code is the step's own."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code
