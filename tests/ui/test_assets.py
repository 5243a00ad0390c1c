"""The pages' assets as a browser receives them, from a real `kehu serve` just started: kehu's built stylesheet
instead of Tailwind's compiler in the browser, and the sign-in page's and the home page's assets ready,
compressed, for the first visitor after a start."""

from __future__ import annotations

import re

import httpx
from nicegui import __version__ as nicegui_version

from kehu.ui.assets import STYLES
from kehu.ui.components.chart import Chart


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
