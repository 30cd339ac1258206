"""The catalog declares every table once; the README's table map and job list say the same."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from crmlake.catalog import registry, tables
from crmlake.core.cli import JOBS
from crmlake.core.errors import UnknownTableError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_table_map_is_the_catalog():
    text = README.read_text(encoding="utf-8")
    assert registry.markdown() in text


def test_the_readme_job_list_names_the_cli_jobs_and_catalog_tables():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The jobs") : text.index("## Tables")]
    rows = re.findall(r"^\| `([a-z-]+)` \| (.*?) \| (.*?) \|$", section, re.M)
    assert [job for job, _, _ in rows] == list(JOBS)
    named = {t for _, _, writes in rows for t in re.findall(r"`((?:bronze|silver|gold)\.[a-z_]+)`", writes)}
    assert named and named <= set(registry.TABLES)


def test_an_undeclared_table_is_refused_by_name():
    with pytest.raises(UnknownTableError, match="no table 'silver.usages' in the catalog"):
        tables.table_path("/tmp/x", "silver.usages")


def test_paths_work_for_any_hadoop_file_system():
    assert tables.table_path("s3a://bucket/crm/", "silver.usage") == "s3a://bucket/crm/silver/usage"
    assert tables.table_path("abfss://c@acct.dfs.core.windows.net/crm", "gold.kpis").endswith("/crm/gold/kpis")
    assert tables.landing_path("hdfs://nn:8020/crm", "usage") == "hdfs://nn:8020/crm/landing/usage"
    assert tables.table_path("relative/root", "gold.kpis") == str(Path("relative/root").resolve() / "gold" / "kpis")


def test_scopes_are_built_from_declared_date_columns():
    import datetime as dt

    days = [dt.date(2026, 1, 2), dt.date(2026, 1, 1)]
    assert tables.days_scope("silver.quarantine", days, entity="usage") == (
        "_file_date IN (DATE'2026-01-01', DATE'2026-01-02') AND entity = 'usage'"
    )
    assert tables.days_scope("silver.usage", days[:1], alias="t") == "t.event_date IN (DATE'2026-01-02')"
    assert tables.where(note="it's") == "note = 'it\\'s'"
    with pytest.raises(ValueError, match="silver.subscribers declares no date column"):
        tables.days_scope("silver.subscribers", days)


def test_erasure_can_find_every_table_holding_a_subscriber():
    holding = {t.name: t.subscriber_column for t in registry.holding_subscribers()}
    assert holding["silver.subscriber_contacts"] == "subscriber_key"
    assert holding["bronze.usage"] == "msisdn" and "bronze.network_cells" not in holding
    assert "gold.kpis" not in holding and holding["gold.features"] == "subscriber_key"
    restricted = {t.name for t in registry.TABLES.values() if t.personal_data == registry.PersonalData.RESTRICTED}
    assert {"silver.subscriber_contacts", "silver.quarantine", "bronze.usage"} <= restricted


def test_the_entity_tables_are_in_the_catalog_whatever_is_imported_first():
    """The contracts register each entity's bronze and silver tables; the package's entry imports
    them, so a process that imports the catalog alone still finds them."""
    import subprocess
    import sys

    probe = (
        "from crmlake.catalog.registry import spec; "
        "print(spec('bronze.usage').grain); print(spec('silver.usage').key); "
        "print(spec('silver.subscribers').schema.fieldNames()[-3:])"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "one charging/usage record as it arrived, per file and batch (duplicates kept)",
        "('record_id',)",
        "['valid_from', 'valid_to', 'is_current']",
    ]


def test_a_table_declared_twice_is_refused():
    with pytest.raises(ValueError, match="table 'silver.usage' is already declared in the catalog"):
        registry.register(registry.spec("silver.usage"))
    with pytest.raises(ValueError, match="the layer must be one of bronze, silver, gold"):
        registry.register(registry.TableSpec("platinum.x", "-", (), registry.PersonalData.NONE))
    assert "platinum.x" not in registry.TABLES
