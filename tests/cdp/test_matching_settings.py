"""Matching settings per organisation (issue 24): which comparisons take part — standard and custom fields with a
comparison kind — and which blocking rules are on. Settings are checked (an unknown field, another organisation's
field, a kind the type cannot take, nothing left to compare, a rule that would compare every pair) and only a
settings manager changes them; a custom ID number that takes part finds pairs the defaults never compare; nothing
chosen is the defaults, exactly."""

from __future__ import annotations

import random
from datetime import date, timedelta

import duckdb
from sqlalchemy import select

from kehu.cdp import schemas, service
from kehu.cdp.matching import DEFAULT_COMPARISONS, DEFAULT_RULES, compare_sql, config, matching_of
from kehu.cdp.matching import records as matching_records
from kehu.cdp.models import DedupeSettings
from kehu.demo.customers import GIVEN_FEMALE, GIVEN_MALE, SURNAMES
from tests.cdp.test_imports import run_jobs
from tests.factories.tenancy import make_user

CITIES = ("上海", "杭州", "北京", "广州", "成都")


def _field(client, headers, key: str, type_: str = "text", **extra):  # type: ignore[no-untyped-def]
    created = client.post("/api/v1/custom-fields", headers=headers, json={
        "key": key, "label_zh": key, "label_en": key, "type": type_, **extra})
    assert created.status_code == 201, created.text
    return created.json()


def _refused(response, *fields: str) -> list[dict]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == list(fields), errors
    return errors


def test_nothing_chosen_is_the_defaults(client, tree, login, session):  # type: ignore[no-untyped-def]
    admin = login("admin@example.com")
    shown = client.get("/api/v1/dedupe/matching", headers=admin)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["is_default"] is True
    assert [c["field"] for c in body["comparisons"]] == [c.name for c in DEFAULT_COMPARISONS]
    assert {c["kind"] for c in body["comparisons"]} == {"standard"}
    assert [r["name"] for r in body["rules"]] == [r.name for r in DEFAULT_RULES]
    assert all(r["fields"] is None for r in body["rules"])
    assert matching_of(session, tree.org.id) == (DEFAULT_COMPARISONS, DEFAULT_RULES)
    # saving the defaults' own list, then restoring with {}: the run reads the same tuples each time
    same = client.put("/api/v1/dedupe/matching", headers=admin, json={
        "comparisons": body["comparisons"], "rules": body["rules"]})
    assert same.status_code == 200 and same.json()["is_default"] is False
    session.expire_all()
    assert matching_of(session, tree.org.id) == (DEFAULT_COMPARISONS, DEFAULT_RULES)
    restored = client.put("/api/v1/dedupe/matching", headers=admin, json={})
    assert restored.status_code == 200 and restored.json()["is_default"] is True
    session.expire_all()
    assert session.scalar(select(DedupeSettings.matching).where(DedupeSettings.org_id == tree.org.id)) is None
    # a reader may see the settings (what the queue's evidence is made of), not change them
    assert client.get("/api/v1/dedupe/matching", headers=login("a.sales@example.com")).status_code == 200


