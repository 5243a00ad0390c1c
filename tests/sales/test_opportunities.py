"""Opportunities: the default pipeline, stage rules, won / lost / reopened, stage history with durations,
lead conversion in one step, dealer isolation, pipeline editing."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from kehu.core.db import utcnow
from kehu.sales import opportunities
from tests.sales.conftest import new_lead


class Clock:
    """The opportunities' clock, moved by hand."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):  # type: ignore[no-untyped-def]
    frozen = Clock()
    monkeypatch.setattr(opportunities, "_now", frozen)
    return frozen


def customer(client, headers, mobile: str, name: str = "客户") -> int:  # type: ignore[no-untyped-def]
    made = client.post("/api/v1/customers", headers=headers, json={"name": name, "mobile": mobile})
    assert made.status_code == 201, made.text
    return made.json()["id"]


def open_deal(client, headers, profile_id: int, **body):  # type: ignore[no-untyped-def]
    made = client.post("/api/v1/opportunities", headers=headers, json={"title": "ID.4 购车", "profile_id": profile_id,
                                                                       **body})
    assert made.status_code == 201, made.text
    return made.json()


def test_the_default_pipeline_has_the_seven_stages(tree, client, login):  # type: ignore[no-untyped-def]
    pipelines = client.get("/api/v1/pipelines", headers=login("a.sales@example.com")).json()
    assert len(pipelines) == 1 and pipelines[0]["is_default"]
    stages = pipelines[0]["stages"]
    assert [s["name_zh"] for s in stages] == ["销售线索", "机会建立", "方案提供", "方案评估", "商务谈判", "合同签定",
                                              "项目实施"]
    assert [s["probability"] for s in stages] == [10, 20, 40, 60, 75, 90, 100]
    assert [s["is_won"] for s in stages] == [False] * 6 + [True]


