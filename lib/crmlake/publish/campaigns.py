"""Campaign definitions (``conf/campaigns/*.yaml``): who is eligible, how they are ranked, how
many are contacted, with which offer on which channel, and what share is held out as control.

A definition is checked in two steps, both before any row is read: :func:`load_campaigns` reads
and validates the files alone (keys, types, SQL that parses, segment schemes, risk bands), and
:func:`check_against_lake` checks what they reference against what the lake and the registry
hold (columns, segment labels, models). Every problem names the file and the key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import sqlglot
import yaml
from pydantic import Field, StrictFloat, StrictInt, ValidationError, model_validator
from sqlglot import exp
from sqlglot.errors import ParseError

from crmlake.core.config import validation_problems
from crmlake.core.errors import ConfigError
from crmlake.core.settings import SEGMENT_SCHEMES, Section, Unique

Objective = Literal["retention", "upsell", "win_back"]
Channel = Literal["sms", "email", "outbound_call", "push", "app"]
RankBy = Literal["churn_probability", "clv_at_risk", "uplift", "expression"]
Label = Annotated[str, Field(strict=True, min_length=1)]

# Columns publish adds to gold.features' for eligibility and ranking, and where they come from.
CHURN_COLUMNS = ("churn_probability", "risk_band", "churn_decile")
CLV_COLUMNS = ("clv_12m",)
DERIVED_COLUMNS = ("clv_at_risk",)  # churn_probability × clv_12m
UPLIFT_COLUMNS = ("uplift", "uplift_decile")
# What a ranking needs: the model kinds it reads.
RANKING_MODELS: dict[str, tuple[str, ...]] = {
    "churn_probability": ("churn",),
    "clv_at_risk": ("churn",),
    "uplift": ("uplift",),
    "expression": (),
}


class Bounds(Section):
    """An inclusive range; either end may be left open."""

    min: StrictInt | StrictFloat | None = None
    max: StrictInt | StrictFloat | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class Eligibility(Section):
    """Every condition given must hold (an empty one is no condition)."""

    segments: dict[SEGMENT_SCHEMES, Annotated[tuple[Label, ...], Field(min_length=1), Unique]] = {}
    plan_types: Annotated[tuple[Label, ...], Unique] = ()
    tenure_days: Bounds | None = None
    risk_bands: Annotated[tuple[Label, ...], Unique] = ()
    clv: Bounds | None = None  # clv_12m
    where: Annotated[str, Field(strict=True)] = ""  # a Spark SQL predicate over the columns above


class Ranking(Section):
    """Highest first: churn probability, CLV at risk (probability × 12-month CLV), the uplift
    model's score, or an expression over the eligibility columns."""

    by: RankBy = "churn_probability"
    expression: Annotated[str, Field(strict=True)] = ""

    @model_validator(mode="after")
    def _expression(self) -> Ranking:
        if (self.by == "expression") != bool(self.expression.strip()):
            raise ValueError("expression is given exactly when by is 'expression'")
        return self


class Offer(Section):
    code: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    cost: Annotated[float, Field(ge=0)]  # per accepted offer, in the operator's currency


