"""What the journey pages say of a journey in words: who enters (the trigger, on the entry node and in the list), a
profile date's offset, and the profile fields a wait, a trigger or a field node may name, labelled in the viewer's
language."""

from __future__ import annotations

from typing import Any

from kehu.cdp import fields
from kehu.cdp.identity import LIFECYCLE_STAGES
from kehu.journeys import fields as journey_fields
from kehu.ui.shell import tr


def date_fields_of(session: Any, principal: Any) -> dict[str, str]:
    """The customers' date fields (the birthday and custom date fields), by name, labelled in the viewer's language."""
    custom = fields.definitions(session, principal.org_id)
    return {"birthday": tr("segments.field.birthday"), **{
        f"attributes.{key}": (field.label_zh if principal.locale == "zh" else field.label_en) or key
        for key, field in custom.items() if field.type == "date"}}


def settable_fields(session: Any, principal: Any) -> dict[str, dict[str, Any]]:
    """The fields a field node may set, by name: label, type and options ({value: label}) in the viewer's
    language."""
    zh = principal.locale == "zh"
    found: dict[str, dict[str, Any]] = {}
    for name, field in journey_fields.settable(session, principal.org_id).items():
        if field is None:
            found[name] = {"label": tr("segments.field.lifecycle_stage"), "type": "option",
                           "options": {stage: tr(f"stage.{stage}") for stage in LIFECYCLE_STAGES}}
        else:
            found[name] = {"label": (field.label_zh if zh else field.label_en) or field.key, "type": field.type,
                           "options": {o["value"]: (o.get("zh") if zh else o.get("en")) or o["value"]
                                       for o in field.options or []}}
    return found


def offset_text(offset: int) -> str:
    return tr("journeys.offset.before", n=-offset) if offset < 0 else tr("journeys.offset.after", n=offset) \
        if offset > 0 else tr("journeys.offset.on")


def trigger_text(definition: dict[str, Any], segments: dict[int, str], date_fields: dict[str, str]) -> str:
    """Who enters, in a sentence (the entry node, the journeys' list)."""
    trigger = definition.get("trigger") or {"type": "manual"}
    kind = trigger.get("type", "manual")
    segment = segments.get(trigger.get("segment_id") or 0, "—")
    time = trigger.get("time") or "—"
    if kind.startswith("segment"):
        return tr(f"journeys.trigger.{kind}", segment=segment)
    if kind == "event":
        return tr("journeys.trigger.event", event=trigger.get("event") or "—")
    if kind == "schedule":
        if trigger.get("date"):
            return tr("journeys.trigger.schedule_once", segment=segment, date=trigger["date"], time=time)
        days = "、".join(tr(f"journeys.weekday.{d}") for d in sorted(trigger.get("weekdays") or []))
        return tr("journeys.trigger.schedule_days", segment=segment, days=days, time=time) if days else \
            tr("journeys.trigger.schedule_daily", segment=segment, time=time)
    if kind == "date":
        field = trigger.get("field") or "birthday"
        return tr("journeys.trigger.date" + ("_yearly" if trigger.get("yearly", True) else ""),
                  field=date_fields.get(field, field), offset=offset_text(int(trigger.get("offset_days") or 0)),
                  time=time)
    return tr("journeys.trigger.manual")