def test_settings_are_checked_and_only_a_settings_manager_changes_them(  # type: ignore[no-untyped-def]
        client, tree, login, session):
    admin, other = login("admin@example.com"), login("boss@other.example.com")
    _field(client, admin, "id_number", is_pii=True)
    _field(client, admin, "points", "number")
    _field(client, admin, "hobbies", "multi_option", options=[{"value": "golf", "zh": "高尔夫", "en": "Golf"}])
    _field(client, admin, "wechat_member", "boolean")
    _field(client, other, "passport")  # another organisation's field
    put = lambda body: client.put("/api/v1/dedupe/matching", headers=admin, json=body)  # noqa: E731

    errors = _refused(put({"comparisons": [{"field": "name"}, {"field": "shoe_size"}]}), "comparisons.1.field")
    assert errors[0]["code"] == "unknown_field"
    assert _refused(put({"comparisons": [{"field": "attributes.passport", "kind": "exact"}]}),
                    "comparisons.0.field")[0]["code"] == "unknown_field"
    assert _refused(put({"comparisons": [{"field": "attributes.nobody", "kind": "exact"}]}),
                    "comparisons.0.field")[0]["code"] == "unknown_field"
    wrong = _refused(put({"comparisons": [{"field": "attributes.points", "kind": "fuzzy"},
                                          {"field": "attributes.hobbies", "kind": "exact"},
                                          {"field": "attributes.id_number", "kind": "sounds_like"},
                                          {"field": "birthday", "kind": "date"}]}),
                     "comparisons.0.kind", "comparisons.1.kind", "comparisons.2.kind", "comparisons.3.kind")
    assert [e["code"] for e in wrong] == ["wrong_type", "wrong_type", "not_option", "not_option"]
    assert "exact" in wrong[0]["message"]  # what the number can be compared as
    assert _refused(put({"comparisons": []}), "comparisons")[0]["code"] == "empty"
    assert _refused(put({"comparisons": [{"field": "name"}, {"field": "name"}]}),
                    "comparisons.1.field")[0]["code"] == "duplicate"

    # blocking rules: one comparing every pair is refused, whether it has no field or only coarse ones
    every = _refused(put({"rules": [{"name": "mobile"}, {"name": "everyone", "fields": []},
                                    {"name": "by_gender", "fields": ["gender", "attributes.wechat_member"]}]}),
                     "rules.1.fields", "rules.2.fields")
    assert {e["code"] for e in every} == {"every_pair"}
    assert _refused(put({"rules": []}), "rules")[0]["code"] == "empty"
    assert _refused(put({"rules": [{"name": "no_such_rule"}]}), "rules.0.name")[0]["code"] == "unknown_rule"
    assert _refused(put({"rules": [{"name": "mobile", "fields": ["attributes.id_number"]}]}),
                    "rules.0.name")[0]["code"] == "taken"
    assert _refused(put({"rules": [{"name": "passport", "fields": ["attributes.passport"]}]}),
                    "rules.0.fields.0")[0]["code"] == "unknown_field"
    assert _refused(put({"rules": [{"name": "shoes", "fields": ["city", "shoe_size"]}]}),
                    "rules.0.fields.1")[0]["code"] == "unknown_field"
    # the check refuses what saving refuses, and counts nothing
    assert _refused(client.post("/api/v1/dedupe/matching/check", headers=admin,
                                json={"rules": [{"name": "everyone", "fields": []}]}), "rules.0.fields")
    session.expire_all()
    assert matching_of(session, tree.org.id) == (DEFAULT_COMPARISONS, DEFAULT_RULES)  # nothing was saved

    # only a settings manager: a dealer manager may read customers but not choose how they are matched
    good = {"comparisons": [{"field": "name"}, {"field": "birthday"}, {"field": "attributes.id_number",
                                                                        "kind": "exact"}],
            "rules": [{"name": "name_year"}, {"name": "id_number", "fields": ["attributes.id_number"]}]}
    manager = login("a.manager@example.com")
    assert client.put("/api/v1/dedupe/matching", headers=manager, json=good).status_code == 403
    assert client.post("/api/v1/dedupe/matching/check", headers=manager, json=good).status_code == 403
    saved = put(good)
    assert saved.status_code == 200, saved.text
    assert saved.json()["comparisons"][0] == {"field": "name", "kind": "standard"}
    assert saved.json()["rules"][1] == {"name": "id_number", "fields": ["attributes.id_number"]}
    options = {f["field"]: f for f in saved.json()["options"]["custom_fields"]}
    assert options["attributes.id_number"]["kinds"] == ["exact", "fuzzy"] and options["attributes.hobbies"][
        "kinds"] == [] and "attributes.passport" not in options
    # the other organisation does not see this one's settings, and cannot use its fields
    assert client.get("/api/v1/dedupe/matching", headers=other).json()["is_default"] is True
    assert _refused(client.put("/api/v1/dedupe/matching", headers=other, json=good),
                    "comparisons.2.field", "rules.1.fields.0")
    session.expire_all()
    comparisons, rules = matching_of(session, tree.org.id)
    assert [c.name for c in comparisons] == ["name", "birthday", "cf_id_number"]
    assert [r.name for r in rules] == ["name_year", "id_number"] and rules[1].variants[0] == ("cf_id_number",)
    # the schema describes it
    paths = client.get("/openapi.json").json()["paths"]
    assert {"get", "put"} <= set(paths["/api/v1/dedupe/matching"]) and "post" in paths[
        "/api/v1/dedupe/matching/check"]


