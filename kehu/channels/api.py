"""HTTP door of channels: templates, the content library, broadcasts and their review, messages, the
communication policy, suppressions and channel accounts (``router``); and the addresses customers' mail clients
and the providers call without signing in (``public``): the open pixel, tracked links, unsubscribe, receipts."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from kehu.channels import broadcasts, control, schemas, service, templates, tracking
from kehu.channels.dispatch import public_base
from kehu.core.errors import NotFound, invalid
from kehu.core.i18n import t
from kehu.tenancy.deps import Cursor, Limit, PrincipalDep, SessionDep
from kehu.tenancy.schemas import Page

router = APIRouter(prefix="/api/v1", tags=["channels"])
public = APIRouter(tags=["channels (public)"], include_in_schema=True)

ChannelQuery = Annotated[Literal["email", "sms", "wechat", "push", "webhook"] | None, Query()]


# -- templates ------------------------------------------------------------------------------------------------------
@router.get("/templates", response_model=Page[schemas.TemplateOut])
def list_templates(session: SessionDep, principal: PrincipalDep, channel: ChannelQuery = None,
                   include_archived: bool = False, limit: Limit = 50, cursor: Cursor = None) -> Any:
    page = templates.list_templates(session, principal, channel=channel, include_archived=include_archived,
                                    limit=limit, cursor=cursor)
    return {"items": [templates.template_out(session, t_, with_content=False) for t_ in page.items],
            "next_cursor": page.next_cursor}


@router.post("/templates", response_model=schemas.TemplateOut, status_code=status.HTTP_201_CREATED)
def create_template(data: schemas.TemplateCreate, session: SessionDep, principal: PrincipalDep) -> Any:
    """A template for one channel and purpose, in Chinese (and English). Every Jinja expression is checked
    (422 naming the field and line of each fault); MJML is compiled to responsive HTML once, now."""
    return templates.template_out(session, templates.create_template(session, principal, data))


@router.get("/templates/{template_id}", response_model=schemas.TemplateOut)
def get_template(template_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return templates.template_out(session, templates.get_template(session, principal, template_id))


@router.patch("/templates/{template_id}", response_model=schemas.TemplateOut)
def update_template(template_id: int, data: schemas.TemplateUpdate, session: SessionDep,
                    principal: PrincipalDep) -> Any:
    """New content is saved as the next version; earlier versions stay (a broadcast keeps the one it was
    approved with)."""
    return templates.template_out(session, templates.update_template(session, principal, template_id, data))


@router.get("/templates/{template_id}/versions", response_model=list[schemas.TemplateVersionOut])
def template_versions(template_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return templates.versions(session, principal, template_id)


@router.get("/templates/{template_id}/report", response_model=schemas.Report)
def template_report(template_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    """What the template's messages did, across every broadcast that used it — counted as a broadcast's report is,
    over the messages to customers you may see."""
    return broadcasts.template_report(session, principal, template_id)


@router.post("/templates/{template_id}/preview", response_model=schemas.Rendered)
def preview_template(template_id: int, request: schemas.TemplatePreviewRequest, session: SessionDep,
                     principal: PrincipalDep) -> Any:
    """The template (or unsaved content) rendered for a customer of your scope, as they would receive it —
    personal data you may not read masked."""
    return templates.preview(session, principal, template_id, request)


@router.post("/templates/{template_id}/test", response_model=schemas.MessageOut,
             status_code=status.HTTP_202_ACCEPTED)
def test_template(template_id: int, data: schemas.TestSend, session: SessionDep, principal: PrincipalDep) -> Any:
    """Send the template to yourself (your e-mail or phone, or the address given) through your unit's channel."""
    return service.message_out(principal, templates.test_send(session, principal, template_id, data))


@router.get("/content", response_model=list[schemas.ContentItemOut])
def list_content(session: SessionDep, principal: PrincipalDep) -> Any:
    return templates.list_content(session, principal)


