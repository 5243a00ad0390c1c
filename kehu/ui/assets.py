"""What the web UI's pages load, and having it ready: kehu's built stylesheet (``serve_styles``), NiceGUI's gzip
kept for the pages (``PagesGZip``), the server's warm-up as it starts (``warm_up``: every asset compressed in memory
before the first visitor) and what the first page after signing in loads (``first_page_assets``, fetched ahead by
the sign-in page)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import posixpath
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI, Response
from nicegui import Client, dependencies, ui
from nicegui import __version__ as nicegui_version
from starlette.middleware.gzip import GZipMiddleware

from kehu.ui.components.chart import Chart

ASSETS = f"/_nicegui/{nicegui_version}/"  # NiceGUI's versioned assets: they never change for a version
DYNAMIC_ASSETS = f"{ASSETS}dynamic_resources/"  # … except these
STYLES = Path(__file__).parent / "styles" / "tailwind.css"  # built by .ci/build_styles (see its input's comment)
STYLES_PREFIX = "/_kehu/"  # kehu's own assets, each under a digest of its content: they never change either


class PagesGZip(GZipMiddleware):
    """NiceGUI's gzip for its pages and dynamic answers, not for the versioned assets (compressed once, in
    memory: StaticCacheMiddleware) nor for the sign-in page: it carries a token of the browser's session beside
    what its address says (``next``), and a compressed answer's length tells how much of the two are alike
    (BREACH)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == "/login" or (path.startswith((ASSETS, STYLES_PREFIX)) and not path.startswith(DYNAMIC_ASSETS)):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def serve_styles(app: FastAPI) -> None:
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
# signing in
_FIRST_PAGE_ELEMENTS: tuple[type[ui.element], ...] = (
    ui.header, ui.html, ui.link, ui.table, Chart, ui.select, ui.colors)
_NAMED_ASSET = re.compile(r'(?:src|href)="(/_[^"]+)"|url\("(/_[^"]+)"\)')
_IMPORT_MAP = re.compile(r'<script type="importmap">\s*(\{.*?\})\s*</script>', re.S)
_STYLESHEET_URL = re.compile(r"url\(([^)\"':]+)\)")
_MODULE_IMPORT = re.compile(r"""from\s*["']([^"']+)["']""")  # a module's imports before it runs
_ANY_IMPORT = re.compile(r"""(?:from\s*|import\(\s*)["']([^"']+)["']""")  # … and those it makes once running
_FONT_FACE = re.compile(r"@font-face\s*\{([^}]*)\}")
_first_page: list[str] = []  # see first_page_assets


def first_page_assets() -> list[str]:
    """What a browser loads for its first page after signing in — every page's scripts and stylesheets, the home
    page's elements' scripts (ECharts' among them) and the two fonts nearly every page shows — as ``warm_up`` found
    them. The sign-in page has the browser fetch them while its visitor types."""
    return list(_first_page)


async def warm_up(app: FastAPI) -> int:
    """As the server starts: visit the sign-in page through the app, then every asset a page loads (scripts,
    stylesheets, the fonts they name) and the scripts of the home page's elements (ECharts among them): each asset
    is then answered compressed from memory (StaticCacheMiddleware) and the pages' code has run once. Otherwise the
    first visitor after a start waits while each asset is read from disk, 64 KB at a time in the threads the API's
    requests queue for, and sent uncompressed — with fifty API clients at work its sign-in page took 2.5 s against
    0.8 s for the next visitors, and its home page 2.2–2.6 s against 1.1–1.5 (kehu bench load). Notes what the
    first page after signing in loads (``first_page_assets``). The number of assets warmed; a failure is logged and
    the server starts all the same."""
    try:
        cookies: list[tuple[bytes, bytes]] = []
        await _visit(app, "/login", cookies)  # (its session cookie is sent with the visits below)
        page = _a_page(app)
        _a_page(app, _the_elements_of_a_page)
        imports: dict[str, str] = json.loads(_IMPORT_MAP.search(page).group(1))["imports"]  # type: ignore[union-attr]
        loaded = {a or b for a, b in _NAMED_ASSET.findall(page)}
        loaded |= {imports[name] for name in _MODULE_IMPORT.findall(page) if name in imports}  # Vue, DOMPurify
        scripts, module_files = _first_page_scripts(imports)
        loaded |= scripts
        # every page's modules, and every file of the first page's (not only those its scripts load at once)
        named = loaded | module_files | {url for url in imports.values() if "/static/" in url}
        assets = sorted(named)
        # with the sign-in page's session cookie, as a browser asks: an answer that sets a cookie is never kept
        answers = await asyncio.gather(*(_visit(app, url, cookies) for url in assets))
        fonts: set[str] = set()
        for url, answer in zip(assets, answers, strict=True):
            if url.endswith(".css"):
                css = answer.decode()
                fonts |= {_beside(url, font) for font in _STYLESHEET_URL.findall(css)}
                loaded |= {_beside(url, font) for font in _everyday_fonts(css)}
        await asyncio.gather(*(_visit(app, url, cookies) for url in fonts - named))
        _first_page[:] = sorted(loaded)
        structlog.get_logger("kehu.ui").info("UI warmed up", assets=len(named | fonts), first_page=len(loaded))
        return len(named | fonts)
    except Exception:  # a server that starts cold is slower for one visitor, not broken
        structlog.get_logger("kehu.ui").warning("UI warm-up failed", exc_info=True)
        return 0


