"""The NiceGUI shell: who is signed in, the frame every page shares (header, navigation, language), the pages of
domains still to come, and the mounting of the domains' pages from their manifests (the shell imports none of them;
the home page is the sales domain's: kehu.sales.ui.home; the sign-in page is kehu.ui.sign_in). Pages call services
directly, never our own HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import astuple, dataclass, field
from html import escape
from typing import Any, TypeVar

from fastapi import FastAPI, Response
from fastapi.responses import RedirectResponse
from nicegui import app as gui_app
from nicegui import ui

from kehu.core.db import Database, get_database
from kehu.core.domains import Domain, NavEntry, load, navigation
from kehu.core.errors import KehuError, Unauthorized
from kehu.core.http import StaticCacheMiddleware
from kehu.core.i18n import normalise_locale, t
from kehu.core.settings import Settings
from kehu.tenancy import service
from kehu.tenancy.access import NONE, Principal, permissions, rank
from kehu.ui import nicegui_speedups
from kehu.ui.assets import ASSETS, DYNAMIC_ASSETS, STYLES_PREFIX, PagesGZip, serve_styles

T = TypeVar("T")


@dataclass
class UIContext:
    database: Database
    settings: Settings
    navigation: list[tuple[str, list[NavEntry]]] = field(default_factory=list)  # sections and their entries
    extensions: dict[str, list[Callable[..., Any]]] = field(default_factory=dict)  # see ``extensions``


_ctx: UIContext | None = None


def context() -> UIContext:
    assert _ctx is not None, "mount_ui() has not run"
    return _ctx


# -- who is signed in ----------------------------------------------------------------------------------
def locale() -> str:
    return normalise_locale(gui_app.storage.user.get("locale"))


def tr(key: str, **params: Any) -> str:
    return t(key, locale(), **params)


def _principal_for(auth: dict[str, Any]) -> Principal | None:
    try:
        with context().database.unit_of_work() as session:
            return service.principal_for_user(session, auth["user_id"], token_version=auth["ver"])
    except Unauthorized:
        return None


def _live_auth() -> dict[str, Any] | None:
    """The visitor's sign-in, or None once it is older than ``ui_session_hours`` or idle (no page opened, nothing
    clicked) longer than ``ui_idle_minutes``. Only the event loop's thread writes the visitor's storage (NiceGUI
    saves it from there); a thread reading it just answers."""
    auth = gui_app.storage.user.get("auth")
    if not auth:
        return None
    settings, now = context().settings, time.time()
    seen = auth.get("seen", 0)
    try:
        asyncio.get_running_loop()
        on_loop = True
    except RuntimeError:
        on_loop = False
    if (now - auth.get("at", 0) > settings.ui_session_hours * 3600
            or (settings.ui_idle_minutes and now - seen > settings.ui_idle_minutes * 60)):
        if on_loop:
            gui_app.storage.user.pop("auth", None)
        return None
    if on_loop and now - seen > 60:  # a write to the visitor's storage at most once a minute
        gui_app.storage.user["auth"] = {**auth, "seen": now}
    return auth


def _ui_signed_in(request: Any, session: Any) -> bool:
    """Whether the request's browser has a live UI sign-in (lets /docs open for a signed-in user). API routes lie
    outside NiceGUI's mounted app and its session middleware, so the session cookie is read here as Starlette's
    SessionMiddleware writes it (signed JSON); a browser whose storage this process has not loaded yet (no page
    opened since a restart) counts as not signed in."""
    import base64

    from itsdangerous import BadSignature, TimestampSigner
    from nicegui.storage import request_contextvar
    from starlette.requests import Request

    settings = context().settings
    cookie = request.cookies.get("session")
    if not cookie:
        return False
    try:
        data = TimestampSigner(settings.effective_secret_key()).unsign(
            cookie.encode(), max_age=int(settings.ui_session_hours * 3600))
        session_id = json.loads(base64.b64decode(data))["id"]
    except (BadSignature, ValueError, KeyError, TypeError):
        return False
    token = request_contextvar.set(Request({"type": "http", "session": {"id": session_id}}))
    try:
        auth = _live_auth()
    except (RuntimeError, AssertionError, KeyError):  # its storage not loaded in this process
        return False
    finally:
        request_contextvar.reset(token)
    if not auth:
        return False
    try:
        service.principal_for_user(session, auth["user_id"], token_version=auth["ver"])
    except Unauthorized:
        return False
    return True


def current_principal() -> Principal | None:
    auth = _live_auth()
    if not auth:
        return None
    principal = _principal_for(auth)
    if principal is None:
        gui_app.storage.user.pop("auth", None)
    return principal


async def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking work (database, password hashing) in a thread. A page or handler runs on its server's one
    event loop, which every other browser and API call of that process waits on: a sign-in that hashed its
    password there stalled everyone for its duration, and for as long as the database took to answer under
    load (24 s to sign in beside fifty API clients). The thread sees the caller's context (the visitor's
    storage and language). Work done there keeps the sign-in alive, as work on the loop does (``unit_of_work``)."""
    _touch()
    return await asyncio.to_thread(fn, *args, **kwargs)


