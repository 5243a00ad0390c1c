"""The NiceGUI shell: who is signed in, the frame every page shares (header, navigation, language), the pages of
domains still to come, and the mounting of the domains' pages from their manifests (the shell imports none of them;
the home page is the sales domain's: kehu.sales.ui.home; the sign-in page is kehu.ui.sign_in). Pages call services
directly, never our own HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import posixpath
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import structlog
from fastapi import FastAPI, Response
from nicegui import Client, dependencies, ui
from nicegui import __version__ as nicegui_version
from nicegui import app as gui_app
from starlette.middleware.gzip import GZipMiddleware

from kehu.core.db import Database, get_database
from kehu.core.domains import Domain, NavEntry, load, navigation
from kehu.core.errors import KehuError, Unauthorized
from kehu.core.http import StaticCacheMiddleware
from kehu.core.i18n import normalise_locale, t
from kehu.core.settings import Settings
from kehu.tenancy import service
from kehu.tenancy.access import NONE, Principal, permissions, rank
from kehu.ui import nicegui_speedups

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
    import json

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
    """The visitor's principal, read off the event loop (``current_principal`` for async pages)."""
    auth = _live_auth()
    if not auth:
        return None
    principal = await off_loop(_principal_for, auth)
    if principal is None:
        gui_app.storage.user.pop("auth", None)
    return principal


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
        ui.navigate.to("/login")
        raise _Redirected
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
        for section, items in context().navigation:
            visible = [i for i in items if may_see(principal, i.need)]
            if not visible:
                continue
            ui.label(tr(f"nav.section.{section}")).classes("text-xs uppercase text-grey-7 px-4 pt-4 pb-1")
            for label_key, icon, path, *_ in (astuple(i) for i in visible):
                is_active = path == active
                with ui.link(target=path).classes(
                    "flex items-center gap-3 px-4 py-2 no-underline text-grey-9 hover:bg-blue-1 "
                    + ("bg-blue-1 text-primary font-medium border-r-4 border-primary" if is_active else "")
                ):
                    ui.icon(icon).classes("text-xl")
                    ui.label(tr(label_key))
    with ui.column().classes("w-full max-w-screen-2xl mx-auto p-6 gap-4"):
        ui.label(tr(title_key)).classes("text-2xl font-semibold text-grey-9")
        if not may_see(principal, entity):
            empty_state("lock", tr("shell.no_access_title"), tr("shell.no_access_text"))
            raise _Redirected
        yield principal


class _Redirected(Exception):
    pass


