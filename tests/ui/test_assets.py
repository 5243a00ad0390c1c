"""The pages' assets as a browser receives them, from a real `kehu serve` just started: kehu's built stylesheet
instead of Tailwind's compiler in the browser, and the sign-in page's and the home page's assets ready,
compressed, for the first visitor after a start."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from nicegui import __version__ as nicegui_version

from kehu.ui.assets import STYLES
from kehu.ui.components.chart import Chart
from tests.e2e.conftest import _free_port, serving


@pytest.fixture
def just_started(tmp_path: Path) -> Iterator[str]:
    """A server on an empty database, nobody having visited it yet (NiceGUI is mounted once per process: a
    process of its own)."""
    port = _free_port()
    env = {**os.environ, "KEHU_DATA_DIR": str(tmp_path), "KEHU_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}",
           "KEHU_EMBEDDED_WORKER": "false"}
    with (tmp_path / "server.log").open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "kehu", "serve", "--port", str(port)], env=env,
                                   cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            assert serving(base), (tmp_path / "server.log").read_text()[-3000:]
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def test_the_first_visitor_after_a_start_gets_the_sign_in_page_and_its_assets_compressed(just_started):
    with httpx.Client(base_url=just_started, headers={"Accept-Encoding": "gzip"}) as browser:
        page = browser.get("/login")
        assert page.status_code == 200 and "content-encoding" not in page.headers  # (BREACH: kehu.ui.assets)
        assert "tailwindcss.min.js" not in page.text  # no Tailwind compiler in the browser …
        # what the home page loads, for the browser to fetch while its visitor types
        prefetched = re.findall(r'<link rel="prefetch" href="([^"]+)">', page.text)
        stylesheet = re.search(r'<link rel="prefetch" href="(/_kehu/[0-9a-f]{16}/tailwind\.css)">', page.text)
        assert stylesheet, "… but kehu's built stylesheet"
        charts = f"/_nicegui/{nicegui_version}/components/{Chart.component.key}"  # the home page's
        for asset in (stylesheet.group(1), f"/_nicegui/{nicegui_version}/static/quasar.umd.prod.js",
                      f"/_nicegui/{nicegui_version}/static/fonts.css", charts):
            assert asset in prefetched, asset
        for asset in prefetched:
            answer = browser.get(asset)
            assert answer.status_code == 200, asset
            # the first request for it, already compressed in memory (a cold asset passes through as read; a
            # file of 1 KB or less, or a font, is kept as it is)
            if len(answer.content) > 1024 and not asset.endswith(".woff2"):
                assert answer.headers.get("content-encoding") == "gzip", asset
            assert "immutable" in answer.headers["cache-control"], asset
        # of ECharts, its entry and what that imports before it runs — not its 3D part, loaded only when asked for
        (entry,) = [a for a in prefetched if a.startswith(f"/_nicegui/{nicegui_version}/esm/") and
                    a.endswith("/index.js")]
        folder = entry.removesuffix("index.js")
        imported = {folder + name for name in re.findall(r'from\s*"\./([^"]+)"', browser.get(entry).text)}
        assert imported and {a for a in prefetched if a.startswith(folder)} == {entry} | imported
        css = browser.get(stylesheet.group(1))
    assert css.headers["content-type"].startswith("text/css")
    assert css.content == STYLES.read_bytes()
    # classes kehu's pages are written with, arbitrary values included
    assert b".min-w-\\[380px\\]" in css.content and b".text-3xl" in css.content
