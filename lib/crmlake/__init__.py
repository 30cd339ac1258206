"""crmlake: an analytical CRM for mobile operators, as PySpark batch jobs over Delta Lake."""

# The package's entry composes the catalog: each source entity's contract declares its bronze
# and silver tables with it, so the catalog (the ground floor) knows them without importing the
# contracts, whichever module of crmlake is imported first.
import crmlake.contracts.tables  # noqa: F401

__version__ = "0.1.0"
