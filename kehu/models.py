"""Imports every domain's models so that metadata (Alembic, owned_models()) sees all tables."""

from kehu.core.audit import AuditRecord
from kehu.core.jobs import Job
from kehu.tenancy.models import ApiKey, BusinessUnit, LoginAttempt, Organization, Role, User

__all__ = ["ApiKey", "AuditRecord", "BusinessUnit", "Job", "LoginAttempt", "Organization", "Role", "User"]
