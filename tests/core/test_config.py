from pathlib import Path

import pytest
from crmlake.core.config import load_config
from crmlake.core.errors import ConfigError


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_layers_apply_in_order(tmp_path):
    first = write(tmp_path, "a.yaml", "spark:\n  shuffle_partitions: 16\nroot: /x\n")
    second = write(tmp_path, "b.yaml", "spark:\n  shuffle_partitions: 32\n")
    cfg = load_config([first, second], overrides={"root": "/y"})
    assert cfg["spark"]["shuffle_partitions"] == 32
    assert cfg.root == "/y"
    assert cfg["identity"]["generate_local_key"] is True  # from conf/local.yaml
    assert cfg["spark"]["app_name"] == "crmlake"  # from conf/base


def test_cluster_overlay(tmp_path):
    cfg = load_config(env="cluster")
    assert cfg["identity"]["generate_local_key"] is False
    assert cfg["spark"]["master"] == ""


def test_unknown_key_names_key_and_file(tmp_path):
    bad = write(tmp_path, "typo.yaml", "spark:\n  shuffle_partitons: 4\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml: unknown key 'spark\.shuffle_partitons'"):
        load_config([bad])


def test_wrong_type_names_key_and_file(tmp_path):
    bad = write(tmp_path, "types.yaml", "ingest:\n  max_duration_s: lots\n")
    with pytest.raises(ConfigError, match=r"types\.yaml: key 'ingest\.max_duration_s' must be int, got str"):
        load_config([bad])


def test_section_must_stay_a_mapping(tmp_path):
    bad = write(tmp_path, "flat.yaml", "spark: fast\n")
    with pytest.raises(ConfigError, match="'spark' must be a mapping"):
        load_config([bad])


def test_free_form_spark_properties_are_passed_through(tmp_path):
    extra = write(tmp_path, "conf.yaml", "spark:\n  conf:\n    spark.executor.memory: 8g\n")
    assert load_config([extra])["spark"]["conf"]["spark.executor.memory"] == "8g"


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config([str(tmp_path / "nope.yaml")])
    broken = write(tmp_path, "broken.yaml", "spark: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_config([broken])


def test_unknown_environment():
    with pytest.raises(ConfigError, match="environment 'staging' has no overlay"):
        load_config(env="staging")


def test_every_problem_is_listed_at_once_with_key_and_file(tmp_path):
    """features.windows: [] once ended in an IndexError deep in a job, and labels.horizon_days: 0
    was accepted; now both, and every other problem of the run's configuration, are named in
    one error with their dotted key and the file that set them."""
    bad = write(
        tmp_path,
        "team.yaml",
        "features:\n  windows: []\nlabels:\n  horizon_days: 0\n"
        "kpis:\n  dimensions: [region, shoe_size]\n  tenure_bands_months: [12, 6]\n",
    )
    flags = {"generate.bad_rate": 1.5, "features.trend_recent_days": 40}
    with pytest.raises(ConfigError) as err:
        load_config([bad], overrides=flags)
    message = str(err.value)
    assert message.startswith("5 configuration problem(s):")
    assert "team.yaml: key 'features.windows' needs at least 1 item(s), got []" in message
    assert "team.yaml: key 'labels.horizon_days': Input should be greater than or equal to 1" in message
    assert "team.yaml: key 'kpis.dimensions[1]': Input should be 'region'" in message
    assert "team.yaml: key 'kpis.tenure_bands_months': must be strictly increasing, got [12, 6]" in message
    assert "command line: key 'generate.bad_rate': Input should be less than or equal to 1" in message


def test_a_rule_across_keys_names_the_section(tmp_path):
    bad = write(tmp_path, "trend.yaml", "features:\n  trend_recent_days: 40\n")
    with pytest.raises(ConfigError, match=r"trend\.yaml: key 'features': trend_recent_days \(40\) must be shorter"):
        load_config([bad])


def test_enumerations_ranges_and_types_are_checked(tmp_path):
    bad = write(
        tmp_path,
        "ops.yaml",
        "logging:\n  format: xml\nspark:\n  driver_memory: lots\n  shuffle_partitions: 0\n"
        "ingest:\n  entities: [usage, calls]\n  currencies: []\nidentity:\n  mobile_prefixes: []\n",
    )
    with pytest.raises(ConfigError) as err:
        load_config([bad])
    message = str(err.value)
    for key in (
        "logging.format",
        "spark.driver_memory",
        "spark.shuffle_partitions",
        "ingest.entities[1]",
        "ingest.currencies",
        "identity.mobile_prefixes",
    ):
        assert f"ops.yaml: key '{key}'" in message, key


def test_a_job_with_bad_config_exits_2_naming_the_problems(tmp_path, capsys):
    from crmlake_jobs.kpis import main as kpis_main

    bad = write(tmp_path, "bad.yaml", "labels:\n  horizon_days: 0\nfeatures:\n  windows: []\n")
    assert kpis_main(["--conf", bad, "--root", str(tmp_path / "root"), "--date", "2026-01-01"]) == 2
    err = capsys.readouterr().err
    assert "ConfigError: 2 configuration problem(s)" in err
    assert "'labels.horizon_days'" in err and "'features.windows'" in err


def test_edited_settings_are_validated_again(tmp_path):
    cfg = load_config()
    cfg["labels"]["horizon_days"] = 0
    with pytest.raises(ConfigError, match="labels.horizon_days"):
        _ = cfg.settings.labels


def test_config_enumerations_match_what_the_packages_know():
    import typing

    from crmlake.contracts.entities import ENTITIES
    from crmlake.core import session, settings
    from crmlake.synth import params

    assert set(typing.get_args(settings.ENTITY_NAMES)) == set(ENTITIES)
    assert set(typing.get_args(settings.WEEKDAYS)) == set(params.WEEKDAY_NUMBERS)
    assert set(typing.get_args(settings.DRIVER_GCS)) == set(session.GARBAGE_COLLECTORS)
    assert settings.CHURN_CAUSES == params.CHURN_CAUSES and settings.UPLIFT_TYPES == params.UPLIFT_TYPES
