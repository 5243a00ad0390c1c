"""Templates (模板): written once per channel and purpose, versioned (a change is a new version; the old ones stay,
and a broadcast keeps the one it was approved with), previewed on a real customer of the author's scope, sent to
oneself as a test. Also the content library the templates share."""

from __future__ import annotations

import html as html_lib
import re
import uuid
from typing import Any

from mjml import mjml_to_html
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from kehu.cdp.models import Profile
from kehu.cdp.views import CustomerView
from kehu.channels import personalise, rendering, schemas
from kehu.channels.models import ContentItem, Message, Template, TemplateVersion
from kehu.core import audit
from kehu.core.db import utcnow
from kehu.core.errors import Conflict, FieldError, NotFound, ValidationFailed, invalid
from kehu.core.pagination import Page, keyset_page
from kehu.segments.conditions import compile_condition
from kehu.segments.schemas import condition_adapter
from kehu.tenancy.access import (
    Place,
    Principal,
    Ref,
    check_references,
    get_scoped,
    home_unit,
    require_row,
    scope,
)
from kehu.tenancy.models import Organization, User


# -- content ------------------------------------------------------------------------------------------------
def _strings(content: schemas.TemplateContent) -> list[tuple[str, str, bool]]:
    """Every template string of the content, with where it sits and whether it renders as HTML."""
    found: list[tuple[str, str, bool]] = []
    for lang in ("zh", "en"):
        variant = getattr(content, lang)
        if variant is None:
            continue
        if variant.subject:
            found.append((f"content.{lang}.subject", variant.subject, False))
        if variant.html:
            found.append((f"content.{lang}.html", variant.html, True))
        if variant.text:
            found.append((f"content.{lang}.text", variant.text, False))
    found += [(f"content.params.{i}", p, False) for i, p in enumerate(content.params)]
    found += [(f"content.fields.{k}", v, False) for k, v in content.fields.items()]
    found += [(f"content.payload.{k}", v, False) for k, v in content.payload.items()]
    if content.url:
        found.append(("content.url", content.url, False))
    return found


def _required(channel: str, content: schemas.TemplateContent) -> list[FieldError]:
    problems: list[FieldError] = []
    for lang in ("zh", "en"):
        variant = getattr(content, lang)
        if variant is None:
            continue
        where = f"content.{lang}"
        if channel == "email":
            if not variant.subject:
                problems.append(FieldError(f"{where}.subject", "an e-mail needs a subject", "required"))
            if not (variant.html or variant.text):
                problems.append(FieldError(f"{where}.html", "an e-mail needs HTML or text", "required"))
        elif channel in ("sms", "push") and not variant.text:
            problems.append(FieldError(f"{where}.text", f"a {channel} message needs its text", "required"))
    if channel == "wechat":
        if not content.provider_template:
            problems.append(FieldError("content.provider_template", "the WeChat template id", "required"))
        if not content.fields:
            problems.append(FieldError("content.fields", "what fills the WeChat template's fields", "required"))
    return problems


# MJML's default typeface (Ubuntu) has no Chinese and is fetched from Google, which mail readers in China cannot
# reach: unless a template says otherwise, its text is set in the fonts Chinese systems have
_CHINESE_FONTS = ('<mj-head><mj-attributes><mj-all font-family="PingFang SC, Hiragino Sans GB, Microsoft YaHei, '
                  'Helvetica, Arial, sans-serif" /></mj-attributes></mj-head>')
_WEB_FONTS = re.compile(r"<link[^>]+fonts\.googleapis\.com[^>]*>|@import url\(https://fonts\.googleapis\.com[^)]*\);?")


def compile_html(source: str, *, where: str) -> str:
    """An MJML document as responsive HTML (its Jinja kept for each customer); other HTML as written."""
    if not source.lstrip().lower().startswith("<mjml"):
        return source
    if "<mj-head" not in source:
        source = re.sub(r"(<mjml[^>]*>)", lambda m: m.group(1) + _CHINESE_FONTS, source, count=1)
    result = mjml_to_html(source)
    if result.errors:
        raise ValidationFailed(f"{where}: MJML", errors=[FieldError(where, f"MJML: {result.errors[0]}"[:300],
                                                                    code="mjml")])
    return _WEB_FONTS.sub("", str(result.html))


