"""Signing in to the web UI: the sign-in page, plain HTML (sign_in.html), and its post (``login_submit``), which
checks the password (throttled, recorded: kehu.tenancy.service.authenticate) and starts the browser's UI session."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from nicegui import app as gui_app

from kehu.core.errors import KehuError
from kehu.core.i18n import normalise_locale, t
from kehu.tenancy import service
from kehu.ui.assets import first_page_assets
from kehu.ui.middlewares import is_local_path
from kehu.ui.shell import context, locale, signed_in, tr


def _sign_in(email: str, password: str, ip: str, policy: service.LoginPolicy) -> dict[str, Any] | KehuError:
    """Check the password and record the attempt (committed even when it fails, so throttling counts it): the
    signed-in user's session values, or the error to show."""
    session = context().database.sessionmaker()
    try:
        user = service.authenticate(session, email=email, password=password, ip=ip, policy=policy)
        now = time.time()
        signed = {"auth": {"user_id": user.id, "ver": user.token_version, "at": now, "seen": now},
                  "locale": user.locale}
        session.commit()
        return signed
    except KehuError as error:
        session.commit()  # the failed attempt counts towards throttling
        return error
    finally:
        session.close()


def _sign_in_refusal(error: KehuError) -> str:
    if error.status == 429:
        seconds = int(error.extra.get("retry_after", 1))
        return (tr("login.throttled_seconds", seconds=seconds) if seconds < 120
                else tr("login.throttled_minutes", minutes=(seconds + 59) // 60))
    return tr("login.failed") if error.status == 401 else error.detail


LOGIN_FLASH = "login_flash"  # the visitor's storage: what a refused sign-in shows on the page it returns to
LOGIN_BODY_BYTES = 16 * 1024  # a sign-in form's post at most (as kehu.app limits the body of /login)
EMAIL_LENGTH = 254  # the longest e-mail address (RFC 5321's path less its brackets), as login_attempts stores it


def _login_token(session_id: str) -> bytes:
    """The sign-in form's token for a browser's session: a form posted from another site (forcing a visitor into
    someone else's account) comes without the session it was made for, and its token does not match."""
    key = context().settings.effective_secret_key().encode()
    return hmac.new(key, f"login:{session_id}".encode(), hashlib.sha256).hexdigest().encode()


_PAGE = jinja2.Environment(autoescape=True).from_string(
    (Path(__file__).parent / "sign_in.html").read_text(encoding="utf-8"))
NEXT_LENGTH = 2048  # the longest address kept to go to after signing in


def local_target(value: str | None) -> str:
    """Where to go after signing in: a page of this site that the visitor asked for, else the home page — never an
    address of another site (``//evil.example``, ``/\\evil.example`` or ``https://…`` would make the sign-in page
    an open redirect), nor the sign-in page itself."""
    if (not value or len(value) > NEXT_LENGTH or not is_local_path(value)
            or value.split("?", 1)[0].rstrip("/") == "/login"):
        return "/"
    return value


def login_url(target: str | None = None, **more: str) -> str:
    """The sign-in page's address, with the page to go to after it (if not the home page)."""
    target = local_target(target)
    query = {**({"next": target} if target != "/" else {}), **more}
    return "/login" + (f"?{urlencode(query)}" if query else "")


async def login_page(request: Request) -> Response:
    """The sign-in page: plain HTML, shown and usable as soon as it arrives — no Vue, Quasar or live connection to
    start first (under load that took 0.5–1.2 s before the form could be typed into; kehu bench load). It fetches, at
    low priority while the visitor types, what the home page will load (``prefetch``). The form posts to
    ``login_submit``: what the browser shows is what is sent. ``?lang=en|zh`` switches the page's language;
    ``?next=/…`` is the page to open after signing in."""
    target = local_target(request.query_params.get("next"))
    storage = gui_app.storage.user
    asked = request.query_params.get("lang")
    if asked is not None and request.cookies.get("session"):
        # the language link of a browser that has loaded the page: remembered, then the plain address (a first
        # visit by a shared link is shown in its language without storing anything for a passer-by)
        storage["locale"] = normalise_locale(asked)
        return RedirectResponse(login_url(target), status_code=303)
    flash = storage.pop(LOGIN_FLASH) if LOGIN_FLASH in storage else {}  # (no write for a visitor without one)
    if await signed_in() is not None:
        return RedirectResponse(target, status_code=303)
    here = normalise_locale(asked) if asked is not None else locale()
    other = "en" if here == "zh" else "zh"

    def say(key: str) -> str:
        return t(key, here)

    html = _PAGE.render(
        lang="zh-CN" if here == "zh" else "en", title=say("login.title"), tagline=say("app.tagline"),
        token=_login_token(request.session["id"]).decode(), next=target if target != "/" else "",
        email=flash.get("email", ""), email_label=say("login.email"), email_length=EMAIL_LENGTH,
        password_label=say("login.password"), reveal=say("login.reveal"), submit=say("login.submit"),
        message=flash.get("message", ""), prefetch=first_page_assets(),
        language_url=login_url(target, lang=other), other_lang=other,
        other_language="English" if other == "en" else "中文")
    # the page carries a token of this browser's session: never kept by a cache or shown from one
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


async def login_submit(request: Request) -> Response:
    """The sign-in form's post: signed in, to the home page under a new session id (a session id someone planted
    before the sign-in is worth nothing after it); refused (a wrong password, throttled, a form of another session),
    back to the form with why and the e-mail typed. Each attempt with an e-mail and a password is recorded
    (throttling)."""
    async with request.form(max_files=0, max_fields=8, max_part_size=LOGIN_BODY_BYTES) as form:
        email, password, token, target = (str(form.get(name) or "") for name in ("email", "password", "token", "next"))
    target = local_target(target)

    def refused(message: str) -> Response:
        # Only a browser that has a session (it loaded the form) gets the message: a post without one would leave
        # a file of storage behind that no one ever reads.
        if request.cookies.get("session"):
            gui_app.storage.user[LOGIN_FLASH] = {"message": message, "email": email[:EMAIL_LENGTH]}
        return RedirectResponse(login_url(target), status_code=303)

    if not hmac.compare_digest(token.encode(), _login_token(request.session["id"])):
        return refused(tr("login.expired"))
    if not email.strip() or not password:
        return refused(tr("login.missing"))
    if len(email) > EMAIL_LENGTH or "\x00" in email:  # no account has such an address (nor can the attempt be stored)
        return refused(tr("login.failed"))
    policy = service.LoginPolicy.of(context().settings)
    ip = request.client.host if request.client else ""  # the proxy's X-Forwarded-For when uvicorn trusts it
    signed = await asyncio.to_thread(_sign_in, email, password, ip, policy)
    if isinstance(signed, KehuError):
        return refused(_sign_in_refusal(signed))
    kept = {key: value for key, value in gui_app.storage.user.items() if key != LOGIN_FLASH}  # the language chosen
    gui_app.storage.user.clear()
    request.session["id"] = str(uuid.uuid4())  # the cookie Starlette sends back carries the new one
    await gui_app.storage._create_user_storage(request.session["id"])  # NiceGUI's own step for a new session
    gui_app.storage.user.update(kept)
    gui_app.storage.user["auth"] = signed["auth"]
    gui_app.storage.user.setdefault("locale", signed["locale"])
    return RedirectResponse(target, status_code=303)
