"""What the CDP's pages share: the timeline's event icons, how a nameless customer is shown."""

from __future__ import annotations

from kehu.cdp import schemas
from kehu.ui.shell import (
    tr,
)

EVENT_ICONS = {"page": "web", "screen": "smartphone", "identify": "badge", "group": "groups", "alias": "link",
               "track": "bolt"}


def display_name(name: str | None, profile_id: int, out: schemas.ProfileOut | None = None) -> str:
    """The name, or for a customer who left none how to tell them apart (a mobile's last digits, an e-mail as
    the reader sees it); only someone who left nothing is an anonymous visitor."""
    if name:
        return name
    if out is not None and out.mobile:
        return tr("customers.nameless_mobile", tail=out.mobile[-4:])
    if out is not None and out.email:
        return tr("customers.nameless", contact=out.email)
    return tr("customers.anonymous", id=profile_id)