def _dump_blocks(blocks: dict[str, Any] | None) -> dict[str, Any]:
    """Block conditions as stored (JSON), whether given as models or as stored already."""
    return {name: condition if isinstance(condition, dict) else condition.model_dump(mode="json", by_alias=True)
            for name, condition in (blocks or {}).items()}


def _checked(session: Session, principal: Principal, channel: str, content: schemas.TemplateContent,
             blocks: dict[str, Any]) -> dict[str, Any]:
    """Check everything a template version holds (every fault at once) and compile its MJML."""
    problems = _required(channel, content)
    for where, source, _ in _strings(content):
        try:
            rendering.check_source(source, where=where)
        except ValidationFailed as exc:
            problems += exc.errors
    for name, condition in blocks.items():
        try:
            compile_condition(session, principal.org_id, principal.timezone,
                              condition_adapter.validate_python(condition), reader=principal, path=f"blocks.{name}")
        except ValidationFailed as exc:
            problems += exc.errors
    if problems:
        raise ValidationFailed("; ".join(f"{p.field}: {p.message}" for p in problems), errors=problems)
    compiled: dict[str, Any] = {}
    for lang in ("zh", "en"):
        variant = getattr(content, lang)
        if variant is not None and variant.html:
            compiled[lang] = compile_html(variant.html, where=f"content.{lang}.html")
    return compiled


# -- templates ------------------------------------------------------------------------------------------------
def create_template(session: Session, principal: Principal, data: schemas.TemplateCreate) -> Template:
    unit_id = data.unit_id if data.unit_id is not None else home_unit(session, principal)
    check_references(session, principal, place=Place("messages", "create", unit_id, principal.user_id,
                                                     owner_at_unit=False))
    blocks = _dump_blocks(data.blocks)
    compiled = _checked(session, principal, data.channel, data.content, blocks)
    if session.scalar(select(Template.id).where(Template.org_id == principal.org_id, Template.name == data.name)):
        raise Conflict(f"A template named {data.name!r} exists already.", errors=[
            FieldError("name", "taken", "duplicate")])
    assert unit_id is not None
    template = Template(org_id=principal.org_id, unit_id=unit_id, owner_id=principal.user_id, name=data.name,
                        description=data.description, channel=data.channel, purpose=data.purpose, version=1)
    session.add(template)
    session.flush()
    session.add(TemplateVersion(template_id=template.id, org_id=template.org_id, version=1,
                                content=data.content.model_dump(mode="json"), blocks=blocks,
                                compiled=compiled, created_by_id=principal.user_id, created_at=utcnow(),
                                note=""))
    audit.record(session, principal, action="create", entity="templates", entity_id=template.id,
                 unit_id=template.unit_id, after={"name": template.name, "channel": template.channel,
                                                  "purpose": template.purpose},
                 summary=f"Template {template.name} created")
    session.flush()
    return template


def _above(principal: Principal) -> list[int]:
    """The units above the principal's (its path without itself)."""
    return [int(part) for part in principal.unit_path.strip("/").split("/") if part][:-1]


def visible_templates(principal: Principal) -> Any:
    """Templates the reader may use: those its roles reach, and those of the units above it (HQ's templates are
    there for the dealers to send)."""
    principal.require("messages", "read")
    return or_(scope(principal, Template), and_(Template.org_id == principal.org_id,
                                                Template.unit_id.in_(_above(principal))))


def inherited(session: Session, principal: Principal, template_id: int) -> bool:
    """Whether a template outside the reader's scope is one of a unit above (for check_references' ``reach``)."""
    return session.scalar(select(Template.id).where(Template.id == template_id,
                                                    Template.org_id == principal.org_id,
                                                    Template.unit_id.in_(_above(principal)))) is not None


def get_template(session: Session, principal: Principal, template_id: int) -> Template:
    template = session.scalar(select(Template).where(Template.id == template_id, visible_templates(principal)))
    if template is None:
        raise NotFound(f"No template with id {template_id}.")
    return template


def version_of(session: Session, template: Template, version: int | None = None) -> TemplateVersion:
    found = session.scalar(select(TemplateVersion).where(TemplateVersion.template_id == template.id,
                                                         TemplateVersion.version == (version or template.version)))
    assert found is not None, "every template has its versions"
    return found


