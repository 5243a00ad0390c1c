"""Concurrent users (DESIGN.md §6): a network of dealers signing in at nine. ``clients`` API clients at once —
dealer consultants, region managers and HQ staff, each with their own token — list their customers, search
them (by name, pinyin, the mobile's last four digits, e-mail, VIN), open a Customer 360, preview a segment,
while sources post `/v1/batch` calls; against ``servers`` `kehu serve` and ``workers`` `kehu worker` processes
on the generated million customers. Targets: ≥ 200 requests/s, p99 ≤ 1 s for list, search and 360, no errors,
search alone ≤ 100 ms, and a person signing in to the web UI meanwhile reaches the dashboard within 2 s.

The baseline, in the same run: the same requests one at a time (one client). Each request is timed from
sending to the whole answer read. The load comes from this process (asyncio + aiohttp, one connection per
client, closed loop: a client sends its next request when the last one is answered); its own CPU time is
reported beside the servers', the workers' and the database's, with the machine's load, since all share the
two cores. The sign-ins are a real Chromium (Playwright) in a process of its own: open /login, type, press
the button, wait for the dashboard."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from sqlalchemy import create_engine, make_url, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_seconds, demo_data, free_port, is_sqlite, kehu_process, machine, wait_until_idle

TARGET_RPS = 200
TARGET_P99_MS = 1000.0  # list, search and 360
TARGET_SEARCH_ALONE_MS = 100.0
TARGET_SIGN_IN_S = 2.0
PASSWORD = "kehu-demo-2026"  # every demo and generated account's
# What the clients do, by weight: mostly their own customers; a segment preview now and then; a fifth of the
# traffic is sources sending events.
MIX = {"list": 30, "search": 30, "customer_360": 25, "segment_preview": 5, "batch": 10}
SEARCH_KINDS = ("name", "pinyin", "mobile_tail", "email", "vin")
INCLUDE = "identities,merges,consents,accounts,orders,vehicles,timeline"
# Who the clients are: 600 dealers' consultants most of all, a few region managers, HQ.
ROLES = (("dealer_sales", 0.8), ("region_manager", 0.12), ("org_admin", 0.08))
CONDITIONS = [
    {"type": "all", "conditions": [{"type": "field", "field": "lifecycle_stage", "op": "in",
                                    "value": ["lead", "opportunity"]},
                                   {"type": "field", "field": "gender", "op": "eq", "value": "female"}]},
    {"type": "all", "conditions": [{"type": "event", "event": "test_drive_booked", "window": {"within_days": 90}},
                                   {"type": "orders", "measure": "count", "op": "eq", "value": 0}]},
]
PREVIEW_ROLES = ("region_manager", "org_admin")  # a consultant builds no segments: their turn lists instead
ANONYMOUS_PEOPLE = 2_000  # the visitors /v1/batch calls are about (a fixed crowd: runs add no new profiles)
BATCH_CALLS = 20


@dataclass
class Client:
    """One simulated person: whom they are, which server they stick to, and what they look for."""

    number: int
    email: str
    role: str
    base: str
    token: str = ""
    profile_ids: list[int] = field(default_factory=list)
    terms: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Sample:
    kind: str
    search_kind: str | None
    ms: float
    ok: bool
    ended: float
    status: int


def _users(engine: Any, org_id: int, clients: int, rng: random.Random) -> list[tuple[str, str, int, int]]:
    """(e-mail, role, user id, unit id) for each client, by ROLES' shares; a role with fewer people than
    clients repeats them (two clients of one region manager are two browser tabs)."""
    chosen: list[tuple[str, str, int, int]] = []
    with engine.connect() as connection:
        for index, (role, share) in enumerate(ROLES):
            wanted = clients - len(chosen) if index == len(ROLES) - 1 else max(1, round(clients * share))
            people = connection.execute(text(
                "SELECT u.email, u.id, u.unit_id FROM users u JOIN user_roles ur ON ur.user_id = u.id "
                "JOIN roles r ON r.id = ur.role_id WHERE u.org_id = :org AND r.code = :role AND u.is_active "
                "ORDER BY u.id"), {"org": org_id, "role": role}).all()
            if not people:
                continue
            picked = rng.sample(people, wanted) if len(people) >= wanted else [people[i % len(people)]
                                                                               for i in range(wanted)]
            chosen += [(email, role, user_id, unit_id) for email, user_id, unit_id in picked]
    return chosen[:clients]


def _scope_sql(role: str) -> str:
    """The profiles a client of ``role`` works with, as SQL over ``p`` (:user, :unit, :org)."""
    if role == "dealer_sales":
        return "p.owner_id = :user"
    if role == "region_manager":
        return ("p.unit_id IN (SELECT id FROM business_units WHERE org_id = :org AND path LIKE "
                "(SELECT path FROM business_units WHERE id = :unit) || '%')")
    return "TRUE"


def _what_they_look_for(engine: Any, org_id: int, client: Client, user_id: int, unit_id: int,
                        rng: random.Random) -> None:
    """Customers of the client's own scope to open, and the names, pinyin, mobiles, e-mails and VINs of
    customers in it to search for (what a consultant types is what their customers have)."""
    where = _scope_sql(client.role)
    sample = "" if client.role == "dealer_sales" else " TABLESAMPLE SYSTEM (1)"
    params = {"user": user_id, "unit": unit_id, "org": org_id}
    if engine.dialect.name == "sqlite":
        sample = ""
    with engine.connect() as connection:
        rows = connection.execute(text(
            f"SELECT p.id, p.name, p.name_pinyin, p.mobile, p.email FROM profiles p{sample} "
            f"WHERE p.org_id = :org AND p.merged_into_id IS NULL AND {where} LIMIT 200"), params).all()
        vins = connection.execute(text(
            f"SELECT v.vin FROM vehicles v JOIN profiles p ON p.id = v.profile_id WHERE v.org_id = :org "
            f"AND {where} LIMIT 50"), params).scalars().all()
    rng.shuffle(rows)
    client.profile_ids = [r.id for r in rows[:50]]
    client.terms = {
        "name": [r.name for r in rows if r.name][:50],
        "pinyin": [r.name_pinyin for r in rows if r.name_pinyin][:50],
        "mobile_tail": [r.mobile[-4:] for r in rows if r.mobile][:50],
        "email": [r.email for r in rows if r.email][:50],
        "vin": list(vins),
    }


def _request(client: Client, rng: random.Random, write_key: str) -> tuple[str, str | None, str, str, Any,
                                                                          dict[str, str]]:
    """(kind, search kind, method, path, JSON body, headers) of the client's next request."""
    kind = rng.choices(list(MIX), weights=list(MIX.values()))[0]
    bearer = {"Authorization": f"Bearer {client.token}"}
    if kind == "customer_360" and client.profile_ids:
        return kind, None, "GET", f"/api/v1/customers/{rng.choice(client.profile_ids)}?include={INCLUDE}", None, \
            bearer
    if kind == "search":
        kinds = [k for k in SEARCH_KINDS if client.terms.get(k)]
        if kinds:
            search_kind = rng.choice(kinds)
            return kind, search_kind, "GET", "/api/v1/customers", {"q": rng.choice(client.terms[search_kind])}, \
                bearer
    if kind == "segment_preview" and client.role in PREVIEW_ROLES:
        return kind, None, "POST", "/api/v1/segments/preview", {"condition": rng.choice(CONDITIONS),
                                                                 "sample": 20}, bearer
    if kind == "batch":
        calls = [{"type": "track", "event": rng.choice(("page_view", "model_viewed", "configurator_step")),
                  "anonymousId": f"load-{rng.randrange(ANONYMOUS_PEOPLE)}", "messageId": secrets.token_hex(12),
                  "properties": {"model": rng.choice(("ID.4", "ID.6", "Tiguan L"))}} for _ in range(BATCH_CALLS)]
        auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
        return kind, None, "POST", "/v1/batch", {"batch": calls}, {"Authorization": auth}
    return "list", None, "GET", "/api/v1/customers", {"limit": "50"}, bearer


