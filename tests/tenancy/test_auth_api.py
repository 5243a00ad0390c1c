"""Sign-in, tokens, API keys and what happens with bad credentials."""

from __future__ import annotations

from datetime import timedelta

import jwt
from sqlalchemy import func, select

from kehu.core.audit import AuditRecord
from kehu.core.db import utcnow
from kehu.tenancy.models import LoginAttempt


def test_token_endpoint_issues_a_bearer_token(client, tree):
    response = client.post("/api/v1/auth/token", data={"username": "ADMIN@example.com", "password": "correct-horse-1"})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["access_token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert me["user_id"] == tree.admin.id and me["roles"] == ["org_admin"]


def test_a_sign_in_is_audited_with_the_user_as_actor_in_few_statements(client, tree, session, clean_database):
    """A sign-in's audit record names who signed in, from where they sit, without reading their roles and unit tree
    first: under load each statement of the sign-in waited its turn (kehu bench load's sign-in ≤ 2 s)."""
    from sqlalchemy import event

    statements: list[str] = []
    engine = clean_database.engine

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        response = client.post("/api/v1/auth/token", data={"username": "admin@example.com",
                                                            "password": "correct-horse-1"})
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200
    signed = session.scalars(select(AuditRecord).where(AuditRecord.action == "login")
                             .order_by(AuditRecord.id.desc())).first()
    assert signed.actor_user_id == tree.admin.id and signed.actor_display == tree.admin.name
    assert signed.org_id == tree.admin.org_id and signed.unit_id == tree.admin.unit_id
    # the throttle's rows, the user, the attempt, the throttle reset, the user's last sign-in, the audit record
    assert not [s for s in statements if "roles" in s or "FROM organizations" in s], statements
    assert len(statements) <= 7, statements


def test_wrong_password_is_401_problem_and_audits_the_failed_attempt(client, tree, session):
    before = session.scalar(select(func.count()).select_from(AuditRecord))
    response = client.post("/api/v1/auth/token", data={"username": "admin@example.com", "password": "nope"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "password" in response.json()["detail"]
    failed = session.scalars(select(AuditRecord).where(AuditRecord.id > 0).order_by(AuditRecord.id.desc())).first()
    assert session.scalar(select(func.count()).select_from(AuditRecord)) == before + 1
    assert failed.action == "login_failed" and failed.entity_id == tree.admin.id and failed.actor_user_id is None
    assert session.scalar(select(func.count()).select_from(LoginAttempt).where(LoginAttempt.success.is_(False))) == 1


def test_missing_wrong_and_expired_tokens_are_401(client, tree, settings):
    assert client.get("/api/v1/users").status_code == 401
    assert client.get("/api/v1/users", headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401
    expired = jwt.encode({"sub": str(tree.admin.id), "ver": 1, "typ": "access",
                          "exp": int((utcnow() - timedelta(minutes=1)).timestamp())}, settings.secret_key, "HS256")
    response = client.get("/api/v1/users", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    forged = jwt.encode({"sub": str(tree.admin.id), "ver": 1, "typ": "access",
                         "exp": int((utcnow() + timedelta(minutes=5)).timestamp())}, "another-secret-" * 3, "HS256")
    assert client.get("/api/v1/users", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_a_token_that_was_accepted_is_refused_once_it_expires(client, tree, settings, monkeypatch):
    """The server keeps the claims of tokens it verified (kehu.core.security): it must still see one expire."""
    import kehu.core.security as security

    expires = utcnow() + timedelta(minutes=5)
    token = jwt.encode({"sub": str(tree.admin.id), "ver": tree.admin.token_version, "typ": "access",
                        "exp": int(expires.timestamp())}, settings.secret_key, "HS256")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert client.get("/api/v1/me", headers=headers).status_code == 200  # from what was kept
    later = expires.timestamp() + 1
    monkeypatch.setattr(security, "_now", lambda: later)
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_deactivating_a_user_revokes_their_tokens(client, tree, login):
    sales = login("a.sales@example.com")
    assert client.get("/api/v1/me", headers=sales).status_code == 200
    admin = login("admin@example.com")
    assert client.patch(f"/api/v1/users/{tree.a_sales.id}", headers=admin, json={"is_active": False}).status_code == 200
    assert client.get("/api/v1/me", headers=sales).status_code == 401
    relogin = client.post("/api/v1/auth/token", data={"username": "a.sales@example.com", "password": "correct-horse-1"})
    assert relogin.status_code == 401


def test_api_key_is_shown_once_works_and_can_be_revoked(client, tree, login, session):
    admin = login("admin@example.com")
    created = client.post("/api/v1/api-keys", headers=admin, json={"name": "数据仓库同步", "role": "hq_analyst"})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert key.startswith("kehu_")
    listed = client.get("/api/v1/api-keys", headers=admin).json()
    assert all("key" not in row for row in listed)
    me = client.get("/api/v1/me", headers={"X-API-Key": key})
    assert me.status_code == 200 and me.json()["api_key_id"] == created.json()["id"]
    assert client.get("/api/v1/units", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    # The analyst role reads, it does not write.
    assert client.post("/api/v1/units", headers={"X-API-Key": key}, json={
        "parent_id": tree.hq.id, "name": "x", "code": "X1", "kind": "region"}).status_code == 403
    assert client.delete(f"/api/v1/api-keys/{created.json()['id']}", headers=admin).status_code == 200
    assert client.get("/api/v1/me", headers={"X-API-Key": key}).status_code == 401
    assert client.get("/api/v1/me", headers={"X-API-Key": key[:-3] + "abc"}).status_code == 401
