"""The kehu command line: serve, worker, migrate, demo, org and user management."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console

from kehu.core.db import Database, SchemaBehind, ensure_schema, get_database, migrate
from kehu.core.errors import KehuError
from kehu.core.logging import configure_logging
from kehu.core.settings import get_settings

app = typer.Typer(help="kehu (客户): customer data platform + marketing automation + CRM.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
user_app = typer.Typer(help="Manage staff accounts.", no_args_is_help=True)
org_app = typer.Typer(help="Manage organisations (tenants).", no_args_is_help=True)
source_app = typer.Typer(help="Manage data sources (write keys for /v1 ingestion).", no_args_is_help=True)
import_app = typer.Typer(help="Import data from files.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(user_app, name="user")
app.add_typer(org_app, name="org")
app.add_typer(source_app, name="source")
console = Console()


@contextlib.contextmanager
def _reporting_errors() -> Iterator[None]:
    """Input and domain errors become readable lines and exit code 1, not a traceback."""
    from pydantic import ValidationError

    try:
        yield
    except ValidationError as error:
        for item in error.errors():
            console.print(f"[red]{'.'.join(map(str, item['loc']))}: {item['msg']}[/red]")
        raise typer.Exit(code=1) from None
    except KehuError as error:
        _fail(error)


def _fail(error: KehuError) -> None:
    console.print(f"[red]{error.title}:[/red] {error.detail}")
    for field_error in error.errors:
        console.print(f"  {field_error.field}: {field_error.message}")
    raise typer.Exit(code=1)


def _ready_database() -> Database:
    """The configured database with its schema current (SQLite is migrated; PostgreSQL must already be), and every
    domain's services loaded: what a command changes gets every domain's reactions (a merge folds open leads)."""
    from kehu.app import load_services

    load_services()
    database = get_database()
    try:
        ensure_schema(database)
    except SchemaBehind as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(code=1) from None
    return database


def _org_and_unit(session: Any, org: str, unit: str | None) -> tuple[Any, int | None]:
    """The platform principal of organisation ``org`` and the id of its unit coded ``unit`` (if given)."""
    from sqlalchemy import select

    from kehu.tenancy import service
    from kehu.tenancy.models import BusinessUnit

    organisation = service.get_organization_by_slug(session, org)
    system = service.system_principal(session, organisation.id)
    if not unit:
        return system, None
    unit_id = session.scalar(select(BusinessUnit.id).where(BusinessUnit.org_id == organisation.id,
                                                           BusinessUnit.code == unit))
    if unit_id is None:
        console.print(f"[red]No unit with code {unit!r} in {org}.[/red]")
        raise typer.Exit(code=1)
    return system, unit_id


def _serve(host: str | None, port: int | None, workers: int = 1, settings: Any = None) -> None:
    settings = settings or get_settings()
    options = {"host": host or settings.host, "port": port or settings.port, "proxy_headers": True,
               "log_level": settings.log_level.lower()}
    if workers > 1:  # several processes on one port; each is a full, stateless kehu
        uvicorn.run("kehu.app:app_from_settings", factory=True, workers=workers, **options)  # type: ignore[arg-type]
        return
    from kehu.app import create_app

    uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]


@app.command(name="migrate")
def migrate_command(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Bring the database schema up to date (safe to run again)."""
    settings = get_settings()
    configure_logging(settings.log_json, settings.log_level)
    migrate(get_database(settings), revision)
    console.print(f"Database at [bold]{revision}[/bold]: {_safe_url(settings.effective_database_url)}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000)")] = None,
    skip_migrate: Annotated[bool, typer.Option(help="Skip the schema check (and SQLite's migration) on start")]
    = False,
    workers: Annotated[int, typer.Option(help="Server processes on this port (PostgreSQL; UI needs sticky "
                                         "sessions across processes)")] = 1,
) -> None:
    """Serve the web UI and the API. On SQLite the worker runs inside this process."""
    if not skip_migrate:
        _ready_database()
    _serve(host, port, workers)


