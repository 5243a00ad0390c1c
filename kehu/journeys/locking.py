"""What a template for dealers locks (kehu/journeys/templates.py): comparing a dealer's journey with the template
version it was made from. The nodes and the ways between them, the entry rules, the goal and exit criteria, and
every part the template does not list in ``open`` stay as the template has them; an open trigger keeps its kind,
an open node its kind (and, through the ways, its branches)."""

from __future__ import annotations

from typing import Any

from kehu.core.errors import FieldError
from kehu.journeys import schemas

TRIGGER = "trigger"
LOCKED_RULES = ("goal", "exit_on_goal", "exit_segment_id", "re_entry", "reentry_days", "open")


def settings_of(item: Any) -> dict[str, Any]:
    """What a node or trigger says, without where it is drawn and what it is called on the canvas."""
    dumped = item.model_dump(mode="json", by_alias=True, exclude_none=True)
    dumped.pop("position", None)
    dumped.pop("label", None)
    return dumped


def locked_changes(template: schemas.Definition, definition: schemas.Definition) -> list[FieldError]:
    """Each change to what the template locks, at its place in the definition."""
    errors: list[FieldError] = []
    where = "definition"
    for rule in LOCKED_RULES:
        if getattr(template, rule) != getattr(definition, rule):
            errors.append(FieldError(f"{where}.{rule}", "set by the template", "locked"))
    if TRIGGER in template.open:
        if definition.trigger.type != template.trigger.type:
            errors.append(FieldError(f"{where}.trigger.type", "the template's kind of trigger stays", "locked"))
    elif settings_of(definition.trigger) != settings_of(template.trigger):
        errors.append(FieldError(f"{where}.trigger", "set by the template", "locked"))
    theirs = {node.id: node for node in template.nodes}
    ours = {node.id for node in definition.nodes}
    for index, node in enumerate(definition.nodes):
        at = f"{where}.nodes[{index}]"
        original = theirs.get(node.id)
        if original is None:
            errors.append(FieldError(at, f"{node.id!r} is not in the template", "locked"))
        elif original.type != node.type:
            errors.append(FieldError(f"{at}.type", "the template's kind of node stays", "locked"))
        elif node.id not in template.open and settings_of(node) != settings_of(original):
            errors.append(FieldError(at, f"{node.id!r} is locked by the template", "locked"))
    errors += [FieldError(f"{where}.nodes", f"{node_id!r} of the template is missing", "locked")
               for node_id in theirs if node_id not in ours]
    if _ways(definition) != _ways(template):
        errors.append(FieldError(f"{where}.edges", "the template's ways between nodes stay", "locked"))
    return errors


def inherited(template: schemas.Definition | None, definition: schemas.Definition) -> set[str]:
    """The parts of a dealer's journey that are still the template's (node ids, ``trigger``, ``exit_segment_id``):
    what they name (HQ's message templates, segments, tags) was checked when HQ published the template, and is
    used by the dealer's journey though the dealer could not pick it."""
    if template is None:
        return set()
    theirs = {node.id: settings_of(node) for node in template.nodes}
    found = {node.id for node in definition.nodes if theirs.get(node.id) == settings_of(node)}
    if settings_of(definition.trigger) == settings_of(template.trigger):
        found.add(TRIGGER)
    if definition.exit_segment_id == template.exit_segment_id:
        found.add("exit_segment_id")
    return found


def _ways(definition: schemas.Definition) -> set[tuple[str, str | None, str]]:
    return {(edge.source, edge.branch, edge.target) for edge in definition.edges}
