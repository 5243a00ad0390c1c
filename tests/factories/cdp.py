"""Helpers to create sources and push Segment calls through the real /v1 API and the real worker."""

from __future__ import annotations

import base64
import itertools
from typing import Any

from kehu.cdp import schemas, service
from kehu.cdp.identity import drain_inbox

_ids = itertools.count(1)


def make_source(session, principal, name: str = "官网", unit_id: int | None = None) -> tuple[Any, str]:  # type: ignore[no-untyped-def]
    return service.create_source(session, principal, data=schemas.SourceCreate(name=name, kind="web",
                                                                               unit_id=unit_id))


def basic(write_key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}


def call(kind: str, **fields: Any) -> dict[str, Any]:
    body = {"type": kind, "messageId": f"m-{next(_ids)}", **fields}
    return body


def process(database) -> int:  # type: ignore[no-untyped-def]
    """Drain the inbox exactly as the worker does, until it is empty."""
    total = 0
    while True:
        with database.unit_of_work() as session:
            done = drain_inbox(session)
        if not done:
            return total
        total += done
