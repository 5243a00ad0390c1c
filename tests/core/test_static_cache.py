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
    reads = {"asset": 0, "page": 0, "missing": 0}

    def asset(request):  # type: ignore[no-untyped-def]
        reads["asset"] += 1
        return Response(SCRIPT, media_type="text/javascript", headers=IMMUTABLE)

    def page(request):  # type: ignore[no-untyped-def]
        reads["page"] += 1
        return PlainTextResponse("changes every time", headers={"Cache-Control": "no-store"})

    def missing(request):  # type: ignore[no-untyped-def]
        reads["missing"] += 1
        return PlainTextResponse("not here", status_code=404, headers=IMMUTABLE)

    app = Starlette(routes=[Route("/_ui/1/static/app.js", asset), Route("/_ui/1/dynamic/page", page),
                            Route("/_ui/1/static/gone.js", missing), Route("/elsewhere.js", asset)])
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
    assert reads == {"page": 2, "missing": 2, "asset": 2}