def _people(session, tree, rng: random.Random) -> dict[str, frozenset[int]]:  # type: ignore[no-untyped-def]
    """Two hundred customers, each with an ID number of their own; ten people written down twice the ordinary way
    (the same name and birthday, one in three in another city, the ID number keyed in with spaces or a small x);
    and two people written down twice in ways no default rule brings together (an English name, a shortened
    given name; no birthday and no mobile on the second record) but with the same ID number."""
    def add(name: str, born: date | None, city: str, id_number: str, mobile: str | None = None) -> int:
        return service.create_profile(session, tree.system, data=schemas.ProfileCreate(
            name=name, birthday=born, city=city, unit_id=tree.dealer_a.id, mobile=mobile,
            attributes={"id_number": id_number})).id

    def id_number(n: int) -> str:
        return f"3101011980{n:04d}{n % 10}{n % 7}{'X' if n % 3 else n % 9}"

    def person() -> tuple[str, date, str]:
        return (rng.choice(SURNAMES) + rng.choice(GIVEN_MALE + GIVEN_FEMALE),
                date(1960, 1, 1) + timedelta(days=rng.randrange(15_000)), rng.choice(CITIES))

    for n in range(200):
        name, born, city = person()
        add(name, born, city, id_number(n), mobile=f"139{n:08d}")
    pairs = {}
    for n in range(10):
        name, born, city = person()
        first = add(name, born, city, id_number(500 + n), f"1381234{n:04d}")
        keyed = id_number(500 + n).lower() if n % 2 else id_number(500 + n)[:6] + " " + id_number(500 + n)[6:]
        pairs[f"same_{n}"] = frozenset((first, add(name, born, rng.choice(CITIES) if n % 3 == 0 else city, keyed)))
    pairs["english"] = frozenset((add("孙丽华", date(1990, 2, 28), "杭州", id_number(902), "13812349003"),
                                  add("Linda Sun", None, "上海", id_number(902))))
    pairs["shortened"] = frozenset((add("周美玲", date(1986, 12, 5), "广州", id_number(903), "13812349004"),
                                    add("周玲", None, "广州", id_number(903))))
    session.commit()
    return pairs


def _found(client, headers) -> set[frozenset[int]]:  # type: ignore[no-untyped-def]
    items = client.get("/api/v1/duplicates", headers=headers, params={"limit": 200}).json()["items"]
    return {frozenset(c["id"] for c in item["customers"]) for item in items}


