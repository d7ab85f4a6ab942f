"""An operator's edit made while a run is in progress stands after the run is recorded, on every
store: the run keeps its own outcome, and the job's next state follows the edited job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from test_contract import T0, new_job

from pipectl.lifecycle import cancelled_result, run_result, settle_edited_job
from pipectl.models import Claim, Job, Recorded
from pipectl.recovery import recover_stuck
from pipectl.store import Store

HOURLY = "0 * * * *"
EVERY_5_MIN = "*/5 * * * *"
ENDED = T0 + timedelta(minutes=2)


def running(store: Store, **overrides: Any) -> Claim:
    values: dict[str, Any] = dict(
        schedule_type="recurring", cron_expression=HOURLY, max_retries=3, dedupe_key=None
    )
    store.insert_job(new_job(**{**values, **overrides}), T0)
    (claim,) = store.claim_due("w", T0, 1)
    return claim


def edit(store: Store, job: Job, **changes: Any) -> Job:
    """What `pipectl jobs edit` writes (Client.edit_job)."""
    edited = store.update_job(job.id, changes, T0 + timedelta(minutes=1))
    assert edited is not None and edited.revision == job.revision + 1
    return edited


def finish(store: Store, claim: Claim, error: str | None = None) -> Recorded:
    """What the worker does when the run ends: the outcome computed from the job as claimed."""
    result = run_result(claim.job, ENDED, error=error)
    recorded = store.finish_run(claim.run.id, claim.run.lease_token, result)
    if recorded is Recorded.EDITED:
        settle_edited_job(store, claim.job.id, claim.run.id, result)
    return recorded


def job_of(store: Store, claim: Claim) -> Job:
    job = store.get_job(claim.job.id)
    assert job is not None
    return job


def test_a_run_that_saw_no_edit_is_recorded_in_one_write(store: Store) -> None:
    claim = running(store)
    assert finish(store, claim) is Recorded.RECORDED
    job = job_of(store, claim)
    assert job.next_run_at == T0 + timedelta(hours=1) and job.revision == 0


def test_a_cron_edited_during_a_successful_run_stands(store: Store) -> None:
    claim = running(store)
    edit(store, claim.job, cron_expression=EVERY_5_MIN, next_run_at=T0 + timedelta(minutes=5))

    assert finish(store, claim) is Recorded.EDITED
    job = job_of(store, claim)
    assert job.cron_expression == EVERY_5_MIN
    assert job.next_run_at == T0 + timedelta(minutes=5)  # from the edited cron, not 13:00
    assert job.status == "active" and job.retry_count == 0 and job.last_error is None
    run = store.get_run(claim.run.id)
    assert run is not None and run.status == "completed" and run.finished_at == ENDED
    orders = store.dataset_status("orders", "acme")
    assert orders is not None and orders.last_success_at == ENDED


def test_retry_settings_edited_during_a_failing_run_stand(store: Store) -> None:
    claim = running(store)
    edit(store, claim.job, cron_expression=EVERY_5_MIN, max_retries=0)

    assert finish(store, claim, error="boom") is Recorded.EDITED
    job = job_of(store, claim)
    # No retries left under the edit: back to the edited schedule (as claimed, it would have
    # been retry 1 of 3 at 12:07).
    assert job.max_retries == 0 and job.cron_expression == EVERY_5_MIN
    assert job.next_run_at == T0 + timedelta(minutes=5)
    assert job.status == "active" and job.retry_count == 0 and job.last_error == "boom"
    run = store.get_run(claim.run.id)
    assert run is not None and run.status == "failed" and run.error_message == "boom"
    orders = store.dataset_status("orders", "acme")
    assert orders is not None and orders.last_status == "failed" and orders.last_success_at is None


def test_a_retry_count_keeps_counting_across_an_edit(store: Store) -> None:
    claim = running(store)
    edit(store, claim.job, max_retries=5, cron_expression=EVERY_5_MIN)
    finish(store, claim, error="boom")
    job = job_of(store, claim)
    assert job.retry_count == 1 and job.status == "active"
    assert job.next_run_at == T0 + timedelta(minutes=5)  # the backoff, capped by the edited cron


def test_a_job_paused_during_the_run_stays_paused(store: Store) -> None:
    claim = running(store)
    edit(store, claim.job, status="paused", cron_expression=EVERY_5_MIN)
    finish(store, claim)
    job = job_of(store, claim)
    assert job.status == "paused" and job.next_run_at == T0 + timedelta(minutes=5)


def test_a_one_time_job_given_retries_during_its_run_retries(store: Store) -> None:
    claim = running(store, schedule_type="one_time", cron_expression=None, max_retries=0)
    edit(store, claim.job, max_retries=2)
    finish(store, claim, error="boom")
    job = job_of(store, claim)
    # As claimed it would have ended `failed`; the edit gave it retries.
    assert job.status == "active" and job.retry_count == 1
    assert job.next_run_at == ENDED + timedelta(minutes=5)


def test_the_sweep_respects_an_edit_made_during_a_stuck_run(store: Store) -> None:
    claim = running(store)
    edit(store, claim.job, cron_expression=EVERY_5_MIN, max_retries=0)
    recovered = recover_stuck(store, ENDED, timedelta(seconds=30), timedelta(seconds=30))
    assert [c.run.id for c in recovered] == [claim.run.id]
    job = job_of(store, claim)
    assert job.status == "active" and job.retry_count == 0
    assert job.next_run_at == T0 + timedelta(minutes=5)
    run = store.get_run(claim.run.id)
    assert run is not None and run.status == "failed" and "stuck" in (run.error_message or "")


def test_reapply_job_update_is_guarded_by_revision_and_run(store: Store) -> None:
    claim = running(store)
    edited = edit(store, claim.job, cron_expression=EVERY_5_MIN)
    result = run_result(claim.job, ENDED, error=None)
    assert store.finish_run(claim.run.id, claim.run.lease_token, result) is Recorded.EDITED
    again = run_result(edited, ENDED, error=None).job_update
    stale = run_result(claim.job, ENDED, error=None).job_update
    # Computed from a revision the job no longer has, or for a run that is not its last: refused.
    assert not store.reapply_job_update(claim.job.id, claim.run.id, result.job_update, stale, ENDED)
    assert not store.reapply_job_update(
        claim.job.id, claim.run.id + 1, result.job_update, again, ENDED
    )
    assert job_of(store, claim).next_run_at == T0 + timedelta(hours=1)  # the run's own write
    assert store.reapply_job_update(claim.job.id, claim.run.id, result.job_update, again, ENDED)
    assert job_of(store, claim).next_run_at == T0 + timedelta(minutes=5)


@pytest.mark.parametrize("field", ["parameters", "timezone"])
def test_every_edit_bumps_the_revision(store: Store, field: str) -> None:
    job = store.insert_job(new_job(schedule_type="recurring", cron_expression=HOURLY), T0)
    value = {"parameters": {"datasets": ["orders"], "x": 1}, "timezone": "Europe/Berlin"}[field]
    assert edit(store, job, **{field: value}).revision == 1


def test_a_brand_wide_pause_during_the_run_stands(store: Store) -> None:
    """`jobs pause --brand acme` (update_jobs) is an operator edit like any other: it bumps the
    revision, so the run's outcome is settled against the paused job."""
    claim = running(store)
    (paused,) = store.update_jobs(
        [(claim.job.id, {"status": "paused"})],
        T0 + timedelta(minutes=1),
        only_if_status=("active", "running"),
    )
    assert paused.revision == claim.job.revision + 1
    assert finish(store, claim, error="boom") is Recorded.EDITED
    job = job_of(store, claim)
    assert job.status == "paused" and job.retry_count == 1 and job.last_error == "boom"


