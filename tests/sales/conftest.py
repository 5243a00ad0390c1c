"""A call centre, routing rules and salespeople for the lead tests."""

from __future__ import annotations

import pytest

from tests.factories.tenancy import make_user


@pytest.fixture
def sales(tree, session, client, login):  # type: ignore[no-untyped-def]
    """The org tree with a call-centre agent at HQ and routing: Shanghai → dealer A (round robin between its
    two salespeople), Hangzhou → dealer B; everything else stays at HQ."""
    make_user(session, tree.system, tree.hq, "call_centre_agent", email="agent@example.com", name="呼叫中心")
    session.commit()
    admin = login("admin@example.com")
    for body in ({"name": "上海", "cities": ["上海"], "unit_id": tree.dealer_a.id, "priority": 10},
                 {"name": "杭州", "cities": ["杭州"], "unit_id": tree.dealer_b.id, "priority": 20}):
        response = client.post("/api/v1/routing-rules", headers=admin, json=body)
        assert response.status_code == 201, response.text
    return tree


def new_lead(client, headers, mobile: str, **body):  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/leads", headers=headers, json={"mobile": mobile, "source": "call_centre",
                                                                     **body})
    assert response.status_code in (200, 201), response.text
    return response.json()
