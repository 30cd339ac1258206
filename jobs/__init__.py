"""spark-submit entry points, one per job (installed as ``crmlake_jobs`` for the CLI)."""