def test_an_id_number_that_takes_part_finds_pairs_the_defaults_never_compare(  # type: ignore[no-untyped-def]
        client, tree, login, session, clean_database, settings):
    admin = login("admin@example.com")
    _field(client, admin, "id_number", is_pii=True)
    pairs = _people(session, tree, random.Random(24))
    client.post("/api/v1/dedupe/run", headers=admin)
    run_jobs(clean_database, settings)
    by_default = _found(client, admin)
    assert len({p for k, p in pairs.items() if k.startswith("same")} & by_default) >= 8
    assert pairs["english"] not in by_default and pairs["shortened"] not in by_default
    default_candidates = client.get("/api/v1/dedupe", headers=admin).json()["figures"]["candidate_pairs"]

    proposal = {"comparisons": [*({"field": c.name} for c in DEFAULT_COMPARISONS),
                                {"field": "attributes.id_number", "kind": "fuzzy"}],
                "rules": [*({"name": r.name} for r in DEFAULT_RULES),
                          {"name": "id_number", "fields": ["attributes.id_number"]}]}
    # before saving: each rule's pairs under the proposal; the ID number rule compares the four twins
    check = client.post("/api/v1/dedupe/matching/check", headers=admin, json=proposal)
    assert check.status_code == 200, check.text
    counted = {row["rule"]: row for row in check.json()["rules"]}
    assert counted["id_number"]["pairs"] == 12 and counted["id_number"]["keys"] == ["attributes.id_number"]
    assert check.json()["records"] == 224 and not check.json()["over_ceiling"]
    assert [row["rule"] for row in client.post("/api/v1/dedupe/matching/check", headers=admin).json()["rules"]] \
        == [r.name for r in DEFAULT_RULES]  # no body: the saved settings (the defaults)
    assert client.put("/api/v1/dedupe/matching", headers=admin, json=proposal).status_code == 200

    client.post("/api/v1/dedupe/run", headers=admin)
    run_jobs(clean_database, settings)
    state = client.get("/api/v1/dedupe", headers=admin).json()
    assert state["status"] == "done", state
    assert state["figures"]["candidate_pairs"] == default_candidates + 2  # the two the defaults never met
    assert "cf_id_number" in state["model"]["levels"]
    found = _found(client, admin)
    assert set(pairs.values()) <= found
    # the evidence names the custom field's comparison and its level, never a value; without pii.read the
    # customers' ID numbers are masked
    make_user(session, tree.system, tree.hq, "hq_analyst", email="analyst@example.com", name="分析师")
    session.commit()
    analyst = login("analyst@example.com")
    item = next(i for i in client.get("/api/v1/duplicates", headers=analyst, params={"limit": 200}).json()["items"]
                if frozenset(c["id"] for c in i["customers"]) == pairs["english"])
    evidence = {e["comparison"]: e for e in item["evidence"]}
    assert evidence["attributes.id_number"]["level"] == 2 and evidence["attributes.id_number"]["weight"] > 5
    assert set(evidence["attributes.id_number"]) == {"comparison", "level", "weight"}
    shown = [c["attributes"]["id_number"] for c in item["customers"]]
    assert all("*" in value and "3101011980" not in value for value in shown), shown
    admin_item = client.get(f"/api/v1/duplicates/{item['id']}", headers=admin).json()
    assert admin_item["customers"][0]["attributes"]["id_number"].startswith("3101011980")


def test_custom_fields_are_columns_of_the_records_normalised():  # type: ignore[no-untyped-def]
    """records.derive keeps a custom field as cf_<key>: case, spaces and punctuation do not keep two equal values
    apart; fuzzy sees one character off, a date comparison a mistyped digit and a swapped day and month."""
    con = duckdb.connect()
    columns = {**matching_records.COLUMNS, "cf_id_number": "VARCHAR", "cf_expiry": "VARCHAR"}
    con.execute(f"CREATE OR REPLACE TEMP TABLE raw ({', '.join(f'{k} {t}' for k, t in columns.items())})")
    rows = [("王芳", "110101 19900101 023X", "2030-05-01"), ("王芳", "11010119900101023x", "2030-05-01"),
            ("李强", "11010119900101024X", "2030-05-02"), ("李强", None, "2030-01-05")]
    con.executemany("INSERT INTO raw (id, unit_id, name, cf_id_number, cf_expiry) VALUES (?, 1, ?, ?, ?)",
                    [(i, *row) for i, row in enumerate(rows, 1)])
    matching_records.derive(con, "raw", "records")
    assert [v for (v,) in con.execute("SELECT cf_id_number FROM records ORDER BY id").fetchall()] == [
        "11010119900101023x", "11010119900101023x", "11010119900101024x", None]
    exact, fuzzy = config.custom_comparison("id_number", "exact"), config.custom_comparison("id_number", "fuzzy")
    dated = config.custom_comparison("expiry", "date")
    con.execute("CREATE TEMP TABLE p AS SELECT * FROM (VALUES (1, 2), (1, 3), (3, 4), (2, 4)) v(a, b)")
    levels = con.execute(compare_sql("p", comparisons=(exact, fuzzy, dated)) + " ORDER BY a, b").fetchall()
    assert [row[2:] for row in levels] == [(1, 2, 3), (0, 1, 2), (-1, -1, 1), (-1, -1, 0)]