async def signed_in() -> Principal | None:
    """The visitor's principal, read off the event loop (``current_principal`` for async pages), or None."""
    try:
        principal, _ = await read_signed_in(lambda _: None)
    except _SignInNeeded:
        return None
    return principal


async def read_signed_in(read: Callable[[Principal], T]) -> tuple[Principal, T]:
    """The visitor's principal and what ``read`` reads for it, in one trip off the event loop: each trip's answer
    waits for the loop to take it back, under load as long as the loop's other work takes (a sign-in's first page
    made two). Sends a visitor who is not signed in to sign in (``page``)."""
    auth = _live_auth()
    if not auth:
        raise _SignInNeeded

    def both() -> tuple[Principal | None, T | None]:
        principal = _principal_for(auth)
        return principal, (read(principal) if principal is not None else None)

    principal, found = await off_loop(both)
    if principal is None:
        gui_app.storage.user.pop("auth", None)
        raise _SignInNeeded
    return principal, found  # type: ignore[return-value]


def notify_error(error: KehuError) -> None:
    if error.message is not None:
        key, params = error.message
        here = locale()
        words = {k: (v.get(here) or next(iter(v.values()), "")) if isinstance(v, dict) else v
                 for k, v in params.items()}
        ui.notify(t(key, here, **words), type="negative", multi_line=True)
        return
    details = "; ".join(f"{e.field}: {e.message}" for e in error.errors)
    ui.notify(f"{error.detail or error.title}" + (f" ({details})" if details else ""), type="negative",
              multi_line=True)


def _touch() -> None:
    """Work on a page (a click that reads or writes) keeps the sign-in alive, as opening a page does."""
    with contextlib.suppress(RuntimeError, AssertionError, KeyError):  # outside a visitor's request: nothing to do
        _live_auth()  # an expired sign-in is dropped, not revived


@contextlib.contextmanager
def unit_of_work() -> Iterator[Any]:
    _touch()
    with context().database.unit_of_work() as session:
        yield session


def run_action(fn: Callable[[Any], Any], success: str | Callable[[Any], str] | None = None) -> Any:
    """Run one service call in its own transaction; domain errors become a readable notification.

    ``success`` says what was done, in the user's words ("商机「X」已创建", not "已保存"); given as a function
    it is built from the call's result (e.g. the name the server settled on)."""
    try:
        with unit_of_work() as session:
            result = fn(session)
    except KehuError as error:
        notify_error(error)
        return None
    if callable(success):
        success = success(result)
    if success:
        # one success note at a time: a new one takes the last one's place (with a count when it repeats)
        # instead of piling up for five seconds each
        ui.notify(success, type="positive", group="kehu-done", timeout=2500)
    return result


# -- the frame -------------------------------------------------------------------------------------
def may_see(principal: Principal, need: str | None) -> bool:
    """Whether a page is of use to the viewer: ``need`` is an entity (read at any depth), ``entity.privilege``,
    ``entity.privilege@depth`` (at least that depth) or a permission such as ``settings.manage``. Pages for
    setting the organisation up are the settings managers'; a salesperson's own jobs show where they started
    them, not on the administrators' job page."""
    if need is None:
        return True
    if need in permissions():
        return principal.has(need)
    need, _, depth = need.partition("@")
    entity, _, privilege = need.partition(".")
    held = principal.depth(entity, privilege or "read")
    return rank(held) >= rank(depth) if depth else held != NONE


def toggle_language() -> None:
    gui_app.storage.user["locale"] = "en" if locale() == "zh" else "zh"
    ui.navigate.reload()


def _sign_out() -> None:
    gui_app.storage.user.pop("auth", None)
    ui.navigate.to("/login")


