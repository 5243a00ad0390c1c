"""The audit trail in the reader's words: every action and entity an audit record is written with has a name in
both catalogues (the audit page once read "修改entity.score_rules" and "status线索"), and the changes column
leaves out what did not change and names units and people instead of showing their ids."""

from __future__ import annotations

import re
from pathlib import Path

from kehu.core.audit import AUDITED_ENTITIES
from kehu.core.i18n import t

SOURCE = Path(__file__).resolve().parents[2] / "kehu"
# audit.record(…, action="x", entity="y") and audit.entry(…) and dict entries for record_many
CALL = re.compile(r"audit\.(?:record|entry)\((?P<args>.*?)\)\s*$", re.S | re.M)


def _literals(name: str) -> set[str]:
    found: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(rf'\b{name}="([a-z_]+)"', text))
        found |= set(re.findall(rf'"{name}": "([a-z_]+)"', text))
    return found


def test_every_audited_action_and_entity_has_a_name_in_both_languages() -> None:
    actions = _literals("action") | {"won", "lost", "login"}
    entities = {e for e in _literals("entity") if e != "test"}
    assert entities <= set(AUDITED_ENTITIES), sorted(entities - set(AUDITED_ENTITIES))
    for locale in ("zh", "en"):
        missing = [a for a in sorted(actions) if t(f"audit.action.{a}", locale, default="") == ""]
        missing += [e for e in AUDITED_ENTITIES if t(f"entity.{e}", locale, default="") == ""]
        assert not missing, (locale, missing)


def test_the_changes_column_names_what_changed_and_leaves_out_the_rest() -> None:
    from kehu.tenancy.ui.audit import _changes

    names = {"unit": {17: "上海浦东4S店", 18: "杭州西湖店"}, "user": {5: "张销售"}}
    text = _changes({"amount": 659700, "unit_id": 17, "owner_id": None, "stage_id": 3, "status": "open"},
                    {"amount": "659700.00", "unit_id": 18, "owner_id": 5, "stage_id": 4, "status": "open"}, names, "zh")
    lines = text.split("\n")
    assert "所属单位: 上海浦东4S店 → 杭州西湖店" in lines
    assert "负责人: — → 张销售" in lines
    assert "阶段已更改" in lines
    assert not any("金额" in line or "状态" in line for line in lines)  # unchanged
    assert "17" not in text and "stage_id" not in text
    converted = _changes({"status": "sql", "reason": None}, {"status": "converted", "reason": "opportunity:420"},
                         names, "zh", "leads")
    assert converted.split("\n") == ["状态: 销售认可线索 → 已转化", "原因: — → 商机 #420"]
