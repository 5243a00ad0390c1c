"""Sign-in throttling (issue 19, item 6): failures slow the next try down, by account and by client address, with a
doubling wait kept in the database; nobody can lock another user out, and the audit sees it all."""

from __future__ import annotations

import time
import warnings
from datetime import timedelta

from sqlalchemy import func, select, update

from kehu.app import create_app
from kehu.core.audit import AuditRecord
from kehu.core.db import utcnow
from kehu.tenancy.models import LoginThrottle

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN = "/api/v1/auth/token"


def _try(client, email: str, password: str):  # type: ignore[no-untyped-def]
    return client.post(TOKEN, data={"username": email, "password": password})


def _end_the_wait(session) -> None:  # type: ignore[no-untyped-def]
    """As if the wait were over (rather than sleeping through 2, 4, 8 … seconds)."""
    session.execute(update(LoginThrottle).values(blocked_until=utcnow() - timedelta(milliseconds=1)))
    session.commit()


def test_the_right_password_signs_in_after_a_short_wait_not_a_lock(client, tree):
    for _ in range(3):  # the test settings leave 3 failures free
        assert _try(client, "admin@example.com", "wrong-guess").status_code == 401
    waiting = _try(client, "admin@example.com", "correct-horse-1")
    assert waiting.status_code == 429
    assert waiting.headers["content-type"].startswith("application/problem+json")
    assert waiting.headers["Retry-After"] == "1", "the first wait is one second, not a 15-minute lock"
    assert waiting.json()["retry_after"] == 1
    time.sleep(1.05)
    assert _try(client, "admin@example.com", "correct-horse-1").status_code == 200
    # a success starts the account's count again: three more failures are free
    for _ in range(3):
        assert _try(client, "admin@example.com", "wrong-guess").status_code == 401


def test_each_further_failure_doubles_the_wait_up_to_the_cap(client, tree, session):
    for _ in range(3):
        _try(client, "admin@example.com", "wrong-guess")
    waits = []
    for _ in range(12):
        _end_the_wait(session)
        assert _try(client, "admin@example.com", "wrong-guess").status_code == 401
        waits.append(int(_try(client, "admin@example.com", "wrong-guess").headers["Retry-After"]))
    assert waits[:6] == [2, 4, 8, 16, 32, 64]
    assert max(waits) == 900 and waits[-1] == 900  # capped at 15 minutes


def test_one_address_spraying_many_accounts_is_slowed_down(app, client, tree, settings, clean_database):
    sprayed = create_app(settings.model_copy(update={"login_free_failures_per_address": 4}), clean_database,
                         with_ui=False, embedded_worker=False)
    with TestClient(sprayed, raise_server_exceptions=False) as sprayer:
        for i in range(4):  # one guess at each of four accounts: no account's own count is reached
            assert _try(sprayer, f"user{i}@example.com", "Password1!").status_code == 401
        refused = _try(sprayer, "a.sales@example.com", "Password1!")
        assert refused.status_code == 429, "password spraying from one address is throttled"
        assert int(refused.headers["Retry-After"]) >= 1


def test_the_wait_is_kept_in_the_database_for_every_server(client, tree, settings, clean_database, session):
    other_server = create_app(settings, clean_database, with_ui=False, embedded_worker=False)
    with TestClient(other_server, raise_server_exceptions=False) as other:
        for _ in range(3):
            _try(client, "admin@example.com", "wrong-guess")
        # the first wait is one second, which a busy CI machine can spend between two requests: the wait the
        # failures started is made longer, so what is tested is only that the other server sees it
        session.execute(update(LoginThrottle).where(LoginThrottle.blocked_until.is_not(None))
                        .values(blocked_until=utcnow() + timedelta(minutes=1)))
        session.commit()
        assert _try(other, "admin@example.com", "correct-horse-1").status_code == 429


def test_failures_and_refused_tries_are_in_the_audit_once_per_wait(client, tree, session):
    for _ in range(3):
        _try(client, "admin@example.com", "wrong-guess")
    for _ in range(5):  # hammering during one wait is noted once
        assert _try(client, "admin@example.com", "wrong-guess").status_code == 429
    actions = list(session.scalars(select(AuditRecord.action).where(AuditRecord.entity_id == tree.admin.id,
                                                                    AuditRecord.action.like("login%"))))
    assert actions.count("login_failed") == 3
    assert actions.count("login_throttled") == 1
    throttled = session.scalar(select(AuditRecord).where(AuditRecord.action == "login_throttled"))
    assert throttled.org_id == tree.org.id and "repeated failures" in throttled.summary


def test_an_unknown_e_mail_is_throttled_like_a_real_one(client, tree, session):
    """Otherwise the wait would tell which e-mails have accounts."""
    for _ in range(3):
        _try(client, "nobody@example.com", "wrong-guess")
    assert _try(client, "nobody@example.com", "wrong-guess").status_code == 429
    assert session.scalar(select(func.count()).select_from(LoginThrottle)
                          .where(LoginThrottle.key == "account:nobody@example.com")) == 1