async def _send(http: aiohttp.ClientSession, method: str, path: str, body: Any, headers: dict[str, str]) -> int:
    if method == "GET":
        request = http.get(path, params=body, headers=headers)
    else:
        request = http.post(path, data=json.dumps(body), headers={**headers, "Content-Type": "application/json"})
    async with request as response:
        await response.read()
        return response.status


async def _drive(clients: list[Client], write_key: str, *, seconds: float | None, requests: int | None,
                 seed: int) -> tuple[list[Sample], float]:
    """Every client in a closed loop until ``seconds`` pass or ``requests`` are answered; the samples and the
    wall time."""
    samples: list[Sample] = []
    started = time.perf_counter()
    deadline = started + seconds if seconds else float("inf")
    sent = 0

    async def one(client: Client, rng: random.Random) -> None:
        nonlocal sent
        # aiohttp (NiceGUI's own client library) rather than httpx: the load generator shares the two cores with
        # what it measures, and a request of the mix cost it 1.1 ms of CPU through httpx, 0.12 ms through aiohttp
        async with aiohttp.ClientSession(base_url=client.base, connector=aiohttp.TCPConnector(limit=1),
                                         timeout=aiohttp.ClientTimeout(total=60)) as http:
            while time.perf_counter() < deadline and (requests is None or sent < requests):
                sent += 1
                kind, search_kind, method, path, body, headers = _request(client, rng, write_key)
                begun = time.perf_counter()
                try:
                    status = await _send(http, method, path, body, headers)
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                ended = time.perf_counter()
                samples.append(Sample(kind, search_kind, (ended - begun) * 1000, 200 <= status < 300,
                                      ended - started, status))

    await asyncio.gather(*(one(c, random.Random(seed * 1000 + c.number)) for c in clients))
    return samples, time.perf_counter() - started


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(len(ordered) * share + 0.5) - 1))], 1)

    return {"p50_ms": round(statistics.median(ordered), 1), "p95_ms": at(0.95), "p99_ms": at(0.99),
            "max_ms": round(ordered[-1], 1)}


