"""crmlake: an analytical CRM for mobile operators, as PySpark batch jobs over Delta Lake."""

__version__ = "0.1.0"