@app.command()
def worker() -> None:
    """Run background jobs. Start as many as you like against PostgreSQL; they never run a job twice."""
    import os

    from kehu.app import make_worker

    settings = get_settings()
    configure_logging(settings.log_json, settings.log_level)
    if settings.worker_nice and hasattr(os, "nice"):
        os.nice(settings.worker_nice)  # the servers' requests first; queued work waits a moment well
    w = make_worker(_ready_database(), settings)
    w.install_signal_handlers()
    # What is loaded now lives as long as the process: the cycle collector need never scan it again.
    gc.freeze()
    w.run_forever()


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="Synthetic customers, sent through real ingestion")] = 1000,
    serve_: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the UI and API afterwards")] = True,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Create the demo automotive group (示范汽车集团) once, then serve it."""
    from kehu.demo.seed import ADMIN_EMAIL, DEMO_PASSWORD, seed_demo

    settings = get_settings()
    configure_logging(settings.log_json, settings.log_level)
    database = get_database(settings)
    with console.status("Preparing the database…"):
        migrate(database)
    with database.unit_of_work() as session:
        with console.status("Creating the demo group: headquarters, regions, dealers and their staff…"):
            result = seed_demo(session)
        if result.created and customers > 0:
            from kehu.demo.customers import seed_customers

            with console.status(f"Sending {customers} demo customers' touchpoints through ingestion…"):
                profiles = seed_customers(session, result.org.id, customers=customers)
            known = _identified_profiles(session, result.org.id)
            console.print(f"{known:,} customers resolved from web, app and showroom data, and {profiles - known:,} "
                          "anonymous visitors (web and app visits not yet tied to a person: they become customers "
                          "when they sign in or leave a mobile).")
            from kehu.demo.sales import seed_sales

            with console.status("Routing test-drive bookings to the dealers' salespeople as leads and deals…"):
                leads = seed_sales(session, result.org.id)
            console.print(f"{leads} leads from test-drive bookings, routed to the dealers' salespeople.")
            from kehu.demo.channels import seed_channels

            with console.status("Writing message templates and broadcasts…"):
                sent = seed_channels(session, result.org.id)
            console.print(f"{sent} broadcasts: two go out now into the outbox (no provider is configured, so "
                          "nothing leaves this machine), one waits for HQ's approval, one is drafted.")
            from kehu.demo.journeys import seed_journeys

            with console.status("Drawing journeys…"):
                drawn = seed_journeys(session, result.org.id)
            console.print(f"{drawn} journeys: HQ's test-drive follow-up offered to the dealers as a template, one "
                          "dealer's own made of it, and a birthday greeting — drafts, to publish when you like.")
            from kehu.cdp import dedupe

            with console.status("Looking for records that are probably one person…"):
                found = dedupe.run(session, result.org.id)
            console.print(f"{found['proposed']} pairs of records that are probably one person, for review.")
    if result.created:
        console.print(f"Created [bold]{result.org.name}[/bold] with {result.users} staff accounts.")
    else:
        console.print(f"[bold]{result.org.name}[/bold] already exists; nothing was added.")
    url = f"http://{host or settings.host}:{port or settings.port}"
    console.print(f"Database: {_safe_url(settings.effective_database_url)}")
    console.print(f"Sign in at [bold]{url}[/bold] as [bold]{ADMIN_EMAIL}[/bold] / [bold]{DEMO_PASSWORD}[/bold]")
    console.print(f"(every demo account uses the same password; API docs at {url}/docs)")
    if serve_:
        _serve(host, port, settings=demo_settings(settings))


def demo_settings(settings: Any) -> Any:
    """The demo shows its API documentation and metrics to anyone, unless the environment or kehu.toml says
    otherwise (production settings keep them for signed-in users)."""
    opened = {name: "open" for name in ("api_docs", "metrics") if name not in settings.model_fields_set}
    return settings.model_copy(update=opened)


