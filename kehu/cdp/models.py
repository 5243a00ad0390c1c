"""Customer data: sources and their inbox, profiles, identities (One ID), events and merges."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    FetchedValue,
    ForeignKey,
    Index,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kehu.core.db import Base, BigId, IdMixin, JsonDoc, OwnedMixin, TimestampMixin, utcnow

ADDRESS_LENGTH = 255  # a Chinese address with province, district, street, building and flat needs ~60 characters
POSTCODE_LENGTH = 16  # 6 digits in China; "SW1A 1AA", "10115", "K1A 0B1", "1234-567" elsewhere


class Source(IdMixin, TimestampMixin, Base):
    """Where data comes from (a website, an app, a server, an import). Its write key authenticates /v1."""

    __tablename__ = "sources"
    __entity__ = "sources"
    __scope_unit__ = "unit_id"
    __scope_owner__ = "created_by_id"

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int] = mapped_column(BigId, ForeignKey("business_units.id"))
    created_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20), default="server")  # web | app | server | import
    write_key_prefix: Mapped[str] = mapped_column(String(16))
    write_key_digest: Mapped[str] = mapped_column(String(64), unique=True)
    is_active: Mapped[bool] = mapped_column(default=True)


class IngestBatch(IdMixin, Base):
    """The durable inbox: one row per accepted /v1 request, written before the API answers 200."""

    __tablename__ = "ingest_batches"
    __table_args__ = (Index("ix_ingest_batches_pending", "status", "id"),)

    org_id: Mapped[int] = mapped_column(BigId, index=True)
    source_id: Mapped[int] = mapped_column(BigId, ForeignKey("sources.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc)
    message_count: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | processed | failed
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    processed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Profile(IdMixin, TimestampMixin, OwnedMixin, Base):
    """客户档案: one person, unified across touchpoints. Merged-away profiles stay as tombstones for unmerge."""

    __tablename__ = "profiles"
    __entity__ = "profiles"
    # column → kind (kehu.tenancy.masking)
    __pii__ = {"mobile": "mobile", "email": "email", "birthday": "birthday", "address": "text"}
    # Customer search (kehu.cdp.search) finds each kind of match on an index of its own: the name's characters
    # and pairs (GIN, PostgreSQL), the pinyin in byte order (LIKE 'zhang%' takes no plain index under the
    # databases' C.UTF-8 collation), the mobile's last four digits. Mobiles and e-mails in full are found
    # through identities (unique per org, kind and value). Each index costs every import and new visitor a write.
    __table_args__ = (
        Index("ix_profiles_org_unit", "org_id", "unit_id"),
        Index("ix_profiles_org_pinyin", "org_id", "name_pinyin", postgresql_ops={"name_pinyin": "text_pattern_ops"}),
        Index("ix_profiles_org_mobile_tail", "org_id", text("substr(mobile, length(mobile) - 3)")),
        Index("ix_profiles_name_grams", text("kehu_name_grams(name)"), postgresql_using="gin").ddl_if(
            dialect="postgresql"),
        # Only tombstones point anywhere; most profiles would be NULL entries in a full index.
        Index("ix_profiles_merged_into", "merged_into_id", postgresql_where=text("merged_into_id IS NOT NULL"),
              sqlite_where=text("merged_into_id IS NOT NULL")),
    )

    # Every query is scoped by organisation and these lead the composite indexes above, so the mixin's
    # single-column indexes would only slow each write down.
    org_id: Mapped[int] = mapped_column(BigId)
    unit_id: Mapped[int] = mapped_column(BigId)

    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    name_pinyin: Mapped[str | None] = mapped_column(String(200), nullable=True)
    gender: Mapped[str | None] = mapped_column(String(10), nullable=True)  # male | female | other
    birthday: Mapped[date | None] = mapped_column(nullable=True)
    mobile: Mapped[str | None] = mapped_column(String(32), nullable=True)  # E.164
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    province: Mapped[str | None] = mapped_column(String(60), nullable=True)
    city: Mapped[str | None] = mapped_column(String(60), nullable=True)
    address: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH), nullable=True)  # street, number, flat
    # A postal area (as coarse as the city for masking: shown to every reader who sees the customer)
    postcode: Mapped[str | None] = mapped_column(String(POSTCODE_LENGTH), nullable=True)
    source: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lifecycle_stage: Mapped[str] = mapped_column(String(30), default="visitor")
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    # Per trait: when it was last set and by which source, for last-write-wins by event time.
    trait_times: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    merged_into_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("profiles.id"), nullable=True)
    first_seen_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Identity(IdMixin, Base):
    """身份: a (kind, value) pair that belongs to exactly one profile of the organisation."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("org_id", "kind", "value"),
        Index("ix_identities_profile", "profile_id"),
    )

    org_id: Mapped[int] = mapped_column(BigId)
    # No foreign key, as on events: identities are written at ingestion's pace (one to three per new person)
    # and the key's check per row cost half of writing one. Only the resolver creates them, with or after
    # their profile in the same transaction, and profiles are never deleted (a merge leaves a tombstone).
    profile_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(254))
    source_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdentityKind(IdMixin, Base):
    """Per-organisation One ID rules: which kinds exist, their priority and how many a profile may hold."""

    __tablename__ = "identity_kinds"
    __table_args__ = (UniqueConstraint("org_id", "kind"),)

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    priority: Mapped[int] = mapped_column(default=100)  # lower = stronger
    max_per_profile: Mapped[int] = mapped_column(default=5)
    label_zh: Mapped[str] = mapped_column(String(60), default="")
    label_en: Mapped[str] = mapped_column(String(60), default="")


