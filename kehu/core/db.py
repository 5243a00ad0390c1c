"""Engine, sessions, the declarative base and the column types every domain shares.

Over 600 lines: the set-based writes every domain uses (an INSERT of many rows that skips conflicts, on SQLite and on
PostgreSQL's binary arrays) live beside the engine whose dialect they follow; they are what to move out next."""

from __future__ import annotations

import contextlib
import functools
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    Index,
    Integer,
    MetaData,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator

from kehu.core.settings import Settings, get_settings

# BIGINT keys everywhere; SQLite only auto-increments an INTEGER PRIMARY KEY, so it gets that variant.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# JSONB on PostgreSQL (indexable, compact), plain JSON text on SQLite.
JsonDoc = JSON().with_variant(JSONB(), "postgresql")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are stored in UTC and always come back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; kehu stores UTC-aware timestamps only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}


class IdMixin:
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _json_dumps(value: Any) -> str:
    # orjson: several times faster than json for the JSON columns written on every ingested event.
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class PerDialect(ColumnElement[bool]):
    """A condition written one way for PostgreSQL and another for SQLite, chosen when the statement is compiled:
    callers build one query whichever database runs it."""

    type = Boolean()
    inherit_cache = True
    _traverse_internals = [("postgresql", InternalTraversal.dp_clauseelement),
                           ("default", InternalTraversal.dp_clauseelement)]

    def __init__(self, postgresql: ColumnElement[bool], default: ColumnElement[bool]) -> None:
        self.postgresql = postgresql
        self.default = default


@compiles(PerDialect)
def _compile_default(element: PerDialect, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.default, **kw))


@compiles(PerDialect, "postgresql")
def _compile_postgresql(element: PerDialect, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.postgresql, **kw))


T = TypeVar("T")
_BUILT: dict[tuple[Any, ...], Any] = {}


def parameter(name: str, values: dict[str, Any] | None, **kw: Any) -> Any:
    """The value ``name`` of a condition: a named parameter (``values`` None: a statement built once, its values
    bound when it runs) or the value itself, written in (a statement built for one caller). A written-in value is
    a plain value so that it takes the type of the column it meets (BIGINT ids; a bound parameter of its own would
    be typed by its value, INTEGER); with ``type_`` (an array) it is bound with that type."""
    if values is None:
        return bindparam(name, **kw)
    return bindparam(None, values[name], type_=kw["type_"]) if "type_" in kw else values[name]


def built_once(key: tuple[Any, ...], build: Callable[[], T]) -> T:
    """A statement built the first time ``key`` asks for it and kept: what varies between its runs is bound as
    parameters. Building a statement and its cache key cost as much as running a small one, and a Customer 360
    runs a dozen. ``key`` names the statement and the forms it was built with (a scope's form, a permission):
    a handful each, never a value, so the statements kept stay few."""
    found = _BUILT.get(key)
    if found is None:
        found = _BUILT[key] = build()
    return found