def _summary(samples: list[Sample], seconds: float) -> dict[str, Any]:
    kinds: dict[str, Any] = {}
    for name in [*MIX, *(f"search:{k}" for k in SEARCH_KINDS)]:
        chosen = [s for s in samples if s.kind == name or (s.search_kind and f"search:{s.search_kind}" == name)]
        if chosen:
            kinds[name] = {"requests": len(chosen), "per_s": round(len(chosen) / seconds, 1),
                           "errors": sum(not s.ok for s in chosen), **_percentiles([s.ms for s in chosen])}
    errors = [s for s in samples if not s.ok]
    return {"requests": len(samples), "seconds": round(seconds, 1), "requests_per_s": round(len(samples) / seconds, 1),
            "errors": len(errors), "error_statuses": sorted({s.status for s in errors}), "kinds": kinds}


def _machine_busy() -> tuple[float, float] | None:
    """(busy, total) jiffies of the whole machine so far (/proc/stat), for its CPU use over a phase."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def _postgres_pids(database: str) -> list[int]:
    """The server processes of our database's connections (the cluster serves others' databases too)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if command.startswith(b"postgres") and f" {database} ".encode() in command:
            pids.append(int(entry.name))
    return pids


def _database_cpu(database: str) -> dict[int, float]:
    """CPU seconds so far of each server process of our database (pid → seconds)."""
    return {pid: cpu_seconds([pid]) or 0.0 for pid in _postgres_pids(database)}


def _database_cpu_since(before: dict[int, float], database: str) -> float:
    """CPU seconds our database's processes used since ``before``: connections opened meanwhile count whole."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in _database_cpu(database).items())


def _say(message: str) -> None:
    print(f"load: {message}", file=sys.stderr, flush=True)


def _sign_ins(base: str, emails: list[str]) -> dict[str, Any]:
    """Sign in through the web UI in Chromium, one person after another, in a process of its own."""
    chromium = os.environ.get("KEHU_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        return {"skipped": f"no Chromium at {chromium}"}
    done = subprocess.run([sys.executable, __file__, "--sign-in", base, *emails], capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    if os.environ.get("KEHU_BENCH_TRACE"):
        print(done.stderr, file=sys.stderr)
    return json.loads(done.stdout)


def _trace(page: Any, trace: list[tuple[float, str]]) -> None:
    """Note in ``trace`` when each of ``page``'s requests starts and ends, and when the page is loaded."""
    page.on("request", lambda r: trace.append((time.perf_counter(), f"> {r.method} {r.url[-60:]}")))
    page.on("requestfinished", lambda r: trace.append((time.perf_counter(), f"< {r.url[-60:]}")))
    page.on("domcontentloaded", lambda _: trace.append((time.perf_counter(), "domcontentloaded")))
    page.on("load", lambda _: trace.append((time.perf_counter(), "load")))


