"""A shop's web page on its own origin sends calls to kehu as Segment's analytics.js does, in a real browser
(the browser's cross-origin rules are the point: a page served by the shop on localhost talks to kehu on 127.0.0.1;
a page of kehu's own would carry kehu's Content-Security-Policy, which no shop page has)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shoot
from tests.e2e.test_customers_ui import api

pytestmark = pytest.mark.e2e

# What analytics.js does: settings from its CDN address (set to kehu), then each call to <apiHost>/<letter> as
# text/plain with the write key in the body; a server-style batch with Basic auth and JSON needs a preflight.
SEND_LIKE_ANALYTICS_JS = """async ([kehu, key]) => {
    const settings = await (await fetch(`${kehu}/v1/projects/${key}/settings`)).json();
    const io = settings.integrations["Segment.io"];
    const send = (letter, call) => fetch(`${io.protocol}://${io.apiHost}/${letter}`, {
        method: "post", headers: {"Content-Type": "text/plain"}, body: JSON.stringify({...call, writeKey: key})});
    const answers = [
        await send("p", {type: "page", anonymousId: "browser-anon-1", name: "车型首页",
                         context: {page: {url: location.href}}}),
        await send("i", {type: "identify", anonymousId: "browser-anon-1", userId: "browser-u-1",
                         traits: {name: "周杰", phone: "139 1234 5670"}}),
        await send("t", {type: "track", userId: "browser-u-1", event: "test_drive_booked",
                         properties: {model: "ID.4"}}),
        await fetch(`${kehu}/v1/batch`, {method: "POST", headers: {
            "Content-Type": "application/json", "Authorization": "Basic " + btoa(key + ":")},
            body: JSON.stringify({batch: [{type: "track", userId: "browser-u-1", event: "brochure_downloaded"}]})}),
    ];
    return Promise.all(answers.map(async (answer) => [answer.status, (await answer.json()).success]));
}"""


class _ShopPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = "<!doctype html><meta charset=utf-8><title>车型首页</title><h1>示范车行</h1>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def shop() -> Iterator[str]:
    """The shop's own web server, on another origin than kehu."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ShopPage)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://localhost:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_shop_page_on_its_own_origin_sends_calls_the_way_analytics_js_does(page, server, shop):
    with api(server, "admin@demo.kehu.dev") as admin:
        created = admin.post("/api/v1/sources", json={"name": "官网（浏览器）", "kind": "web"})
        assert created.status_code == 201, created.text
        key = created.json()["write_key"]
        page.goto(f"{shop}/")
        assert page.evaluate(SEND_LIKE_ANALYTICS_JS, [server, key]) == [[200, True]] * 4
        # the server's embedded worker resolves the calls onto a customer, each call's batch in turn: wait for all
        # four, not only the first that made the customer findable
        deadline, timeline = time.monotonic() + 30, []
        while time.monotonic() < deadline:
            found = admin.get("/api/v1/customers", params={"q": "13912345670"}).json()["items"]
            if found:
                timeline = admin.get(f"/api/v1/customers/{found[0]['id']}",
                                     params={"include": "events"}).json()["events"]
                if len(timeline) >= 4:
                    break
            time.sleep(0.3)
        assert [c["name"] for c in found] == ["周杰"]
        assert sorted(e["event"] for e in timeline) == ["brochure_downloaded", "identify", "test_drive_booked",
                                                         "车型首页"]


def test_a_new_web_source_shows_its_key_and_how_to_connect_with_it(page, server, sign_in):
    sign_in("admin@demo.kehu.dev")
    page.goto(f"{server}/admin/sources")
    page.get_by_role("button", name="新建数据源").click()
    page.get_by_label("名称").fill("活动落地页")
    page.get_by_role("button", name="生成").click()
    page.get_by_text("请立即复制保存").wait_for()
    key = page.locator("input[value^='wk_']").input_value()
    assert key.startswith("wk_")
    shown = page.locator(".q-tab-panel:visible")  # a website source opens on analytics.js
    for snippet in ("@segment/analytics-next", f'writeKey: "{key}",', f'cdnURL: "{server}",'):
        expect(shown).to_contain_text(snippet)  # the code block is drawn after the panel: wait for it
    shoot(page, "source-created")
    page.get_by_role("tab", name="Python").click()
    expect(page.locator(".q-tab-panel").filter(has_text=f'analytics.host = "{server}"')).to_be_visible()
    sent = httpx.post(f"{server}/v1/track", auth=(key, ""),
                      json={"userId": "u-landing", "event": "brochure_downloaded"})
    assert sent.status_code == 200 and sent.json()["accepted"] == 1  # the key it showed works
