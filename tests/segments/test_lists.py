"""Static segments filled from a list: every row is added, found already there, or rejected with its row
number and reason; the same list twice adds nothing; only static segments, only for those who may change
them, only customers of the uploader's organisation."""

from __future__ import annotations

import io

from tests.segments.test_saved_segments import create, member_names

LIST = "手机号,备注\n13800000001,张伟\n138 0000 0002,李娜格式不同\n+8613800000003,王芳\n12345,太短\n" \
       "13800000001,重复\n\n13900009999,不存在\n13800000004,刘洋\n"


def upload(client, headers, segment_id, content: bytes, name: str = "展会名单.csv", **form):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/segments/{segment_id}/members/upload", headers=headers,
                       files={"file": (name, content)}, data=form)


def test_a_list_fills_a_static_segment_and_accounts_for_every_row(people, client, login):  # type: ignore[no-untyped-def]
    admin = login("admin@example.com")
    fair = create(client, admin, name="车展名单", kind="static")
    assert (fair["status"], fair["member_count"]) == ("ready", 0)
    answer = upload(client, admin, fair["id"], LIST.encode("gb18030"))  # as Excel saves a Chinese CSV
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["rows"], body["added"], body["already"], body["column"]) == (7, 4, 0, "手机号")
    assert [(r["row"], r["code"]) for r in body["rejected"]] == [(5, "phone_invalid"), (6, "repeated"),
                                                                  (8, "not_found")]
    assert "第 2 行" in body["rejected"][1]["reason"]  # the admin reads Chinese
    assert member_names(client, admin, fair["id"]) == ["刘洋", "张伟", "李娜", "王芳"]
    assert client.get(f"/api/v1/segments/{fair['id']}", headers=admin).json()["member_count"] == 4

    again = upload(client, admin, fair["id"], LIST.encode("utf-8")).json()
    assert (again["added"], again["already"], len(again["rejected"])) == (0, 4, 3)

    # by customer number, from a workbook, naming the column
    from openpyxl import Workbook

    chen = next(p for p in client.post("/api/v1/segments/preview", headers=admin, json={"condition": {
        "type": "field", "field": "name", "op": "eq", "value": "陈静"}}).json()["sample"])
    book = Workbook()
    book.active.append(["编号", "客户"])
    book.active.append([chen["id"], "陈静"])
    book.active.append(["abc", "?"])
    file = io.BytesIO()
    book.save(file)
    by_id = upload(client, admin, fair["id"], file.getvalue(), "名单.xlsx", match_by="customer_id", column="编号")
    assert by_id.status_code == 200, by_id.text
    assert (by_id.json()["added"], [r["code"] for r in by_id.json()["rejected"]]) == (1, ["not_customer_number"])
    assert "陈静" in member_names(client, admin, fair["id"])


def test_lists_are_refused_where_they_do_not_belong(people, client, login):  # type: ignore[no-untyped-def]
    admin = login("admin@example.com")
    fair = create(client, admin, name="车展名单", kind="static")
    dynamic = create(client, admin, name="上海", condition={"type": "field", "field": "city", "op": "eq",
                                                              "value": "上海"})
    assert upload(client, admin, dynamic["id"], LIST.encode()).status_code == 409
    unknown_kind = upload(client, admin, fair["id"], LIST.encode(), match_by="shoe_size")
    assert unknown_kind.status_code == 422 and unknown_kind.json()["errors"][0]["field"] == "match_by"
    no_column = upload(client, admin, fair["id"], LIST.encode(), column="电话")
    assert no_column.status_code == 422 and no_column.json()["errors"][0]["field"] == "column"
    ambiguous = upload(client, admin, fair["id"], "甲,乙\n1,2\n".encode())
    assert ambiguous.status_code == 422 and ambiguous.json()["errors"][0]["field"] == "column"
    not_text = upload(client, admin, fair["id"], b"\xff\xfe\x00\x01" * 10)
    assert not_text.status_code == 422
    wrong_type = upload(client, admin, fair["id"], b"%PDF-1.4", "名单.pdf")
    assert wrong_type.status_code == 422 and wrong_type.json()["errors"][0]["field"] == "file"
    # a dealer manager reads segments but does not fill them; another organisation does not see them at all
    assert upload(client, login("a.manager@example.com"), fair["id"], LIST.encode()).status_code == 403
    assert upload(client, login("boss@other.example.com"), fair["id"], LIST.encode()).status_code == 404
    assert member_names(client, admin, fair["id"]) == []


def test_a_list_puts_a_tag_on_the_customers_the_uploader_may_update(people, client, login):  # type: ignore[no-untyped-def]
    admin, dealer = login("admin@example.com"), login("a.manager@example.com")
    vip = client.post("/api/v1/tags", headers=admin, json={"name": "车展到访"}).json()
    everyone = "手机\n" + "".join(f"1380000000{n}\n" for n in range(1, 6))
    # dealer A's manager tags dealer A's customers; the others are not theirs to tag
    answer = upload_tag(client, dealer, vip["id"], everyone.encode())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["added"], body["already"]) == (2, 0)
    assert [(r["row"], r["code"]) for r in body["rejected"]] == [(4, "not_found"), (5, "not_found"), (6, "not_found")]
    assert tagged_names(client, admin, vip["id"]) == ["张伟", "李娜"]
    again = upload_tag(client, admin, vip["id"], everyone.encode()).json()
    assert (again["added"], again["already"], again["rejected"]) == (3, 2, [])
    assert tagged_names(client, admin, vip["id"]) == ["刘洋", "张伟", "李娜", "王芳", "陈静"]
    # a rule's tag is the rule's; a stranger's upload finds no tag
    fair = create(client, admin, name="上海", condition={"type": "field", "field": "city", "op": "eq",
                                                          "value": "上海"})
    ruled = client.post("/api/v1/tags", headers=admin, json={"name": "上海客户", "segment_id": fair["id"]}).json()
    assert upload_tag(client, admin, ruled["id"], everyone.encode()).status_code == 409
    assert upload_tag(client, login("boss@other.example.com"), vip["id"], everyone.encode()).status_code == 404


def upload_tag(client, headers, tag_id, content: bytes, **form):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/tags/{tag_id}/customers/upload", headers=headers,
                       files={"file": ("名单.csv", content)}, data=form)


def tagged_names(client, headers, tag_id) -> list[str]:  # type: ignore[no-untyped-def]
    body = client.post("/api/v1/segments/preview", headers=headers, json={
        "condition": {"type": "tag", "tag_id": tag_id}}).json()
    return sorted(p["name"] for p in body["sample"])
