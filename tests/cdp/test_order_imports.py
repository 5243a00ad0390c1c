"""Import of orders: rows sharing an order number become one order with its lines, an order is accepted or
rejected as a whole, customers are found (or created) through One ID, dealers are checked against the
importer's scope, re-importing adds nothing and a dying worker's import resumes without repeating orders."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select

from kehu.cdp.models import Event, ImportRejection, Order, OrderLine, Profile
from kehu.core.jobs import Worker
from tests.cdp.test_imports import run_jobs, worker_dies_in_second_chunk

HEADER = "订单号,下单日期,客户姓名,手机,经销商代码,车型代码,车型,数量,单价,订单金额,订单状态\n"
ORDERS = (
    HEADER
    + "SO-1,2025-03-05 14:30,张伟,13812345678,,ID4-PRO,ID.4 Pro,1,\"￥259,800\",,\n"        # 2 order 1, line 1
    + "SO-1,2025-03-05 14:30,张伟,13812345678,,MAT-01,脚垫,4,120,,\n"                     # 3 order 1, line 2
    + "SO-2,2025/4/1,李娜,13900001111,BJ001,ID6-X,ID.6 X,1,31.2万,,已付款\n"              # 4 at another dealer
    + "SO-3,2025-05-01,王芳,13700002222,,ID3,ID.3,1,159800,,\n"                           # 5 sound, but…
    + "SO-3,2025-05-01,王芳,13700002222,,MAT-01,脚垫,两个,120,,\n"                        # 6 …a bad quantity
    + "SO-4,2025-13-45,赵六,13700003333,,ID3,ID.3,1,159800,,\n"                           # 7 bad date
    + "SO-5,2025-06-01,钱七,13700004444,NOPE,ID3,ID.3,1,159800,,\n"                       # 8 unknown dealer
    + ",2025-06-02,孙八,13700005555,,ID3,ID.3,1,159800,,\n"                               # 9 no order number
    + "SO-6,2025年7月8日,周九,13700006666,,,,,,25.8万,已交付\n"                            # 10 a total only
    + "SO-7,2025-07-09,吴十,,,ID3,ID.3,1,159800,,\n"                                       # 11 no identity
)


def start_and_run(client, headers, content: bytes, database, settings, filename: str = "订单.csv"):  # type: ignore[no-untyped-def]
    body = client.post("/api/v1/imports?kind=orders", headers=headers,
                       files={"file": (filename, content, "text/csv")})
    assert body.status_code == 201, body.text
    run_id = body.json()["id"]
    started = client.post(f"/api/v1/imports/{run_id}/start", headers=headers)
    assert started.status_code == 200, started.text
    run_jobs(database, settings)
    return client.get(f"/api/v1/imports/{run_id}", headers=headers).json()


def test_an_order_file_with_defects(client, tree, login, session, clean_database, settings):
    admin = login("admin@example.com")
    uploaded = client.post("/api/v1/imports?kind=orders", headers=admin,
                           files={"file": ("订单.csv", ORDERS.encode("gbk"), "text/csv")}).json()
    assert uploaded["kind"] == "orders" and uploaded["total_rows"] == 10
    assert uploaded["mapping"] == {"订单号": "order_no", "下单日期": "ordered_at", "客户姓名": "name",
                                   "手机": "mobile", "经销商代码": "dealer", "车型代码": "sku", "车型": "product",
                                   "数量": "quantity", "单价": "unit_price", "订单金额": "total",
                                   "订单状态": "status"}
    preview = client.get(f"/api/v1/imports/{uploaded['id']}/preview?limit=20", headers=admin).json()
    assert [(p["row_number"], p["ok"]) for p in preview] == [
        (2, True), (3, True), (4, True), (5, False), (6, False), (7, False), (8, False), (9, False), (10, True),
        (11, False)]
    client.post(f"/api/v1/imports/{uploaded['id']}/start", headers=admin)
    run_jobs(clean_database, settings)
    done = client.get(f"/api/v1/imports/{uploaded['id']}", headers=admin).json()
    assert (done["status"], done["accepted_rows"], done["rejected_rows"], done["orders_created"],
            done["profiles_created"]) == ("done", 4, 6, 3, 3)

    orders = {o.external_id: o for o in session.scalars(select(Order))}
    assert set(orders) == {"SO-1", "SO-2", "SO-6"}
    first = orders["SO-1"]
    lines = session.scalars(select(OrderLine).where(OrderLine.order_id == first.id).order_by(OrderLine.id)).all()
    assert [(x.sku, x.quantity, x.unit_price) for x in lines] == [("ID4-PRO", 1, Decimal("259800.00")),
                                                                  ("MAT-01", 4, Decimal("120.00"))]
    assert first.total == Decimal("260280.00") and first.status == "placed"
    assert first.ordered_at.astimezone(UTC) == datetime(2025, 3, 5, 6, 30, tzinfo=UTC)  # 14:30 in Shanghai
    assert first.unit_id == tree.hq.id  # no dealer column value: the importing unit
    zhang = session.get(Profile, first.profile_id)
    assert (zhang.name, zhang.mobile) == ("张伟", "+8613812345678")
    assert (orders["SO-2"].unit_id, orders["SO-2"].status, orders["SO-2"].total) == (
        tree.dealer_c.id, "paid", Decimal("312000.00"))
    assert (orders["SO-6"].status, orders["SO-6"].total) == ("delivered", Decimal("258000.00"))

    report = client.get(f"/api/v1/imports/{uploaded['id']}/rejections.csv?lang=zh", headers=admin)
    reasons = {int(r["行号"]): r["原因"]  # the headers in the language asked for, as the reasons (issue 20)
               for r in csv.DictReader(io.StringIO(report.content.decode("utf-8-sig")))}
    assert set(reasons) == {5, 6, 7, 8, 9, 11}
    assert "第 6 行有错误，整单未导入" in reasons[5]
    assert "数量: 数量须为正整数：两个" in reasons[6]
    assert reasons[7].startswith("下单日期:")
    assert "NOPE" in reasons[8] and "订单号" in reasons[9] and "可识别身份" in reasons[11]


def test_reimporting_an_order_file_adds_nothing(client, tree, login, session, clean_database, settings):
    admin = login("admin@example.com")
    start_and_run(client, admin, ORDERS.encode(), clean_database, settings)
    counts = (session.scalar(select(func.count()).select_from(Order)),
              session.scalar(select(func.count()).select_from(OrderLine)),
              session.scalar(select(func.count()).select_from(Event)),
              session.scalar(select(func.count()).select_from(Profile)))
    again = start_and_run(client, admin, ORDERS.encode(), clean_database, settings)
    assert (again["accepted_rows"], again["orders_created"], again["profiles_created"]) == (4, 0, 0)
    session.expire_all()
    assert (session.scalar(select(func.count()).select_from(Order)),
            session.scalar(select(func.count()).select_from(OrderLine)),
            session.scalar(select(func.count()).select_from(Event)),
            session.scalar(select(func.count()).select_from(Profile))) == counts


def test_order_imports_keep_to_the_importers_dealers(client, tree, login, session, clean_database, settings):
    manager = login("a.manager@example.com")  # dealer manager of 上海浦东店 (SH001)
    content = (HEADER + "SO-A,2025-03-05,张伟,13812345678,SH001,ID3,ID.3,1,159800,,\n"
               + "SO-B,2025-03-05,李娜,13900001111,BJ001,ID3,ID.3,1,159800,,\n"
               + "SO-C,2025-03-05,王芳,13700002222,,ID3,ID.3,1,159800,,\n").encode()
    done = start_and_run(client, manager, content, clean_database, settings)
    assert (done["accepted_rows"], done["rejected_rows"]) == (2, 1)
    units = {o.external_id: o.unit_id for o in session.scalars(select(Order))}
    assert units == {"SO-A": tree.dealer_a.id, "SO-C": tree.dealer_a.id}
    # A salesperson books their own orders but imports no files.
    sales = client.post("/api/v1/imports?kind=orders", headers=login("a.sales@example.com"),
                        files={"file": ("o.csv", content, "text/csv")})
    assert sales.status_code == 403
    unknown_kind = client.post("/api/v1/imports?kind=planets", headers=manager,
                               files={"file": ("o.csv", content, "text/csv")})
    assert unknown_kind.status_code == 422 and unknown_kind.json()["errors"][0]["field"] == "query.kind"


def test_an_order_mapping_needs_an_order_number_and_a_date(client, tree, login):
    admin = login("admin@example.com")
    run_id = client.post("/api/v1/imports?kind=orders", headers=admin,
                         files={"file": ("o.csv", ORDERS.encode(), "text/csv")}).json()["id"]
    bad = client.put(f"/api/v1/imports/{run_id}/mapping", headers=admin,
                     json={"mapping": {"订单号": "", "下单日期": "", "手机": "mobile", "车型": "attribute:车型"}})
    assert bad.status_code == 422
    messages = [e["message"] for e in bad.json()["errors"]]
    assert "map a column to order_no" in messages and "map a column to ordered_at" in messages
    assert any(e["field"] == "mapping.车型" for e in bad.json()["errors"])  # no attributes on orders


def test_an_order_import_whose_worker_dies_resumes(client, tree, login, session, clean_database, monkeypatch):
    lines = [HEADER.strip()]
    for n in range(6):  # six orders of two lines each
        lines += [f"SO-{n},2025-03-05,客户{n},1390000{n:04d},,ID3,ID.3,1,159800,,",
                  f"SO-{n},2025-03-05,客户{n},1390000{n:04d},,MAT,脚垫,2,100,,"]
    admin = login("admin@example.com")
    run_id = client.post("/api/v1/imports?kind=orders", headers=admin,
                         files={"file": ("o.csv", "\n".join(lines).encode(), "text/csv")}).json()["id"]
    client.post(f"/api/v1/imports/{run_id}/start", headers=admin)
    worker_dies_in_second_chunk(monkeypatch, clean_database, "process_messages")
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Order)) == 2  # the first chunk: two whole orders
    time.sleep(1.2)
    assert Worker(clean_database, lease_seconds=30, name="rescuer").run_once()
    done = client.get(f"/api/v1/imports/{run_id}", headers=admin).json()
    assert (done["status"], done["accepted_rows"], done["orders_created"]) == ("done", 12, 6)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(OrderLine)) == 12
    assert session.scalar(select(func.count()).select_from(ImportRejection)) == 0