def make_engine(url: str, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        pool = {"pool_size": pool_size, "max_overflow": 4} if path and path != ":memory:" else {}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               json_serializer=_json_dumps, json_deserializer=orjson.loads, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No JIT: kehu's heavy statements (segment counts over millions of events) spent 1.5 s compiling
    # expressions that then ran for less; the short ones never reach its threshold anyway.
    # Sessions in UTC, as kehu stores every time: psycopg then reads a timestamp as a datetime in
    # ``timezone.utc``, where under a named zone (Debian's default is Etc/UTC) it converts each one through
    # zoneinfo, and UTCDateTime converts it again — half the CPU of reading a page of 50 customers' rows.
    connect_args: dict[str, Any] = {} if "options=" in url else {"options": "-c jit=off -c TimeZone=UTC"}
    # No statements prepared on the server: psycopg prepares a query after five runs, and PostgreSQL may then
    # keep one generic plan for it. kehu's bulk lookups take lists of any length against tables that grow
    # while they run (an import finding identities: the plan made on the first, empty chunk scanned the whole
    # table for every later chunk, 35 ms instead of 5); planned each time, each gets the plan its data needs.
    # A reader's short reads by key are the exception (READER_PREPARE_THRESHOLD).
    connect_args["prepare_threshold"] = None
    # A fixed pool and a few spare: a server's requests each hold one connection, and its thread pool is sized to
    # match (Settings.threads). Two servers at 10 + 20 overflow each, beside workers, ran PostgreSQL out of its
    # 100 connections under fifty clients ("too many clients already"), and more connections than cores only
    # queue inside the database.
    engine = create_engine(url, pool_size=pool_size, max_overflow=4, json_serializer=_json_dumps,
                           json_deserializer=orjson.loads, connect_args=connect_args)
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", functools.partial(_ping_if_idle, engine.dialect))
    return engine


def limit_parallel_workers(database: Database, workers: int) -> None:
    """Every connection ``database`` hands out from now on (PostgreSQL) plans a statement with at most ``workers``
    parallel workers (Settings.server_parallel_workers); -1: the database's own setting. Set when a connection is
    checked out and differs, so connections opened before (the schema check at start) follow too."""
    if database.engine.dialect.name != "postgresql":
        return
    first = database.parallel_workers is None
    database.parallel_workers = workers
    if first:
        event.listen(database.engine, "checkout", functools.partial(_follow_parallel_workers, database))


def _follow_parallel_workers(database: Database, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    wanted = database.parallel_workers
    if record.info.get("parallel_workers", -1) == wanted:
        return
    with dbapi_connection.cursor() as cursor:
        cursor.execute("RESET max_parallel_workers_per_gather" if wanted is None or wanted < 0
                       else f"SET max_parallel_workers_per_gather = {int(wanted)}")
    dbapi_connection.commit()
    record.info["parallel_workers"] = wanted


# A connection that went back to the pool less than this long ago is handed out without a ping. pool_pre_ping
# pinged on every checkout: a round trip, a tenth of the database's work for a small request under load. A
# connection rested longer (the database may have restarted meanwhile) is pinged, and replaced if dead.
TRUSTED_IDLE_SECONDS = 5.0


# Statements of a reader session (unit_of_work's ``reader``: a busy route's short reads by key) are prepared on the
# server once run this often on a connection, as psycopg does by default: PostgreSQL then parses each once and,
# where a generic plan costs no more than planning afresh, plans it once. Planning was most of the database's work
# for those reads (a Customer 360's dozen lookups: 3.9 ms of its CPU planned each time, 1.6 ms prepared). Work that
# is not a reader's — imports, refreshes, jobs over tables that grow while they run — stays unprepared (make_engine).
READER_PREPARE_THRESHOLD = 5


def _prepare_for_reader(session: Session, transaction: Any, connection: Any) -> None:
    driver = connection.connection.driver_connection
    if hasattr(driver, "prepare_threshold"):
        driver.prepare_threshold = READER_PREPARE_THRESHOLD


def _note_checkin(dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in_at"] = time.monotonic()
    driver = getattr(dbapi_connection, "driver_connection", dbapi_connection)
    if getattr(driver, "prepare_threshold", None) is not None:
        driver.prepare_threshold = None  # the next session of the pool prepares only if it is a reader's


def _ping_if_idle(dialect: Any, dbapi_connection: Any, record: Any, proxy: Any) -> None:
    rested = time.monotonic() - record.info.get("checked_in_at", float("-inf"))
    if rested <= TRUSTED_IDLE_SECONDS:
        return
    try:
        alive = dialect.do_ping(dbapi_connection)  # what pool_pre_ping runs
    except Exception:
        alive = False
    if not alive:
        raise DisconnectionError("the connection did not answer a ping")  # the pool connects anew and retries


class Database:
    """One engine and its session factory; the edges (request, job, CLI command) own the transaction."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.parallel_workers: int | None = None  # limit_parallel_workers
        self.engine = make_engine(url, pool_size)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        # Sessions whose statements each commit by themselves on PostgreSQL (see unit_of_work's ``reader``): the
        # connection is set to autocommit when the first statement checks it out, so making one costs no I/O.
        self.reader_sessionmaker = sessionmaker(
            self.engine if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT"),
            expire_on_commit=False)
        if not self.is_sqlite:
            event.listen(self.reader_sessionmaker, "after_begin", _prepare_for_reader)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextlib.contextmanager
    def unit_of_work(self, *, writer: bool = False, reader: bool = False) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any error.

        ``reader``: on PostgreSQL each statement commits by itself (autocommit), for work that only reads with
        plain queries (a route marked ``deps.reads_only``; a server-side cursor needs a transaction). Under READ
        COMMITTED each statement sees its own snapshot inside a transaction too, so reads answer the same; what
        goes away is BEGIN and COMMIT, two of a small read's five round trips (measured: 0.8 ms of the server's
        CPU, and the database's share). A write on the way (an audit line) commits at once.

        ``writer``: on SQLite the transaction takes the write lock with its first statement (BEGIN IMMEDIATE),
        waiting for it as long as the busy timeout allows. A transaction that reads first and writes later
        is otherwise refused at once ("database is locked") when another process wrote in between: SQLite
        cannot move its snapshot forward, and the busy timeout does not wait that out."""
        session = (self.reader_sessionmaker if reader else self.sessionmaker)()
        try:
            if writer and self.is_sqlite:
                session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


_default: Database | None = None


def get_database(settings: Settings | None = None) -> Database:
    """The process-wide database for the configured URL."""
    global _default
    settings = settings or get_settings()
    url = settings.effective_database_url
    if _default is None or _default.url != url:
        _default = Database(url, pool_size=settings.threads + 2)  # + the UI's and the embedded worker's threads
    return _default


def set_database(database: Database | None) -> None:
    global _default
    _default = database


def migrations_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "migrations"


def migrate(database: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with Alembic (the same migrations on SQLite and PostgreSQL)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", database.url.replace("%", "%%"))
    with database.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


class OwnedMixin:
    """A business row placed in the unit tree and owned by a user (DESIGN §3). Bulk reassign finds these."""

    __scope_unit__ = "unit_id"
    __scope_owner__ = "owner_id"

    org_id: Mapped[int] = mapped_column(BigId, index=True)
    unit_id: Mapped[int] = mapped_column(BigId, index=True)
    owner_id: Mapped[int | None] = mapped_column(BigId, nullable=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)  # maps the class: its table exists from here on
        # A person's own records, newest first, are every consultant's list: (owner, id) reads the page's 51
        # entries in order, where an index on the owner alone fetched and sorted all of them (1,675 customers:
        # 8 ms of the database's time for each page instead of 0.1).
        table = cls.__table__  # type: ignore[attr-defined]
        Index(f"ix_{table.name}_owner_id", table.c.owner_id, table.c.id)


def owned_models() -> list[type[Any]]:
    """Every mapped model that carries an owner, in a stable order."""
    models = [m.class_ for m in Base.registry.mappers if issubclass(m.class_, OwnedMixin)]
    return sorted(models, key=lambda m: m.__tablename__)


COPY_THRESHOLD = 200  # below this many rows a multi-row INSERT is as quick as COPY and simpler


def dialect_insert(session: Session) -> Any:
    """The ``insert`` with ON CONFLICT clauses for the session's database (PostgreSQL or SQLite)."""
    from sqlalchemy.dialects.postgresql import insert as postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def insert_ignoring_conflicts(session: Session, model: type[Any], rows: list[dict[str, Any]],
                              conflict_columns: list[str]) -> int:
    """Multi-row INSERT that skips rows colliding on ``conflict_columns`` (idempotent appends). Big batches
    on PostgreSQL go through COPY into a scratch table and one INSERT … SELECT … ON CONFLICT DO NOTHING."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and len(rows) >= COPY_THRESHOLD:
        return _copy_ignoring_conflicts(session, model, rows, conflict_columns)
    if dialect == "postgresql":
        return _unnest_ignoring_conflicts(session, model, rows, conflict_columns)
    stmt = dialect_insert(session)(model).on_conflict_do_nothing(index_elements=conflict_columns).returning(model.id)
    # RETURNING counts exactly the rows written (skipped conflicts return nothing), on both databases.
    return len(session.connection().execute(stmt, rows).all())


def copy_rows(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> int:
    """Append rows fast: COPY on PostgreSQL, a multi-row INSERT on SQLite. Only for rows that cannot
    collide (their keys are new by construction)."""
    if not rows:
        return 0
    if session.get_bind().dialect.name != "postgresql":
        session.connection().execute(model.__table__.insert(), rows)
        return len(rows)
    _copy_columns(session, model.__table__, _as_columns(model.__table__, rows))
    return len(rows)


def _with_defaults(table: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with the column defaults SQLAlchemy fills in on INSERT (created_at, {} …) for the columns
    they leave out — COPY would write NULL there."""
    defaults: dict[str, Any] = {}
    for column in table.columns:
        if column.key in rows[0] or column.key == "id" or column.default is None:
            continue
        default = column.default
        defaults[column.key] = default.arg(None) if default.is_callable else default.arg
    return [{**defaults, **row} for row in rows] if defaults else rows


def insert_returning_ids(session: Session, table: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert new rows and give back their ids in row order. On PostgreSQL the ids come from the table's
    sequence in one query and the rows go in by COPY (a multi-row INSERT … RETURNING of thousands of rows
    costs ~20x more there); SQLite takes a multi-row INSERT … RETURNING."""
    if not rows:
        return []
    return insert_columns_returning_ids(session, table, _as_columns(table, rows))


_scratch_tables = itertools.count()
_column_type_oids: dict[tuple[str, str], int] = {}


def _type_oids(driver: Any, table_name: str, columns: list[str]) -> list[int]:
    """The server's type of each column (binary COPY must send exactly it), asked once per table."""
    if any((table_name, c) not in _column_type_oids for c in columns):
        with driver.cursor() as cursor:
            cursor.execute("SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = %s::regclass "
                           "AND attnum > 0 AND NOT attisdropped", (f'"{table_name}"',))
            for name, oid in cursor.fetchall():
                _column_type_oids[(table_name, name)] = oid
    return [_column_type_oids[(table_name, c)] for c in columns]


class EveryRow(NamedTuple):
    """A column's value shared by every row of ``copy_columns`` (the organisation, a batch's moment)."""

    value: Any


_JSONB, _TEXT = 3802, 25  # built-in types: the same numbers in every PostgreSQL
_json_bytes = functools.partial(orjson.dumps, default=str, option=orjson.OPT_NON_STR_KEYS)  # as _json_dumps


class JsonTexts(list):  # type: ignore[type-arg]
    """A JSON column's values for ``copy_columns`` already written as JSON text by their caller (a template
    filled in for a million rows costs a fraction of building and encoding a dict for each)."""


def _jsonb_texts(values: Iterable[Any]) -> list[str]:
    """JSON values as binary COPY takes jsonb (a version byte, then the text), sent as text: made by C
    functions over the whole column, where psycopg's jsonb dumper cost a Python call and the json module for
    every value (~4 µs; every profile and event carries two)."""
    if isinstance(values, JsonTexts):
        return list(map("\x01".__add__, values))
    return list(map("\x01".__add__, map(bytes.decode, map(_json_bytes, values))))


def _as_columns(table: Any, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows given as dicts laid out as columns, the table's Python-side defaults filled in."""
    rows = _with_defaults(table, rows)
    return {column: [row[column] for row in rows] for column in rows[0]}


def _laid_out(columns: dict[str, Any]) -> tuple[int, list[Any]]:
    """How many rows ``columns`` hold, and each column as an iterable of exactly that many values."""
    count = next((len(values) for values in columns.values() if not isinstance(values, EveryRow)), None)
    if count is None:
        raise ValueError("at least one column must give each row's value")
    return count, [itertools.repeat(v.value, count) if isinstance(v, EveryRow) else v for v in columns.values()]


def _as_dicts(columns: dict[str, Any]) -> list[dict[str, Any]]:
    """Columns as the dict rows an INSERT of SQLAlchemy takes (SQLite's path)."""
    columns = {name: list(map(orjson.loads, values)) if isinstance(values, JsonTexts) else values
               for name, values in columns.items()}
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*_laid_out(columns)[1], strict=True)]


def _copy_columns(session: Session, table: Any, columns: dict[str, Any], *, into: str | None = None) -> None:
    """COPY rows given as columns in binary format through psycopg's C row writer: values go as the server
    stores them, with no text to format, escape and parse again (2-3x quicker than formatting text in
    Python, where one aware timestamp alone cost ~3 µs)."""
    driver = session.connection().connection.driver_connection
    assert driver is not None  # a live connection
    types = _type_oids(driver, table.name, list(columns))
    for (name, column), oid in zip(list(columns.items()), types, strict=True):
        if oid == _JSONB:  # sent as text (see _jsonb_texts)
            columns = {**columns, name: EveryRow(_jsonb_texts([column.value])[0]) if isinstance(column, EveryRow)
                       else _jsonb_texts(column)}
    types = [_TEXT if oid == _JSONB else oid for oid in types]
    _, laid_out = _laid_out(columns)
    names = ", ".join(f'"{c}"' for c in columns)
    with driver.cursor() as cursor, cursor.copy(
            f'COPY "{into or table.name}" ({names}) FROM STDIN (FORMAT BINARY)') as copy:
        copy.set_types(types)
        write = copy.write_row
        for row in zip(*laid_out, strict=True):
            write(row)


def copy_columns(session: Session, table: Any, columns: dict[str, Any]) -> int:
    """``copy_rows`` for rows laid out as columns ({column: a list of values, or EveryRow(value)}; every
    column the table needs: no defaults are filled in), which spares building a dict per row where millions
    are written."""
    count, _ = _laid_out(columns)
    if not count:
        return 0
    if session.get_bind().dialect.name != "postgresql":
        session.connection().execute(table.insert(), _as_dicts(columns))
    else:
        _copy_columns(session, table, columns)
    return count


def insert_columns_returning_ids(session: Session, table: Any, columns: dict[str, Any]) -> list[int]:
    """``insert_returning_ids`` for rows laid out as columns (as ``copy_columns``)."""
    count, _ = _laid_out(columns)
    if not count:
        return []
    if session.get_bind().dialect.name != "postgresql":
        statement = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        return list(session.connection().execute(statement, _as_dicts(columns)).scalars())
    ids = reserve_ids(session, table, count)
    _copy_columns(session, table, {**columns, "id": ids})
    return ids


_id_sequences: dict[str, str] = {}


def reserve_ids(session: Session, table: Any, count: int) -> list[int]:
    """``count`` new ids of ``table`` from its sequence, in one query (PostgreSQL)."""
    connection = session.connection()
    # The sequence by name, looked up once per table, not pg_get_serial_sequence() per row: that catalog
    # lookup doubled the cost.
    sequence = _id_sequences.get(table.name)
    if sequence is None:
        sequence = _id_sequences[table.name] = str(connection.exec_driver_sql(
            f"SELECT pg_get_serial_sequence('{table.name}', 'id')").scalar())
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:  # plain tuples: 10x less than Result rows
        cursor.execute(f"SELECT nextval('{sequence}') FROM generate_series(1, {count})")
        return [row_id for row_id, in cursor.fetchall()]


_column_sql_types: dict[tuple[str, str], str] = {}


def _sql_types(driver: Any, table_name: str, columns: list[str]) -> list[str]:
    """Each column's type as SQL writes it ("bigint", "jsonb", "character varying(100)"), asked once per table."""
    if any((table_name, c) not in _column_sql_types for c in columns):
        with driver.cursor() as cursor:
            cursor.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                           "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped", (f'"{table_name}"',))
            for name, sql_type in cursor.fetchall():
                _column_sql_types[(table_name, name)] = sql_type
    return [_column_sql_types[(table_name, c)] for c in columns]


def _unnest_ignoring_conflicts(session: Session, model: type[Any], rows: list[dict[str, Any]],
                               conflict_columns: list[str]) -> int:
    """A batch too small for COPY: each column sent as one array, in a statement whose text never changes
    (INSERT … SELECT FROM unnest(…)). A multi-row VALUES of 100 events had 1,200 placeholders for psycopg to
    parse on every batch — half the cost of storing the events of a /v1/batch call."""
    table = model.__table__
    columns = _as_columns(table, rows)
    connection = session.connection()
    driver = connection.connection.driver_connection
    assert driver is not None  # a live connection, in the session's transaction
    types = _sql_types(driver, table.name, list(columns))
    if any(t.endswith("]") for t in types):  # an array column: unnest would flatten it
        stmt = dialect_insert(session)(model).on_conflict_do_nothing(index_elements=conflict_columns)
        return len(connection.execute(stmt.returning(model.id), rows).all())
    values = [[None if v is None else _json_bytes(v).decode() for v in column] if sql_type in ("jsonb", "json")
              else column for column, sql_type in zip(columns.values(), types, strict=True)]
    names = ", ".join(f'"{c}"' for c in columns)
    arrays = ", ".join(f"%b::{t}[]" for t in types)  # binary: no text to escape and quote per value
    conflict = ", ".join(f'"{c}"' for c in conflict_columns)
    with driver.cursor() as cursor:
        cursor.execute(f'INSERT INTO "{table.name}" ({names}) SELECT * FROM unnest({arrays}) '
                       f"ON CONFLICT ({conflict}) DO NOTHING", values)
        return int(cursor.rowcount)


def _copy_ignoring_conflicts(session: Session, model: type[Any], rows: list[dict[str, Any]],
                             conflict_columns: list[str]) -> int:
    table = model.__table__
    laid_out = _as_columns(table, rows)  # the defaults filled in once, for the scratch table and the INSERT
    columns = list(laid_out)
    scratch = f"kehu_scratch_{table.name}_{next(_scratch_tables)}"
    names = ", ".join(f'"{c}"' for c in columns)
    connection = session.connection()
    connection.exec_driver_sql(f'CREATE TEMP TABLE "{scratch}" ON COMMIT DROP AS SELECT {names} FROM '
                               f'"{table.name}" WITH NO DATA')
    _copy_columns(session, table, laid_out, into=scratch)
    conflict = ", ".join(f'"{c}"' for c in conflict_columns)
    result = connection.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{scratch}" '
                                        f"ON CONFLICT ({conflict}) DO NOTHING")
    connection.exec_driver_sql(f'DROP TABLE "{scratch}"')
    return result.rowcount


def profile_linked_models() -> list[type]:
    """Models whose rows point at a profile (orders, leads, …): a merge moves them, an unmerge moves them back."""
    models = [m.class_ for m in Base.registry.mappers if getattr(m.class_, "__profile_link__", None)]
    return sorted(models, key=lambda m: m.__tablename__)


def month_of(column: Any, dialect_name: str) -> Any:
    """'YYYY-MM' of a timestamp column, in SQL, on either database."""
    from sqlalchemy import func

    if dialect_name == "postgresql":
        return func.to_char(column, "YYYY-MM")
    return func.strftime("%Y-%m", column)


def shifted(column: Any, hours: float, dialect_name: str) -> Any:
    """A UTC timestamp column moved by ``hours`` (to a local wall clock before taking its month or day)."""
    from sqlalchemy import func, literal_column

    if not hours:
        return column
    if dialect_name == "postgresql":
        return column + literal_column(f"interval '{float(hours)} hours'")
    return func.datetime(column, f"{float(hours):+} hours")


def seconds_between(start: Any, end: Any, dialect_name: str) -> Any:
    """Seconds from one timestamp column to another, in SQL, on either database."""
    from sqlalchemy import func

    if dialect_name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


class SchemaBehind(RuntimeError):
    """The database is at an older migration than this code needs."""


def ensure_schema(database: Database) -> None:
    """Embedded SQLite is migrated in place; a shared PostgreSQL is only checked, since migrating it is a
    deliberate step (`kehu migrate`) when many processes share it."""
    if database.is_sqlite:
        migrate(database)
        return
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with database.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        raise SchemaBehind(f"The database schema is at {current or 'nothing'}, this kehu needs {head}: "
                           "run `kehu migrate` first.")


# A unique key taken meanwhile by another transaction, a deadlock, a serialisation failure: the work may
# succeed when done again, now that the other transaction's rows are visible.
CONCURRENCY_SQLSTATES = frozenset(("23505", "40P01", "40001"))


def lost_a_race(error: BaseException) -> bool:
    """Whether ``error`` (from SQLAlchemy, or from the driver itself as COPY raises it) is a concurrency
    conflict that trying again can resolve."""
    state = getattr(error, "sqlstate", None) or getattr(getattr(error, "orig", None), "sqlstate", None)
    return state in CONCURRENCY_SQLSTATES


def one_of(column: Any, values: list[Any], dialect_name: str) -> Any:
    """``column IN values``. On PostgreSQL one parameter, so the statement text stays the same whatever the
    list's length (SQLAlchemy compiles it once; the server plans it for each list). Written as a semi-join
    (``IN (SELECT …)``) rather than ``= ANY(:values)``: with an index both are index lookups, but where the
    planner picks a scan (a table that grew since it was last analysed) ``= ANY`` compares every row with
    every value (10,000 values × a million rows), while the semi-join hashes the list once. The list goes as
    JSON text, not as an array: psycopg writes an array value by value in Python (~2.4 µs a value, more than
    the index probe), orjson writes the JSON at once and the server reads it as quickly."""
    if dialect_name == "postgresql":
        from sqlalchemy import String, Text, bindparam, cast, func, select
        from sqlalchemy.dialects.postgresql import JSONB

        listed = bindparam(None, orjson.dumps(values, default=str).decode(), type_=Text)
        element: Any = func.jsonb_array_elements_text(cast(listed, JSONB))
        if not isinstance(column.type, String):
            element = cast(element, column.type)
        return column.in_(select(element).scalar_subquery())
    return column.in_(values)


def affected(result: Any) -> int:
    """How many rows an UPDATE, DELETE or INSERT changed (``Session.execute`` is typed as returning any Result;
    for these statements it is a cursor result that knows)."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount or 0)


def commit_without_waiting_for_disk(session: Session) -> None:
    """Let this transaction's commit return before its WAL reaches the disk (PostgreSQL; SQLite ignores it).
    Only for work committed together with its job checkpoint: a server crash can then lose the transaction
    only whole, checkpoint included, and the job does that work again — nothing half done, nothing lost."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql("SET LOCAL synchronous_commit = off")


def refresh_statistics(session: Session, table_names: list[str]) -> list[str]:
    """ANALYZE those of ``table_names`` whose statistics the planner would misjudge: never analysed, analysed
    while no row was visible yet, grown to more than twice the pages it had then, or changed by more than its
    size since. Bulk writers call this before each chunk: a table that grew from nothing to a million rows
    inside a minute is still 'empty' to the planner until autovacuum comes round, and a lookup of 1,000
    identities then becomes a nested loop over every identity (seconds, not milliseconds). The pages count
    at once, where the change counters reach the server a second or more late — long enough, with two
    workers and parts of 5,000 rows, for a part to meet the table of 40,000 rows 'empty'. Growth by doubling
    means a handful of ANALYZEs over a whole load; each runs and commits on a connection of its own, so the
    planner sees it at once in every session and it holds its lock for milliseconds, not for the caller's
    transaction (whose own rows ANALYZE would not see: call it before writing). Returns the tables analysed."""
    if session.get_bind().dialect.name != "postgresql":
        return []  # SQLite plans these lookups by its indexes alone
    from sqlalchemy import bindparam, text

    with session.get_bind().engine.connect() as connection:
        stale = list(connection.execute(text(
            "SELECT c.relname FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
            "WHERE c.relname IN :names AND c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace "
            "AND (c.reltuples < 0 OR COALESCE(s.n_mod_since_analyze, 0) > GREATEST(c.reltuples, 1000) "
            "OR (c.reltuples = 0 AND pg_relation_size(c.oid) > 0) "
            "OR pg_relation_size(c.oid) > (2 * c.relpages + 8) * current_setting('block_size')::bigint)"
        ).bindparams(bindparam("names", expanding=True)), {"names": table_names}).scalars())
        for name in stale:
            # another worker analysing it right now: its statistics are moments away
            connection.exec_driver_sql(f'ANALYZE (SKIP_LOCKED) "{name}"')
        connection.commit()
    return stale


def recreate_database(url: str) -> str:
    """Drop and create the PostgreSQL database ``url`` names (tests and benchmarks start from nothing)."""
    from sqlalchemy import make_url, text

    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    return parsed.render_as_string(hide_password=False)
