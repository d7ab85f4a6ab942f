"""The lifecycle's named rules, and the places that must call them rather than restate them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import product
from typing import Any

import factories
import pytest

from pipectl.alerts import run_events
from pipectl.cli.views import backoff_json, retry_text
from pipectl.client import StatusReport
from pipectl.lifecycle import (
    JOB_TRANSITIONS,
    after_cancel,
    after_failure,
    after_success,
    attempt,
    in_backoff,
    is_due,
    is_stuck,
    recovered_result,
    retries_exhausted,
    stuck_cutoffs,
)
from pipectl.metrics import StoreCollector
from pipectl.models import JOB_STATUSES, Claim, Job, Run

NOW = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)


def make_job(**overrides: Any) -> Job:
    """A recurring daily 03:00 UTC job, running; override any field."""
    return factories.make_job(
        **{"next_run_at": NOW, "created_at": NOW, "status": "running", **overrides}
    )


def one_time(**overrides: Any) -> Job:
    return make_job(schedule_type="one_time", cron_expression=None, **overrides)


def run(**overrides: Any) -> Run:
    values: dict[str, Any] = dict(
        id=7,
        job_id=1,
        attempt=1,
        status="running",
        started_at=NOW - timedelta(minutes=10),
        finished_at=None,
        heartbeat_at=NOW - timedelta(minutes=10),
        worker_id="w1",
        lease_token="t",
        error_message=None,
        logs="",
        steps=[],
        concurrency_key=None,
    )
    values.update(overrides)
    return Run(**values)


JOBS = [
    maker(status=status, retry_count=retry_count, max_retries=max_retries)
    for maker, status, retry_count, max_retries in product(
        (make_job, one_time), ("running",), range(5), range(4)
    )
]


@pytest.mark.parametrize(
    "job", JOBS, ids=lambda j: f"{j.schedule_type}-{j.retry_count}/{j.max_retries}"
)
def test_retries_exhausted_is_what_the_retry_rule_does(job: Job) -> None:
    update = after_failure(job, NOW, "boom")
    fell_back = update.retry_count == 0 if job.is_recurring else update.status == "failed"
    assert retries_exhausted(job) is fell_back
    if not retries_exhausted(job):
        assert attempt(replace(job, retry_count=update.retry_count)) == attempt(job) + 1


@pytest.mark.parametrize(
    "job", JOBS, ids=lambda j: f"{j.schedule_type}-{j.retry_count}/{j.max_retries}"
)
def test_every_ending_leaves_the_job_in_a_status_its_event_allows(job: Job) -> None:
    endings = {
        "success": after_success(job, NOW),
        "failure": after_failure(job, NOW, "boom"),
        "cancellation": after_cancel(job, NOW, "cancelled by ops"),
    }
    for event, update in endings.items():
        before, after = JOB_TRANSITIONS[event]
        assert job.status in before and update.status in after, event
    stuck = run(job_id=job.id)
    for asked in (None, "ops"):
        result = recovered_result(Claim(replace(stuck, cancel_requested_by=asked), job), NOW)
        assert result.job_update.status in JOB_TRANSITIONS["recovery"][1]
        assert result.status == ("failed" if asked is None else "cancelled")


def test_a_recovered_run_an_operator_cancelled_does_not_announce_exhausted_retries() -> None:
    job = one_time(max_retries=0)
    claim = Claim(run(cancel_requested_by="ops"), job)
    events = run_events(claim, recovered_result(claim, NOW), recovered=True)
    assert [e.kind for e in events] == ["stuck_run_recovered"]
    failed = Claim(run(), job)
    events = run_events(failed, recovered_result(failed, NOW), recovered=True)
    assert [e.kind for e in events] == ["stuck_run_recovered", "retries_exhausted"]
    assert "the job ends failed" in events[1].text


def test_a_failed_job_counts_the_attempts_it_made() -> None:
    job = one_time(max_retries=0)
    update = after_failure(job, NOW, "boom")
    failed = replace(job, status=update.status, retry_count=update.retry_count)
    assert retry_text(failed) == "failed after 1 attempt"
    for _ in range(3):
        job = replace(job, max_retries=3, retry_count=after_failure(job, NOW, "x").retry_count)
    update = after_failure(job, NOW, "boom")
    assert update.status == "failed"
    failed = replace(job, status=update.status, retry_count=update.retry_count)
    assert retry_text(failed) == "failed after 4 attempts"
    assert backoff_json(job)["attempt"] == 4 and backoff_json(job)["attempts_allowed"] == 4


def test_the_metrics_gauges_call_the_rules() -> None:
    jobs = [
        make_job(id=n, status=status, retry_count=retry_count, next_run_at=NOW + offset)
        for n, (status, retry_count, offset) in enumerate(
            product(JOB_STATUSES, (0, 1), (-timedelta(seconds=1), timedelta(0), timedelta(1)))
        )
    ]
    report = StatusReport(
        now=NOW,
        datasets=[],
        jobs=jobs,
        last_runs={},
        stuck_runs=[],
        workers=[],
        worker_stale_after=timedelta(minutes=2),
        waiting={},
    )
    gauges = {
        family.name: family.samples[0].value
        for family in StoreCollector(lambda: report).collect()
        if family.samples
    }
    assert gauges["pipectl_jobs_in_backoff"] == sum(1 for job in jobs if in_backoff(job))
    assert gauges["pipectl_queue_due_jobs"] == sum(1 for job in jobs if is_due(job, NOW))
    # What `pipectl retry` lists: a paused or running job keeps its backoff.
    assert gauges["pipectl_jobs_in_backoff"] == 3 * 3


@pytest.mark.parametrize(
    ("heartbeat_age", "started_age", "stuck"),
    [
        (None, timedelta(minutes=2), True),  # never heartbeated, past the start grace
        (None, timedelta(seconds=30), False),  # never heartbeated, within the start grace
        (timedelta(minutes=5), timedelta(minutes=9), False),  # exactly stuck_after: not yet
        (timedelta(minutes=5, microseconds=1), timedelta(minutes=9), True),
        (timedelta(minutes=1), timedelta(minutes=9), False),
    ],
)
def test_stuck_is_an_old_heartbeat_or_no_first_one_within_the_grace(
    heartbeat_age: timedelta | None, started_age: timedelta, stuck: bool
) -> None:
    started = NOW - started_age
    heartbeat = started if heartbeat_age is None else NOW - heartbeat_age
    candidate = run(started_at=started, heartbeat_at=heartbeat)
    cutoffs = stuck_cutoffs(NOW, timedelta(minutes=5), timedelta(minutes=1))
    assert is_stuck(candidate, *cutoffs) is stuck
    assert not is_stuck(replace(candidate, status="failed"), *cutoffs)
