"""The embedded SQLite store: the store protocol in Python + SQL over one database file."""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipectl import clock
from pipectl.errors import InvalidInput, PipectlError, SchemaMissing, StoreUnavailable
from pipectl.models import (
    BrandRetirement,
    Claim,
    DatasetOutcome,
    DatasetStatus,
    Job,
    JobUpdate,
    NewJob,
    Recorded,
    Run,
    RunResult,
    StatusSnapshot,
    Threshold,
    WorkerInfo,
)
from pipectl.store.base import ANY, EDITABLE_JOB_FIELDS
from pipectl.store.migrations import MIGRATIONS_TABLE, load_migrations

BUSY_TIMEOUT_S = 30.0
# How often an idle worker looks whether another connection committed (PRAGMA data_version).
WAKE_CHECK_S = 0.02

_JOB_TIMESTAMPS = ("next_run_at", "created_at", "updated_at")
# A running run is stuck when its heartbeat is older than the cutoff; one that never sent a
# heartbeat (heartbeat_at still equals started_at, as the claim set it) when it started before
# the start-grace cutoff. Parameters: started_before, heartbeat_before.
_STALE = "heartbeat_at < CASE WHEN heartbeat_at = started_at THEN ? ELSE ? END"
_RUN_TIMESTAMPS = ("started_at", "finished_at", "heartbeat_at", "cancel_requested_at")


def ts(value: datetime | None) -> str | None:
    """The one text form of a timestamp in SQLite: UTC, microseconds, '+00:00'."""
    if value is None:
        return None
    if value.tzinfo is None:  # pipectl's clock is aware; a naive time from a caller means UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def sqlite_path(url: str) -> str:
    """`sqlite:///relative.db`, `sqlite:////abs/path.db` or `sqlite:///:memory:` → a path."""
    if not url.startswith("sqlite://"):
        raise InvalidInput(f"not a SQLite URL: {url!r}")
    path = url.removeprefix("sqlite://").removeprefix("/")
    if not path:
        raise InvalidInput("the SQLite URL names no file: use sqlite:///path/to/pipectl.db")
    return path