def test_a_deal_goes_through_its_stages_by_the_rules(tree, client, login, clock):  # type: ignore[no-untyped-def]
    sales = login("a.sales@example.com")
    admin = login("admin@example.com")
    car = client.post("/api/v1/products", headers=admin, json={"sku": "ID4-PRO", "name": "ID.4 Pro",
                                                               "price": "219900.00"})
    assert car.status_code == 201, car.text
    deal = open_deal(client, sales, customer(client, sales, "13900010001"),
                     products=[{"product_id": car.json()["id"], "quantity": 2},
                               {"name": "延保套餐", "unit_price": "5000.00"}], competitors=["特斯拉 Model Y"])
    assert (deal["stage_key"], deal["status"], deal["probability"]) == ("lead", "open", 10)
    assert deal["amount"] == "444800.00" and deal["weighted_amount"] == "44480.00"  # 2 × 219,900 + 5,000
    assert deal["owner_id"] == tree.a_sales.id and deal["unit_id"] == tree.dealer_a.id
    assert [p["name"] for p in deal["products"]] == ["ID.4 Pro", "延保套餐"]

    def move(stage: str):  # type: ignore[no-untyped-def]
        return client.post(f"/api/v1/opportunities/{deal['id']}/stage", headers=sales, json={"stage_key": stage})

    clock.advance(days=2)
    assert move("proposal").json()["probability"] == 40  # stages may be skipped forward
    clock.advance(days=3)
    no_date = move("negotiation")  # negotiation asks for the expected close date
    assert no_date.status_code == 422
    assert [(e["field"], e["code"]) for e in no_date.json()["errors"]] == [("expected_close_on", "required_by_stage")]
    assert client.get(f"/api/v1/opportunities/{deal['id']}", headers=sales).json()["stage_key"] == "proposal"
    unknown = move("magic")
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "stage_key"
    patched = client.patch(f"/api/v1/opportunities/{deal['id']}", headers=sales,
                           json={"expected_close_on": "2027-01-15", "probability": 55})
    assert patched.json()["probability"] == 55 and patched.json()["expected_close_on"] == "2027-01-15"
    assert move("negotiation").json()["probability"] == 75  # a move takes the stage's probability again
    clock.advance(days=1)
    assert move("evaluation").status_code == 200  # and back
    cleared = client.patch(f"/api/v1/opportunities/{deal['id']}", headers=sales, json={"amount": "0"})
    assert cleared.status_code == 422 and cleared.json()["errors"][0]["field"] == "amount"  # evaluation needs it
    clock.advance(days=4)
    lost = client.post(f"/api/v1/opportunities/{deal['id']}/close", headers=sales, json={"outcome": "lost"})
    assert lost.status_code == 422 and lost.json()["errors"][0]["field"] == "reason"
    lost = client.post(f"/api/v1/opportunities/{deal['id']}/close", headers=sales,
                       json={"outcome": "lost", "reason": "competitor", "note": "选了 Model Y"})
    assert (lost.json()["status"], lost.json()["probability"], lost.json()["stage_key"]) == ("lost", 0, "evaluation")
    assert move("contract").status_code == 409  # a closed deal is reopened first
    reopened = client.post(f"/api/v1/opportunities/{deal['id']}/reopen", headers=sales).json()
    assert (reopened["status"], reopened["stage_key"], reopened["close_reason"]) == ("open", "evaluation", None)
    clock.advance(days=1)
    won = client.post(f"/api/v1/opportunities/{deal['id']}/close", headers=sales, json={"outcome": "won"}).json()
    assert (won["status"], won["stage_key"], won["probability"]) == ("won", "delivery", 100)
    again = client.post(f"/api/v1/opportunities/{deal['id']}/close", headers=sales, json={"outcome": "lost",
                                                                                          "reason": "price"})
    assert again.status_code == 409

    history = client.get(f"/api/v1/opportunities/{deal['id']}/history", headers=sales).json()
    assert [h["kind"] for h in history] == ["won", "reopened", "lost", "stage", "stage", "updated", "stage",
                                            "created"]
    stays = [h["seconds_in_stage"] / 86400 for h in history if h["kind"] in ("created", "stage", "reopened")]
    assert stays == [1, 4, 1, 3, 2]  # evaluation again, evaluation until lost, negotiation, proposal, lead
    assert next(h for h in history if h["kind"] == "lost")["seconds_in_stage"] is None
    customer_now = client.get(f"/api/v1/customers/{deal['profile_id']}", headers=sales).json()["profile"]
    assert customer_now["lifecycle_stage"] == "customer"  # won: the customer bought


def test_a_lead_converts_in_one_step(sales, client, login):  # type: ignore[no-untyped-def]
    agent, owner = login("agent@example.com"), login("b.sales@example.com")
    lead = new_lead(client, agent, "13900011001", city="杭州", name="周先生", model_interest="ID.6")
    assert lead["owner_id"] == sales.b_sales.id
    refused = client.post(f"/api/v1/leads/{lead['id']}/status", headers=owner, json={"status": "converted"})
    assert refused.status_code == 409 and refused.json()["errors"][0]["code"] == "use_convert"
    stranger = client.post(f"/api/v1/leads/{lead['id']}/convert", headers=login("a.sales@example.com"), json={})
    assert stranger.status_code == 404  # dealer A does not see dealer B's lead
    both = client.post(f"/api/v1/leads/{lead['id']}/convert", headers=owner,
                       json={"account_id": 1, "new_account_name": "西湖物流"})
    assert both.status_code == 422
    done = client.post(f"/api/v1/leads/{lead['id']}/convert", headers=owner,
                       json={"new_account_name": "西湖物流有限公司", "amount": "260000",
                             "expected_close_on": "2027-02-01"})
    assert done.status_code == 201, done.text
    body = done.json()
    deal = body["opportunity"]
    assert body["lead"]["status"] == "converted"
    assert (deal["title"], deal["profile_id"], deal["lead_id"]) == ("周先生 · ID.6", lead["profile_id"], lead["id"])
    assert (deal["unit_id"], deal["owner_id"], deal["source"]) == (sales.dealer_b.id, sales.b_sales.id, "call_centre")
    account = client.get(f"/api/v1/accounts/{deal['account_id']}", headers=owner).json()
    assert account["account"]["name"] == "西湖物流有限公司"
    assert [m["id"] for m in account["members"]] == [lead["profile_id"]]
    profile = client.get(f"/api/v1/customers/{lead['profile_id']}", headers=owner).json()["profile"]
    assert profile["lifecycle_stage"] == "opportunity" and profile["attributes"]["lead_status"] == "converted"
    mine = client.get(f"/api/v1/customers/{lead['profile_id']}/opportunities", headers=owner).json()
    assert [o["id"] for o in mine] == [deal["id"]]
    timeline = client.get(f"/api/v1/customers/{lead['profile_id']}/timeline", headers=owner).json()["items"]
    opened = [i for i in timeline if i["kind"] == "opportunity"]
    assert [(i["action"], i["entity_id"], i["summary"]) for i in opened] == [("created", deal["id"], "周先生 · ID.6")]
    assert client.get(f"/api/v1/customers/{lead['profile_id']}/timeline", headers=login("a.sales@example.com")
                      ).status_code == 404  # another dealer sees neither the customer nor their deals
    twice = client.post(f"/api/v1/leads/{lead['id']}/convert", headers=owner, json={})
    assert twice.status_code == 409


