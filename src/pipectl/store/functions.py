"""The store protocol written once, as calls to the pipectl_* SQL functions.

The functions in sql/postgres/ are the whole database API. Two transports reach them: psycopg
(`PostgresStore`) and Supabase's PostgREST `rpc` (`SupabaseStore`). Both subclass
`FunctionStore`, which turns each protocol method into one named call and the jsonb documents
that come back into models; a subclass only says how a call travels and how the schema is
installed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, overload

from pipectl.models import (
    JOB_TIMESTAMPS,
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
    RunStatus,
    StatusSnapshot,
    Threshold,
    WorkerInfo,
    fields_of,
)
from pipectl.store.base import ANY, EDITABLE_JOB_FIELDS

_JOB_TIMESTAMPS = JOB_TIMESTAMPS
_RUN_TIMESTAMPS = ("started_at", "finished_at", "heartbeat_at", "cancel_requested_at")


@dataclass(frozen=True, slots=True)
class Json:
    """An argument for a `jsonb` parameter: each transport encodes it its own way (psycopg needs
    a wrapper to tell it from an array; PostgREST takes the value as it is)."""

    value: Any


class FunctionStore(ABC):
    #: Where the store lives, safe to print (no password, no key).
    display_url: str

    # -- transport ----------------------------------------------------------------------
    @abstractmethod
    def _call(self, function: str, **args: Any) -> list[Any]:
        """Call a set-returning pipectl_* function with named arguments; return its values."""

    @abstractmethod
    def _call_one(self, function: str, **args: Any) -> Any:
        """Call a pipectl_* function that returns one value (or void); return that value."""

    # -- schema and lifecycle: how depends on the transport --------------------------------
    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def migrate(self) -> list[int]: ...

    @abstractmethod
    def schema_version(self) -> int | None: ...

    @abstractmethod
    def check_schema(self) -> None: ...

    @abstractmethod
    def db_now(self) -> datetime: ...

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
        brand_id: BrandFilter = ANY,
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
            p_changes=Json({key: _json_value(value) for key, value in changes.items()}),
            p_now=now,
            p_only_if_status=list(only_if_status) if only_if_status else None,
        )
        return job_from_json(doc) if doc is not None else None

    def update_jobs(
        self,
        updates: list[tuple[int, dict[str, Any]]],
        now: datetime,
        *,
        only_if_status: tuple[str, ...] | None = None,
    ) -> list[Job]:
        for _, changes in updates:
            unknown = set(changes) - EDITABLE_JOB_FIELDS
            if unknown:
                raise ValueError(f"not editable: {sorted(unknown)}")
        if not updates:
            return []
        docs = self._call(
            "pipectl_update_jobs",
            p_updates=Json(
                [
                    {"id": job_id, "changes": {k: _json_value(v) for k, v in changes.items()}}
                    for job_id, changes in updates
                ]
            ),
            p_now=now,
            p_only_if_status=list(only_if_status) if only_if_status else None,
        )
        return [job_from_json(doc) for doc in docs]

    # -- the worker's transitions -------------------------------------------------------
    def register_worker(self, worker: WorkerInfo) -> None:
        self._call_one(
            "pipectl_register_worker",
            p_id=worker.id,
            p_host=worker.host,
            p_pid=worker.pid,
            p_started_at=worker.started_at,
            p_last_seen_at=worker.last_seen_at,
            p_version=worker.version,
        )

    def stop_worker(self, worker_id: str, now: datetime) -> None:
        self._call_one("pipectl_stop_worker", p_worker_id=worker_id, p_now=now)

    def forget_workers(self, seen_before: datetime) -> int:
        return self._call_one("pipectl_forget_workers", p_seen_before=seen_before)

    def claim_due(self, worker_id: str, now: datetime, limit: int) -> list[Claim]:
        rows = self._call("pipectl_claim_due", p_worker_id=worker_id, p_now=now, p_limit=limit)
        return [Claim(run=run_from_row(run), job=job_from_row(job)) for run, job in rows]

    def heartbeat(
        self, worker_id: str, leases: Sequence[tuple[int, LeaseToken]], now: datetime
    ) -> list[int]:
        return self._call(
            "pipectl_heartbeat",
            p_worker_id=worker_id,
            p_run_ids=[run_id for run_id, _ in leases],
            p_lease_tokens=[token for _, token in leases],
            p_now=now,
        )

    def request_cancel(self, run_id: int, by: str, now: datetime) -> Run | None:
        doc = self._call_one("pipectl_request_cancel", p_run_id=run_id, p_by=by, p_now=now)
        return run_from_json(doc) if doc is not None else None

    def cancel_requests(self, run_ids: list[int]) -> dict[int, str]:
        if not run_ids:
            return {}
        docs = self._call("pipectl_cancel_requests", p_run_ids=run_ids)
        return {doc["id"]: doc["by"] for doc in docs}

    def write_run_logs(self, logs: Sequence[tuple[int, LeaseToken, str]]) -> None:
        if not logs:
            return
        self._call_one(
            "pipectl_write_run_logs",
            p_runs=Json(
                [
                    {"run_id": run_id, "lease_token": token, "logs": _no_nul(text)}
                    for run_id, token, text in logs
                ]
            ),
        )

    def finish_run(self, run_id: int, lease_token: LeaseToken, result: RunResult) -> Recorded:
        (recorded,) = self.finish_runs([(run_id, lease_token, result)])
        return recorded

    def finish_runs(self, outcomes: Sequence[tuple[int, LeaseToken, RunResult]]) -> list[Recorded]:
        if not outcomes:
            return []
        words = self._call(
            "pipectl_finish_runs",
            p_runs=Json([_outcome_doc(*outcome) for outcome in outcomes]),
        )
        return [Recorded(word) for word in words]

    def reapply_job_update(
        self, job_id: int, run_id: int, written: JobUpdate, update: JobUpdate, at: datetime
    ) -> bool:
        return self._call_one(
            "pipectl_reapply_job_update",
            p_job_id=job_id,
            p_run_id=run_id,
            p_revision=update.revision,
            p_written_status=written.status,
            p_job_status=update.status,
            p_next_run_at=update.next_run_at,
            p_retry_count=update.retry_count,
            p_last_error=_no_nul(update.last_error),
            p_at=at,
        )

    def release_run(
        self,
        run_id: int,
        lease_token: LeaseToken,
        now: datetime,
        triggers: Sequence[PendingTrigger] = (),
    ) -> bool:
        doc = [
            {key: _json_value(value) for key, value in fields_of(item).items()} for item in triggers
        ]
        return self._call_one(
            "pipectl_release_run",
            p_run_id=run_id,
            p_lease_token=lease_token,
            p_now=now,
            p_triggers=Json(doc),
        )

    def stuck_runs(self, heartbeat_before: datetime, started_before: datetime) -> list[Claim]:
        docs = self._call(
            "pipectl_stuck_runs",
            p_heartbeat_before=heartbeat_before,
            p_started_before=started_before,
        )
        return [claim_from_json(doc) for doc in docs]

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
        words = self._call(
            "pipectl_fail_stuck_runs",
            p_heartbeat_before=heartbeat_before,
            p_started_before=started_before,
            p_runs=Json([_outcome_doc(run_id, None, result) for run_id, result in outcomes]),
        )
        return [Recorded(word) for word in words]

    # -- data-aware scheduling ----------------------------------------------------------
    def set_job_inputs(
        self,
        job_id: int,
        inputs: list[dict[str, str]],
        max_hold_seconds: float | None,
        now: datetime,
    ) -> Job | None:
        doc = self._call_one(
            "pipectl_set_job_inputs",
            p_job_id=job_id,
            p_inputs=Json(inputs),
            p_max_hold_seconds=max_hold_seconds,
            p_now=now,
        )
        return job_from_json(doc) if doc is not None else None

    def start_runs(self, starts: list[RunStart]) -> dict[int, Run]:
        if not starts:
            return {}
        docs = self._call(
            "pipectl_start_runs",
            p_starts=Json([{**fields_of(start), "carried": start.carried} for start in starts]),
        )
        return {run.id: run for run in map(run_from_json, docs)}

    def hold_runs(self, holds: list[RunHold], now: datetime) -> int:
        if not holds:
            return 0
        doc = [
            {key: _json_value(value) for key, value in fields_of(hold).items()} for hold in holds
        ]
        return int(self._call_one("pipectl_hold_runs", p_holds=Json(doc), p_now=now))

    # -- retention and alerts -----------------------------------------------------------
    def prune_runs(self, finished_before: datetime, keep_last: int, limit: int) -> int:
        return self._call_one(
            "pipectl_prune_runs",
            p_finished_before=finished_before,
            p_keep_last=keep_last,
            p_limit=limit,
        )

    def count_prunable_runs(self, finished_before: datetime, keep_last: int) -> int:
        return self._call_one(
            "pipectl_count_prunable_runs", p_finished_before=finished_before, p_keep_last=keep_last
        )

    def purge_archived_jobs(self, archived_before: datetime, limit: int) -> int:
        return self._call_one(
            "pipectl_purge_archived_jobs", p_archived_before=archived_before, p_limit=limit
        )

    def count_purgeable_jobs(self, archived_before: datetime) -> int:
        return self._call_one("pipectl_count_purgeable_jobs", p_archived_before=archived_before)

    def claim_alert(
        self, brand_id: str | None, dataset: str, expected: str | None, new: str
    ) -> bool:
        return self._call_one(
            "pipectl_claim_alert",
            p_brand_id=brand_id,
            p_dataset=dataset,
            p_expected=expected,
            p_new=new,
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

    def dataset_statuses(self, *, brand_id: BrandFilter = ANY) -> list[DatasetStatus]:
        docs = self._call("pipectl_dataset_statuses", **_brand_args(brand_id))
        return [dataset_from_json(doc) for doc in docs]

    def dataset_status(self, dataset: str, brand_id: str | None) -> DatasetStatus | None:
        doc = self._call_one("pipectl_dataset_status", p_dataset=dataset, p_brand_id=brand_id)
        return dataset_from_json(doc) if doc is not None else None

    def thresholds(self) -> list[Threshold]:
        return [threshold_from_json(doc) for doc in self._call("pipectl_thresholds")]

    def set_threshold(self, threshold: Threshold, now: datetime) -> None:
        self._call_one(
            "pipectl_set_threshold",
            p_brand_id=threshold.brand_id,
            p_dataset=threshold.dataset,
            p_warn_after_seconds=threshold.warn_after.total_seconds(),
            p_error_after_seconds=threshold.error_after.total_seconds(),
            p_now=now,
        )

    def delete_threshold(self, dataset: str, brand_id: str | None) -> bool:
        return self._call_one("pipectl_delete_threshold", p_dataset=dataset, p_brand_id=brand_id)

    # -- brands and retirement ----------------------------------------------------------
    def brand_ids(self) -> list[str]:
        return self._call("pipectl_brand_ids")

    def set_datasets_retired(
        self, keys: list[tuple[str | None, str]], retired_at: datetime | None, now: datetime
    ) -> int:
        return self._call_one(
            "pipectl_set_datasets_retired",
            p_keys=Json([{"brand_id": brand, "dataset": dataset} for brand, dataset in keys]),
            p_retired_at=retired_at,
            p_now=now,
        )

    def retire_brand(self, brand_id: str, datasets: list[str], now: datetime) -> list[Job]:
        docs = self._call(
            "pipectl_retire_brand", p_brand_id=brand_id, p_datasets=datasets, p_now=now
        )
        return sorted(map(job_from_json, docs), key=lambda job: job.id)

    def brand_retirements(self) -> list[BrandRetirement]:
        return [
            BrandRetirement(
                brand_id=doc["brand_id"],
                retired_at=_dt(doc["retired_at"]),
                jobs=doc["jobs"],
                datasets=doc["datasets"],
            )
            for doc in self._call("pipectl_brand_retirements")
        ]

    def restore_brand(
        self, brand_id: str, jobs: list[tuple[int, str, datetime | None]], now: datetime
    ) -> bool:
        return self._call_one(
            "pipectl_restore_brand",
            p_brand_id=brand_id,
            p_jobs=Json(
                [
                    {"id": job_id, "status": status, "next_run_at": _json_value(next_run_at)}
                    for job_id, status, next_run_at in jobs
                ]
            ),
            p_now=now,
        )

    def workers(self) -> list[WorkerInfo]:
        return [worker_from_json(doc) for doc in self._call("pipectl_workers")]

    def status_snapshot(
        self,
        *,
        brand_id: BrandFilter = ANY,
        statuses: tuple[str, ...],
        heartbeat_before: datetime,
        started_before: datetime,
        running_limit: int,
    ) -> StatusSnapshot:
        (doc,) = self._call(
            "pipectl_status_snapshot",
            **_brand_args(brand_id),
            p_statuses=list(statuses),
            p_heartbeat_before=heartbeat_before,
            p_started_before=started_before,
            p_running_limit=running_limit,
        )
        return StatusSnapshot(
            jobs=[job_from_row(row) for row in doc["jobs"]],
            last_runs={run.id: run for run in map(run_from_row, doc["last_runs"])},
            datasets=[dataset_from_row(*row) for row in doc["datasets"]],
            thresholds=[threshold_from_json(threshold) for threshold in doc["thresholds"]],
            stuck_runs=[claim_from_json(claim) for claim in doc["stuck_runs"]],
            running_runs=[run_from_json(run) for run in doc["running_runs"]],
            workers=[worker_from_json(worker) for worker in doc["workers"]],
        )


# -- arguments in ------------------------------------------------------------------------------


def _brand_args(brand_id: BrandFilter) -> dict[str, Any]:
    """ANY → every brand; None → global only; a brand → that brand."""
    if brand_id is ANY:
        return {"p_all_brands": True, "p_brand_id": None}
    return {"p_all_brands": False, "p_brand_id": brand_id}


def _new_job_args(new: NewJob, now: datetime) -> dict[str, Any]:
    args = {f"p_{key}": value for key, value in asdict(new).items()}
    args["p_parameters"] = Json(new.parameters)
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
        "p_steps": Json(_no_nul(result.steps)),
        "p_job_status": update.status,
        "p_next_run_at": update.next_run_at,
        "p_retry_count": update.retry_count,
        "p_last_error": _no_nul(update.last_error),
        "p_job_revision": update.revision,
        "p_datasets": Json(_no_nul([asdict(outcome) for outcome in result.datasets])),
    }


def _outcome_doc(run_id: int, lease_token: LeaseToken | None, result: RunResult) -> dict[str, Any]:
    """One outcome of pipectl_finish_runs or pipectl_fail_stuck_runs: `_result_args` as a JSON
    document."""
    args = _result_args(result)
    doc = {
        name.removeprefix("p_"): value.value if isinstance(value, Json) else _json_value(value)
        for name, value in args.items()
    }
    return {"run_id": run_id, "lease_token": lease_token, **doc}


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


# -- documents out: to_jsonb() of rows, the same JSON whichever transport brought it ----------


@overload
def _dt(value: str) -> datetime: ...
@overload
def _dt(value: None) -> None: ...
def _dt(value: str | None) -> datetime | None:
    if value is None:
        return None
    found = datetime.fromisoformat(value)
    return found if found.tzinfo is UTC else found.astimezone(UTC)


def job_from_json(doc: dict[str, Any]) -> Job:
    # A schema older than v6 has no revision column: the default (0) stands in.
    values = {key: doc[key] for key in Job.__dataclass_fields__ if key in doc}
    for key in _JOB_TIMESTAMPS:
        if key in values:
            values[key] = _dt(values[key])
    if values["timeout_seconds"] is not None:
        values["timeout_seconds"] = float(values["timeout_seconds"])
    return Job(**values)


def run_from_json(doc: dict[str, Any]) -> Run:
    values = {key: doc[key] for key in Run.__dataclass_fields__}
    for key in _RUN_TIMESTAMPS:
        values[key] = _dt(values[key])
    return Run(**values)


# pipectl_status_snapshot's and pipectl_claim_due's rows: arrays of column values in the
# records' field order.
_JOB_ROW_STAMPS = [i for i, name in enumerate(Job.__dataclass_fields__) if name in JOB_TIMESTAMPS]
_JOB_ROW_TIMEOUT = list(Job.__dataclass_fields__).index("timeout_seconds")
_RUN_ROW_STAMPS = [i for i, name in enumerate(Run.__dataclass_fields__) if name in _RUN_TIMESTAMPS]


def job_from_row(row: list[Any]) -> Job:
    for i in _JOB_ROW_STAMPS:
        row[i] = _dt(row[i])
    if row[_JOB_ROW_TIMEOUT] is not None:
        row[_JOB_ROW_TIMEOUT] = float(row[_JOB_ROW_TIMEOUT])
    return Job(*row)


def run_from_row(row: list[Any]) -> Run:
    for i in _RUN_ROW_STAMPS:
        row[i] = _dt(row[i])
    return Run(*row)


def dataset_from_row(
    brand_id: str | None,
    dataset: str,
    last_success_at: str | None,
    last_attempt_at: str | None,
    last_status: RunStatus | None,
    last_error: str | None,
    last_run_id: int | None,
    alerted_state: str | None,
    retired_at: str | None,
) -> DatasetStatus:
    return DatasetStatus(
        brand_id,
        dataset,
        _dt(last_success_at),
        _dt(last_attempt_at),
        last_status,
        last_error,
        last_run_id,
        alerted_state,
        _dt(retired_at),
    )


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
        alerted_state=doc.get("alerted_state"),
        retired_at=_dt(doc.get("retired_at")),
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
        stopped_at=_dt(doc["stopped_at"]) if doc.get("stopped_at") else None,
    )