def template_out(session: Session, template: Template, *, with_content: bool = True) -> schemas.TemplateOut:
    out = schemas.TemplateOut.model_validate(template)
    if with_content:
        current = version_of(session, template)
        out.content, out.blocks = current.content, current.blocks
    return out


def list_templates(session: Session, principal: Principal, *, channel: str | None = None,
                   include_archived: bool = False, limit: int = 50, cursor: str | None = None) -> Page[Any]:
    query = select(Template).where(visible_templates(principal))
    if channel:
        query = query.where(Template.channel == channel)
    if not include_archived:
        query = query.where(Template.is_archived.is_(False))
    return keyset_page(session, query, id_column=Template.id, limit=limit, cursor=cursor)


def update_template(session: Session, principal: Principal, template_id: int,
                    data: schemas.TemplateUpdate) -> Template:
    """Rename or describe a template, or save new content as its next version (the old versions stay)."""
    template = get_template(session, principal, template_id)
    require_row(session, principal, "messages", "update", unit_id=template.unit_id, owner_id=template.owner_id)
    before = {"name": template.name, "description": template.description, "purpose": template.purpose,
              "version": template.version, "is_archived": template.is_archived}
    if data.name is not None and data.name != template.name:
        if session.scalar(select(Template.id).where(Template.org_id == principal.org_id,
                                                    Template.name == data.name)):
            raise Conflict(f"A template named {data.name!r} exists already.",
                           errors=[FieldError("name", "taken", "duplicate")])
        template.name = data.name
    if data.description is not None:
        template.description = data.description
    if data.purpose is not None:
        template.purpose = data.purpose
    if data.is_archived is not None:
        template.is_archived = data.is_archived
    if data.content is not None or data.blocks is not None:
        current = version_of(session, template)
        content = data.content or schemas.TemplateContent.model_validate(current.content)
        blocks = _dump_blocks(data.blocks) if data.blocks is not None else current.blocks
        compiled = _checked(session, principal, template.channel, content, blocks)
        dumped = content.model_dump(mode="json")
        if dumped != current.content or blocks != current.blocks:
            template.version += 1
            session.add(TemplateVersion(template_id=template.id, org_id=template.org_id, version=template.version,
                                        content=dumped, blocks=blocks, compiled=compiled,
                                        created_by_id=principal.user_id, created_at=utcnow(), note=data.note))
    after = {"name": template.name, "description": template.description, "purpose": template.purpose,
             "version": template.version, "is_archived": template.is_archived}
    if after != before:
        audit.record(session, principal, action="update", entity="templates", entity_id=template.id,
                     unit_id=template.unit_id, before=before, after=after,
                     summary=f"Template {template.name} changed")
    session.flush()
    return template


def versions(session: Session, principal: Principal, template_id: int) -> list[TemplateVersion]:
    template = get_template(session, principal, template_id)
    return list(session.scalars(select(TemplateVersion).where(TemplateVersion.template_id == template.id)
                                .order_by(TemplateVersion.version.desc())))


def get_version(session: Session, principal: Principal, template_id: int, version: int) -> TemplateVersion:
    template = get_template(session, principal, template_id)
    found = session.scalar(select(TemplateVersion).where(TemplateVersion.template_id == template.id,
                                                         TemplateVersion.version == version))
    if found is None:
        raise invalid("version", f"template {template_id} has no version {version}", "unknown")
    return found


# -- rendering ------------------------------------------------------------------------------------------------
def sms_parts(text: str) -> tuple[int, int]:
    """(characters, parts) as Chinese carriers bill an SMS: 70 characters in one message, 67 per part when longer
    (the signature 【…】 counts; GSM-only text is 160/153)."""
    length = len(text)
    gsm = all(ord(c) < 128 for c in text)
    single, part = (160, 153) if gsm else (70, 67)
    if length <= single:
        return length, 1 if length else 0
    return length, -(-length // part)


_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.IGNORECASE | re.DOTALL)


def text_of(html: str) -> str:
    """A readable text part from HTML (line breaks where blocks end)."""
    spaced = re.sub(r"<(br|/p|/div|/tr|/h\d|/li)\b[^>]*>", "\n", html, flags=re.IGNORECASE)
    text = html_lib.unescape(_TAGS.sub("", spaced))
    return re.sub(r"\n\s*\n+", "\n\n", re.sub(r"[ \t]+", " ", text)).strip()


