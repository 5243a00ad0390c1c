"""A real kehu server (demo data) in a subprocess and a real Chromium driven by Playwright."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url

from kehu.core.db import recreate_database

CHROMIUM = os.environ.get("KEHU_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("KEHU_SCREENSHOTS", "screenshots"))
# The server's log, read after every test: a traceback logged while a test ran fails that test.
SERVER_LOG: list[Path] = []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serving(base: str, seconds: float = 60) -> bool:
    """Wait until the server at ``base`` answers /healthz (False after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)  # (not only after a refused connection: a server starting may answer 503)
    return False


def _database_url(tmp: Path) -> str:
    base = os.environ.get("KEHU_TEST_DATABASE_URL")
    if not base:
        return f"sqlite:///{tmp / 'e2e.db'}"
    url = make_url(base)
    name = f"{url.database}_kehu_e2e_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    return recreate_database(url.set(database=name).render_as_string(hide_password=False))


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("KEHU_E2E_REQUIRED"):
            pytest.fail(f"browser tests are required but {CHROMIUM} is missing")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    tmp = tmp_path_factory.mktemp("e2e")
    port = _free_port()
    env = {**os.environ, "KEHU_DATA_DIR": str(tmp / "data"), "KEHU_DATABASE_URL": _database_url(tmp),
           "KEHU_EMBEDDED_WORKER": "true", "KEHU_JOB_POLL_SECONDS": "0.2"}
    kehu = [sys.executable, "-m", "kehu"]
    subprocess.run([*kehu, "demo", "--no-serve"], env=env, cwd=tmp, check=True, capture_output=True)
    log = open(tmp / "server.log", "w")  # noqa: SIM115 - closed after the server stops
    SERVER_LOG[:] = [tmp / "server.log"]
    process = subprocess.Popen([*kehu, "serve", "--port", str(port), "--skip-migrate"], env=env, cwd=tmp,
                               stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    if not serving(base):
        process.kill()
        pytest.fail("kehu serve did not come up:\n" + (tmp / "server.log").read_text()[-3000:])
    yield base
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.fixture(scope="session")
def browser(server: str):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield instance
        instance.close()


def _server_log_size() -> int:
    return SERVER_LOG[0].stat().st_size if SERVER_LOG and SERVER_LOG[0].exists() else 0


def _server_log_since(offset: int) -> str:
    if not SERVER_LOG or not SERVER_LOG[0].exists():
        return ""
    with SERVER_LOG[0].open("rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", "replace")


_FAULT = re.compile(r"^(ERROR|CRITICAL)\b|\[(error|critical)\s*\]|Traceback \(most recent call last\)")


def server_faults(text: str) -> list[str]:
    """What the server logged at error level or as a traceback (a user met a broken page), with what followed."""
    lines = text.splitlines()
    return ["\n".join(lines[i:i + 40]) for i, line in enumerate(lines) if _FAULT.search(line)][:3]


@pytest.fixture
def page(request, browser):  # type: ignore[no-untyped-def]
    """A fresh browser page. The test fails if the page logs a console error or throws, or if the server logs a
    traceback meanwhile: what the user sees is the test, and a broken widget often shows only there. A test that
    provokes an error on purpose names what it expects with ``@pytest.mark.expected_console("text")``."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"uncaught in the page: {error}"))
    offset = _server_log_size()
    yield page
    context.close()
    time.sleep(0.2)  # let the server finish logging what the last request did
    allowed = [text for marker in request.node.iter_markers("expected_console") for text in marker.args]
    problems = [p for p in problems if not any(text in p for text in allowed)]
    faults = server_faults(_server_log_since(offset))
    if problems or faults:
        pytest.fail("the browser or the server reported errors during the test:\n"
                    + "\n".join(problems + faults)[:8000], pytrace=False)


@pytest.fixture
def sign_in(page, server):  # type: ignore[no-untyped-def]
    def _sign_in(email: str, password: str = "kehu-demo-2026") -> None:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        page.goto(f"{server}/login")
        page.get_by_label("邮箱").fill(email)
        page.get_by_label("密码").fill(password)
        page.get_by_role("button", name="登录").click()
        try:
            page.wait_for_url(f"{server}/", timeout=20_000)
        except PlaywrightTimeout:
            said = page.locator(".text-negative").all_inner_texts()
            raise AssertionError(f"signing in as {email} failed; the page said {said!r}") from None

    return _sign_in


def shoot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

