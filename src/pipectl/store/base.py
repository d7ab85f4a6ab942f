"""The store protocol: the small set of atomic transitions and reads every backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pipectl.models import (
    ANY,
    BrandFilter,
    BrandRetirement,
    Claim,
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

# Fields an operator may change on a job through `Store.update_job`.
EDITABLE_JOB_FIELDS = frozenset(
    {
        "name",
        "schedule_type",
        "cron_expression",
        "timezone",
        "next_run_at",
        "status",
        "parameters",
        "max_retries",
        "retry_count",
        "timeout_seconds",
        "concurrency_key",
        "last_error",
    }
)


class Store(Protocol):
    """Every backend (sqlite, postgres, supabase) passes the same contract tests in tests/store.

    Writes are atomic transitions; none of them decides policy (next run time, retry delay):
    the engine computes those values and passes them in.
    """

    #: Where the store lives, safe to print (no password, no key).
    display_url: str

    def close(self) -> None: ...

    # -- schema -------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply pending migrations (idempotent, safe to run concurrently); return the versions
        applied now."""
        ...

    def schema_version(self) -> int | None:
        """The installed schema version, or None when the schema is missing."""
        ...

    def check_schema(self) -> None:
        """Raise SchemaMissing unless the schema is installed and current enough to use."""
        ...

    def db_now(self) -> datetime:
        """The database's own clock (for `doctor`'s skew check)."""
        ...

    # -- jobs ---------------------------------------------------------------------------
    def insert_job(self, new: NewJob, now: datetime) -> Job: ...

    def enqueue(self, new: NewJob, now: datetime) -> tuple[Job, bool]:
        """Insert a one-time job, unless `new.dedupe_key` is set and an `active` job with that key
        exists: then return that one. Returns (job, created). Atomic against concurrent callers."""
        ...

    def get_job(self, job_id: int) -> Job | None: ...

    def list_jobs(
        self,
        *,
        brand_id: BrandFilter = ANY,
        job_type: str | None = None,
        statuses: tuple[str, ...] | None = None,
        in_backoff: bool = False,
        limit: int | None = None,
    ) -> list[Job]: ...

    def update_job(
        self,
        job_id: int,
        changes: dict[str, Any],
        now: datetime,
        *,
        only_if_status: tuple[str, ...] | None = None,
    ) -> Job | None:
        """Apply operator changes (keys from EDITABLE_JOB_FIELDS) and bump the job's revision.
        With `only_if_status`, change nothing unless the job's status is one of those (checked
        in the same statement). Returns the job after the update, or None when no row matched."""
        ...

    def update_jobs(
        self,
        updates: list[tuple[int, dict[str, Any]]],
        now: datetime,
        *,
        only_if_status: tuple[str, ...] | None = None,
    ) -> list[Job]:
        """Apply several (job_id, changes) as `update_job` does each, in one transaction; return
        the jobs changed (a job whose status is not in `only_if_status` is left alone), by id."""
        ...

    # -- the worker's transitions -------------------------------------------------------
    def register_worker(self, worker: WorkerInfo) -> None:
        """Insert or refresh the worker's row; a worker id that comes back is no longer stopped."""

    def stop_worker(self, worker_id: str, now: datetime) -> None:
        """Record a clean stop: the worker is last seen, and stopped, at `now`."""

    def forget_workers(self, seen_before: datetime) -> int:
        """Delete worker rows last seen before the cutoff that hold no running run (so that
        `run-worker --once` from cron does not pile up rows). Returns how many."""
        ...

    def claim_due(self, worker_id: str, now: datetime, limit: int) -> list[Claim]:
        """Atomically claim up to `limit` jobs that are `active` with next_run_at <= now, oldest
        due first, at most one per concurrency key and none whose key has a running run: each
        claimed job becomes `running` and gets a new `running` run owned by `worker_id`."""
        ...

    def heartbeat(
        self, worker_id: str, leases: Sequence[tuple[int, LeaseToken]], now: datetime
    ) -> list[int]:
        """Renew the worker and the given (run_id, lease_token) runs; return the ids of runs this
        worker no longer owns (recovered elsewhere or finished)."""
        ...

    def request_cancel(self, run_id: int, by: str, now: datetime) -> Run | None:
        """Ask for a running run to be cancelled (`by`: who asked); the first request stands.
        Returns the run, or None when it is not running."""
        ...

    def cancel_requests(self, run_ids: list[int]) -> dict[int, str]:
        """Of these runs, the running ones whose cancellation was asked for, with who asked
        (what the worker holding them reads at each heartbeat)."""
        ...

    def write_run_logs(self, logs: Sequence[tuple[int, LeaseToken, str]]) -> None:
        """Store the log so far of each (run_id, lease_token, logs) run, while it is still
        `running` under that lease (the worker's heartbeat writes them as the run goes; the
        run's outcome writes the final log)."""
        ...

    def finish_run(self, run_id: int, lease_token: LeaseToken, result: RunResult) -> Recorded:
        """Record the outcome of a run, its job's next state and its datasets in one transaction,
        only while the run is still `running` under this lease (LOST when the lease was lost).
        EDITED when the job's revision is no longer `result.job_update.revision`: an operator
        edited it during the run; everything is written but the job's retry count, and its next
        state is to be computed again from the job as it is now (lifecycle.settle_edited_job) and
        written with `reapply_job_update`."""
        ...

    def finish_runs(self, outcomes: Sequence[tuple[int, LeaseToken, RunResult]]) -> list[Recorded]:
        """Record several (run_id, lease_token, result) outcomes in one transaction, each exactly
        as `finish_run` records it alone; one answer per outcome, in order."""
        ...

    def reapply_job_update(
        self, job_id: int, run_id: int, written: JobUpdate, update: JobUpdate, at: datetime
    ) -> bool:
        """Replace the next state `written` that run `run_id` recorded for its job with `update`,
        computed from the job at `update.revision`: only while the job still has that revision
        and no later run, the status only while it is still `written.status`. False when the job
        was edited again, claimed again, or is gone."""
        ...

    def release_run(
        self,
        run_id: int,
        lease_token: LeaseToken,
        now: datetime,
        triggers: Sequence[PendingTrigger] = (),
    ) -> bool:
        """Give back a claimed run that never started: delete it, put its job back to `active`
        with the same next_run_at, and return `triggers` (dataflow.given_back) to the pending
        triggers of the run's brand, coalesced with any that arrived since; in one
        transaction."""
        ...

    def stuck_runs(self, heartbeat_before: datetime, started_before: datetime) -> list[Claim]:
        """Running runs whose heartbeat is older than `heartbeat_before` — or, for a run that
        never sent one (its heartbeat_at still equals started_at), that started before
        `started_before` (the start grace) — with their jobs."""
        ...

    def fail_stuck_run(
        self, run_id: int, heartbeat_before: datetime, started_before: datetime, result: RunResult
    ) -> Recorded:
        """Like finish_run, guarded by the stuck_runs condition in the same statement, so a run
        that finished or heartbeated meanwhile is left alone."""
        ...

    def fail_stuck_runs(
        self,
        heartbeat_before: datetime,
        started_before: datetime,
        outcomes: list[tuple[int, RunResult]],
    ) -> list[Recorded]:
        """Record several (run_id, result) outcomes of stuck runs in one transaction, each as
        `fail_stuck_run` records it alone: one answer per outcome, in order."""

    # -- data-aware scheduling (triggers.py) ---------------------------------------------
    def set_job_inputs(
        self,
        job_id: int,
        inputs: list[dict[str, str]],
        max_hold_seconds: float | None,
        now: datetime,
    ) -> Job | None:
        """Replace the job's inputs ({"kind", "scope", "dataset"}) and max hold, bumping its
        revision; pending triggers of inputs no longer listed go. None when there is no job."""
        ...

    def start_runs(self, starts: list[RunStart]) -> dict[int, Run]:
        """In one transaction, each claimed run (still running under its lease) takes its
        brand's pending triggers into `triggered_by` (after `carried`) and records that brand;
        its job's hold ends. Returns the runs so started, by id."""
        ...

    def hold_runs(self, holds: list[RunHold], now: datetime) -> int:
        """In one transaction, give back each claimed run (still running under its lease) and
        put its job back to `active`, due at `next_run_at`, held since `held_since` on
        `waiting_on`. Returns how many were held."""
        ...

    # -- retention and alerts -----------------------------------------------------------
    def prune_runs(self, finished_before: datetime, keep_last: int, limit: int) -> int:
        """Delete up to `limit` finished runs (oldest first) that finished before the cutoff,
        never a running run and never one of a job's newest `keep_last` (≥ 1); return how many."""
        ...

    def count_prunable_runs(self, finished_before: datetime, keep_last: int) -> int: ...

    def purge_archived_jobs(self, archived_before: datetime, limit: int) -> int:
        """Delete up to `limit` archived jobs last updated before the cutoff, with their runs."""
        ...

    def count_purgeable_jobs(self, archived_before: datetime) -> int: ...

    def claim_alert(
        self, brand_id: str | None, dataset: str, expected: str | None, new: str
    ) -> bool:
        """Set the dataset's alerted_state to `new` if it is `expected` (NULL-safe); True when
        this caller made the change, so exactly one worker announces each transition."""
        ...

    # -- reads --------------------------------------------------------------------------
    def list_runs(
        self,
        *,
        job_id: int | None = None,
        brand_id: BrandFilter = ANY,
        status: str | None = None,
        limit: int = 50,
    ) -> list[Run]:
        """Newest first."""
        ...

    def get_run(self, run_id: int) -> Run | None: ...

    def runs_by_id(self, run_ids: list[int]) -> dict[int, Run]: ...

    def dataset_statuses(self, *, brand_id: BrandFilter = ANY) -> list[DatasetStatus]: ...

    def dataset_status(self, dataset: str, brand_id: str | None) -> DatasetStatus | None: ...

    def thresholds(self) -> list[Threshold]: ...

    def set_threshold(self, threshold: Threshold, now: datetime) -> None: ...

    def delete_threshold(self, dataset: str, brand_id: str | None) -> bool:
        """Remove the threshold of exactly (brand_id, dataset); False when there was none."""
        ...

    def workers(self) -> list[WorkerInfo]: ...

    # -- brands and retirement ----------------------------------------------------------
    def brand_ids(self) -> list[str]:
        """Every brand any job (archived ones included), dataset row or threshold names."""
        ...

    def set_datasets_retired(
        self, keys: list[tuple[str | None, str]], retired_at: datetime | None, now: datetime
    ) -> int:
        """Retire the (brand_id, dataset) pairs at `retired_at` (a pair without a row gets one
        without history), or restore them (None: clears retired_at; a row without history goes).
        Returns how many pairs changed."""
        ...

    def retire_brand(self, brand_id: str, datasets: list[str], now: datetime) -> list[Job]:
        """In one transaction: archive every job of the brand that is not archived, retire the
        given datasets of the brand and record a BrandRetirement. Returns the archived jobs;
        [] and no change when the brand is already retired."""
        ...

    def brand_retirements(self) -> list[BrandRetirement]: ...

    def restore_brand(
        self, brand_id: str, jobs: list[tuple[int, str, datetime | None]], now: datetime
    ) -> bool:
        """In one transaction: give each (job_id, status, next_run_at) job that is still
        archived those values, restore the retirement's datasets and drop the record. False
        when the brand is not retired."""
        ...

    def status_snapshot(
        self,
        *,
        brand_id: BrandFilter = ANY,
        statuses: tuple[str, ...],
        heartbeat_before: datetime,
        started_before: datetime,
        running_limit: int,
    ) -> StatusSnapshot:
        """Everything `status` shows, as of one moment (one statement on PostgreSQL, one read
        transaction on SQLite): the records list_jobs(brand_id=brand_id, statuses=statuses),
        runs_by_id of those jobs' last runs, dataset_statuses(brand_id=brand_id), thresholds(),
        stuck_runs(heartbeat_before, started_before), list_runs(status="running",
        limit=running_limit) and workers() return."""
        ...


@runtime_checkable
class Listener(Protocol):
    """The LISTEN capability: a store whose writes notify waiting processes (PostgreSQL's
    LISTEN/NOTIFY), so a worker wakes as soon as a job is enqueued and a waiting caller as soon
    as a run ends. A store declares it by subclassing; stores without it are polled."""

    def listen_check(self) -> bool:
        """Whether a notification sent through the store reaches its LISTEN (behind a
        transaction pooler it does not); when it does not, the LISTEN connection is closed."""
        ...

    def wait_for_work(self, timeout_s: float) -> bool:
        """Block until a job is enqueued or `timeout_s` passes; True when woken."""
        ...

    def wait_for_run_end(self, timeout_s: float) -> bool:
        """Block until some run ends or `timeout_s` passes; True when woken."""
        ...


def listener(store: Store) -> Listener | None:
    """The store's LISTEN capability, or None when it has none."""
    return store if isinstance(store, Listener) else None
