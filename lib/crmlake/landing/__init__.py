"""Finding and reading the files an operator's systems drop into ``landing/``."""
