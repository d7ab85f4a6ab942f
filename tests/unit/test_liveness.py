"""The one rule for a live worker: not stopped, and seen within worker_stale_after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipectl.liveness import is_live, last_sign_of_life, live_workers
from pipectl.models import WorkerInfo

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
STALE_AFTER = timedelta(minutes=2)


def worker(seen_ago: timedelta, stopped: bool = False, name: str = "w") -> WorkerInfo:
    seen = NOW - seen_ago
    return WorkerInfo(name, "h", 1, seen, seen, "1", seen if stopped else None)


@pytest.mark.parametrize(
    ("seen_ago", "stopped", "expected"),
    [
        (timedelta(0), False, True),
        (STALE_AFTER, False, True),  # the boundary still counts
        (STALE_AFTER + timedelta(seconds=1), False, False),  # killed: aged out
        (timedelta(0), True, False),  # stopped a moment ago: out at once
        (STALE_AFTER * 10, True, False),
    ],
)
def test_is_live(seen_ago: timedelta, stopped: bool, expected: bool) -> None:
    assert is_live(worker(seen_ago, stopped), NOW, STALE_AFTER) is expected


def test_live_workers_keeps_the_order_and_drops_the_rest() -> None:
    workers = [
        worker(timedelta(seconds=1), name="a"),
        worker(timedelta(seconds=2), True, name="b"),
        worker(timedelta(seconds=3), name="c"),
    ]
    assert [w.id for w in live_workers(workers, NOW, STALE_AFTER)] == ["a", "c"]


def test_last_sign_of_life_names_a_stop_or_a_last_sighting() -> None:
    stopped = worker(timedelta(seconds=5), True, name="b")
    seen = worker(timedelta(minutes=10), name="a")
    assert last_sign_of_life([seen, stopped], NOW) == "the last stopped 5s ago"
    assert last_sign_of_life([seen], NOW) == "the last was seen 10m ago"
