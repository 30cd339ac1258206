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
