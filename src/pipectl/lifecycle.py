"""The run lifecycle: what a success, a failure, a recovery and a cancellation do to a run and its
job, and the named rules every other place asks (due, in backoff, retries exhausted, stuck)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pipectl.freshness import declared_with_brands
from pipectl.models import (
    LIVE_JOB_STATUSES,
    LIVE_RUN_STATUSES,
    Claim,
    DatasetOutcome,
    Job,
    JobStatus,
    JobUpdate,
    Run,
    RunResult,
    Step,
)
from pipectl.parsing import format_duration
from pipectl.schedule import next_occurrence

if TYPE_CHECKING:
    from pipectl.store.base import Store

# -- statuses and transitions ------------------------------------------------------------------
# The status sets (LIVE_JOB_STATUSES, UNARCHIVED_JOB_STATUSES, LIVE_RUN_STATUSES,
# ENDED_RUN_STATUSES) are declared in models.py beside the statuses themselves, since freshness
# needs them too and this module imports freshness.

Event = Literal["claim", "success", "failure", "cancellation", "recovery"]

# The transitions the engine makes, by event: the job statuses it may find and those it may leave.
# A run's outcome changes the job's status only while the job is still `running` (an operator who
# paused or archived it meanwhile keeps that status); an operator's own transitions are
# actions.ALLOWED. A recovery is a failure, or a cancellation when one was asked for.
JOB_TRANSITIONS: dict[Event, tuple[tuple[JobStatus, ...], tuple[JobStatus, ...]]] = {
    "claim": (("active",), ("running",)),
    "success": (("running",), ("active", "archived")),
    "failure": (("running",), ("active", "failed")),
    "cancellation": (("running",), ("active", "archived")),
    "recovery": (("running",), ("active", "failed", "archived")),
}


def run_is_live(run: Run) -> bool:
    return run.status in LIVE_RUN_STATUSES


def is_due(job: Job, now: datetime) -> bool:
    """Waiting to be claimed: active, and its next run time has come."""
    return job.status == "active" and job.next_run_at is not None and job.next_run_at <= now


# -- retries ----------------------------------------------------------------------------------


def in_backoff(job: Job) -> bool:
    """A failed run left the live job to try again (also the store's `in_backoff` filter, which
    tests/store/test_lifecycle_sql.py checks against this)."""
    return job.retry_count > 0 and job.status in LIVE_JOB_STATUSES


def retries_exhausted(job: Job) -> bool:
    """The job's current attempt is its last: if it fails, no retry follows."""
    return job.retry_count >= job.max_retries


def attempt(job: Job) -> int:
    """The attempt the job's next (or current) run is, from 1."""
    return job.retry_count + 1


def attempts_allowed(job: Job) -> int:
    return job.max_retries + 1


def after_last_retry(job: Job) -> str:
    """What happens when the job's last retry fails, in an operator's words."""
    if job.waits_for_data:
        return "it waits for its inputs again"
    return "back to its cron schedule" if job.is_recurring else "the job ends failed"


def retry_delay(retry_count: int, base: timedelta, cap: timedelta) -> timedelta:
    """Delay before retry number `retry_count` (1-based): base · 2^(retry_count−1), capped."""
    if retry_count < 1:
        raise ValueError("retry_count starts at 1")
    # In float seconds: base · 2^k overflows timedelta long before it could beat the cap.
    seconds = base.total_seconds() * 2.0 ** min(retry_count - 1, 64)
    return min(timedelta(seconds=min(seconds, cap.total_seconds())), cap)


# -- what each ending does to the job ---------------------------------------------------------


def after_success(job: Job, now: datetime) -> JobUpdate:
    """A success resets the retry count; a one-time job is archived, a recurring one goes on, a
    data-triggered one waits for its inputs again."""
    if job.waits_for_data:
        return JobUpdate("active", None, 0, None, job.revision)
    if job.is_recurring:
        return JobUpdate(
            status="active",
            next_run_at=next_occurrence(job.cron_expression or "", job.timezone, now),
            retry_count=0,
            last_error=None,
            revision=job.revision,
        )
    return JobUpdate("archived", None, 0, None, job.revision)


def after_failure(job: Job, now: datetime, error: str) -> JobUpdate:
    """The retry rule. While retries remain, run again after the backoff delay (never later than
    the next regular occurrence); once exhausted, a recurring job resets and returns to its cron
    schedule and a one-time job ends `failed`, its retry count the failures in a row."""
    retry_count = job.retry_count + 1
    regular = (
        next_occurrence(job.cron_expression or "", job.timezone, now) if job.is_recurring else None
    )
    if not retries_exhausted(job):
        delay = retry_delay(
            retry_count,
            timedelta(seconds=job.retry_base_seconds),
            timedelta(seconds=job.retry_cap_seconds),
        )
        next_run_at = now + delay
        if regular is not None and regular < next_run_at:
            next_run_at = regular
        return JobUpdate("active", next_run_at, retry_count, error, job.revision)
    if regular is not None or job.waits_for_data:
        return JobUpdate("active", regular, 0, error, job.revision)
    return JobUpdate("failed", None, retry_count, error, job.revision)


def after_cancel(job: Job, now: datetime, reason: str) -> JobUpdate:
    """An operator's cancellation is neither a success nor a failure: the retry count stands, a
    recurring job goes back to its cron schedule (a data-triggered one to waiting for its
    inputs) and a one-time job leaves the queue."""
    if job.waits_for_data:
        return JobUpdate("active", None, job.retry_count, job.last_error, job.revision)
    if job.is_recurring:
        return JobUpdate(
            status="active",
            next_run_at=next_occurrence(job.cron_expression or "", job.timezone, now),
            retry_count=job.retry_count,
            last_error=job.last_error,
            revision=job.revision,
        )
    return JobUpdate("archived", None, job.retry_count, reason, job.revision)


