"""Import of profiles: defects are reported row by row, accepted rows land through One ID, re-import adds
nothing, XLSX works, and an import whose worker dies resumes after its last committed chunk."""

from __future__ import annotations

import csv
import io
import itertools
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from kehu.app import make_worker
from kehu.cdp import imports
from kehu.cdp.identity import Resolver, message_identities
from kehu.cdp.models import ImportRejection, ImportRun, ImportWarning, Profile
from kehu.core.jobs import Job, Worker

HEADER = "姓名,手机,邮箱,性别,生日,城市,车架号,备注\n"
DEFECTIVE = (
    HEADER
    + "张伟,13812345678,zw@example.com,男,1985-03-02,上海,LSVAA4182E2123456,老客户\n"   # 2 ok
    + "李娜,12345,,女,1990-01-01,杭州,,\n"                                              # 3 bad phone
    + "王芳,13900001111,,女,1990-13-45,北京,,\n"                                        # 4 bad date: left out
    + ",,,,,,,\n"                                                                       # 5 empty: skipped
    + "张伟,138 1234 5678,,男,,上海,,重复行\n"                                          # 6 same person again
    + "无名氏,,,,,,,没有身份\n"                                                          # 7 no identity
    + "赵六,１３７００００２２２２,zl@EXAMPLE.com,女,1992年5月3日,广州,,全角数字\n"       # 8 ok (full-width)
    + "钱七,13700003333,,外星,,深圳,INVALIDVIN,\n"                                      # 9 bad gender, VIN: left out
)


def upload(client, headers, content: bytes, filename: str = "客户.csv"):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/imports", headers=headers, files={"file": (filename, content, "text/csv")})


def run_jobs(database, settings) -> None:  # type: ignore[no-untyped-def]
    worker = make_worker(database, settings)
    while worker.run_once():
        pass


def live(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Profile).where(Profile.merged_into_id.is_(None)))


def test_a_gbk_file_full_of_defects(client, tree, login, session, clean_database, settings):
    admin = login("admin@example.com")
    uploaded = upload(client, admin, DEFECTIVE.encode("gbk"))
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    assert body["encoding"] == "gb18030" and body["total_rows"] == 7
    assert body["mapping"] == {"姓名": "name", "手机": "mobile", "邮箱": "email", "性别": "gender",
                               "生日": "birthday", "城市": "city", "车架号": "identity:vin", "备注": "attribute:备注"}
    preview = client.get(f"/api/v1/imports/{body['id']}/preview", headers=admin).json()
    assert [(p["row_number"], p["ok"]) for p in preview] == [(2, True), (3, False), (4, True), (6, True),
                                                            (7, False), (8, True), (9, True)]
    assert preview[2]["warnings"] == "生日: not a date (YYYY-MM-DD): 1990-13-45" and preview[0]["warnings"] == ""
    started = client.post(f"/api/v1/imports/{body['id']}/start", headers=admin)
    assert started.status_code == 200 and started.json()["status"] == "queued"
    run_jobs(clean_database, settings)
    done = client.get(f"/api/v1/imports/{body['id']}", headers=admin).json()
    assert (done["status"], done["job_status"], done["accepted_rows"], done["rejected_rows"], done["warnings"]) == (
        "done", "succeeded", 5, 2, 3)
    assert done["profiles_created"] == 4 and live(session) == 4
    wang = session.scalars(select(Profile).where(Profile.name == "王芳")).one()
    assert (wang.mobile, wang.birthday, wang.city) == ("+8613900001111", None, "北京")
    assert wang.lifecycle_stage == "prospect"  # someone a list names, not an anonymous visitor (issue 20)
    zhang = session.scalars(select(Profile).where(Profile.name == "张伟")).one()
    assert zhang.mobile == "+8613812345678" and zhang.attributes["备注"] == "重复行"
    zhao = session.scalars(select(Profile).where(Profile.name == "赵六")).one()
    assert (zhao.mobile, zhao.email, zhao.birthday.isoformat()) == ("+8613700002222", "zl@example.com", "1992-05-03")
    report = client.get(f"/api/v1/imports/{body['id']}/rejections.csv", headers=admin)
    assert report.status_code == 200 and report.content.startswith(b"\xef\xbb\xbf")
    rejected = list(csv.DictReader(io.StringIO(report.content.decode("utf-8-sig"))))
    reasons = {int(r["Row"]): r["Reason"] for r in rejected}  # headers in the language asked for (en)
    assert set(reasons) == {3, 7}
    assert "手机" in reasons[3] and "no identifying value" in reasons[7]
    assert rejected[0]["姓名"] == "李娜"  # the row comes back as it was, ready to fix


