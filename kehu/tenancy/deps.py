"""FastAPI dependencies every router shares: the unit of work and the acting principal."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request, Security
from fastapi.concurrency import contextmanager_in_threadpool, run_in_threadpool
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.orm import Session

from kehu.core.db import Database
from kehu.core.errors import Unauthorized
from kehu.core.security import API_KEY_PREFIX, decode_access_token
from kehu.core.settings import Settings
from kehu.tenancy import service
from kehu.tenancy.access import Principal

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


F = TypeVar("F", bound=Callable[..., Any])


def reads_only(endpoint: F) -> F:
    """Marks a route that only reads, with plain queries (no server-side cursor, no lock): its statements run
    without a transaction around them on PostgreSQL (``unit_of_work(reader=True)``). For the busiest reads."""
    endpoint.__kehu_reads_only__ = True  # type: ignore[attr-defined]
    return endpoint


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: committed before the response is sent, rolled back on any error; none at all
    for a route that ``reads_only``.

    The work that touches the database runs in the thread pool. A read-only route's session on PostgreSQL is made
    and closed here on the event loop instead, since neither does any I/O (its connection is checked out by the
    first statement, in the route's thread, and goes back in autocommit with nothing to roll back): two of a
    small read's four hand-overs between the loop and the pool, each a thread woken and the interpreter passed
    to it, measured at a tenth of a consultant's list of customers."""
    route = request.scope.get("route")
    reader = getattr(getattr(route, "endpoint", None), "__kehu_reads_only__", False)
    database: Database = request.app.state.database
    if not reader or database.is_sqlite:
        async with contextmanager_in_threadpool(database.unit_of_work(reader=reader)) as session:
            yield session
        return
    session = database.reader_sessionmaker()
    try:
        yield session
        if session.new or session.dirty or session.deleted:  # a write on the way (an API key's last use)
            await run_in_threadpool(session.commit)
    except BaseException:
        if session.in_transaction():  # a statement ran (the route's or the principal's): its connection goes back clean
            await run_in_threadpool(session.rollback)
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


@dataclass(frozen=True)
class Credentials:
    """Who a request says it is, read off its headers without touching the database: a bearer token's verified
    claims (its user and revocation version) or an API key. ``principal_of`` makes the principal."""

    user_id: int | None = None
    token_version: int | None = None
    api_key: str | None = None


async def get_credentials(
    request: Request,
    token: Annotated[str | None, Security(oauth2)] = None,
    api_key: Annotated[str | None, Security(api_key_header)] = None,
) -> Credentials:
    """A bearer JWT (users) or an API key (``X-API-Key``, or a bearer value that starts with ``kehu_``). Only
    CPU work (a token's signature is checked once a process), so on the event loop: no hand-over to a thread."""
    return credentials_of(request, token, api_key)


def credentials_of(request: Request, token: str | None, api_key: str | None) -> Credentials:
    if token and token.startswith(API_KEY_PREFIX):
        api_key, token = token, None
    if api_key:
        return Credentials(api_key=api_key)
    if not token:
        raise Unauthorized("Send a bearer token (POST /api/v1/auth/token) or an X-API-Key header.")
    claims = decode_access_token(request.app.state.secret_key, token)
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError) as exc:
        raise Unauthorized("The access token is not valid.") from exc
    return Credentials(user_id=user_id, token_version=claims["ver"])


CredentialsDep = Annotated[Credentials, Depends(get_credentials)]


def principal_of(session: Session, credentials: Credentials) -> Principal:
    """The acting principal of ``credentials`` (the user's fingerprint read, a revoked token or key refused)."""
    if credentials.api_key is not None:
        return service.principal_for_api_key(session, credentials.api_key)
    assert credentials.user_id is not None
    return service.principal_for_user(session, credentials.user_id, token_version=credentials.token_version)


def get_principal(session: SessionDep, credentials: CredentialsDep) -> Principal:
    return principal_of(session, credentials)


R = TypeVar("R")


async def in_one_hop(session: Session, credentials: Credentials, answer: Callable[[Principal], R]) -> R:
    """``answer(principal)`` with the principal made in the same trip to the thread pool: for the busiest reads,
    declared ``async`` with ``CredentialsDep``. A sync route with ``PrincipalDep`` takes two trips (the principal's,
    then the route's), each a thread woken and the interpreter handed to it and back: half a millisecond of the
    server's CPU a request, a tenth of a consultant's page of customers."""
    return await run_in_threadpool(lambda: answer(principal_of(session, credentials)))


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def allowed_to(setting: str) -> Callable[..., None]:
    """A guard for /docs, /openapi.json or /metrics as ``settings.<setting>`` says: "open" lets anyone in,
    "signed_in" wants a bearer token or API key (as any API call), a UI session, or for metrics the
    ``metrics_token`` (what Prometheus sends as its bearer). "off" routes are not registered at all."""

    def check(request: Request, session: SessionDep) -> None:
        settings: Settings = request.app.state.settings
        if getattr(settings, setting) == "open":
            return
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        bearer = value.strip() if scheme.lower() == "bearer" else ""
        if (setting == "metrics" and settings.metrics_token and bearer
                and hmac.compare_digest(bearer.encode(), settings.metrics_token.encode())):
            return
        api_key = request.headers.get("x-api-key")
        if bearer or api_key:
            principal_of(session, credentials_of(request, bearer or None, api_key))  # 401 unless valid
            return
        ui_signed_in = getattr(request.app.state, "ui_signed_in", None)
        if ui_signed_in is not None and ui_signed_in(request, session):
            return
        raise Unauthorized(f"Sign in first: this server shows {request.url.path} to signed-in users only "
                           f"(setting {setting}).")

    return check


Limit = Annotated[int, Query(ge=1, le=500, description="Items per page (1–500).")]
Cursor = Annotated[str | None, Query(description="The next_cursor of the previous page.")]
