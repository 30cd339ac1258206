"""Campaign definitions are validated before any Spark work: by themselves (keys, types, SQL,
risk bands, unique ids), then against what the lake and the registry hold. Every problem names
the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from crmlake.core.errors import ConfigError
from crmlake.publish.campaigns import Campaign, Definition, LakeView, check_against_lake, load_campaigns

REPO = Path(__file__).resolve().parents[2]
BANDS = ("high", "medium", "low")


def definition(**changes) -> dict:
    base = {
        "id": "winback-1",
        "objective": "win_back",
        "eligibility": {"segments": {"lifecycle_stage": ["dormant", "declining"]}, "where": "data_mb_30d < 100"},
        "ranking": {"by": "churn_probability"},
        "size_cap": 100,
        "channel": "sms",
        "offer": {"code": "WB-1", "cost": 10},
    }
    return base | changes


def write(folder: Path, name: str, data) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_the_shipped_campaigns_are_valid():
    found = load_campaigns(REPO / "conf" / "campaigns", BANDS)
    assert "retention-at-risk" in found
    c = found["retention-at-risk"].campaign
    assert c.columns_read() == {
        "eligibility.where": {"days_since_last_activity"},
        "eligibility.plan_types": {"plan_type"},
        "eligibility.tenure_days": {"tenure_days"},
        "eligibility.risk_bands": {"risk_band"},
    }
    assert c.models_needed() == {"churn"}


def test_defaults_and_what_a_definition_reads():
    c = Campaign.model_validate(definition())
    assert (c.valid_days, c.control_fraction, c.priority) == (14, 0.1, 100)
    assert c.columns_read() == {"eligibility.where": {"data_mb_30d"}}
    assert c.models_needed() == {"churn"}
    by_expression = Campaign.model_validate(definition(ranking={"by": "expression", "expression": "revenue_30d * 2"}))
    assert by_expression.models_needed() == set()
    assert by_expression.columns_read()["ranking.expression"] == {"revenue_30d"}


def test_every_problem_names_its_file_and_key(tmp_path):
    folder = tmp_path / "campaigns"
    bad_type = write(folder, "a.yaml", definition(id="a", size_cap="many"))
    bad_sql = write(folder, "b.yaml", definition(id="b", eligibility={"where": "tenure_days >> AND ("}))
    bad_scheme = write(folder, "c.yaml", definition(id="c", eligibility={"segments": {"mood": ["happy"]}}))
    bad_band = write(folder, "d.yaml", definition(id="d", eligibility={"risk_bands": ["extreme"]}))
    unknown_key = write(folder, "e.yaml", definition(id="e", audience="all"))
    no_expression = write(folder, "f.yaml", definition(id="f", ranking={"by": "expression"}))
    bad_fraction = write(folder, "g.yaml", definition(id="g", control_fraction=1.5))
    query = write(
        folder, "h.yaml", definition(id="h", eligibility={"where": "SELECT * FROM silver.subscriber_contacts"})
    )
    write(folder, "i.yaml", definition(id="winback-1"))
    twice = write(folder, "j.yaml", definition(id="winback-1"))
    not_yaml = write(folder, "k.yaml", "id: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_campaigns(folder, BANDS)
    message = str(caught.value)
    assert message.startswith("10 campaign definition problem(s)")
    for path, words in [
        (bad_type, "key 'size_cap' must be"),
        (bad_sql, "key 'eligibility.where': 'tenure_days >> AND (' is not a Spark SQL expression"),
        (bad_scheme, "eligibility.segments"),
        (bad_band, "key 'eligibility.risk_bands': ['extreme'] are not risk bands"),
        (unknown_key, "unknown key 'audience'"),
        (no_expression, "expression is given exactly when by is 'expression'"),
        (bad_fraction, "control_fraction"),
        (query, "not a query"),
        (twice, "campaign id 'winback-1' is also defined in"),
        (not_yaml, "not valid YAML"),
    ]:
        line = next((x for x in message.splitlines() if x.startswith(f"  - {path}:")), "")
        assert words in line, (path.name, message)


def test_references_are_checked_against_the_lake_and_the_registry():
    campaign = Campaign.model_validate(
        definition(
            eligibility={
                "segments": {"lifecycle_stage": ["dormant", "sleepy"]},
                "where": "data_mb_30d < 100 AND moodiness > 2",
            },
            ranking={"by": "uplift"},
        )
    )
    lake = LakeView(
        columns={"data_mb_30d", "churn_probability"},
        segments={"lifecycle_stage": {"dormant", "declining"}},
        models={"churn"},
    )
    with pytest.raises(ConfigError) as caught:
        check_against_lake([Definition(campaign, "conf/campaigns/x.yaml")], lake)
    message = str(caught.value)
    assert "3 campaign definition problem(s)" in message
    assert "conf/campaigns/x.yaml: key 'eligibility.where' reads ['moodiness']" in message
    assert "key 'eligibility.segments.lifecycle_stage': no segment ['sleepy']" in message
    assert "needs a uplift model with a champion" in message
    fixed = Campaign.model_validate(definition())
    check_against_lake([Definition(fixed, "ok.yaml")], lake)  # nothing missing: no error


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(ConfigError, match="campaign folder not found: .*nowhere"):
        load_campaigns(tmp_path / "nowhere")
