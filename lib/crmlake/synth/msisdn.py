"""Phone numbers: each subscriber's unique national number, the forms good rows write it in,
and the odd, invalid and unknown numbers that bad rows carry."""

from __future__ import annotations

from crmlake.core.settings import IdentityConfig
from crmlake.synth.draws import Sql, _at, _lit, _pick, _sql, _u
from crmlake.synth.params import (
    LINE_DIGITS,
    LINE_SPACE,
    MSISDN_FORMS,
    NUMBER_STRIDE,
    OPERATOR_PREFIXES,
    UNKNOWN_PREFIX,
    GenParams,
)


def _national_number(p: GenParams, sub_id: str) -> Sql:
    """A unique national number per subscriber: a prefix, then a scrambled line number."""
    n = len(OPERATOR_PREFIXES)
    offset = (p.seed * 104_729) % LINE_SPACE
    line = f"pmod(({sub_id} div {n}) * {NUMBER_STRIDE} + {offset}, {LINE_SPACE})"
    prefix = _at(OPERATOR_PREFIXES, f"CAST(pmod({sub_id}, {n}) AS INT)")
    return _sql(f"concat({prefix}, lpad(CAST({line} AS STRING), {LINE_DIGITS}, '0'))")


def _e164(nat: str, ident: IdentityConfig) -> Sql:
    return _sql(f"concat({_lit('+' + ident.country_code)}, {nat})")


def _msisdn_as_exported(nat: str, u: Sql, ident: IdentityConfig) -> Sql:
    """The forms good rows carry: mostly ``09…``, some ``+989…``, some ``989…``."""
    forms = {
        "local": _sql(f"concat({_lit(ident.trunk_prefix)}, {nat})"),
        "e164": _e164(nat, ident),
        "intl": _sql(f"concat({_lit(ident.country_code)}, {nat})"),
    }
    return _pick(u, [(forms[name], weight) for name, weight in MSISDN_FORMS])


def _odd_msisdn(nat: str, u: Sql, ident: IdentityConfig) -> Sql:
    """The same valid number in a form that normalizes: spaced, dashed, 00-prefixed, Persian."""
    trunk, cc = ident.trunk_prefix, ident.country_code
    head, mid, tail = f"substr({nat}, 1, 3)", f"substr({nat}, 4, 3)", f"substr({nat}, 7, 4)"
    forms = [
        _sql(f"concat({_lit(trunk)}, {head}, ' ', {mid}, ' ', {tail})"),
        _sql(f"concat({_lit('+' + cc + '-')}, {head}, '-', {mid}, '-', {tail})"),
        _sql(f"concat({_lit(ident.international_prefix + cc)}, {nat})"),
        _sql(f"translate(concat({_lit(trunk)}, {nat}), '0123456789', '۰۱۲۳۴۵۶۷۸۹')"),
    ]
    return _pick(u, [(form, 1.0) for form in forms])


def _invalid_msisdn(nat: str, key: str, ident: IdentityConfig) -> Sql:
    """Not a mobile number: a Tehran landline, too short, or letters inside."""
    trunk = _lit(ident.trunk_prefix)
    forms = [
        _sql(f"concat({trunk}, '21', lpad(CAST(pmod({key}, 100000000) AS STRING), 8, '0'))"),
        _sql(f"concat({trunk}, substr({nat}, 1, 6))"),
        _sql(f"concat({trunk}, substr({nat}, 1, 3), 'ABC', substr({nat}, 7, 4))"),
    ]
    return _pick(_u(key, "invalid_msisdn"), [(form, 1.0) for form in forms])


def _unknown_msisdn(key: str, ident: IdentityConfig) -> Sql:
    line = f"lpad(CAST(pmod(xxhash64('unknown', {key}), {LINE_SPACE}) AS STRING), {LINE_DIGITS}, '0')"
    return _sql(f"concat({_lit(ident.trunk_prefix + UNKNOWN_PREFIX)}, {line})")