@router.put("/content", response_model=schemas.ContentItemOut)
def save_content(data: schemas.ContentItemIn, session: SessionDep, principal: PrincipalDep) -> Any:
    """Add a snippet or image to the content library, or replace the one of that name."""
    return templates.save_content(session, principal, data)


@router.delete("/content/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_content(item_id: int, session: SessionDep, principal: PrincipalDep) -> Response:
    templates.delete_content(session, principal, item_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- broadcasts -----------------------------------------------------------------------------------------------------
@router.get("/broadcasts", response_model=Page[schemas.BroadcastOut])
def list_broadcasts(session: SessionDep, principal: PrincipalDep, status_: Annotated[
        str | None, Query(alias="status", max_length=20)] = None, limit: Limit = 50, cursor: Cursor = None) -> Any:
    return broadcasts.list_broadcasts(session, principal, status=status_, limit=limit, cursor=cursor)


@router.get("/broadcasts/calendar", response_model=list[schemas.BroadcastOut])
def broadcast_calendar(session: SessionDep, principal: PrincipalDep, start: datetime, end: datetime,
                       unit_id: int | None = None) -> Any:
    """The campaign calendar: broadcasts reaching customers between ``start`` and ``end`` (at most 1,000), of
    your units or of one unit and those below it."""
    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))  # a time without a zone: UTC
    if end <= start or end - start > timedelta(days=93):
        raise invalid("end", "after start, and at most 93 days after it")
    return broadcasts.calendar(session, principal, start=start, end=end, unit_id=unit_id)


@router.post("/broadcasts", response_model=schemas.BroadcastOut, status_code=status.HTTP_201_CREATED)
def create_broadcast(data: schemas.BroadcastCreate, session: SessionDep, principal: PrincipalDep) -> Any:
    """A draft: a template for a segment's customers (within your unit), now or at ``scheduled_at``."""
    return broadcasts.create_broadcast(session, principal, data)


