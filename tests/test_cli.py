"""The command line as a user runs it: real processes against the test database."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from tests.factories.cdp import basic


def kehu(database_url: str, tmp_path, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "KEHU_DATABASE_URL": database_url, "KEHU_DATA_DIR": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "kehu", *args], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=180)


def test_demo_is_idempotent_and_users_and_sources_can_be_created(database_url, clean_database, tmp_path, client):
    first = kehu(database_url, tmp_path, "demo", "--no-serve", "--customers", "0")
    assert first.returncode == 0, first.stderr
    assert "admin@demo.kehu.dev" in first.stdout
    again = kehu(database_url, tmp_path, "demo", "--no-serve", "--customers", "0")
    assert again.returncode == 0 and "already exists" in again.stdout
    created = kehu(database_url, tmp_path, "user", "create", "--org", "demo", "--email", "cli@demo.kehu.dev",
                   "--password", "long-enough-1", "--role", "dealer_sales", "--unit", "SH001")
    assert created.returncode == 0, created.stdout + created.stderr
    duplicate = kehu(database_url, tmp_path, "user", "create", "--org", "demo", "--email", "cli@demo.kehu.dev",
                     "--password", "long-enough-1", "--role", "dealer_sales")
    assert duplicate.returncode == 1 and "already used" in duplicate.stdout
    unknown_unit = kehu(database_url, tmp_path, "user", "create", "--org", "demo", "--email", "x@demo.kehu.dev",
                        "--password", "long-enough-1", "--role", "dealer_sales", "--unit", "NOPE")
    assert unknown_unit.returncode == 1
    source = kehu(database_url, tmp_path, "source", "create", "--org", "demo", "官网", "--kind", "web")
    assert source.returncode == 0, source.stdout + source.stderr
    write_key = source.stdout.strip().splitlines()[-1]
    assert write_key.startswith("wk_")
    response = client.post("/v1/track", headers=basic(write_key), json={"userId": "u1", "event": "官网访问"})
    assert response.status_code == 200
    generated = kehu(database_url, tmp_path, "generate", "--customers", "40", "--events", "5", "--seed", "9",
                     "--dealers", "20", "--duplicates", "0.5", "--truth", str(tmp_path / "truth.csv"))
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "8 dealers added" in generated.stdout and "40 customers as" in generated.stdout
    truth = (tmp_path / "truth.csv").read_text().splitlines()
    assert truth[0] == "profile_id,person" and len(truth) > 41
    assert re.search(r"Sales: \d+ leads, \d+ deals", generated.stdout)
    scored = kehu(database_url, tmp_path, "score-identities", "--truth", str(tmp_path / "truth.csv"), "--json")
    assert scored.returncode == 0, scored.stdout + scored.stderr
    figures = json.loads(scored.stdout)
    # the duplicates share no identity: One ID (exact matching) merges none of them yet
    assert figures["records"] == len(truth) - 1 and figures["people"] == 40 and figures["true_pairs"] > 0
    assert (figures["found_pairs"], figures["recall"], figures["f1"]) == (0, 0.0, 0.0)
    repeated = kehu(database_url, tmp_path, "generate", "--customers", "40", "--seed", "9")
    assert repeated.returncode == 1 and "seed 9 already" in repeated.stdout
    # another company's customer file: Western names, addresses and postcodes, 30 % of people as corrupted copies
    western = kehu(database_url, tmp_path, "generate", "--style", "western", "--customers", "300", "--seed", "9",
                   "--truth", str(tmp_path / "western.csv"))
    assert western.returncode == 0, western.stdout + western.stderr
    assert "300 people as" in western.stdout and "keyboard_typo" in western.stdout
    assert len((tmp_path / "western.csv").read_text().splitlines()) > 301


def test_import_profiles_then_orders_from_the_command_line(database_url, clean_database, tmp_path):
    assert kehu(database_url, tmp_path, "demo", "--no-serve", "--customers", "0").returncode == 0
    customers = tmp_path / "客户.csv"
    customers.write_text("姓名,手机,生日\n白龙马,13566665555,1945-04-93\n坏号码,123,\n", encoding="gbk")
    warnings = tmp_path / "warnings.csv"
    profiles = kehu(database_url, tmp_path, "import", "profiles", str(customers), "--org", "demo", "--unit", "SH001",
                    "--warnings", str(warnings))
    assert profiles.returncode == 0, profiles.stdout + profiles.stderr
    assert "1 rows accepted (1 new customers), 1 rejected, 1 values left out." in profiles.stdout
    # the row is imported without its wrong birthday, which is listed with its row, column and reason
    assert warnings.read_text(encoding="utf-8-sig").splitlines()[1] == \
        '2,"生日","1945-04-93","不是日期（YYYY-MM-DD）：1945-04-93"'
    orders = tmp_path / "orders.csv"
    orders.write_text("order no,order date,mobile,dealer,sku,qty,price\n"
                      "SO-9,2025-01-02,13566665555,SH001,ID4,1,259800\n"
                      "SO-9,2025-01-02,13566665555,SH001,MAT,2,400\n"
                      "SO-10,2025-01-03,13566665555,XX999,ID4,1,259800\n", encoding="utf-8")
    errors = tmp_path / "rejected.csv"
    imported = kehu(database_url, tmp_path, "import", "orders", str(orders), "--org", "demo", "--errors",
                    str(errors))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "2 rows accepted (1 new orders, 0 new customers), 1 rejected." in imported.stdout
    assert "未知的经销商，或您无权为其导入订单：XX999" in errors.read_text(encoding="utf-8-sig")
    missing = kehu(database_url, tmp_path, "import", "orders", str(tmp_path / "nope.csv"), "--org", "demo")
    assert missing.returncode == 1 and "No such file" in missing.stdout