class SQLiteStore:
    """One connection, shared by the threads that share this store: each call holds a lock for
    the length of its statement or transaction, so calls from several threads take turns and
    never interleave inside a transaction. (Readers do not run in parallel; SQLite serialises
    the writers anyway, and a call is a fraction of a millisecond besides its commit.)"""

    def __init__(self, url: str, *, create: bool = False) -> None:
        self.path = sqlite_path(url)
        self.display_url = url
        if self.path != ":memory:" and not create and not Path(self.path).exists():
            raise SchemaMissing(f"no database file at {self.path}")
        if create and self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # Reentrant: a snapshot's reads and a transaction's own statements run inside it.
        self._lock = threading.RLock()
        try:
            self.conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode = WAL")
            # FULL: a run reported done survives a power cut, not only a process crash.
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            # What wait_for_work compares with: any commit after this wakes it.
            self._seen_version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise StoreUnavailable(
                f"cannot open SQLite database {self.path}: {exc} (the file and its directory "
                "must be writable: SQLite's WAL mode writes beside the file even to read)"
            ) from None

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    # -- wake-ups -----------------------------------------------------------------------
    def listen_check(self) -> bool:
        """Wake-ups need nothing but the file here: every commit is seen."""
        return True

    def wait_for_work(self, timeout_s: float) -> bool:
        """Block until another connection commits to the file or `timeout_s` passes; True when
        one did. `PRAGMA data_version` on this connection changes with every other
        connection's commit (an enqueue, another worker's claim, a heartbeat): the claim that
        follows finds out whether something is due. The version last seen is kept, so a commit
        made while the worker was busy wakes the next call at once."""
        deadline = time.monotonic() + timeout_s
        while True:
            version = self._data_version()
            if version != self._seen_version:
                self._seen_version = version
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(WAKE_CHECK_S, remaining))

    def _data_version(self) -> int:
        with self._lock:
            try:
                return self.conn.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error as exc:
                raise _store_error(exc) from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: it takes the write lock up front, so concurrent workers
        serialise here instead of failing on lock upgrade."""
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise _store_error(exc) from None
            try:
                yield self.conn
            except sqlite3.IntegrityError as exc:
                self._rollback()
                raise InvalidInput(f"rejected by the store: {exc}") from None
            except sqlite3.Error as exc:  # disk full, read-only file, I/O error: nothing written
                self._rollback()
                raise _store_error(exc) from None
            except BaseException:
                self._rollback()
                raise
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise _store_error(exc) from None

    def _rollback(self) -> None:
        # SQLite may already have rolled back by itself (SQLITE_FULL, SQLITE_IOERR).
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("ROLLBACK")

    def _read(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        try:
            with self._lock:
                return self.conn.execute(sql, params).fetchall()
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            raise _store_error(exc) from None

    # -- schema -------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        applied = []
        with self._write() as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            done = {row[0] for row in conn.execute(f"SELECT version FROM {MIGRATIONS_TABLE}")}
            for migration in load_migrations("sqlite"):
                if migration.version in done:
                    continue
                for statement in _statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, ts(clock.now())),
                )
                applied.append(migration.version)
        return applied

    def schema_version(self) -> int | None:
        try:
            with self._lock:
                row = self.conn.execute(f"SELECT max(version) FROM {MIGRATIONS_TABLE}").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise _store_error(exc) from None
        return row[0]

    def check_schema(self) -> None:
        from pipectl.store.migrations import check_version

        check_version(self.schema_version(), "sqlite")

    def db_now(self) -> datetime:
        (value,) = self._read("SELECT strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')")[0]
        return datetime.fromisoformat(value)

    # -- jobs ---------------------------------------------------------------------------
    def insert_job(self, new: NewJob, now: datetime) -> Job:
        with self._write() as conn:
            return self._insert_job(conn, new, now)

    def _insert_job(self, conn: sqlite3.Connection, new: NewJob, now: datetime) -> Job:
        row = conn.execute(
            """
            INSERT INTO scheduled_jobs (brand_id, job_type, name, schedule_type, cron_expression,
                timezone, next_run_at, status, parameters, max_retries, retry_base_seconds,
                retry_cap_seconds, timeout_seconds, dedupe_key, concurrency_key, created_at,
                updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            RETURNING *
            """,
            (
                new.brand_id,
                new.job_type,
                new.name,
                new.schedule_type,
                new.cron_expression,
                new.timezone,
                ts(new.next_run_at),
                new.status,
                json.dumps(new.parameters),
                new.max_retries,
                new.retry_base_seconds,
                new.retry_cap_seconds,
                new.timeout_seconds,
                new.dedupe_key,
                new.concurrency_key,
                ts(now),
                ts(now),
            ),
        ).fetchone()
        return _job(row)

    def enqueue(self, new: NewJob, now: datetime) -> tuple[Job, bool]:
        with self._write() as conn:
            if new.dedupe_key is not None:
                existing = conn.execute(
                    "SELECT * FROM scheduled_jobs WHERE dedupe_key = ? AND status = 'active' "
                    "ORDER BY id LIMIT 1",
                    (new.dedupe_key,),
                ).fetchone()
                if existing is not None:
                    return _job(existing), False
            return self._insert_job(conn, new, now), True

    def get_job(self, job_id: int) -> Job | None:
        rows = self._read("SELECT * FROM scheduled_jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def list_jobs(
        self,
        *,
        brand_id: str | None = ANY,
        job_type: str | None = None,
        statuses: tuple[str, ...] | None = None,
        in_backoff: bool = False,
        limit: int | None = None,
    ) -> list[Job]:
        where, params = _brand_filter("brand_id", brand_id)
        if job_type is not None:
            where.append("job_type = ?")
            params.append(job_type)
        if statuses:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(statuses)
        if in_backoff:
            where.append("retry_count > 0 AND status IN ('active', 'running', 'paused')")
        live = in_backoff or bool(statuses and "archived" not in statuses)
        if live:
            # Live jobs are a few per brand beside a growing archive, and have the partial
            # index scheduled_jobs_live, which SQLite reads only when the query states its
            # condition and asks for no other order (it would rather walk every job in id
            # order): they are sorted here, as running runs are in list_runs.
            where.append("status <> 'archived'")
        sql = "SELECT * FROM scheduled_jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if live:
            rows = sorted(self._read(sql, params), key=lambda row: row["id"])
            return [_job(row) for row in rows[:limit]]
        sql += " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_job(row) for row in self._read(sql, params)]

    def update_job(
        self,
        job_id: int,
        changes: dict[str, Any],
        now: datetime,
        *,
        only_if_status: tuple[str, ...] | None = None,
    ) -> Job | None:
        with self._write() as conn:
            return _update_job(conn, job_id, changes, now, only_if_status)

    def update_jobs(
        self,
        updates: list[tuple[int, dict[str, Any]]],
        now: datetime,
        *,
        only_if_status: tuple[str, ...] | None = None,
    ) -> list[Job]:
        with self._write() as conn:
            changed = [
                _update_job(conn, job_id, changes, now, only_if_status)
                for job_id, changes in sorted(updates, key=lambda update: update[0])
            ]
        return [job for job in changed if job is not None]

    # -- the worker's transitions -------------------------------------------------------
    def register_worker(self, worker: WorkerInfo) -> None:
        with self._write() as conn:
            conn.execute(
                """
                INSERT INTO workers (id, host, pid, started_at, last_seen_at, version)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
                    started_at = excluded.started_at, last_seen_at = excluded.last_seen_at,
                    version = excluded.version, stopped_at = NULL
                """,
                (
                    worker.id,
                    worker.host,
                    worker.pid,
                    ts(worker.started_at),
                    ts(worker.last_seen_at),
                    worker.version,
                ),
            )

    def stop_worker(self, worker_id: str, now: datetime) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE workers SET last_seen_at = ?, stopped_at = ? WHERE id = ?",
                (ts(now), ts(now), worker_id),
            )

    def forget_workers(self, seen_before: datetime) -> int:
        with self._write() as conn:
            return conn.execute(
                """
                DELETE FROM workers AS w WHERE w.last_seen_at < ? AND NOT EXISTS (
                    SELECT 1 FROM scheduled_job_runs AS r
                    WHERE r.status = 'running' AND r.worker_id = w.id)
                """,
                (ts(seen_before),),
            ).rowcount

    def claim_due(self, worker_id: str, now: datetime, limit: int) -> list[Claim]:
        at = ts(now)
        with self._write() as conn:
            picked = [
                (job_id, retry_count + 1, at, at, worker_id, secrets.token_hex(16), key)
                for job_id, retry_count, key in _pick_due(conn, at, limit)
            ]
            if not picked:
                return []
            # One statement for all the runs and one for all the jobs (placeholders only).
            rows = ", ".join(["(?, ?, 'running', ?, ?, ?, ?, ?)"] * len(picked))
            runs = conn.execute(
                "INSERT INTO scheduled_job_runs (job_id, attempt, status, started_at, "
                f"heartbeat_at, worker_id, lease_token, concurrency_key) VALUES {rows} "
                "RETURNING *",
                [value for claim in picked for value in claim],
            ).fetchall()
            job_ids = [claim[0] for claim in picked]
            jobs = conn.execute(
                "UPDATE scheduled_jobs SET status = 'running', updated_at = ?, last_run_id = ("
                "  SELECT max(r.id) FROM scheduled_job_runs AS r WHERE r.job_id = scheduled_jobs.id)"
                f" WHERE id IN ({', '.join('?' * len(job_ids))}) RETURNING *",
                [at, *job_ids],
            ).fetchall()
        run_of = {row["job_id"]: _run(row) for row in runs}
        job_of = {row["id"]: _job(row) for row in jobs}
        return [Claim(run=run_of[job_id], job=job_of[job_id]) for job_id in job_ids]

    def heartbeat(self, worker_id: str, leases: list[tuple[int, str]], now: datetime) -> list[int]:
        lost = []
        with self._write() as conn:
            conn.execute("UPDATE workers SET last_seen_at = ? WHERE id = ?", (ts(now), worker_id))
            for run_id, token in leases:
                renewed = conn.execute(
                    "UPDATE scheduled_job_runs SET heartbeat_at = ? "
                    "WHERE id = ? AND lease_token = ? AND status = 'running'",
                    (ts(now), run_id, token),
                ).rowcount
                if not renewed:
                    lost.append(run_id)
        return lost

    def request_cancel(self, run_id: int, by: str, now: datetime) -> Run | None:
        with self._write() as conn:
            row = conn.execute(
                "UPDATE scheduled_job_runs SET "
                "cancel_requested_at = coalesce(cancel_requested_at, ?), "
                "cancel_requested_by = coalesce(cancel_requested_by, ?) "
                "WHERE id = ? AND status = 'running' RETURNING *",
                (ts(now), by, run_id),
            ).fetchone()
        return _run(row) if row is not None else None

    def cancel_requests(self, run_ids: list[int]) -> dict[int, str]:
        if not run_ids:
            return {}
        marks = ", ".join("?" * len(run_ids))
        rows = self._read(
            "SELECT id, cancel_requested_by FROM scheduled_job_runs "
            f"WHERE id IN ({marks}) AND status = 'running' AND cancel_requested_at IS NOT NULL",
            run_ids,
        )
        return {row["id"]: row["cancel_requested_by"] for row in rows}

    def finish_run(self, run_id: int, lease_token: str, result: RunResult) -> Recorded:
        (recorded,) = self.finish_runs([(run_id, lease_token, result)])
        return recorded

    def finish_runs(self, outcomes: list[tuple[int, str, RunResult]]) -> list[Recorded]:
        if not outcomes:
            return []
        with self._write() as conn:
            recorded = _record_outcomes(conn, outcomes, "r.lease_token = o.lease_token", ())
        return [recorded.get(run_id, Recorded.LOST) for run_id, _, _ in outcomes]

    def reapply_job_update(
        self, job_id: int, run_id: int, written: JobUpdate, update: JobUpdate, at: datetime
    ) -> bool:
        with self._write() as conn:
            return bool(
                conn.execute(
                    """
                    UPDATE scheduled_jobs
                    SET status = CASE WHEN status = :written THEN :status ELSE status END,
                        next_run_at = :next_run_at, retry_count = :retry_count,
                        last_error = :last_error, updated_at = :at
                    WHERE id = :job_id AND revision = :revision AND last_run_id = :run_id
                    """,
                    {
                        "written": written.status,
                        "status": update.status,
                        "next_run_at": ts(update.next_run_at),
                        "retry_count": update.retry_count,
                        "last_error": update.last_error,
                        "at": ts(at),
                        "job_id": job_id,
                        "revision": update.revision,
                        "run_id": run_id,
                    },
                ).rowcount
            )

    def fail_stale_run(
        self, run_id: int, heartbeat_before: datetime, started_before: datetime, result: RunResult
    ) -> Recorded:
        with self._write() as conn:
            recorded = _record_outcomes(
                conn, [(run_id, None, result)], _STALE, (ts(started_before), ts(heartbeat_before))
            )
        return recorded.get(run_id, Recorded.LOST)

    def release_run(self, run_id: int, lease_token: str, now: datetime) -> bool:
        with self._write() as conn:
            row = conn.execute(
                "DELETE FROM scheduled_job_runs WHERE id = ? AND lease_token = ? "
                "AND status = 'running' RETURNING job_id",
                (run_id, lease_token),
            ).fetchone()
            if row is None:
                return False
            previous = conn.execute(
                "SELECT max(id) FROM scheduled_job_runs WHERE job_id = ?", (row["job_id"],)
            ).fetchone()[0]
            conn.execute(
                "UPDATE scheduled_jobs SET status = CASE WHEN status = 'running' THEN 'active' "
                "ELSE status END, last_run_id = ?, updated_at = ? WHERE id = ?",
                (previous, ts(now), row["job_id"]),
            )
        return True

    def stale_runs(self, heartbeat_before: datetime, started_before: datetime) -> list[Claim]:
        # Sorted here, not in SQL: asked for id order, SQLite walks the whole run history in
        # rowid order instead of the few rows in the partial index of running runs (1,000,000
        # rows read per poll cycle on a big store; docs/benchmarks.md).
        rows = self._read(
            f"""
            SELECT r.*, j.id AS j_id FROM scheduled_job_runs AS r
            JOIN scheduled_jobs AS j ON j.id = r.job_id
            WHERE r.status = 'running' AND {_STALE}
            """,
            (ts(started_before), ts(heartbeat_before)),
        )
        rows.sort(key=lambda row: row["id"])
        jobs = {row["j_id"]: self.get_job(row["j_id"]) for row in rows}
        return [Claim(run=_run(row), job=jobs[row["j_id"]]) for row in rows if jobs[row["j_id"]]]

    # -- retention and alerts -------------------------------------------------------------
    def prune_runs(self, finished_before: datetime, keep_last: int, limit: int) -> int:
        with self._write() as conn:
            return conn.execute(
                f"DELETE FROM scheduled_job_runs WHERE id IN ({_PRUNABLE} LIMIT ?)",
                (ts(finished_before), keep_last - 1, limit),
            ).rowcount

    def count_prunable_runs(self, finished_before: datetime, keep_last: int) -> int:
        rows = self._read(
            f"SELECT count(*) FROM ({_PRUNABLE})", (ts(finished_before), keep_last - 1)
        )
        return rows[0][0]

    def purge_archived_jobs(self, archived_before: datetime, limit: int) -> int:
        with self._write() as conn:
            return conn.execute(
                "DELETE FROM scheduled_jobs WHERE id IN (SELECT id FROM scheduled_jobs "
                "WHERE status = 'archived' AND updated_at < ? ORDER BY updated_at LIMIT ?)",
                (ts(archived_before), limit),
            ).rowcount

    def count_purgeable_jobs(self, archived_before: datetime) -> int:
        rows = self._read(
            "SELECT count(*) FROM scheduled_jobs WHERE status = 'archived' AND updated_at < ?",
            (ts(archived_before),),
        )
        return rows[0][0]

    def claim_alert(
        self, brand_id: str | None, dataset: str, expected: str | None, new: str
    ) -> bool:
        with self._write() as conn:
            return bool(
                conn.execute(
                    "UPDATE dataset_status SET alerted_state = ? "
                    "WHERE coalesce(brand_id, '') = ? AND dataset = ? AND alerted_state IS ?",
                    (new, brand_id or "", dataset, expected),
                ).rowcount
            )

    # -- reads --------------------------------------------------------------------------
    def list_runs(
        self,
        *,
        job_id: int | None = None,
        brand_id: str | None = ANY,
        status: str | None = None,
        limit: int = 50,
    ) -> list[Run]:
        where: list[str] = []
        params: list[Any] = []
        if job_id is not None:
            where.append("r.job_id = ?")
            params.append(job_id)
        if brand_id is not ANY:
            brand_where, brand_params = _brand_filter("j.brand_id", brand_id)
            where += brand_where
            params += brand_params
        running = status == "running"
        if running:
            # Running runs are few, and have a partial index that only this literal selects; as
            # in stale_runs, they are sorted here so that SQLite reads that index, not the whole
            # history newest-first.
            where.append("r.status = 'running'")
        elif status is not None:
            where.append("r.status = ?")
            params.append(status)
        sql = "SELECT r.* FROM scheduled_job_runs AS r"
        if brand_id is not ANY:
            sql += " JOIN scheduled_jobs AS j ON j.id = r.job_id"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if running:
            rows = sorted(self._read(sql, params), key=lambda row: row["id"], reverse=True)
            return [_run(row) for row in rows[:limit]]
        sql += f" ORDER BY r.id DESC LIMIT {int(limit)}"
        return [_run(row) for row in self._read(sql, params)]

    def get_run(self, run_id: int) -> Run | None:
        rows = self._read("SELECT * FROM scheduled_job_runs WHERE id = ?", (run_id,))
        return _run(rows[0]) if rows else None

    def runs_by_id(self, run_ids: list[int]) -> dict[int, Run]:
        runs: dict[int, Run] = {}
        ids = sorted(set(run_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            sql = f"SELECT * FROM scheduled_job_runs WHERE id IN ({', '.join('?' * len(chunk))})"
            runs.update({row["id"]: _run(row) for row in self._read(sql, chunk)})
        return runs

    def dataset_statuses(self, *, brand_id: str | None = ANY) -> list[DatasetStatus]:
        sql = "SELECT * FROM dataset_status"
        params: list[Any] = []
        if brand_id is not ANY:
            # The unique index's own expression, so that one brand is an index range.
            sql += " WHERE coalesce(brand_id, '') = ?"
            params.append(brand_id or "")
        sql += " ORDER BY coalesce(brand_id, ''), dataset"
        return [_dataset(row) for row in self._read(sql, params)]

    def dataset_status(self, dataset: str, brand_id: str | None) -> DatasetStatus | None:
        rows = self._read(
            "SELECT * FROM dataset_status WHERE coalesce(brand_id, '') = ? AND dataset = ?",
            (brand_id or "", dataset),
        )
        return _dataset(rows[0]) if rows else None

    def thresholds(self) -> list[Threshold]:
        return [
            Threshold(
                dataset=row["dataset"],
                brand_id=row["brand_id"],
                warn_after=timedelta(seconds=row["warn_after_seconds"]),
                error_after=timedelta(seconds=row["error_after_seconds"]),
            )
            for row in self._read("SELECT * FROM dataset_thresholds ORDER BY dataset, brand_id")
        ]

    def set_threshold(self, threshold: Threshold, now: datetime) -> None:
        with self._write() as conn:
            conn.execute(
                """
                INSERT INTO dataset_thresholds (brand_id, dataset, warn_after_seconds,
                    error_after_seconds, updated_at)
                VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (coalesce(brand_id, ''), dataset) DO UPDATE SET
                    warn_after_seconds = excluded.warn_after_seconds,
                    error_after_seconds = excluded.error_after_seconds,
                    updated_at = excluded.updated_at
                """,
                (
                    threshold.brand_id,
                    threshold.dataset,
                    threshold.warn_after.total_seconds(),
                    threshold.error_after.total_seconds(),
                    ts(now),
                ),
            )

    def delete_threshold(self, dataset: str, brand_id: str | None) -> bool:
        with self._write() as conn:
            deleted = conn.execute(
                "DELETE FROM dataset_thresholds WHERE coalesce(brand_id, '') = ? AND dataset = ?",
                (brand_id or "", dataset),
            ).rowcount
        return deleted > 0

    # -- brands and retirement ----------------------------------------------------------
    def brand_ids(self) -> list[str]:
        rows = self._read(
            "SELECT brand_id FROM scheduled_jobs WHERE brand_id IS NOT NULL "
            "UNION SELECT brand_id FROM dataset_status WHERE brand_id IS NOT NULL "
            "UNION SELECT brand_id FROM dataset_thresholds WHERE brand_id IS NOT NULL "
            "ORDER BY 1"
        )
        return [row[0] for row in rows]

    def set_datasets_retired(
        self, keys: list[tuple[str | None, str]], retired_at: datetime | None, now: datetime
    ) -> int:
        with self._write() as conn:
            return _set_retired(conn, keys, retired_at, now)

    def retire_brand(self, brand_id: str, datasets: list[str], now: datetime) -> list[Job]:
        with self._write() as conn:
            if conn.execute(
                "SELECT 1 FROM brand_retirements WHERE brand_id = ?", (brand_id,)
            ).fetchone():
                return []
            before = conn.execute(
                "SELECT id, status FROM scheduled_jobs WHERE brand_id = ? AND status <> 'archived'"
                " ORDER BY id",
                (brand_id,),
            ).fetchall()
            conn.execute(
                "INSERT INTO brand_retirements (brand_id, retired_at, jobs, datasets) "
                "VALUES (?, ?, ?, ?)",
                (
                    brand_id,
                    ts(now),
                    json.dumps([{"id": row["id"], "status": row["status"]} for row in before]),
                    json.dumps(datasets),
                ),
            )
            _set_retired(conn, [(brand_id, dataset) for dataset in datasets], now, now)
            archived = conn.execute(
                "UPDATE scheduled_jobs SET status = 'archived', updated_at = ? "
                "WHERE brand_id = ? AND status <> 'archived' RETURNING *",
                (ts(now), brand_id),
            ).fetchall()
        return sorted(map(_job, archived), key=lambda job: job.id)

    def brand_retirements(self) -> list[BrandRetirement]:
        return [
            BrandRetirement(
                brand_id=row["brand_id"],
                retired_at=datetime.fromisoformat(row["retired_at"]),
                jobs=json.loads(row["jobs"]),
                datasets=json.loads(row["datasets"]),
            )
            for row in self._read("SELECT * FROM brand_retirements ORDER BY brand_id")
        ]

    def restore_brand(
        self, brand_id: str, jobs: list[tuple[int, str, datetime | None]], now: datetime
    ) -> bool:
        with self._write() as conn:
            row = conn.execute(
                "DELETE FROM brand_retirements WHERE brand_id = ? RETURNING datasets", (brand_id,)
            ).fetchone()
            if row is None:
                return False
            conn.executemany(
                "UPDATE scheduled_jobs SET status = ?, next_run_at = ?, updated_at = ? "
                "WHERE id = ? AND brand_id = ? AND status = 'archived'",
                [
                    (status, ts(next_run_at), ts(now), job_id, brand_id)
                    for job_id, status, next_run_at in jobs
                ],
            )
            _set_retired(conn, [(brand_id, d) for d in json.loads(row["datasets"])], None, now)
        return True

    def workers(self) -> list[WorkerInfo]:
        return [
            WorkerInfo(
                id=row["id"],
                host=row["host"],
                pid=row["pid"],
                started_at=datetime.fromisoformat(row["started_at"]),
                last_seen_at=datetime.fromisoformat(row["last_seen_at"]),
                version=row["version"],
                stopped_at=datetime.fromisoformat(row["stopped_at"]) if row["stopped_at"] else None,
            )
            for row in self._read("SELECT * FROM workers ORDER BY last_seen_at DESC")
        ]

    def status_snapshot(
        self,
        *,
        brand_id: str | None = ANY,
        statuses: tuple[str, ...],
        heartbeat_before: datetime,
        started_before: datetime,
        running_limit: int,
    ) -> StatusSnapshot:
        with self._snapshot():
            jobs = self.list_jobs(brand_id=brand_id, statuses=statuses)
            return StatusSnapshot(
                jobs=jobs,
                last_runs=self.runs_by_id([job.last_run_id for job in jobs if job.last_run_id]),
                datasets=self.dataset_statuses(brand_id=brand_id),
                thresholds=self.thresholds(),
                stuck_runs=self.stale_runs(heartbeat_before, started_before),
                running_runs=self.list_runs(status="running", limit=running_limit),
                workers=self.workers(),
            )

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Reads that all see the same moment: one read transaction (in WAL mode, writers go on
        meanwhile and wait for nothing)."""
        with self._lock:
            try:
                self.conn.execute("BEGIN")
            except sqlite3.OperationalError as exc:
                raise _store_error(exc) from None
            try:
                yield
            finally:
                self._rollback()  # nothing was written: this only ends the read transaction


def _pick_due(conn: sqlite3.Connection, at: str, limit: int) -> list[tuple[int, int, str | None]]:
    """Up to `limit` due jobs to claim, oldest due first, at most one per key: (id, retry_count,
    concurrency_key). A round reads the next `need` due jobs without a key and the heads of the
    next `need` due keys without a running run, and takes them in due order up to the horizon,
    past which either list may hold more; rounds go on until `limit` are taken or nothing due
    is left. A key costs one row however many jobs wait behind it. A key whose head is not due,
    or lies past the horizon (its row's time is early), gets its row raised to its head, where
    a later round or claim reads it again in its place, or deleted when the key has no active
    job left."""
    picked: list[tuple[int, int, str | None]] = []
    unkeyed_after: tuple[str, int] = ("", 0)
    key_after: tuple[str, str] = ("", "")
    while len(picked) < limit:
        need = limit - len(picked)
        unkeyed = conn.execute(_UNKEYED_DUE, (at, *unkeyed_after, need)).fetchall()
        keys = conn.execute(_KEY_HEADS, (at, *key_after, need)).fetchall()
        if not unkeyed and not keys:
            break
        ends = [rows[-1][1] for rows in (unkeyed, keys) if len(rows) == need]
        horizon = min(ends) if ends else _END_OF_TIME
        candidates: list[tuple[str, int, int, str | None]] = [
            (when, job_id, retry_count, None)
            for job_id, when, retry_count in unkeyed
            if when <= horizon
        ]
        for key, when, head_id, head_at, retry_count in keys:
            if when > horizon:
                break
            if head_at is not None and head_at <= at and head_at <= horizon:
                candidates.append((head_at, head_id, retry_count, key))
            elif head_at is None:
                conn.execute("DELETE FROM concurrency_key_heads WHERE concurrency_key = ?", (key,))
            else:
                conn.execute(
                    "UPDATE concurrency_key_heads SET next_run_at = ? WHERE concurrency_key = ?",
                    (head_at, key),
                )
        candidates.sort()
        picked += [(job_id, retry_count, key) for _, job_id, retry_count, key in candidates[:need]]
        if len(candidates) >= need or not ends:
            break
        unkeyed_after = max(
            ((when, job_id) for job_id, when, _ in unkeyed if when <= horizon),
            default=unkeyed_after,
        )
        key_after = max(
            ((when, key) for key, when, *_ in keys if when <= horizon), default=key_after
        )
    return picked


_END_OF_TIME = "~"  # after every timestamp in text order

_UNKEYED_DUE = """
    SELECT j.id, j.next_run_at, j.retry_count FROM scheduled_jobs AS j
    WHERE j.status = 'active' AND j.concurrency_key IS NULL AND j.next_run_at <= ?
      AND (j.next_run_at, j.id) > (?, ?)
    ORDER BY j.next_run_at, j.id
    LIMIT ?
"""

# The next due keys without a running run, each with its head: (key, the row's next_run_at,
# head id, head next_run_at, head retry_count), the head's columns NULL without an active job.
_KEY_HEADS = """
    SELECT k.concurrency_key, k.next_run_at, j.id, j.next_run_at, j.retry_count
    FROM (
        SELECT k.concurrency_key, k.next_run_at, (
                SELECT h.id FROM scheduled_jobs AS h
                WHERE h.concurrency_key = k.concurrency_key AND h.status = 'active'
                ORDER BY h.next_run_at, h.id
                LIMIT 1
            ) AS head_id
        FROM concurrency_key_heads AS k
        WHERE k.next_run_at <= ? AND (k.next_run_at, k.concurrency_key) > (?, ?)
          AND NOT EXISTS (
                SELECT 1 FROM scheduled_job_runs AS r
                WHERE r.status = 'running' AND r.concurrency_key = k.concurrency_key)
        ORDER BY k.next_run_at, k.concurrency_key
        LIMIT ?
    ) AS k
    LEFT JOIN scheduled_jobs AS j ON j.id = k.head_id
"""


# Finished runs older than the cutoff, oldest first, except each job's newest `keep_last` (the
# subquery finds the keep_last-th newest run of the job; with fewer runs it is NULL and nothing
# of that job goes). Parameters: finished_before, keep_last - 1.
_PRUNABLE = """
    SELECT r.id FROM scheduled_job_runs AS r
    WHERE r.status <> 'running' AND r.finished_at < ?
      AND r.id < (SELECT n.id FROM scheduled_job_runs AS n WHERE n.job_id = r.job_id
                  ORDER BY n.id DESC LIMIT 1 OFFSET ?)
    ORDER BY r.finished_at
"""


def _update_job(
    conn: sqlite3.Connection,
    job_id: int,
    changes: dict[str, Any],
    now: datetime,
    only_if_status: tuple[str, ...] | None,
) -> Job | None:
    unknown = set(changes) - EDITABLE_JOB_FIELDS
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    values = {key: _to_sql(key, value) for key, value in changes.items()}
    assignments = [f"{key} = :{key}" for key in values]
    assignments += ["updated_at = :updated_at", "revision = revision + 1"]
    sql = f"UPDATE scheduled_jobs SET {', '.join(assignments)} WHERE id = :job_id"
    if only_if_status:
        marks = ", ".join(f":status_{i}" for i in range(len(only_if_status)))
        sql += f" AND status IN ({marks})"
        values.update({f"status_{i}": status for i, status in enumerate(only_if_status)})
    row = conn.execute(
        sql + " RETURNING *", {**values, "updated_at": ts(now), "job_id": job_id}
    ).fetchone()
    return _job(row) if row is not None else None


def _record_outcomes(
    conn: sqlite3.Connection,
    outcomes: list[tuple[int, str | None, RunResult]],
    guard: str,
    guard_params: tuple[Any, ...],
) -> dict[int, Recorded]:
    """Outcomes (run id, lease token, result), each with its job's next state and its datasets,
    inside the caller's transaction, for the runs still `running` where `guard` (on the run `r`
    and its outcome `o`) holds; returns what became of each of them, by run id (EDITED where the
    job's revision is no longer the one its next state was computed from). One statement for the runs and one for their
    jobs, as on PostgreSQL (0.04 -> 0.03 ms per outcome in batches of 32); datasets one by one,
    in the order given."""
    rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(outcomes))
    closed = dict(
        conn.execute(
            f"""
            WITH o (run_id, lease_token, status, finished_at, error_message, logs, steps)
                AS (VALUES {rows})
            UPDATE scheduled_job_runs AS r
            SET status = o.status, finished_at = o.finished_at,
                error_message = o.error_message, logs = o.logs, steps = o.steps
            FROM o
            WHERE r.id = o.run_id AND r.status = 'running' AND {guard}
            RETURNING id, job_id
            """,
            [
                *(
                    value
                    for run_id, token, result in outcomes
                    for value in (
                        run_id,
                        token,
                        result.status,
                        ts(result.finished_at),
                        result.error_message,
                        result.logs,
                        json.dumps(result.steps),
                    )
                ),
                *guard_params,
            ],
        ).fetchall()
    )
    if not closed:
        return {}
    recorded = [(run_id, result) for run_id, _, result in outcomes if run_id in closed]
    rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(recorded))
    # The status applies only while the job is still running: an operator who paused or
    # archived it mid-run keeps their choice. A job edited during the run keeps its retry count
    # for the caller to count this run from (see Store.finish_run).
    revisions = dict(
        conn.execute(
            f"""
            WITH u (job_id, status, next_run_at, retry_count, last_error, updated_at, revision)
                AS (VALUES {rows})
            UPDATE scheduled_jobs AS j
            SET status = CASE WHEN j.status = 'running' THEN u.status ELSE j.status END,
                next_run_at = u.next_run_at,
                retry_count = CASE WHEN j.revision = u.revision
                    THEN u.retry_count ELSE j.retry_count END,
                last_error = u.last_error, updated_at = u.updated_at
            FROM u WHERE j.id = u.job_id
            RETURNING id, revision
            """,
            [
                value
                for run_id, result in recorded
                for value in (
                    closed[run_id],
                    result.job_update.status,
                    ts(result.job_update.next_run_at),
                    result.job_update.retry_count,
                    result.job_update.last_error,
                    ts(result.finished_at),
                    result.job_update.revision,
                )
            ],
        ).fetchall()
    )
    for run_id, result in recorded:
        for outcome in result.datasets:
            _record_dataset(conn, outcome, run_id, ts(result.finished_at))
    return {
        run_id: Recorded.RECORDED
        if revisions.get(closed[run_id]) == result.job_update.revision
        else Recorded.EDITED
        for run_id, result in recorded
    }


