"""Security headers, the session cookie's flags and who may read /docs and /metrics (issue 19, item 6)."""

from __future__ import annotations

import warnings

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kehu.app import create_app
from kehu.cli import demo_settings
from kehu.core.http import SecurityHeadersMiddleware
from kehu.core.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SECURITY_HEADERS = {"x-frame-options": "DENY", "x-content-type-options": "nosniff",
                    "referrer-policy": "strict-origin-when-cross-origin"}


def _assert_secured(response) -> None:  # type: ignore[no-untyped-def]
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, f"{name} missing on {response.request.url.path}"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_api_answers_carry_the_security_headers(client, tree, login):
    _assert_secured(client.get("/api/v1/me", headers=login("admin@example.com")))
    _assert_secured(client.get("/api/v1/me"))  # errors too
    _assert_secured(client.get("/healthz"))
    assert client.get("/healthz").headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_the_browser_tracking_paths_still_answer_any_origin(client, tree):
    preflight = client.options("/v1/t", headers={"Origin": "https://shop.example.cn",
                                                 "Access-Control-Request-Method": "POST",
                                                 "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    call = client.post("/v1/t", headers={"Origin": "https://shop.example.cn"}, json={"event": "x"})
    assert call.headers["access-control-allow-origin"] == "*"
    _assert_secured(call)


def _cookie_app(cookie_secure: bool | None) -> TestClient:
    def home(request):  # type: ignore[no-untyped-def]
        response = PlainTextResponse("ok")
        response.set_cookie("session", "x", httponly=True, samesite="lax")
        return response

    return TestClient(SecurityHeadersMiddleware(Starlette(routes=[Route("/", home)]), cookie_secure=cookie_secure))


def test_cookies_are_secure_when_served_over_https():
    plain = _cookie_app(None).get("/")
    assert "secure" not in plain.headers["set-cookie"].lower() and "strict-transport-security" not in plain.headers
    proxied = _cookie_app(None).get("/", headers={"X-Forwarded-Proto": "https"})
    assert "; secure" in proxied.headers["set-cookie"].lower()
    assert proxied.headers["strict-transport-security"].startswith("max-age=")
    assert "; secure" in _cookie_app(None).get("https://testserver/").headers["set-cookie"].lower()
    assert "; secure" in _cookie_app(True).get("/").headers["set-cookie"].lower()
    assert "secure" not in _cookie_app(False).get("/", headers={"X-Forwarded-Proto": "https"}).headers[
        "set-cookie"].lower()


def test_ui_sessions_last_twelve_hours_by_default():
    settings = Settings(_env_file=None)
    assert settings.ui_session_hours == 12 and settings.ui_idle_minutes > 0


@pytest.fixture
def production(settings, clean_database):  # type: ignore[no-untyped-def]
    """An app with the production defaults for /docs and /metrics (the test settings open them)."""

    def make(**changes) -> TestClient:  # type: ignore[no-untyped-def]
        values = {"api_docs": Settings.model_fields["api_docs"].default,
                  "metrics": Settings.model_fields["metrics"].default, **changes}
        app = create_app(settings.model_copy(update=values), clean_database, with_ui=False, embedded_worker=False)
        return TestClient(app, raise_server_exceptions=False)

    return make


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/metrics"])
def test_docs_and_metrics_are_for_signed_in_users_by_default(production, tree, path):
    with production() as client:
        anonymous = client.get(path)
        assert anonymous.status_code == 401, f"{path} must not be open to anyone by default"
        assert anonymous.headers["content-type"].startswith("application/problem+json")
        token = client.post("/api/v1/auth/token", data={"username": "admin@example.com",
                                                        "password": "correct-horse-1"}).json()["access_token"]
        assert client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert client.get(path, headers={"Authorization": "Bearer forged"}).status_code == 401


def test_docs_and_metrics_can_be_turned_off_or_opened(production, tree):
    with production(api_docs="off", metrics="off") as client:
        for path in ("/docs", "/redoc", "/openapi.json", "/metrics"):
            assert client.get(path).status_code == 404
    with production(api_docs="open", metrics="open") as client:
        assert client.get("/docs").status_code == 200 and client.get("/metrics").status_code == 200
        assert "cdn.jsdelivr.net" in client.get("/docs").headers["content-security-policy"]


def test_prometheus_scrapes_with_the_metrics_token(production, tree):
    with production(metrics_token="scrape-secret-" + "y" * 20) as client:
        assert client.get("/metrics").status_code == 401
        ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-" + "y" * 20})
        assert ok.status_code == 200 and "kehu_http_requests_total" in ok.text
        assert client.get("/openapi.json", headers={"Authorization": "Bearer scrape-secret-" + "y" * 20}
                          ).status_code == 401  # the metrics token opens the metrics only


def test_kehu_demo_opens_docs_and_metrics_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("KEHU_API_DOCS", raising=False)
    monkeypatch.setenv("KEHU_METRICS", "off")
    demo = demo_settings(Settings())
    assert demo.api_docs == "open" and demo.metrics == "off"
    assert Settings().api_docs == "signed_in"