@contextlib.contextmanager
def frame(title_key: str, active: str, entity: str | None = None,
          principal: Principal | None = None) -> Iterator[Principal]:
    """Header, navigation and page title around a page's content; redirects to sign-in when needed and
    says so plainly when the viewer's roles do not reach ``entity``. An async page passes the ``principal`` it
    read off the loop (``await signed_in()``)."""
    principal = principal or current_principal()
    if principal is None:
        raise _SignInNeeded
    ui.page_title(f"{tr(title_key)} · kehu 客户")
    ui.colors(primary="#1f4e79", secondary="#2e7d32", accent="#c0392b")
    with ui.header(elevated=True).classes("items-center bg-primary text-white px-4 py-2"):
        ui.button(icon="menu", on_click=lambda: drawer.toggle()).props("flat round color=white dense")
        ui.label("kehu 客户").classes("text-lg font-bold tracking-wide")
        ui.label(tr("app.tagline")).classes("text-sm opacity-80 max-sm:hidden")
        ui.space()
        ui.button("EN" if locale() == "zh" else "中文", on_click=toggle_language).props(
            "flat color=white dense").mark("language-toggle")
        with ui.button(icon="account_circle").props("flat round color=white"), ui.menu():
            ui.menu_item(principal.display).props("disable")
            ui.menu_item(tr("shell.sign_out"), on_click=_sign_out)
        ui.label(principal.display).classes("text-sm max-sm:hidden")
    with ui.left_drawer(value=True, bordered=True).classes("bg-grey-1 px-0") as drawer:
        ui.html(_navigation(principal, active), sanitize=False).classes("nicegui-column")
    with ui.column().classes("w-full max-w-screen-2xl mx-auto p-6 gap-4"):
        ui.label(tr(title_key)).classes("text-2xl font-semibold text-grey-9")
        if not may_see(principal, entity):
            empty_state("lock", tr("shell.no_access_title"), tr("shell.no_access_text"))
            raise _Redirected
        yield principal


def _navigation(principal: Principal, active: str) -> str:
    """The navigation's sections and links as one piece of HTML (every text escaped): made of some forty elements
    (a link, its icon and its label each), it was a fifth of the elements of every page, each built on the server
    and started in the browser."""
    parts = []
    for section, items in context().navigation:
        visible = [i for i in items if may_see(principal, i.need)]
        if not visible:
            continue
        parts.append(f'<div class="text-xs uppercase text-grey-7 px-4 pt-4 pb-1">'
                     f'{escape(tr(f"nav.section.{section}"))}</div>')
        for label_key, icon, path, *_ in (astuple(i) for i in visible):
            marked = "bg-blue-1 text-primary font-medium border-r-4 border-primary" if path == active else ""
            parts.append(
                f'<a href="{escape(path)}" class="flex items-center gap-3 px-4 py-2 no-underline text-grey-9 '
                f'hover:bg-blue-1 {marked}"><i class="q-icon notranslate material-icons text-xl" aria-hidden="true" '
                f'role="presentation">{escape(icon)}</i><div>{escape(tr(label_key))}</div></a>')
    return "".join(parts)


class _Redirected(Exception):
    """The page stops being built here (what it shows so far stays)."""


class _SignInNeeded(_Redirected):
    """No one is signed in: the visitor is sent to sign in, and back to this page after."""


def _to_sign_in() -> Response | None:
    """Send a visitor who is not signed in to the sign-in page: by the page's HTTP answer while it is being built
    (the browser goes straight there, without loading and starting this page's scripts first), by the live
    connection once the page is shown."""
    from kehu.ui.sign_in import login_url

    client = ui.context.client
    request = client.request
    # the path as the browser sent it (percent-encoded): decoded, /x/100%25 would come back as /x/100%
    path = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
    target = login_url(path + (f"?{request.url.query}" if request.url.query else ""))
    if client.has_socket_connection:
        ui.navigate.to(target)
        return None
    client.delete()  # (never to be connected: not kept until NiceGUI prunes clients that never connected)
    return RedirectResponse(target, status_code=303)