def _identified_profiles(session: Any, org_id: int) -> int:
    """Profiles that know who they are (a name, mobile or e-mail), as opposed to anonymous visitors."""
    from sqlalchemy import func, or_, select

    from kehu.cdp.models import Profile

    return session.scalar(select(func.count()).select_from(Profile).where(
        Profile.org_id == org_id, Profile.merged_into_id.is_(None),
        or_(Profile.name.is_not(None), Profile.mobile.is_not(None), Profile.email.is_not(None)))) or 0


@org_app.command("create")
def org_create(
    name: Annotated[str, typer.Option(help="Display name, e.g. 示范汽车集团")],
    slug: Annotated[str, typer.Option(help="Short unique name used by the CLI")],
    timezone: Annotated[str, typer.Option(help="IANA time zone")] = "Asia/Shanghai",
) -> None:
    """Create an organisation with its headquarters unit and the default roles."""
    from kehu.tenancy import service

    database = _ready_database()
    try:
        with database.unit_of_work() as session:
            org = service.create_organization(session, name=name, slug=slug, timezone=timezone)
            console.print(f"Organisation {org.name} ({org.slug}) created with id {org.id}.")
    except KehuError as error:
        _fail(error)


@user_app.command("create")
def user_create(
    org: Annotated[str, typer.Option(help="Organisation slug")],
    email: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    role: Annotated[list[str], typer.Option(help="Role code; repeat for several")],
    unit: Annotated[str | None, typer.Option(help="Unit code (default: headquarters)")] = None,
    name: Annotated[str | None, typer.Option(help="Display name (default: the e-mail's local part)")] = None,
) -> None:
    """Create a staff account (the password is never printed or logged)."""

    from kehu.tenancy import schemas, service

    database = _ready_database()
    with _reporting_errors(), database.unit_of_work() as session:
            system, unit_id = _org_and_unit(session, org, unit)
            unit_id = unit_id or system.unit_id
            data = schemas.UserCreate(email=email, password=password, roles=role, unit_id=unit_id,
                                      name=name or email.split("@")[0])
            created = service.create_user(session, system, data=data)
            console.print(f"User {created.email} created with id {created.id}.")


@source_app.command("create")
def source_create(
    name: Annotated[str, typer.Argument(help="What sends the data, e.g. 官网 or 'Dealer DMS'")],
    org: Annotated[str, typer.Option(help="Organisation slug")],
    kind: Annotated[str, typer.Option(help="web | app | server | import")] = "server",
    unit: Annotated[str | None, typer.Option(help="Unit code that owns the customers it creates (default HQ)")]
    = None,
) -> None:
    """Create a source and print its write key (shown once): the Basic-auth user name for /v1 calls."""

    from kehu.cdp import schemas as cdp_schemas
    from kehu.cdp import service as cdp_service

    database = _ready_database()
    with _reporting_errors(), database.unit_of_work() as session:
            system, unit_id = _org_and_unit(session, org, unit)
            source, key = cdp_service.create_source(session, system, data=cdp_schemas.SourceCreate(
                name=name, kind=kind, unit_id=unit_id))  # type: ignore[arg-type]
            console.print(f"Source {source.name} (id {source.id}) created.")
            print(key)


_MAP_HELP = "Override a column: 'HEADER=TARGET' (e.g. name, mobile, identity:vin, order_no; empty ignores it)"


@import_app.command("profiles")
def import_profiles(
    file: Annotated[str, typer.Argument(help="CSV (UTF-8 or GBK) or XLSX; the first row names the columns")],
    org: Annotated[str, typer.Option(help="Organisation slug")],
    unit: Annotated[str | None, typer.Option(help="Unit code the new customers belong to (default HQ)")] = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help=_MAP_HELP)] = None,
    errors: Annotated[str | None, typer.Option(help="Write the rejected rows with their reasons to this CSV")]
    = None,
    warnings: Annotated[str | None, typer.Option(
        help="Write the values left out of accepted rows (row, column, value, reason) to this CSV (.xlsx: a "
             "workbook)")] = None,
) -> None:
    """Import customer profiles through One ID, with a progress bar; re-importing a file adds no duplicates. A
    wrong optional value (a birthday 1945-04-93) is left out of its row and reported; only a row without a
    usable identity is rejected."""
    _import_file("profiles", file, org, unit, map_, errors, warnings)


