"""The builder page reads a saved condition into its tree of groups and rules and writes the same condition
back: editing a segment and saving it unchanged must not change what it means."""

from __future__ import annotations

import pytest

from kehu.segments.conditions import STANDARD_FIELDS
from kehu.segments.ui import Builder

EVENT = {"type": "event", "event": "test_drive_booked", "op": "did", "count": {"op": "gte", "value": 2},
         "window": {"within_days": 30, "from": "2026-01-01"},
         "where": [{"property": "model", "op": "eq", "value": "ID.4"},
                   {"property": "price", "op": "gt", "value": 200000}]}
ORDERS = {"type": "orders", "measure": "total", "op": "gte", "value": 100000, "status": ["paid"], "sku": "ID4"}


def builder() -> Builder:
    made = Builder.__new__(Builder)  # no page, no database: only the tree
    made.kinds = {**STANDARD_FIELDS, "attributes.budget": "number"}
    made.root = {"node": "group", "match": "all", "negate": False, "children": []}
    return made


@pytest.mark.parametrize("condition", [
    {"type": "all", "conditions": [{"type": "field", "field": "city", "op": "in", "value": ["上海", "杭州"]}]},
    {"type": "any", "conditions": [
        {"type": "field", "field": "attributes.budget", "op": "between", "value": [100000, 300000]},
        {"type": "not", "condition": {"type": "all", "conditions": [EVENT, ORDERS]}},
        {"type": "all", "conditions": [{"type": "tag", "tag_id": 7, "op": "lacks"},
                                       {"type": "consent", "channel": "sms", "purpose": "marketing",
                                        "op": "granted"}]}]},
    {"type": "all", "conditions": [
        {"type": "event_time", "event": "app_login", "which": "last", "op": "more_than_days_ago", "value": 90},
        {"type": "event_time", "event": "test_drive_booked", "which": "first", "op": "after", "value": "2026-03-01"},
        {"type": "account", "op": "member", "kind": "household"},
        {"type": "account", "op": "not_member", "account_id": 12}]},
    {"type": "not", "condition": {"type": "any", "conditions": [
        {"type": "identity", "kind": "vin", "op": "has"}, {"type": "segment", "segment_id": 3, "op": "in"}]}},
])
def test_a_saved_condition_comes_back_unchanged(condition):  # type: ignore[no-untyped-def]
    editor = builder()
    editor.load(condition)
    assert editor.condition() == condition


def test_bare_rules_and_negated_rules_become_groups():  # type: ignore[no-untyped-def]
    editor = builder()
    editor.load({"type": "not", "condition": {"type": "field", "field": "city", "op": "eq", "value": "上海"}})
    assert editor.condition() == {"type": "not", "condition": {"type": "all", "conditions": [
        {"type": "field", "field": "city", "op": "eq", "value": "上海"}]}}
    editor.load({"type": "event", "event": "ad_click", "op": "did"})  # "did" means at least once
    assert editor.condition() == {"type": "all", "conditions": [
        {"type": "event", "event": "ad_click", "op": "did", "count": {"op": "gte", "value": 1}}]}


def test_empty_groups_ask_nothing():  # type: ignore[no-untyped-def]
    editor = builder()
    assert editor.condition() is None and editor.is_empty()
    editor.root["children"].append({"node": "group", "match": "any", "negate": True, "children": []})
    assert editor.is_empty()