def render_version(content: dict[str, Any], compiled: dict[str, Any], channel: str, context: dict[str, Any],
                   locale: str, *, links: rendering.Links | None) -> dict[str, Any]:
    """One customer's message from a version's content: subject, html (links tracked), text, params, fields,
    url, payload. RenderError when the sandbox refuses."""
    lang = locale if content.get(locale) else "zh"
    variant = content.get(lang) or {}
    context = dict(context)
    # a preview has no message to unsubscribe from: its link goes nowhere rather than nowhere visible
    context["unsubscribe_url"] = links.unsubscribe() if links is not None else "#unsubscribe"
    out: dict[str, Any] = {"locale": lang}
    out["subject"] = rendering.render(variant["subject"], context).strip() if variant.get("subject") else None
    html = None
    if channel == "email" and (compiled.get(lang) or variant.get("html")):
        html = rendering.render(compiled.get(lang) or variant["html"], context, html=True)
        if links is not None:
            html = links.track_html(html)
    out["html"] = html
    text = rendering.render(variant.get("text") or "", context) if variant.get("text") else ""
    if not text and html:
        text = text_of(html)
    out["text"] = text
    out["params"] = [rendering.render(p, context) for p in content.get("params") or []]
    out["fields"] = {k: rendering.render(v, context) for k, v in (content.get("fields") or {}).items()}
    url = content.get("url")
    out["url"] = links.click(rendering.render(url, context)) if url and links is not None else (
        rendering.render(url, context) if url else None)
    out["payload"] = {k: rendering.render(v, context) for k, v in (content.get("payload") or {}).items()}
    return out


def address_of(channel: str, profile: Any, identities: dict[str, str] | None = None) -> str | None:
    if channel == "email":
        return profile.email if profile is not None else None
    if channel == "sms":
        return profile.mobile if profile is not None else None
    if channel == "wechat":
        return (identities or {}).get("wechat_openid")
    if channel == "push":
        return (identities or {}).get("push_token")
    return None


def preview(session: Session, principal: Principal, template_id: int | None,
            request: schemas.TemplatePreviewRequest, *, channel: str | None = None) -> schemas.Rendered:
    """The template (or the unsaved content of the editor) as a customer of the reader's scope would receive it:
    the one asked for, or the newest the reader can see. Personal data the reader may not read is masked in what
    the preview shows, as everywhere else."""
    principal.require("messages", "read")
    if template_id is not None:
        template = get_template(session, principal, template_id)
        channel = template.channel
        current = version_of(session, template)
        content = request.content.model_dump(mode="json") if request.content else current.content
        blocks = _dump_blocks(request.blocks) if request.blocks is not None else current.blocks
    else:
        if request.content is None or channel is None:
            raise invalid("content", "the content to preview", "required")
        content, blocks = request.content.model_dump(mode="json"), _dump_blocks(request.blocks)
    compiled = _checked(session, principal, channel, schemas.TemplateContent.model_validate(content), blocks)
    profile = _preview_profile(session, principal, request.profile_id)
    org = session.get(Organization, principal.org_id)
    default_locale = org.default_locale if org else "zh"
    context: dict[str, Any] = {}
    address = None
    if profile is not None:
        context = personalise.contexts(session, principal.org_id, principal.timezone, [profile.id],
                                       blocks=blocks)[profile.id]
        shown = CustomerView.of(session, principal).profile(profile)
        for name in ("mobile", "email", "address", "birthday"):
            if hasattr(shown, name):
                context[name] = getattr(shown, name)
                context["profile"] = {**context["profile"], name: getattr(shown, name)}
        address = address_of(channel, shown)
    locale = request.locale or (personalise.language(context, default_locale) if context else default_locale)
    try:
        out = render_version(content, compiled, channel, context, locale, links=None)
    except rendering.RenderError as exc:
        raise invalid("content", str(exc), "render") from None
    rendered = schemas.Rendered(profile_id=profile.id if profile else None, channel=channel, address=address,
                                locale=out["locale"], subject=out["subject"], html=out["html"], text=out["text"],
                                params=out["params"], fields=out["fields"], url=out["url"])
    if channel == "sms":
        rendered.sms_length, rendered.sms_parts = sms_parts(out["text"])
    return rendered


