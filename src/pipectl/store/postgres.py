"""The PostgreSQL store: the store protocol as calls to the pipectl_* SQL functions (psycopg 3).

The functions in sql/postgres/ are the whole database API, shared with the supabase backend
(which calls them through PostgREST `rpc`); this module only passes named arguments in and turns
the jsonb documents that come back into models. The connection is in autocommit mode, so each
function call is its own transaction.

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
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from pipectl import clock
from pipectl.errors import InvalidInput, SchemaMissing, StoreUnavailable
from pipectl.models import (
    Claim,
    DatasetStatus,
    Job,
    NewJob,
    Run,
    RunResult,
    Threshold,
    WorkerInfo,
)
from pipectl.store.base import ANY, EDITABLE_JOB_FIELDS
from pipectl.store.migrations import MIGRATIONS_TABLE, check_version, load_migrations

CONNECT_TIMEOUT_S = 10
# pg_advisory_lock key that serialises `migrate` across hosts (the bytes of "pipectl").
MIGRATE_LOCK_KEY = 0x70697065_63746C
WAKE_CHANNEL = "pipectl_jobs"

_JOB_TIMESTAMPS = ("next_run_at", "created_at", "updated_at")
_RUN_TIMESTAMPS = ("started_at", "finished_at", "heartbeat_at")


class PostgresStore:
    def __init__(self, url: str) -> None:
        self.conninfo, self.schema = split_schema(url)
        self.display_url = mask_password(url)
        self._where = _server(self.conninfo)
        self._conn: psycopg.Connection | None = self._connect()
        self._listener: psycopg.Connection | None = None

    def close(self) -> None:
        for conn in (self._conn, self._listener):
            if conn is not None:
                conn.close()
        self._conn = self._listener = None

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

    # -- jobs ---------------------------------------------------------------------------
    def insert_job(self, new: NewJob, now: datetime) -> Job:
        return job_from_json(self._call_one("pipectl_insert_job", **_new_job_args(new, now)))

    def enqueue(self, new: NewJob, now: datetime) -> tuple[Job, bool]:
        doc = self._call_one("pipectl_enqueue", **_new_job_args(new, now))
        return job_from_json(doc["job"]), doc["created"]

    def get_job(self, job_id: int) -> Job | None:
        doc = self._call_one("pipectl_get_job", p_job_id=job_id)
        return job_from_json(doc) if doc is not None else None

    def list_jobs(
        self,
        *,
        brand_id: str | None = ANY,
        job_type: str | None = None,
        statuses: tuple[str, ...] | None = None,
        in_backoff: bool = False,
        limit: int | None = None,
    ) -> list[Job]:
        docs = self._call(
            "pipectl_list_jobs",
            **_brand_args(brand_id),
            p_job_type=job_type,
            p_statuses=list(statuses) if statuses else None,
            p_in_backoff=in_backoff,
            p_limit=limit,
        )
        return [job_from_json(doc) for doc in docs]

    def update_job(
        self,
        job_id: int,
        changes: dict[str, Any],
        now: datetime,
        *,
        only_if_status: tuple[str, ...] | None = None,
    ) -> Job | None:
        unknown = set(changes) - EDITABLE_JOB_FIELDS
        if unknown:
            raise ValueError(f"not editable: {sorted(unknown)}")
        doc = self._call_one(
            "pipectl_update_job",
            p_job_id=job_id,
            p_changes=Jsonb({key: _json_value(value) for key, value in changes.items()}),
            p_now=now,
            p_only_if_status=list(only_if_status) if only_if_status else None,
        )
        return job_from_json(doc) if doc is not None else None

    # -- the worker's transitions -------------------------------------------------------
    def register_worker(self, worker: WorkerInfo) -> None:
        self._call(
            "pipectl_register_worker",
            p_id=worker.id,
            p_host=worker.host,
            p_pid=worker.pid,
            p_started_at=worker.started_at,
            p_last_seen_at=worker.last_seen_at,
            p_version=worker.version,
        )

    def forget_workers(self, seen_before: datetime) -> int:
        return self._call_one("pipectl_forget_workers", p_seen_before=seen_before)

    def claim_due(self, worker_id: str, now: datetime, limit: int) -> list[Claim]:
        docs = self._call("pipectl_claim_due", p_worker_id=worker_id, p_now=now, p_limit=limit)
        return [claim_from_json(doc) for doc in docs]

    def heartbeat(self, worker_id: str, leases: list[tuple[int, str]], now: datetime) -> list[int]:
        return self._call(
            "pipectl_heartbeat",
            p_worker_id=worker_id,
            p_run_ids=[run_id for run_id, _ in leases],
            p_lease_tokens=[token for _, token in leases],
            p_now=now,
        )

    def finish_run(self, run_id: int, lease_token: str, result: RunResult) -> bool:
        return self._call_one(
            "pipectl_finish_run",
            p_run_id=run_id,
            p_lease_token=lease_token,
            **_result_args(result),
        )

    def release_run(self, run_id: int, lease_token: str, now: datetime) -> bool:
        return self._call_one(
            "pipectl_release_run", p_run_id=run_id, p_lease_token=lease_token, p_now=now
        )

    def stale_runs(self, heartbeat_before: datetime) -> list[Claim]:
        docs = self._call("pipectl_stale_runs", p_heartbeat_before=heartbeat_before)
        return [claim_from_json(doc) for doc in docs]

    def fail_stale_run(self, run_id: int, heartbeat_before: datetime, result: RunResult) -> bool:
        return self._call_one(
            "pipectl_fail_stale_run",
            p_run_id=run_id,
            p_heartbeat_before=heartbeat_before,
            **_result_args(result),
        )

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

    # -- reads --------------------------------------------------------------------------
    def list_runs(
        self,
        *,
        job_id: int | None = None,
        brand_id: str | None = ANY,
        status: str | None = None,
        limit: int = 50,
    ) -> list[Run]:
        docs = self._call(
            "pipectl_list_runs",
            p_job_id=job_id,
            **_brand_args(brand_id),
            p_status=status,
            p_limit=limit,
        )
        return [run_from_json(doc) for doc in docs]

    def get_run(self, run_id: int) -> Run | None:
        doc = self._call_one("pipectl_get_run", p_run_id=run_id)
        return run_from_json(doc) if doc is not None else None

    def runs_by_id(self, run_ids: list[int]) -> dict[int, Run]:
        docs = self._call("pipectl_runs_by_id", p_run_ids=sorted(set(run_ids)))
        return {run.id: run for run in map(run_from_json, docs)}

    def dataset_statuses(self, *, brand_id: str | None = ANY) -> list[DatasetStatus]:
        docs = self._call("pipectl_dataset_statuses", **_brand_args(brand_id))
        return [dataset_from_json(doc) for doc in docs]

    def dataset_status(self, dataset: str, brand_id: str | None) -> DatasetStatus | None:
        doc = self._call_one("pipectl_dataset_status", p_dataset=dataset, p_brand_id=brand_id)
        return dataset_from_json(doc) if doc is not None else None

    def thresholds(self) -> list[Threshold]:
        return [threshold_from_json(doc) for doc in self._call("pipectl_thresholds")]

    def set_threshold(self, threshold: Threshold, now: datetime) -> None:
        self._call(
            "pipectl_set_threshold",
            p_brand_id=threshold.brand_id,
            p_dataset=threshold.dataset,
            p_warn_after_seconds=threshold.warn_after.total_seconds(),
            p_error_after_seconds=threshold.error_after.total_seconds(),
            p_now=now,
        )

    def workers(self) -> list[WorkerInfo]:
        return [worker_from_json(doc) for doc in self._call("pipectl_workers")]


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


# -- arguments in ------------------------------------------------------------------------------


def _brand_args(brand_id: str | None) -> dict[str, Any]:
    """ANY → every brand; None → global only; a brand → that brand."""
    if brand_id is ANY:
        return {"p_all_brands": True, "p_brand_id": None}
    return {"p_all_brands": False, "p_brand_id": brand_id}


def _new_job_args(new: NewJob, now: datetime) -> dict[str, Any]:
    args = {f"p_{key}": value for key, value in asdict(new).items()}
    args["p_parameters"] = Jsonb(new.parameters)
    args["p_now"] = now
    return args


def _result_args(result: RunResult) -> dict[str, Any]:
    # PostgreSQL text and jsonb cannot hold NUL; handler output could, and must not make the
    # outcome unrecordable.
    update = result.job_update
    return {
        "p_status": result.status,
        "p_finished_at": result.finished_at,
        "p_error_message": _no_nul(result.error_message),
        "p_logs": _no_nul(result.logs),
        "p_steps": Jsonb(_no_nul(result.steps)),
        "p_job_status": update.status,
        "p_next_run_at": update.next_run_at,
        "p_retry_count": update.retry_count,
        "p_last_error": _no_nul(update.last_error),
        "p_datasets": Jsonb(_no_nul([asdict(outcome) for outcome in result.datasets])),
    }


def _no_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_no_nul(item) for item in value]
    if isinstance(value, dict):
        return {key: _no_nul(item) for key, item in value.items()}
    return value


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# -- documents out (shared with the supabase backend: PostgREST returns the same JSON) ---------


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(UTC) if value is not None else None


def job_from_json(doc: dict[str, Any]) -> Job:
    values = {key: doc[key] for key in Job.__dataclass_fields__}
    for key in _JOB_TIMESTAMPS:
        values[key] = _dt(values[key])
    if values["timeout_seconds"] is not None:
        values["timeout_seconds"] = float(values["timeout_seconds"])
    return Job(**values)


def run_from_json(doc: dict[str, Any]) -> Run:
    values = {key: doc[key] for key in Run.__dataclass_fields__}
    for key in _RUN_TIMESTAMPS:
        values[key] = _dt(values[key])
    return Run(**values)


def claim_from_json(doc: dict[str, Any]) -> Claim:
    return Claim(run=run_from_json(doc["run"]), job=job_from_json(doc["job"]))


def dataset_from_json(doc: dict[str, Any]) -> DatasetStatus:
    return DatasetStatus(
        brand_id=doc["brand_id"],
        dataset=doc["dataset"],
        last_success_at=_dt(doc["last_success_at"]),
        last_attempt_at=_dt(doc["last_attempt_at"]),
        last_status=doc["last_status"],
        last_error=doc["last_error"],
        last_run_id=doc["last_run_id"],
    )


def threshold_from_json(doc: dict[str, Any]) -> Threshold:
    return Threshold(
        dataset=doc["dataset"],
        brand_id=doc["brand_id"],
        warn_after=timedelta(seconds=doc["warn_after_seconds"]),
        error_after=timedelta(seconds=doc["error_after_seconds"]),
    )


def worker_from_json(doc: dict[str, Any]) -> WorkerInfo:
    return WorkerInfo(
        id=doc["id"],
        host=doc["host"],
        pid=doc["pid"],
        started_at=_dt(doc["started_at"]),
        last_seen_at=_dt(doc["last_seen_at"]),
        version=doc["version"],
    )