def page(path: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@ui.page`` that quietly stops building a page whose visitor was sent to sign in."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        import functools

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def waiting(*args: Any, **kw: Any) -> Any:
                try:
                    return await fn(*args, **kw)
                except _Redirected:
                    return None

            return ui.page(path, **kwargs)(waiting)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            try:
                return fn(*args, **kw)
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
ASSETS = f"/_nicegui/{nicegui_version}/"  # NiceGUI's versioned assets: they never change for a version
DYNAMIC_ASSETS = f"{ASSETS}dynamic_resources/"  # … except these
STYLES = Path(__file__).parent / "styles" / "tailwind.css"  # built by .ci/build_styles (see its input's comment)
STYLES_PREFIX = "/_kehu/"  # kehu's own assets, each under a digest of its content: they never change either


class _PagesGZip(GZipMiddleware):
    """NiceGUI's gzip for its pages and dynamic answers, not for the versioned assets (compressed once, in
    memory: StaticCacheMiddleware)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith((ASSETS, STYLES_PREFIX)) and not path.startswith(DYNAMIC_ASSETS):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


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
    from kehu.ui import sign_in  # (it builds on this module)

    page("/login")(sign_in.login_page)
    # after the page: registering a page removes every route of its path from NiceGUI's app, this one too
    gui_app.add_api_route("/login", sign_in.login_submit, methods=["POST"], include_in_schema=False)
    for entry, text_key in coming:
        _register_coming(entry, text_key)
    for domain in domains:
        for register in domain.pages:
            load(register)()
    _serve_styles(app)
    # the assets are compressed once and served from memory (StaticCacheMiddleware); NiceGUI's gzip is kept for
    # the pages only: it compressed every asset again for every first visit, on the event loop
    ui.run_with(app, storage_secret=settings.effective_secret_key(), title="kehu 客户", favicon="🚗",
                language="zh-CN", show_welcome_message=False, gzip_middleware_factory=_PagesGZip,
                tailwind=False,  # the built stylesheet instead of Tailwind's runtime in every browser
                # HttpOnly is Starlette's default; Secure is added per request by SecurityHeadersMiddleware
                session_middleware_kwargs={"max_age": int(settings.ui_session_hours * 3600), "same_site": "lax",
                                           "https_only": settings.cookie_secure is True})
    app.add_middleware(StaticCacheMiddleware, prefix=(ASSETS, STYLES_PREFIX), skip=(DYNAMIC_ASSETS,))


def _serve_styles(app: FastAPI) -> None:
    """Every page links kehu's built Tailwind stylesheet, at an address that changes with its content (so a
    browser may keep it for good)."""
    body = STYLES.read_bytes()
    url = f"{STYLES_PREFIX}{hashlib.sha256(body).hexdigest()[:16]}/tailwind.css"

    async def stylesheet() -> Response:
        return Response(body, media_type="text/css",
                        headers={"Cache-Control": "public, max-age=31536000, immutable"})

    app.add_api_route(url, stylesheet, methods=["GET", "HEAD"], include_in_schema=False)
    link = f'<link rel="stylesheet" href="{url}">'
    if link not in Client.shared_head_html:  # NiceGUI's head is the process's: one link if mounted again
        ui.add_head_html(link, shared=True)


# the elements with scripts of their own on the frame of every page and on the home page, everyone's first after
# signing in: warmed up with the sign-in page (each imported here registers its script)
_FIRST_PAGE_ELEMENTS = ("header", "link", "table", "echart", "select")
_NAMED_ASSET = re.compile(r'(?:src|href)="(/_[^"]+)"|url\("(/_[^"]+)"\)')
_IMPORT_MAP = re.compile(r'<script type="importmap">\s*(\{.*?\})\s*</script>', re.S)
_STYLESHEET_URL = re.compile(r"url\(([^)\"':]+)\)")
_MODULE_IMPORT = re.compile(r"""from\s+["']([^"']+)["']""")


async def warm_up(app: FastAPI) -> int:
    """Visit the sign-in page once through the app as the server starts, with everything it loads (scripts,
    stylesheets, the fonts they name) and the scripts of the home page's elements (ECharts among them): each asset
    is then answered compressed from memory (StaticCacheMiddleware) and the page's code has run once. Otherwise the
    first visitor after a start waits while each asset is read from disk, 64 KB at a time in the threads the API's
    requests queue for, and sent uncompressed — with fifty API clients at work its sign-in page took 2.5 s against
    0.8 s for the next visitors, and its home page 2.2–2.6 s against 1.1–1.5 (kehu bench load). The number of
    assets warmed; a failure is logged and the server starts all the same."""
    try:
        cookies: list[tuple[bytes, bytes]] = []
        page = (await _visit(app, "/login", cookies)).decode()
        named = {a or b for a, b in _NAMED_ASSET.findall(page)}
        for found in _IMPORT_MAP.findall(page):  # the modules every page imports (not the on-demand ones)
            named |= {url for url in json.loads(found)["imports"].values() if "/static/" in url}
        named |= _first_page_scripts()
        assets = sorted(named)
        # with the page's session cookie, as a browser asks: an answer that sets a cookie is never kept
        answers = await asyncio.gather(*(_visit(app, url, cookies) for url in assets))
        fonts = {_beside(url, font) for url, answer in zip(assets, answers, strict=True)
                 if url.endswith(".css") for font in _STYLESHEET_URL.findall(answer.decode())}
        await asyncio.gather(*(_visit(app, url, cookies) for url in fonts - named))
        structlog.get_logger("kehu.ui").info("UI warmed up", assets=len(named | fonts))
        return len(named | fonts)
    except Exception:  # a server that starts cold is slower for one visitor, not broken
        structlog.get_logger("kehu.ui").warning("UI warm-up failed", exc_info=True)
        return 0


def _first_page_scripts() -> set[str]:
    """The addresses of _FIRST_PAGE_ELEMENTS' scripts, of the scripts they import by address and of every file of
    the modules they import by name."""
    modules = {module.name: (key, module.path) for key, module in dependencies.esm_modules.items()}
    found: set[str] = set()
    for name in _FIRST_PAGE_ELEMENTS:
        component = getattr(ui, name).component
        if component is None:
            continue
        url = f"{ASSETS}components/{component.key}"
        found.add(url)
        for imported in _MODULE_IMPORT.findall(component.path.read_text(encoding="utf-8")):
            if imported.startswith("."):
                found.add(_beside(url, imported))
            elif imported in modules:
                key, folder = modules[imported]
                found |= {f"{ASSETS}esm/{key}/{file.relative_to(folder).as_posix()}"
                          for file in Path(folder).rglob("*") if file.is_file()}
    return found


def _beside(url: str, relative: str) -> str:
    """The address ``relative`` names in the file at ``url`` (``../static/x.js``, ``fonts/y.woff2``)."""
    return posixpath.normpath(posixpath.join(posixpath.dirname(url), relative))


async def _visit(app: FastAPI, path: str, cookies: list[tuple[bytes, bytes]]) -> bytes:
    """GET ``path`` from the app itself, through every middleware, as a browser on this machine would: the body.
    ``cookies``: sent with the request (``cookie`` headers); the first answer's are put there."""
    body: list[bytes] = []
    answered = asyncio.Event()
    asked = False

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await answered.wait()  # an app listening for the browser to leave hears it once it has answered
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start" and not cookies:
            cookies.extend((b"cookie", value.split(b";", 1)[0]) for name, value in message.get("headers", [])
                           if name.lower() == b"set-cookie")
        if message["type"] == "http.response.body":
            body.append(message.get("body", b""))
            if not message.get("more_body"):
                answered.set()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), *cookies], "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 80)}
    try:
        await app(scope, receive, send)
    finally:
        answered.set()
    return b"".join(body)