def test_dealers_see_only_their_own_deals(tree, client, login):  # type: ignore[no-untyped-def]
    a_sales, b_sales = login("a.sales@example.com"), login("b.sales@example.com")
    mine = open_deal(client, a_sales, customer(client, a_sales, "13900012001"), amount="100000")
    theirs = open_deal(client, b_sales, customer(client, b_sales, "13900012002"), amount="200000")
    assert client.get(f"/api/v1/opportunities/{theirs['id']}", headers=a_sales).status_code == 404
    assert client.post(f"/api/v1/opportunities/{theirs['id']}/stage", headers=a_sales,
                       json={"stage_key": "qualified"}).status_code == 404
    listed = client.get("/api/v1/opportunities", headers=a_sales).json()
    assert [o["id"] for o in listed["items"]] == [mine["id"]]
    board = client.get("/api/v1/opportunities/board", headers=a_sales).json()
    assert [o["id"] for c in board["columns"] for o in c["items"]] == [mine["id"]]
    assert sum(c["count"] for c in board["columns"]) == 1
    other = login("boss@other.example.com")
    assert client.get("/api/v1/opportunities", headers=other).json()["total"] == 0
    assert client.get(f"/api/v1/opportunities/{mine['id']}", headers=other).status_code == 404
    # a deal cannot be for someone else's customer, nor placed where the creator may not
    foreign = client.post("/api/v1/opportunities", headers=a_sales,
                          json={"title": "x", "profile_id": theirs["profile_id"]})
    assert foreign.status_code == 422 and foreign.json()["errors"][0]["field"] == "profile_id"
    elsewhere = client.post("/api/v1/opportunities", headers=a_sales, json={
        "title": "x", "profile_id": mine["profile_id"], "unit_id": tree.dealer_b.id})
    assert elsewhere.status_code == 422 and elsewhere.json()["errors"][0]["field"] == "unit_id"
    assert elsewhere.json()["errors"][0]["code"] == "out_of_scope"
    # the manager reassigns within the dealer; the salesperson may not
    assert client.post(f"/api/v1/opportunities/{mine['id']}/assign", headers=a_sales,
                       json={"owner_id": tree.a_sales2.id}).status_code == 403
    moved = client.post(f"/api/v1/opportunities/{mine['id']}/assign", headers=login("a.manager@example.com"),
                        json={"owner_id": tree.a_sales2.id})
    assert moved.status_code == 200 and moved.json()["owner_id"] == tree.a_sales2.id
    assert client.get(f"/api/v1/opportunities/{mine['id']}", headers=a_sales).status_code == 404


