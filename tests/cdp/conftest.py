from __future__ import annotations

import pytest

from tests.factories.cdp import make_source


@pytest.fixture
def web_source(session, tree):  # type: ignore[no-untyped-def]
    source, key = make_source(session, tree.system, "官网", tree.hq.id)
    session.commit()
    return source, key


@pytest.fixture
def dealer_source(session, tree):  # type: ignore[no-untyped-def]
    source, key = make_source(session, tree.system, "上海浦东店展厅", tree.dealer_a.id)
    session.commit()
    return source, key
