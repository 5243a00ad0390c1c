"""Channels: the accounts kehu sends through (e-mail, SMS, WeChat, app push, webhooks; the outbox until one is
switched on), templates and the content library, communication control, broadcasts with their approval, the one
message table and its dispatcher, and what comes back (receipts, opens, clicks, unsubscribes) as the customers'
events."""

from __future__ import annotations

from kehu.core import events
from kehu.core.domains import Domain, NavEntry

_WHAT = "entity_id is the message, profile_id the customer; payload: message_id, channel, purpose, broadcast_id"
MESSAGE_SENT = events.declare("channels.message_sent", f"A message was handed to its provider: {_WHAT}.",
                              customer_event="message_sent")
MESSAGE_DELIVERED = events.declare("channels.message_delivered", f"The provider says it arrived: {_WHAT}.",
                                   customer_event="message_delivered")
MESSAGE_BOUNCED = events.declare("channels.message_bounced",
                                 f"It could not be delivered (the address is bad or refused it): {_WHAT}, error.",
                                 customer_event="message_bounced")
EMAIL_OPENED = events.declare("channels.email_opened", f"An e-mail was opened (its pixel loaded): {_WHAT}.",
                              customer_event="email_opened")
LINK_CLICKED = events.declare("channels.link_clicked", f"A link in a message was followed: {_WHAT}, url.",
                              customer_event="link_clicked")
UNSUBSCRIBED = events.declare("channels.unsubscribed",
                              f"The customer unsubscribed through a message's link: {_WHAT}, address.",
                              customer_event="unsubscribed")

DOMAIN = Domain(
    name="channels",
    models="kehu.channels.models",
    services=("kehu.channels.service", "kehu.channels.broadcasts", "kehu.channels.dispatch", "kehu.channels.tracking"),
    events=(MESSAGE_SENT, MESSAGE_DELIVERED, MESSAGE_BOUNCED, EMAIL_OPENED, LINK_CLICKED, UNSUBSCRIBED),
    entities=("messages",),
    permissions=("messages.approve",),
    routers=("kehu.channels.api:router", "kehu.channels.api:public"),
    pages=("kehu.channels.ui:register",),
    navigation=(
        NavEntry("nav.broadcasts", "campaign", "/broadcasts", "messages", "marketing", 25),
        NavEntry("nav.templates", "drafts", "/templates", "messages", "marketing", 26),
        NavEntry("nav.outbox", "outbox", "/outbox", "messages", "marketing", 27),
        NavEntry("nav.channels", "settings_input_antenna", "/admin/channels", "settings.manage", "admin", 95),
    ),
    customer_panels=("kehu.channels.ui.outbox:customer_messages",),
    timeline_streams=("kehu.channels.service:TIMELINE_STREAM",),
)
