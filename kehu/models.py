"""Imports every domain's models so that metadata (Alembic, owned_models()) sees all tables."""

from kehu.cdp.models import (
    Account,
    AccountMember,
    ConsentRecord,
    CustomField,
    Event,
    Identity,
    IdentityKind,
    ImportRejection,
    ImportRun,
    IngestBatch,
    Merge,
    Order,
    OrderLine,
    Product,
    Profile,
    Source,
    Vehicle,
)
from kehu.core.audit import AuditRecord
from kehu.core.jobs import Job
from kehu.segments.models import ProfileTag, Segment, SegmentChange, SegmentMember, Tag, TagGroup
from kehu.tenancy.models import ApiKey, BusinessUnit, LoginAttempt, Organization, Role, User

__all__ = [
    "Account",
    "AccountMember",
    "ApiKey",
    "AuditRecord",
    "BusinessUnit",
    "ConsentRecord",
    "CustomField",
    "Event",
    "Identity",
    "IdentityKind",
    "ImportRejection",
    "ImportRun",
    "IngestBatch",
    "Job",
    "LoginAttempt",
    "Merge",
    "Order",
    "OrderLine",
    "Organization",
    "Product",
    "Profile",
    "ProfileTag",
    "Role",
    "Segment",
    "SegmentChange",
    "SegmentMember",
    "Source",
    "Tag",
    "TagGroup",
    "User",
    "Vehicle",
]