def _record_dataset(
    conn: sqlite3.Connection, outcome: DatasetOutcome, run_id: int, at: str | None
) -> None:
    # Timestamps only move forward: a run that finishes late cannot make data look older.
    succeeded = 1 if outcome.succeeded else 0
    conn.execute(
        """
        INSERT INTO dataset_status (brand_id, dataset, last_success_at, last_attempt_at,
            last_status, last_error, last_run_id, updated_at)
        VALUES (:brand_id, :dataset, CASE WHEN :succeeded THEN :at END, :at, :status, :error,
            :run_id, :at)
        ON CONFLICT (coalesce(brand_id, ''), dataset) DO UPDATE SET
            last_success_at = CASE
                WHEN :succeeded AND (last_success_at IS NULL OR last_success_at < :at) THEN :at
                ELSE last_success_at END,
            last_status = CASE WHEN last_attempt_at IS NULL OR last_attempt_at <= :at
                THEN :status ELSE last_status END,
            last_error = CASE WHEN last_attempt_at IS NULL OR last_attempt_at <= :at
                THEN :error ELSE last_error END,
            last_run_id = CASE WHEN last_attempt_at IS NULL OR last_attempt_at <= :at
                THEN :run_id ELSE last_run_id END,
            last_attempt_at = max(coalesce(last_attempt_at, :at), :at),
            updated_at = :at
        """,
        {
            "brand_id": outcome.brand_id,
            "dataset": outcome.dataset,
            "succeeded": succeeded,
            "at": at,
            "status": "completed" if outcome.succeeded else "failed",
            "error": None if outcome.succeeded else outcome.error,
            "run_id": run_id,
        },
    )


