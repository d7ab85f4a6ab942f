"""The PostgreSQL store: the pipectl_* SQL functions called through psycopg 3.

Every protocol method is written once in `FunctionStore` (functions.py), shared with the
supabase backend, which calls the same functions through PostgREST `rpc`; this module only says
how a call travels (a connection in autocommit mode, so each function call is its own
transaction), how errors read, and how the schema is installed and waited on.

URL: `postgresql://user[:password]@host[:port]/dbname[?libpq-parameters]`, plus one parameter of
pipectl's own, `schema=NAME`: it is removed from the URL before libpq sees it, and the connection
runs `SET search_path TO NAME`, so pipectl's tables and functions live in that schema (`migrate`
creates it). Without it, libpq's defaults apply (usually the `public` schema).

Workers wait for work with LISTEN on the channel `pipectl_jobs`, which `pipectl_insert_job`
notifies. Channels are per database, not per schema: two schemas in one database wake each
other's workers, which costs a poll and nothing else.
"""

from __future__ import annotations

import os
import re
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
from pipectl.store.functions import FunctionStore, Json
from pipectl.store.migrations import (
    MIGRATE_LOCK_KEY,
    MIGRATIONS_TABLE,
    check_version,
    load_migrations,
)

CONNECT_TIMEOUT_S = 10
WAKE_CHANNEL = "pipectl_jobs"
RUN_ENDED_CHANNEL = "pipectl_runs"  # a run's id once it ends (migration 0011's trigger)


class PostgresStore(FunctionStore):
    def __init__(self, url: str) -> None:
        self.conninfo, self.schema = split_schema(url)
        self.display_url = mask_password(url)
        self._where = _server(self.conninfo)
        self._conn: psycopg.Connection | None = self._connect()
        self._listener: psycopg.Connection | None = None
        self._run_listener: psycopg.Connection | None = None  # for runs wait / enqueue --wait

    def close(self) -> None:
        for conn in (self._conn, self._listener, self._run_listener):
            if conn is not None:
                conn.close()
        self._conn = self._listener = self._run_listener = None

    def _connect(self) -> psycopg.Connection:
        options: dict[str, Any] = {}
        if "connect_timeout" not in conninfo_to_dict(self.conninfo):
            options["connect_timeout"] = CONNECT_TIMEOUT_S
        try:
            # No server-side prepared statements: they break behind transaction-mode poolers
            # (Supabase's), and the read functions are best planned with each call's arguments.
            conn = psycopg.connect(
                self.conninfo, autocommit=True, prepare_threshold=None, **options
            )
        except psycopg.Error as exc:
            # libpq says "connection to server at …, port … failed: <reason>"; keep the reason.
            reason = re.sub(r"^.*failed: ", "", self._reason(exc)).removeprefix("FATAL:").strip()
            raise StoreUnavailable(f"cannot reach PostgreSQL at {self._where}: {reason}") from None
        with self._errors(conn):
            conn.execute("SET TIME ZONE 'UTC'")
            if self.schema is not None:
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        return conn

    def _connection(self) -> psycopg.Connection:
        """The session connection, opened again if it was lost (a server restart, say)."""
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
        password = conninfo_to_dict(self.conninfo).get("password")
        return line.replace(password, "***") if password else line

    def _call(self, function: str, **args: Any) -> list[Any]:
        """Call one pipectl_* function with named arguments, as Supabase's `rpc` does; return
        its rows' single values."""
        args = {
            name: Jsonb(value.value) if isinstance(value, Json) else value
            for name, value in args.items()
        }
        query = sql.SQL("SELECT * FROM {}({})").format(
            sql.Identifier(function),
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
        applied = []
        conn = self._connection()
        table = sql.Identifier(MIGRATIONS_TABLE)
        with self._errors(conn):
            # A session lock, held across the per-migration transactions below.
            conn.execute("SELECT pg_advisory_lock(%s)", [MIGRATE_LOCK_KEY])
            try:
                if self.schema is not None:
                    conn.execute(
                        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                            sql.Identifier(self.schema)
                        )
                    )
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY, "
                        "name text NOT NULL, applied_at timestamptz NOT NULL)"
                    ).format(table)
                )
                done = {
                    row[0] for row in conn.execute(sql.SQL("SELECT version FROM {}").format(table))
                }
                for migration in load_migrations("postgres"):
                    if migration.version in done:
                        continue
                    with conn.transaction():
                        conn.execute(migration.sql)
                        conn.execute(
                            sql.SQL(
                                "INSERT INTO {} (version, name, applied_at) VALUES (%s, %s, %s)"
                            ).format(table),
                            (migration.version, migration.name, clock.now()),
                        )
                    applied.append(migration.version)
            finally:
                if not (conn.closed or conn.broken):
                    conn.execute("SELECT pg_advisory_unlock(%s)", [MIGRATE_LOCK_KEY])
        return applied

    def schema_version(self) -> int | None:
        conn = self._connection()
        with self._errors(conn):
            (table,) = conn.execute("SELECT to_regclass(%s)", [MIGRATIONS_TABLE]).fetchone()
            if table is None:
                return None
            (version,) = conn.execute(
                sql.SQL("SELECT max(version) FROM {}").format(sql.Identifier(MIGRATIONS_TABLE))
            ).fetchone()
        return version

    def check_schema(self) -> None:
        check_version(self.schema_version(), "postgres")

    def db_now(self) -> datetime:
        # Plain SQL rather than pipectl_db_now(): `doctor` asks before the schema may exist.
        conn = self._connection()
        with self._errors(conn):
            (value,) = conn.execute("SELECT clock_timestamp()").fetchone()
        return value.astimezone(UTC)

    def wait_for_work(self, timeout_s: float) -> bool:
        """Block until a job is enqueued (a NOTIFY on `pipectl_jobs`) or `timeout_s` passes;
        True when woken by a notification.

        The listening connection stays open between calls, so a job enqueued while the worker
        was busy wakes the next call at once."""
        if self._listener is None or self._listener.closed:
            listener = self._connect()
            with self._errors(listener):
                listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(WAKE_CHANNEL)))
            self._listener = listener
        with self._errors(self._listener):
            woken = any(True for _ in self._listener.notifies(timeout=timeout_s, stop_after=1))
            # Swallow the wake-ups queued meanwhile: one claim round serves them all.
            for _ in self._listener.notifies(timeout=0):
                pass
        return woken

    def wait_for_run_end(self, timeout_s: float) -> bool:
        """Block until some run ends (a NOTIFY on `pipectl_runs`) or `timeout_s` passes; True
        when woken. The first call starts listening; the caller then looks at its run."""
        if self._run_listener is None or self._run_listener.closed:
            listener = self._connect()
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


def mask_password(url: str) -> str:
    """The URL with its password (in the user part or a `password=` parameter) shown as ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{hosts}" if colon else netloc
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "password" for key, _ in query):
        masked = [(key, "***" if key == "password" else value) for key, value in query]
        parts = parts._replace(query=urlencode(masked, safe="*", quote_via=quote))
    return urlunsplit(parts._replace(netloc=netloc))


def _server(conninfo: str) -> str:
    """host:port/dbname as libpq would resolve them, for error messages."""
    params = conninfo_to_dict(conninfo)
    host = params.get("host") or os.environ.get("PGHOST") or "localhost"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or params.get("user") or ""
    return f"{host}:{port}/{dbname}"