@import_app.command("orders")
def import_orders(
    file: Annotated[str, typer.Argument(help="CSV (UTF-8 or GBK) or XLSX; one row per order line")],
    org: Annotated[str, typer.Option(help="Organisation slug")],
    unit: Annotated[str | None, typer.Option(help="Unit code for orders without a dealer column (default HQ)")]
    = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help=_MAP_HELP)] = None,
    errors: Annotated[str | None, typer.Option(help="Write the rejected rows with their reasons to this CSV")]
    = None,
) -> None:
    """Import orders (rows sharing an order number are one order) for customers found or created through One
    ID; an order already present is left as it is."""
    _import_file("orders", file, org, unit, map_, errors)


def _import_file(kind: str, file: str, org: str, unit: str | None, map_: list[str] | None,
                 errors: str | None, warnings: str | None = None) -> None:
    from pathlib import Path

    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    from kehu.app import make_worker
    from kehu.cdp import imports
    from kehu.cdp.models import ImportRun
    from kehu.core.jobs import Job

    settings = get_settings()
    configure_logging(settings.log_json, "WARNING")
    database = _ready_database()
    path = Path(file)
    if not path.is_file():
        console.print(f"[red]No such file: {file}[/red]")
        raise typer.Exit(code=1)
    try:
        with database.unit_of_work() as session:
            system, unit_id = _org_and_unit(session, org, unit)
            run = imports.upload(session, system, filename=path.name, content=path.read_bytes(), unit_id=unit_id,
                                 kind=kind)
            mapping = dict(run.mapping)
            for item in map_ or []:
                header, _, target = item.partition("=")
                mapping[header] = target
            imports.set_mapping(session, system, run.id, mapping)
            imports.start(session, system, run.id)
            run_id, job_id, total = run.id, run.job_id, run.total_rows
            for header, target in run.mapping.items():
                console.print(f"  {header} → {target or '(ignored)'}")
    except KehuError as error:
        _fail(error)
    worker = make_worker(database, settings)
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), console=console) as bar:
        task = bar.add_task(f"Importing {total} rows", total=100)
        while True:
            worker.run_once()
            with database.sessionmaker() as session:
                job = session.get(Job, job_id)
                bar.update(task, completed=job.progress)
                if job.status in ("succeeded", "failed"):
                    break
    with database.unit_of_work() as session:
        run = session.get(ImportRun, run_id)
        job = session.get(Job, job_id)
        created = f"{run.orders_created} new orders, " if kind == "orders" else ""
        left_out = f", {run.warnings} values left out" if run.warnings else ""
        console.print(f"{run.accepted_rows} rows accepted ({created}{run.profiles_created} new customers), "
                      f"{run.rejected_rows} rejected{left_out}.")
        if run.rejected_rows and errors:
            Path(errors).write_bytes(imports.rejections_csv(session, system, run_id))
            console.print(f"Rejected rows with reasons: {errors}")
        if warnings:  # written even when empty, so a script finds the file it asked for
            Path(warnings).write_bytes(imports.warnings_file(
                session, system, run_id, format="xlsx" if warnings.lower().endswith(".xlsx") else "csv"))
            console.print(f"Values left out, with reasons: {warnings}")
        if job.status == "failed":
            console.print(f"[red]The import failed: {job.error}[/red]")
            raise typer.Exit(code=1)


