"""Settings from the environment (``KEHU_…``) and an optional ``kehu.toml`` in the working directory."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

DEFAULT_DATA_DIR = Path("kehu-data")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEHU_", toml_file="kehu.toml", extra="ignore")

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""  # empty → SQLite file in data_dir
    secret_key: str = ""  # empty → generated once and kept in data_dir/secret_key
    access_token_minutes: int = 60 * 8
    # A UI sign-in lasts this long at most, and ends sooner after this many minutes without a page or click (0: no
    # idle limit). A week-long cookie outlived shared showroom PCs.
    ui_session_hours: float = Field(default=12, gt=0)
    ui_idle_minutes: int = Field(default=120, ge=0)
    # The session cookie's Secure flag: None → set it when the request came over https (directly, or as the proxy's
    # X-Forwarded-Proto says), so a plain-http demo still signs in.
    cookie_secure: bool | None = None
    default_timezone: str = "Asia/Shanghai"
    default_locale: str = "zh"
    max_body_bytes: int = 1_048_576
    # Sign-in throttling (kehu.tenancy.service.authenticate): so many failures in a row are free, per account and per
    # client address (an office behind one address makes more honest typos); then each try waits twice as long as
    # the last (1 s, 2 s, 4 s …) up to the cap. A failure is forgotten after a quiet window. Never a hard lock: the
    # right password after the wait signs in, so nobody can lock another user out.
    login_free_failures: int = Field(default=5, ge=1)
    login_free_failures_per_address: int = Field(default=20, ge=1)
    login_max_wait_seconds: int = Field(default=900, ge=1)
    login_window_minutes: int = Field(default=15, ge=1)
    # /docs, /redoc and /openapi.json; /metrics. "open" to anyone, "signed_in" (a bearer token, API key or UI
    # session; metrics also take metrics_token as a bearer, for Prometheus), or "off" (404). `kehu demo` opens both.
    api_docs: Literal["open", "signed_in", "off"] = "signed_in"
    metrics: Literal["open", "signed_in", "off"] = "signed_in"
    metrics_token: str = ""
    log_json: bool = False
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8000
    # The address customers reach kehu at (https://crm.example.com): messages' tracked links, open pixels and
    # unsubscribe links point there. Empty: http://host:port, which only works on this machine.
    public_url: str = ""
    embedded_worker: bool | None = None  # None → on for SQLite, off for PostgreSQL
    job_lease_seconds: int = 60
    job_poll_seconds: float = 1.0
    job_max_attempts: int = 5
    job_backoff_seconds: float = 5.0
    api_page_max: int = Field(default=500, ge=1)
    # Requests one server process works on at once (its thread pool; the database pool is sized to it, and API
    # requests are admitted to match: http.AdmissionMiddleware). AnyIO's default of 40 against a pool of 30 left
    # threads waiting for a connection; on two cores more threads only contend for the interpreter (the pages'
    # event loop with them: a sign-in under fifty API clients took 10 s with 12 threads, 6–8 s with 4) and the
    # database. Three, measured (kehu bench load, two servers on two cores, 2026-12-07): 6 threads answered 258–273
    # requests/s with p99 0.79–0.81 s and sign-ins of 2.2–6.5 s; 3 threads 291–295 requests/s, p99 0.65–0.70 s and
    # sign-ins of 1.7–3.7 s — CPU already busy gains nothing from more requests in flight, each waits its turn.
    threads: int = Field(default=3, ge=1)
    # A server's objects made while starting are kept out of Python's garbage collections once it has started
    # (kehu.app: gc.freeze). Off in a process that makes and drops many apps (the tests): what a frozen app holds in
    # reference cycles would never be freed.
    freeze_startup_objects: bool = True
    # PostgreSQL's parallel workers for the statements of a web server (max_parallel_workers_per_gather; -1:
    # the database's own setting). Off by default: under many users every core is busy already, and a parallel
    # plan spends three processes' CPU to answer one request a little sooner (a region manager's pinyin search
    # walked the customers in two extra processes, 80 ms and 200 ms of CPU, ~7 % of both cores' time under fifty
    # clients). `kehu worker` processes keep the database's setting: their long counts and refreshes gain from it (a
    # server's embedded worker shares the server's connections, and its limit).
    server_parallel_workers: int = Field(default=0, ge=-1)
    # How much a `kehu worker` process yields the CPU to the servers on the same machine (os.nice: 0 = as much as
    # they, 19 = least). Its work is queued already (the inbox, jobs) and waits a moment well; a person waiting
    # for a page does not. Only a worker process of its own is lowered, never a server's embedded worker.
    worker_nice: int = Field(default=10, ge=0, le=19)
    # Messages a dispatcher hands to a provider between two commits (kehu/channels/dispatch.py). 1: a dispatcher
    # that dies leaves at most one message in doubt (marked unknown where the provider cannot tell a repeat);
    # more: faster sending, as many in doubt.
    dispatch_hand_over: int = Field(default=1, ge=1, le=500)
    segment_refresh_minutes: int = Field(default=1440, ge=5)  # dynamic segments are recomputed this often
    # A dynamic segment counting days back from now asks again, this often, the customers whose dates crossed its
    # boundaries meanwhile (segments.service.follow_time)
    segment_time_seconds: int = Field(default=60, ge=1)
    # Domain events every consumer has read are deleted once they are this old (core/events.py): the outbox holds
    # what is yet to be read and a month of history, not every merge and status change since the first day.
    domain_event_days: int = Field(default=30, ge=1)
    # Once an organisation has looked for duplicates, a worker looks again this often (0: only on demand).
    dedupe_refresh_hours: int = Field(default=24, ge=0)
    # A dedupe run compares at most this many candidate pairs per record (blocking rules are tightened to stay
    # under it; a run that cannot says so instead of starting: kehu.cdp.matching.blocking).
    dedupe_max_pairs_per_record: int = Field(default=50, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'kehu.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def run_embedded_worker(self) -> bool:
        return self.is_sqlite if self.embedded_worker is None else self.embedded_worker

    def effective_secret_key(self) -> str:
        """The signing key; generated on first use and kept beside the data so restarts keep sessions."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
