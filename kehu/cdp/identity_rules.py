"""One ID rules: the identity kinds, their priority (lower is stronger) and how many one profile may hold.

The limits are what stop a shared device (one anonymous_id seen with two user_ids) or a family phone from
collapsing strangers into one profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.cdp.models import IdentityKind


@dataclass(frozen=True)
class KindRule:
    kind: str
    priority: int
    max_per_profile: int
    label_zh: str
    label_en: str


DEFAULT_RULES = (
    KindRule("user_id", 10, 1, "会员ID", "User ID"),
    KindRule("wechat_unionid", 20, 1, "微信 UnionID", "WeChat UnionID"),
    KindRule("dealer_customer_no", 30, 5, "经销商客户号", "Dealer customer no."),
    KindRule("mobile", 40, 3, "手机号", "Mobile"),
    KindRule("email", 50, 3, "邮箱", "E-mail"),
    KindRule("vin", 60, 10, "车架号", "VIN"),
    KindRule("wechat_openid", 70, 5, "微信 OpenID", "WeChat OpenID"),
    KindRule("push_token", 85, 10, "App 推送 ID", "App push token"),
    KindRule("anonymous_id", 90, 100, "匿名ID", "Anonymous ID"),
)
UNKNOWN_KIND = KindRule("", 80, 5, "", "")


class Rules:
    def __init__(self, rules: dict[str, KindRule]) -> None:
        self.by_kind = rules

    def rule(self, kind: str) -> KindRule:
        return self.by_kind.get(kind) or KindRule(kind, UNKNOWN_KIND.priority, UNKNOWN_KIND.max_per_profile,
                                                  kind, kind)

    def priority(self, kind: str) -> int:
        return self.rule(kind).priority

    def limit(self, kind: str) -> int:
        return self.rule(kind).max_per_profile


def rules_for(session: Session, org_id: int) -> Rules:
    """The organisation's configured rules over the defaults."""
    rules = {r.kind: r for r in DEFAULT_RULES}
    for row in session.scalars(select(IdentityKind).where(IdentityKind.org_id == org_id)):
        rules[row.kind] = KindRule(row.kind, row.priority, row.max_per_profile, row.label_zh or row.kind,
                                   row.label_en or row.kind)
    return Rules(rules)


def list_rules(session: Session, org_id: int) -> list[KindRule]:
    return sorted(rules_for(session, org_id).by_kind.values(), key=lambda r: (r.priority, r.kind))


def set_rule(session: Session, actor: Any, *, kind: str, priority: int, max_per_profile: int,
             label_zh: str = "", label_en: str = "") -> KindRule:
    """Change (or add) one identity kind's priority and limit for the organisation. Takes effect for calls
    resolved from now on; existing links are not rewritten."""
    import re

    from kehu.core import audit
    from kehu.core.errors import invalid

    actor.require_permission("settings.manage")
    if not re.fullmatch(r"[a-z][a-z0-9_]{1,39}", kind):
        raise invalid("kind", "lower-case letters, digits and _, starting with a letter")
    if not 1 <= priority <= 1000:
        raise invalid("priority", "between 1 (strongest) and 1000")
    if not 1 <= max_per_profile <= 1000:
        raise invalid("max_per_profile", "between 1 and 1000")
    row = session.scalar(select(IdentityKind).where(IdentityKind.org_id == actor.org_id, IdentityKind.kind == kind))
    before = None
    if row is None:
        default = next((r for r in DEFAULT_RULES if r.kind == kind), None)
        row = IdentityKind(org_id=actor.org_id, kind=kind, label_zh=default.label_zh if default else kind,
                           label_en=default.label_en if default else kind)
        session.add(row)
    else:
        before = {"priority": row.priority, "max_per_profile": row.max_per_profile}
    row.priority, row.max_per_profile = priority, max_per_profile
    if label_zh:
        row.label_zh = label_zh
    if label_en:
        row.label_en = label_en
    session.flush()
    audit.record(session, actor, action="update", entity="identity_kinds", entity_id=row.id, before=before,
                 after={"kind": kind, "priority": priority, "max_per_profile": max_per_profile},
                 summary=f"One ID rule for {kind}: priority {priority}, at most {max_per_profile} per profile")
    return KindRule(row.kind, row.priority, row.max_per_profile, row.label_zh, row.label_en)
