"""Signing in through the UI (issue 19, item 6): after repeated failures the page says how long to wait, in its
language, and the right password then signs in; the session cookie and the page's security headers. The form is a
plain HTML form: it signs in with what the fields show even while the page's live connection is not yet made, and
refuses a post without the token of the browser's session."""

from __future__ import annotations

import base64
import json
import re
import time

import httpx
from playwright.sync_api import expect

from tests.e2e.conftest import shoot


def _attempt(page, email: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_label("邮箱").fill(email)
    page.get_by_label("密码").fill(password)
    with page.expect_navigation():  # the form's post, answered by the sign-in page again or the home page
        page.get_by_role("button", name="登录").click()


def test_after_repeated_failures_the_page_says_how_long_to_wait_then_signs_in(page, server):
    page.goto(f"{server}/login")
    message = page.locator(".text-negative")
    for _ in range(5):  # five failures in a row are free
        _attempt(page, "agent2@demo.kehu.dev", "not-my-password")
        expect(message).to_have_text("邮箱或密码不正确，或账号已停用。")
        # the e-mail is kept and the password is to be typed again
        expect(page.get_by_label("邮箱")).to_have_value("agent2@demo.kehu.dev")
        expect(page.get_by_label("密码")).to_have_value("")
    shown = ""
    for _ in range(10):  # then each wait doubles: 1 s, 2 s, 4 s … until one outlasts a round trip
        _attempt(page, "agent2@demo.kehu.dev", "not-my-password")
        expect(message).not_to_have_text("")
        shown = message.inner_text()
        if "请等待" in shown:
            break
    found = re.fullmatch(r"登录失败次数过多，请等待 (\d+) 秒后再试。", shown)
    assert found, shown
    shoot(page, "sign-in-wait")
    time.sleep(int(found.group(1)) + 0.2)
    _attempt(page, "agent2@demo.kehu.dev", "kehu-demo-2026")  # the right password after the wait signs in
    assert page.url.rstrip("/") == server


def test_the_session_cookie_and_the_pages_security_headers(page, server, sign_in):
    sign_in("agent3@demo.kehu.dev")
    response = page.goto(f"{server}/customers")
    headers = response.headers
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    expect(page.get_by_text("客户").first).to_be_visible()
    (session,) = [c for c in page.context.cookies() if c["name"] == "session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert not session["secure"]  # served over plain http here; Secure over https (tests/core/test_security_headers)
    hours = (session["expires"] - time.time()) / 3600
    assert 11.9 < hours <= 12.01, f"the session cookie lives {hours:.1f} h"


def test_api_docs_open_for_a_signed_in_browser_only(page, server, sign_in):
    assert httpx.get(f"{server}/openapi.json").status_code == 401  # production settings: signed-in users only
    assert httpx.get(f"{server}/metrics").status_code == 401
    sign_in("agent1@demo.kehu.dev")
    # the browser's own session cookie, without loading Swagger UI's scripts (from a CDN this machine may not reach)
    schema = page.request.get(f"{server}/openapi.json")
    assert schema.status == 200 and "/api/v1/customers" in schema.json()["paths"]
    docs = page.request.get(f"{server}/docs")
    assert docs.status == 200 and "cdn.jsdelivr.net" in docs.headers["content-security-policy"]


def test_the_form_signs_in_before_the_pages_live_connection_is_made(page, server):
    """Typed and sent while the pages' live connection to the server is held back (a loaded server, a slow
    network): the form posts what its fields show, and the home page shows what it was served. Sent over that
    connection instead, the fields' changes waited for it and the button's press did nothing."""
    held: list[object] = []
    # neither transport of the pages' live connection gets through (WebSocket, and the long polling it falls
    # back to): the pages show what they were served, and nothing they send reaches the server
    def hold(route) -> None:  # type: ignore[no-untyped-def]  # never answered
        held.append(route)

    page.route_web_socket(re.compile(r".*/_nicegui_ws/.*"), hold)
    page.route(re.compile(r".*/_nicegui_ws/.*"), hold)
    page.goto(f"{server}/login")
    page.get_by_label("邮箱").fill("marketing2@demo.kehu.dev")
    page.get_by_label("密码").fill("kehu-demo-2026")
    page.get_by_label("密码").press("Enter")  # Enter in the password field sends the form, as the button does
    page.wait_for_url(f"{server}/", timeout=15_000)
    expect(page.get_by_text("工作台", exact=True).first).to_be_visible()
    assert held, "the sign-in page's connection was not held back: the test proved nothing"


def test_a_post_without_the_sessions_token_signs_no_one_in(page, server):
    """A form on another site posting to /login (to sign a visitor into an account of the sender's) carries no
    token of the visitor's session: refused, and the sign-in page says the form had expired."""
    page.goto(f"{server}/login")
    page.get_by_label("邮箱").wait_for()
    for token in ("", "0" * 64):
        answer = page.request.post(f"{server}/login", form={"email": "marketing2@demo.kehu.dev",
                                                           "password": "kehu-demo-2026", "token": token},
                                   max_redirects=0)
        # sent back to the form, not to the home page
        assert answer.status == 303 and answer.headers["location"] == "/login"
    page.goto(f"{server}/")
    page.wait_for_url(f"{server}/login")  # not signed in
    expect(page.locator(".text-negative")).to_have_text("登录页面已过期，请重新登录。")
    expect(page.get_by_label("邮箱")).to_have_value("marketing2@demo.kehu.dev")


def _session_id(page) -> str:  # type: ignore[no-untyped-def]
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "session"]
    return json.loads(base64.b64decode(cookie["value"].split(".")[0]))["id"]


def test_signing_in_gives_a_new_session_and_keeps_the_language_chosen(page, server):
    """A session id someone planted in the browser before the sign-in (a sibling site's cookie) signs them into
    nothing: the signed-in session has another id. The language chosen on the sign-in page stays."""
    page.goto(f"{server}/login")
    page.get_by_role("link", name="English").click()
    page.get_by_label("E-mail").wait_for()
    assert page.url == f"{server}/login"  # the language remembered, the address plain again
    before = _session_id(page)
    page.get_by_label("E-mail").fill("analyst@demo.kehu.dev")
    page.get_by_label("Password").fill("kehu-demo-2026")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server}/")
    expect(page.get_by_text("Dashboard", exact=True).first).to_be_visible()
    assert _session_id(page) != before


