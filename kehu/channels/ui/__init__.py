"""The channels' pages: templates and their editor, broadcasts (with their reports and the campaign calendar),
the messages and outbox viewer, and the channel settings (accounts, communication rules, suppressions); and a
customer's messages on the Customer 360."""

from __future__ import annotations


def register() -> None:
    from kehu.channels.ui import broadcasts, outbox, settings, templates

    templates.register()
    broadcasts.register()
    outbox.register()
    settings.register()