def page(path: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@ui.page`` that quietly stops building a page whose visitor was sent to sign in."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        import functools

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def waiting(*args: Any, **kw: Any) -> Any:
                try:
                    return await fn(*args, **kw)
                except _SignInNeeded:
                    return _to_sign_in()
                except _Redirected:
                    return None

            return ui.page(path, **kwargs)(waiting)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            try:
                return fn(*args, **kw)
            except _SignInNeeded:
                return _to_sign_in()
            except _Redirected:
                return None

        return ui.page(path, **kwargs)(wrapper)

    return decorate


def validated(action: Callable[[], Any]) -> Any:
    """Run a form action; Pydantic errors become one notification that names the fields."""
    from pydantic import ValidationError

    try:
        return action()
    except ValidationError as error:
        fields = ", ".join(".".join(map(str, e["loc"])) + ": " + e["msg"] for e in error.errors())
        ui.notify(tr("common.invalid", fields=fields), type="negative", multi_line=True)
        return None


def actor_name(entry: Any) -> str:
    return tr("audit.system") if entry.actor_user_id is None and entry.actor_api_key_id is None else entry.actor_display


def audit_text(entry: Any) -> str:
    """An audit record in the reader's language (the stored summary is English, for the API and logs)."""
    after, before = entry.after or {}, entry.before or {}
    subject = after.get("name") or before.get("name") or after.get("code") or (
        f"#{entry.entity_id}" if entry.entity_id else "")
    action = t(f"audit.action.{entry.action}", locale(), default=entry.action)
    if entry.action in ("login", "login_failed", "login_throttled"):
        return action
    return tr("audit.text", action=action, entity=tr(f"entity.{entry.entity}"), subject=subject)


def empty_state(icon: str, title: str, text: str) -> None:
    with ui.card().classes("w-full items-center py-12 bg-grey-1 shadow-none border border-dashed"):
        ui.icon(icon).classes("text-6xl text-grey-5")
        ui.label(title).classes("text-lg font-medium text-grey-8")
        ui.label(text).classes("text-grey-7 text-center max-w-xl")


def stat_card(label: str, value: Any, icon: str, hint: str = "") -> None:
    with ui.card().classes("min-w-[200px] flex-1"), ui.row().classes("items-center gap-4 no-wrap"):
        ui.icon(icon).classes("text-4xl text-primary")
        with ui.column().classes("gap-0"):
            ui.label(str(value)).classes("text-3xl font-bold text-grey-9")
            ui.label(label).classes("text-sm text-grey-7")
            if hint:
                ui.label(hint).classes("text-xs text-grey-6")


# -- mounting the domains' pages ------------------------------------------------------------------------
def extensions(kind: str) -> list[Callable[..., Any]]:
    """What the mounted domains' manifests name for ``kind`` (``customer_panels``, ``selection_actions``,
    ``inquiry_actions``, ``calendar_entries``: see kehu/core/domains.py), in the domains' order: how one domain's
    page shows another domain's part without importing it."""
    return context().extensions.get(kind, [])


def _register_coming(entry: NavEntry, text_key: str) -> None:
    """A domain still to come: its page says what will be here, and shows nothing fake."""
    @page(entry.path)
    def _coming() -> None:
        with frame(entry.label, entry.path, entity=None):
            empty_state(entry.icon, tr("coming.title"), tr(text_key))


def mount_ui(app: FastAPI, settings: Settings, database: Database | None, *, domains: list[Domain],
             coming: list[tuple[NavEntry, str]]) -> None:
    """Register the domains' pages (their manifests' ``pages``), the navigation and the pages of domains still to
    come (kehu/domains.py), and mount NiceGUI on the FastAPI app (once per process)."""
    global _ctx
    nicegui_speedups.install()
    kinds = ("customer_panels", "selection_actions", "inquiry_actions", "calendar_entries")
    _ctx = UIContext(database=database or get_database(settings), settings=settings,
                     navigation=navigation([*domains, Domain("coming", navigation=tuple(e for e, _ in coming))]),
                     extensions={kind: [load(ref) for d in domains for ref in getattr(d, kind)] for kind in kinds})
    app.state.ui_signed_in = _ui_signed_in
    from kehu.ui import middlewares, sign_in  # (sign_in builds on this module)

    # on NiceGUI's app, behind its session and storage (the visitor's language, a refusal's message)
    gui_app.add_api_route("/login", sign_in.login_page, methods=["GET"], include_in_schema=False)
    gui_app.add_api_route("/login", sign_in.login_submit, methods=["POST"], include_in_schema=False)
    for entry, text_key in coming:
        _register_coming(entry, text_key)
    for domain in domains:
        for register in domain.pages:
            load(register)()
    serve_styles(app)
    # the assets are compressed once and served from memory (StaticCacheMiddleware); NiceGUI's gzip is kept for
    # the pages only: it compressed every asset again for every first visit, on the event loop
    ui.run_with(app, storage_secret=settings.effective_secret_key(), title="kehu 客户", favicon="🚗",
                language="zh-CN", show_welcome_message=False, gzip_middleware_factory=PagesGZip,
                tailwind=False,  # the built stylesheet instead of Tailwind's runtime in every browser
                # HttpOnly is Starlette's default; Secure is added per request by SecurityHeadersMiddleware
                session_middleware_kwargs={"max_age": int(settings.ui_session_hours * 3600), "same_site": "lax",
                                           "https_only": settings.cookie_secure is True})
    middlewares.replace(gui_app)  # its three BaseHTTPMiddlewares as plain ASGI: a dozen fewer trips a request
    app.add_middleware(StaticCacheMiddleware, prefix=(ASSETS, STYLES_PREFIX), skip=(DYNAMIC_ASSETS,))
