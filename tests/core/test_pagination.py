"""Numbered pages count their rows only up to a cap: a customer list of a million profiles counted every one of
them for each page it showed."""

from __future__ import annotations

from kehu.cdp import schemas, service
from kehu.core import pagination


def test_a_page_counts_its_rows_only_up_to_the_cap_and_says_there_are_more(session, tree, monkeypatch):
    monkeypatch.setattr(pagination, "COUNT_CAP", 3)
    for n in range(5):
        service.create_profile(session, tree.system, data=schemas.ProfileCreate(name=f"客户{n}",
                                                                                  unit_id=tree.dealer_a.id))
    session.commit()
    first = service.page_profiles(session, tree.system, sort="name", descending=False, page=1, per_page=2)
    assert first.total == 4 and first.more  # "of 3+": four rows counted, no more
    assert [p.name for p in first.items] == ["客户0", "客户1"]
    last = service.page_profiles(session, tree.system, sort="name", descending=False, page=3, per_page=2)
    assert [p.name for p in last.items] == ["客户4"]  # paging past the cap still finds the rows
    few = service.page_profiles(session, tree.system, q="客户1", page=1, per_page=2)
    assert few.total == 1 and not few.more
