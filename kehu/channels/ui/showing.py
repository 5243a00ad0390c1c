"""How a message looks to its customer, shared by the pages that show one (the template editor's preview,
the outbox, a broadcast, a customer's messages): the channel's name and icon, an e-mail in a sandboxed frame with
its tracking made harmless, an SMS as a phone's bubble, a WeChat template card, a push notification; and a
template fault in the reader's words."""

from __future__ import annotations

import re

from nicegui import ui

from kehu.ui.shell import tr

CHANNEL_ICONS = {"email": "mail", "sms": "sms", "wechat": "forum", "push": "notifications_active",
                 "webhook": "webhook"}


# -- shared pieces (the outbox and the broadcasts show messages the same way) ---------------------------------
def channel_label(channel: str) -> str:
    return tr(f"channels.channel.{channel}")


def channel_chip(channel: str) -> None:
    ui.chip(channel_label(channel), icon=CHANNEL_ICONS.get(channel, "send")).props(
        "dense square outline color=primary")


def sandboxed_html(html: str, *, height: str = "560px") -> ui.element:
    """E-mail HTML in an iframe that runs nothing and navigates nowhere (``sandbox=""``), its links opening in a
    new window the sandbox refuses: what the customer sees, without anything happening to the reader."""
    doc = _neutralised(html)
    frame_el = ui.element("iframe").classes("w-full rounded border bg-white").style(f"height: {height}")
    frame_el.props["sandbox"] = ""
    frame_el.props["srcdoc"] = doc
    frame_el.props["title"] = tr("channels.tpl.email_frame")
    return frame_el


_PIXEL = re.compile(r"<img\b[^>]*/t/o/[^>]*>", re.IGNORECASE)
_TRACKED = re.compile(r"""(href\s*=\s*["'])[^"']*/t/c/([A-Za-z0-9_\-]+)\.[A-Za-z0-9_\-]+(["'])""", re.IGNORECASE)


def _untracked(match: re.Match[str]) -> str:
    """A tracked link back to where it leads (its token carries "<message id> <url>"), so that reading a message
    here never counts as the customer's click."""
    import base64

    encoded = match.group(2)
    try:
        value = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        url = value.split(" ", 1)[1]
    except (ValueError, IndexError, UnicodeDecodeError):
        url = "#"
    return f"{match.group(1)}{url}{match.group(3)}"


def _neutralised(html: str) -> str:
    """The message's HTML without its open pixel (showing it here is no open), its links untracked, and every
    link aimed at a new window (which the sandbox does not open)."""
    html = _TRACKED.sub(_untracked, _PIXEL.sub("", html))
    base = '<base target="_blank">'
    if re.search(r"<head\b[^>]*>", html, re.IGNORECASE):
        return re.sub(r"(<head\b[^>]*>)", lambda m: m.group(1) + base, html, count=1, flags=re.IGNORECASE)
    return base + html


def phone_bubble(text: str, *, sender: str = "") -> None:
    """An SMS as it appears on a phone: a bubble in a message thread."""
    with ui.element("div").classes("mx-auto w-full max-w-[320px] rounded-3xl p-3").style(
            "background:#eef0f3; border: 6px solid #2b2f36"):
        ui.label(sender or tr("channels.tpl.sms_sender")).classes("text-center text-xs text-grey-7 pb-2")
        ui.label(text or "—").classes("rounded-2xl px-3 py-2 text-sm whitespace-pre-wrap break-all").style(
            "background:#ffffff; max-width: 90%; box-shadow: 0 1px 1px rgba(0,0,0,.08)")


def wechat_card(fields: list[tuple[str, str]], *, template: str = "", url: str | None = None) -> None:
    """A WeChat template message as the customer's WeChat shows it: a title, its fields, a link to the detail."""
    with ui.element("div").classes("mx-auto w-full max-w-[340px] rounded-lg border bg-white"):
        with ui.column().classes("px-4 pt-3 pb-2 gap-1"):
            ui.label(tr("channels.tpl.wechat_title")).classes("text-base font-medium")
            if template:
                ui.label(template).classes("text-xs text-grey-6 -mt-1")
            for key, value in fields:
                with ui.row().classes("w-full no-wrap gap-2 text-sm"):
                    ui.label(key).classes("text-grey-6 shrink-0")
                    ui.label(value or "—").classes("break-all whitespace-pre-wrap")
        if url:
            with ui.row().classes("w-full items-center border-t px-4 py-2 text-sm text-grey-8"):
                ui.label(tr("channels.tpl.wechat_detail"))
                ui.space()
                ui.icon("chevron_right").classes("text-grey-6")


def push_card(title: str | None, text: str) -> None:
    with ui.element("div").classes("mx-auto w-full max-w-[340px] rounded-2xl p-3").style("background:#f1f3f6"):
        with ui.row().classes("items-center gap-2 text-xs text-grey-7"):
            ui.icon("directions_car").classes("text-primary")
            ui.label(tr("channels.tpl.push_app"))
            ui.space()
            ui.label(tr("channels.tpl.push_now"))
        ui.label(title or "").classes("font-medium text-sm pt-1")
        ui.label(text or "—").classes("text-sm whitespace-pre-wrap break-all")


def error_words(code: str, message: str) -> str:
    """A service's field error in the reader's words (the message itself is the template engine's, in English)."""
    known = {"template_syntax": "channels.tpl.err.syntax", "mjml": "channels.tpl.err.mjml",
             "render": "channels.tpl.err.render", "too_long": "channels.tpl.err.too_long",
             "required": "channels.tpl.err.required", "duplicate": "channels.tpl.err.duplicate"}
    key = known.get(code)
    if key is None:
        return message
    return tr(key, detail=message.removeprefix("MJML: "))


# -- the list ----------------------------------------------------------------------------------------------
