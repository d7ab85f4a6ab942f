"""How a finished (or abandoned) run turns into a RunResult: run status, job update, datasets."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pipectl.freshness import declared_with_brands
from pipectl.models import DatasetOutcome, Job, JobUpdate, RunResult, Step
from pipectl.retry import after_cancel, after_failure, after_success

if TYPE_CHECKING:
    from pipectl.store.base import Store


def run_result(
    job: Job,
    now: datetime,
    *,
    error: str | None,
    steps: list[Step] | None = None,
    logs: str = "",
) -> RunResult:
    """The run failed if the handler raised (`error`) or a fatal step failed.

    Datasets: each step's datasets take that step's outcome (a failed non-fatal thumbnails step
    leaves performance fresh); declared datasets no step reported take the run's outcome (for the brands a global job's
    declaration names, if it names any)."""
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

    return RunResult(
        status="completed" if succeeded else "failed",
        finished_at=now,
        error_message=error,
        logs=logs,
        steps=steps,
        job_update=job_update_after(job, now, "completed" if succeeded else "failed", error),
        datasets=list(outcomes.values()),
    )


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