# Put in every page before its own scripts: the moments a person would notice, on the browser's clock (epoch ms) —
# the form's submission (kept in the tab's sessionStorage across the navigation that follows) and the first frame
# after the home page's title is in the document (its paint). Playwright's own view of them lags: its click first
# checks the button is visible, stable and enabled, and its wait polls the page from another process, each hop on
# the same two busy cores.
_BROWSER_CLOCK = """
(() => {
  const at = () => performance.timeOrigin + performance.now();
  addEventListener('submit', () => sessionStorage.setItem('kehu-bench-submitted', String(at())), true);
  if (location.pathname !== '/') return;
  const look = () => {
    const app = document.getElementById('app');
    if (app && app.textContent.includes('工作台')) requestAnimationFrame(() => { window.__kehuShown = at(); });
    else requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
})();
"""


def sign_in_in_browser(base: str, emails: list[str]) -> dict[str, Any]:
    """Open /login, type the e-mail and password, press the button, wait for the dashboard's title: per person,
    the page's load and the sign-in (pressing the button → the dashboard shown), as Playwright sees them and as the
    browser's own clock does (the sign-in page's DOMContentLoaded from its navigation; the form's submission → the
    first frame with the dashboard's title). With KEHU_BENCH_TRACE set, each sign-in's requests from the press on
    are printed to stderr with their times (the post, the home page, its assets, the page's load and the title
    shown)."""
    from playwright.sync_api import sync_playwright

    pages, submits, totals = [], [], []
    browser_pages, browser_submits, browser_totals = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("KEHU_CHROMIUM", "/usr/bin/chromium"), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        for email in emails:
            context = browser.new_context(locale="zh-CN")
            context.add_init_script(_BROWSER_CLOCK)
            page = context.new_page()
            trace: list[tuple[float, str]] = []
            if os.environ.get("KEHU_BENCH_TRACE"):
                _trace(page, trace)
            begun = time.perf_counter()
            page.goto(f"{base}/login")
            page.get_by_label("邮箱").fill(email)
            shown = time.perf_counter()
            loaded = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
            page.get_by_label("密码").fill(PASSWORD)
            pressed = time.perf_counter()
            page.get_by_role("button", name="登录").click()
            page.wait_for_url(f"{base}/")
            page.get_by_text("工作台", exact=True).first.wait_for()
            ended = time.perf_counter()
            page.wait_for_function("window.__kehuShown !== undefined")
            painted, submitted = page.evaluate(
                "[window.__kehuShown, Number(sessionStorage.getItem('kehu-bench-submitted'))]")
            assert submitted > 0, "the browser recorded no submission of the sign-in form"
            if trace:  # the sign-in page's events from the start, the rest from the press
                trace += [(shown, "e-mail typed"), (pressed, "pressed"), (ended, "shown")]
                for at, what in sorted(trace):
                    print(f"{email} {at - (pressed if at >= pressed else begun):6.3f} {what}", file=sys.stderr)
            pages.append(shown - begun)
            submits.append(ended - pressed)
            totals.append(ended - begun - (pressed - shown))
            browser_pages.append(loaded / 1000)
            browser_submits.append((painted - submitted) / 1000)
            browser_totals.append(browser_pages[-1] + browser_submits[-1])
            context.close()
        browser.close()
    return {"people": len(emails), "login_page_s": [round(v, 2) for v in pages],
            "sign_in_s": [round(v, 2) for v in submits], "total_s": [round(v, 2) for v in totals],
            "worst_total_s": round(max(totals), 2),
            "browser_clock": {"login_page_s": [round(v, 2) for v in browser_pages],
                              "sign_in_s": [round(v, 2) for v in browser_submits],
                              "total_s": [round(v, 2) for v in browser_totals],
                              "worst_total_s": round(max(browser_totals), 2)}}


async def _tokens(clients: list[Client]) -> None:
    """Each person signs in once through the API, before anything is timed (argon2 takes its time)."""
    by_email: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=120) as http:
        for client in clients:
            if client.email not in by_email:
                response = await http.post(f"{client.base}/api/v1/auth/token",
                                           data={"username": client.email, "password": PASSWORD})
                response.raise_for_status()
                by_email[client.email] = response.json()["access_token"]
            client.token = by_email[client.email]