@app.command()
def generate(
    org: Annotated[str, typer.Option(help="Organisation slug (its dealers and consultants get the customers)")]
    = "demo",
    customers: Annotated[int, typer.Option(help="How many customers to add")] = 100_000,
    dealers: Annotated[int | None, typer.Option(help="First grow the dealer network to this many dealers "
                                                     "(real provinces and cities, with staff)")] = None,
    events: Annotated[int, typer.Option(help="Events per customer, on average")] = 20,
    seed: Annotated[int, typer.Option(help="Same seed, same data; each seed can be generated once")] = 7,
    duplicates: Annotated[float | None, typer.Option(help="Share of people who appear as several differently "
                                                          "written records (default: 0.08 chinese, 0.3 western)",
                                                     min=0.0, max=1.0)] = None,
    style: Annotated[str, typer.Option(help="chinese: the automotive group's customers with their events, orders "
                                            "and leads; western: another company's customer file (Western names, "
                                            "street addresses, postcodes; typos, OCR and phonetic errors)")]
    = "chinese",
    truth: Annotated[str | None, typer.Option(help="Write profile_id,person (the ground truth of duplicates) "
                                                   "to this CSV")] = None,
    processes: Annotated[int | None, typer.Option(help="Writer processes on PostgreSQL (default: one per "
                                                       "core; SQLite always uses one)", min=1)] = None,
) -> None:
    """Add synthetic customers at scale (profiles, identities, three years of events, orders, vehicles, leads
    and deals), written in bulk — for benchmarks and load tests. On PostgreSQL a load that more than doubles
    the events builds their indexes afterwards: run it while nothing else writes events. ``--style western``
    writes profiles only (a customer file), with several corrupted records of some people."""
    from pathlib import Path

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from kehu.demo.generate import generate as generate_customers

    if style not in ("chinese", "western"):
        console.print(f"[red]No style {style!r}: chinese or western.[/red]")
        raise typer.Exit(code=1)
    configure_logging(get_settings().log_json, "WARNING")
    database = _ready_database()
    with _reporting_errors(), database.unit_of_work() as session:
        system, _ = _org_and_unit(session, org, None)
        if dealers:
            from kehu.demo.network import grow_network

            added = grow_network(session, system.org_id, dealers=dealers)
            console.print(f"{added} dealers added to the network.")
    truth_file = Path(truth).open("w", encoding="utf-8") if truth else None  # noqa: SIM115 - closed below
    try:
        with _reporting_errors(), Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                           TimeRemainingColumn(), console=console) as bar:
            task = bar.add_task("Generating customers", total=customers)
            if style == "western":
                from kehu.demo import western

                file = western.generate(database, system.org_id, customers=customers, seed=seed,
                                        duplicate_share=western.DUPLICATE_SHARE if duplicates is None else duplicates,
                                        truth=truth_file, progress=lambda n: bar.advance(task, n))
            else:
                made = generate_customers(database, system.org_id, customers=customers, events_per_customer=events,
                                          seed=seed, duplicate_share=0.08 if duplicates is None else duplicates,
                                          truth=truth_file, processes=processes,
                                          progress=lambda n: bar.advance(task, n))
    finally:
        if truth_file:
            truth_file.close()
    if style == "western":
        console.print(f"{file.customers:,} people as {file.profiles:,} profiles ({file.duplicates:,} duplicates, "
                      f"{file.true_pairs:,} true pairs) in {file.seconds:.0f} s.")
        console.print("Corruptions (share of duplicates): " + ", ".join(
            f"{kind} {rate:.1%}" for kind, rate in file.rates().items()))
        if truth:
            console.print(f"Ground truth (profile_id,person): {truth}")
        return
    console.print(f"{made.customers:,} customers as {made.profiles:,} profiles, {made.identities:,} identities, "
                  f"{made.events:,} events, {made.orders:,} orders, {made.vehicles:,} vehicles in "
                  f"{made.seconds:.0f} s.")
    console.print(f"Sales: {made.leads:,} leads, {made.opportunities:,} deals.")
    if truth:
        console.print(f"Ground truth (profile_id,person): {truth} — score One ID with "
                      f"`kehu score-identities --truth {truth}`")


