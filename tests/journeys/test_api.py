"""The journeys API as a marketer and as another dealer use it: drafts with their problems, publishing, enrolling,
the report; RFC 9457 answers for what is wrong."""

from __future__ import annotations

from tests.channels.conftest import Audience, email_template


def test_a_marketer_drafts_publishes_enrols_and_reads_the_report(client, login, session, audience: Audience):
    hq = login("hq.mkt@example.com", "correct-horse-1")
    made = client.post("/api/v1/journeys", headers=hq, json={"name": "新车主关怀"})
    assert made.status_code == 201, made.text
    journey = made.json()
    assert journey["status"] == "draft" and [n["type"] for n in journey["definition"]["nodes"]] == ["entry", "exit"]
    template = email_template(session, audience.principal(session, audience.hq_marketer))
    session.commit()
    drawing = {"trigger": {"type": "manual"},
               "nodes": [{"id": "entry", "type": "entry"}, {"id": "mail", "type": "send", "template_id": template.id},
                         {"id": "wait", "type": "wait", "days": 2}, {"id": "out", "type": "exit"}],
               "edges": [{"from": "entry", "to": "mail"}, {"from": "mail", "to": "wait"}]}
    saved = client.patch(f"/api/v1/journeys/{journey['id']}", headers=hq, json={"definition": drawing})
    assert saved.status_code == 200, saved.text
    problems = client.get(f"/api/v1/journeys/{journey['id']}/problems", headers=hq).json()
    assert {(p["field"], p["code"]) for p in problems} == {("definition.nodes[2]", "unconnected"),
                                                           ("definition.nodes[3]", "unreachable")}
    refused = client.post(f"/api/v1/journeys/{journey['id']}/publish", headers=hq)
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")
    assert {e["field"] for e in refused.json()["errors"]} == {"definition.nodes[2]", "definition.nodes[3]"}

    drawing["edges"].append({"from": "wait", "to": "out"})
    client.patch(f"/api/v1/journeys/{journey['id']}", headers=hq, json={"definition": drawing})
    live = client.post(f"/api/v1/journeys/{journey['id']}/publish", headers=hq)
    assert live.status_code == 200 and (live.json()["status"], live.json()["version"]) == ("live", 1)
    enrolled = client.post(f"/api/v1/journeys/{journey['id']}/enrolments", headers=hq,
                           json={"segment_id": audience.segment_id})
    assert enrolled.json() == {"enrolled": 5}
    listed = client.get(f"/api/v1/journeys/{journey['id']}/enrolments", headers=hq).json()["items"]
    assert len(listed) == 5 and {e["node"] for e in listed} == {"entry"}
    report = client.get(f"/api/v1/journeys/{journey['id']}/report", headers=hq).json()
    assert (report["entered"], report["active"]) == (5, 5)


def test_another_dealer_neither_sees_nor_enrols_into_a_dealers_journey(client, login, session, audience: Audience):
    a = login("a.mkt@example.com", "correct-horse-1")
    b = login("b.mkt@example.com", "correct-horse-1")
    made = client.post("/api/v1/journeys", headers=a, json={"name": "A店生日关怀"}).json()
    client.post(f"/api/v1/journeys/{made['id']}/publish", headers=a)
    for method, path, body in (("get", "", None), ("patch", "", {"name": "改名"}), ("post", "/pause", None),
                               ("get", "/report", None), ("get", "/enrolments", None),
                               ("post", "/enrolments", {"profile_ids": [audience.customers["wang"].id]})):
        answer = client.request(method.upper(), f"/api/v1/journeys/{made['id']}{path}", headers=b, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
    # A's marketer names B's customer: refused, and nothing says whose customer it is
    refused = client.post(f"/api/v1/journeys/{made['id']}/enrolments", headers=a,
                          json={"profile_ids": [audience.customers["wang"].id]})
    assert refused.status_code == 422 and "王芳" not in refused.text
    assert client.get("/api/v1/journeys", headers=b).json()["items"] == []


def test_a_role_without_journeys_cannot_draw_one(client, login, tree):
    sales = login("a.sales@example.com")
    assert client.post("/api/v1/journeys", headers=sales, json={"name": "x"}).status_code == 403


def test_a_journey_exported_comes_back_as_a_new_draft_and_a_bad_file_is_refused_plainly(client, login, session,
                                                                                      audience: Audience):
    hq = login("hq.mkt@example.com", "correct-horse-1")
    template = email_template(session, audience.principal(session, audience.hq_marketer))
    session.commit()
    drawing = {"trigger": {"type": "event", "event": "test_drive_booked"}, "goal": {"event": "order_placed"},
               "nodes": [{"id": "entry", "type": "entry", "position": {"x": 0, "y": 0}},
                         {"id": "mail", "type": "send", "template_id": template.id, "label": "邀约"},
                         {"id": "out", "type": "exit"}],
               "edges": [{"from": "entry", "to": "mail"}, {"from": "mail", "to": "out"}]}
    made = client.post("/api/v1/journeys", headers=hq, json={"name": "试驾邀约", "definition": drawing}).json()
    exported = client.get(f"/api/v1/journeys/{made['id']}/export", headers=hq)
    assert exported.status_code == 200
    file = exported.json()
    assert (file["format"], file["format_version"], file["name"]) == ("kehu.journey", 1, "试驾邀约")

    same_name = client.post("/api/v1/journeys/import", headers=hq, json=file)
    assert same_name.status_code == 409 and same_name.json()["errors"][0]["field"] == "name"
    copy = client.post("/api/v1/journeys/import", headers=hq, json={**file, "name": "试驾邀约（副本）"})
    assert copy.status_code == 201, copy.text
    assert copy.json()["status"] == "draft" and copy.json()["definition"] == made["definition"]

    wrong = client.post("/api/v1/journeys/import", headers=hq, json={**file, "format_version": 2, "name": "x"})
    assert wrong.status_code == 422 and wrong.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in wrong.json()["errors"]] == ["body.format_version"]
    # a dealer's marketer importing HQ's file: the HQ template is theirs to send (inherited), the draft is theirs
    b = login("b.mkt@example.com", "correct-horse-1")
    theirs = client.post("/api/v1/journeys/import", headers=b, json=file)
    assert theirs.status_code == 201, theirs.text
    # an id of nothing they may use is named, and nothing is made
    foreign = client.post("/api/v1/journeys/import", headers=b, json={
        **file, "name": "y", "definition": {**drawing, "exit_segment_id": 987654}})
    assert foreign.status_code == 422 and [e["field"] for e in foreign.json()["errors"]] == [
        "definition.exit_segment_id"]