def test_list_filters_and_sorting(tree, client, login):  # type: ignore[no-untyped-def]
    sales = login("a.sales@example.com")
    person = customer(client, sales, "13900013001", name="钱女士")
    small = open_deal(client, sales, person, title="小单", amount="50000", expected_close_on="2027-03-01")
    big = open_deal(client, sales, person, title="车队大单", amount="900000", expected_close_on="2027-01-10")
    undated = open_deal(client, sales, person, title="没日期", amount="1000")
    client.post(f"/api/v1/opportunities/{big['id']}/stage", headers=sales, json={"stage_key": "proposal"})

    def ids(**params):  # type: ignore[no-untyped-def]
        response = client.get("/api/v1/opportunities", headers=sales, params=params)
        assert response.status_code == 200, response.text
        return [o["id"] for o in response.json()["items"]]

    assert ids() == [big["id"], small["id"], undated["id"]]  # closing soonest first, undated last
    assert ids(sort="amount", descending=True) == [big["id"], small["id"], undated["id"]]
    assert ids(stage="proposal") == [big["id"]]
    assert ids(q="车队") == [big["id"]]
    assert ids(close_from="2027-02-01") == [small["id"]]
    bad = client.get("/api/v1/opportunities", headers=sales, params={"sort": "colour"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "sort"


def test_pipelines_are_edited_with_care(tree, client, login):  # type: ignore[no-untyped-def]
    admin = login("admin@example.com")
    pipeline = client.get("/api/v1/pipelines", headers=admin).json()[0]
    stages = [{k: s[k] for k in ("key", "name_zh", "name_en", "probability", "is_won", "required_fields")}
              for s in pipeline["stages"]]
    sales = login("a.sales@example.com")
    open_deal(client, sales, customer(client, sales, "13900014001"), stage_key="qualified")
    without = [s for s in stages if s["key"] != "qualified"]
    held = client.put(f"/api/v1/pipelines/{pipeline['id']}", headers=admin,
                      json={"name": "标准流程", "stages": without})
    assert held.status_code == 409 and held.json()["errors"][0]["code"] == "in_use"
    renamed = [{**s, "name_zh": "初步接洽"} if s["key"] == "qualified" else s for s in stages]
    renamed.insert(2, {"key": "test_drive", "name_zh": "试驾", "name_en": "Test drive", "probability": 30})
    saved = client.put(f"/api/v1/pipelines/{pipeline['id']}", headers=admin, json={"name": "标准流程",
                                                                                    "stages": renamed})
    assert saved.status_code == 200, saved.text
    assert [s["key"] for s in saved.json()["stages"]][:4] == ["lead", "qualified", "test_drive", "proposal"]
    assert saved.json()["stages"][1]["name_zh"] == "初步接洽"
    no_won = [{**s, "is_won": False} for s in stages]
    assert client.post("/api/v1/pipelines", headers=admin, json={"name": "二手车", "stages": no_won}).status_code == 422
    fleet = client.post("/api/v1/pipelines", headers=admin, json={"name": "大客户", "stages": [
        {"key": "visit", "name_zh": "拜访", "name_en": "Visit", "probability": 20},
        {"key": "tender", "name_zh": "招标", "name_en": "Tender", "probability": 50, "required_fields": ["amount"]},
        {"key": "signed", "name_zh": "签约", "name_en": "Signed", "probability": 100, "is_won": True}]})
    assert fleet.status_code == 201, fleet.text
    assert client.put(f"/api/v1/pipelines/{pipeline['id']}", headers=sales,
                      json={"name": "x", "stages": stages}).status_code == 403
    deal = open_deal(client, sales, customer(client, sales, "13900014002"), pipeline_id=fleet.json()["id"])
    assert deal["stage_key"] == "visit"
    wrong = client.post(f"/api/v1/opportunities/{deal['id']}/stage", headers=sales, json={"stage_key": "proposal"})
    assert wrong.status_code == 422 and "tender" in wrong.json()["errors"][0]["message"]
