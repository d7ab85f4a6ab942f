"""The library API: every operation a user can ask for. The CLI is a thin skin over this."""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import json
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final

from pipectl import actions, retention
from pipectl.actions import ALLOWED, BRAND_ACTIONS, DONE, applies, brings_forward
from pipectl.clock import SYSTEM, Clock
from pipectl.concurrency import (
    Waiting,
    default_concurrency_key,
    default_job_name,
    renamed_key,
    waiting_on,
)
from pipectl.errors import InvalidInput, NotFound, StoreUnavailable
from pipectl.freshness import Thresholds, freshness, freshness_report
from pipectl.gate import (
    GateFailure,
    GateResult,
    check_brands,
    check_datasets,
    judge,
    scheduler_failures,
    unknown_name,
)
from pipectl.handlers import get_job_type
from pipectl.handlers import validate_parameters as validate_job_parameters
from pipectl.handlers.context import lines_after
from pipectl.lifecycle import cancel_reason, run_is_live, stuck_cutoffs
from pipectl.liveness import live_workers
from pipectl.models import (
    LIVE_JOB_STATUSES,
    UNARCHIVED_JOB_STATUSES,
    BrandFilter,
    BrandRetirement,
    Claim,
    DatasetStatus,
    Freshness,
    Job,
    NewJob,
    Run,
    Threshold,
    WorkerInfo,
)
from pipectl.parsing import check_name, check_parameters
from pipectl.recovery import find_stuck, recover_stuck
from pipectl.schedule import check_cron, next_occurrence, zone
from pipectl.settings import Settings, load_settings
from pipectl.store import ANY, Store, open_store
from pipectl.store.base import listener
from pipectl.triggers import (
    HeldWaiting,
    JobInput,
    describe_cycle,
    find_cycle,
    held_waiting,
    hold_keys,
    inputs_of,
    is_held,
    lineage,
    parse_inputs,
    unknown_inputs,
)


class DefaultKey(Enum):
    """The concurrency key argument that derives the key from the job's name and brand."""

    DEFAULT = "DEFAULT"


DEFAULT_KEY: Final = DefaultKey.DEFAULT
WAIT_POLL_S = 0.5  # how often a wait looks again where the store has no notifications
WAIT_RECHECK_S = 5.0  # on PostgreSQL, a look even without a notification, in case one was lost
FOLLOW_POLL_S = 1.0  # how often `runs logs --follow` reads a running run's log
MAX_RUNNING_SHOWN = 10_000


@dataclass(frozen=True, slots=True)
class Enqueued:
    job: Job
    created: bool  # False: an identical pending job already existed and is returned instead
    rearmed: bool = False  # that pending job was due later, and is now due at the asked time


@dataclass(frozen=True, slots=True)
class Cancelled:
    """What `cancel_job` did: asked the worker holding the job's running run to stop it
    (`run`), or took the job's pending one-time run out of the queue (`run` is None)."""

    job: Job
    run: Run | None


@dataclass(frozen=True, slots=True)
class Waited:
    """How a wait ended: the run that ended, or none (`timed_out`, or the job left the queue
    without running: `reason`)."""

    run: Run | None
    timed_out: bool = False
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BrandSummary:
    """A row of `brands list`."""

    brand_id: str
    live_jobs: int
    datasets: int
    failing: int  # datasets stale or never
    retired_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "brand_id": self.brand_id,
            "live_jobs": self.live_jobs,
            "datasets": self.datasets,
            "failing": self.failing,
            "retired": self.retired_at is not None,
            "retired_at": self.retired_at.isoformat() if self.retired_at else None,
        }


@dataclass(frozen=True, slots=True)
class BrandPlan:
    """What retiring a brand does: the jobs it archives and the datasets it retires."""

    brand_id: str
    jobs: list[Job]
    datasets: list[str]


@dataclass(frozen=True, slots=True)
class StatusReport:
    now: datetime
    datasets: list[Freshness]
    jobs: list[Job]
    last_runs: dict[int, Run]
    stuck_runs: list[Claim]
    workers: list[WorkerInfo]
    worker_stale_after: timedelta
    waiting: dict[int, Waiting | HeldWaiting]
    retired: frozenset[tuple[str | None, str]] = frozenset()  # retired (brand, dataset) pairs
    selected_brands: tuple[str, ...] = ()  # the brands a gate was asked about by name

    @property
    def live_workers(self) -> list[WorkerInfo]:
        return live_workers(self.workers, self.now, self.worker_stale_after)

    @property
    def check_failed(self) -> bool:
        """`status --check` without options: any dataset stale or never refreshed."""
        return not self.gate().ok

    def scheduler_failures(self) -> list[GateFailure]:
        """No live worker while jobs are due; stuck runs (what `--require-worker` adds)."""
        return scheduler_failures(
            self.now, self.live_workers, self.workers, self.jobs, self.stuck_runs
        )

    def gate(self, *, strict: bool = False, require_worker: bool = False) -> GateResult:
        """The readiness gate over this report's datasets."""
        return judge(
            self.datasets,
            self.now,
            strict=strict,
            require_worker=require_worker,
            scheduler=self.scheduler_failures() if require_worker else None,
            brands=self.selected_brands,
        )