def _set_retired(
    conn: sqlite3.Connection,
    keys: list[tuple[str | None, str]],
    retired_at: datetime | None,
    now: datetime,
) -> int:
    changed = 0
    for brand_id, dataset in keys:
        if retired_at is not None:
            changed += conn.execute(
                """
                INSERT INTO dataset_status (brand_id, dataset, updated_at, retired_at)
                VALUES (?, ?, ?, ?)
                ON CONFLICT (coalesce(brand_id, ''), dataset) DO UPDATE
                    SET retired_at = excluded.retired_at WHERE retired_at IS NULL
                """,
                (brand_id, dataset, ts(now), ts(retired_at)),
            ).rowcount
            continue
        key = (brand_id or "", dataset)
        changed += conn.execute(
            "DELETE FROM dataset_status WHERE coalesce(brand_id, '') = ? AND dataset = ? "
            "AND retired_at IS NOT NULL AND last_attempt_at IS NULL",
            key,
        ).rowcount
        changed += conn.execute(
            "UPDATE dataset_status SET retired_at = NULL "
            "WHERE coalesce(brand_id, '') = ? AND dataset = ? AND retired_at IS NOT NULL",
            key,
        ).rowcount
    return changed


def _brand_filter(column: str, brand_id: str | None) -> tuple[list[str], list[Any]]:
    if brand_id is ANY:
        return [], []
    if brand_id is None:
        return [f"{column} IS NULL"], []
    return [f"{column} = ?"], [brand_id]


