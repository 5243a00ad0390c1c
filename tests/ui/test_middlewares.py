"""NiceGUI's middlewares as plain ASGI (kehu.ui.middlewares): the same answers a browser gets, without a task and
a memory stream per request and middleware."""

from __future__ import annotations

import base64
import json

import httpx
from nicegui import __version__ as nicegui_version
from nicegui import middlewares as nicegui_middlewares
from nicegui import storage
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.sessions import SessionMiddleware

from kehu.ui import middlewares


def _session_id(cookie: str) -> str:
    """The session id in Starlette's signed session cookie (base64 JSON, then its signature)."""
    data = cookie.split(".", 1)[0]
    return json.loads(base64.b64decode(data + "=" * (-len(data) % 4)))["id"]


class _App:
    def __init__(self, entries: list[Middleware]) -> None:
        self.user_middleware = entries


def test_nicegui_s_base_http_middlewares_are_swapped_in_place_and_others_kept():
    """What ui.run_with leaves on NiceGUI's app, outermost first."""
    app = _App([Middleware(nicegui_middlewares.SetCacheControlMiddleware),
                Middleware(nicegui_middlewares.RedirectWithPrefixMiddleware),
                Middleware(SessionMiddleware, secret_key="s", max_age=60),
                Middleware(storage.RequestTrackingMiddleware)])
    assert middlewares.replace(app) == 3
    assert [m.cls for m in app.user_middleware] == [middlewares.SetCacheControl, middlewares.RedirectWithPrefix,
                                                   SessionMiddleware, middlewares.RequestTracking]
    assert app.user_middleware[2].kwargs == {"secret_key": "s", "max_age": 60}
    assert not any(issubclass(m.cls, BaseHTTPMiddleware) for m in app.user_middleware)  # type: ignore[arg-type]
    assert middlewares.replace(app) == 0  # once is enough


def test_only_a_path_goes_in_front_of_a_redirect():
    assert middlewares.is_local_path("/kehu") and middlewares.is_local_path("/crm/kehu")
    for elsewhere in ("", "kehu", "//evil.example", "/\\evil.example", "/\t/evil.example", "/\n/evil.example",
                      "https://evil.example", "/kehu\x7f"):
        assert not middlewares.is_local_path(elsewhere), elsewhere


def test_a_served_page_keeps_the_session_the_proxy_s_prefix_and_the_assets_caching(just_started):
    with httpx.Client(base_url=just_started) as browser:
        first = browser.get("/login")
        assert first.status_code == 200 and "session" in browser.cookies  # a new visitor gets a session
        session = _session_id(browser.cookies["session"])
        browser.get("/login?lang=en")  # the language is kept in the visitor's storage on the server …
        assert _session_id(browser.cookies["session"]) == session  # (the cookie is signed anew each second)
        assert 'lang="en"' in browser.get("/login").text  # … and read back on the next visit
        # a redirect under a proxy's prefix keeps it; a prefix that is another site is not followed
        away = browser.get("/customers", headers={"X-Forwarded-Prefix": "/kehu"})
        assert away.status_code == 303 and away.headers["location"].startswith("/kehu/login?next=")
        for elsewhere in ("//evil.example", "https://evil.example", "/\\evil.example", "/\t/evil.example", "/"):
            away = browser.get("/customers", headers={"X-Forwarded-Prefix": elsewhere})
            assert away.status_code == 303 and away.headers["location"].startswith("/login?next="), elsewhere
        asset = browser.get(f"/_nicegui/{nicegui_version}/static/quasar.umd.prod.js")
        assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
