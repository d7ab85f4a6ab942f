"""What a job does after a run: the retry rule with exponential backoff, and success."""

from __future__ import annotations

from datetime import datetime, timedelta

from pipectl.models import Job, JobUpdate
from pipectl.schedule import next_occurrence


def retry_delay(retry_count: int, base: timedelta, cap: timedelta) -> timedelta:
    """Delay before retry number `retry_count` (1-based): base · 2^(retry_count−1), capped."""
    if retry_count < 1:
        raise ValueError("retry_count starts at 1")
    # In float seconds: base · 2^k overflows timedelta long before it could beat the cap.
    seconds = base.total_seconds() * 2.0 ** min(retry_count - 1, 64)
    return min(timedelta(seconds=min(seconds, cap.total_seconds())), cap)


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
    schedule and a one-time job ends `failed`."""
    retry_count = job.retry_count + 1
    regular = (
        next_occurrence(job.cron_expression or "", job.timezone, now) if job.is_recurring else None
    )
    if retry_count <= job.max_retries:
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


def after_last_retry(job: Job) -> str:
    """What happens when the job's last retry fails, in an operator's words."""
    if job.waits_for_data:
        return "it waits for its inputs again"
    return "back to its cron schedule" if job.is_recurring else "the job ends failed"


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


def in_backoff(job: Job) -> bool:
    """A failed run left the job waiting to try again (the store's in_backoff filter)."""
    return job.retry_count > 0 and job.status in ("active", "running", "paused")