def job_update_after(job: Job, now: datetime, status: str, error: str | None) -> JobUpdate:
    """The job's next state after a run that ended at `now` with `status` (`error` says why it
    failed or who cancelled it), computed from `job`: the job as claimed, or as an operator
    edited it during the run."""
    if status == "cancelled":
        return after_cancel(job, now, error or "cancelled")
    return after_success(job, now) if error is None else after_failure(job, now, error)


def settle_edited_job(store: Store, job_id: int, run_id: int, result: RunResult) -> None:
    """The run is recorded (Recorded.EDITED), but its job was edited during it: compute the job's
    next state again from the job as it is now, and write it guarded by that revision; again if
    the job is edited once more meanwhile. Nothing to do once a later run owns the job."""
    while (job := store.get_job(job_id)) is not None and job.last_run_id == run_id:
        update = job_update_after(job, result.finished_at, result.status, result.error_message)
        if store.reapply_job_update(job_id, run_id, result.job_update, update, result.finished_at):
            return


# -- what a run records -----------------------------------------------------------------------


def run_result(
    job: Job,
    now: datetime,
    *,
    error: str | None,
    steps: list[Step] | None = None,
    logs: str = "",
) -> RunResult:
    """A run that succeeded or failed: it failed if the handler raised (`error`) or a fatal step
    failed.

    Datasets: each step's datasets take that step's outcome (a failed non-fatal thumbnails step
    leaves performance fresh); declared datasets no step reported take the run's outcome (for
    the brands a global job's declaration names, if it names any)."""
    steps = steps or []
    if error is None:
        failed_fatal = next((s for s in steps if s["status"] == "failed" and s["fatal"]), None)
        if failed_fatal is not None:
            error = f"step {failed_fatal['name']} failed: {failed_fatal['error']}"
    succeeded = error is None

    outcomes: dict[tuple[str | None, str], DatasetOutcome] = {}
    for step in steps:
        ok = step["status"] == "completed"
        for dataset in step["datasets"]:
            outcomes[(step["brand_id"], dataset)] = DatasetOutcome(
                step["brand_id"],
                dataset,
                ok,
                None if ok else f"step {step['name']}: {step['error']}",
            )
    covered = {dataset for (_, dataset) in outcomes}
    for dataset, brands in declared_with_brands(job):
        if dataset in covered:
            continue
        # A global job that names the brands it refreshes records its outcome for those.
        for brand in brands if job.brand_id is None and brands else [job.brand_id]:
            outcomes[(brand, dataset)] = DatasetOutcome(brand, dataset, succeeded, error)

    status: Literal["completed", "failed"] = "completed" if succeeded else "failed"
    return RunResult(
        status=status,
        finished_at=now,
        error_message=error,
        logs=logs,
        steps=steps,
        job_update=job_update_after(job, now, status, error),
        datasets=list(outcomes.values()),
    )


def cancel_reason(by: str) -> str:
    return f"cancelled by {by}"


def cancelled_result(
    job: Job,
    now: datetime,
    by: str,
    *,
    steps: list[Step] | None = None,
    logs: str = "",
) -> RunResult:
    """A run an operator cancelled: it ends `cancelled`, saying who asked, and records no
    dataset outcome (freshness stays as it was)."""
    reason = cancel_reason(by)
    return RunResult(
        status="cancelled",
        finished_at=now,
        error_message=reason,
        logs=logs,
        steps=steps or [],
        job_update=job_update_after(job, now, "cancelled", reason),
        datasets=[],
    )


def recovered_result(claim: Claim, now: datetime) -> RunResult:
    """A stuck run, recovered: it failed (its job goes through the retry rule), or, when an
    operator had asked to cancel it before its worker died, it ends cancelled as asked."""
    by = claim.run.cancel_requested_by
    if by is not None:
        return cancelled_result(claim.job, now, by, logs=claim.run.logs)
    return run_result(claim.job, now, error=stuck_error(claim.run, now), logs=claim.run.logs)


# -- stuck runs -------------------------------------------------------------------------------


def stuck_cutoffs(
    now: datetime, stuck_after: timedelta, start_grace: timedelta
) -> tuple[datetime, datetime]:
    """(heartbeat_before, started_before), the cut-offs `is_stuck` compares a run with; the
    stores take them as they are. The start grace never exceeds stuck_after."""
    return now - stuck_after, now - min(start_grace, stuck_after)


def never_heartbeated(run: Run) -> bool:
    """The claim sets heartbeat_at to started_at; only a heartbeat moves it."""
    return run.heartbeat_at is None or run.heartbeat_at == run.started_at


def is_stuck(run: Run, heartbeat_before: datetime, started_before: datetime) -> bool:
    """A running run is stuck when its worker stopped heartbeating: its last heartbeat is older
    than `heartbeat_before`, or it never sent one and started before `started_before`. The SQL
    states this in each dialect; tests/store/test_lifecycle_sql.py checks them against this."""
    if not run_is_live(run):
        return False
    if run.heartbeat_at is None or never_heartbeated(run):
        return run.started_at < started_before
    return run.heartbeat_at < heartbeat_before


def stuck_error(run: Run, now: datetime) -> str:
    if run.heartbeat_at is None or never_heartbeated(run):
        silence = f"since the run started {format_duration(now - run.started_at)} ago"
    else:
        silence = f"for {format_duration(now - run.heartbeat_at)}"
    return (
        f"stuck: no heartbeat from worker {run.worker_id} {silence} "
        "(the worker died or lost its connection); recovered"
    )