def operator_name() -> str:
    """Who is asking, for the record (`runs cancel`): user@host."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def dedupe_key(job_type: str, brand_id: str | None, parameters: dict[str, Any]) -> str:
    payload = json.dumps([job_type, brand_id, parameters], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


class Client:
    """pipectl for application code::

    client = pipectl.Client.from_env()
    client.enqueue("meta_sync", brand_id="acme")
    if not client.freshness("ads_performance", brand_id="acme").is_fresh: ...

    Threads: one Client may be shared by any number of threads (a web app's request threads);
    every call is safe and atomic. On SQLite and PostgreSQL its calls take turns on the one
    connection; on Supabase they run side by side. Close it only once no thread uses it.
    Processes: each process opens its own Client; any number may use one store at once.
    Fork: a Client does not survive os.fork(): the child opens a new one and leaves the
    parent's alone (not even closing it, which would end the parent's session), e.g. in
    gunicorn's post_fork hook or lazily on first use in each worker process.
    """

    def __init__(self, store: Store, settings: Settings, *, clock: Clock = SYSTEM) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock  # what "now" is, for every write and read this client makes

    @classmethod
    def from_url(
        cls,
        url: str,
        settings: Settings | None = None,
        *,
        check_schema: bool = True,
        clock: Clock = SYSTEM,
    ) -> Client:
        settings = settings or load_settings(database_url=url)
        store = open_store(url, settings=settings)
        if check_schema:
            try:
                store.check_schema()
            except Exception:
                store.close()
                raise
        return cls(store, settings, clock=clock)

    @classmethod
    def from_env(cls, *, clock: Clock = SYSTEM, **overrides: Any) -> Client:
        settings = load_settings(**overrides)
        return cls.from_url(settings.database_url, settings, clock=clock)

    @classmethod
    def migrate_url(cls, url: str, settings: Settings | None = None) -> list[int]:
        """Create or upgrade the schema at `url`; returns the versions applied now."""
        store = open_store(url, create=True, settings=settings)
        try:
            return store.migrate()
        finally:
            store.close()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- jobs ---------------------------------------------------------------------------
    def add_job(
        self,
        job_type: str,
        cron_expression: str | None = None,
        *,
        timezone: str = "UTC",
        brand_id: str | None = None,
        name: str | None = None,
        parameters: dict[str, Any] | None = None,
        max_retries: int | None = None,
        timeout: timedelta | None = None,
        paused: bool = False,
        concurrency_key: str | DefaultKey | None = DEFAULT_KEY,
        after: Sequence[str] = (),
        requires_fresh: Sequence[str] = (),
        max_hold: timedelta | None = None,
        allow_unknown: bool = False,
    ) -> Job:
        """Add a recurring job; it first runs at the next occurrence of its cron expression.

        `after` (datasets, `global:NAME` for a global one) makes it run when each has had a new
        success since its last run: without a cron its schedule_type is `datasets`; with one it
        runs at each occurrence *or* when its inputs refresh (docs/concepts.md). It is held while
        a `requires_fresh` input is stale or never succeeded, for at most `max_hold`. An input
        no job produces and no threshold declares is refused unless `allow_unknown`; so is a
        cycle."""
        inputs = parse_inputs(brand_id, after, requires_fresh)
        if cron_expression is None and not any(item.kind == "after" for item in inputs):
            raise InvalidInput("give --cron, --after DATASET, or both")
        if cron_expression is not None:
            cron_expression = check_cron(cron_expression)
        zone(timezone)
        now = self.clock.now()
        new = self._new_job(
            job_type,
            brand_id,
            parameters,
            name=name,
            max_retries=max_retries,
            timeout=timeout,
            concurrency_key=concurrency_key,
            schedule_type="recurring" if cron_expression else "datasets",
            cron_expression=cron_expression,
            timezone=timezone,
            next_run_at=next_occurrence(cron_expression, timezone, now)
            if cron_expression
            else None,
            status="paused" if paused else "active",
            dedupe=False,
        )
        max_hold_seconds = _hold_seconds(max_hold)
        if inputs:
            provisional = Job(
                id=0,
                retry_count=0,
                last_error=None,
                last_run_id=None,
                created_at=now,
                updated_at=now,
                inputs=[item.to_json() for item in inputs],
                **{k: v for k, v in dataclasses.asdict(new).items() if k != "dedupe_key"},
                dedupe_key=None,
            )
            self._check_inputs(provisional, inputs, allow_unknown)
        job = self.store.insert_job(new, now)
        if inputs or max_hold_seconds is not None:
            job = (
                self.store.set_job_inputs(
                    job.id, [item.to_json() for item in inputs], max_hold_seconds, now
                )
                or job
            )
        return job

    def _check_inputs(self, job: Job, inputs: list[JobInput], allow_unknown: bool) -> None:
        """Refuse a cycle through `job` (as it would be), and inputs nobody produces."""
        others = [
            other
            for other in self.store.list_jobs(statuses=UNARCHIVED_JOB_STATUSES)
            if other.id != job.id
        ]
        everyone = [*others, job]
        cycle = find_cycle(everyone)
        if cycle is not None:
            named = describe_cycle(cycle, {item.id: item for item in everyone})
            raise InvalidInput(f"refused: the inputs would make a cycle: {named}")
        if allow_unknown:
            return
        declared = {threshold.dataset for threshold in self.store.thresholds()}
        unknown = unknown_inputs(inputs, everyone, declared)
        if unknown:
            names = ", ".join(item.name for item in unknown)
            raise InvalidInput(
                f"no job produces and no threshold declares {names}; give --allow-unknown if "
                "its producer comes later"
            )

    def enqueue(
        self,
        job_type: str,
        brand_id: str | None = None,
        parameters: dict[str, Any] | None = None,
        run_at: datetime | None = None,
        **options: Any,
    ) -> Job:
        """Queue a one-time job (a manual sync). See `enqueue_job` for the options."""
        return self.enqueue_job(job_type, brand_id, parameters, run_at, **options).job

    def enqueue_job(
        self,
        job_type: str,
        brand_id: str | None = None,
        parameters: dict[str, Any] | None = None,
        run_at: datetime | None = None,
        *,
        name: str | None = None,
        allow_duplicate: bool = False,
        max_retries: int | None = None,
        timeout: timedelta | None = None,
        concurrency_key: str | DefaultKey | None = DEFAULT_KEY,
    ) -> Enqueued:
        """Queue a one-time job to run at `run_at` (default: the next poll). While an identical
        job (same type, brand and parameters) is still pending, that job is returned instead,
        unless `allow_duplicate`; if it was due later (in backoff, say), it is brought forward
        to `run_at` (`rearmed`)."""
        if run_at is not None and run_at.tzinfo is None:
            raise InvalidInput("run_at must be timezone-aware")
        run_at = run_at or self.clock.now()
        new = self._new_job(
            job_type,
            brand_id,
            parameters,
            name=name,
            max_retries=max_retries,
            timeout=timeout,
            concurrency_key=concurrency_key,
            schedule_type="one_time",
            cron_expression=None,
            timezone="UTC",
            next_run_at=run_at or self.clock.now(),
            status="active",
            dedupe=not allow_duplicate,
        )
        now = self.clock.now()
        job, created = self.store.enqueue(new, now)
        if not created and brings_forward(job, run_at):
            moved = self.store.update_job(
                job.id, {"next_run_at": run_at}, now, only_if_status=("active",)
            )
            if moved is not None:  # else a worker claimed it meanwhile: it is running now
                return Enqueued(moved, created, rearmed=True)
        return Enqueued(job, created)

    def _new_job(
        self,
        job_type: str,
        brand_id: str | None,
        parameters: dict[str, Any] | None,
        *,
        name: str | None,
        max_retries: int | None,
        timeout: timedelta | None,
        concurrency_key: str | DefaultKey | None,
        dedupe: bool,
        **schedule: Any,
    ) -> NewJob:
        parameters = dict(parameters or {})
        check_parameters(parameters)
        check_name(brand_id, "brand")
        check_name(name, "job name")
        get_job_type(job_type)
        validate_job_parameters(job_type, parameters)
        if max_retries is not None and not 0 <= max_retries <= 100:
            raise InvalidInput("max retries must be between 0 and 100")
        if concurrency_key is DEFAULT_KEY:
            concurrency_key = default_concurrency_key(job_type, brand_id, name)
        check_name(concurrency_key, "concurrency key")
        return NewJob(
            brand_id=brand_id,
            job_type=job_type,
            name=name or default_job_name(job_type, brand_id),
            parameters=parameters,
            max_retries=self.settings.max_retries if max_retries is None else max_retries,
            retry_base_seconds=int(self.settings.retry_base.total_seconds()),
            retry_cap_seconds=int(self.settings.retry_cap.total_seconds()),
            timeout_seconds=timeout.total_seconds() if timeout else None,
            dedupe_key=dedupe_key(job_type, brand_id, parameters) if dedupe else None,
            concurrency_key=concurrency_key,
            **schedule,
        )

    def get_job(self, job_id: int) -> Job:
        job = self.store.get_job(job_id)
        if job is None:
            raise NotFound(f"no job with id {job_id}")
        return job

    def list_jobs(
        self,
        *,
        brand_id: BrandFilter = ANY,
        job_type: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        archived: bool = True,
    ) -> list[Job]:
        """Jobs by id; without `status`, archived ones only when `archived`."""
        statuses: tuple[str, ...] | None = (status,) if status else None
        if statuses is None and not archived:
            statuses = UNARCHIVED_JOB_STATUSES
        return self.store.list_jobs(
            brand_id=brand_id, job_type=job_type, statuses=statuses, limit=limit
        )

    def pause(self, job_id: int) -> Job:
        return self._act("pause", job_id)

    def resume(self, job_id: int) -> Job:
        """Resume a paused job; a recurring one continues at its next regular time."""
        return self._act("resume", job_id)

    def archive(self, job_id: int) -> Job:
        return self._act("archive", job_id)

    def retry_now(self, job_id: int) -> Job:
        """Re-arm a job to run at the next poll. A failed one-time job gets a fresh retry
        budget; a job in backoff keeps its retry count."""
        return self._act("re-arm", job_id)

    def run_now(self, job_id: int) -> Job:
        """Run a job at the next poll, whatever its schedule or backoff (`jobs run`, `serve`'s
        "run now"). A recurring job keeps its cron: after this run its next run is its next
        regular occurrence. A failed job becomes active with a fresh retry budget;
        a paused, running or archived one is refused."""
        return self._act("run", job_id)

    def _act(self, action: str, job_id: int) -> Job:
        job = self.get_job(job_id)
        return self._transition(
            job_id, actions.changes(action, job, self.clock.now()), ALLOWED[action], DONE[action]
        )

    def jobs_for_action(
        self,
        action: str,
        *,
        brand_id: str,
        job_type: str | None = None,
        name: str | None = None,
    ) -> list[Job]:
        """The brand's jobs `action` (pause, resume or archive) would change now, optionally
        only those of one job type or with one name: what `act_on_jobs` is then given."""
        if action not in BRAND_ACTIONS:
            raise InvalidInput(f"unknown action {action!r}; use one of {', '.join(BRAND_ACTIONS)}")
        self.require_known_brands([check_name(brand_id, "brand") or ""])
        jobs = self.store.list_jobs(brand_id=brand_id, job_type=job_type, statuses=ALLOWED[action])
        return [job for job in jobs if name is None or job.name == name]

    def act_on_jobs(self, action: str, jobs: Sequence[Job]) -> list[Job]:
        """Apply `action` to these jobs in one transaction; returns the jobs it changed (a job
        whose status changed meanwhile so that the action no longer applies is left alone)."""
        now = self.clock.now()
        updates = [(job.id, actions.changes(action, job, now)) for job in jobs]
        return self.store.update_jobs(updates, now, only_if_status=ALLOWED[action])

    def retry_brand_now(self, brand_id: str) -> list[Job]:
        """Re-arm every job of the brand that is in backoff to run at the next poll, in one
        transaction; returns them."""
        self.require_known_brands([check_name(brand_id, "brand") or ""])
        jobs = [job for job in self.jobs_in_backoff(brand_id=brand_id) if applies("re-arm", job)]
        return self.act_on_jobs("re-arm", jobs)

    def edit_job(
        self,
        job_id: int,
        *,
        cron_expression: str | None = None,
        timezone: str | None = None,
        name: str | None = None,
        parameters: dict[str, Any] | None = None,
        max_retries: int | None = None,
        timeout: timedelta | None = None,
        after: Sequence[str] | None = None,
        requires_fresh: Sequence[str] | None = None,
        max_hold: timedelta | None = None,
        allow_unknown: bool = False,
    ) -> Job:
        """Change a job. `parameters` are merged into the existing ones. A new cron expression
        or timezone reschedules the job from now; a cron given to a job that runs on its inputs
        (`datasets`) makes it recurring, its inputs kept (as `add_job` with both). A new name
        takes a default concurrency key along (`name:brand`); a key given explicitly stays.
        `after` / `requires_fresh`, when given, replace the job's inputs of that kind (checked as
        `add_job` checks them). Everything is checked before anything is written: a refused
        edit changes nothing."""
        job = self.get_job(job_id)
        edits_inputs = after is not None or requires_fresh is not None or max_hold is not None
        changes: dict[str, Any] = {}
        if cron_expression is not None or timezone is not None:
            changes.update(self._schedule_changes(job, cron_expression, timezone))
        if name is not None:
            changes["name"] = check_name(name, "job name")
            if (key := renamed_key(job, name)) is not None:
                changes["concurrency_key"] = key
        if parameters:
            merged = {**job.parameters, **parameters}
            check_parameters(merged)
            validate_job_parameters(job.job_type, merged)
            if not edits_inputs and (
                job.inputs or any(other.inputs for other in self.store.list_jobs())
            ):
                # What a job declares it produces may close a cycle through its consumers.
                self._check_inputs(
                    dataclasses.replace(job, parameters=merged), inputs_of(job), allow_unknown=True
                )
            changes["parameters"] = merged
        if max_retries is not None:
            if not 0 <= max_retries <= 100:
                raise InvalidInput("max retries must be between 0 and 100")
            changes["max_retries"] = max_retries
        if timeout is not None:
            changes["timeout_seconds"] = timeout.total_seconds()
        if not changes and not edits_inputs:
            raise InvalidInput("nothing to change: give --cron, --tz, --name, --param, …")
        if edits_inputs:
            inputs, max_hold_seconds = self._edited_inputs(
                job, after, requires_fresh, max_hold, allow_unknown, changes
            )
            edited = self.store.set_job_inputs(job.id, inputs, max_hold_seconds, self.clock.now())
            if edited is None:
                raise NotFound(f"no job with id {job_id}")
            if not changes:
                return edited
        return self._transition(job_id, changes, None, "edited")

    def _schedule_changes(
        self, job: Job, cron_expression: str | None, timezone: str | None
    ) -> dict[str, Any]:
        """The changes `edit --cron/--tz` makes: rescheduled from now; a job that runs on its
        inputs becomes recurring, on its inputs or its cron, whichever comes first."""
        if job.waits_for_data and cron_expression is None:
            raise InvalidInput(
                f"job {job.id} runs on its inputs and has no cron schedule: give --cron to add one"
            )
        if not (job.is_recurring or job.waits_for_data):
            raise InvalidInput(f"job {job.id} is one-time; it has no cron schedule to edit")
        cron = check_cron(cron_expression) if cron_expression else job.cron_expression or ""
        tz = timezone or job.timezone
        zone(tz)
        return {
            "schedule_type": "recurring",
            "cron_expression": cron,
            "timezone": tz,
            "next_run_at": next_occurrence(cron, tz, self.clock.now()),
        }

    def _edited_inputs(
        self,
        job: Job,
        after: Sequence[str] | None,
        requires_fresh: Sequence[str] | None,
        max_hold: timedelta | None,
        allow_unknown: bool,
        changes: dict[str, Any],
    ) -> tuple[list[dict[str, str]], float | None]:
        """The job's inputs and max hold after an edit (with its other `changes`), checked."""
        current = inputs_of(job)
        kept_after = [item.name for item in current if item.kind == "after"]
        kept_fresh = [item.name for item in current if item.kind == "fresh"]
        inputs = parse_inputs(
            job.brand_id,
            kept_after if after is None else after,
            kept_fresh if requires_fresh is None else requires_fresh,
        )
        schedule_type = changes.get("schedule_type", job.schedule_type)
        if schedule_type == "datasets" and not any(item.kind == "after" for item in inputs):
            raise InvalidInput(f"job {job.id} runs on its inputs; it needs at least one --after")
        self._check_inputs(
            dataclasses.replace(job, inputs=[item.to_json() for item in inputs], **changes),
            [item for item in inputs if item not in current],  # only new ones can be unknown
            allow_unknown,
        )
        max_hold_seconds = _hold_seconds(max_hold) if max_hold is not None else job.max_hold_seconds
        return [item.to_json() for item in inputs], max_hold_seconds

    def lineage(self, *, brand_id: BrandFilter = ANY) -> dict[str, Any]:
        """Producers → datasets → consumers (`datasets graph`), of every brand or of one brand
        (and the global jobs)."""
        jobs = self.store.list_jobs(statuses=UNARCHIVED_JOB_STATUSES)
        if brand_id is ANY:
            return lineage(jobs)
        return lineage(jobs, brand_id, every_brand=False)

    def _transition(
        self, job_id: int, changes: dict[str, Any], allowed: tuple[str, ...] | None, verb: str
    ) -> Job:
        job = self.store.update_job(job_id, changes, self.clock.now(), only_if_status=allowed)
        if job is None:
            current = self.get_job(job_id)
            raise InvalidInput(f"job {job_id} is {current.status} and cannot be {verb}")
        return job

    def waiting(self, jobs: list[Job]) -> dict[int, Waiting | HeldWaiting]:
        """Which of these jobs are due but held back by a running run with their key."""
        running = self.store.list_runs(status="running", limit=MAX_RUNNING_SHOWN)
        now = self.clock.now()
        held = self._held_waiting(jobs, None, now)
        return {**held, **waiting_on(jobs, running, now)}

    def _held_waiting(
        self,
        jobs: list[Job],
        thresholds: list[Threshold] | None,
        now: datetime,
        rows: Sequence[DatasetStatus] = (),
    ) -> dict[int, HeldWaiting]:
        """What the held jobs among `jobs` wait on, with their inputs' freshness now (read
        only when some job is held; from `rows` when they hold it, else from the store)."""
        keys = {key for job in jobs if is_held(job) for key in hold_keys(job, job.brand_id)}
        if not keys:
            return {}
        known = self._thresholds(self.store.thresholds() if thresholds is None else thresholds)
        read = {(s.brand_id, s.dataset): s for s in rows}
        freshness_of = {
            (brand, dataset): freshness(
                dataset,
                brand,
                read[(brand, dataset)]
                if (brand, dataset) in read
                else self.store.dataset_status(dataset, brand),
                known,
                now,
            )
            for brand, dataset in keys
        }
        return held_waiting(jobs, freshness_of)

    def jobs_in_backoff(self, *, brand_id: BrandFilter = ANY) -> list[Job]:
        return self.store.list_jobs(brand_id=brand_id, in_backoff=True)

    # -- runs ---------------------------------------------------------------------------
    def list_runs(
        self,
        *,
        job_id: int | None = None,
        brand_id: BrandFilter = ANY,
        status: str | None = None,
        limit: int = 50,
    ) -> list[Run]:
        return self.store.list_runs(job_id=job_id, brand_id=brand_id, status=status, limit=limit)

    def jobs_of(self, runs: Sequence[Run]) -> dict[int, Job]:
        """The jobs of these runs, by id (for a run list that names them)."""
        found = {job_id: self.store.get_job(job_id) for job_id in {run.job_id for run in runs}}
        return {job_id: job for job_id, job in found.items() if job is not None}

    def get_run(self, run_id: int) -> Run:
        run = self.store.get_run(run_id)
        if run is None:
            raise NotFound(f"no run with id {run_id}")
        return run

    def cancel_run(self, run_id: int, by: str | None = None) -> Run:
        """Ask the worker holding a running run to stop it (through the store, so from any
        machine): at its next heartbeat it cancels the handler, and the run ends `cancelled`
        with who asked and when. Not a failure for retries; freshness is left as it was."""
        run = self.get_run(run_id)
        requested = None
        if run_is_live(run):
            requested = self.store.request_cancel(run_id, by or operator_name(), self.clock.now())
        if requested is None:
            run = self.get_run(run_id)
            raise InvalidInput(f"run {run_id} is {run.status}; only a running run can be cancelled")
        return requested

    def cancel_job(self, job_id: int, by: str | None = None) -> Cancelled:
        """Cancel a job's running run (as `cancel_run`), or take its pending one-time run out
        of the queue: the job is archived, its last error saying who cancelled it."""
        job = self.get_job(job_id)
        who = by or operator_name()
        if job.status == "running" and job.last_run_id is not None:
            return Cancelled(job, self.cancel_run(job.last_run_id, who))
        if job.is_recurring or job.status != "active":
            raise InvalidInput(
                f"job {job_id} is {job.status} and has no running or pending one-time run to "
                "cancel (pipectl jobs pause or archive stop a recurring job)"
            )
        changes = {"status": "archived", "last_error": cancel_reason(who)}
        archived = self.store.update_job(
            job_id, changes, self.clock.now(), only_if_status=("active",)
        )
        if archived is None:  # a worker claimed it meanwhile
            return self.cancel_job(job_id, who)
        return Cancelled(archived, None)

    def wait_for_run(self, run_id: int, timeout: timedelta | None = None) -> Waited:
        """Block until the run ends (or `timeout` passes). On PostgreSQL a notification wakes
        the wait; elsewhere it looks again every WAIT_POLL_S."""
        self.get_run(run_id)

        def ended() -> Waited | None:
            run = self.get_run(run_id)
            return None if run_is_live(run) else Waited(run)

        return self._wait(ended, timeout)

    def wait_for_job(self, job_id: int, timeout: timedelta | None = None) -> Waited:
        """Block until the job's current run (or, if none is running, its next run; for a
        finished one-time job, its last run) ends, or `timeout` passes, or the job leaves the
        queue without running."""
        job = self.get_job(job_id)
        before = job.last_run_id
        if before is not None and job.status not in ("active", "paused"):
            # Running, or a one-time job that ran already: that run is the one.
            return self.wait_for_run(before, timeout)

        def ended() -> Waited | None:
            current = self.get_job(job_id)
            if current.last_run_id is not None and current.last_run_id != before:
                run = self.get_run(current.last_run_id)
                return None if run_is_live(run) else Waited(run)
            if current.status in ("paused", "archived", "failed"):
                reason = f"job {job_id} is {current.status}"
                if current.last_error:
                    reason += f": {current.last_error}"
                return Waited(None, reason=reason)
            return None

        return self._wait(ended, timeout)

    def follow_run(
        self, run_id: int, on_lines: Callable[[list[str]], None], *, poll_s: float = FOLLOW_POLL_S
    ) -> Run:
        """Pass a running run's log lines to `on_lines` as its worker writes them (at each
        heartbeat), each line once, until the run ends; return the ended run. It looks every
        `poll_s`; on PostgreSQL the run's end wakes it at once."""
        seen = 0
        listen = self._run_end_listener()
        while True:
            run = self.get_run(run_id)
            lines, seen = lines_after(run.logs, seen)
            if lines:
                on_lines(lines)
            if run.status != "running":
                return run
            self._pause(listen, poll_s)

    def _run_end_listener(self) -> Callable[[float], object] | None:
        """The store's wait for a run's end, listening from now on; None where it has none."""
        listening = listener(self.store)
        notified = listening.wait_for_run_end if listening is not None else None
        if notified is not None:
            notified(0)  # listen before the first look, so no ending slips between the two
        return notified

    def _pause(self, notified: Callable[[float], object] | None, seconds: float) -> None:
        """Wait `seconds`, or less when a run ends (where the store notifies)."""
        try:
            if notified is None:
                raise StoreUnavailable("no notifications")
            notified(seconds)
        except StoreUnavailable:  # the listener is reopened by the next call
            self.clock.sleep(min(seconds, WAIT_POLL_S))

    def _wait(self, ended: Callable[[], Waited | None], timeout: timedelta | None) -> Waited:
        notified = self._run_end_listener()
        deadline = None if timeout is None else self.clock.monotonic() + timeout.total_seconds()
        while (done := ended()) is None:
            remaining = WAIT_RECHECK_S if deadline is None else deadline - self.clock.monotonic()
            if remaining <= 0:
                return Waited(None, timed_out=True)
            self._pause(notified, min(remaining, WAIT_RECHECK_S))
        return done

    def stuck_runs(self) -> list[Claim]:
        """Running runs the next sweep would recover."""
        return find_stuck(
            self.store, self.clock.now(), self.settings.stuck_after, self.settings.start_grace
        )

    def recover(
        self, stuck_after: timedelta | None = None, *, dry_run: bool = False
    ) -> list[Claim]:
        """End stuck runs and send their jobs through the retry rule. Stuck: no heartbeat for
        `stuck_after`, or no first heartbeat within the start grace. An explicit `stuck_after`
        (an operator's `recover --stuck-after`) applies to both."""
        return recover_stuck(
            self.store,
            self.clock.now(),
            stuck_after or self.settings.stuck_after,
            stuck_after or self.settings.start_grace,
            dry_run=dry_run,
        )

    # -- retention ----------------------------------------------------------------------
    def prune_runs(
        self, older_than: timedelta, *, keep_last: int = 1, dry_run: bool = False
    ) -> int:
        """Delete runs that finished more than `older_than` ago, in batches — never a running
        run, never one of a job's newest `keep_last`. Returns how many (would) go."""
        if keep_last < 1:
            raise InvalidInput("--keep-last must be at least 1: a job's latest run always stays")
        cutoff = self.clock.now() - older_than
        if dry_run:
            return self.store.count_prunable_runs(cutoff, keep_last)
        return retention.prune_runs(self.store, cutoff, keep_last)

    def purge_archived_jobs(self, older_than: timedelta, *, dry_run: bool = False) -> int:
        """Delete archived jobs last changed more than `older_than` ago, with their runs."""
        cutoff = self.clock.now() - older_than
        if dry_run:
            return self.store.count_purgeable_jobs(cutoff)
        return retention.purge_archived_jobs(self.store, cutoff)

    # -- freshness ----------------------------------------------------------------------
    def set_threshold(
        self,
        dataset: str,
        warn_after: timedelta,
        error_after: timedelta,
        *,
        brand_id: str | None = None,
    ) -> Threshold:
        check_name(dataset, "dataset")
        check_name(brand_id, "brand")
        if error_after < warn_after:
            raise InvalidInput("--error-after must not be shorter than --warn-after")
        threshold = Threshold(dataset, brand_id, warn_after, error_after)
        self.store.set_threshold(threshold, self.clock.now())
        return threshold

    def _thresholds(self, thresholds: list[Threshold]) -> Thresholds:
        """The store's thresholds, over the configured defaults."""
        return Thresholds(thresholds, (self.settings.warn_after, self.settings.error_after))

    def freshness(self, dataset: str, brand_id: str | None = None) -> Freshness:
        """Is `dataset` for `brand_id` (None: global) fresh, and since when?"""
        status = self.store.dataset_status(dataset, brand_id)
        last_jobs = self._last_jobs([status] if status else [], [])
        return freshness(
            dataset,
            brand_id,
            status,
            self._thresholds(self.store.thresholds()),
            self.clock.now(),
            last_jobs.get(status.last_run_id)
            if status and status.last_run_id is not None
            else None,
        )

    def datasets(self, *, brand_id: BrandFilter = ANY) -> list[Freshness]:
        jobs = self.store.list_jobs(brand_id=brand_id, statuses=LIVE_JOB_STATUSES)
        if isinstance(brand_id, str):  # global jobs may declare datasets for this brand
            jobs += self.store.list_jobs(brand_id=None, statuses=LIVE_JOB_STATUSES)
        statuses = self.store.dataset_statuses(brand_id=brand_id)
        report = freshness_report(
            statuses,
            jobs,
            self._thresholds(self.store.thresholds()),
            self.clock.now(),
            self._last_jobs([s for s in statuses if s.retired_at is None], jobs),
        )
        if brand_id is not ANY:
            report = [item for item in report if item.brand_id == brand_id]
        return report

    def _last_jobs(self, statuses: list[DatasetStatus], jobs: list[Job]) -> dict[int, int]:
        """The job of the run that last attempted each of these dataset rows, by run id: most
        are their job's last run (known from `jobs`); the others are read, in one call."""
        job_of = {job.last_run_id: job.id for job in jobs if job.last_run_id is not None}
        missing = {s.last_run_id for s in statuses if s.last_run_id is not None} - job_of.keys()
        if missing:
            runs = self.store.runs_by_id(sorted(missing))
            job_of.update({run_id: run.job_id for run_id, run in runs.items()})
        return job_of

    def retired_datasets(self, *, brand_id: BrandFilter = ANY) -> list[DatasetStatus]:
        """The retired (brand, dataset) rows, history kept, out of the gate and `status`."""
        return [s for s in self.store.dataset_statuses(brand_id=brand_id) if s.retired_at]

    # -- the whole picture --------------------------------------------------------------
    def status(self, *, brand_id: BrandFilter = ANY) -> StatusReport:
        now = self.clock.now()
        heartbeat_before, started_before = stuck_cutoffs(
            now, self.settings.stuck_after, self.settings.start_grace
        )
        seen = self.store.status_snapshot(
            brand_id=brand_id,
            statuses=UNARCHIVED_JOB_STATUSES,
            heartbeat_before=heartbeat_before,
            started_before=started_before,
            running_limit=MAX_RUNNING_SHOWN,
        )
        declaring = seen.jobs
        if isinstance(brand_id, str):
            # Global jobs may declare datasets for this brand.
            declaring = [
                *seen.jobs,
                *self.store.list_jobs(brand_id=None, statuses=LIVE_JOB_STATUSES),
            ]
        report = freshness_report(
            seen.datasets,
            declaring,
            self._thresholds(seen.thresholds),
            now,
            self._last_jobs([s for s in seen.datasets if s.retired_at is None], seen.jobs),
        )
        retired = frozenset((d.brand_id, d.dataset) for d in seen.datasets if d.retired_at)
        if brand_id is not ANY:
            report = [item for item in report if item.brand_id == brand_id]
        return StatusReport(
            now=now,
            datasets=report,
            jobs=seen.jobs,
            last_runs=seen.last_runs,
            stuck_runs=[
                claim
                for claim in seen.stuck_runs
                if brand_id is ANY or claim.job.brand_id == brand_id
            ],
            workers=seen.workers,
            worker_stale_after=self.settings.worker_stale_after,
            waiting={
                **self._held_waiting(seen.jobs, seen.thresholds, now, seen.datasets),
                **waiting_on(seen.jobs, seen.running_runs, now),
            },
            retired=retired,
        )

    # -- retiring datasets and brands ---------------------------------------------------
    def retire_dataset(
        self, dataset: str, *, brand_id: BrandFilter = ANY
    ) -> list[tuple[str | None, str]]:
        """Take `dataset` out of the gate and `status`, keeping its history: for one brand
        (None: the global dataset) or, by default, wherever it counts. Returns the retired
        (brand, dataset) pairs."""
        check_name(dataset, "dataset")
        if isinstance(brand_id, str):
            self.require_known_brands([brand_id])
        report = self.status(brand_id=brand_id)
        keys = sorted(
            {(d.brand_id, d.dataset) for d in report.datasets if d.dataset == dataset},
            key=lambda key: (key[0] or "", key[1]),
        )
        where = f" for brand {brand_id}" if isinstance(brand_id, str) else ""
        if not keys:
            if any(name == dataset for _, name in report.retired):
                raise InvalidInput(f"dataset {dataset!r} is already retired{where}")
            raise unknown_name("dataset", dataset, {d.dataset for d in report.datasets}, where)
        now = self.clock.now()
        self.store.set_datasets_retired(keys, now, now)
        return keys

    def restore_dataset(
        self, dataset: str, *, brand_id: BrandFilter = ANY
    ) -> list[tuple[str | None, str]]:
        """Put a retired dataset back in the gate (for one brand, or wherever it is retired)."""
        check_name(dataset, "dataset")
        if isinstance(brand_id, str):
            self.require_known_brands([brand_id])
        statuses = self.store.dataset_statuses(brand_id=brand_id)
        keys = [(s.brand_id, s.dataset) for s in statuses if s.dataset == dataset and s.retired_at]
        if not keys:
            where = f" for brand {brand_id}" if isinstance(brand_id, str) else ""
            raise InvalidInput(f"dataset {dataset!r} is not retired{where}")
        self.store.set_datasets_retired(keys, None, self.clock.now())
        return keys

    def unset_threshold(self, dataset: str, *, brand_id: str | None = None) -> None:
        """Remove the thresholds of `dataset` for `brand_id` (None: the dataset-wide one)."""
        check_name(dataset, "dataset")
        if not self.store.delete_threshold(dataset, brand_id):
            where = f" for brand {brand_id}" if brand_id else " (dataset-wide)"
            raise NotFound(f"no threshold for {dataset!r}{where}")

    def brands(self) -> list[BrandSummary]:
        """Every known brand with its live jobs, counted and failing datasets, and retirement."""
        report = self.status()
        retired = {r.brand_id: r.retired_at for r in self.store.brand_retirements()}
        summaries = []
        for brand in self.store.brand_ids():
            datasets = [d for d in report.datasets if d.brand_id == brand]
            summaries.append(
                BrandSummary(
                    brand_id=brand,
                    live_jobs=sum(1 for j in report.jobs if j.brand_id == brand),
                    datasets=len(datasets),
                    failing=sum(1 for d in datasets if d.state in ("stale", "never")),
                    retired_at=retired.get(brand),
                )
            )
        return summaries

    def brand_retirement_plan(self, brand_id: str) -> BrandPlan:
        """What `retire_brand` would do now."""
        self.require_known_brands([brand_id])
        if any(r.brand_id == brand_id for r in self.store.brand_retirements()):
            raise InvalidInput(f"brand {brand_id!r} is already retired (pipectl brands restore)")
        jobs = self.store.list_jobs(brand_id=brand_id, statuses=UNARCHIVED_JOB_STATUSES)
        report = self.status(brand_id=brand_id)
        return BrandPlan(brand_id, jobs, sorted({d.dataset for d in report.datasets}))

    def retire_brand(self, plan: BrandPlan) -> list[Job]:
        """Offboard a brand in one transaction: archive its jobs and retire its datasets.
        Returns the jobs archived."""
        return self.store.retire_brand(plan.brand_id, plan.datasets, self.clock.now())

    def restore_brand(self, brand_id: str) -> BrandRetirement:
        """Undo `retire_brand`: each job it archived gets its status back (a recurring job
        continues at its next regular time, without catch-up) and its datasets return."""
        found = {r.brand_id: r for r in self.store.brand_retirements()}.get(brand_id)
        if found is None:
            self.require_known_brands([brand_id])
            raise InvalidInput(f"brand {brand_id!r} is not retired")
        now = self.clock.now()
        changes: list[tuple[int, str, datetime | None]] = []
        for entry in found.jobs:
            job = self.store.get_job(entry["id"])
            if job is None:
                continue
            status = "active" if entry["status"] == "running" else entry["status"]
            next_run_at = job.next_run_at
            if status == "active" and job.is_recurring and job.cron_expression:
                next_run_at = next_occurrence(job.cron_expression, job.timezone, now)
            changes.append((job.id, status, next_run_at))
        if not self.store.restore_brand(brand_id, changes, now):
            raise InvalidInput(f"brand {brand_id!r} is not retired")
        return found

    # -- the readiness gate -------------------------------------------------------------
    def require_known_brands(self, brands: Sequence[str]) -> None:
        """InvalidInput naming the first brand that no job, dataset row or threshold ever
        named, with the known brands, closest match first."""
        if brands:
            check_brands(brands, self.store.brand_ids())

    def gate_status(self, brands: Sequence[str] = (), datasets: Sequence[str] = ()) -> StatusReport:
        """`status` narrowed to these brands (none: every brand and global) and datasets (none:
        all that count); an unknown brand or dataset is InvalidInput."""
        report = self.status(brand_id=brands[0] if len(brands) == 1 else ANY)
        # A brand with a live job or a retired dataset row in the report is known; only the
        # others need the list of every brand (with 10,000 brands, it costs more than the report).
        seen = {job.brand_id for job in report.jobs} | {brand for brand, _ in report.retired}
        self.require_known_brands([brand for brand in brands if brand not in seen])
        if brands:
            retired = {r.brand_id for r in self.store.brand_retirements()} & set(brands)
            if retired:
                brand = sorted(retired)[0]
                raise InvalidInput(
                    f"brand {brand!r} is retired; it is not in the gate "
                    f"(pipectl brands restore {brand})"
                )
        if len(brands) > 1:
            chosen = set(brands)
            report = dataclasses.replace(
                report,
                datasets=[d for d in report.datasets if d.brand_id in chosen],
                jobs=[j for j in report.jobs if j.brand_id in chosen],
                stuck_runs=[c for c in report.stuck_runs if c.job.brand_id in chosen],
                retired=frozenset(k for k in report.retired if k[0] in chosen),
            )
        report = dataclasses.replace(report, selected_brands=tuple(brands))
        if datasets:
            check_datasets(
                datasets,
                list(brands),
                ((d.brand_id, d.dataset) for d in report.datasets),
                report.retired,
            )
            wanted = set(datasets)
            report = dataclasses.replace(
                report, datasets=[d for d in report.datasets if d.dataset in wanted]
            )
        return report

    def check(
        self,
        brand_id: str | Sequence[str] | None = None,
        datasets: str | Sequence[str] | None = None,
        strict: bool = False,
        require_worker: bool = False,
    ) -> GateResult:
        """The readiness gate: `ok` unless a selected dataset is `stale` or `never` (or `warn`,
        when `strict`), or, with `require_worker`, no worker is live while jobs are due or a
        run is stuck. `brand_id`: one brand or several (None: every brand and global);
        `datasets`: one or several (None: every one that counts). Unknown names raise
        InvalidInput."""
        brands = [brand_id] if isinstance(brand_id, str) else list(brand_id or [])
        wanted = [datasets] if isinstance(datasets, str) else list(datasets or [])
        report = self.gate_status(brands, wanted)
        return report.gate(strict=strict, require_worker=require_worker)


def _hold_seconds(max_hold: timedelta | None) -> float | None:
    if max_hold is None:
        return None
    if max_hold <= timedelta(0):
        raise InvalidInput("--max-hold must be longer than 0")
    return max_hold.total_seconds()
