"""The web UI's versioned assets are served from memory after their first read, compressed once: a crowd on the
API no longer makes a first visit's scripts wait for worker threads (the sign-in page took 3–4 s under load).
Only answers that say they never change are kept."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from kehu.core.http import StaticCacheMiddleware

SCRIPT = "console.log('kehu');\n" * 400
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}


def make() -> tuple[TestClient, dict[str, int]]:
    reads = {"asset": 0, "page": 0, "missing": 0, "cookie": 0}

    def asset(request):  # type: ignore[no-untyped-def]
        reads["asset"] += 1
        return Response(SCRIPT, media_type="text/javascript", headers=IMMUTABLE)

    def page(request):  # type: ignore[no-untyped-def]
        reads["page"] += 1
        return PlainTextResponse("changes every time", headers={"Cache-Control": "no-store"})

    def missing(request):  # type: ignore[no-untyped-def]
        reads["missing"] += 1
        return PlainTextResponse("not here", status_code=404, headers=IMMUTABLE)

    def with_cookie(request):  # type: ignore[no-untyped-def]
        reads["cookie"] += 1
        response = Response(SCRIPT, media_type="text/javascript", headers=IMMUTABLE)
        if "session" not in request.cookies:  # as a session middleware does for a visitor without one
            response.set_cookie("session", f"visitor-{reads['cookie']}")
        return response

    reads["cookie"] = 0
    app = Starlette(routes=[Route("/_ui/1/static/app.js", asset), Route("/_ui/1/dynamic/page", page),
                            Route("/_ui/1/static/gone.js", missing), Route("/elsewhere.js", asset),
                            Route("/_ui/1/static/cookie.js", with_cookie)])
    wrapped = StaticCacheMiddleware(app, prefix="/_ui/1/", skip=("/_ui/1/dynamic/",))
    return TestClient(wrapped), reads


def test_an_asset_is_read_once_then_served_from_memory_compressed():
    client, reads = make()
    first = client.get("/_ui/1/static/app.js")
    assert first.status_code == 200 and first.text == SCRIPT
    for _ in range(3):
        again = client.get("/_ui/1/static/app.js", headers={"Accept-Encoding": "gzip"})
        assert again.status_code == 200 and again.text == SCRIPT  # (the client decompresses)
        assert again.headers["content-encoding"] == "gzip" and again.headers["cache-control"].endswith("immutable")
        assert int(again.headers["content-length"]) < len(SCRIPT) / 5
    assert reads["asset"] == 1
    plain = client.get("/_ui/1/static/app.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == SCRIPT.encode()
    assert int(plain.headers["content-length"]) == len(SCRIPT)
    head = client.head("/_ui/1/static/app.js", headers={"Accept-Encoding": "gzip"})
    assert head.status_code == 200 and head.content == b""
    assert reads["asset"] == 1


def test_what_may_change_or_failed_or_lies_elsewhere_is_never_kept():
    client, reads = make()
    for _ in range(2):
        assert client.get("/_ui/1/dynamic/page").text == "changes every time"
        assert client.get("/_ui/1/static/gone.js").status_code == 404
        assert client.get("/elsewhere.js").status_code == 200
    assert reads == {"page": 2, "missing": 2, "asset": 2, "cookie": 0}
    for n in range(3):  # with a query string: read every time (anyone could fill the memory with ?junk=N)
        assert client.get(f"/_ui/1/static/app.js?junk={n}").status_code == 200
    assert reads["asset"] == 5


def test_an_answer_that_sets_a_cookie_is_never_kept_or_replayed():
    """A first visitor without a session gets one with the asset; kept, it would be everyone's session after."""
    client, reads = make()
    first = client.get("/_ui/1/static/cookie.js")
    assert first.cookies.get("session") == "visitor-1"
    second = TestClient(client.app).get("/_ui/1/static/cookie.js")  # another browser, no cookie yet
    assert second.cookies.get("session") == "visitor-2"
    assert reads["cookie"] == 2


def test_gzip_refused_with_q0_is_not_sent():
    client, _ = make()
    client.get("/_ui/1/static/app.js")
    refused = client.get("/_ui/1/static/app.js", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers and refused.content == SCRIPT.encode()


def test_many_first_visits_at_once_read_an_asset_once():
    import asyncio

    reads = 0

    async def slow_asset(scope, receive, send):  # type: ignore[no-untyped-def]
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.05)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/javascript"), (b"cache-control", b"public, immutable")]})
        await send({"type": "http.response.body", "body": SCRIPT.encode()})

    cache = StaticCacheMiddleware(slow_asset, prefix="/_ui/")

    async def visit() -> bytes:
        sent: list[dict] = []

        async def send(message):  # type: ignore[no-untyped-def]
            sent.append(message)

        async def receive():  # type: ignore[no-untyped-def]
            return {"type": "http.request", "body": b""}

        await cache({"type": "http", "method": "GET", "path": "/_ui/app.js", "query_string": b"", "headers": []},
                    receive, send)
        return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

    async def crowd() -> list[bytes]:
        return await asyncio.gather(*(visit() for _ in range(10)))

    bodies = asyncio.run(crowd())
    assert reads == 1 and all(body == SCRIPT.encode() for body in bodies)
    assert cache.kept_bytes < 2 * len(SCRIPT)  # counted once
