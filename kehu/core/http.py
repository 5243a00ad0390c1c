"""HTTP mechanics shared by every router: problem+json errors, body-size limit, request metrics."""

from __future__ import annotations

import asyncio
import time
import weakref
import zlib
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Histogram
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kehu.core.errors import BadRequest, FieldError, KehuError, PayloadTooLarge, UnsupportedMediaType

log = structlog.get_logger("kehu.http")
PROBLEM = "application/problem+json"
PROBLEM_BASE = "https://kehu.dev/problems/"
SEGMENT_PATHS = "/v1/"  # the Segment-compatible ingestion API

HTTP_REQUESTS = Counter("kehu_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram("kehu_http_request_seconds", "HTTP request latency", ["method", "route"])


def validated_json(model: BaseModel, status_code: int = 200, *, exclude_none: bool = False) -> Response:
    """A response already shaped by its model, sent as it is. FastAPI validates what a route returns against its
    response_model once more, in another trip to its thread pool, before encoding it: for the busiest reads (a
    page of customers, a Customer 360) that is work spent checking what the model has just built. The route keeps
    its response_model for the OpenAPI document, and the schema fuzz test checks the answers against it."""
    return Response(model.__pydantic_serializer__.to_json(model, by_alias=True, exclude_none=exclude_none),
                    status_code=status_code, media_type="application/json")


def problem(
    request: Request | None,
    status: int,
    slug: str,
    title: str,
    detail: str = "",
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    instance: str = "",
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance or request is not None:
        body["instance"] = instance or request.url.path  # type: ignore[union-attr]
    if errors:
        body["errors"] = errors
    if body.get("instance", "").startswith(SEGMENT_PATHS):
        # Segment's and RudderStack's libraries report a refused call by these two members (RudderStack's
        # fails with a KeyError without them)
        body["code"], body["message"] = slug, detail or title
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    return ".".join(parts) if parts else "body"


async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        first = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (first.get("ctx") or {}).get("error", "invalid JSON")
        return problem(
            request, 400, "malformed-json", "Malformed JSON", f"The request body is not valid JSON: {reason}",
            errors=[{"field": "body", "message": str(reason), "code": "json_invalid"}],
        )
    field_errors = [
        {"field": _field_path(tuple(e.get("loc", ()))), "message": e.get("msg", ""), "code": e.get("type", "")}
        for e in errors
    ]
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in field_errors)
    return problem(request, 422, "validation-failed", "Validation failed", detail, errors=field_errors)


async def _kehu_error_handler(request: Request, exc: KehuError) -> JSONResponse:
    headers = None
    if exc.status == 401:  # the challenge the path takes: the write key as Basic user name under /v1, else a token
        segment = request.url.path.startswith(SEGMENT_PATHS)
        headers = {"WWW-Authenticate": 'Basic realm="kehu", charset="UTF-8"' if segment else "Bearer"}
    if exc.status == 429 and "retry_after" in exc.extra:
        headers = {"Retry-After": str(exc.extra["retry_after"])}
    if exc.status == 415 and "accept_encoding" in exc.extra:  # RFC 9110 §12.5.3: say which codings we take
        headers = {"Accept-Encoding": str(exc.extra["accept_encoding"])}
    return problem(
        request, exc.status, exc.slug, exc.title, exc.detail,
        errors=[e.as_dict() for e in exc.errors] or None, headers=headers, **exc.extra,
    )


async def _http_error_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    titles = {404: "Not found", 405: "Method not allowed", 401: "Authentication required", 403: "Not allowed"}
    title = titles.get(exc.status_code, "HTTP error")
    slug = title.lower().replace(" ", "-")
    detail = exc.detail if isinstance(exc.detail, str) else ""
    return problem(request, exc.status_code, slug, title, detail, headers=getattr(exc, "headers", None))


def _internal_error(path: str) -> JSONResponse:
    return problem(None, 500, "internal-error", "Internal error", "An unexpected error occurred; it was logged.",
                   instance=path)


async def _unhandled_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", path=request.url.path)
    return _internal_error(request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)  # type: ignore[arg-type]
    app.add_exception_handler(KehuError, _kehu_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unhandled_handler)


# Content codings a request body may arrive in, as zlib window settings (gzip's header, or zlib's for deflate)
_CODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def decoded_body(body: bytes, content_encoding: str | None, limit: int,
                 too_large: type[KehuError] = PayloadTooLarge) -> bytes:
    """The request body as it was before the client compressed it (Segment's and RudderStack's libraries can
    gzip their batches), unpacked coding by coding, last applied first. ``limit`` holds for the unpacked body
    too, so a small compressed body cannot unpack into a huge one: past it the unpacking stops and
    ``too_large`` is raised (413 by default; Segment's API answers 400)."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding not in _CODINGS:
            raise UnsupportedMediaType(
                f"Request bodies may be sent as they are or with Content-Encoding gzip or deflate, not {coding!r}.",
                errors=[FieldError("Content-Encoding", f"unsupported content coding {coding!r}", "unsupported")],
                extra={"accept_encoding": "gzip, deflate"})
        unpacker = zlib.decompressobj(_CODINGS[coding])
        try:
            unpacked = unpacker.decompress(body, limit + 1)
        except zlib.error as exc:
            raise BadRequest(f"The request body is not valid {coding} data: {exc}.", errors=[FieldError(
                "Content-Encoding", f"the body is not valid {coding} data", "encoding_invalid")]) from exc
        if len(unpacked) > limit:
            raise too_large(f"The request body unpacks to more than the limit of {limit} bytes.",
                            errors=[_too_large_field(limit)], extra={"limit_bytes": limit})
        if not unpacker.eof or unpacker.unused_data:
            raise BadRequest(f"The request body is not one complete {coding} stream.", errors=[FieldError(
                "Content-Encoding", f"the {coding} data is cut short or followed by more", "encoding_invalid")])
        body = unpacked
    return body


def _too_large_field(limit: int) -> FieldError:
    return FieldError("body", f"larger than the limit of {limit} bytes", "too_large")


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body a middleware has read already, then the connection's own
    messages (a disconnect)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay

async def read_body(receive: Receive) -> bytes:
    """The whole request body, however many messages it comes in (a disconnect ends it early)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class BodyLimitMiddleware:
    """Refuses bodies over ``max_bytes`` (declared or streamed) with 413 before any handler reads them — with
    400 under ``bad_request_under``, as Segment's API answers an oversized call or batch."""

    def __init__(self, app: ASGIApp, max_bytes: int, limits: dict[str, int] | None = None,
                 bad_request_under: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # path prefix → own limit (e.g. ingestion batches); the longest prefix that matches decides
        self.limits = sorted((limits or {}).items(), key=lambda item: -len(item[0]))
        self.bad_request_under = bad_request_under

    def _limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope["path"])
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send, limit)
            return
        if declared is not None:
            await self.app(scope, receive, send)  # the server holds the client to its declared length
            return
        # No declared length (chunked): read up to the limit here, then replay it to the app.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                await self._refuse(scope, send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        await self.app(scope, replaying(body, receive), send)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        status = 400 if scope["path"].startswith(self.bad_request_under) else 413
        response = problem(
            None, status, "payload-too-large", "Payload too large",
            f"The request body is larger than the limit of {limit} bytes.",
            errors=[_too_large_field(limit).as_dict()], instance=scope["path"], limit_bytes=limit,
        )
        await response(scope, _noop_receive, send)