def _write_key(url: str, org_id: int) -> str:
    import kehu.models  # noqa: F401
    from kehu.cdp import schemas, service
    from kehu.core.db import Database
    from kehu.tenancy.service import system_principal

    database = Database(url)
    with database.unit_of_work() as session:
        _, key = service.create_source(session, system_principal(session, org_id),
                                       data=schemas.SourceCreate(name="压力测试", kind="server"))
    database.dispose()
    return key


def run(database_url: str | None = None, size: int | None = None, reuse: bool = False, servers: int = 2,
        workers: int = 2, clients: int = 50, seconds: float = 60.0, baseline_requests: int = 300,
        sign_ins: int = 3, dealers: int = 600, urls: str = "") -> dict[str, Any]:
    """``reuse``: measure on the customers an earlier run generated (a million take a quarter of an hour);
    ``servers`` / ``workers``: processes to start; ``seconds``: the concurrent phase's length; ``urls``: measure
    servers already running instead (comma-separated addresses, on the same database and secret key as
    KEHU_SECRET_KEY; their CPU time is then not reported)."""
    url, org_id, data_size = demo_data(database_url, size, reuse=reuse, postgres=1_000_000, sqlite=20_000,
                                       seed=13, dealers=dealers)
    sqlite = is_sqlite(url)
    if sqlite:  # one writer: one server with its worker inside
        servers, workers = 1, 0
    rng = random.Random(19)
    engine = create_engine(url)
    secret = os.environ.get("KEHU_SECRET_KEY") if urls else secrets.token_urlsafe(32)
    ports = [] if urls else [free_port() for _ in range(servers)]
    bases = urls.split(",") if urls else [f"http://127.0.0.1:{port}" for port in ports]
    servers = len(bases)
    people = _users(engine, org_id, clients, rng)
    load = [Client(n, email, role, bases[n % servers]) for n, (email, role, _, _) in enumerate(people)]
    for client, (_, _, user_id, unit_id) in zip(load, people, strict=True):
        _what_they_look_for(engine, org_id, client, user_id, unit_id, rng)
    with engine.connect() as connection:
        ui_people = connection.execute(text(
            "SELECT u.email FROM users u JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id "
            "WHERE u.org_id = :org AND r.code = 'dealer_manager' AND u.is_active ORDER BY u.id LIMIT :n"),
            {"org": org_id, "n": sign_ins}).scalars().all()
    engine.dispose()
    write_key = _write_key(url, org_id)
    env = {"KEHU_SECRET_KEY": secret, "KEHU_EMBEDDED_WORKER": "true" if sqlite else "false",
           "KEHU_LOG_LEVEL": "WARNING"}
    database_name = make_url(url).database or ""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        from contextlib import ExitStack

        with ExitStack() as stack:
            server_processes = [stack.enter_context(kehu_process(
                url, "serve", "--port", str(port), "--skip-migrate", workdir=workdir, env=env,
                wait_for=f"http://127.0.0.1:{port}/healthz")) for port in ports]
            worker_processes = [stack.enter_context(kehu_process(url, "worker", workdir=workdir, env=env))
                                for _ in range(0 if urls else workers)]
            if worker_processes:
                wait_until_idle([w.pid for w in worker_processes])
            _say(f"{len(load)} clients sign in through the API")
            asyncio.run(_tokens(load))
            # warm: every server's pool and caches, then the baseline — the same requests, one at a time
            asyncio.run(_drive(load[:servers * 2], write_key, seconds=None, requests=60, seed=1))
            _say("baseline: the same requests one at a time")
            one_client = [Client(0, load[0].email, load[0].role, load[0].base, load[0].token)]
            baseline_samples: list[Sample] = []
            for client in load:  # the same people, each in turn: the requests of the mix, one at a time
                one_client[0] = client
                done, _ = asyncio.run(_drive(one_client, write_key, seconds=None,
                                             requests=max(1, baseline_requests // len(load)), seed=2))
                baseline_samples += done
            baseline_seconds = sum(s.ms for s in baseline_samples) / 1000
            # the concurrent phase, with people signing in to the web UI meanwhile
            server_pids = [p.pid for p in server_processes] if server_processes else None
            worker_pids = [p.pid for p in worker_processes]
            database_before = {} if sqlite else _database_cpu(database_name)
            before = {"servers": cpu_seconds(server_pids), "workers": cpu_seconds(worker_pids),
                      "machine": _machine_busy()}
            _say(f"concurrent phase: {len(load)} clients for {seconds:.0f} s")
            own_before = resource.getrusage(resource.RUSAGE_SELF)
            load_before = os.getloadavg()
            sign_in_result: dict[str, Any] = {}

            async def concurrent() -> tuple[list[Sample], float]:
                async def sign_in_later() -> None:
                    await asyncio.sleep(min(10.0, seconds / 3))
                    sign_in_result.update(await asyncio.to_thread(_sign_ins, bases[0], list(ui_people)))

                tasks = [asyncio.create_task(sign_in_later())] if ui_people and sign_ins else []
                result = await _drive(load, write_key, seconds=seconds, requests=None, seed=3)
                await asyncio.gather(*tasks)
                return result

            samples, _ = asyncio.run(concurrent())
            own_after = resource.getrusage(resource.RUSAGE_SELF)
            after = {"servers": cpu_seconds(server_pids), "workers": cpu_seconds(worker_pids),
                     "machine": _machine_busy()}
            database_cpu = None if sqlite else _database_cpu_since(database_before, database_name)
            load_after = os.getloadavg()
    timed = [s for s in samples if s.ended <= seconds]  # not the answers still arriving after the phase
    concurrent_summary = _summary(timed, seconds)
    baseline_summary = _summary(baseline_samples, baseline_seconds)
    cpu = {name: round(after[name] - before[name], 1) for name in ("servers", "workers")
           if after[name] is not None and before[name] is not None and not urls}
    if database_cpu is not None:
        cpu["database"] = round(database_cpu, 1)
    cpu["load_generator"] = round(own_after.ru_utime + own_after.ru_stime
                                  - own_before.ru_utime - own_before.ru_stime, 1)
    if before["machine"] and after["machine"]:
        busy = after["machine"][0] - before["machine"][0]
        total = after["machine"][1] - before["machine"][1]
        cpu["machine_busy_share"] = round(busy / total, 2) if total else None
    kinds = concurrent_summary["kinds"]
    worst_p99 = max(kinds.get(k, {}).get("p99_ms", 0) for k in ("list", "search", "customer_360"))
    search_alone = baseline_summary["kinds"].get("search", {}).get("p99_ms")
    sign_in_worst = sign_in_result.get("worst_total_s")
    checks = {
        "requests_per_s": concurrent_summary["requests_per_s"] >= TARGET_RPS,
        "p99_list_search_360": worst_p99 <= TARGET_P99_MS,
        "no_errors": concurrent_summary["errors"] == 0 and baseline_summary["errors"] == 0,
        "search_alone": search_alone is not None and search_alone <= TARGET_SEARCH_ALONE_MS,
        "sign_in": sign_in_worst is not None and sign_in_worst <= TARGET_SIGN_IN_S,
    }
    return {
        "target": "concurrent users",
        "data_size": data_size,
        "setup": {"servers": servers, "workers": workers, "clients": len(load),
                  "clients_by_role": {r: sum(c.role == r for c in load) for r, _ in ROLES},
                  "mix": MIX, "seconds": seconds},
        "kehu": {**concurrent_summary, "worst_p99_ms_list_search_360": worst_p99, "ui_sign_in": sign_in_result},
        "baseline": {"one_at_a_time": baseline_summary},
        "ratio": round(concurrent_summary["requests_per_s"] / baseline_summary["requests_per_s"], 2)
        if baseline_summary["requests_per_s"] else None,
        "cpu_seconds": cpu,
        "load_average": {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in load_after]},
        "checks": checks,
        "pass": all(checks.values()),
        "criteria": f">= {TARGET_RPS} requests/s with {clients} clients, p99 <= {TARGET_P99_MS:.0f} ms for list, "
                    f"search and 360, no errors; search alone p99 <= {TARGET_SEARCH_ALONE_MS:.0f} ms; UI sign-in "
                    f"<= {TARGET_SIGN_IN_S} s (target size: 1,000,000 profiles)",
        "machine": machine(url),
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--sign-in"]:
        print(json.dumps(sign_in_in_browser(sys.argv[2], sys.argv[3:])))
    else:
        print(json.dumps(run(*(sys.argv[1:2] or [None])), ensure_ascii=False, indent=2))
