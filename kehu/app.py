"""The application factory: API routers, health and metrics, the embedded worker, and the web UI."""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

import kehu.models  # noqa: F401 - every table registered before anything queries
from kehu import __version__
from kehu.cdp.imports import MAX_FILE_BYTES
from kehu.core.db import Database, get_database, limit_parallel_workers
from kehu.core.domains import load, load_all
from kehu.core.http import (
    SEGMENT_PATHS,
    AdmissionMiddleware,
    BodyLimitMiddleware,
    LastResortMiddleware,
    MetricsMiddleware,
    PathCorsMiddleware,
    SecurityHeadersMiddleware,
    install_api_fallback,
    install_error_handlers,
    problem,
)
from kehu.core.input_guard import InputGuardMiddleware, bounded_parameters
from kehu.core.jobs import Worker
from kehu.core.logging import configure_logging
from kehu.core.openapi import install_openapi
from kehu.core.settings import Settings, get_settings
from kehu.domains import COMING, DOMAINS
from kehu.tenancy.deps import allowed_to
from kehu.tenancy.service import principal_for_job


def load_services() -> None:
    """Every domain's services: their job handlers, pollers and event subscriptions registered (the worker's and
    the app's; no web framework is imported for them)."""
    for domain in DOMAINS:
        load_all(domain.services)


def make_worker(database: Database, settings: Settings) -> Worker:
    load_services()
    return Worker(database, lease_seconds=settings.job_lease_seconds, poll_seconds=settings.job_poll_seconds,
                  backoff_base=settings.job_backoff_seconds, principal_loader=principal_for_job)


def _leave_to_the_collector_only_what_comes_after() -> None:
    """Everything made while starting (modules, the models' mappers, the pages, the warmed assets: some hundreds of
    thousands of objects) lives as long as the process: Python's full garbage collections walked it all again and
    again, and under load each took 0.3–0.6 s in which the server answered nothing (kehu bench load: four a minute
    per server, a sign-in that met one took half a second longer). Frozen, they are never walked again."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, database: Database | None = None, *, with_ui: bool = True,
               embedded_worker: bool | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_json, settings.log_level)
    database = database or get_database(settings)
    limit_parallel_workers(database, settings.server_parallel_workers)
    run_worker = settings.run_embedded_worker if embedded_worker is None else embedded_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # sync routes and dependencies run in AnyIO's thread pool: as many at once as the database pool serves
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        worker = None
        if run_worker:
            worker = make_worker(database, settings)
            thread = threading.Thread(target=worker.run_forever, name="kehu-worker", daemon=True)
            thread.start()
        if with_ui:  # NiceGUI has started (its lifespan wraps this one): its sign-in page can be visited
            from kehu.ui.assets import warm_up

            await warm_up(app)
        if settings.freeze_startup_objects:
            _leave_to_the_collector_only_what_comes_after()
        yield
        if worker is not None:
            worker.stopping.set()
            thread.join(timeout=30)

    app = FastAPI(
        title="kehu API", version=__version__, lifespan=lifespan,
        docs_url=None, redoc_url=None, openapi_url=None,  # served below, as settings.api_docs allows
        description="kehu (客户): customer data platform, marketing automation and CRM. "
                    "Errors are RFC 9457 problem+json; lists use cursor pagination (?limit=&cursor=).",
        dependencies=[Depends(bounded_parameters)],
    )
    app.state.settings = settings
    app.state.database = database
    app.state.secret_key = settings.effective_secret_key()
    install_error_handlers(app)
    # innermost, its body already read and checked: as many API requests at once as the pool has connections
    # (threads + 2, db.get_database), each holding one; its 4 spare ones serve the pages, uploads and the embedded
    # worker
    app.add_middleware(AdmissionMiddleware, limit=settings.threads + 2, prefixes=("/api/", SEGMENT_PATHS))
    app.add_middleware(LastResortMiddleware)  # nothing raised past it drops the connection
    app.add_middleware(InputGuardMiddleware, bodies_under=("/api/",))
    limits = {prefix: int(load(size)) for domain in DOMAINS for prefix, size in domain.body_limits}
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       # the UI's uploads (an import's file); the sign-in form's post (kehu.ui.shell.login_submit)
                       limits={**limits, "/_nicegui/": MAX_FILE_BYTES, "/login": 16 * 1024},
                       bad_request_under=(SEGMENT_PATHS,))
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(PathCorsMiddleware, prefix=SEGMENT_PATHS)  # last added runs first
    load_services()
    for domain in DOMAINS:
        for router in load_all(domain.routers):
            app.include_router(router)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> Response:
        try:
            with database.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            return problem(None, 503, "unavailable", "Database unavailable", str(exc)[:200], instance="/healthz")
        return JSONResponse({"status": "ok"})

    if settings.metrics != "off":
        @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse,
                 dependencies=[Depends(allowed_to("metrics"))])
        def metrics() -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if settings.api_docs != "off":
        _serve_docs(app)

    install_api_fallback(app, ("/api/", SEGMENT_PATHS))  # after every API route, before the UI at /
    install_openapi(app)

    if with_ui:
        from kehu.ui.shell import mount_ui

        mount_ui(app, settings, database, domains=DOMAINS, coming=COMING)
    # added last, so outermost: its headers and the cookies' Secure flag reach every answer, the UI session's too
    app.add_middleware(SecurityHeadersMiddleware, cookie_secure=settings.cookie_secure)
    return app


def _serve_docs(app: FastAPI) -> None:
    """/openapi.json, /docs (Swagger UI) and /redoc, for whoever settings.api_docs lets in."""
    guard = [Depends(allowed_to("api_docs"))]

    @app.get("/openapi.json", include_in_schema=False, dependencies=guard)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=guard)
    def swagger() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} · Swagger UI",
                                   oauth2_redirect_url="/docs/oauth2-redirect")

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_redirect() -> Response:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False, dependencies=guard)
    def redoc() -> Response:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} · ReDoc")


def app_from_settings() -> FastAPI:
    """Factory for `kehu serve --workers N` (each process builds its own app from the environment)."""
    return create_app(get_settings())
