"""The PostgreSQL store: the pipectl_* SQL functions called through psycopg 3.

Every protocol method is written once in `FunctionStore` (functions.py), shared with the
supabase backend, which calls the same functions through PostgREST `rpc`; this module only says
how a call travels (a connection in autocommit mode, so each function call is its own
transaction), how errors read, and how the schema is installed and waited on.

URL: `postgresql://user[:password]@host[:port]/dbname[?libpq-parameters]`, plus one parameter of
pipectl's own, `schema=NAME` (default `public`): it is removed from the URL before libpq sees it.
Nothing is set on the connection, because behind a transaction pooler (PgBouncer, Supavisor)
a session setting would stay on a server connection that other clients get next. Instead each
call names its function with the schema (`"NAME".pipectl_claim_due(...)`), and every pipectl
function runs with `search_path` pinned to the schema it was created in (migration 0009), so a
call is right whatever search_path the pooled connection carries. `migrate` sets it with
`SET LOCAL`, inside its one transaction.

Workers wait for work with LISTEN on the channel `pipectl_jobs`, which `pipectl_insert_job`
notifies, on a connection of their own (`listen_url`, default the store's URL). Channels are per
database, not per schema: two schemas in one database wake each other's workers, which costs a
poll and nothing else. Behind a transaction pooler a LISTEN never hears anything;
`listen_check` finds that out.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from pipectl import clock
from pipectl.errors import InvalidInput, SchemaMissing, StoreUnavailable
from pipectl.store.base import Listener
from pipectl.store.functions import FunctionStore, Json
from pipectl.store.migrations import (
    MIGRATE_LOCK_KEY,
    MIGRATIONS_TABLE,
    check_version,
    load_migrations,
)
from pipectl.store.urls import mask_password

CONNECT_TIMEOUT_S = 10
WAKE_CHANNEL = "pipectl_jobs"
DEFAULT_SCHEMA = "public"
# How long `listen_check` waits for its own NOTIFY to come back.
LISTEN_CHECK_S = 2.0
# What PgBouncer says when a pooler in statement mode meets a transaction.
_STATEMENT_MODE = "transaction blocks not allowed"
RUN_ENDED_CHANNEL = "pipectl_runs"  # a run's id once it ends (migration 0011's trigger)


class PostgresStore(FunctionStore, Listener):
    """One session connection, shared by the threads that share this store: psycopg runs one
    statement at a time on it, each function call its own transaction (autocommit), and a lost
    connection is reopened by one thread only."""

    def __init__(self, url: str, *, listen_url: str | None = None) -> None:
        self.conninfo, self.schema = split_schema(url)
        self.home = self.schema or DEFAULT_SCHEMA
        self.listen_conninfo = split_schema(listen_url)[0] if listen_url else self.conninfo
        self.display_url = mask_password(url)
        self._where = _server(self.conninfo)
        self._reopening = threading.Lock()
        self._conn: psycopg.Connection | None = self._connect()
        self._listener: psycopg.Connection | None = None
        self._woken = False  # a wake-up heard during listen_check, for the next wait
        self._run_listener: psycopg.Connection | None = None  # for runs wait / enqueue --wait

    def close(self) -> None:
        for conn in (self._conn, self._listener, self._run_listener):
            if conn is not None:
                conn.close()
        self._conn = self._listener = self._run_listener = None

    def _connect(self, conninfo: str | None = None) -> psycopg.Connection:
        conninfo = conninfo or self.conninfo
        options: dict[str, Any] = {}
        if "connect_timeout" not in conninfo_to_dict(conninfo):
            options["connect_timeout"] = CONNECT_TIMEOUT_S
        try:
            # No server-side prepared statements: they break behind transaction-mode poolers
            # (Supabase's), and the read functions are best planned with each call's arguments.
            return psycopg.connect(conninfo, autocommit=True, prepare_threshold=None, **options)
        except psycopg.Error as exc:
            # libpq says "connection to server at …, port … failed: <reason>"; keep the reason.
            reason = re.sub(r"^.*failed: ", "", self._reason(exc)).removeprefix("FATAL:").strip()
            where = _server(conninfo)
            raise StoreUnavailable(f"cannot reach PostgreSQL at {where}: {reason}") from None

    def _connection(self) -> psycopg.Connection:
        """The session connection, opened again if it was lost (a server restart, say)."""
        with self._reopening:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            return self._conn

    @contextmanager
    def _errors(self, conn: psycopg.Connection) -> Iterator[None]:
        """Turn database errors into pipectl's: one line each, never the password."""
        try:
            yield
        except (errors.UndefinedTable, errors.UndefinedFunction, errors.InvalidSchemaName) as exc:
            raise SchemaMissing(self._reason(exc)) from None
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            raise InvalidInput(self._reason(exc)) from None
        except psycopg.OperationalError as exc:
            if conn.broken:
                conn.close()
            raise StoreUnavailable(
                f"PostgreSQL at {self._where} failed: {self._reason(exc)}"
            ) from None

    def _reason(self, exc: psycopg.Error) -> str:
        """The useful part of a psycopg error, on one line, with any password blanked out."""
        line = next((part for part in str(exc).splitlines() if part.strip()), type(exc).__name__)
        for conninfo in (self.conninfo, self.listen_conninfo):
            password = conninfo_to_dict(conninfo).get("password")
            line = line.replace(str(password), "***") if password else line
        return line

    def _call(self, function: str, **args: Any) -> list[Any]:
        """Call one pipectl_* function with named arguments, as Supabase's `rpc` does; return
        its rows' single values."""
        args = {
            name: Jsonb(value.value) if isinstance(value, Json) else value
            for name, value in args.items()
        }
        query = sql.SQL("SELECT * FROM {}({})").format(
            sql.Identifier(self.home, function),
            sql.SQL(", ").join(
                sql.SQL("{} => {}").format(sql.Identifier(name), sql.Placeholder(name))
                for name in args
            ),
        )
        conn = self._connection()
        with self._errors(conn):
            return [row[0] for row in conn.execute(query, args).fetchall()]

    def _call_one(self, function: str, **args: Any) -> Any:
        (value,) = self._call(function, **args)
        return value

    # -- schema -------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Install or upgrade the schema in one transaction under a transaction-scoped lock,
        which is safe through a pooler in session or transaction mode: no lock or setting
        outlives the transaction. Statement mode, which cannot run a transaction, is refused."""
        applied = []
        conn = self._connection()
        table = sql.Identifier(self.home, MIGRATIONS_TABLE)
        with self._migrate_errors(), self._errors(conn), conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATE_LOCK_KEY])
            if self.schema is not None:
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.home))
                )
            # Where the migrations' unqualified names go, for this transaction only.
            conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(self.home)))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY, "
                    "name text NOT NULL, applied_at timestamptz NOT NULL)"
                ).format(table)
            )
            done = {row[0] for row in conn.execute(sql.SQL("SELECT version FROM {}").format(table))}
            for migration in load_migrations("postgres"):
                if migration.version in done:
                    continue
                conn.execute(migration.sql)
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (version, name, applied_at) VALUES (%s, %s, %s)"
                    ).format(table),
                    (migration.version, migration.name, clock.now()),
                )
                applied.append(migration.version)
        return applied

    @contextmanager
    def _migrate_errors(self) -> Iterator[None]:
        """What stops an install, said in a line with what to do instead."""
        try:
            yield
        except errors.DuplicateTable as exc:
            taken = exc.diag.message_primary or self._reason(exc)
            raise StoreUnavailable(
                f'cannot install pipectl in schema "{self.home}": {taken}, and it is not '
                "pipectl's; install pipectl beside it in a schema of its own by adding "
                "?schema=pipectl to the database URL (see docs/deploying.md)"
            ) from None
        except StoreUnavailable as exc:
            if _STATEMENT_MODE not in str(exc):
                raise
            raise StoreUnavailable(
                f"cannot migrate through {self._where}: a pooler in statement mode cannot run "
                "the migration's transaction; use the direct or session-mode port"
            ) from None

    def schema_version(self) -> int | None:
        conn = self._connection()
        table = sql.Identifier(self.home, MIGRATIONS_TABLE)
        with self._errors(conn):
            (found,) = _one(conn.execute("SELECT to_regclass(%s)", [table.as_string(conn)]))
            if found is None:
                return None
            (version,) = _one(conn.execute(sql.SQL("SELECT max(version) FROM {}").format(table)))
        return version

    def check_schema(self) -> None:
        check_version(self.schema_version(), "postgres")

    def db_now(self) -> datetime:
        # Plain SQL rather than pipectl_db_now(): `doctor` asks before the schema may exist.
        conn = self._connection()
        with self._errors(conn):
            (value,) = _one(conn.execute("SELECT clock_timestamp()"))
        return value.astimezone(UTC)

    # -- wake-ups -----------------------------------------------------------------------
    def _listening(self) -> psycopg.Connection:
        """The LISTEN connection, opened (again) if need be."""
        if self._listener is None or self._listener.closed:
            listener = self._connect(self.listen_conninfo)
            with self._errors(listener):
                listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(WAKE_CHANNEL)))
            self._listener = listener
        return self._listener

    def listen_check(self, timeout_s: float = LISTEN_CHECK_S) -> bool:
        """Whether a NOTIFY sent on the store's connection reaches the LISTEN connection. Behind
        a transaction pooler it does not: the LISTEN stayed on a server connection that is no
        longer this client's. Then the LISTEN connection is closed (its UNLISTEN is a best
        effort: through such a pooler it may reach another server connection)."""
        listener = self._listening()
        probe = f"check {uuid.uuid4().hex}"
        conn = self._connection()
        with self._errors(conn):
            conn.execute("SELECT pg_notify(%s, %s)", [WAKE_CHANNEL, probe])
        deadline = time.monotonic() + timeout_s
        with self._errors(listener):
            while (remaining := deadline - time.monotonic()) > 0:
                for notify in listener.notifies(timeout=remaining, stop_after=1):
                    if notify.payload == probe:
                        return True
                    self._woken = True
            listener.execute("UNLISTEN *")
        listener.close()
        return False

    def wait_for_work(self, timeout_s: float) -> bool:
        """Block until a job is enqueued (a NOTIFY on `pipectl_jobs`) or `timeout_s` passes;
        True when woken by a notification.

        The listening connection stays open between calls, so a job enqueued while the worker
        was busy wakes the next call at once."""
        listener = self._listening()
        if self._woken:
            self._woken = False
            return True
        with self._errors(listener):
            woken = any(True for _ in listener.notifies(timeout=timeout_s, stop_after=1))
            # Swallow the wake-ups queued meanwhile: one claim round serves them all.
            for _ in listener.notifies(timeout=0):
                pass
        return woken

    def wait_for_run_end(self, timeout_s: float) -> bool:
        """Block until some run ends (a NOTIFY on `pipectl_runs`) or `timeout_s` passes; True
        when woken. The first call starts listening (on the LISTEN connection's URL, as the
        worker's wake-ups do); the caller then looks at its run."""
        if self._run_listener is None or self._run_listener.closed:
            listener = self._connect(self.listen_conninfo)
            with self._errors(listener):
                listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(RUN_ENDED_CHANNEL)))
            self._run_listener = listener
        with self._errors(self._run_listener):
            notifies = self._run_listener.notifies
            woken = any(True for _ in notifies(timeout=timeout_s, stop_after=1))
            for _ in notifies(timeout=0):  # the others queued meanwhile: one look serves all
                pass
        return woken


# -- URLs --------------------------------------------------------------------------------------


def split_schema(url: str) -> tuple[str, str | None]:
    """Remove pipectl's `schema=NAME` query parameter from a PostgreSQL URL: (url, NAME)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    if not schemas:
        return url, None
    if not schemas[-1]:
        raise InvalidInput("the database URL has an empty schema= parameter")
    rest = urlencode([(key, value) for key, value in query if key != "schema"], quote_via=quote)
    return urlunsplit(parts._replace(query=rest)), schemas[-1]


def _server(conninfo: str) -> str:
    """host:port/dbname as libpq would resolve them, for error messages."""
    params = conninfo_to_dict(conninfo)
    host = params.get("host") or os.environ.get("PGHOST") or "localhost"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or params.get("user") or ""
    return f"{host}:{port}/{dbname}"


def _one(cursor: psycopg.Cursor[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The row of a statement that always returns exactly one (an aggregate, a function call)."""
    row = cursor.fetchone()
    if row is None:
        raise StoreUnavailable("PostgreSQL returned no row where one was expected")
    return row