@app.command("score-identities")
def score_identities(
    truth: Annotated[str, typer.Option(help="The ground truth: profile_id,person lines (kehu generate --truth)")],
    org: Annotated[str, typer.Option(help="Organisation slug")] = "demo",
    json_: Annotated[bool, typer.Option("--json", help="Print the figures as JSON")] = False,
) -> None:
    """How well One ID found the people behind the records: pairwise precision, recall and F1."""
    import json
    from pathlib import Path

    from kehu.cdp.resolution_quality import read_truth, score_resolution

    database = _ready_database()
    with _reporting_errors(), database.unit_of_work() as session:
        system, _ = _org_and_unit(session, org, None)
        with Path(truth).open(encoding="utf-8") as file:
            score = score_resolution(session, system.org_id, read_truth(file))
    figures = score.as_dict()
    if json_:
        console.print_json(json.dumps(figures))
        return
    for name, value in figures.items():
        console.print(f"{name:>16}  {'—' if value is None else value}")


@app.command()
def bench(
    name: Annotated[str, typer.Argument(help="A benchmark under benchmarks/ (e.g. ingest), or all")],
    json_out: Annotated[str | None, typer.Option("--json", help="Also write the results to this file")] = None,
    size: Annotated[int | None, typer.Option(help="Override the benchmark's data size")] = None,
    database_url: Annotated[str | None, typer.Option(help="Server to measure on (default: PostgreSQL at "
                                                     "127.0.0.1:5432, database kehu_bench)")] = None,
    reuse: Annotated[bool, typer.Option("--reuse", help="Measure on the data a previous run left in the "
                                                        "database, where the benchmark can (segments)")] = False,
    param: Annotated[list[str] | None, typer.Option("--param", help="One of the benchmark's own settings, "
                                                    "NAME=VALUE (e.g. servers=4 for load); repeat for several")]
    = None,
) -> None:
    """Measure a DESIGN.md §6 target against its baseline in the same run; prints one JSON object each."""
    import importlib.util
    import inspect
    import json as json_lib
    import sys
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    names = sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")) if name == "all" else [name]
    results = []
    for bench_name in names:
        path = folder / f"{bench_name}.py"
        if not path.exists():
            console.print(f"[red]No benchmark {bench_name!r}; there are: "
                          f"{', '.join(sorted(p.stem for p in folder.glob('*.py') if not p.stem.startswith('_')))}")
            raise typer.Exit(code=1)
        spec = importlib.util.spec_from_file_location(f"kehu_bench_{bench_name}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[spec.name] = module  # type: ignore[union-attr]  # dataclasses look their module up there
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        kwargs: dict[str, object] = {"size": size} if size else {}
        accepted = inspect.signature(module.run).parameters
        if reuse and "reuse" in accepted:
            kwargs["reuse"] = True
        for item in param or []:
            key, _, value = item.partition("=")
            if key not in accepted or key in ("database_url", "size", "reuse"):
                own = ", ".join(k for k in accepted if k not in ("database_url", "size", "reuse")) or "none"
                console.print(f"[red]{bench_name} has no setting {key!r}; its settings: {own}[/red]")
                raise typer.Exit(code=1)
            kwargs[key] = _number_or_text(value)
        result = module.run(database_url=database_url, **kwargs)
        print(json_lib.dumps(result, ensure_ascii=False))
        results.append(result)
    if json_out:
        Path(json_out).write_text(json_lib.dumps(results, ensure_ascii=False, indent=2))
    if not all(r.get("pass") for r in results):
        raise typer.Exit(code=2)


def _number_or_text(value: str) -> object:
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(value)
    return value


def _safe_url(url: str) -> str:
    from sqlalchemy import make_url

    return make_url(url).render_as_string(hide_password=True)
