"""NiceGUI's three middlewares on its pages, as plain ASGI instead of Starlette's ``BaseHTTPMiddleware``.

NiceGUI wraps every page, the sign-in form's post and every dynamic answer in ``RequestTrackingMiddleware``
(the visitor's session id and user storage), ``RedirectWithPrefixMiddleware`` (a redirect under a proxy's
``X-Forwarded-Prefix``) and ``SetCacheControlMiddleware`` (its versioned assets cached for good). Each is a
``BaseHTTPMiddleware``: it runs the rest of the request in a task of its own and hands the answer back through a
memory stream, so a request makes a dozen more trips through the event loop. Under fifty API clients every trip
waits behind their work, and a sign-in (its page, its post and the home page) took three times three hops.
These do the same on the request as it passes, with nothing spawned. ``replace`` swaps them in by class before
the app builds its stack; a NiceGUI that names its middlewares otherwise keeps its own."""

from __future__ import annotations

import uuid
from typing import Any

from nicegui import core, middlewares, storage
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kehu.ui.assets import ASSETS, DYNAMIC_ASSETS


class RequestTracking:
    """NiceGUI's ``RequestTrackingMiddleware``: the request in ``storage.request_contextvar`` (what
    ``app.storage.browser`` and ``.user`` read), a session id for a new visitor, the visitor's user storage made
    before the page runs, and the session counted as active (not pruned) while its request runs. Its
    ``state.responded`` turns true when the answer starts, as NiceGUI's did when ``call_next`` returned: after that
    the browser storage is read-only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        storage.request_contextvar.set(request)
        if "id" not in request.session:
            request.session["id"] = str(uuid.uuid4())
        request.state.responded = False
        session_id = request.session["id"]
        active = core.app.storage._active_request_sessions  # the count NiceGUI's pruning reads
        active[session_id] += 1
        try:
            if session_id not in core.app.storage._users:
                await core.app.storage._create_user_storage(session_id)

            async def answering(message: Message) -> None:
                if message["type"] == "http.response.start":
                    request.state.responded = True
                await send(message)

            await self.app(scope, receive, answering)
        finally:
            active[session_id] -= 1
            if active[session_id] <= 0:
                del active[session_id]


class RedirectWithPrefix:
    """NiceGUI's ``RedirectWithPrefixMiddleware``: a redirect to a path of this site goes under the proxy's
    ``X-Forwarded-Prefix`` — when that is a path (``is_local_path``; NiceGUI took any text, ``//elsewhere`` too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        prefix = next((value.decode("latin-1") for name, value in scope.get("headers") or []
                       if name == b"x-forwarded-prefix"), "").rstrip("/")
        if not is_local_path(prefix):
            await self.app(scope, receive, send)
            return

        async def prefixed(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])  # (ASGI lets an answer leave them out)
                headers = MutableHeaders(scope=message)
                location = headers.get("location")
                if location and location.startswith("/"):
                    headers["location"] = prefix + location
            await send(message)

        await self.app(scope, receive, prefixed)


def is_local_path(value: str) -> bool:
    """Whether ``value`` is a path of this site that a browser reads as one, also with a path after it (a proxy's
    prefix, a page to come back to): ``/kehu``, not ``//elsewhere``, ``/\\elsewhere`` (a browser reads a backslash
    as a slash), a control character (a browser drops a tab or a newline from an address) or ``https://…``."""
    return (value.startswith("/") and not value.startswith("//") and "\\" not in value
            and not any(ord(c) < 32 or ord(c) == 127 for c in value))


class SetCacheControl:
    """NiceGUI's ``SetCacheControlMiddleware``: its versioned assets (not its dynamic resources) with the cache
    directives of its configuration (a year, immutable)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(ASSETS) or path.startswith(DYNAMIC_ASSETS):
            await self.app(scope, receive, send)
            return

        async def cached(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                MutableHeaders(scope=message)["cache-control"] = core.app.config.cache_control_directives
            await send(message)

        await self.app(scope, receive, cached)


REPLACEMENTS: dict[type, Any] = {
    storage.RequestTrackingMiddleware: RequestTracking,
    middlewares.RedirectWithPrefixMiddleware: RedirectWithPrefix,
    middlewares.SetCacheControlMiddleware: SetCacheControl,
}


def replace(app: Any) -> int:
    """Swap NiceGUI's ``BaseHTTPMiddleware`` classes on ``app`` (NiceGUI's own, before its first request) for
    these, in place and in order; how many were swapped."""
    swapped = 0
    for index, entry in enumerate(app.user_middleware):
        plain = REPLACEMENTS.get(entry.cls)
        if plain is not None:
            app.user_middleware[index] = Middleware(plain, *entry.args, **entry.kwargs)
            swapped += 1
    return swapped