HAPPENING = "kehu"  # Event.type of what kehu recorded on the customer itself (kehu/cdp/happenings.py)


class Event(IdMixin, Base):
    """Append-only. ``identity_id`` never changes; ``profile_id`` follows merges (set-based re-pointing)."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("source_id", "message_id"),
        Index("ix_events_org_profile_ts", "org_id", "profile_id", "ts"),
        # Segments ask "who did X when": carrying profile_id lets PostgreSQL answer from the index alone.
        Index("ix_events_org_event_ts", "org_id", "event", "ts", postgresql_include=["profile_id"]),
        # No index on identity_id: a merge finds an identity's events on the profile that holds it (events
        # always sit on their identity's profile), through the index above; one index less on every event.
        # Consumers read the stream in the order of its transactions (core/events.py: the lead rules).
        Index("ix_events_txid_id", "txid", "id"),
    )

    org_id: Mapped[int] = mapped_column(BigId)
    source_id: Mapped[int] = mapped_column(BigId)
    message_id: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(16))  # track | page | screen | identify | group | alias | HAPPENING
    event: Mapped[str] = mapped_column(String(200))
    ts: Mapped[datetime] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    identity_id: Mapped[int] = mapped_column(BigId)
    profile_id: Mapped[int] = mapped_column(BigId)
    properties: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    # the writing transaction's id, filled by the database (core/events.py); None on rows older than 0028
    txid: Mapped[int | None] = mapped_column(BigInteger, server_default=FetchedValue(), nullable=True)


class Merge(IdMixin, Base):
    """A merge of ``loser`` into ``winner`` with everything that moved, so unmerge restores exactly."""

    __tablename__ = "profile_merges"
    __table_args__ = (Index("ix_profile_merges_winner", "org_id", "winner_id"),
                      Index("ix_profile_merges_loser", "org_id", "loser_id"))

    org_id: Mapped[int] = mapped_column(BigId)
    winner_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"))
    loser_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"))
    reason: Mapped[str] = mapped_column(String(20))  # identity | manual | dedupe
    detail: Mapped[str] = mapped_column(Text, default="")
    moved: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    winner_before: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(nullable=True)
    undone_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)


class ImportRun(IdMixin, TimestampMixin, Base):
    """An uploaded file of profiles or orders and what became of it. The file is kept in the database so that any
    worker of a cluster can run (and resume) the import."""

    __tablename__ = "imports"
    __entity__ = "imports"
    __scope_unit__ = "unit_id"
    __scope_owner__ = "created_by_id"

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int] = mapped_column(BigId)
    created_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    source_id: Mapped[int] = mapped_column(BigId, ForeignKey("sources.id"))
    kind: Mapped[str] = mapped_column(String(20), default="profiles", server_default="profiles")  # | orders
    filename: Mapped[str] = mapped_column(String(255))
    # Read when needed: each part of an import reads its slice. Stored uncompressed on PostgreSQL (STORAGE
    # EXTERNAL, migration 0024), so a slice reads its own chunks instead of decompressing the file up to it.
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    encoding: Mapped[str] = mapped_column(String(20), default="utf-8")
    headers: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    mapping: Mapped[dict[str, str]] = mapped_column(JsonDoc, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="uploaded")  # uploaded | queued | running | done | failed
    job_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    total_rows: Mapped[int] = mapped_column(default=0)
    accepted_rows: Mapped[int] = mapped_column(default=0)
    rejected_rows: Mapped[int] = mapped_column(default=0)
    profiles_created: Mapped[int] = mapped_column(default=0)
    orders_created: Mapped[int] = mapped_column(default=0, server_default="0")
    warnings: Mapped[int] = mapped_column(default=0, server_default="0")  # values left out of accepted rows


class ImportRejection(IdMixin, Base):
    """One rejected row: its number in the file (header = row 1), why, and the row as it was."""

    __tablename__ = "import_rejections"
    __table_args__ = (Index("ix_import_rejections_import_row", "import_id", "row_number"),)

    import_id: Mapped[int] = mapped_column(BigId, ForeignKey("imports.id", ondelete="CASCADE"))
    row_number: Mapped[int] = mapped_column()
    reason: Mapped[str] = mapped_column(Text)  # English, for the API
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)  # codes, for every language
    row: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)


class ImportWarning(IdMixin, Base):
    """A value of an accepted row that was not stored (a birthday 1945-04-93, an e-mail that is no e-mail beside
    a good mobile): the row's number, the column, the cell as written and why, as a code for every language."""

    __tablename__ = "import_warnings"
    __table_args__ = (Index("ix_import_warnings_import_row", "import_id", "row_number"),)

    import_id: Mapped[int] = mapped_column(BigId, ForeignKey("imports.id", ondelete="CASCADE"))
    row_number: Mapped[int] = mapped_column()
    column: Mapped[str] = mapped_column(Text)
    value: Mapped[str] = mapped_column(Text)
    problem: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)  # {"code", "params"}


