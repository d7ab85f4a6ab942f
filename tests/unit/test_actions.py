"""The operator's job transitions as pure rules (pipectl.actions), and what a cancelled run
writes (pipectl.lifecycle)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import factories
import pytest

from pipectl import actions
from pipectl.lifecycle import after_cancel, cancelled_result
from pipectl.models import Job

NOW = datetime(2026, 11, 29, 12, 7, tzinfo=UTC)


def job(**overrides: Any) -> Job:
    return factories.make_job(
        **{
            "retry_count": 2,
            "next_run_at": datetime(2026, 11, 29, 12, 0, tzinfo=UTC),
            "created_at": NOW,
            **overrides,
        }
    )


@pytest.mark.parametrize(
    ("action", "status", "applies"),
    [
        ("pause", "active", True),
        ("pause", "running", True),
        ("pause", "paused", False),
        ("pause", "archived", False),
        ("resume", "paused", True),
        ("resume", "active", False),
        ("archive", "failed", True),
        ("archive", "archived", False),
        ("re-arm", "failed", True),
        ("re-arm", "running", False),
        ("re-arm", "paused", False),
    ],
)
def test_which_statuses_each_action_applies_to(action: str, status: str, applies: bool) -> None:
    assert actions.applies(action, job(status=status)) is applies


def test_resume_moves_a_recurring_job_to_its_next_regular_time_without_catch_up() -> None:
    assert actions.changes("resume", job(status="paused"), NOW) == {
        "status": "active",
        "next_run_at": datetime(2026, 11, 30, 3, 0, tzinfo=UTC),
    }
    one_time = job(status="paused", schedule_type="one_time", cron_expression=None)
    assert actions.changes("resume", one_time, NOW) == {"status": "active"}


def test_rearm_keeps_the_retry_count_unless_the_job_failed() -> None:
    assert actions.changes("re-arm", job(), NOW) == {"next_run_at": NOW}
    failed = replace(job(), status="failed")
    assert actions.changes("re-arm", failed, NOW) == {
        "next_run_at": NOW,
        "status": "active",
        "retry_count": 0,
    }


def test_pause_and_archive_only_set_the_status() -> None:
    assert actions.changes("pause", job(), NOW) == {"status": "paused"}
    assert actions.changes("archive", job(), NOW) == {"status": "archived"}
    with pytest.raises(ValueError):
        actions.changes("explode", job(), NOW)


def test_run_now_reactivates_a_finished_job_with_a_fresh_budget() -> None:
    assert actions.changes("run", job(), NOW) == {"next_run_at": NOW}
    assert actions.changes("run", job(status="completed"), NOW) == {
        "next_run_at": NOW,
        "status": "active",
        "retry_count": 0,
    }
    assert not actions.applies("run", job(status="paused"))
    assert not actions.applies("run", job(status="running"))


def test_an_identical_enqueue_brings_forward_only_a_pending_job_due_later() -> None:
    due_at = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert actions.brings_forward(job(next_run_at=NOW), due_at)
    assert not actions.brings_forward(job(next_run_at=due_at), due_at)
    assert not actions.brings_forward(job(next_run_at=due_at), NOW)
    assert not actions.brings_forward(job(status="running", next_run_at=NOW), due_at)


def test_a_cancelled_run_is_neither_a_success_nor_a_failure() -> None:
    recurring = job(retry_count=2, last_error="boom")
    result = cancelled_result(recurring, NOW, "ops@host", logs="partial")
    assert (result.status, result.error_message) == ("cancelled", "cancelled by ops@host")
    assert result.datasets == []  # freshness stays as it was
    assert result.logs == "partial"
    update = result.job_update
    assert (update.status, update.retry_count, update.last_error) == ("active", 2, "boom")
    assert update.next_run_at == datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # back on its cron

    one_time = job(schedule_type="one_time", cron_expression=None, retry_count=1)
    update = after_cancel(one_time, NOW, "cancelled by ops@host")
    assert (update.status, update.next_run_at, update.retry_count) == ("archived", None, 1)
    assert update.last_error == "cancelled by ops@host"