def test_importing_the_same_file_twice_creates_no_duplicates(client, tree, login, session, clean_database,
                                                             settings):
    admin = login("admin@example.com")
    for _ in range(2):
        run_id = upload(client, admin, DEFECTIVE.encode("utf-8")).json()["id"]
        client.post(f"/api/v1/imports/{run_id}/start", headers=admin)
        run_jobs(clean_database, settings)
    second = client.get(f"/api/v1/imports/{run_id}", headers=admin).json()
    assert second["accepted_rows"] == 5 and second["profiles_created"] == 0
    assert live(session) == 4


def test_a_known_person_in_a_file_of_new_people_is_updated_not_copied(client, tree, login, session,
                                                                     clean_database, settings):
    """One row of a file of new people is someone an earlier import brought (by e-mail): that person is updated
    and takes the new phone, every other row is a new person."""
    admin = login("admin@example.com")
    known = upload(client, admin, (HEADER + "老客户,13911110000,old@example.com,,,,,\n").encode()).json()["id"]
    client.post(f"/api/v1/imports/{known}/start", headers=admin)
    run_jobs(clean_database, settings)
    lines = [f"新客户{n},1390000{n:04d},,,,,," for n in range(8)]
    lines.insert(5, "老客户改名,13911112222,OLD@example.com,女,,,,")
    run_id = upload(client, admin, (HEADER + "\n".join(lines)).encode()).json()["id"]
    client.post(f"/api/v1/imports/{run_id}/start", headers=admin)
    run_jobs(clean_database, settings)
    done = client.get(f"/api/v1/imports/{run_id}", headers=admin).json()
    assert (done["status"], done["accepted_rows"], done["profiles_created"]) == ("done", 9, 8)
    assert live(session) == 9
    person = session.scalars(select(Profile).where(Profile.email == "old@example.com")).one()
    assert (person.name, person.mobile, person.gender) == ("老客户改名", "+8613911112222", "female")


def test_xlsx_is_read_like_csv(client, tree, login, session, clean_database, settings):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Name", "Mobile Phone", "Birthday", "VIN"])
    sheet.append(["Li Lei", "13511112222", "1988-08-08", "LSVAA4182E2123457"])
    sheet.append([None, None, None, None])
    sheet.append(["Han Meimei", "bad", None, None])
    buffer = io.BytesIO()
    book.save(buffer)
    admin = login("admin@example.com")
    body = upload(client, admin, buffer.getvalue(), "customers.xlsx").json()
    assert body["mapping"] == {"Name": "name", "Mobile Phone": "mobile", "Birthday": "birthday",
                               "VIN": "identity:vin"}
    client.post(f"/api/v1/imports/{body['id']}/start", headers=admin)
    run_jobs(clean_database, settings)
    done = client.get(f"/api/v1/imports/{body['id']}", headers=admin).json()
    assert (done["total_rows"], done["accepted_rows"], done["rejected_rows"]) == (2, 1, 1)


def test_bad_files_and_mappings_are_clear_errors(client, tree, login):
    admin = login("admin@example.com")
    assert upload(client, admin, b"", "x.csv").status_code == 422
    assert upload(client, admin, b"a,b\n", "x.csv").json()["errors"][0]["message"].startswith("the file has a header")
    assert upload(client, admin, b"PK\x03\x04garbage", "x.xlsx").status_code == 422
    assert upload(client, admin, b"name;phone", "x.pdf").json()["errors"][0]["field"] == "file"
    dup = upload(client, admin, "手机,手机\n1,2\n".encode(), "x.csv")
    assert dup.status_code == 422 and "unique" in dup.json()["errors"][0]["message"]
    run_id = upload(client, admin, DEFECTIVE.encode(), "x.csv").json()["id"]
    bad = client.put(f"/api/v1/imports/{run_id}/mapping", headers=admin,
                     json={"mapping": {"姓名": "name", "手机": "name", "不存在": "email", "邮箱": "planet"}})
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"mapping.手机", "mapping.不存在", "mapping.邮箱", "mapping"} <= fields
    assert client.post(f"/api/v1/imports/{run_id}/start", headers=admin).status_code == 200
    assert client.post(f"/api/v1/imports/{run_id}/start", headers=admin).status_code == 409