class ConsentRecord(IdMixin, Base):
    """PIPL consent: one append-only record per decision. The latest record per (profile, channel, purpose)
    is the current state; the history is the evidence."""

    __tablename__ = "consents"
    __profile_link__ = "profile_id"
    __table_args__ = (Index("ix_consents_profile", "profile_id", "channel", "purpose", "ts"),
                      UniqueConstraint("source_id", "message_id", "channel", "purpose"))

    org_id: Mapped[int] = mapped_column(BigId, index=True)
    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"))
    channel: Mapped[str] = mapped_column(String(20))  # sms | email | wechat | phone | app_push | mail
    purpose: Mapped[str] = mapped_column(String(20))  # marketing | service | analytics | third_party
    status: Mapped[str] = mapped_column(String(10))  # granted | withdrawn
    ts: Mapped[datetime] = mapped_column()
    evidence: Mapped[str] = mapped_column(String(500), default="")
    source_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(100), nullable=True)  # replaying a call adds nothing
    recorded_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)


class Account(IdMixin, TimestampMixin, Base):
    """A company, household or dealer group that profiles belong to (Segment's `group`)."""

    __tablename__ = "accounts"
    __entity__ = "accounts"
    __scope_unit__ = "unit_id"
    __scope_owner__ = "owner_id"
    __table_args__ = (UniqueConstraint("org_id", "external_id"),)

    org_id: Mapped[int] = mapped_column(BigId, index=True)
    unit_id: Mapped[int] = mapped_column(BigId)
    owner_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    external_id: Mapped[str] = mapped_column(String(254))  # the groupId
    kind: Mapped[str] = mapped_column(String(20), default="company")  # company | household | dealer_group
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    traits: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)


class AccountMember(IdMixin, Base):
    __tablename__ = "account_members"
    __profile_link__ = "profile_id"
    # No unique (account, profile): a merge of two members of one account must be able to move the row,
    # and an unmerge to move it back; readers de-duplicate.
    __table_args__ = (Index("ix_account_members_account", "account_id", "profile_id"),
                      Index("ix_account_members_profile", "profile_id"))

    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"))
    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"))
    role: Mapped[str | None] = mapped_column(String(60), nullable=True)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)


class Product(IdMixin, TimestampMixin, Base):
    """Vehicle models, parts, services and accessories, priced in CNY."""

    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("org_id", "sku"),)

    org_id: Mapped[int] = mapped_column(BigId, index=True)
    sku: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="vehicle_model")  # vehicle_model|part|service|accessory
    price: Mapped[Decimal | None] = mapped_column(Numeric(14, 2), nullable=True)
    is_active: Mapped[bool] = mapped_column(default=True)


class Order(IdMixin, TimestampMixin, OwnedMixin, Base):
    """An order at a dealer (unit), sold by a salesperson (owner), for a customer (profile)."""

    __tablename__ = "orders"
    __entity__ = "orders"
    __profile_link__ = "profile_id"
    __table_args__ = (UniqueConstraint("org_id", "external_id"), Index("ix_orders_profile", "profile_id"))

    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"))
    external_id: Mapped[str] = mapped_column(String(100))  # the order number
    status: Mapped[str] = mapped_column(String(20), default="placed")  # placed|paid|delivered|cancelled|refunded
    ordered_at: Mapped[datetime] = mapped_column()
    total: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    source_id: Mapped[int | None] = mapped_column(BigId, nullable=True)


class OrderLine(IdMixin, Base):
    __tablename__ = "order_lines"

    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("products.id"), nullable=True)
    sku: Mapped[str | None] = mapped_column(String(100), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(default=1)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))

    order: Mapped[Order] = relationship(lazy="raise_on_sql")
    product: Mapped[Product | None] = relationship(lazy="raise_on_sql")


