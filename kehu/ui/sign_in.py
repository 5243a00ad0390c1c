"""Signing in to the web UI: the sign-in page, a plain HTML form, and its post (``login_submit``), which checks the
password (throttled, recorded: kehu.tenancy.service.authenticate) and starts the browser's UI session."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from nicegui import app as gui_app
from nicegui import ui

from kehu.core.errors import KehuError
from kehu.tenancy import service
from kehu.ui.shell import context, locale, signed_in, toggle_language, tr


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


async def login_page() -> None:
    """The sign-in form posts to ``login_submit`` as a plain HTML form: what the browser shows is what is sent,
    before and without the page's live connection. Typed into while that connection was still being made (a loaded
    server, a slow network), the fields' changes waited to be sent and could arrive after the press of the button,
    which then signed in with an empty e-mail or did nothing at all."""
    storage = gui_app.storage.user
    flash = storage.pop(LOGIN_FLASH) if LOGIN_FLASH in storage else {}  # (no write for a visitor without one)
    if await signed_in() is not None:
        ui.navigate.to("/")
        return
    ui.page_title(f"{tr('login.title')} · kehu 客户")
    ui.colors(primary="#1f4e79")
    token = _login_token(ui.context.client.request.session["id"]).decode()
    with ui.column().classes("absolute-center items-center gap-6"):
        with ui.row().classes("items-center gap-3"):
            ui.label("kehu 客户").classes("text-4xl font-bold text-primary")
        ui.label(tr("app.tagline")).classes("text-grey-7")
        with ui.card().classes("w-96 p-6"), \
                ui.element("form").props('method="post" action="/login"').classes("nicegui-column w-full"):
            ui.element("input").props(f'type="hidden" name="token" value="{token}"')
            ui.label(tr("login.title")).classes("text-xl font-semibold")
            # (required: the browser asks for an empty field rather than sending a try that counts as failed)
            email = ui.input(tr("login.email"), value=flash.get("email", "")).props(
                f'outlined required name="email" autocomplete="username" maxlength="{EMAIL_LENGTH}"').classes(
                "w-full").mark("login-email")
            password = ui.input(tr("login.password"), password=True, password_toggle_button=True).props(
                'outlined required name="password" autocomplete="current-password"').classes("w-full").mark(
                "login-password")
            # the field to type into first: the e-mail, or the password when the e-mail is kept from a refusal
            (password if flash.get("email") else email).props("autofocus")
            ui.label(flash.get("message", "")).classes("text-negative text-sm")
            ui.button(tr("login.submit")).props('type="submit"').classes("w-full mt-2").mark("login-submit")
        ui.button("English" if locale() == "zh" else "中文", on_click=toggle_language).props("flat dense")


async def login_submit(request: Request) -> Response:
    """The sign-in form's post: signed in, to the home page under a new session id (a session id someone planted
    before the sign-in is worth nothing after it); refused (a wrong password, throttled, a form of another session),
    back to the form with why and the e-mail typed. Each attempt with an e-mail and a password is recorded
    (throttling)."""
    async with request.form(max_files=0, max_fields=8, max_part_size=LOGIN_BODY_BYTES) as form:
        email, password, token = (str(form.get(name) or "") for name in ("email", "password", "token"))

    def refused(message: str) -> Response:
        # Only a browser that has a session (it loaded the form) gets the message: a post without one would leave
        # a file of storage behind that no one ever reads.
        if request.cookies.get("session"):
            gui_app.storage.user[LOGIN_FLASH] = {"message": message, "email": email[:EMAIL_LENGTH]}
        return RedirectResponse("/login", status_code=303)

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
    return RedirectResponse("/", status_code=303)