class Campaign(Section):
    id: Annotated[str, Field(strict=True, pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
    objective: Objective
    eligibility: Eligibility = Eligibility()
    ranking: Ranking = Ranking()
    size_cap: Annotated[int, Field(strict=True, ge=1)]
    channel: Channel
    offer: Offer
    valid_days: Annotated[int, Field(strict=True, ge=1)] = 14  # from the publish date
    control_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1
    priority: Annotated[int, Field(strict=True, ge=0)] = 100  # lower wins a subscriber two campaigns want
    start: dt.date | None = None  # first publish date (none: any)
    end: dt.date | None = None  # last publish date

    @model_validator(mode="after")
    def _window(self) -> Campaign:
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self

    @property
    def predicates(self) -> dict[str, str]:
        """The SQL the definition holds, by key."""
        out = {"eligibility.where": self.eligibility.where}
        if self.ranking.by == "expression":
            out["ranking.expression"] = self.ranking.expression
        return {k: v for k, v in out.items() if v.strip()}

    def columns_read(self) -> dict[str, set[str]]:
        """Per key, the columns the definition reads (its SQL parsed, plus the fixed ones)."""
        out = {key: sql_columns(sql) for key, sql in self.predicates.items()}
        e = self.eligibility
        fixed = {
            "eligibility.plan_types": {"plan_type"} if e.plan_types else set(),
            "eligibility.tenure_days": {"tenure_days"} if e.tenure_days else set(),
            "eligibility.risk_bands": {"risk_band"} if e.risk_bands else set(),
            "eligibility.clv": {"clv_12m"} if e.clv else set(),
        }
        return out | {k: v for k, v in fixed.items() if v}

    def models_needed(self) -> set[str]:
        """The model kinds (churn, uplift) the definition reads, from its ranking and its
        conditions on churn columns, CLV at risk or uplift columns."""
        kinds = set(RANKING_MODELS[self.ranking.by])
        read = set().union(*self.columns_read().values()) if self.columns_read() else set()
        if read & {*CHURN_COLUMNS, *DERIVED_COLUMNS}:
            kinds.add("churn")
        if read & set(UPLIFT_COLUMNS):
            kinds.add("uplift")
        return kinds


@dataclass
class Definition:
    campaign: Campaign
    path: str


def sql_columns(sql: str) -> set[str]:
    """The column names a Spark SQL expression reads (raises ParseError)."""
    parsed = sqlglot.parse_one(sql, read="spark")
    if isinstance(parsed, exp.Query):
        raise ParseError("a condition or expression, not a query")
    return {c.name for c in parsed.find_all(exp.Column)}


def _check_sql(campaign: Campaign, path: str) -> list[str]:
    problems = []
    for key, sql in campaign.predicates.items():
        try:
            sql_columns(sql)
        except ParseError as exc:
            first = str(exc).splitlines()[0]
            problems.append(f"{path}: key '{key}': {sql!r} is not a Spark SQL expression: {first}")
    return problems


def load_campaigns(folder: str | Path, risk_bands: Iterable[str] = ()) -> dict[str, Definition]:
    """Every ``*.yaml`` under ``folder``, one campaign per file, validated by itself: keys and
    types, SQL that parses, risk bands among ``risk_bands`` (churn.risk_bands) when given, and
    ids unique across files. ConfigError listing every problem with its file and key."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"campaign folder not found: {folder}")
    found: dict[str, Definition] = {}
    problems: list[str] = []
    bands = set(risk_bands)
    for path in sorted(folder.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            problems.append(f"{path}: not valid YAML: {exc}")
            continue
        if not isinstance(data, dict):
            problems.append(f"{path}: top level must be a mapping, got {type(data).__name__}")
            continue
        try:
            campaign = Campaign.model_validate(data)
        except ValidationError as exc:
            problems += validation_problems(exc, dict.fromkeys(["", *data], str(path)))
            continue
        problems += _check_sql(campaign, str(path))
        unknown = [b for b in campaign.eligibility.risk_bands if bands and b not in bands]
        if unknown:
            problems.append(f"{path}: key 'eligibility.risk_bands': {unknown} are not risk bands ({sorted(bands)})")
        if campaign.id in found:
            problems.append(f"{path}: campaign id '{campaign.id}' is also defined in {found[campaign.id].path}")
            continue
        found[campaign.id] = Definition(campaign, str(path))
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"{len(problems)} campaign definition problem(s):\n{listed}")
    return found


@dataclass
class LakeView:
    """What a definition may reference: the columns publish can offer, the segment labels per
    scheme, and the model kinds with a champion (None: not checked)."""

    columns: set[str] | None = None
    segments: Mapping[str, set[str]] | None = None
    models: set[str] | None = None


def check_against_lake(definitions: Iterable[Definition], lake: LakeView) -> None:
    """ConfigError naming file, key and what is missing for every column, segment label or
    model a definition references that the lake does not hold."""
    problems = []
    for d in definitions:
        c = d.campaign
        for key, read in sorted(c.columns_read().items()):
            missing = sorted(read - lake.columns) if lake.columns is not None else []
            if missing:
                problems.append(f"{d.path}: key '{key}' reads {missing}, which no table publish reads has")
        for scheme, labels in c.eligibility.segments.items():
            known = lake.segments.get(scheme) if lake.segments is not None else None
            unknown = [x for x in labels if known is not None and x not in known]
            if unknown:
                problems.append(
                    f"{d.path}: key 'eligibility.segments.{scheme}': no segment {unknown} (known: {sorted(known)})"
                )
        for kind in sorted(c.models_needed() - lake.models) if lake.models is not None else []:
            problems.append(
                f"{d.path}: campaign '{c.id}' needs a {kind} model with a champion, and the registry has none"
            )
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"{len(problems)} campaign definition problem(s):\n{listed}")
