"""A condition on personal data is no oracle: without pii.read a marketer may ask only whether a masked field
is set. Before, a preview of ``mobile contains …`` told, by its count, whether a guess was right: 72 previews
rebuilt a masked mobile digit by digit. Now such a condition is refused (403, naming the field), in the preview,
in a saved segment and in an edit; pii.read holders and the platform's own refreshes ask what they like."""

from __future__ import annotations

import pytest

from kehu.cdp import fields


def field(name: str, op: str, value: object = None) -> dict[str, object]:
    return {"type": "field", "field": name, "op": op, "value": value}


@pytest.fixture
def marketer(people, client, login, session, tree):  # type: ignore[no-untyped-def]
    fields.create_field(session, tree.system, {"key": "id_card_no", "label_zh": "身份证号", "label_en": "ID card",
                                               "type": "text", "is_pii": True})
    session.commit()
    made = client.post("/api/v1/users", headers=login("admin@example.com"), json={
        "email": "mkt@example.com", "name": "市场部", "password": "correct-horse-1", "unit_id": tree.hq.id,
        "roles": ["hq_marketing"]})
    assert made.status_code == 201, made.text
    return login("mkt@example.com")


def preview(client, headers, condition):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/segments/preview", headers=headers, json={"condition": condition})


def test_a_masked_mobile_cannot_be_rebuilt_digit_by_digit(client, login, marketer):  # type: ignore[no-untyped-def]
    # 张伟's mobile is +8613800000001, shown to the marketer as +86138****0001. The attack: guess the next digit.
    guesses = [preview(client, marketer, field("mobile", "starts_with", f"+86138{d}")) for d in range(10)]
    assert {g.status_code for g in guesses} == {403}
    assert all("count" not in g.json() for g in guesses)
    refused = guesses[0].json()
    assert refused["errors"] == [{"field": "condition.field", "code": "pii_read_required", "message": (
        "mobile is personal data: without pii.read a condition may only ask whether it is set (is_set, "
        "is_not_set)")}]
    # Whatever the question about the value: equals, contains, a list, the birthday's day, a PII custom field.
    for question in (field("mobile", "eq", "+8613800000001"), field("mobile", "contains", "0000"),
                     field("email", "in", ["zw@example.com"]), field("birthday", "before", "1990-01-01"),
                     field("attributes.id_card_no", "starts_with", "110"),
                     {"type": "any", "conditions": [field("city", "eq", "上海"), field("mobile", "ne", "x")]}):
        assert preview(client, marketer, question).status_code == 403, question
    # Whether a field is set, the marketer sees anyway (a mask or a dash): that is allowed.
    allowed = preview(client, marketer, field("mobile", "is_set"))
    assert allowed.status_code == 200 and allowed.json()["count"] == 5
    # With pii.read the same question is answered.
    admin = preview(client, login("admin@example.com"), field("mobile", "starts_with", "+861380000000"))
    assert admin.status_code == 200 and admin.json()["count"] == 5


def test_personal_event_properties_are_no_question_either(client, login, marketer):  # type: ignore[no-untyped-def]
    drove = {"type": "event", "event": "test_drive_booked",
             "where": [{"property": "phone", "op": "contains", "value": "138"}]}
    refused = preview(client, marketer, drove)
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["field"] == "condition.where.0.property"
    by_model = {**drove, "where": [{"property": "model", "op": "eq", "value": "ID.4"}]}
    assert preview(client, marketer, by_model).status_code == 200


def test_a_segment_cannot_be_saved_or_edited_into_an_oracle(client, login, marketer):  # type: ignore[no-untyped-def]
    oracle = field("mobile", "starts_with", "+861380")
    made = client.post("/api/v1/segments", headers=marketer, json={"name": "猜号码", "condition": oracle})
    assert made.status_code == 403 and made.json()["errors"][0]["field"] == "condition.field"
    fine = client.post("/api/v1/segments", headers=marketer, json={"name": "有手机", "condition": field(
        "mobile", "is_set")})
    assert fine.status_code == 201, fine.text
    edited = client.patch(f"/api/v1/segments/{fine.json()['id']}", headers=marketer, json={"condition": oracle})
    assert edited.status_code == 403
    # An administrator's segment on a mobile prefix is theirs to make; the refresh runs it as the platform.
    admin = client.post("/api/v1/segments", headers=login("admin@example.com"),
                        json={"name": "138 号段", "condition": oracle})
    assert admin.status_code == 201, admin.text


def test_a_list_of_guessed_mobiles_is_no_question_either(client, login, marketer):  # type: ignore[no-untyped-def]
    """Before: a list of 10,000 guesses for the four hidden digits, uploaded once, came back with the one row
    that found a customer."""
    guesses = "手机\n" + "\n".join(f"1380000{n:04d}" for n in range(10_000)) + "\n"
    made = client.post("/api/v1/segments", headers=marketer, json={"name": "名单", "kind": "static"}).json()
    refused = client.post(f"/api/v1/segments/{made['id']}/members/upload", headers=marketer,
                          data={"match_by": "mobile"}, files={"file": ("guesses.csv", guesses.encode(), "text/csv")})
    assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "match_by"
    by_number = client.post(f"/api/v1/segments/{made['id']}/members/upload", headers=marketer,
                            data={"match_by": "customer_id"}, files={"file": ("ids.csv", b"id\n1\n", "text/csv")})
    assert by_number.status_code == 200, by_number.text
    admin = client.post(f"/api/v1/segments/{made['id']}/members/upload", headers=login("admin@example.com"),
                        data={"match_by": "mobile"}, files={"file": ("guesses.csv", guesses.encode(), "text/csv")})
    assert admin.status_code == 200 and admin.json()["added"] + admin.json()["already"] == 5  # id 1 was in
