"""Plain-text phrases shared by the CLI and the web view: times relative to now, a job's
schedule and its retry state."""

from __future__ import annotations

from datetime import datetime

from pipectl.lifecycle import attempt, attempts_allowed
from pipectl.models import Job
from pipectl.parsing import format_duration
from pipectl.triggers import after_inputs


def ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "—"
    delta = now - when
    return "just now" if abs(delta.total_seconds()) < 1 else f"{format_duration(delta)} ago"


def until(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "—"
    delta = when - now
    if delta.total_seconds() <= 0:
        return "due now"
    return f"in {format_duration(delta)}"


def stamp(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else "—"


def schedule_text(job: Job, *, stacked: bool = False) -> str:
    """`0 3 * * * Europe/Berlin`; `stacked`: the timezone on a line of its own."""
    after = ", ".join(item.name for item in after_inputs(job))
    if job.is_recurring:
        cron = f"{job.cron_expression}{chr(10) if stacked else ' '}{job.timezone}"
        return f"{cron}{chr(10) if stacked else ' '}or after {after}" if after else cron
    if job.waits_for_data:
        return f"after {after}"
    return "one-time"


def retry_text(job: Job) -> str:
    """The retry state in the words of `pipectl retry`: the attempt coming next, of all."""
    if job.retry_count == 0:
        return ""
    if job.status == "failed":  # its retry count is then the failures in a row
        return f"failed after {job.retry_count} attempt{'s' * (job.retry_count != 1)}"
    return f"attempt {attempt(job)} of {attempts_allowed(job)}"