def test_a_cron_edited_during_a_cancelled_run_stands(store: Store) -> None:
    """A cancelled run is settled as a cancellation, not a failure: no retry is counted."""
    claim = running(store)
    edit(store, claim.job, cron_expression=EVERY_5_MIN)
    result = cancelled_result(claim.job, ENDED, "ops@host")
    assert store.finish_run(claim.run.id, claim.run.lease_token, result) is Recorded.EDITED
    settle_edited_job(store, claim.job.id, claim.run.id, result)
    job = job_of(store, claim)
    assert job.status == "active" and job.retry_count == 0 and job.last_error is None
    assert job.next_run_at == T0 + timedelta(minutes=5)
    run = store.get_run(claim.run.id)
    assert run is not None and run.status == "cancelled"


def test_the_sweep_respects_an_edit_made_during_a_stuck_run_whose_cancel_was_asked(
    store: Store,
) -> None:
    claim = running(store)
    assert store.request_cancel(claim.run.id, "ops@host", T0) is not None
    edit(store, claim.job, cron_expression=EVERY_5_MIN)
    recovered = recover_stuck(store, ENDED, timedelta(seconds=30), timedelta(seconds=30))
    assert [c.run.id for c in recovered] == [claim.run.id]
    job = job_of(store, claim)
    assert job.status == "active" and job.retry_count == 0 and job.last_error is None
    assert job.next_run_at == T0 + timedelta(minutes=5)
    run = store.get_run(claim.run.id)
    assert run is not None and run.status == "cancelled"
