"""The embedded SQLite store: the store protocol in Python + SQL over one database file."""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, overload

from pipectl import clock
from pipectl.errors import InvalidInput, PipectlError, SchemaMissing, StoreUnavailable
from pipectl.models import (
    JOB_TIMESTAMPS,
    BrandFilter,
    BrandRetirement,
    Claim,
    DatasetOutcome,
    DatasetStatus,
    Job,
    JobUpdate,
    LeaseToken,
    NewJob,
    PendingTrigger,
    Recorded,
    Run,
    RunHold,
    RunResult,
    RunStart,
    StatusSnapshot,
    Threshold,
    WorkerInfo,
)
from pipectl.store.base import ANY, EDITABLE_JOB_FIELDS, Listener
from pipectl.store.migrations import MIGRATIONS_TABLE, load_migrations, load_queries

BUSY_TIMEOUT_S = 30.0
# The statements, by the names of the PostgreSQL functions they stand for (sql/sqlite/queries.sql).
SQL = load_queries("sqlite")
NAME_KEYS_VERSION = 9  # its default concurrency keys are moved in Python: _move_default_keys
# How often an idle worker looks whether another connection committed (PRAGMA data_version).
WAKE_CHECK_S = 0.02

_JOB_TIMESTAMPS = JOB_TIMESTAMPS
_RUN_TIMESTAMPS = ("started_at", "finished_at", "heartbeat_at", "cancel_requested_at")


