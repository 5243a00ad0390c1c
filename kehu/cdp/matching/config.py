"""An organisation's matching settings (``DedupeSettings.matching``): which comparisons take part — the matcher's
standard ones and the organisation's custom fields (an ID number, a membership number) with a comparison kind —
and which blocking rules are on: the default rules by name, and rules of the organisation's own on equal fields.

Stored as JSON; null, or a part left out, is the defaults (made for Chinese consumer data)::

    {"comparisons": [{"field": "name"}, {"field": "birthday"}, {"field": "attributes.id_number", "kind": "exact"}],
     "rules": [{"name": "mobile"}, {"name": "name_year"}, {"name": "id_number", "fields": ["attributes.id_number"]}]}

A custom field ``attributes.<key>`` becomes the column ``cf_<key>`` of the records table (``records.derive``
normalises it) and the comparison ``cf_<key>``; a rule on it fixes that comparison among its pairs.
``matching_of(session, org_id)`` gives the (comparisons, rules) that every run uses — the full run, the check
before it and incremental matching."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.cdp.matching.blocking import DEFAULT_RULES, Rule, with_birthday
from kehu.cdp.matching.comparisons import COMPARISONS, DEFAULT_COMPARISONS, Comparison, one_off
from kehu.cdp.models import CustomField, DedupeSettings
from kehu.core.errors import FieldError, ValidationFailed

ATTRIBUTE = "attributes."  # a custom field in settings and in the evidence: attributes.<key>
COLUMN = "cf_"  # its column in the records table, and its comparison's name
STANDARD = "standard"  # the kind of a standard comparison: the matcher's own levels
# Comparison kinds for custom fields, and the field types each can read
KIND_TYPES: dict[str, frozenset[str]] = {
    "exact": frozenset({"text", "number", "date", "option", "boolean"}),
    "fuzzy": frozenset({"text"}),  # one character mistyped, missing, extra or two swapped
    "date": frozenset({"date"}),  # one digit mistyped, day and month swapped
}
# The standard fields a rule of the organisation's own may use, and the records' key each stands for
RULE_KEYS = {"name": "name_key", "birthday": "birthday", "birth_year": "byear", "mobile": "mobile",
             "email": "email", "city": "city", "postcode": "pc", "gender": "gender"}
# Fields that split the records into a few groups: a rule on them alone compares (nearly) every pair
COARSE_FIELDS = {"gender"}
COARSE_TYPES = {"boolean"}
RULES = {rule.name: rule for rule in DEFAULT_RULES}
MAX_COMPARISONS, MAX_RULES, MAX_RULE_FIELDS = 20, 40, 4


def column(key: str) -> str:
    return COLUMN + key


def public_name(comparison: str) -> str:
    """A comparison as settings and evidence name it: ``cf_id_number`` → ``attributes.id_number``."""
    return ATTRIBUTE + comparison[len(COLUMN):] if comparison.startswith(COLUMN) else comparison


def custom_comparison(key: str, kind: str) -> Comparison:
    """The comparison of a custom field's (normalised) values of ``kind``. A custom field may be an identifier (an ID
    or a membership number: one person's value), so its u is taken among pairs of different people (``identifier``)
    and there are no term frequencies — a value's share among the records counts the twin itself and would take
    back what agreeing on it says. On a field many share (an option, a yes/no) the correction changes nothing."""
    c = column(key)
    unknown = f"l.{c} IS NULL OR r.{c} IS NULL"
    if kind == "fuzzy":
        return Comparison(c, unknown, ((2, f"l.{c} = r.{c}"), (1, one_off(f"l.{c}", f"r.{c}"))),
                          default_m={2: 0.85, 1: 0.08, 0: 0.07}, fields=(c,), identifier=True)
    if kind == "date":  # values as yyyymmdd
        return Comparison(c, unknown, (
            (3, f"l.{c} = r.{c}"),
            (2, f"length(l.{c}) = length(r.{c}) AND (hamming(l.{c}, r.{c}) <= 1 OR (hamming(l.{c}, r.{c}) = 2 "
                f"AND damerau_levenshtein(l.{c}, r.{c}) <= 1))"),
            (1, f"left(l.{c}, 4) = left(r.{c}, 4) AND substr(l.{c}, 5, 2) = substr(r.{c}, 7, 2) "
                f"AND substr(l.{c}, 7, 2) = substr(r.{c}, 5, 2)"),
        ), default_m={3: 0.85, 2: 0.06, 1: 0.03, 0: 0.06}, fields=(c,),
        identifier=True)
    return Comparison(c, unknown, ((1, f"l.{c} = r.{c}"),), default_m={1: 0.9, 0: 0.1}, fields=(c,),
                      identifier=True)


def custom_rule(name: str, fields: Iterable[str]) -> Rule:
    """A rule of the organisation's own: pairs equal on every field (tightened by the birthday, as the default rules
    are, should it compare too many)."""
    keys = tuple(column(f[len(ATTRIBUTE):]) if f.startswith(ATTRIBUTE) else RULE_KEYS[f] for f in fields)
    return with_birthday(Rule(name, (keys,)))


def attributes_of(comparisons: Iterable[Comparison] = (), rules: Iterable[Rule] = ()) -> tuple[str, ...]:
    """The custom fields (keys) that ``comparisons`` and ``rules`` read: the columns the records need."""
    keys = [k for c in comparisons for k in c.fields]
    keys += [k for rule in rules for variant in rule.variants for k in variant]
    return tuple(dict.fromkeys(k[len(COLUMN):] for k in keys if k.startswith(COLUMN)))


def defaults() -> dict[str, Any]:
    """The settings an organisation has before choosing: every standard comparison and default rule."""
    return {"comparisons": [{"field": c.name, "kind": STANDARD} for c in DEFAULT_COMPARISONS],
            "rules": [{"name": rule.name, "fields": None} for rule in DEFAULT_RULES]}


def effective(stored: dict[str, Any] | None) -> dict[str, Any]:
    """The stored settings with the defaults where a part is missing (null), in the shape the API shows."""
    stored = stored or {}
    base = defaults()
    comparisons = stored.get("comparisons")
    rules = stored.get("rules")
    return {
        "comparisons": base["comparisons"] if comparisons is None else [
            {"field": c["field"], "kind": c.get("kind") or (STANDARD if c["field"] in COMPARISONS else None)}
            for c in comparisons],
        "rules": base["rules"] if rules is None else [{"name": r["name"], "fields": r.get("fields")} for r in rules],
    }


def kinds_for(field: CustomField) -> list[str]:
    return [kind for kind, types in KIND_TYPES.items() if field.type in types]


def _field_errors(where: str, name: Any, fields: dict[str, CustomField], *, standard: Iterable[str]
                  ) -> tuple[CustomField | None, list[FieldError]]:
    """A field named in settings: standard (one of ``standard``) or ``attributes.<key>`` of this organisation."""
    if not isinstance(name, str) or not name:
        return None, [FieldError(where, "a field is required", "required")]
    if name.startswith(ATTRIBUTE):
        found = fields.get(name[len(ATTRIBUTE):])
        if found is None:
            return None, [FieldError(where, f"{name} is not a custom field of this organisation", "unknown_field")]
        return found, []
    if name not in standard:
        return None, [FieldError(where, f"{name} is not a field that can be compared here (one of "
                                        f"{', '.join(standard)} or attributes.<custom field key>)", "unknown_field")]
    return None, []


def check(data: dict[str, Any], fields: dict[str, CustomField]) -> list[FieldError]:
    """Every problem of ``data`` (comparisons and rules; a part None is the defaults), each naming its field."""
    errors: list[FieldError] = []
    comparisons = data.get("comparisons")
    if comparisons is not None:
        if not comparisons:
            errors.append(FieldError("comparisons", "at least one comparison must take part", "empty"))
        elif len(comparisons) > MAX_COMPARISONS:
            errors.append(FieldError("comparisons", f"at most {MAX_COMPARISONS} comparisons", "too_many"))
        seen: set[str] = set()
        for index, item in enumerate(comparisons):
            where = f"comparisons.{index}"
            name, kind = item.get("field"), item.get("kind")
            custom, problems = _field_errors(f"{where}.field", name, fields, standard=COMPARISONS)
            errors += problems
            if problems:
                continue
            if name in seen:
                errors.append(FieldError(f"{where}.field", f"{name} is compared once", "duplicate"))
            seen.add(name)
            if custom is None:
                if kind not in (None, STANDARD):
                    errors.append(FieldError(f"{where}.kind", f"a standard field is compared its own way "
                                                              f"({STANDARD})", "not_option"))
            elif kind not in KIND_TYPES:
                errors.append(FieldError(f"{where}.kind", f"one of {', '.join(KIND_TYPES)}", "not_option"))
            elif custom.type not in KIND_TYPES[kind]:
                allowed = kinds_for(custom)
                errors.append(FieldError(
                    f"{where}.kind", f"a {custom.type} field cannot be compared as {kind}"
                    + (f" (it can be: {', '.join(allowed)})" if allowed else " (no comparison reads it)"),
                    "wrong_type"))
    rules = data.get("rules")
    if rules is not None:
        if not rules:
            errors.append(FieldError("rules", "at least one blocking rule must be on (no rule: no pair is "
                                              "compared)", "empty"))
        elif len(rules) > MAX_RULES:
            errors.append(FieldError("rules", f"at most {MAX_RULES} rules", "too_many"))
        names: set[str] = set()
        for index, item in enumerate(rules):
            where = f"rules.{index}"
            name, keys = item.get("name"), item.get("fields")
            if not isinstance(name, str) or not name:
                errors.append(FieldError(f"{where}.name", "a rule needs a name", "required"))
                continue
            if name in names:
                errors.append(FieldError(f"{where}.name", f"the rule {name} is on once", "duplicate"))
            names.add(name)
            if keys is None:
                if name not in RULES:
                    errors.append(FieldError(f"{where}.name", f"{name} is not a default rule; a rule of your own "
                                                              "needs fields", "unknown_rule"))
                continue
            if name in RULES:
                errors.append(FieldError(f"{where}.name", f"{name} is a default rule's name", "taken"))
            if not keys:
                errors.append(FieldError(f"{where}.fields", "a rule without fields would compare every pair",
                                         "every_pair"))
                continue
            if len(keys) > MAX_RULE_FIELDS:
                errors.append(FieldError(f"{where}.fields", f"at most {MAX_RULE_FIELDS} fields", "too_many"))
            coarse = True
            for position, key in enumerate(keys):
                custom, problems = _field_errors(f"{where}.fields.{position}", key, fields, standard=RULE_KEYS)
                errors += problems
                if custom is not None and custom.type == "multi_option":
                    errors.append(FieldError(f"{where}.fields.{position}", "a multi-option field cannot block",
                                             "wrong_type"))
                coarse = coarse and not problems and (
                    key in COARSE_FIELDS or (custom is not None and custom.type in COARSE_TYPES))
            if coarse:
                errors.append(FieldError(f"{where}.fields", "these fields take a handful of values: the rule would "
                                                            "compare nearly every pair", "every_pair"))
            if len(set(keys)) != len(keys):
                errors.append(FieldError(f"{where}.fields", "a field named twice", "duplicate"))
    return errors


def checked(data: dict[str, Any], fields: dict[str, CustomField]) -> None:
    """Raise ValidationFailed (422) naming every field at fault."""
    errors = check(data, fields)
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)


def build(data: dict[str, Any] | None, fields: dict[str, CustomField]
          ) -> tuple[tuple[Comparison, ...], tuple[Rule, ...]]:
    """The comparisons and rules of settings that were checked when saved. An entry that no longer holds (its custom
    field gone) is left out rather than stop the runs; nothing left of a part is that part's defaults."""
    data = data or {}
    comparisons: list[Comparison] = []
    for item in data.get("comparisons") or []:
        name, kind = item.get("field"), item.get("kind")
        if name in COMPARISONS:
            comparisons.append(COMPARISONS[name])
        elif isinstance(name, str) and name.startswith(ATTRIBUTE):
            custom = fields.get(name[len(ATTRIBUTE):])
            if custom is not None and kind in KIND_TYPES and custom.type in KIND_TYPES[kind]:
                comparisons.append(custom_comparison(custom.key, kind))
    rules: list[Rule] = []
    for item in data.get("rules") or []:
        name, keys = item.get("name"), item.get("fields")
        if keys is None:
            if name in RULES:
                rules.append(RULES[name])
        elif keys and all(k in RULE_KEYS or (k.startswith(ATTRIBUTE) and k[len(ATTRIBUTE):] in fields)
                          for k in keys):
            rules.append(custom_rule(name, keys))
    return (tuple(comparisons) or DEFAULT_COMPARISONS), (tuple(rules) or DEFAULT_RULES)


def custom_fields(session: Session, org_id: int) -> dict[str, CustomField]:
    return {f.key: f for f in session.scalars(select(CustomField).where(CustomField.org_id == org_id)
                                              .order_by(CustomField.id))}


def matching_of(session: Session, org_id: int) -> tuple[tuple[Comparison, ...], tuple[Rule, ...]]:
    """The organisation's (comparisons, rules) as its settings say (the defaults where it chose nothing): what a
    full run, its check and incremental matching compare and block on. Read-only."""
    stored = session.scalar(select(DedupeSettings.matching).where(DedupeSettings.org_id == org_id))
    if not stored:
        return DEFAULT_COMPARISONS, DEFAULT_RULES
    return build(stored, custom_fields(session, org_id))


__all__ = ["ATTRIBUTE", "COLUMN", "KIND_TYPES", "RULE_KEYS", "STANDARD", "attributes_of", "build", "check",
           "checked", "column", "custom_comparison", "custom_rule", "defaults", "effective", "kinds_for",
           "matching_of", "public_name"]
