"""The suite's two Spark modes (``tests/conftest.py``), set in its one session before each test:
a fast test runs Spark's interpreted expressions, a slow test Spark's generated code."""

from __future__ import annotations

import pytest

CODEGEN = ("spark.sql.codegen.wholeStage", "spark.sql.codegen.factoryMode")


def test_a_fast_test_runs_spark_interpreted(spark):
    assert tuple(spark.conf.get(key) for key in CODEGEN) == ("false", "NO_CODEGEN")


@pytest.mark.slow  # not costly: it checks the mode the slow tests run in, after a fast test
def test_a_slow_test_runs_spark_generated_code(spark):
    assert tuple(spark.conf.get(key) for key in CODEGEN) == ("true", "FALLBACK")