def _preview_profile(session: Session, principal: Principal, profile_id: int | None) -> Profile | None:
    if profile_id is not None:
        check_references(session, principal, {"profile_id": _profile_ref(profile_id)})
        return session.get(Profile, profile_id)
    if not principal.can("profiles", "read"):
        return None
    return session.scalar(select(Profile).where(scope(principal, Profile), Profile.merged_into_id.is_(None))
                          .order_by(Profile.id.desc()).limit(1))


def _profile_ref(profile_id: int) -> Any:
    return Ref(Profile, profile_id, "read", Profile.merged_into_id.is_(None))


def test_send(session: Session, principal: Principal, template_id: int, data: schemas.TestSend) -> Message:
    """Send the template to oneself (one's own e-mail or phone unless another address is given): rendered with
    a customer's data, marked as a test, through the sending unit's channel — never counted in reports and never
    on a customer's record."""
    template = get_template(session, principal, template_id)
    require_row(session, principal, "messages", "create", unit_id=template.unit_id, owner_id=principal.user_id)
    if data.profile_id is not None:
        check_references(session, principal, {"profile_id": _profile_ref(data.profile_id)})
    user = session.get(User, principal.user_id) if principal.user_id else None
    address = data.address or (user.email if template.channel == "email" and user else
                               user.phone if template.channel == "sms" and user else None)
    if not address:
        raise invalid("address", "where the test goes (your profile has no address for this channel)", "required")
    rendered = preview(session, principal, template.id, schemas.TemplatePreviewRequest(profile_id=data.profile_id,
                                                                                locale=data.locale))
    now = utcnow()
    message = Message(org_id=principal.org_id, unit_id=principal.unit_id or template.unit_id, profile_id=None,
                      send_key=f"test:{uuid.uuid4().hex[:20]}", sender_unit_id=principal.unit_id or template.unit_id,
                      channel=template.channel, purpose="transactional", template_id=template.id,
                      template_version=template.version, address=address, locale=rendered.locale,
                      status="queued", created_at=now, due_at=now, subject=rendered.subject,
                      body=rendered.html or rendered.text)
    session.add(message)
    session.flush()
    audit.record(session, principal, action="test_send", entity="templates", entity_id=template.id,
                 unit_id=template.unit_id, summary=f"Test of {template.name} sent to {address}")
    return message


# -- the content library ----------------------------------------------------------------------------------------
def list_content(session: Session, principal: Principal) -> list[ContentItem]:
    principal.require("messages", "read")
    return list(session.scalars(select(ContentItem).where(scope(principal, ContentItem)).order_by(ContentItem.name)))


def save_content(session: Session, principal: Principal, data: schemas.ContentItemIn) -> ContentItem:
    """Add a snippet or image to the library, or replace the one of that name."""
    item = session.scalar(select(ContentItem).where(ContentItem.org_id == principal.org_id,
                                                    ContentItem.name == data.name))
    if data.kind == "snippet":
        rendering.check_source(data.body, where="body")
    if item is None:
        require_row(session, principal, "messages", "create", unit_id=principal.unit_id, owner_id=principal.user_id)
        assert principal.unit_id is not None
        item = ContentItem(org_id=principal.org_id, unit_id=principal.unit_id, owner_id=principal.user_id,
                           name=data.name, kind=data.kind, body=data.body)
        session.add(item)
    else:
        require_row(session, principal, "messages", "update", unit_id=item.unit_id, owner_id=item.owner_id)
        item.kind, item.body = data.kind, data.body
    session.flush()
    audit.record(session, principal, action="save", entity="content_items", entity_id=item.id, unit_id=item.unit_id,
                 summary=f"Content {item.name} saved")
    return item


def delete_content(session: Session, principal: Principal, item_id: int) -> None:
    item = get_scoped(session, principal, ContentItem, item_id)
    require_row(session, principal, "messages", "delete", unit_id=item.unit_id, owner_id=item.owner_id)
    session.delete(item)
    audit.record(session, principal, action="delete", entity="content_items", entity_id=item.id,
                 unit_id=item.unit_id, summary=f"Content {item.name} deleted")
    session.flush()