def test_a_form_missing_or_mangled_is_answered_on_the_form(page, server):
    """An empty password (Enter in the e-mail field, or a post by hand), an address no account can have, a token
    that is not even text of the right kind: each comes back to the form with why, none is a server error."""
    page.goto(f"{server}/login")
    token = page.locator("input[name=token]").get_attribute("value")
    wrong, missing, expired = "邮箱或密码不正确，或账号已停用。", "请输入邮箱和密码。", "登录页面已过期，请重新登录。"
    cases = [({"email": "agent1@demo.kehu.dev", "password": "", "token": token}, missing),
             ({"email": "a" * 300 + "@demo.kehu.dev", "password": "x" * 12, "token": token}, wrong),
             ({"email": "agent1\x00@demo.kehu.dev", "password": "x" * 12, "token": token}, wrong),
             ({"email": "agent1@demo.kehu.dev", "password": "x" * 12, "token": "é" * 64}, expired)]
    for form, said in cases:
        answer = page.request.post(f"{server}/login", form=form, max_redirects=0)
        assert answer.status == 303 and answer.headers["location"] == "/login", form
        page.goto(f"{server}/login")
        expect(page.locator(".text-negative")).to_have_text(said)
    too_big = page.request.post(f"{server}/login", form={"email": "agent1@demo.kehu.dev", "password": "x" * 20_000,
                                                        "token": token}, max_redirects=0)
    assert too_big.status == 413
    # the fields themselves ask for what is missing before anything is sent
    page.goto(f"{server}/login")
    page.get_by_label("邮箱").fill("agent1@demo.kehu.dev")
    page.get_by_label("邮箱").press("Enter")
    page.wait_for_timeout(300)
    assert page.url == f"{server}/login"
    assert page.get_by_label("密码").evaluate("field => field.validity.valueMissing")