def test_imports_respect_roles_and_units(client, tree, login):
    assert upload(client, login("a.sales@example.com"), DEFECTIVE.encode()).status_code == 403
    run_id = upload(client, login("a.manager@example.com"), DEFECTIVE.encode()).json()["id"]
    assert client.get(f"/api/v1/imports/{run_id}", headers=login("b.sales@example.com")).status_code == 404
    assert client.get(f"/api/v1/imports/{run_id}/rejections.csv",
                      headers=login("boss@other.example.com")).status_code == 404


class WorkerDied(BaseException):
    pass


def worker_dies_in_second_chunk(monkeypatch, database, step: str = "store_imported") -> None:  # type: ignore[no-untyped-def]
    """Run the queued import with chunks of 4 rows on a worker that dies while storing the second chunk
    (``step``: what stores a chunk of that kind of file)."""
    monkeypatch.setattr(imports, "CHUNK_ROWS", 4)
    real = getattr(imports, step)
    calls = {"n": 0}

    def dies_on_second_chunk(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise WorkerDied
        return real(*args, **kwargs)

    monkeypatch.setattr(imports, step, dies_on_second_chunk)
    with pytest.raises(WorkerDied):
        Worker(database, lease_seconds=1, name="dying").run_once()


def test_an_import_whose_worker_dies_resumes_and_repeats_nothing(client, tree, login, session, clean_database,
                                                                  monkeypatch):
    """Every third row's birthday is wrong: its warning is stored with the chunk, once, whatever chunk died."""
    lines = [HEADER.strip()] + [f"客户{n},1390000{n:04d},,,{'1945-04-93' if n % 3 == 0 else ''},,,第{n}行"
                                for n in range(10)] + ["坏,123,,,,,,"]
    admin = login("admin@example.com")
    run_id = upload(client, admin, "\n".join(lines).encode()).json()["id"]
    client.post(f"/api/v1/imports/{run_id}/start", headers=admin)
    worker_dies_in_second_chunk(monkeypatch, clean_database)
    session.expire_all()
    assert live(session) == 4  # the first chunk was committed with its checkpoint
    time.sleep(1.2)
    assert Worker(clean_database, lease_seconds=30, name="rescuer").run_once()
    done = client.get(f"/api/v1/imports/{run_id}", headers=admin).json()
    assert (done["status"], done["accepted_rows"], done["rejected_rows"], done["warnings"]) == ("done", 10, 1, 4)
    assert live(session) == 10
    assert session.scalar(select(func.count()).select_from(ImportRejection)) == 1
    assert sorted(session.scalars(select(ImportWarning.row_number))) == [2, 5, 8, 11]


def test_rejection_reasons_come_in_the_readers_language(client, tree, login, clean_database, settings):
    admin = login("admin@example.com")
    run_id = upload(client, admin, DEFECTIVE.encode()).json()["id"]
    client.post(f"/api/v1/imports/{run_id}/start", headers=admin)
    run_jobs(clean_database, settings)
    zh = client.get(f"/api/v1/imports/{run_id}/rejections.csv?lang=zh", headers=admin).content.decode("utf-8-sig")
    assert "手机: 不是有效的手机号：12345" in zh and "该行没有可识别身份的值" in zh
    en = client.get(f"/api/v1/imports/{run_id}/rejections.csv", headers=admin).content.decode("utf-8-sig")
    assert "手机: not a valid phone number: 12345" in en


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("quoted", [True, False])
def test_a_file_is_cut_into_parts_between_records(encoding, newline, quoted):
    """Parts read apart give exactly the file's rows, numbered as a spreadsheet shows them, even where a
    quoted field spans lines, lines are empty or the file has a BOM; a file without quotes is cut by its
    newlines alone (the quick path), with the same result."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(["姓名", "手机", "备注"])
    for n in range(9):
        writer.writerow([f"客户{n}", f"1390000{n:04d}", "第一行\n第二行" if quoted and n % 3 == 0 else "普通"])
        if n == 4:
            buffer.write(newline + "," * 2 + newline)  # an empty line and a line of empty cells
    content = buffer.getvalue().encode(encoding)
    assert (b'"' in content) is quoted
    headers, parts = imports.csv_parts(content, encoding, 2)
    assert headers == ["姓名", "手机", "备注"] and len(parts) == (5 if quoted else 6)  # quick: empty lines count
    assert parts[0][1] == len("姓名,手机,备注".encode(encoding)) + len(newline)  # (a BOM included)
    assert parts[-1][2] == len(content)
    assert all(a[2] == b[1] for a, b in itertools.pairwise(parts))  # one after another, no gaps
    read_apart = [row for first, start, end in parts
                  for row in imports.part_rows(content[start:end], encoding, headers, first)]
    assert read_apart == list(imports.rows(content, "客户.csv"))
    assert [n for n, _ in read_apart] == [2, 3, 4, 5, 6, 9, 10, 11, 12]  # 7 and 8 are empty
    assert read_apart[0][1]["备注"] == ("第一行\n第二行" if quoted else "普通")


def test_two_workers_share_the_parts_and_a_person_in_both_is_one_profile(client, tree, login, session,
                                                                         clean_database, monkeypatch):
    """Two workers store the two parts of a file at the same moment; both hold the same new person (rows 4
    and 39). One of them finds the person taken when it writes, starts its part again and resolves the row
    onto that profile; the later row of the file wins whatever the order the parts were stored in."""
    if clean_database.is_sqlite:
        pytest.skip("SQLite has one writer: its single worker takes the parts one after another")
    monkeypatch.setattr(imports, "CHUNK_ROWS", 20)
    lines = [HEADER.strip()] + [f"客户{n},1390000{n:04d},,,,,,第{n}行" for n in range(40)]
    lines[3] = "旧名字,13912340000,,,,,,"
    lines[38] = "新名字,13912340000,,,,,,"
    admin = login("admin@example.com")
    run_id = upload(client, admin, "\n".join(lines).encode()).json()["id"]
    both_looked = threading.Barrier(2, timeout=30)
    calls: list[str] = []
    real = imports.store_imported
    real_lookup = Resolver.preload_values

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(threading.current_thread().name)
        return real(*args, **kwargs)

    waited: set[str] = set()

    def looked_up(resolver, *args, **kwargs):  # type: ignore[no-untyped-def]
        found = real_lookup(resolver, *args, **kwargs)
        name = threading.current_thread().name
        if calls.count(name) == 1 and name not in waited:
            waited.add(name)
            # each worker's first part has read who holds its identities before either writes: waiting only
            # until both had started, a loaded machine let one commit before the other looked, and nothing collided
            both_looked.wait()
        return found

    monkeypatch.setattr(imports, "store_imported", counted)
    monkeypatch.setattr(Resolver, "preload_values", looked_up)
    client.post(f"/api/v1/imports/{run_id}/start", headers=admin)

    def work(name: str) -> None:
        worker = Worker(clean_database, name=name, poll_seconds=0.05)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not worker.run_once():
                with clean_database.sessionmaker() as s:
                    if s.get(ImportRun, run_id).status == "done":
                        return
                time.sleep(0.05)

    threads = [threading.Thread(target=work, args=(f"w{i}",), name=f"w{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = client.get(f"/api/v1/imports/{run_id}", headers=admin).json()
    assert (done["status"], done["job_status"], done["accepted_rows"], done["profiles_created"]) == \
        ("done", "succeeded", 40, 39)
    assert sorted(set(calls)) == ["w0", "w1"] and len(calls) == 3  # one part was stored again
    assert live(session) == 39
    person = session.scalars(select(Profile).where(Profile.mobile == "+8613912340000")).one()
    assert person.name == "新名字"
    parts = list(session.scalars(select(Job).where(Job.parent_id == done["job_id"])))
    # the part that lost started again at once, inside its job: no failed attempt, no back-off
    assert len(parts) == 2 and {(p.status, p.attempts) for p in parts} == {("succeeded", 1)}


def test_a_row_lists_its_identities_as_one_id_would_read_them():
    mapping = {"会员号": "identity:user_id", "车架号": "identity:vin", "邮箱": "email", "手机": "mobile",
               "openid": "identity:wechat_openid", "姓名": "name"}
    row = {"会员号": "M-1", "车架号": "LSVAA4182E2123456", "邮箱": "A@Example.com", "手机": "138 1234 5678",
           "openid": "o-1", "姓名": "张伟"}
    message = imports.RowReader(mapping).message(1, 2, row, "f.csv", datetime.now(UTC))
    read = message_identities({k: v for k, v in message.items() if k != "identities"})
    assert message["identities"] == read[0] == [("user_id", "M-1"), ("mobile", "+8613812345678"),
                                                ("email", "a@example.com"), ("wechat_openid", "o-1"),
                                                ("vin", "LSVAA4182E2123456")]
