"""The store contract for operator control, on every backend: several job edits in one
transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_contract import T0, new_job

from pipectl.errors import InvalidInput
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
