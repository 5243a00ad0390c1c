"""Sales reports: the forecast rolls up dealer → region → HQ (sums equal the sum of the parts, within the
reader's scope), the funnel's stage counts and rates, cycle times, and first-contact service levels."""

from __future__ import annotations

from datetime import date, timedelta

from kehu.core.db import utcnow
from kehu.sales import opportunities
from kehu.sales.models import Lead
from tests.sales.conftest import new_lead
from tests.sales.test_opportunities import Clock, customer, open_deal


def _month(offset: int) -> tuple[str, str]:
    """An expected close date ``offset`` months from now, and its month key."""
    today = date.today().replace(day=15)
    year, month = today.year + (today.month - 1 + offset) // 12, (today.month - 1 + offset) % 12 + 1
    return f"{year:04d}-{month:02d}-15", f"{year:04d}-{month:02d}"


def _row(report, unit_id):  # type: ignore[no-untyped-def]
    return next(r for r in report["units"] if r["unit_id"] == unit_id)


def test_the_forecast_rolls_up_the_tree_within_scope(tree, client, login):  # type: ignore[no-untyped-def]
    (this_day, this_month), (next_day, next_month) = _month(0), _month(1)
    a_sales, b_sales, c_sales = (login(f"{x}.sales@example.com") for x in "abc")
    east = login("east@example.com")
    a1 = open_deal(client, a_sales, customer(client, a_sales, "13900020001"), amount="100000",
                   expected_close_on=this_day, stage_key="proposal")  # 40 %
    open_deal(client, a_sales, customer(client, a_sales, "13900020002"), amount="300000",
              expected_close_on=next_day, stage_key="contract")  # 90 %
    open_deal(client, b_sales, customer(client, b_sales, "13900020003"), amount="200000",
              expected_close_on=this_day, stage_key="negotiation")  # 75 %
    c1 = open_deal(client, c_sales, customer(client, c_sales, "13900020004"), amount="500000",
                   expected_close_on=next_day, stage_key="evaluation")  # 60 %
    won = open_deal(client, c_sales, customer(client, c_sales, "13900020005"), amount="250000",
                    expected_close_on=this_day)
    assert client.post(f"/api/v1/opportunities/{won['id']}/close", headers=c_sales,
                       json={"outcome": "won"}).status_code == 200
    lost = open_deal(client, a_sales, customer(client, a_sales, "13900020006"), amount="999999",
                     expected_close_on=this_day)
    client.post(f"/api/v1/opportunities/{lost['id']}/close", headers=a_sales, json={"outcome": "lost",
                                                                                    "reason": "price"})
    # one deal held by the region itself (a fleet deal of the regional office)
    admin = login("admin@example.com")
    open_deal(client, admin, customer(client, admin, "13900020007"), amount="1000000", expected_close_on=this_day,
              unit_id=tree.east.id, owner_id=tree.east_manager.id, stage_key="qualified")  # 20 %

    report = client.get("/api/v1/reports/forecast", headers=login("admin@example.com"), params={"months": 3})
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["months"][:2] == [this_month, next_month]
    hq, region_east, region_north = (_row(body, u.id) for u in (tree.hq, tree.east, tree.north))
    a, b, c = (_row(body, u.id) for u in (tree.dealer_a, tree.dealer_b, tree.dealer_c))
    assert a["total"][this_month]["weighted"] == 40000 and a["total"][next_month]["weighted"] == 270000
    assert b["total"][this_month]["weighted"] == 150000
    assert c["total"][this_month]["won"] == 250000 and c["total"][next_month]["weighted"] == 300000
    assert region_east["own"][this_month]["weighted"] == 200000
    for month in (this_month, next_month):
        for measure in ("weighted", "pipeline"):
            parts = [r["total"].get(month, {}).get(measure, 0) for r in (a, b)]
            own = region_east["own"].get(month, {}).get(measure, 0)
            assert region_east["total"][month][measure] == sum(parts) + own
            assert hq["total"][month][measure] == (region_east["total"][month][measure]
                                                   + region_north["total"].get(month, {}).get(measure, 0))
    assert hq["total"][this_month]["pipeline"] == 100000 + 200000 + 1000000  # lost and won deals are not open
    # a dealer's salesperson sees their own deals only, however high they ask
    mine = client.get("/api/v1/reports/forecast", headers=a_sales).json()
    assert [r["unit_id"] for r in mine["units"]] == [tree.dealer_a.id]
    assert _row(mine, tree.dealer_a.id)["total"][this_month]["weighted"] == 40000
    above = client.get("/api/v1/reports/forecast", headers=a_sales, params={"unit_id": tree.hq.id})
    assert above.status_code == 422 and above.json()["errors"][0]["field"] == "unit_id"
    regional = client.get("/api/v1/reports/forecast", headers=east).json()
    assert {r["unit_id"] for r in regional["units"]} == {tree.east.id, tree.dealer_a.id, tree.dealer_b.id}
    assert _row(regional, tree.east.id)["total"][this_month]["weighted"] == 40000 + 150000 + 200000
    assert a1["id"] and c1["id"]