class Vehicle(IdMixin, TimestampMixin, Base):
    """An asset: a car with its VIN, owned by a customer, sold and serviced by dealers."""

    __tablename__ = "vehicles"
    __profile_link__ = "profile_id"
    __table_args__ = (UniqueConstraint("org_id", "vin"), Index("ix_vehicles_profile", "profile_id"))

    org_id: Mapped[int] = mapped_column(BigId)
    unit_id: Mapped[int | None] = mapped_column(BigId, nullable=True)  # the selling dealer
    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"))
    vin: Mapped[str] = mapped_column(String(17))
    model: Mapped[str | None] = mapped_column(String(100), nullable=True)
    model_year: Mapped[int | None] = mapped_column(nullable=True)
    plate: Mapped[str | None] = mapped_column(String(20), nullable=True)
    purchased_at: Mapped[date | None] = mapped_column(nullable=True)


class CustomField(IdMixin, TimestampMixin, Base):
    """An organisation's own customer field: stored in ``profiles.attributes[key]``, validated by type."""

    __tablename__ = "custom_fields"
    __table_args__ = (UniqueConstraint("org_id", "key"),)

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(60))
    label_zh: Mapped[str] = mapped_column(String(100))
    label_en: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(20))  # text | number | date | boolean | option | multi_option
    options: Mapped[list[dict[str, str]]] = mapped_column(JsonDoc, default=list)  # [{"value","zh","en"}]
    is_pii: Mapped[bool] = mapped_column(default=False)


class Export(IdMixin, TimestampMixin, Base):
    """A file of customers made by a job for one person (or API key), within their export scope, PII masked
    unless they hold pii.read. Kept in the database so any app process of a cluster can hand it out."""

    __tablename__ = "exports"
    __table_args__ = (Index("ix_exports_org_creator", "org_id", "created_by_id"),)

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    unit_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_by_api_key_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    kind: Mapped[str] = mapped_column(String(20), default="customers")
    format: Mapped[str] = mapped_column(String(10), default="csv")  # csv | xlsx
    filters: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    locale: Mapped[str] = mapped_column(String(10), default="zh")
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued | running | done | failed
    job_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    row_count: Mapped[int] = mapped_column(default=0)
    filename: Mapped[str] = mapped_column(String(255), default="")
    content: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class DedupeSettings(IdMixin, TimestampMixin, Base):
    """Per organisation: how sure probabilistic matching must be to propose a pair for review or to merge it
    without asking, and what its last run found (with the fitted model, so a reviewer can see why)."""

    __tablename__ = "dedupe_settings"
    __table_args__ = (UniqueConstraint("org_id"),)

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    review_threshold: Mapped[float] = mapped_column(default=0.8)
    auto_merge_threshold: Mapped[float | None] = mapped_column(nullable=True)  # None: people decide every pair
    status: Mapped[str] = mapped_column(String(20), default="idle")  # idle | queued | running | done | failed
    job_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    last_run_at: Mapped[datetime | None] = mapped_column(nullable=True)
    figures: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    model: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    # What is compared and how pairs are blocked ({"comparisons": [...], "rules": [...]}, see
    # kehu.cdp.matching.config); None, or a part missing: the matcher's defaults (made for Chinese consumer data)
    matching: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, nullable=True)


class BlockingKey(Base):
    """Live matching's inverted index (``kehu.cdp.dedupe_live``): for each live profile, one row per key it blocks
    on under its organisation's plan (a 63-bit hash of the rule's key names and their values, so one key is one
    block of candidates), one per term-frequency value (and its column's total) and one fingerprint of its matching
    fields. Written as profiles change, rebuilt (as a difference) by each full run."""

    __tablename__ = "blocking_keys"
    __table_args__ = (Index("ix_blocking_keys_profile", "profile_id"),)

    org_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    profile_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)


class DuplicateCandidate(IdMixin, Base):
    """疑似重复: two live profiles that are probably one person, with the evidence (a level per comparison).
    Open until someone merges or dismisses it (or a run no longer finds it); a dismissed pair is never
    proposed again."""

    __tablename__ = "duplicate_candidates"
    __table_args__ = (
        UniqueConstraint("org_id", "profile_a_id", "profile_b_id"),
        Index("ix_duplicate_candidates_queue", "org_id", "status", "probability"),
        Index("ix_duplicate_candidates_b", "profile_b_id"),
    )

    org_id: Mapped[int] = mapped_column(BigId)
    profile_a_id: Mapped[int] = mapped_column(BigId, index=True)  # the lower id of the two
    profile_b_id: Mapped[int] = mapped_column(BigId)
    probability: Mapped[float] = mapped_column()
    levels: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | merged | dismissed
    found_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decided_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)  # None when merged automatically
    merge_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
