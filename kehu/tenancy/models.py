"""Organisations, the business-unit tree, users, roles and API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kehu.core.db import Base, BigId, IdMixin, JsonDoc, TimestampMixin

UNIT_KINDS = ("hq", "region", "dealer", "team")


class Organization(IdMixin, TimestampMixin, Base):
    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    timezone: Mapped[str] = mapped_column(String(60), default="Asia/Shanghai")
    default_locale: Mapped[str] = mapped_column(String(10), default="zh")


class BusinessUnit(IdMixin, TimestampMixin, Base):
    """A node of the organisation tree (HQ → region → dealer → team) with a materialised path."""

    __tablename__ = "business_units"
    __entity__ = "units"
    __scope_unit__ = "id"
    __scope_owner__ = None
    __table_args__ = (
        UniqueConstraint("org_id", "code"),
        Index("ix_business_units_org_path", "org_id", "path"),
        # "the units under this one" (path LIKE '/1/7/%'), asked on every request for the principal's fingerprint:
        # byte order lets any collation use the index for a prefix
        Index("ix_business_units_org_path_prefix", "org_id", "path", postgresql_ops={"path": "text_pattern_ops"}),
    )

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("business_units.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(20))
    path: Mapped[str] = mapped_column(String(500), default="")  # "/1/7/42/": itself and its ancestors
    depth: Mapped[int] = mapped_column(default=0)
    province: Mapped[str | None] = mapped_column(String(60), nullable=True)
    city: Mapped[str | None] = mapped_column(String(60), nullable=True)
    is_active: Mapped[bool] = mapped_column(default=True)


user_roles = Table(
    "user_roles",
    Base.metadata,
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", BigId, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
)


class Role(IdMixin, TimestampMixin, Base):
    """Privileges per entity ("profiles.read" → depth) plus plain permissions ("pii.read" → "org")."""

    __tablename__ = "roles"
    __entity__ = "roles"
    __scope_unit__ = None
    __scope_owner__ = None
    __table_args__ = (UniqueConstraint("org_id", "code"),)

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(60))
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    privileges: Mapped[dict[str, str]] = mapped_column(JsonDoc, default=dict)
    is_system: Mapped[bool] = mapped_column(default=False)

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_zh


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "users"
    __entity__ = "users"
    __scope_unit__ = "unit_id"
    __scope_owner__ = "id"
    __pii__ = {"email": "email", "phone": "mobile"}  # column → kind of personal data (kehu.tenancy.masking)

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int] = mapped_column(BigId, ForeignKey("business_units.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # sign-in name, lower-case
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    locale: Mapped[str] = mapped_column(String(10), default="zh")
    is_active: Mapped[bool] = mapped_column(default=True)
    token_version: Mapped[int] = mapped_column(default=1)  # bumped to revoke every token at once
    last_login_at: Mapped[datetime | None] = mapped_column(nullable=True)

    roles: Mapped[list[Role]] = relationship(secondary=user_roles, lazy="selectin")
    unit: Mapped[BusinessUnit] = relationship(lazy="joined")


class ApiKey(IdMixin, TimestampMixin, Base):
    """A server-to-server credential: acts with one role, anchored at one unit. Only a digest is stored."""

    __tablename__ = "api_keys"
    __entity__ = "api_keys"
    __scope_unit__ = "unit_id"
    __scope_owner__ = "created_by_id"

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int] = mapped_column(BigId, ForeignKey("business_units.id"))
    role_id: Mapped[int] = mapped_column(BigId, ForeignKey("roles.id"))
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    digest: Mapped[str] = mapped_column(String(64))
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)

    role: Mapped[Role] = relationship(lazy="joined")
    unit: Mapped[BusinessUnit] = relationship(lazy="joined")


class LoginAttempt(IdMixin, Base):
    """Sign-in attempts, kept in the database so throttling holds across any number of server processes."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_email_ts", "email", "ts"),)

    email: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str] = mapped_column(String(64), default="")
    ts: Mapped[datetime] = mapped_column()
    success: Mapped[bool] = mapped_column(default=False)



class LoginThrottle(Base):
    """Failed sign-ins counted per account and per client address (``key``: ``account:<e-mail>`` or
    ``address:<ip>``), in the database so every server process sees the same wait. One row a key, however many
    attempts: a password-spraying client makes no more rows than it has addresses."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)  # in a row, forgotten after a quiet window
    last_failure_at: Mapped[datetime] = mapped_column()
    blocked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    last_refused_at: Mapped[datetime | None] = mapped_column(nullable=True)  # a try refused for waiting
