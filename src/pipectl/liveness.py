"""Which workers are live: the one rule `status`, `doctor` and the metrics share."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from pipectl.models import WorkerInfo
from pipectl.parsing import format_duration


def is_live(worker: WorkerInfo, now: datetime, stale_after: timedelta) -> bool:
    """Live: not stopped, and seen within `stale_after`. A clean stop counts at once; a worker
    that died without one (kill -9, a lost machine) ages out when its heartbeats stop."""
    return worker.stopped_at is None and now - worker.last_seen_at <= stale_after


def live_workers(
    workers: Iterable[WorkerInfo], now: datetime, stale_after: timedelta
) -> list[WorkerInfo]:
    return [w for w in workers if is_live(w, now, stale_after)]


def last_sign_of_life(workers: list[WorkerInfo], now: datetime) -> str:
    """How the most recently seen worker ended, e.g. 'the last stopped 5s ago'."""
    last = max(workers, key=lambda w: w.last_seen_at)
    if last.stopped_at is not None:
        return f"the last stopped {format_duration(now - last.stopped_at)} ago"
    return f"the last was seen {format_duration(now - last.last_seen_at)} ago"
