"""The outbox: the provider of every channel until a real one is switched on. Nothing leaves the machine; the
message, rendered exactly as the customer would see it, stays on its row for the outbox page to show."""

from __future__ import annotations

from typing import Any

import httpx

from kehu.channels.providers import Outcome, Outgoing, provider


class Outbox:
    name = "outbox"
    idempotent = True  # nothing goes anywhere: a repeat only writes the same row again

    def send(self, message: Outgoing) -> Outcome:
        return Outcome("sent", provider_message_id=f"outbox-{message.message_id}")

    def close(self) -> None:
        pass


@provider("outbox")
def _outbox(config: dict[str, Any], secrets: dict[str, Any], http: httpx.Client) -> Outbox:
    return Outbox()
