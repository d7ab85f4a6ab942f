"""The operator's job transitions as pure rules: which statuses each action applies to, and
what it changes on a job. A single job (`jobs pause 12`) and a brand's jobs (`jobs pause --brand
acme`) go through the same rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipectl.models import UNARCHIVED_JOB_STATUSES, Job
from pipectl.schedule import next_occurrence

# The statuses a job must have for each action to apply to it.
ALLOWED: dict[str, tuple[str, ...]] = {
    "pause": ("active", "running"),
    "resume": ("paused",),
    "archive": UNARCHIVED_JOB_STATUSES,
    "re-arm": ("active", "failed"),
    "run": ("active", "failed"),
}
# How a message says the action was done: "job 12 is paused and cannot be resumed".
DONE: dict[str, str] = {
    "pause": "paused",
    "resume": "resumed",
    "archive": "archived",
    "re-arm": "re-armed",
    "run": "run now",
}
BRAND_ACTIONS = ("pause", "resume", "archive")


def applies(action: str, job: Job) -> bool:
    return job.status in ALLOWED[action]


def changes(action: str, job: Job, now: datetime) -> dict[str, Any]:
    """The fields `action` sets on `job` at `now`."""
    if action == "pause":
        return {"status": "paused"}
    if action == "archive":
        return {"status": "archived"}
    if action == "resume":
        resumed: dict[str, Any] = {"status": "active"}
        if job.is_recurring and job.cron_expression:
            # No catch-up for a deliberate pause: the next run is the next regular occurrence.
            resumed["next_run_at"] = next_occurrence(job.cron_expression, job.timezone, now)
        return resumed
    if action == "re-arm":
        # A failed one-time job gets a fresh retry budget; a job in backoff keeps its count.
        rearmed: dict[str, Any] = {"next_run_at": now}
        if job.status == "failed":
            rearmed.update(status="active", retry_count=0)
        return rearmed
    if action == "run":
        # Whatever its schedule or backoff; a recurring job returns to its cron after the run.
        run: dict[str, Any] = {"next_run_at": now}
        if job.status != "active":
            run.update(status="active", retry_count=0)
        return run
    raise ValueError(f"unknown action {action!r}")


def brings_forward(pending: Job, run_at: datetime) -> bool:
    """Whether enqueueing a job identical to `pending` (still waiting to run) moves it to
    `run_at`: a manual sync must mean then, not at the pending job's later retry."""
    return (
        pending.status == "active"
        and pending.next_run_at is not None
        and (pending.next_run_at > run_at)
    )