def _a_page(app: FastAPI, build: Callable[[], None] = lambda: None) -> str:
    """The HTML NiceGUI starts every page from (its scripts, stylesheets and import map), built here as its own
    error pages are: the sign-in page is not one of NiceGUI's, and every other page sends a stranger to it. With
    ``build``'s elements on it."""
    from nicegui.page import page as nicegui_page
    from starlette.requests import Request

    request = Request({"type": "http", "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"",
                       "headers": [(b"host", b"127.0.0.1")], "root_path": "", "scheme": "http", "app": app,
                       "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 0), "session": {}})
    with Client(nicegui_page(""), request=request) as client:
        build()
    try:
        return bytes(client.build_response(request).body).decode()
    finally:
        client.delete()


def _the_elements_of_a_page() -> None:
    """One of each element the frame and the home page are made of, as they use them: built and rendered once as
    the server starts, the first visitor's first page is not the first time their code runs (it was built in
    130 ms against 16–34 ms for the next ones, kehu bench load)."""
    ui.colors(primary="#1f4e79")
    with ui.header().classes("items-center"):
        ui.button(icon="menu").props("flat round dense")
        ui.label("kehu").classes("text-lg")
        ui.space()
        with ui.button(icon="account_circle").props("flat round"), ui.menu():
            ui.menu_item("kehu")
    with ui.left_drawer(value=True):
        ui.html("<a href='/'>kehu</a>", sanitize=False)
    with ui.column().classes("w-full"), ui.row(), ui.card():
        ui.icon("event")
        ui.link("kehu", "/")
        ui.select(["a", "b"], value="a")
        ui.table(columns=[{"name": "n", "label": "n", "field": "n", "sortable": True}], rows=[{"n": 1}])
        Chart({"series": []})


def _everyday_fonts(css: str) -> list[str]:
    """Of a stylesheet's fonts, the two nearly every page shows: Material Icons (the icons) and Roboto's Latin
    letters (Roboto's sixty faces share a few files; Chinese comes from the system's fonts)."""
    found = []
    for face in _FONT_FACE.findall(css):
        family = re.search(r"font-family:\s*[\"']?([^;\"']+)", face)
        source = _STYLESHEET_URL.search(face)
        if family and source and (family.group(1) == "Material Icons"
                                  or (family.group(1) == "Roboto" and "U+0000-00FF" in face)):
            found.append(source.group(1))
    return sorted(set(found))


def _first_page_scripts(imports: dict[str, str]) -> tuple[set[str], set[str]]:
    """The addresses of _FIRST_PAGE_ELEMENTS' scripts with the scripts they import, as a browser loads them when
    the page starts (by address, and of the modules they import by name the entry and what it imports in turn);
    and the addresses of every file of those modules (parts loaded only when asked for, like ECharts' 3D)."""
    modules = {module.name: (key, module.path) for key, module in dependencies.esm_modules.items()}
    loaded: set[str] = set()
    files: set[str] = set()
    for element in _FIRST_PAGE_ELEMENTS:
        component = element.component
        if component is None:
            continue
        url = f"{ASSETS}components/{component.key}"
        loaded.add(url)
        # (what a component imports once mounted is loaded at once too: kehu's chart's ECharts)
        for imported in _ANY_IMPORT.findall(component.path.read_text(encoding="utf-8")):
            if imported.startswith("."):
                loaded.add(_beside(url, imported))
            elif imported in modules and imported in imports:
                key, folder = modules[imported]
                base = f"{ASSETS}esm/{key}/"
                files |= {base + file.relative_to(folder).as_posix() for file in Path(folder).rglob("*")
                          if file.is_file()}
                waiting = [imports[imported]]
                while waiting:  # the entry, and what it imports before it runs
                    script = waiting.pop()
                    if script in loaded or not script.startswith(base):
                        continue
                    loaded.add(script)
                    source = Path(folder) / script.removeprefix(base)
                    if source.is_file():
                        waiting += [_beside(script, relative)
                                    for relative in _MODULE_IMPORT.findall(source.read_text(encoding="utf-8"))
                                    if relative.startswith(".")]
    return loaded, files


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