async def _noop_receive() -> Message:
    return {"type": "http.disconnect"}


class PathCorsMiddleware:
    """Lets pages of any origin call the paths under ``prefix`` (and only those): Segment's analytics.js posts
    there from the shop's own site, with the source's write key in the body (public, as Segment's is); the rest
    of the API stays same-origin. Starlette's CORS rules, answering preflights too; outermost, so refusals
    (401, 413) reach the page readable."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix
        self.cors = CORSMiddleware(app, allow_origins=["*"], allow_methods=["GET", "POST"], allow_headers=["*"],
                                   max_age=86400)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class AdmissionMiddleware:
    """Lets at most ``limit`` API requests at a time into the handlers; the rest wait here, in arrival order.

    A request holds a database connection from its first query (resolving the principal, in one worker thread)
    until its session closes (in another), and waits for a free thread in between. With more requests in flight
    than the pool has connections, every thread could end up waiting for a connection held by requests that
    wait for a thread: nothing moves until the pool's 30 s timeout answers 500s. Admitting no more requests than
    connections makes that impossible, keeps the queue out of the threads (where waiting costs the interpreter
    lock, and the pages' event loop with it) and serves the crowd first come, first served. The slot is given
    back when the answer starts: the session has closed by then, and a slow download holds nothing. A body is
    read before the request queues, so a slow sender holds no slot either; one over ``PREREAD_BYTES`` (a file
    upload) is not admitted here at all: the pool's spare connections (db.get_database) take those few."""

    PREREAD_BYTES = 1024 * 1024

    def __init__(self, app: ASGIApp, *, limit: int, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.prefixes = prefixes
        self.limit = limit
        # one semaphore per event loop (a server has one; tests drive one app from several)
        self.slots_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD", "OPTIONS", "DELETE"):
            headers = dict(scope.get("headers") or [])
            declared = headers.get(b"content-length", b"")
            if not declared.isdigit() or int(declared) > self.PREREAD_BYTES:
                await self.app(scope, receive, send)
                return
            receive = replaying(await read_body(receive), receive)
        loop = asyncio.get_running_loop()
        slots = self.slots_by_loop.get(loop)
        if slots is None:
            slots = self.slots_by_loop[loop] = asyncio.Semaphore(self.limit)
        await slots.acquire()
        held = True

        async def send_wrapper(message: Message) -> None:
            nonlocal held
            if held and message["type"] == "http.response.start":
                held = False
                slots.release()
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if held:
                slots.release()


class MetricsMiddleware:
    """Counts requests and their latency per route template (not per raw path, to bound cardinality)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status_holder = {"status": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or ("/ui" if not scope["path"].startswith(("/api", "/v1")) else "?")
            HTTP_REQUESTS.labels(scope["method"], template, str(status_holder["status"])).inc()
            HTTP_LATENCY.labels(scope["method"], template).observe(time.perf_counter() - start)


class StaticCacheMiddleware:
    """The web UI's versioned assets (Vue, Quasar, the components' scripts: ~1.5 MB a first visit) served from
    memory, gzip-compressed once. Read from disk they took a worker thread per 64 KB chunk, the same threads the
    API's requests run in: with a crowd on the API a first visit's assets waited behind it for seconds (the
    sign-in page took 3–4 s). An answer is kept only when it is a 200 to a GET without a query string that says it
    never changes (``immutable``) and sets no cookie (a kept ``Set-Cookie`` would hand one visitor's session to
    everyone after), up to ``max_bytes`` in all; anything else passes through as it is. Of several first requests
    for one asset at once, one reads it and the others wait for it."""

    def __init__(self, app: ASGIApp, prefix: str | tuple[str, ...], *, skip: tuple[str, ...] = (),
                 max_bytes: int = 64 * 1024 * 1024) -> None:
        self.app = app
        self.prefix = prefix
        self.skip = skip
        self.max_bytes = max_bytes
        self.kept_bytes = 0
        self.kept: dict[str, tuple[list[tuple[bytes, bytes]], bytes, bytes | None]] = {}
        self.reading: dict[str, asyncio.Event] = {}  # assets being read for the first time

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or not path.startswith(self.prefix)
                or path.startswith(self.skip) or scope.get("query_string")):
            await self.app(scope, receive, send)
            return
        if path not in self.kept and path in self.reading:
            await self.reading[path].wait()  # another visitor's request is reading it: it is kept in a moment
        kept = self.kept.get(path)
        if kept is None:
            if path in self.reading or scope["method"] != "GET":
                await self.app(scope, receive, send)
                return
            self.reading[path] = asyncio.Event()
            try:
                await self._fetch(path, scope, receive, send)
            finally:
                self.reading.pop(path).set()
            return
        headers, body, compressed = kept
        gzip = compressed is not None and _accepts_gzip(scope)
        content = compressed if gzip and compressed is not None else body
        out = [*headers, (b"content-length", str(len(content)).encode()), (b"vary", b"Accept-Encoding")]
        if gzip:
            out.append((b"content-encoding", b"gzip"))
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else content})

    async def _fetch(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer from the app, and keep the answer if it may be kept."""
        start: dict[str, Any] = {}
        chunks: list[bytes] = []
        whole = True

        async def keep(message: Message) -> None:
            nonlocal whole
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            else:  # http.response.pathsend and the like: the body never passes through here
                whole = False
            await send(message)

        await self.app(scope, receive, keep)
        headers = [(k.lower(), v) for k, v in start.get("headers", [])]
        found = dict(headers)
        if (not whole or start.get("status") != 200 or b"immutable" not in found.get(b"cache-control", b"")
                or b"content-encoding" in found or b"set-cookie" in found or path in self.kept):
            return
        body = b"".join(chunks)
        compressed: bytes | None = None
        if len(body) > 1024 and found.get(b"content-type", b"").split(b";")[0] in _COMPRESSIBLE:
            compressed = await asyncio.to_thread(_gzip, body)  # once, off the event loop
        size = len(body) + len(compressed or b"")
        if self.kept_bytes + size > self.max_bytes:
            return
        self.kept[path] = ([(k, v) for k, v in headers if k not in _NOT_KEPT], body, compressed)
        self.kept_bytes += size


_NOT_KEPT = {b"content-length", b"content-encoding", b"vary", b"etag", b"set-cookie"}
_COMPRESSIBLE = {b"text/javascript", b"application/javascript", b"text/css", b"application/json", b"image/svg+xml",
                 b"text/html", b"text/plain"}


def _accepts_gzip(scope: Scope) -> bool:
    """Whether the request's Accept-Encoding headers take gzip (and do not refuse it with q=0)."""
    for name, value in scope.get("headers") or []:
        if name == b"accept-encoding":
            for coding in value.decode("latin-1").lower().split(","):
                token, _, params = coding.strip().partition(";")
                if token.strip() in ("gzip", "*"):
                    quality = params.strip().removeprefix("q=").strip() if params.strip().startswith("q=") else "1"
                    try:
                        return float(quality) > 0
                    except ValueError:
                        return False
    return False


def _gzip(body: bytes) -> bytes:
    import gzip

    return gzip.compress(body, compresslevel=6, mtime=0)


class LastResortMiddleware:
    """Answers an exception no handler took with problem+json 500 and keeps it here. Starlette's outermost
    error middleware answers too, but then raises the exception on to the server, and uvicorn closes the
    client's keep-alive connection for it. Once a response has started there is nothing to answer: re-raised."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            log.exception("unhandled error", path=scope["path"], method=scope["method"])
            await _internal_error(scope["path"])(scope, receive, send)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def install_api_fallback(app: FastAPI, prefixes: tuple[str, ...]) -> None:
    """Unknown paths and wrong methods under the API prefixes answer problem+json 404 / 405 (with Allow)
    rather than fall through to the web UI mounted at / and its HTML page. Register it after every API route
    (the first route that matches both path and method takes the request)."""
    fallbacks: list[Any] = []

    async def fallback(request: Request) -> JSONResponse:
        allowed = set()
        for method in _METHODS:  # which methods some operation at this path takes: 405 naming them, not 404
            probe = {**request.scope, "method": method}
            for route in app.router.routes:
                match, _ = route.matches(probe)
                if match is Match.FULL:
                    if route not in fallbacks:
                        allowed.add(method)
                    break
        if allowed:
            allow = ", ".join(sorted(allowed))
            return problem(request, 405, "method-not-allowed", "Method not allowed",
                           f"{request.method} is not allowed here; allowed: {allow}.", headers={"Allow": allow})
        return problem(request, 404, "not-found", "Not found", f"No API operation at {request.url.path}.")

    for prefix in prefixes:
        app.add_api_route(prefix.rstrip("/") + "/{rest:path}", fallback, include_in_schema=False,
                          methods=list(_METHODS))
        fallbacks.append(app.router.routes[-1])


# Content-Security-Policy of the web UI. NiceGUI renders with Vue's in-browser template compiler (eval) and inline
# scripts and styles, so 'unsafe-inline' and 'unsafe-eval' stay; everything else is the page's own origin, and the
# page may not be framed (clickjacking) nor post forms or set a base URL elsewhere.
UI_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
          "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
          "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
# JSON and other data answers load nothing and render nothing.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# FastAPI's /docs (Swagger UI) and /redoc load their scripts, styles and fonts from public CDNs.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
            "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; font-src 'self' "
            "https://fonts.gstatic.com; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
            "base-uri 'self'; frame-ancestors 'none'")
API_PATHS = ("/api/", SEGMENT_PATHS, "/healthz", "/metrics", "/openapi.json")
DOCS_PATHS = ("/docs", "/redoc")


def is_https(scope: Scope) -> bool:
    """Served over https: directly, or behind a proxy that says so (uvicorn rewrites the scheme only for proxies it
    trusts; the header alone can only make us stricter, never looser)."""
    if scope.get("scheme") in ("https", "wss"):
        return True
    for name, value in scope.get("headers") or []:
        if name == b"x-forwarded-proto":
            return bool(value.split(b",")[0].strip().lower() == b"https")
    return False


class SecurityHeadersMiddleware:
    """Security headers on every answer (UI, API, ingestion): a Content-Security-Policy by kind of path,
    X-Frame-Options DENY, nosniff, a referrer policy; over https also HSTS and the Secure flag on every cookie
    (``cookie_secure``: None → when the request came over https, True/False → always/never). The ingestion paths
    keep answering any origin: these headers govern how a browser treats our own answers, not who may call."""

    def __init__(self, app: ASGIApp, cookie_secure: bool | None = None) -> None:
        self.app = app
        self.cookie_secure = cookie_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        csp = DOCS_CSP if path.startswith(DOCS_PATHS) else API_CSP if path.startswith(API_PATHS) else UI_CSP
        https = is_https(scope)
        secure = https if self.cookie_secure is None else self.cookie_secure
        added = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                 (b"referrer-policy", b"strict-origin-when-cross-origin")]
        if https:
            added.append((b"strict-transport-security", b"max-age=31536000"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in added if n not in present]
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", csp.encode()))
                if secure:
                    headers = [(n, v + b"; secure") if n.lower() == b"set-cookie" and b"secure" not in v.lower()
                               else (n, v) for n, v in headers]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