@overload
def ts(value: datetime) -> str: ...
@overload
def ts(value: None) -> None: ...
def ts(value: datetime | None) -> str | None:
    """The one text form of a timestamp in SQLite: UTC, microseconds, '+00:00'."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        # pipectl's clock is aware; a naive time from a caller means UTC
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")  # twice as fast as strftime


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


class SQLiteStore(Listener):
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

    def wait_for_run_end(self, timeout_s: float) -> bool:
        """Block until another connection commits or `timeout_s` passes (a run's end is one
        such commit; the caller looks again either way)."""
        return self.wait_for_work(timeout_s)

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

    def _read(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
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
                if migration.version == NAME_KEYS_VERSION:
                    _move_default_keys(conn)
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
        (value,) = self._read(SQL["db_now"])[0]
        return datetime.fromisoformat(value)

    # -- jobs ---------------------------------------------------------------------------
    def insert_job(self, new: NewJob, now: datetime) -> Job:
        with self._write() as conn:
            return self._insert_job(conn, new, now)

    def _insert_job(self, conn: sqlite3.Connection, new: NewJob, now: datetime) -> Job:
        row = conn.execute(
            SQL["insert_job"],
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
                existing = conn.execute(SQL["enqueue"], (new.dedupe_key,)).fetchone()
                if existing is not None:
                    return _job(existing), False
            return self._insert_job(conn, new, now), True

    def get_job(self, job_id: int) -> Job | None:
        rows = self._read(SQL["get_job"], (job_id,))
        return _job(rows[0]) if rows else None

    def list_jobs(
        self,
        *,
        brand_id: BrandFilter = ANY,
        job_type: str | None = None,
        statuses: tuple[str, ...] | None = None,
        in_backoff: bool = False,
        limit: int | None = None,
    ) -> list[Job]:
        params = {
            "brand_id": None if brand_id is ANY else brand_id,
            "job_type": job_type,
            "statuses": json.dumps(statuses) if statuses else None,
            "in_backoff": in_backoff,
            "limit": -1 if limit is None else limit,
        }
        of_brand = "" if brand_id is ANY else "_of_brand"
        if in_backoff or (statuses and "archived" not in statuses):
            rows = self._read(SQL[f"list_jobs_live{of_brand}"], params)
            return [_job(row) for row in sorted(rows, key=lambda row: row["id"])[:limit]]
        return [_job(row) for row in self._read(SQL[f"list_jobs{of_brand}"], params)]

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
                SQL["register_worker"],
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
            conn.execute(SQL["stop_worker"], (ts(now), ts(now), worker_id))

    def forget_workers(self, seen_before: datetime) -> int:
        with self._write() as conn:
            return conn.execute(SQL["forget_workers"], (ts(seen_before),)).rowcount

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
                SQL["claim_due_runs"].format(rows=rows),
                [value for claim in picked for value in claim],
            ).fetchall()
            job_ids = [claim[0] for claim in picked]
            jobs = conn.execute(
                SQL["claim_due_jobs"].format(marks=", ".join("?" * len(job_ids))),
                [at, *job_ids],
            ).fetchall()
        run_of = {row["job_id"]: _run(row) for row in runs}
        job_of = {row["id"]: _job(row) for row in jobs}
        return [Claim(run=run_of[job_id], job=job_of[job_id]) for job_id in job_ids]

    def heartbeat(
        self, worker_id: str, leases: Sequence[tuple[int, LeaseToken]], now: datetime
    ) -> list[int]:
        lost = []
        with self._write() as conn:
            conn.execute(SQL["heartbeat_worker"], (ts(now), worker_id))
            for run_id, token in leases:
                renewed = conn.execute(SQL["heartbeat"], (ts(now), run_id, token)).rowcount
                if not renewed:
                    lost.append(run_id)
        return lost

    def request_cancel(self, run_id: int, by: str, now: datetime) -> Run | None:
        with self._write() as conn:
            row = conn.execute(SQL["request_cancel"], (ts(now), by, run_id)).fetchone()
        return _run(row) if row is not None else None

    def cancel_requests(self, run_ids: list[int]) -> dict[int, str]:
        if not run_ids:
            return {}
        marks = ", ".join("?" * len(run_ids))
        rows = self._read(SQL["cancel_requests"].format(marks=marks), run_ids)
        return {row["id"]: row["cancel_requested_by"] for row in rows}

    def write_run_logs(self, logs: Sequence[tuple[int, LeaseToken, str]]) -> None:
        if not logs:
            return
        with self._write() as conn:
            conn.executemany(
                SQL["write_run_logs"], [(text, run_id, token) for run_id, token, text in logs]
            )

    def finish_run(self, run_id: int, lease_token: LeaseToken, result: RunResult) -> Recorded:
        (recorded,) = self.finish_runs([(run_id, lease_token, result)])
        return recorded

    def finish_runs(self, outcomes: Sequence[tuple[int, LeaseToken, RunResult]]) -> list[Recorded]:
        if not outcomes:
            return []
        with self._write() as conn:
            recorded = _record_outcomes(conn, outcomes, SQL["lease_guard"], ())
        return [recorded.get(run_id, Recorded.LOST) for run_id, _, _ in outcomes]

    def reapply_job_update(
        self, job_id: int, run_id: int, written: JobUpdate, update: JobUpdate, at: datetime
    ) -> bool:
        with self._write() as conn:
            return bool(
                conn.execute(
                    SQL["reapply_job_update"],
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

    def fail_stuck_run(
        self, run_id: int, heartbeat_before: datetime, started_before: datetime, result: RunResult
    ) -> Recorded:
        (recorded,) = self.fail_stuck_runs(heartbeat_before, started_before, [(run_id, result)])
        return recorded

    def fail_stuck_runs(
        self,
        heartbeat_before: datetime,
        started_before: datetime,
        outcomes: list[tuple[int, RunResult]],
    ) -> list[Recorded]:
        if not outcomes:
            return []
        with self._write() as conn:
            recorded = _record_outcomes(
                conn,
                [(run_id, None, result) for run_id, result in outcomes],
                SQL["is_stuck"],
                (ts(started_before), ts(heartbeat_before)),
            )
        return [recorded.get(run_id, Recorded.LOST) for run_id, _ in outcomes]

    def release_run(
        self,
        run_id: int,
        lease_token: LeaseToken,
        now: datetime,
        triggers: Sequence[PendingTrigger] = (),
    ) -> bool:
        with self._write() as conn:
            row = conn.execute(SQL["release_run"], (run_id, lease_token)).fetchone()
            if row is None:
                return False
            job_id = row["job_id"]
            conn.executemany(
                SQL["release_run_triggers"],
                [
                    {
                        "job_id": job_id,
                        "target": row["brand_id"],
                        "scope": item.scope,
                        "dataset": item.dataset,
                        "brand_id": item.brand_id,
                        "run_id": item.run_id,
                        "at": ts(item.at),
                        "successes": item.successes,
                    }
                    for item in triggers
                ],
            )
            previous = conn.execute(SQL["release_run_last_run"], (job_id,)).fetchone()[0]
            conn.execute(
                SQL["release_run_job"],
                {"last_run_id": previous, "now": ts(now), "job_id": job_id},
            )
        return True

    def stuck_runs(self, heartbeat_before: datetime, started_before: datetime) -> list[Claim]:
        # Sorted here, not in SQL, so that SQLite reads the partial index of running runs.
        rows = self._read(SQL["stuck_runs"], (ts(started_before), ts(heartbeat_before)))
        rows.sort(key=lambda row: row["id"])
        jobs = {row["j_id"]: self.get_job(row["j_id"]) for row in rows}
        return [
            Claim(run=_run(row), job=job) for row in rows if (job := jobs[row["j_id"]]) is not None
        ]

    # -- data-aware scheduling (the SQL beside PostgreSQL's 0014) --------------------------
    def set_job_inputs(
        self,
        job_id: int,
        inputs: list[dict[str, str]],
        max_hold_seconds: float | None,
        now: datetime,
    ) -> Job | None:
        with self._write() as conn:
            conn.execute(SQL["set_job_inputs_delete"], (job_id,))
            conn.executemany(
                SQL["set_job_inputs_insert"],
                [(item["kind"], item["scope"], item["dataset"], job_id) for item in inputs],
            )
            conn.execute(SQL["set_job_inputs_drop_triggers"], {"job_id": job_id})
            row = conn.execute(
                SQL["set_job_inputs_job"],
                {
                    "inputs": json.dumps(inputs),
                    "max_hold_seconds": max_hold_seconds,
                    "now": ts(now),
                    "job_id": job_id,
                },
            ).fetchone()
        return _job(row) if row is not None else None

    def start_runs(self, starts: list[RunStart]) -> dict[int, Run]:
        started: dict[int, Run] = {}
        if not starts:
            return started
        with self._write() as conn:
            for start in sorted(starts, key=lambda item: item.run_id):
                claimed = conn.execute(
                    SQL["start_runs_claimed"], (start.run_id, start.lease_token)
                ).fetchone()
                if claimed is None:
                    continue
                job_id = claimed["job_id"]
                target = start.brand_id
                if start.pick:
                    picked = conn.execute(SQL["start_runs_pick"], {"job_id": job_id}).fetchone()
                    if picked is not None:
                        target = picked["brand_id"]
                taken = conn.execute(SQL["start_runs_take"], (job_id, target)).fetchall()
                triggered_by = list(start.carried) + [
                    {
                        "dataset": ("global:" if row["scope"] == "global" else "") + row["dataset"],
                        "brand_id": row["input_brand_id"],
                        "run_id": row["run_id"],
                        "at": datetime.fromisoformat(row["succeeded_at"]).isoformat(),
                        "successes": row["successes"],
                    }
                    for row in sorted(taken, key=lambda row: row["dataset"])
                ]
                conn.execute(SQL["start_runs_job"], {"job_id": job_id})
                row = conn.execute(
                    SQL["start_runs_run"], (target, json.dumps(triggered_by), start.run_id)
                ).fetchone()
                started[start.run_id] = _run(row)
        return started

    def hold_runs(self, holds: list[RunHold], now: datetime) -> int:
        held = 0
        if not holds:
            return held
        with self._write() as conn:
            for hold in sorted(holds, key=lambda item: item.run_id):
                row = conn.execute(SQL["hold_runs_run"], (hold.run_id, hold.lease_token)).fetchone()
                if row is None:
                    continue
                conn.execute(
                    SQL["hold_runs_job"],
                    (
                        ts(hold.next_run_at),
                        ts(hold.held_since),
                        hold.waiting_on,
                        ts(now),
                        row["job_id"],
                    ),
                )
                held += 1
        return held

    # -- retention and alerts -------------------------------------------------------------
    def prune_runs(self, finished_before: datetime, keep_last: int, limit: int) -> int:
        with self._write() as conn:
            return conn.execute(
                SQL["prune_runs"], (ts(finished_before), keep_last - 1, limit)
            ).rowcount

    def count_prunable_runs(self, finished_before: datetime, keep_last: int) -> int:
        rows = self._read(SQL["count_prunable_runs"], (ts(finished_before), keep_last - 1))
        return rows[0][0]

    def purge_archived_jobs(self, archived_before: datetime, limit: int) -> int:
        with self._write() as conn:
            return conn.execute(SQL["purge_archived_jobs"], (ts(archived_before), limit)).rowcount

    def count_purgeable_jobs(self, archived_before: datetime) -> int:
        rows = self._read(SQL["count_purgeable_jobs"], (ts(archived_before),))
        return rows[0][0]

    def claim_alert(
        self, brand_id: str | None, dataset: str, expected: str | None, new: str
    ) -> bool:
        with self._write() as conn:
            return bool(
                conn.execute(SQL["claim_alert"], (new, brand_id or "", dataset, expected)).rowcount
            )

    # -- reads --------------------------------------------------------------------------
    def list_runs(
        self,
        *,
        job_id: int | None = None,
        brand_id: BrandFilter = ANY,
        status: str | None = None,
        limit: int = 50,
    ) -> list[Run]:
        params = {
            "job_id": job_id,
            "all_brands": brand_id is ANY,
            "brand_id": None if brand_id is ANY else brand_id,
            "status": status,
            "limit": limit,
        }
        if status == "running":
            rows = self._read(SQL["list_runs_running"], params)
            return [
                _run(row) for row in sorted(rows, key=lambda row: row["id"], reverse=True)[:limit]
            ]
        if job_id is not None:
            query = "list_runs_of_job"
        else:
            query = "list_runs" if brand_id is ANY else "list_runs_of_brand"
        return [_run(row) for row in self._read(SQL[query], params)]

    def get_run(self, run_id: int) -> Run | None:
        rows = self._read(SQL["get_run"], (run_id,))
        return _run(rows[0]) if rows else None

    def runs_by_id(self, run_ids: list[int]) -> dict[int, Run]:
        runs: dict[int, Run] = {}
        ids = sorted(set(run_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            sql = SQL["runs_by_id"].format(marks=", ".join("?" * len(chunk)))
            runs.update({row["id"]: _run(row) for row in self._read(sql, chunk)})
        return runs

    def dataset_statuses(self, *, brand_id: BrandFilter = ANY) -> list[DatasetStatus]:
        if brand_id is ANY:
            rows = self._read(SQL["dataset_statuses"])
        else:
            rows = self._read(SQL["dataset_statuses_of_brand"], (brand_id or "",))
        return [_dataset(row) for row in rows]

    def dataset_status(self, dataset: str, brand_id: str | None) -> DatasetStatus | None:
        rows = self._read(SQL["dataset_status"], (brand_id or "", dataset))
        return _dataset(rows[0]) if rows else None

    def thresholds(self) -> list[Threshold]:
        return [
            Threshold(
                dataset=row["dataset"],
                brand_id=row["brand_id"],
                warn_after=timedelta(seconds=row["warn_after_seconds"]),
                error_after=timedelta(seconds=row["error_after_seconds"]),
            )
            for row in self._read(SQL["thresholds"])
        ]

    def set_threshold(self, threshold: Threshold, now: datetime) -> None:
        with self._write() as conn:
            conn.execute(
                SQL["set_threshold"],
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
            deleted = conn.execute(SQL["delete_threshold"], (brand_id or "", dataset)).rowcount
        return deleted > 0

    # -- brands and retirement ----------------------------------------------------------
    def brand_ids(self) -> list[str]:
        rows = self._read(SQL["brand_ids"])
        return [row[0] for row in rows]

    def set_datasets_retired(
        self, keys: list[tuple[str | None, str]], retired_at: datetime | None, now: datetime
    ) -> int:
        with self._write() as conn:
            return _set_retired(conn, keys, retired_at, now)

    def retire_brand(self, brand_id: str, datasets: list[str], now: datetime) -> list[Job]:
        with self._write() as conn:
            if conn.execute(SQL["retire_brand_retired"], (brand_id,)).fetchone():
                return []
            before = conn.execute(SQL["retire_brand_jobs"], (brand_id,)).fetchall()
            conn.execute(
                SQL["retire_brand"],
                (
                    brand_id,
                    ts(now),
                    json.dumps([{"id": row["id"], "status": row["status"]} for row in before]),
                    json.dumps(datasets),
                ),
            )
            _set_retired(conn, [(brand_id, dataset) for dataset in datasets], now, now)
            archived = conn.execute(SQL["retire_brand_archive"], (ts(now), brand_id)).fetchall()
        return sorted(map(_job, archived), key=lambda job: job.id)

    def brand_retirements(self) -> list[BrandRetirement]:
        return [
            BrandRetirement(
                brand_id=row["brand_id"],
                retired_at=datetime.fromisoformat(row["retired_at"]),
                jobs=json.loads(row["jobs"]),
                datasets=json.loads(row["datasets"]),
            )
            for row in self._read(SQL["brand_retirements"])
        ]

    def restore_brand(
        self, brand_id: str, jobs: list[tuple[int, str, datetime | None]], now: datetime
    ) -> bool:
        with self._write() as conn:
            row = conn.execute(SQL["restore_brand"], (brand_id,)).fetchone()
            if row is None:
                return False
            conn.executemany(
                SQL["restore_brand_job"],
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
            for row in self._read(SQL["workers"])
        ]

    def status_snapshot(
        self,
        *,
        brand_id: BrandFilter = ANY,
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
                stuck_runs=self.stuck_runs(heartbeat_before, started_before),
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
        unkeyed = conn.execute(SQL["claim_due_unkeyed"], (at, *unkeyed_after, need)).fetchall()
        keys = conn.execute(SQL["claim_due_key_heads"], (at, *key_after, need)).fetchall()
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
                conn.execute(SQL["claim_due_drop_key_head"], (key,))
            else:
                conn.execute(SQL["claim_due_raise_key_head"], (head_at, key))
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
    row = conn.execute(
        SQL["update_job"].format(assignments="".join(f", {key} = :{key}" for key in values)),
        {
            **values,
            "updated_at": ts(now),
            "job_id": job_id,
            "statuses": json.dumps(only_if_status) if only_if_status else None,
        },
    ).fetchone()
    return _job(row) if row is not None else None


def _record_outcomes(
    conn: sqlite3.Connection,
    outcomes: Sequence[tuple[int, LeaseToken | None, RunResult]],
    guard: str,
    guard_params: tuple[Any, ...],
) -> dict[int, Recorded]:
    """Outcomes (run id, lease token, result), each with its job's next state and its datasets,
    inside the caller's transaction, for the runs still `running` where `guard` (on the run `r`
    and its outcome `o`) holds; returns what became of each of them, by run id (EDITED where the
    job's revision is no longer the one its next state was computed from). One statement for the
    runs and one for their jobs, as on PostgreSQL (pipectl_record_outcomes); datasets one by one,
    in the order given."""
    rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(outcomes))
    closed = dict(
        conn.execute(
            SQL["record_outcomes_runs"].format(rows=rows, guard=guard),
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
    revisions = dict(
        conn.execute(
            SQL["record_outcomes_jobs"].format(rows=rows),
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
    succeeded = 1 if outcome.succeeded else 0
    conn.execute(
        SQL["record_dataset"],
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
                SQL["set_datasets_retired"],
                (brand_id, dataset, ts(now), ts(retired_at)),
            ).rowcount
            continue
        key = (brand_id or "", dataset)
        changed += conn.execute(SQL["set_datasets_retired_forget"], key).rowcount
        changed += conn.execute(SQL["set_datasets_retired_clear"], key).rowcount
    return changed


def _to_sql(key: str, value: Any) -> Any:
    if key == "parameters":
        return json.dumps(value)
    if isinstance(value, datetime):
        return ts(value)
    return value


def _json(text: str) -> Any:
    """A JSON column: most hold an empty list or object, which need no parser."""
    if text == "[]":
        return []
    return {} if text == "{}" else json.loads(text)


def _job(row: sqlite3.Row) -> Job:
    values = dict(row)
    for key in _JOB_TIMESTAMPS:
        values[key] = _dt(values[key])
    values["parameters"] = _json(values["parameters"])
    values["inputs"] = _json(values["inputs"])
    return Job(**values)


def _run(row: sqlite3.Row) -> Run:
    values = {key: row[key] for key in Run.__dataclass_fields__}
    for key in _RUN_TIMESTAMPS:
        values[key] = _dt(values[key])
    values["steps"] = _json(values["steps"])
    values["triggered_by"] = _json(values["triggered_by"])
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


def _move_default_keys(conn: sqlite3.Connection) -> None:
    """Schema v9's step in Python (SQLite has no sha256): each job's key that is its old
    default takes the new one (pipectl.concurrency.migrated_key)."""
    from pipectl.concurrency import migrated_key

    rows = conn.execute(
        "SELECT id, job_type, brand_id, name, concurrency_key FROM scheduled_jobs "
        "WHERE concurrency_key IS NOT NULL"
    ).fetchall()
    moves = [(key, row["id"]) for row in rows if (key := migrated_key(*tuple(row)[1:]))]
    conn.executemany("UPDATE scheduled_jobs SET concurrency_key = ? WHERE id = ?", moves)


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
