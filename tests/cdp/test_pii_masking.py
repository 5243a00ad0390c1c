"""Personal data reaches a reader without pii.read only masked, by its kind, through every door: the Customer
360 with everything included, lists, an empty PATCH, account members, duplicate pairs, an import's preview and
rejected rows, and no search or sort answers a question about a hidden value."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from kehu.cdp.models import DuplicateCandidate, Profile
from tests.cdp.test_imports import run_jobs, upload
from tests.factories.cdp import basic, call, make_source, process
from tests.factories.tenancy import make_user

# One value of every kind of personal data: standard fields, each custom field type flagged PII, a vehicle,
# what an event carries. Picked so that no 4 characters of any of them occur anywhere else in the answers.
MOBILE, EMAIL, BIRTHDAY = "+8613957308641", "walnut.grove81@example.com", "1979-08-23"
CUSTOM = {  # key: (type, the value sent, the value as stored)
    "id_card_no": ("text", "330106196204187732", "330106196204187732"),
    "plate_no": ("text", "浙AK7Q3X", "浙AK7Q3X"),
    "home": ("text", "杭州市西湖区文三路479号", "杭州市西湖区文三路479号"),
    "income": ("number", "915836.47", 915836.47),
    "anniversary": ("date", "1961-11-29", "1961-11-29"),
    "vip": ("boolean", "否", False),
    "club": ("option", "黑金", "onyx"),
    "hobbies": ("multi_option", "高尔夫,垂钓", ["angling", "golfing"]),
}
VIN, PLATE = "LFVZX9K35R1074286", "苏EZ9W71"
IP, CONTEXT_MOBILE = "198.51.100.173", "+8615961724039"


def _field(key: str, kind: str) -> dict[str, object]:
    options = {"option": [{"value": "onyx", "zh": "黑金", "en": "Onyx"}, {"value": "gold", "zh": "金", "en": "Gold"}],
               "multi_option": [{"value": "golfing", "zh": "高尔夫", "en": "Golf"},
                                {"value": "angling", "zh": "垂钓", "en": "Angling"}]}.get(kind, [])
    return {"key": key, "label_zh": key, "label_en": key, "type": kind, "is_pii": True, "options": options}


@pytest.fixture
def person(client, tree, login, session, clean_database) -> int:  # type: ignore[no-untyped-def]
    """周清华, with a value in every kind of personal data kehu keeps, sent through /v1 and the worker."""
    admin = login("admin@example.com")
    for key, (kind, _, _) in CUSTOM.items():
        assert client.post("/api/v1/custom-fields", headers=admin, json=_field(key, kind)).status_code == 201
    _, key = make_source(session, tree.system, "上海浦东店展厅", tree.dealer_a.id)
    for user, role in (("analyst@example.com", "hq_analyst"), ("mkt@example.com", "hq_marketing"),
                       ("mkt2@example.com", "hq_marketing")):
        make_user(session, tree.system, tree.hq, role, email=user, name=user.split("@")[0])
    session.commit()
    traits = {"name": "周清华", "phone": MOBILE, "email": EMAIL, "birthday": BIRTHDAY, "vin": VIN,
              **{k: sent for k, (_, sent, _) in CUSTOM.items()}}
    sent = client.post("/v1/batch", headers=basic(key), json={"batch": [
        call("identify", userId="zqh", traits=traits, context={"ip": IP}),
        call("track", userId="zqh", event="test_drive_booked", properties={"model": "ID.7", "vin": VIN},
             context={"traits": {"phone": MOBILE, "email": EMAIL}, "ip": IP}),
        call("group", userId="zqh", groupId="household-zqh", traits={"name": "周家", "kind": "household",
                                                                      "phone": CONTEXT_MOBILE})]})
    assert sent.status_code == 200 and not sent.json()["rejected"], sent.text
    process(clean_database)
    profile_id = session.scalar(select(Profile.id).where(Profile.name == "周清华"))
    assert client.post(f"/api/v1/customers/{profile_id}/vehicles", headers=admin,
                       json={"vin": VIN, "model": "ID.7", "plate": PLATE}).status_code == 201
    stored = client.get(f"/api/v1/customers/{profile_id}", headers=admin).json()["profile"]
    assert {k: stored["attributes"][k] for k in CUSTOM} == {k: kept for k, (_, _, kept) in CUSTOM.items()}
    assert (stored["mobile"], stored["email"], stored["birthday"]) == (MOBILE, EMAIL, BIRTHDAY)
    return profile_id


def secrets() -> dict[str, str]:
    """Every personal value as text, and what of it a mask may keep (a mobile its prefix and last four, an
    e-mail its first letter and domain, a birthday its year, text a short tail)."""
    found = {MOBILE: "+86139" + MOBILE[-4:], CONTEXT_MOBILE: "+86159" + CONTEXT_MOBILE[-4:],
             EMAIL: "w@example.com", BIRTHDAY: "1979-**-**", VIN: VIN[-4:], PLATE: PLATE[-1:], IP: IP[-3:]}
    for _key, (kind, sent, kept) in CUSTOM.items():
        for value in [sent, *(kept if isinstance(kept, list) else [] if isinstance(kept, bool) else [kept])]:
            text = json.dumps(value, ensure_ascii=False).strip('"') if not isinstance(value, str) else value
            found[text] = text[-min(4, len(text) // 4):] if kind == "text" and len(text) >= 4 else ""
    return found


def leaks(answer: str) -> list[str]:
    """The personal values, or runs of 4 of their characters beyond what a mask may keep, found in ``answer``
    (timestamps left out: their microseconds hold any four digits, and a day's "-11-" says nothing)."""
    answer = re.sub(r"\d{4}-\d\d-\d\d[T ][\d:.]+(Z|[+-]\d\d:?\d\d)?", "", answer)  # timestamps' digit runs
    found = []
    for value, kept in secrets().items():
        for start in range(len(value) - 3):
            piece = value[start:start + 4]
            if piece in answer and piece not in kept and not re.fullmatch(r"-\d\d-", piece):
                found.append(f"{piece!r} of {value!r}")
    return found


def test_a_customer_360_shows_no_personal_value_to_a_reader_without_pii_read(  # type: ignore[no-untyped-def]
        client, login, person):
    admin, analyst = login("admin@example.com"), login("analyst@example.com")
    everything = "identities,merges,events,timeline,consents,accounts,orders,vehicles"
    clear = client.get(f"/api/v1/customers/{person}?include={everything}", headers=admin).text
    assert leaks(clear), "the test sees nothing: the values never reached the 360"
    answers = [client.get(f"/api/v1/customers/{person}?include={everything}", headers=analyst),
               client.get(f"/api/v1/customers/{person}/timeline", headers=analyst),
               client.get("/api/v1/customers", headers=analyst), client.get("/api/v1/accounts", headers=analyst)]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert leaks(answer.text) == [], (answer.request.url, answer.text)
    seen = answers[0].json()
    assert seen["profile"]["mobile"] == "+86139****8641" and seen["profile"]["email"] == "w***@example.com"
    assert seen["profile"]["birthday"] == "1979-**-**"
    attributes = seen["profile"]["attributes"]
    assert {k: attributes[k] for k in ("income", "anniversary", "vip", "club", "hobbies")} == dict.fromkeys(
        ("income", "anniversary", "vip", "club", "hobbies"), "***")  # hidden whole, not "F****" or "915****6.47"
    assert attributes["plate_no"] == "***X" and attributes["id_card_no"] == "***7732"
    assert seen["vehicles"][0]["vin"] == "***4286" and seen["vehicles"][0]["plate"] == "***1"
    assert {i["kind"]: i["value"] for i in seen["identities"]}["user_id"] == "zqh"  # pseudonymous: shown


def test_an_empty_patch_answers_with_custom_fields_masked(client, login, person):  # type: ignore[no-untyped-def]
    # before: the answer was rendered without the field definitions and showed every PII custom field in clear
    answer = client.patch(f"/api/v1/customers/{person}", headers=login("mkt@example.com"), json={})
    assert answer.status_code == 200, answer.text
    assert answer.json()["attributes"]["id_card_no"] == "***7732" and leaks(answer.text) == []


def test_account_members_are_masked(client, login, person, session):  # type: ignore[no-untyped-def]
    accounts = client.get("/api/v1/accounts", headers=login("admin@example.com")).json()["items"]
    household = next(a for a in accounts if a["external_id"] == "household-zqh")
    answer = client.get(f"/api/v1/accounts/{household['id']}", headers=login("analyst@example.com"))
    assert answer.status_code == 200, answer.text
    assert [m["name"] for m in answer.json()["members"]] == ["周清华"]
    assert answer.json()["members"][0]["attributes"]["home"] == "***79号"
    assert leaks(answer.text) == []


def test_a_duplicate_pair_is_masked(client, tree, login, person, session):  # type: ignore[no-untyped-def]
    twin = client.post("/api/v1/customers", headers=login("admin@example.com"), json={
        "name": "周清華", "unit_id": tree.dealer_a.id, "attributes": {"id_card_no": "330106196204187732"}}).json()
    session.add(DuplicateCandidate(org_id=tree.org.id, profile_a_id=person, profile_b_id=twin["id"],
                                   probability=0.97, levels={"name": 2}, found_at=datetime.now(UTC)))
    session.commit()
    pair_id = session.scalar(select(DuplicateCandidate.id))
    answer = client.get(f"/api/v1/duplicates/{pair_id}", headers=login("analyst@example.com"))
    assert answer.status_code == 200, answer.text
    assert [c["attributes"]["id_card_no"] for c in answer.json()["customers"]] == ["***7732", "***7732"]
    assert leaks(answer.text) == []
    listed = client.get("/api/v1/duplicates", headers=login("analyst@example.com"))
    assert listed.json()["items"] and leaks(listed.text) == []


# -- an import's preview and rejected rows --------------------------------------------------------------------
FILE = ("姓名,手机,邮箱,id_card_no,plate_no,备注\n"
        "孙立群,13957308641,walnut.grove81@example.com,330106196204187732,浙AK7Q3X,老客户\n"
        "钱晓东,1395730864,xd.qian@@example.com,330106198811021234,沪B88X71,\n")  # no usable identity: rejected


def test_an_import_is_masked_for_readers_other_than_its_uploader(  # type: ignore[no-untyped-def]
        client, login, person, clean_database, settings):
    uploader, reader = login("mkt@example.com"), login("mkt2@example.com")
    uploaded = upload(client, uploader, FILE.encode())
    assert uploaded.status_code == 201, uploaded.text
    run = uploaded.json()
    assert run["mapping"]["id_card_no"] == "attribute:id_card_no"
    # The uploader holds the file: their preview shows their rows as they are (to fix them).
    own = client.get(f"/api/v1/imports/{run['id']}/preview", headers=uploader).json()
    assert own[0]["values"]["手机"] == "13957308641" and "1395730864" in own[1]["reason"]
    # Another marketer may read the import, not the personal data in it.
    seen = client.get(f"/api/v1/imports/{run['id']}/preview", headers=reader)
    assert seen.status_code == 200
    rows = seen.json()
    assert rows[0]["values"] == {"姓名": "孙立群", "手机": "139****8641", "邮箱": "w***@example.com",
                                 "id_card_no": "***7732", "plate_no": "***X", "备注": "老客户"}
    assert not rows[1]["ok"] and "1395730864" not in rows[1]["reason"] and "***64" in rows[1]["reason"]
    assert "xd.qian" not in seen.text and "330106198811021234" not in seen.text and leaks(seen.text) == []
    assert client.post(f"/api/v1/imports/{run['id']}/start", headers=uploader).status_code == 200
    run_jobs(clean_database, settings)
    rejected = client.get(f"/api/v1/imports/{run['id']}/rejections.csv", headers=reader)
    assert rejected.status_code == 200
    (row,) = list(csv.DictReader(io.StringIO(rejected.content.decode("utf-8-sig"))))
    assert row["Row"] == "3" and row["手机"] == "***64" and row["邮箱"] == "x***@example.com"
    assert row["id_card_no"] == "***1234" and row["plate_no"] == "***1" and "1395730864" not in row["Reason"]
    mine = client.get(f"/api/v1/imports/{run['id']}/rejections.csv", headers=uploader).content.decode("utf-8-sig")
    assert "1395730864" in mine and "330106198811021234" in mine  # to fix and import again
    admin = client.get(f"/api/v1/imports/{run['id']}/rejections.csv", headers=login("admin@example.com"))
    assert "330106198811021234" in admin.content.decode("utf-8-sig")  # pii.read


def test_a_masked_value_never_becomes_data(client, login, person):  # type: ignore[no-untyped-def]
    """A masked export edited and sent back must not turn z***@example.com into everybody's e-mail."""
    admin = login("admin@example.com")
    bad = client.patch(f"/api/v1/customers/{person}", headers=admin,
                       json={"email": "w***@example.com", "attributes": {"id_card_no": "***7732"}})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"email", "attributes.id_card_no"}