@router.get("/broadcasts/{broadcast_id}", response_model=schemas.BroadcastOut)
def get_broadcast(broadcast_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return broadcasts.get_broadcast(session, principal, broadcast_id)


@router.patch("/broadcasts/{broadcast_id}", response_model=schemas.BroadcastOut)
def update_broadcast(broadcast_id: int, data: schemas.BroadcastUpdate, session: SessionDep,
                     principal: PrincipalDep) -> Any:
    return broadcasts.update_broadcast(session, principal, broadcast_id, data)


@router.delete("/broadcasts/{broadcast_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_broadcast(broadcast_id: int, session: SessionDep, principal: PrincipalDep) -> Response:
    broadcasts.delete_broadcast(session, principal, broadcast_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/broadcasts/{broadcast_id}/submit", response_model=schemas.BroadcastOut)
def submit_broadcast(broadcast_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    """To review where a unit above asks to approve your broadcasts, else onto the schedule."""
    return broadcasts.submit(session, principal, broadcast_id)


@router.post("/broadcasts/{broadcast_id}/review", response_model=schemas.BroadcastOut)
def review_broadcast(broadcast_id: int, data: schemas.Review, session: SessionDep, principal: PrincipalDep) -> Any:
    """Approve or reject (with a comment) a submitted broadcast; needs ``messages.approve``, and not your own."""
    return broadcasts.review(session, principal, broadcast_id, data)


@router.post("/broadcasts/{broadcast_id}/pause", response_model=schemas.BroadcastOut)
def pause_broadcast(broadcast_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return broadcasts.pause(session, principal, broadcast_id)


@router.post("/broadcasts/{broadcast_id}/resume", response_model=schemas.BroadcastOut)
def resume_broadcast(broadcast_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return broadcasts.resume(session, principal, broadcast_id)


@router.post("/broadcasts/{broadcast_id}/cancel", response_model=schemas.BroadcastOut)
def cancel_broadcast(broadcast_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return broadcasts.cancel(session, principal, broadcast_id)


@router.get("/broadcasts/{broadcast_id}/report", response_model=schemas.Report)
def broadcast_report(broadcast_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    """Sent, delivered, opened, clicked, unsubscribed, bounced and skipped (by reason) — of the messages to
    customers you may see — with sends, opens and clicks by hour, and per dealer for HQ."""
    return broadcasts.report(session, principal, broadcast_id)


# -- messages -------------------------------------------------------------------------------------------------------
@router.get("/messages", response_model=Page[schemas.MessageOut])
def list_messages(session: SessionDep, principal: PrincipalDep, channel: ChannelQuery = None,
                  status_: Annotated[str | None, Query(alias="status", max_length=12)] = None,
                  broadcast_id: int | None = None, profile_id: int | None = None, limit: Limit = 50,
                  cursor: Cursor = None) -> Any:
    page = service.list_messages(session, principal, channel=channel, status=status_, broadcast_id=broadcast_id,
                                 profile_id=profile_id, limit=limit, cursor=cursor)
    return {"items": service.messages_out(session, principal, page.items), "next_cursor": page.next_cursor}


@router.post("/messages/retry")
def retry_messages(data: schemas.MessageRetry, session: SessionDep, principal: PrincipalDep) -> dict[str, int]:
    """Send failed (or, deliberately, unknown-outcome) messages again: named ones, or those of a broadcast, a
    channel or a status. Answers how many were queued; an id you may not touch is refused (422, naming it)."""
    return {"queued": service.retry_messages(session, principal, data)}


@router.get("/messages/{message_id}", response_model=schemas.MessageOut)
def get_message(message_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.messages_out(session, principal, [service.get_message(session, principal, message_id)])[0]


# -- communication control and accounts -----------------------------------------------------------------------------
@router.get("/communication-policy", response_model=schemas.PolicyOut)
def get_policy(session: SessionDep, principal: PrincipalDep, unit_id: int | None = None) -> Any:
    """A unit's own rules and those in force for its sends (the strictest along its path)."""
    return control.get_policy(session, principal, unit_id)


@router.put("/communication-policy", response_model=schemas.PolicyOut)
def set_policy(data: schemas.PolicyIn, session: SessionDep, principal: PrincipalDep,
               unit_id: int | None = None) -> Any:
    """Set a unit's rules; a unit below may only tighten what the units above it set (422 naming each field)."""
    return control.set_policy(session, principal, unit_id, data)


@router.get("/suppressions", response_model=list[schemas.SuppressionOut])
def list_suppressions(session: SessionDep, principal: PrincipalDep, channel: ChannelQuery = None,
                      address: Annotated[str | None, Query(max_length=254)] = None, limit: Limit = 100) -> Any:
    return control.list_suppressions(session, principal, channel=channel, address=address, limit=limit)


@router.post("/suppressions", response_model=schemas.SuppressionOut, status_code=status.HTTP_201_CREATED)
def add_suppression(data: schemas.SuppressionIn, session: SessionDep, principal: PrincipalDep) -> Any:
    return control.add_suppression(session, principal, data)


@router.delete("/suppressions/{suppression_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_suppression(suppression_id: int, session: SessionDep, principal: PrincipalDep) -> Response:
    control.remove_suppression(session, principal, suppression_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/channel-accounts", response_model=list[schemas.ChannelAccountOut])
def list_accounts(session: SessionDep, principal: PrincipalDep) -> Any:
    return [service.account_out(a) for a in service.list_accounts(session, principal)]


@router.put("/channel-accounts", response_model=schemas.ChannelAccountOut)
def save_account(data: schemas.ChannelAccountIn, session: SessionDep, principal: PrincipalDep) -> Any:
    """Switch a provider on for a unit's channel (secrets are kept and never shown again; leave them out to keep
    those saved)."""
    return service.account_out(service.save_account(session, principal, data))


@router.delete("/channel-accounts/{account_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_account(account_id: int, session: SessionDep, principal: PrincipalDep) -> Response:
    service.delete_account(session, principal, account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- what customers' mail clients and the providers call ------------------------------------------------------------
PIXEL = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


@public.get("/t/o/{token}", include_in_schema=False)
def open_pixel(token: str, session: SessionDep) -> Response:
    tracking.opened(session, token)
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@public.get("/t/c/{token}", include_in_schema=False)
def follow_link(token: str, session: SessionDep) -> Response:
    return RedirectResponse(tracking.clicked(session, token), status_code=302, headers=NO_STORE)


def _page(title: str, body: str, locale: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang='{locale}'><head><meta charset='utf-8'><meta name='viewport' "
        f"content='width=device-width'><title>{html.escape(title)}</title><style>body{{font-family:sans-serif;"
        f"max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}}button{{font-size:1rem;padding:.6rem 1.2rem;"
        f"background:#1976d2;color:#fff;border:0;border-radius:4px}}</style></head><body>{body}</body></html>",
        headers=NO_STORE)


@public.get("/t/u/{token}", include_in_schema=False)
def unsubscribe_page(token: str, session: SessionDep) -> Response:
    """Asks before unsubscribing: mail scanners follow links, and a GET that unsubscribed would unsubscribe
    people who never clicked."""
    try:
        message = tracking.unsubscribe_target(session, token)
    except NotFound:
        return _page(t("unsubscribe.invalid", "zh"), f"<p>{html.escape(t('unsubscribe.invalid', 'zh'))}</p>", "zh")
    locale = message.locale or "zh"
    title = t("unsubscribe.title", locale)
    if message.unsubscribed_at is not None:
        return _page(title, f"<h1>{html.escape(title)}</h1><p>{html.escape(t('unsubscribe.done', locale))}</p>",
                     locale)
    return _page(title, f"<h1>{html.escape(title)}</h1><p>{html.escape(t('unsubscribe.ask', locale))}</p>"
                        f"<form method='post'><button type='submit'>{html.escape(t('unsubscribe.confirm', locale))}"
                        f"</button></form>", locale)


@public.post("/t/u/{token}", include_in_schema=False)
def unsubscribe(token: str, session: SessionDep,
                one_click: Annotated[str | None, Form(alias="List-Unsubscribe")] = None) -> Response:
    """RFC 8058 one-click (a mail client posts ``List-Unsubscribe=One-Click``) or the page's button."""
    message = tracking.unsubscribe(session, token, how="one-click" if one_click == "One-Click" else "page")
    locale = message.locale or "zh"
    title = t("unsubscribe.title", locale)
    return _page(title, f"<h1>{html.escape(title)}</h1><p>{html.escape(t('unsubscribe.done', locale))}</p>", locale)


async def _raw_body(request: Request) -> bytes:
    return await request.body()


@public.post("/hooks/channels/{account_id}/{token}", include_in_schema=False)
def provider_receipts(account_id: int, token: str, request: Request, session: SessionDep,
                      body: Annotated[bytes, Depends(_raw_body)]) -> Response:
    """Delivery receipts a provider posts (its callback address is shown on the account's settings)."""
    settled = tracking.receipts(session, account_id, token, body, dict(request.headers),
                                dict(request.query_params))
    if "signature" in request.query_params:  # WeChat wants "success" (or nothing) back, or it calls again
        return Response("success", media_type="text/plain")
    return Response(f'{{"code":0,"settled":{settled}}}', media_type="application/json")


@public.get("/hooks/channels/{account_id}/{token}", include_in_schema=False)
def verify_receipt_address(account_id: int, token: str, request: Request, session: SessionDep) -> Response:
    """WeChat checks a server address before it posts to it: ``echostr`` back when the signature is right."""
    return Response(tracking.verify_server(session, account_id, token, dict(request.query_params)),
                    media_type="text/plain")


def receipts_address(account_id: int) -> str:
    return tracking.receipt_url(public_base(), account_id)