def test_the_funnel_counts_how_far_deals_got(tree, client, login, monkeypatch):  # type: ignore[no-untyped-def]
    clock = Clock()
    monkeypatch.setattr(opportunities, "_now", clock)
    sales = login("a.sales@example.com")
    deals = [open_deal(client, sales, customer(client, sales, f"1390002100{n}"), amount="100000",
                       expected_close_on="2027-06-01") for n in range(4)]

    def move(deal, stage):  # type: ignore[no-untyped-def]
        response = client.post(f"/api/v1/opportunities/{deal['id']}/stage", headers=sales, json={"stage_key": stage})
        assert response.status_code == 200, response.text

    clock.advance(days=2)
    for deal in deals[:3]:
        move(deal, "qualified")
    clock.advance(days=4)
    move(deals[0], "proposal")
    move(deals[1], "proposal")
    clock.advance(days=10)
    client.post(f"/api/v1/opportunities/{deals[0]['id']}/close", headers=sales, json={"outcome": "won"})
    client.post(f"/api/v1/opportunities/{deals[1]['id']}/close", headers=sales, json={"outcome": "lost",
                                                                                      "reason": "price"})
    report = client.get("/api/v1/reports/funnel", headers=login("admin@example.com")).json()
    a = _row(report, tree.dealer_a.id)
    assert a["reached"] == {"lead": 4, "qualified": 3, "proposal": 2, "evaluation": 1, "negotiation": 1,
                            "contract": 1, "delivery": 1}
    assert a["rates"]["qualified"] == 0.75 and a["rates"]["proposal"] == 2 / 3
    assert (a["won"], a["lost"], a["open"], a["win_rate"]) == (1, 1, 2, 0.5)
    assert abs(a["days_to_win"] - 16) < 0.01
    assert abs(a["days_in_stage"]["lead"] - 2) < 0.01 and abs(a["days_in_stage"]["qualified"] - 4) < 0.01
    assert abs(a["days_in_stage"]["proposal"] - 10) < 0.01
    hq = _row(report, tree.hq.id)
    assert hq["reached"] == a["reached"] and hq["win_rate"] == 0.5
    assert client.get("/api/v1/reports/funnel", headers=login("b.sales@example.com")).json()["units"][0][
        "opened"] == 0


def test_first_contact_service_levels_count_breaches(sales, client, login, session):  # type: ignore[no-untyped-def]
    agent = login("agent@example.com")
    leads = [new_lead(client, agent, f"1390002200{n}", city="上海") for n in range(4)]
    new_lead(client, agent, "13900022100", city="杭州")
    now = utcnow()
    rows = [session.get(Lead, lead["id"]) for lead in leads]
    rows[0].first_contacted_at = rows[0].assigned_at + timedelta(hours=1)  # in time
    rows[1].first_contacted_at = rows[1].first_contact_due_at + timedelta(hours=3)  # late
    rows[1].first_contacted_at = max(rows[1].first_contacted_at, now)
    rows[2].first_contact_due_at = now - timedelta(hours=2)  # still waiting, past its time
    rows[2].escalated_at = now - timedelta(hours=1)
    session.commit()
    report = client.get("/api/v1/reports/lead-service-levels", headers=login("admin@example.com")).json()
    a = _row(report, sales.dealer_a.id)
    assert (a["assigned"], a["in_time"], a["late"], a["waiting_late"], a["waiting"], a["escalated"]) == \
        (4, 1, 1, 1, 1, 1)
    assert a["breaches"] == 2 and a["in_time_rate"] == 1 / 3
    assert _row(report, sales.east.id)["assigned"] == 5 and _row(report, sales.hq.id)["breaches"] == 2
    mine = client.get("/api/v1/reports/lead-service-levels", headers=login("b.sales@example.com")).json()
    assert _row(mine, sales.dealer_b.id)["assigned"] == 1


def test_a_salesperson_in_a_team_sees_their_deals_held_by_the_dealer(tree, client, login, session):  # type: ignore[no-untyped-def]
    """Issue 20: a salesperson works in a team of the dealer while their deals and leads sit on the dealer; the
    report rooted at the team showed ¥0."""
    from tests.factories.tenancy import make_unit, make_user

    team = make_unit(session, tree.system, tree.dealer_a, "展厅一组", "team", "SH001-T1")
    seller = make_user(session, tree.system, team, "dealer_sales", email="team.sales@example.com", name="孙销售")
    session.commit()
    this_day, this_month = _month(0)
    manager = login("a.manager@example.com")
    deal = open_deal(client, manager, customer(client, manager, "13900020031"), amount="259800",
                     expected_close_on=this_day, stage_key="proposal", unit_id=tree.dealer_a.id, owner_id=seller.id)
    assert deal["unit_id"] == tree.dealer_a.id
    mine = client.get("/api/v1/reports/forecast", headers=login("team.sales@example.com")).json()
    assert mine["units"][0]["unit_id"] == tree.dealer_a.id  # the report starts at the dealer
    assert _row(mine, tree.dealer_a.id)["total"][this_month]["pipeline"] == 259800
    assert _row(mine, tree.dealer_a.id)["total"][this_month]["weighted"] == 259800 * 0.4
    funnel = client.get("/api/v1/reports/funnel", headers=login("team.sales@example.com"))
    assert funnel.status_code == 200 and funnel.json()["units"][0]["unit_id"] == tree.dealer_a.id
    # still their own deals only: the dealer's other deals stay out
    open_deal(client, manager, customer(client, manager, "13900020032"), amount="100000", expected_close_on=this_day)
    again = client.get("/api/v1/reports/forecast", headers=login("team.sales@example.com")).json()
    assert _row(again, tree.dealer_a.id)["total"][this_month]["pipeline"] == 259800
    above = client.get("/api/v1/reports/forecast", headers=login("team.sales@example.com"),
                       params={"unit_id": tree.east.id})
    assert above.status_code == 422