def test_the_sign_in_page_is_plain_html_that_fetches_the_first_pages_assets(page, server):
    """The sign-in page starts no scripts of the pages' (Vue, Quasar, the live connection): it can be typed into as
    soon as it arrives. It has the browser fetch what the home page loads — Quasar, the stylesheets, the charts'
    script and ECharts — while its visitor types."""
    answer = page.goto(f"{server}/login")
    assert answer.headers["cache-control"] == "no-store"  # (it carries a token of the browser's session)
    assert page.locator("script[src]").count() == 0
    prefetched = page.locator("link[rel=prefetch]").evaluate_all("links => links.map(link => link.href)")
    for name in ("quasar.umd.prod.js", "vue.esm-browser.prod.js", "tailwind.css", "/chart.js", "/index.js"):
        assert any(href.endswith(name) for href in prefetched), (name, prefetched)
    for href in prefetched:
        fetched = page.request.get(href)
        assert fetched.status == 200 and "immutable" in fetched.headers["cache-control"], href
    # the eye shows the password and hides it again
    page.get_by_label("密码").fill("kehu-demo-2026")
    page.get_by_role("button", name="显示字符").click()
    expect(page.get_by_label("密码")).to_have_attribute("type", "text")
    page.get_by_role("button", name="显示字符").click()
    expect(page.get_by_label("密码")).to_have_attribute("type", "password")
    shoot(page, "sign-in")


def test_a_page_asked_for_before_signing_in_opens_after_it(page, server):
    """A link to a page (a customer's, a lead's) opened by someone not signed in: the server sends them to sign in
    at once, without starting that page in the browser first, and signing in opens the page they asked for."""
    answer = page.request.get(f"{server}/leads?status=new", max_redirects=0)
    assert answer.status == 303 and answer.headers["location"] == "/login?next=%2Fleads%3Fstatus%3Dnew"
    page.goto(f"{server}/leads?status=new")
    assert page.url == f"{server}/login?next=%2Fleads%3Fstatus%3Dnew"
    _attempt(page, "agent1@demo.kehu.dev", "not-my-password")  # refused: the page asked for is still kept
    assert page.url == f"{server}/login?next=%2Fleads%3Fstatus%3Dnew"
    _attempt(page, "agent1@demo.kehu.dev", "kehu-demo-2026")
    assert page.url == f"{server}/leads?status=new"
    # signed in, the sign-in page sends on to where the visitor was going
    page.goto(f"{server}/login?next=%2Fcustomers")
    assert page.url == f"{server}/customers"


def test_the_sign_in_page_never_sends_a_visitor_to_another_site(page, server):
    """``next`` names a page of this site only: an address of another site, written any of the ways a browser
    would still follow, leads to the home page after signing in."""
    page.goto(f"{server}/login?next=//evil.example/x")
    assert page.locator("input[name=next]").get_attribute("value") == ""
    for target in ("https://evil.example/", "//evil.example", "/\\evil.example", "/x\\y", "javascript:alert(1)",
                   "/login?next=/x"):
        # (refused for want of a token, so no failed sign-in is counted: the page to come back to is still kept)
        answer = page.request.post(f"{server}/login", max_redirects=0, form={
            "email": "agent1@demo.kehu.dev", "password": "kehu-demo-2026", "token": "", "next": target})
        assert answer.headers["location"] == "/login", target
    kept = page.request.post(f"{server}/login", max_redirects=0, form={
        "email": "agent1@demo.kehu.dev", "password": "kehu-demo-2026", "token": "", "next": "/customers?q=王"})
    assert kept.headers["location"] == "/login?next=%2Fcustomers%3Fq%3D%E7%8E%8B"
    _attempt(page, "agent3@demo.kehu.dev", "kehu-demo-2026")
    assert page.url == f"{server}/"


def test_the_sign_in_pages_language_by_its_link_and_by_a_shared_address(server):
    """``?lang=en`` shows the page in English: a shared address on a first visit (nothing stored for a passer-by),
    and the page's own link remembers the choice for the browser and keeps the page to go to after signing in.
    The page is never compressed (it carries the session's token beside what its address says: BREACH)."""
    with httpx.Client(base_url=server, headers={"Accept-Encoding": "gzip"}) as browser:
        first = browser.get("/login?lang=en&next=/customers")
        assert first.status_code == 200 and '<html lang="en">' in first.text and ">Sign in</button>" in first.text
        assert "content-encoding" not in first.headers
        assert '<html lang="zh-CN">' in browser.get("/login").text  # not remembered: nothing was stored
        link = browser.get("/login?lang=en&next=/customers", follow_redirects=False)  # the session cookie now sent
        assert link.status_code == 303 and link.headers["location"] == "/login?next=%2Fcustomers"
        again = browser.get("/login")
        assert '<html lang="en">' in again.text and 'href="/login?lang=zh"' in again.text
