"""Layered configuration, validated by typed models.

Order, later wins: ``conf/base/*.yaml`` (committed defaults, alphabetical), the environment
overlay ``conf/<env>.yaml`` (``local`` unless ``CRMLAKE_ENV`` or ``--env`` says otherwise),
each ``--conf FILE`` in the order given, then CLI flags. The merged tree is checked against the
models of :mod:`crmlake.core.settings` (types, ranges, non-empty lists, ordered thresholds,
enumerations) all at once: a :class:`ConfigError` lists every problem, each with its dotted
key and the file (or flag) that set it. ``spark.conf`` is free-form (any Spark property).

Every job's parameters come from these models: ``cfg.settings.features`` is a
:class:`FeaturesConfig`, and so on; ``cfg["features"]`` is the same section as a plain mapping.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from crmlake.core.errors import ConfigError
from crmlake.core.settings import Settings

ENV_VAR = "CRMLAKE_ENV"
CONF_DIR_VAR = "CRMLAKE_CONF_DIR"


class Config(dict):
    """The merged, validated configuration as a nested dict (``cfg["spark"]["master"]``); its
    typed view is ``settings`` (validated again on each access, so a test or notebook that edits
    the dict gets the same checks)."""

    @property
    def settings(self) -> Settings:
        return validate(self, {})

    @property
    def root(self) -> str:
        return str(self["root"])


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


FREE_FORM = {"spark.conf"}


def _merge(base: dict, overlay: dict, source: str, origin: dict[str, str], prefix: str = "") -> None:
    """Merge ``overlay`` into ``base`` in place, remembering in ``origin`` which source set each
    dotted key. Shapes are not checked here: validation reports every problem at once."""
    for key, value in overlay.items():
        dotted = f"{prefix}{key}"
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, dict) and dotted not in FREE_FORM:
            _merge(current, value, source, origin, f"{dotted}.")
        elif isinstance(current, dict) and isinstance(value, dict):
            current.update(copy.deepcopy(value))
            origin.update({f"{dotted}.{k}": source for k in value})
        else:
            base[key] = copy.deepcopy(value)
            origin[dotted] = source
            if isinstance(value, dict):
                origin.update({f"{dotted}.{k}": source for k in value})


TYPE_NAMES = {
    "int_type": "int",
    "int_parsing": "int",
    "int_from_float": "int",
    "float_type": "float",
    "float_parsing": "float",
    "bool_type": "bool",
    "bool_parsing": "bool",
    "string_type": "str",
    "date_type": "a date (YYYY-MM-DD)",
    "date_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _source_of(dotted: str, origin: dict[str, str]) -> str:
    """The file (or flag) that set ``dotted``, or the closest enclosing key that was set. For a
    whole section (a rule across its keys), the sources that changed it from the base files."""
    inside = [src for key, src in origin.items() if key.startswith(f"{dotted}.")]
    if dotted not in origin or inside:
        overlays = sorted({s for s in inside if "/base/" not in s.replace("\\", "/")})
        if overlays:
            return ", ".join(overlays)
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        found = origin.get(".".join(parts[:n]))
        if found:
            return found
    return "configuration"


def validation_problems(exc: ValidationError, origin: dict[str, str]) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        # A validator of a whole section reports at the section; a list item at its index.
        dotted = ".".join(p for p in loc if not p.isdigit()) or "(top level)"
        where = dotted + ("" if loc == [p for p in loc if not p.isdigit()] else f"[{loc[-1]}]")
        source = _source_of(dotted, origin)
        value = error.get("input")
        if error["type"] == "extra_forbidden":
            problems.append(f"{source}: unknown key '{dotted}'")
        elif error["type"] == "missing":
            problems.append(f"{source}: key '{dotted}' is missing (see conf/base)")
        elif error["type"] == "too_short":
            least = error["ctx"]["min_length"]
            problems.append(f"{source}: key '{where}' needs at least {least} item(s), got {value!r}")
        elif error["type"] in TYPE_NAMES:
            got = type(value).__name__
            problems.append(f"{source}: key '{where}' must be {TYPE_NAMES[error['type']]}, got {got} ({value!r})")
        else:
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{source}: key '{where}': {message}")
    return problems


def validate(tree: dict, origin: dict[str, str]) -> Settings:
    try:
        return Settings.model_validate(tree)
    except ValidationError as exc:
        problems = validation_problems(exc, origin)
        listed = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"{len(problems)} configuration problem(s):\n{listed}") from None


def load_config(
    extra_files: list[str] | tuple[str, ...] = (),
    overrides: dict[str, Any] | None = None,
    env: str | None = None,
    conf_dir: str | Path | None = None,
) -> Config:
    """Load base, environment overlay, ``--conf`` files and overrides (dotted keys), validated."""
    conf_dir = Path(conf_dir) if conf_dir else default_conf_dir()
    base_dir = conf_dir / "base"
    base_files = sorted(base_dir.glob("*.yaml"))
    if not base_files:
        raise ConfigError(f"no base configuration found in {base_dir}")
    tree: dict = {}
    origin: dict[str, str] = {}
    for path in base_files:
        data = _read_yaml(path)
        overlap = set(tree) & set(data)
        if overlap:
            raise ConfigError(f"{path}: top-level keys {sorted(overlap)} are defined twice")
        _merge(tree, data, str(path), origin)

    env = env or os.environ.get(ENV_VAR) or "local"
    env_file = conf_dir / f"{env}.yaml"
    if not env_file.exists():
        raise ConfigError(f"environment '{env}' has no overlay file {env_file}")
    _merge(tree, _read_yaml(env_file), str(env_file), origin)
    for extra in extra_files:
        _merge(tree, _read_yaml(Path(extra)), str(extra), origin)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _merge(tree, _nest(dotted, value), "command line", origin)
    tree["env"] = env
    origin["env"] = "command line"

    return Config(validate(tree, origin).model_dump(mode="python"))


def _nest(dotted: str, value: Any) -> dict:
    out: dict = {}
    node = out
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out
