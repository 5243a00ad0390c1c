"""Segment-spec ingestion: validate calls (limits as Segment's: 32 KB a message, 500 KB a batch), keep the
valid ones in the durable inbox, report the invalid ones. Resolution happens later, in the worker."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.orm import Session

from kehu.cdp.models import IngestBatch, Source
from kehu.core.db import utcnow
from kehu.core.errors import BadRequest

CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_CALLS = 2500  # Segment's too: the calls past it are reported, not kept (the batch still answers 200)
MAX_EVENT_NAME = 200


class MessageError(ValueError):
    pass


class CallTooLarge(BadRequest):
    """A call or batch over Segment's size limits: 400, as Segment's API answers it (413 elsewhere in kehu)."""

    slug, title = "payload-too-large", "Payload too large"


@dataclass
class Accepted:
    accepted: int
    rejected: list[dict[str, Any]] = field(default_factory=list)
    batch_id: int | None = None


def parse_time(value: Any, field_name: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise MessageError(f"{field_name}: expected an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MessageError(f"{field_name}: not an ISO 8601 timestamp: {value[:40]!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=utcnow().tzinfo)
    return parsed


def _text_id(value: Any, field_name: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MessageError(f"{field_name}: expected a string")
    text = str(value).strip()
    if len(text) > 254:
        raise MessageError(f"{field_name}: longer than 254 characters")
    return text or None


def _object(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MessageError(f"{key}: expected an object")
    return value


def validate_message(raw: Any, call_type: str | None, *, received_at: datetime,
                     batch_context: dict[str, Any] | None = None) -> dict[str, Any]:
    """One call, checked and reduced to what processing needs (unknown fields stay in properties/context)."""
    if not isinstance(raw, dict):
        raise MessageError("a message must be a JSON object")
    if len(orjson.dumps(raw, default=str)) > MAX_MESSAGE_BYTES:
        raise MessageError(f"message larger than {MAX_MESSAGE_BYTES // 1024} KB")
    kind = call_type or raw.get("type")
    if kind not in CALL_TYPES:
        raise MessageError(f"type: must be one of {', '.join(CALL_TYPES)}")
    user_id = _text_id(raw.get("userId"), "userId")
    anonymous_id = _text_id(raw.get("anonymousId"), "anonymousId")
    previous_id = _text_id(raw.get("previousId"), "previousId")
    if kind == "alias":
        if not (previous_id and user_id):
            raise MessageError("alias needs previousId and userId")
    elif not (user_id or anonymous_id):
        raise MessageError("userId or anonymousId is required")
    event = raw.get("event")
    if kind == "track":
        if not isinstance(event, str) or not event.strip():
            raise MessageError("event: a track call needs an event name")
        if len(event) > MAX_EVENT_NAME:
            raise MessageError(f"event: longer than {MAX_EVENT_NAME} characters")
    group_id = _text_id(raw.get("groupId"), "groupId")
    if kind == "group" and not group_id:
        raise MessageError("groupId: a group call needs a groupId")
    message_id = _text_id(raw.get("messageId"), "messageId") or f"kehu-{uuid.uuid4()}"
    if len(message_id) > 100:
        raise MessageError("messageId: longer than 100 characters")
    context = {**(batch_context or {}), **_object(raw, "context")}
    traits = _object(raw, "traits") if kind in ("identify", "group") else {}
    context_traits = context.get("traits") if isinstance(context.get("traits"), dict) else {}
    properties = _object(raw, "properties")
    timestamp = parse_time(raw.get("timestamp") or raw.get("originalTimestamp"), "timestamp")
    sent_at = parse_time(raw.get("sentAt"), "sentAt")
    ts = timestamp or received_at
    if timestamp is not None and sent_at is not None:
        ts = timestamp + (received_at - sent_at)  # correct the device clock, as Segment does
    if ts > received_at + timedelta(days=1):
        raise MessageError("timestamp: more than a day in the future")
    name = raw.get("name") if isinstance(raw.get("name"), str) else None
    known = {"type", "userId", "anonymousId", "previousId", "event", "groupId", "messageId", "context", "traits",
             "properties", "timestamp", "originalTimestamp", "sentAt", "receivedAt", "name", "integrations",
             "writeKey", "channel", "version"}
    extra = {k: v for k, v in raw.items() if k not in known}
    if extra:
        properties = {**properties, **extra}  # unknown top-level fields are kept, not dropped
    return {
        "type": kind, "message_id": message_id, "user_id": user_id, "anonymous_id": anonymous_id,
        "previous_id": previous_id, "group_id": group_id,
        "event": event.strip() if kind == "track" else (name or kind),
        "traits": {**context_traits, **traits} if kind != "group" else context_traits,
        "group_traits": traits if kind == "group" else {},
        "properties": properties, "context": context, "ts": ts.isoformat(),
    }


def accept(session: Session, source: Source, messages: list[tuple[Any, str | None]],
           batch_context: dict[str, Any] | None = None) -> Accepted:
    """Store the valid messages of one request as one inbox row; report each invalid one with its reason."""
    received_at = utcnow()
    valid: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for index, (raw, call_type) in enumerate(messages):
        try:
            if index >= MAX_BATCH_CALLS:
                raise MessageError(f"batch: more than {MAX_BATCH_CALLS} calls; send the rest in another batch")
            valid.append(validate_message(raw, call_type, received_at=received_at, batch_context=batch_context))
        except MessageError as error:
            message_id = raw.get("messageId") if isinstance(raw, dict) else None
            rejected.append({"index": index, "messageId": message_id, "reason": str(error)})
    result = Accepted(accepted=len(valid), rejected=rejected)
    if valid:
        batch = IngestBatch(org_id=source.org_id, source_id=source.id, received_at=received_at, messages=valid,
                            message_count=len(valid), status="pending")
        session.add(batch)
        session.flush()
        result.batch_id = batch.id
    return result
