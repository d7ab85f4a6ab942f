"""The store contract for operator control, on every backend: several job edits in one
transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_contract import T0, new_job

from pipectl.errors import InvalidInput
from pipectl.lifecycle import cancelled_result
from pipectl.models import Recorded
from pipectl.recovery import recover_stuck
from pipectl.store import Store


def test_update_jobs_changes_only_jobs_whose_status_allows_it(store: Store) -> None:
    first = store.insert_job(new_job(), T0)
    paused = store.insert_job(new_job(status="paused"), T0)
    second = store.insert_job(new_job(), T0)
    later = T0 + timedelta(minutes=5)
    changed = store.update_jobs(
        [
            (second.id, {"status": "paused"}),
            (paused.id, {"status": "paused"}),
            (first.id, {"status": "paused", "next_run_at": later}),
        ],
        later,
        only_if_status=("active", "running"),
    )
    assert [job.id for job in changed] == [first.id, second.id]
    assert all(job.status == "paused" and job.updated_at == later for job in changed)
    assert changed[0].next_run_at == later
    assert store.get_job(paused.id).updated_at == T0  # type: ignore[union-attr]
    assert store.update_jobs([], later) == []


def test_update_jobs_is_one_transaction(store: Store) -> None:
    """A bad change anywhere in the list leaves every job as it was."""
    first = store.insert_job(new_job(), T0)
    second = store.insert_job(new_job(), T0)
    with pytest.raises(InvalidInput):  # the status CHECK constraint
        store.update_jobs([(first.id, {"status": "paused"}), (second.id, {"status": "gone"})], T0)
    assert store.get_job(first.id).status == "active"  # type: ignore[union-attr]
    assert store.get_job(second.id).status == "active"  # type: ignore[union-attr]


def test_update_jobs_refuses_fields_that_are_not_editable(store: Store) -> None:
    job = store.insert_job(new_job(), T0)
    with pytest.raises(ValueError):
        store.update_jobs([(job.id, {"brand_id": "other"})], T0)


def test_a_cancel_request_is_read_back_and_the_run_ends_cancelled(store: Store) -> None:
    job = store.insert_job(new_job(), T0)
    other = store.insert_job(new_job(), T0)
    claims = store.claim_due("w", T0, 2)
    run, untouched = (c.run for c in sorted(claims, key=lambda c: c.job.id))
    assert store.cancel_requests([run.id, untouched.id]) == {}

    later = T0 + timedelta(seconds=7)
    asked = store.request_cancel(run.id, "ops@host", later)
    assert asked is not None
    assert (asked.cancel_requested_at, asked.cancel_requested_by) == (later, "ops@host")
    again = store.request_cancel(run.id, "someone-else", later + timedelta(seconds=1))
    assert again is not None and again.cancel_requested_by == "ops@host"  # the first stands
    assert store.cancel_requests([run.id, untouched.id]) == {run.id: "ops@host"}
    assert store.cancel_requests([]) == {}

    cancelled = cancelled_result(claims[0].job, later, "ops@host")
    assert store.finish_run(run.id, run.lease_token, cancelled) is Recorded.RECORDED
    ended = store.get_run(run.id)
    assert ended is not None and ended.status == "cancelled"
    assert ended.error_message == "cancelled by ops@host"
    assert ended.cancel_requested_by == "ops@host"
    assert store.get_job(job.id).status == "archived"  # type: ignore[union-attr]
    assert store.get_job(other.id).status == "running"  # type: ignore[union-attr]
    assert [r.id for r in store.list_runs(status="cancelled")] == [run.id]
    assert store.cancel_requests([run.id]) == {}  # no longer running
    assert store.request_cancel(run.id, "late", later) is None
    assert store.dataset_statuses() == []  # a cancelled run records no dataset outcome


def test_a_stuck_run_whose_cancel_was_asked_for_is_recovered_as_cancelled(store: Store) -> None:
    job = store.insert_job(new_job(), T0)
    (claim,) = store.claim_due("w", T0, 1)
    assert store.request_cancel(claim.run.id, "ops@host", T0) is not None
    later = T0 + timedelta(hours=1)
    (recovered,) = recover_stuck(store, later, timedelta(minutes=5), timedelta(minutes=1))
    assert recovered.run.id == claim.run.id
    ended = store.get_run(claim.run.id)
    assert ended is not None and ended.status == "cancelled"
    assert ended.error_message == "cancelled by ops@host"
    after = store.get_job(job.id)
    assert after is not None and (after.status, after.retry_count) == ("archived", 0)
    assert store.dataset_statuses() == []
