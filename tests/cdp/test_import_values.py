"""Nothing an import accepts is silently dropped (issue 19, item 7): every column a file can be mapped to is stored
and read back on the Customer 360 (the address too); a wrong optional value is left out of its row and reported
as a warning instead of costing the customer's whole row; a custom date field takes any date, only a birthday
keeps to a life's span."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from kehu.cdp import fields, imports, normalise
from kehu.cdp.models import Profile
from tests.cdp.test_exports import csv_rows, export
from tests.cdp.test_imports import run_jobs, upload
from tests.factories.cdp import basic, call, make_source, process
from tests.factories.tenancy import make_user


def imported(client, headers, database, settings, content: str, mapping: dict[str, str] | None = None
             ) -> dict:  # type: ignore[no-untyped-def]
    uploaded = upload(client, headers, content.encode())
    assert uploaded.status_code == 201, uploaded.text
    run = uploaded.json()
    if mapping is not None:
        changed = client.put(f"/api/v1/imports/{run['id']}/mapping", headers=headers, json={"mapping": mapping})
        assert changed.status_code == 200, changed.text
    assert client.post(f"/api/v1/imports/{run['id']}/start", headers=headers).status_code == 200
    run_jobs(database, settings)
    done = client.get(f"/api/v1/imports/{run['id']}", headers=headers).json()
    assert done["status"] == "done", done
    return done


def customer(client, headers, session, **where: str) -> dict:  # type: ignore[no-untyped-def]
    session.expire_all()
    profile_id = session.scalar(select(Profile.id).filter_by(merged_into_id=None, **where))
    assert profile_id is not None, f"no customer with {where}"
    answer = client.get(f"/api/v1/customers/{profile_id}?include=identities", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


# -- 1. the address --------------------------------------------------------------------------------------------
ADDRESS = "杭州市西湖区文三路479号3幢"


def test_an_address_column_is_stored_shown_masked_edited_and_exported(  # type: ignore[no-untyped-def]
        client, tree, login, session, clean_database, settings):
    make_user(session, tree.system, tree.hq, "hq_analyst", email="analyst@example.com", name="分析")
    session.commit()
    admin = login("admin@example.com")
    run = imported(client, admin, clean_database, settings, f"姓名,手机,address\n孙立群,13957308641,{ADDRESS}\n")
    assert run["mapping"]["address"] == "address" and run["warnings"] == 0
    seen = customer(client, admin, session, name="孙立群")["profile"]
    assert seen.get("address") == ADDRESS, seen
    # personal data: a reader without pii.read sees a short tail of it, as of any text
    masked = customer(client, login("analyst@example.com"), session, name="孙立群")["profile"]
    assert masked["address"] == "***号3幢"
    # a standard field like the others: edited (and normalised), exported
    moved = client.patch(f"/api/v1/customers/{seen['id']}", headers=admin,
                         json={"address": " 上海市 浦东新区 碧波路６９０号 "})
    assert moved.status_code == 200 and moved.json()["address"] == "上海市 浦东新区 碧波路690号", moved.text
    _, file = export(client, admin, clean_database, settings, format="csv")
    assert [row["地址"] for row in csv_rows(file)] == ["上海市 浦东新区 碧波路690号"]
    created = client.post("/api/v1/customers", headers=admin, json={"name": "钱晓东", "address": "北京市朝阳区"})
    assert created.status_code == 201 and created.json()["address"] == "北京市朝阳区"


def test_a_traits_address_is_stored_as_text_or_as_segments_structure(  # type: ignore[no-untyped-def]
        client, tree, login, session, clean_database):
    """Segment's address trait is {street, city, state, postalCode, country}: the street is the address, the
    state and city the province and city; a plain text address is the address."""
    _, key = make_source(session, tree.system, "官网", tree.hq.id)
    session.commit()
    sent = client.post("/v1/batch", headers=basic(key), json={"batch": [
        call("identify", userId="u1", traits={"name": "甲", "address": {"street": "文三路479号", "city": "杭州",
                                                                         "state": "浙江", "postalCode": "310012"}}),
        call("identify", userId="u2", traits={"name": "乙", "address": "上海市浦东新区碧波路690号"})]})
    assert sent.status_code == 200, sent.text
    process(clean_database)
    admin = login("admin@example.com")
    first = customer(client, admin, session, name="甲")["profile"]
    assert (first["address"], first["province"], first["city"], first["postcode"]) == (
        "文三路479号", "浙江", "杭州", "310012")
    assert customer(client, admin, session, name="乙")["profile"]["address"] == "上海市浦东新区碧波路690号"


def test_a_chinese_address_header_is_suggested_as_the_address():
    assert imports.suggest_mapping(["姓名", "手机", "详细地址"])["详细地址"] == "address"
    assert imports.suggest_mapping(["name", "mobile", "Address"])["Address"] == "address"


@pytest.mark.parametrize("header", ["邮编", "邮政编码", "postcode", "Post Code", "ZIP", "zip code", "Postal code"])
def test_a_postcode_header_is_suggested_as_the_postcode(header: str):
    assert imports.suggest_mapping(["姓名", "手机", header])[header] == "postcode"


def test_a_postcode_is_stored_shown_edited_exported_and_personalises_messages(  # type: ignore[no-untyped-def]
        client, tree, login, session, clean_database, settings):
    """The postcode is a standard field beside the address: imported from a 邮编 column (a spreadsheet's number
    cell too), read back, edited and normalised (upper case, one space), exported, offered to segments."""
    from kehu.channels import personalise
    from kehu.segments.conditions import STANDARD_FIELDS as SEGMENT_FIELDS

    admin = login("admin@example.com")
    run = imported(client, admin, clean_database, settings,
                   "姓名,手机,地址,邮编\n孙立群,13957308641,文三路479号,310012.0\n")
    assert run["mapping"]["邮编"] == "postcode" and run["warnings"] == 0
    seen = customer(client, admin, session, name="孙立群")["profile"]
    assert (seen["address"], seen["postcode"]) == ("文三路479号", "310012")
    moved = client.patch(f"/api/v1/customers/{seen['id']}", headers=admin, json={"postcode": " sw1a  1aa "})
    assert moved.status_code == 200 and moved.json()["postcode"] == "SW1A 1AA", moved.text
    _, file = export(client, admin, clean_database, settings, format="csv")
    assert [row["邮编"] for row in csv_rows(file)] == ["SW1A 1AA"]
    created = client.post("/api/v1/customers", headers=admin, json={"name": "John Smith", "postcode": "2000"})
    assert created.status_code == 201 and created.json()["postcode"] == "2000"
    too_long = client.post("/api/v1/customers", headers=admin, json={"name": "X", "postcode": "1" * 17})
    assert too_long.status_code == 422 and too_long.headers["content-type"].startswith("application/problem+json")
    session.expire_all()
    contexts = personalise.contexts(session, tree.org.id, "Asia/Shanghai", [seen["id"]])
    assert contexts[seen["id"]]["postcode"] == "SW1A 1AA"
    assert SEGMENT_FIELDS["postcode"] == "text"
    assert normalise.postcode("２００１２０") == "200120"


# -- 2. wrong optional values are warnings -----------------------------------------------------------------------
TIER = {"key": "tier", "label_zh": "会员等级", "label_en": "Tier", "type": "option", "is_pii": False,
        "options": [{"value": "gold", "zh": "金卡", "en": "Gold"}, {"value": "silver", "zh": "银卡", "en": "Silver"}]}
EXPIRES = {"key": "warranty_until", "label_zh": "质保到期", "label_en": "Warranty until", "type": "date",
           "is_pii": False, "options": []}
WARNED = ("姓名,手机,邮箱,性别,生日,会员等级,质保到期\n"
          "张三,13800000001,zhangsan#example.com,男,1945-04-93,金卡,2035-06-30\n"   # 2: e-mail, birthday left out
          "李四,13800000002,ls@example.com,外星,1980-01-01,钻石,1800-01-01\n"       # 3: gender, tier left out
          "王五,,ww#example.com,,,,\n"                                             # 4: no usable identity
          "赵六,13800000004,,女,2035-01-01,,\n")                                   # 5: a birthday ahead: left out


def test_a_wrong_optional_value_is_left_out_and_reported_not_the_row(  # type: ignore[no-untyped-def]
        client, tree, login, session, clean_database, settings):
    admin = login("admin@example.com")
    for field in (TIER, EXPIRES):
        assert client.post("/api/v1/custom-fields", headers=admin, json=field).status_code == 201
    run = imported(client, admin, clean_database, settings, WARNED)
    assert (run["accepted_rows"], run["rejected_rows"], run["warnings"]) == (3, 1, 5), run
    zhang = customer(client, admin, session, name="张三")["profile"]
    assert (zhang["mobile"], zhang.get("email"), zhang.get("birthday"), zhang["gender"]) == (
        "+8613800000001", None, None, "male")
    assert zhang["attributes"] == {"tier": "gold", "warranty_until": "2035-06-30"}
    li = customer(client, admin, session, name="李四")["profile"]
    assert (li["email"], li["birthday"], li.get("gender")) == ("ls@example.com", "1980-01-01", None)
    assert li["attributes"] == {"warranty_until": "1800-01-01"}
    zhao = customer(client, admin, session, name="赵六")["profile"]
    assert zhao.get("birthday") is None and zhao["gender"] == "female"
    # the report: row, column, value as written, reason in the reader's language
    listed = client.get(f"/api/v1/imports/{run['id']}/warnings", headers=admin)
    assert listed.status_code == 200, listed.text
    assert [(w["row_number"], w["column"], w["value"]) for w in listed.json()["items"]] == [
        (2, "邮箱", "zhangsan#example.com"), (2, "生日", "1945-04-93"), (3, "性别", "外星"), (3, "会员等级", "钻石"),
        (5, "生日", "2035-01-01")]
    assert [w["reason"] for w in listed.json()["items"]][:2] == [
        "not an e-mail address: zhangsan#example.com", "not a date (YYYY-MM-DD): 1945-04-93"]
    zh = client.get(f"/api/v1/imports/{run['id']}/warnings?lang=zh&limit=2", headers=admin).json()
    assert zh["items"][1]["reason"] == "不是日期（YYYY-MM-DD）：1945-04-93" and zh["next_cursor"]
    rest = client.get(f"/api/v1/imports/{run['id']}/warnings?lang=zh&cursor={zh['next_cursor']}", headers=admin)
    assert [w["row_number"] for w in rest.json()["items"]] == [3, 3, 5]
    # downloadable like the rejected rows, as CSV or a workbook
    file = client.get(f"/api/v1/imports/{run['id']}/warnings.csv?lang=zh", headers=admin)
    assert file.status_code == 200 and file.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(file.content.decode("utf-8-sig"))))
    assert [(r["行号"], r["列"], r["值"]) for r in rows][:2] == [("2", "邮箱", "zhangsan#example.com"),
                                                                 ("2", "生日", "1945-04-93")]
    assert rows[2]["原因"] == "无法识别的性别：外星（男/女）"
    book = client.get(f"/api/v1/imports/{run['id']}/warnings.xlsx", headers=admin)
    sheet = load_workbook(io.BytesIO(book.content), read_only=True).worksheets[0]
    assert [list(r) for r in sheet.iter_rows(values_only=True)][:2] == [
        ["Row", "Column", "Value", "Reason"], [2, "邮箱", "zhangsan#example.com",
                                               "not an e-mail address: zhangsan#example.com"]]
    # only a row without a usable identity is rejected, with every problem it has
    rejected = client.get(f"/api/v1/imports/{run['id']}/rejections.csv", headers=admin).content.decode("utf-8-sig")
    (row,) = list(csv.DictReader(io.StringIO(rejected)))
    assert row["Row"] == "4" and row["Reason"] == "邮箱: not an e-mail address: ww#example.com"


def test_warnings_are_masked_for_readers_other_than_the_uploader(  # type: ignore[no-untyped-def]
        client, tree, login, session, clean_database, settings):
    for email in ("mkt@example.com", "mkt2@example.com"):
        make_user(session, tree.system, tree.hq, "hq_marketing", email=email, name=email)
    session.commit()
    uploader, reader = login("mkt@example.com"), login("mkt2@example.com")
    content = "姓名,手机,邮箱,生日\n张三,13800000001,zhangsan#example.com,1945-04-93\n"
    run = upload(client, uploader, content.encode()).json()
    preview = client.get(f"/api/v1/imports/{run['id']}/preview", headers=reader).json()
    assert preview[0]["ok"] and "zhangsan#example.com" not in preview[0]["warnings"]
    assert "1945-**-**" in preview[0]["warnings"]
    own = client.get(f"/api/v1/imports/{run['id']}/preview", headers=uploader).json()
    assert "zhangsan#example.com" in own[0]["warnings"]  # they hold the file: to fix it
    client.post(f"/api/v1/imports/{run['id']}/start", headers=uploader)
    run_jobs(clean_database, settings)
    seen = client.get(f"/api/v1/imports/{run['id']}/warnings", headers=reader).json()["items"]
    assert [(w["column"], w["value"]) for w in seen] == [("邮箱", "***.com"), ("生日", "1945-**-**")]
    assert all("zhangsan" not in w["reason"] and "04-93" not in w["reason"] for w in seen)
    file = client.get(f"/api/v1/imports/{run['id']}/warnings.csv", headers=reader).content.decode("utf-8-sig")
    assert "zhangsan" not in file and "04-93" not in file
    mine = client.get(f"/api/v1/imports/{run['id']}/warnings.csv", headers=uploader).content.decode("utf-8-sig")
    assert "zhangsan#example.com" in mine and "1945-04-93" in mine
    assert client.get(f"/api/v1/imports/{run['id']}/warnings", headers=login("b.sales@example.com")).status_code \
        == 404


# -- 3. a custom date is any date --------------------------------------------------------------------------------
def test_a_custom_date_takes_any_date_a_birthday_only_a_lifes_span(client, login, session, tree):  # type: ignore[no-untyped-def]
    admin = login("admin@example.com")
    assert client.post("/api/v1/custom-fields", headers=admin, json=EXPIRES).status_code == 201
    for day in ("2035-06-30", "1800-01-01", "9999-12-31", "2035/6/30", "2035年6月30日"):
        answer = client.post("/api/v1/customers", headers=admin,
                             json={"name": day, "attributes": {"warranty_until": day}})
        assert answer.status_code == 201, (day, answer.text)
        assert answer.json()["attributes"]["warranty_until"] in ("2035-06-30", "1800-01-01", "9999-12-31")
    bad = client.post("/api/v1/customers", headers=admin, json={"attributes": {"warranty_until": "2035-02-30"}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "attributes.warranty_until"
    with pytest.raises(normalise.InvalidValue):
        normalise.birthday("2035-06-30")
    with pytest.raises(normalise.InvalidValue):
        normalise.birthday("1899-12-31")


# -- 4. every target the import offers is stored -----------------------------------------------------------------
# A sample cell for every standard target (``{n}``: the row's number, for values that must differ between
# people) and what the Customer 360 shows of it. A target added to the import without a sample fails here:
# give it one, and store it.
STANDARD = {
    "name": ("欧阳娜娜{n}", "欧阳娜娜{n}"), "mobile": ("1395730864{n}", "+861395730864{n}"),
    "email": ("Nana{n}@Example.com", "nana{n}@example.com"), "gender": ("女", "female"),
    "birthday": ("1990/2/3", "1990-02-03"), "province": ("浙江", "浙江"), "city": ("杭州", "杭州"),
    "address": ("杭州市西湖区文三路 47{n}号", "杭州市西湖区文三路 47{n}号"), "postcode": ("３１００１２", "310012"),
    "lifecycle_stage": ("customer", "customer"),
    "identity:user_id": ("M-{n}", "M-{n}"), "identity:wechat_unionid": ("union-{n}", "union-{n}"),
    "identity:push_token": ("1a0018970a{n}", "1a0018970a{n}"),
    "identity:dealer_customer_no": ("HZ-000{n}", "HZ-000{n}"),
    "identity:vin": ("lsvaa4182e212345{n}", "LSVAA4182E212345{n}"),
    "identity:wechat_openid": ("open-{n}", "open-{n}"),
}
# A custom field of every type, with a sample cell and what is stored of it.
CUSTOM = {
    "text": ({}, "ID.7 Pro", "ID.7 Pro"), "number": ({}, "1,200", 1200), "date": ({}, "2035-06-30", "2035-06-30"),
    "boolean": ({}, "是", True),
    "option": ({"options": TIER["options"]}, "金卡", "gold"),
    "multi_option": ({"options": [{"value": "golf", "zh": "高尔夫", "en": "Golf"},
                                  {"value": "fishing", "zh": "垂钓", "en": "Fishing"}]},
                     "高尔夫,垂钓", ["fishing", "golf"]),
}
UNDEFINED = ("备注", "老客户", "老客户")  # a column nobody defined: an attribute of its own name


def _stored(seen: dict, target: str):  # type: ignore[no-untyped-def]
    if target.startswith("identity:"):
        return {i["kind"]: i["value"] for i in seen["identities"]}.get(target.split(":", 1)[1])
    if target.startswith("attribute:"):
        return seen["profile"]["attributes"].get(target.split(":", 1)[1])
    return seen["profile"].get(target)


def test_every_target_an_import_offers_is_stored_and_shown(  # type: ignore[no-untyped-def]
        client, tree, login, session, clean_database, settings):
    """Two people: one new (written column by column) and one already known by mobile (resolved through One
    ID, traits applied one by one): each column's value is read back through the API's Customer 360."""
    admin = login("admin@example.com")
    offered = imports.valid_targets("profiles")
    assert set(STANDARD) == set(offered), "an import target without a sample here: add one, and store it"
    assert set(CUSTOM) == set(fields.TYPES), "a custom field type without a sample here: add one"
    samples = {target: pair for target, pair in STANDARD.items()}
    for kind, (extra, cell, kept) in CUSTOM.items():
        field = {"key": f"f_{kind}", "label_zh": f"字段{kind}", "label_en": kind, "type": kind, "is_pii": False,
                 "options": [], **extra}
        assert client.post("/api/v1/custom-fields", headers=admin, json=field).status_code == 201
        samples[f"attribute:f_{kind}"] = (cell, kept)
    samples[f"attribute:{UNDEFINED[0]}"] = UNDEFINED[1:]
    known = client.post("/api/v1/customers", headers=admin, json={"name": "旧名字", "mobile": "13957308642"})
    assert known.status_code == 201, known.text
    headers = [f"c{i}" for i in range(len(samples))]
    mapping = dict(zip(headers, samples, strict=True))
    lines = [",".join(headers)] + [",".join(f'"{cell.format(n=n)}"' for cell, _ in samples.values()) for n in (1, 2)]
    run = imported(client, admin, clean_database, settings, "\n".join(lines) + "\n", mapping)
    assert (run["accepted_rows"], run["rejected_rows"], run["warnings"], run["profiles_created"]) == (2, 0, 0, 1), run
    for n in (1, 2):
        seen = customer(client, admin, session, mobile=f"+861395730864{n}")
        missing = {}
        for target, (_, kept) in samples.items():
            expected = kept.format(n=n) if isinstance(kept, str) else kept
            if _stored(seen, target) != expected:
                missing[target] = (expected, _stored(seen, target))
        assert missing == {}, f"row {n}: imported but not stored (expected, shown): {missing}"
