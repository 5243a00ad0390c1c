"""Domain errors. Services raise these; the API maps them to RFC 9457 problem+json (see kehu.core.http)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FieldError:
    field: str
    message: str
    code: str = "invalid"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}


@dataclass
class KehuError(Exception):
    """Base of every error a service may raise on purpose."""

    detail: str = ""
    errors: list[FieldError] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    # The error in the reader's words, for pages: a catalogue key and its parameters; a parameter may be a
    # {locale: text} mapping (a stage's name in each language). ``detail`` stays English, for the API and logs.
    message: tuple[str, dict[str, Any]] | None = None

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __post_init__(self) -> None:
        super().__init__(self.detail or self.title)


class BadRequest(KehuError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(KehuError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(KehuError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(KehuError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(KehuError):
    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(KehuError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(KehuError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(KehuError):
    status, slug, title = 422, "validation-failed", "Validation failed"


class TooManyRequests(KehuError):
    status, slug, title = 429, "too-many-requests", "Too many requests"


def invalid(field_name: str, message: str, code: str = "invalid") -> ValidationFailed:
    """Shorthand for a validation failure on one field."""
    return ValidationFailed(detail=f"{field_name}: {message}", errors=[FieldError(field_name, message, code)])
