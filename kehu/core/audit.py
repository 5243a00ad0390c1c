"""The append-only audit log: who changed what, when, with the row before and after."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import ForeignKey, Index, String, inspect
from sqlalchemy.orm import Mapped, Session, mapped_column

from kehu.core.db import Base, BigId, IdMixin, JsonDoc, copy_rows, utcnow

# Columns never copied into the audit trail.
SECRET_COLUMNS = {"password_hash", "digest", "secret"}


class Actor(Protocol):
    """Whoever acts: a user or an API key (kehu.tenancy.access.Principal satisfies this). Read-only members: a
    frozen Principal satisfies them, where plain attributes would ask for settable ones."""

    @property
    def org_id(self) -> int: ...
    @property
    def unit_id(self) -> int | None: ...
    @property
    def user_id(self) -> int | None: ...
    @property
    def api_key_id(self) -> int | None: ...
    @property
    def display(self) -> str: ...


class AuditRecord(IdMixin, Base):
    __tablename__ = "audit_log"
    __entity__ = "audit"
    __scope_unit__ = "unit_id"
    __scope_owner__ = "actor_user_id"
    __table_args__ = (
        Index("ix_audit_log_org_ts", "org_id", "ts"),
        Index("ix_audit_log_org_entity", "org_id", "entity", "entity_id"),
        Index("ix_audit_log_org_actor", "org_id", "actor_user_id", "ts"),
    )

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    unit_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    ts: Mapped[datetime] = mapped_column(default=utcnow)
    actor_user_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    actor_api_key_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    actor_display: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(60))
    entity_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    summary: Mapped[str] = mapped_column(String(500), default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, nullable=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def snapshot(obj: Any) -> dict[str, Any]:
    """The column values of an ORM row, JSON-ready, secrets left out."""
    mapper = inspect(obj).mapper
    return {
        attr.key: _jsonable(getattr(obj, attr.key))
        for attr in mapper.column_attrs
        if attr.key not in SECRET_COLUMNS
    }


def changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose values differ (keeps the log readable)."""
    keys = [k for k in after if before.get(k) != after.get(k) and k != "updated_at"]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def entry(
    actor: Actor | None,
    *,
    action: str,
    entity: str,
    entity_id: int | None = None,
    org_id: int | None = None,
    unit_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    summary: str = "",
) -> dict[str, Any]:
    """The column values of one audit record (every column: bulk writers copy them as they are)."""
    resolved_org = org_id if org_id is not None else (actor.org_id if actor else None)
    if resolved_org is None:
        raise ValueError("an audit record needs an organisation")
    return {"org_id": resolved_org, "unit_id": unit_id if unit_id is not None else (actor.unit_id if actor else None),
            "ts": utcnow(), "actor_user_id": actor.user_id if actor else None,
            "actor_api_key_id": actor.api_key_id if actor else None,
            "actor_display": actor.display if actor else "system", "action": action, "entity": entity,
            "entity_id": entity_id, "summary": summary[:500], "before": before, "after": after}


# What the audit page filters by: every ``entity`` an audit record is written for (a test keeps this complete and
# each one named in the catalogue as entity.<name>).
AUDITED_ENTITIES = (
    "accounts", "activities", "api_keys", "broadcasts", "channel_accounts", "communication_policies",
    "content_items", "custom_fields", "dedupe_settings", "duplicate_candidates", "identity_kinds", "imports", "jobs",
    "journeys", "lead_rules", "lead_slas", "leads", "messages", "opportunities", "orders",
    "organizations", "pipelines", "products", "profiles", "rfm_models", "roles", "routing_rules", "score_rules",
    "segments", "sources", "suppressions", "tag_groups", "tags", "templates", "units", "users",
)


def record(session: Session, actor: Actor | None, **what: Any) -> AuditRecord:
    """Append one audit record in the caller's transaction (so it commits or rolls back with the change);
    ``what`` as for ``entry``."""
    record_row = AuditRecord(**entry(actor, **what))
    session.add(record_row)
    return record_row


def record_many(session: Session, entries: list[dict[str, Any]]) -> None:
    """Append many audit records (from ``entry``) in one COPY / multi-row INSERT, in the caller's
    transaction: a batch of a thousand leads writes its audit trail in one statement."""
    copy_rows(session, AuditRecord, entries)
