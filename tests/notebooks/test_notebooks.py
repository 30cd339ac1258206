"""Notebooks are executed, so a walkthrough that no longer runs fails the suite."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(spark, tmp_path, monkeypatch, notebook):
    monkeypatch.setenv("CRMLAKE_NOTEBOOK_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("CRMLAKE_HMAC_KEY", "notebook-key")
    partitions = spark.conf.get("spark.sql.shuffle.partitions")
    try:
        runpy.run_path(str(notebook), run_name="__main__")
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", partitions)
