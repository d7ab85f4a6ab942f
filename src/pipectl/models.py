"""The records pipectl keeps and passes between its layers, as plain dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final, Literal, NewType, TypedDict

ScheduleType = Literal["recurring", "one_time", "datasets"]
JobStatus = Literal["active", "paused", "running", "failed", "archived"]
RunStatus = Literal["running", "completed", "failed", "cancelled"]
FreshnessState = Literal["never", "fresh", "warn", "stale"]
StepStatus = Literal["completed", "failed"]

JOB_TIMESTAMPS = ("next_run_at", "created_at", "updated_at", "held_since", "triggered_at")
JOB_STATUSES: tuple[JobStatus, ...] = ("active", "paused", "running", "failed", "archived")
RUN_STATUSES: tuple[RunStatus, ...] = ("running", "completed", "failed", "cancelled")
# A job that will run again on its own (a paused one once resumed): its datasets count, and a
# retry count it carries means it is in backoff (lifecycle.in_backoff).
LIVE_JOB_STATUSES: tuple[JobStatus, ...] = ("active", "running", "paused")
# Every job but the archived ones (the audit trail): what `status` shows.
UNARCHIVED_JOB_STATUSES: tuple[JobStatus, ...] = (*LIVE_JOB_STATUSES, "failed")
# A run is live while a worker holds it; it ends once, in one of the others.
LIVE_RUN_STATUSES: tuple[RunStatus, ...] = ("running",)
ENDED_RUN_STATUSES: tuple[RunStatus, ...] = ("completed", "failed", "cancelled")


# A claim's fencing token: heartbeats and the final write present it, so a worker whose run was
# recovered (and claimed again elsewhere) cannot write over it. Only the store mints one.
LeaseToken = NewType("LeaseToken", str)


class AnyBrand(Enum):
    """The brand filter that reads every brand (None reads global jobs and datasets only)."""

    ANY = "ANY"

    def __repr__(self) -> str:
        return "ANY"


ANY: Final = AnyBrand.ANY

# A read's brand filter: a brand, None (global only) or ANY (every brand).
BrandFilter = str | None | AnyBrand


class Step(TypedDict):
    """One step a run reported (`ctx.step`, or a line of a command's steps file), as the run's
    `steps` JSON holds it."""

    name: str
    status: StepStatus
    datasets: list[str]
    brand_id: str | None
    fatal: bool
    error: str | None
    finished_at: str  # ISO 8601


class InputSuccess(TypedDict):
    """One input success that triggered a run (data-aware scheduling, triggers.py), as the
    run's `triggered_by` JSON holds it."""

    dataset: str  # `global:NAME` for a global dataset
    brand_id: str | None  # the brand of the success
    run_id: int | None  # the run that succeeded, if a run did
    at: str  # ISO 8601
    successes: int  # how many successes since the job's last run


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _as_is(value: datetime | None) -> datetime | None:
    return value


def fields_of(record: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict, in field order, values as they are: the JSON documents
    share the record's lists and dicts. (`dataclasses.asdict` deep-copies them, which was most
    of `status --json`'s time on a big store.)"""
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    brand_id: str | None
    job_type: str
    name: str
    schedule_type: ScheduleType
    cron_expression: str | None
    timezone: str
    next_run_at: datetime | None
    status: JobStatus
    parameters: dict[str, Any]
    max_retries: int
    retry_count: int
    retry_base_seconds: int
    retry_cap_seconds: int
    last_error: str | None
    timeout_seconds: float | None
    dedupe_key: str | None
    concurrency_key: str | None
    last_run_id: int | None
    created_at: datetime
    updated_at: datetime
    # Bumped by every operator edit; a run's outcome is written against the revision it saw.
    revision: int = 0
    # Data-aware scheduling (triggers.py): the job's inputs ({"kind", "scope", "dataset"}), how
    # long a run may be held for stale ones, and, while held, since when and on what.
    inputs: list[dict[str, str]] = field(default_factory=list)
    max_hold_seconds: float | None = None
    held_since: datetime | None = None
    waiting_on: str | None = None
    triggered_at: datetime | None = None  # when its input successes made a run ready

    @property
    def is_recurring(self) -> bool:
        return self.schedule_type == "recurring"

    @property
    def waits_for_data(self) -> bool:
        """Runs when its `--after` inputs refresh, with no cron (schedule_type `datasets`)."""
        return self.schedule_type == "datasets"

    def to_json(self, *, datetimes: bool = False) -> dict[str, Any]:
        """The job's fields; timestamps as ISO 8601 text, or with `datetimes` as they are (for
        pipectl.json_text, which writes them the same way)."""
        doc = fields_of(self)
        if not datetimes:
            for key in JOB_TIMESTAMPS:
                doc[key] = iso(doc[key])
        return doc


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    job_id: int
    attempt: int
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker_id: str | None
    lease_token: LeaseToken = field(repr=False)
    error_message: str | None
    logs: str
    steps: list[Step]
    concurrency_key: str | None
    cancel_requested_at: datetime | None = None  # an operator asked for it to stop (`runs cancel`)
    cancel_requested_by: str | None = None
    brand_id: str | None = None  # the brand a global job's triggered run carries
    triggered_by: list[InputSuccess] = field(default_factory=list)

    @property
    def failed_steps(self) -> int:
        """Steps that failed: a completed run may have some (non-fatal ones)."""
        return sum(1 for step in self.steps if step.get("status") == "failed")

    def to_json(self, *, with_logs: bool = False, datetimes: bool = False) -> dict[str, Any]:
        doc = fields_of(self)
        doc["failed_steps"] = self.failed_steps
        del doc["lease_token"]  # the worker's proof of ownership; nobody else needs it
        if not with_logs:
            del doc["logs"]
        if not datetimes:
            for key in ("started_at", "finished_at", "heartbeat_at", "cancel_requested_at"):
                doc[key] = iso(doc[key])
        return doc


@dataclass(frozen=True, slots=True)
class Claim:
    """A run a worker now owns, with the job as it was when claimed."""

    run: Run
    job: Job


@dataclass(frozen=True, slots=True)
class DatasetStatus:
    brand_id: str | None
    dataset: str
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_status: RunStatus | None
    last_error: str | None
    last_run_id: int | None
    alerted_state: str | None = None  # the state an alert was last sent for
    retired_at: datetime | None = None  # out of the gate and of `status`; history kept


@dataclass(frozen=True, slots=True)
class Threshold:
    dataset: str
    brand_id: str | None
    warn_after: timedelta
    error_after: timedelta


@dataclass(frozen=True, slots=True)
class Freshness:
    """The answer to 'is dataset D for brand B safe to use, and since when?'."""

    brand_id: str | None
    dataset: str
    state: FreshnessState
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_attempt_failed: bool
    last_error: str | None
    age: timedelta | None
    warn_after: timedelta
    error_after: timedelta
    last_run_id: int | None = None  # the run that last attempted it …
    last_job_id: int | None = None  # … and its job

    @property
    def is_fresh(self) -> bool:
        return self.state == "fresh"

    def to_json(self, *, datetimes: bool = False) -> dict[str, Any]:
        stamp = _as_is if datetimes else iso
        return {
            "brand_id": self.brand_id,
            "dataset": self.dataset,
            "state": self.state,
            "last_success_at": stamp(self.last_success_at),
            "last_attempt_at": stamp(self.last_attempt_at),
            "last_attempt_failed": self.last_attempt_failed,
            "last_error": self.last_error,
            "age_seconds": None if self.age is None else round(self.age.total_seconds(), 3),
            "warn_after_seconds": self.warn_after.total_seconds(),
            "error_after_seconds": self.error_after.total_seconds(),
            "last_run_id": self.last_run_id,
            "last_job_id": self.last_job_id,
        }


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    started_at: datetime
    last_seen_at: datetime
    version: str
    stopped_at: datetime | None = None  # set by a clean stop; None while running or if killed

    def to_json(self, *, datetimes: bool = False) -> dict[str, Any]:
        doc = fields_of(self)
        if not datetimes:
            doc["started_at"] = iso(self.started_at)
            doc["last_seen_at"] = iso(self.last_seen_at)
            doc["stopped_at"] = iso(self.stopped_at)
        return doc


@dataclass(frozen=True, slots=True)
class BrandRetirement:
    """A retired brand: the jobs its retirement archived, each with the status it had, and the
    datasets it retired (what `brands restore` puts back)."""

    brand_id: str
    retired_at: datetime
    jobs: list[dict[str, Any]]  # [{"id": 3, "status": "active"}, …]
    datasets: list[str]

    def to_json(self) -> dict[str, Any]:
        return {**fields_of(self), "retired_at": iso(self.retired_at)}


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    """Everything `status` shows, as the store held it at one moment (`Store.status_snapshot`)."""

    jobs: list[Job]
    last_runs: dict[int, Run]  # the jobs' last runs, by run id
    datasets: list[DatasetStatus]
    thresholds: list[Threshold]
    stuck_runs: list[Claim]
    running_runs: list[Run]  # newest first
    workers: list[WorkerInfo]


# What the engine asks the store to write. The engine decides the values; the store applies
# them atomically.


@dataclass(frozen=True, slots=True)
class NewJob:
    brand_id: str | None
    job_type: str
    name: str
    schedule_type: ScheduleType
    cron_expression: str | None
    timezone: str
    next_run_at: datetime | None
    status: JobStatus
    parameters: dict[str, Any]
    max_retries: int
    retry_base_seconds: int
    retry_cap_seconds: int
    timeout_seconds: float | None
    dedupe_key: str | None
    concurrency_key: str | None


@dataclass(frozen=True, slots=True)
class JobUpdate:
    """A job's next state after a run, computed from the job at `revision`; if an operator edit
    has moved the job on by the time it is written, it is computed again from the edited job
    (lifecycle.settle_edited_job), so the edit stands. `status` applies only while the job is
    still `running` (an operator who paused or archived it mid-run keeps their choice)."""

    status: JobStatus
    next_run_at: datetime | None
    retry_count: int
    last_error: str | None
    revision: int = 0


class Recorded(Enum):
    """What became of a finished run's outcome. Truthy when the run was recorded."""

    RECORDED = "recorded"  # the run, its job's next state and its datasets
    EDITED = "edited"  # as RECORDED but the retry count: the job was edited meanwhile (settle it)
    LOST = "lost"  # nothing: the lease was lost (the run was recovered or finished elsewhere)

    def __bool__(self) -> bool:
        return self is not Recorded.LOST


@dataclass(frozen=True, slots=True)
class DatasetOutcome:
    brand_id: str | None
    dataset: str
    succeeded: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RunResult:
    """Everything a finished run writes, in one transaction."""

    status: Literal["completed", "failed", "cancelled"]
    finished_at: datetime
    error_message: str | None
    logs: str
    steps: list[Step]
    job_update: JobUpdate
    datasets: list[DatasetOutcome]


@dataclass(frozen=True, slots=True)
class RunStart:
    """A claimed run of a job with inputs, about to start: it takes the pending triggers of its
    brand (with `pick`, of the brand whose triggers were ready first, else `brand_id`), after
    `carried` (what a retried run carries over from the run it retries)."""

    run_id: int
    lease_token: LeaseToken = field(repr=False)
    pick: bool
    brand_id: str | None
    carried: list[InputSuccess] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PendingTrigger:
    """An input success a run took when it started, returned to its job's pending triggers when
    the run is given back unstarted: `scope`/`dataset` the input, `brand_id` the brand of the
    success."""

    scope: str
    dataset: str
    brand_id: str | None
    run_id: int | None
    at: datetime
    successes: int


@dataclass(frozen=True, slots=True)
class RunHold:
    """A claimed run held back by stale inputs: given back, its job due since `held_since` and
    looked at again at `next_run_at`."""

    run_id: int
    lease_token: LeaseToken = field(repr=False)
    next_run_at: datetime
    held_since: datetime
    waiting_on: str