def _to_sql(key: str, value: Any) -> Any:
    if key == "parameters":
        return json.dumps(value)
    if isinstance(value, datetime):
        return ts(value)
    return value


def _job(row: sqlite3.Row) -> Job:
    values = dict(row)
    for key in _JOB_TIMESTAMPS:
        values[key] = _dt(values[key])
    values["parameters"] = json.loads(values["parameters"])
    return Job(**values)


def _run(row: sqlite3.Row) -> Run:
    values = {key: row[key] for key in Run.__dataclass_fields__}
    for key in _RUN_TIMESTAMPS:
        values[key] = _dt(values[key])
    values["steps"] = json.loads(values["steps"])
    return Run(**values)


def _dataset(row: sqlite3.Row) -> DatasetStatus:
    return DatasetStatus(
        brand_id=row["brand_id"],
        dataset=row["dataset"],
        last_success_at=_dt(row["last_success_at"]),
        last_attempt_at=_dt(row["last_attempt_at"]),
        last_status=row["last_status"],
        last_error=row["last_error"],
        last_run_id=row["last_run_id"],
        alerted_state=row["alerted_state"],
        retired_at=_dt(row["retired_at"]),
    )


def _statements(sql: str) -> Iterator[str]:
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in pending.splitlines()
    ):
        yield pending


def _store_error(exc: sqlite3.Error) -> PipectlError:
    message = str(exc)
    if "no such table" in message:
        return SchemaMissing(message)
    if "readonly" in message or "read-only" in message:
        return StoreUnavailable(f"the SQLite database is read-only: {message}")
    if "disk is full" in message:
        return StoreUnavailable(f"the disk holding the SQLite database is full: {message}")
    if "locked" in message or "busy" in message:
        return StoreUnavailable(f"the SQLite database stayed locked for {BUSY_TIMEOUT_S:.0f}s")
    return StoreUnavailable(f"SQLite error: {message}")