# -- no search or sort answers a question about a hidden value ------------------------------------------------
def test_search_takes_no_personal_key_beyond_what_is_shown(client, login, person):  # type: ignore[no-untyped-def]
    def found(headers, q):  # type: ignore[no-untyped-def]
        return [p["id"] for p in client.get("/api/v1/customers", headers=headers, params={"q": q}).json()["items"]]

    admin, marketing = login("admin@example.com"), login("mkt@example.com")
    for q in ("8641", "08641", "7308641", MOBILE, "13957308641", EMAIL, VIN, "zqh"):
        assert found(admin, q) == [person], q
    # Each answer to a longer suffix would confirm one more hidden digit (72 searches rebuild the number).
    assert found(marketing, "8641") == [person] and found(marketing, "zqh") == [person]
    for q in ("08641", "7308641", MOBILE, "13957308641", EMAIL, VIN):
        assert found(marketing, q) == [], q


def test_staff_e_mails_are_no_search_key_without_pii_read(client, tree, login, session):  # type: ignore[no-untyped-def]
    make_user(session, tree.system, tree.hq, "hq_analyst", email="analyst@example.com", name="分析师")
    session.commit()
    analyst = login("analyst@example.com")
    by_mail = client.get("/api/v1/users", headers=analyst, params={"q": "a.sales2@"}).json()["items"]
    assert by_mail == []
    by_name = client.get("/api/v1/users", headers=analyst, params={"q": "赵销售"}).json()["items"]
    assert [u["email"] for u in by_name] == ["a***@example.com"]
    admin = client.get("/api/v1/users", headers=login("admin@example.com"), params={"q": "a.sales2@"}).json()
    assert [u["name"] for u in admin["items"]] == ["赵销售"]


def test_a_field_marked_personal_is_masked_from_the_next_request_on(client, login, person):  # type: ignore[no-untyped-def]
    """A server keeps a reader's principal, and the masking rules with it, between requests: a field that becomes
    personal data must be masked in the very next answer, not when the principal happens to be made again."""
    admin, analyst = login("admin@example.com"), login("analyst@example.com")
    fields = client.get("/api/v1/custom-fields", headers=admin).json()
    home = next(f for f in fields if f["key"] == "home")
    assert client.patch(f"/api/v1/custom-fields/{home['id']}", headers=admin, json={"is_pii": False}).status_code == 200
    shown = client.get(f"/api/v1/customers/{person}", headers=analyst).json()["profile"]["attributes"]["home"]
    assert shown == CUSTOM["home"][2]
    assert client.patch(f"/api/v1/custom-fields/{home['id']}", headers=admin, json={"is_pii": True}).status_code == 200
    for answer in (client.get(f"/api/v1/customers/{person}", headers=analyst).json()["profile"],
                   client.get("/api/v1/customers", headers=analyst).json()["items"][0]):
        assert answer["attributes"]["home"] != CUSTOM["home"][2]
        assert answer["attributes"]["home"].startswith("***")
