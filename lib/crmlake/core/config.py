"""Layered configuration.

Order, later wins: ``conf/base/*.yaml`` (committed defaults, alphabetical), the environment
overlay ``conf/<env>.yaml`` (``local`` unless ``CRMLAKE_ENV`` or ``--env`` says otherwise),
each ``--conf FILE`` in the order given, then CLI flags. The base files define every key that
exists and its type: an overlay that names an unknown key, or gives a value of the wrong type,
is a :class:`ConfigError` naming the key and the file. Maps listed in ``FREE_FORM`` (Spark
properties, for one) accept any key.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
from pathlib import Path
from typing import Any

import yaml

from crmlake.core.errors import ConfigError

# Maps whose keys are not fixed by the base files.
FREE_FORM = {"spark.conf"}

ENV_VAR = "CRMLAKE_ENV"
CONF_DIR_VAR = "CRMLAKE_CONF_DIR"


def default_conf_dir() -> Path:
    """The repository's ``conf/``, unless ``CRMLAKE_CONF_DIR`` points elsewhere."""
    if os.environ.get(CONF_DIR_VAR):
        return Path(os.environ[CONF_DIR_VAR])
    return Path(__file__).resolve().parents[3] / "conf"


def _read_yaml(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def _type_ok(default: Any, value: Any) -> bool:
    if value is None or default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, str | dt.date):
        return isinstance(value, str | dt.date)
    return isinstance(value, type(default))


def _merge(base: dict, overlay: dict, source: str, prefix: str = "", strict: bool = True) -> None:
    for key, value in overlay.items():
        dotted = f"{prefix}{key}"
        if strict and key not in base:
            known = ", ".join(sorted(base)) or "(none)"
            raise ConfigError(f"{source}: unknown key '{dotted}' (known here: {known})")
        current = base.get(key)
        if isinstance(current, dict) and dotted not in FREE_FORM:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: key '{dotted}' must be a mapping, got {type(value).__name__}")
            _merge(current, value, source, f"{dotted}.", strict=True)
        elif dotted in FREE_FORM:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: key '{dotted}' must be a mapping")
            current.update(value)
        else:
            if strict and not _type_ok(current, value):
                raise ConfigError(
                    f"{source}: key '{dotted}' must be {type(current).__name__}, got {type(value).__name__} ({value!r})"
                )
            base[key] = copy.deepcopy(value)


class Config(dict):
    """The merged configuration: a nested dict, plus ``root``."""

    @property
    def root(self) -> str:
        return str(self["root"])


def load_config(
    extra_files: list[str] | tuple[str, ...] = (),
    overrides: dict[str, Any] | None = None,
    env: str | None = None,
    conf_dir: str | Path | None = None,
) -> Config:
    """Load base, environment overlay, ``--conf`` files and overrides (dotted keys)."""
    conf_dir = Path(conf_dir) if conf_dir else default_conf_dir()
    base_dir = conf_dir / "base"
    base_files = sorted(base_dir.glob("*.yaml"))
    if not base_files:
        raise ConfigError(f"no base configuration found in {base_dir}")
    cfg: dict = {}
    for path in base_files:
        data = _read_yaml(path)
        overlap = set(cfg) & set(data)
        if overlap:
            raise ConfigError(f"{path}: top-level keys {sorted(overlap)} are defined twice")
        cfg.update(data)

    env = env or os.environ.get(ENV_VAR) or "local"
    env_file = conf_dir / f"{env}.yaml"
    if not env_file.exists():
        raise ConfigError(f"environment '{env}' has no overlay file {env_file}")
    _merge(cfg, _read_yaml(env_file), str(env_file))

    for extra in extra_files:
        _merge(cfg, _read_yaml(Path(extra)), str(extra))

    result = Config(cfg)
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        _merge(result, _nest(dotted, value), "command line")
    result["env"] = env
    return result


def _nest(dotted: str, value: Any) -> dict:
    out: dict = {}
    node = out
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out
