"""The store's restatement of the trigger rules (migration 0014 / SQLite 0010) against
triggers.py's, on a table of cases, on every store: a success recorded in a run's outcome
triggers exactly the runs `target_brand` says, in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from trigger_cases import TARGET_CASES

from pipectl.dataflow import given_back, start_claims
from pipectl.models import (
    Claim,
    DatasetOutcome,
    JobUpdate,
    NewJob,
    PendingTrigger,
    Recorded,
    RunHold,
    RunResult,
    RunStart,
)
from pipectl.store import Store
from pipectl.triggers import NO_TARGET, parse_inputs, ready_at, target_brand

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def new_job(
    brand: str | None, *, next_run_at: datetime | None = NOW, key: str | None = None
) -> NewJob:
    return NewJob(
        brand_id=brand,
        job_type="command",
        name="j",
        schedule_type="one_time",
        cron_expression=None,
        timezone="UTC",
        next_run_at=next_run_at,
        status="active",
        parameters={"command": "true"},
        max_retries=3,
        retry_base_seconds=300,
        retry_cap_seconds=3600,
        timeout_seconds=None,
        dedupe_key=None,
        concurrency_key=key,
    )


def finish(
    store: Store,
    claim: Claim,
    at: datetime,
    update: JobUpdate,
    datasets: Sequence[DatasetOutcome] = (),
    error: str | None = None,
) -> None:
    """Record the claimed run's outcome through the finish path."""
    result = RunResult(
        status="failed" if error else "completed",
        finished_at=at,
        error_message=error,
        logs="",
        steps=[],
        job_update=update,
        datasets=list(datasets),
    )
    assert store.finish_runs([(claim.run.id, claim.run.lease_token, result)])


def succeed(store: Store, brand: str | None, dataset: str, at: datetime, ok: bool = True) -> int:
    """A producer run that records `dataset` for `brand` through the finish path."""
    producer = store.insert_job(new_job(brand, next_run_at=at), at)
    (claim,) = [c for c in store.claim_due("w", at, 10) if c.job.id == producer.id]
    archived = JobUpdate("archived", None, 0, None, claim.job.revision)
    finish(store, claim, at, archived, [DatasetOutcome(brand, dataset, ok, None if ok else "boom")])
    return claim.run.id


@pytest.mark.parametrize(("job_brand", "text", "success_brand", "expected"), TARGET_CASES)
def test_a_success_triggers_what_the_rule_says(
    store: Store, job_brand: str | None, text: str, success_brand: str | None, expected: object
) -> None:
    (item,) = parse_inputs(job_brand, [text], [])
    consumer = store.insert_job(new_job(job_brand, next_run_at=None), NOW)
    store.set_job_inputs(consumer.id, [item.to_json()], None, NOW)
    run_id = succeed(store, success_brand, "orders", NOW)
    job = store.get_job(consumer.id)
    assert target_brand(job_brand, item, success_brand) == expected
    if expected is NO_TARGET:
        assert (job.triggered_at, job.next_run_at) == (None, None)
        return
    assert (job.triggered_at, job.next_run_at) == (NOW, NOW)
    (claim,) = [c for c in store.claim_due("w", NOW, 10) if c.job.id == consumer.id]
    started = store.start_runs(
        [RunStart(claim.run.id, claim.run.lease_token, job_brand is None, job_brand)]
    )
    run = started[claim.run.id]
    assert run.brand_id == expected
    assert run.triggered_by == [
        {
            "dataset": text,
            "brand_id": success_brand,
            "run_id": run_id,
            "at": NOW.isoformat(),
            "successes": 1,
        }
    ]
    assert store.get_job(consumer.id).triggered_at is None


def test_ready_at_in_the_store_is_the_rule(store: Store) -> None:
    consumer = store.insert_job(new_job(None, next_run_at=None), NOW)
    inputs = parse_inputs(None, ["orders", "stock"], [])
    store.set_job_inputs(consumer.id, [item.to_json() for item in inputs], None, NOW)
    pending: list[tuple[str | None, str, datetime]] = []
    steps = [
        ("acme", "orders"),
        ("beta", "stock"),
        ("beta", "orders"),
        ("acme", "orders"),
        ("acme", "stock"),
        ("failing", "stock"),
    ]
    for minute, (brand, dataset) in enumerate(steps):
        at = NOW + timedelta(minutes=minute)
        ok = brand != "failing"
        succeed(store, brand, dataset, at, ok)
        if ok:
            pending = [p for p in pending if (p[0], p[1]) != (brand, dataset)] + [
                (brand, dataset, at)
            ]
        assert store.get_job(consumer.id).triggered_at == ready_at(pending, 2), (brand, dataset)


def test_failed_success_and_unlisted_inputs_leave_no_trigger(store: Store) -> None:
    consumer = store.insert_job(new_job("acme", next_run_at=None), NOW)
    (item,) = parse_inputs("acme", ["orders"], [])
    store.set_job_inputs(consumer.id, [item.to_json()], None, NOW)
    succeed(store, "acme", "orders", NOW, ok=False)
    assert store.get_job(consumer.id).triggered_at is None
    succeed(store, "acme", "orders", NOW + timedelta(minutes=1))
    assert store.get_job(consumer.id).next_run_at == NOW + timedelta(minutes=1)
    # Dropping the input drops its pending trigger.
    (other,) = parse_inputs("acme", ["stock"], [])
    job = store.set_job_inputs(consumer.id, [other.to_json()], 60.0, NOW)
    assert (job.triggered_at, job.max_hold_seconds, job.inputs) == (None, 60.0, [other.to_json()])


def test_a_hold_gives_the_run_back_and_keeps_the_job_due(store: Store) -> None:
    job = store.insert_job(new_job("acme", key="k"), NOW)
    (claim,) = store.claim_due("w", NOW, 10)
    later = NOW + timedelta(minutes=1)
    hold = RunHold(claim.run.id, claim.run.lease_token, later, NOW, "waiting for acme/orders")
    assert store.hold_runs([hold], NOW) == 1
    assert store.hold_runs([hold], NOW) == 0  # the lease is gone: nothing twice
    held = store.get_job(job.id)
    assert (held.status, held.next_run_at, held.held_since) == ("active", later, NOW)
    assert held.waiting_on == "waiting for acme/orders"
    assert store.get_run(claim.run.id) is None
    assert store.claim_due("w", NOW, 10) == []
    (again,) = store.claim_due("w", later, 10)
    assert again.job.id == job.id


def start_fan_out(store: Store, job_id: int, at: datetime) -> Claim:
    (claim,) = [c for c in store.claim_due("w", at, 10) if c.job.id == job_id]
    started = store.start_runs([RunStart(claim.run.id, claim.run.lease_token, True, None)])
    return Claim(run=started[claim.run.id], job=claim.job)


def test_a_run_given_back_returns_the_successes_it_took(store: Store) -> None:
    # A global job fanning out per brand: its run for acme took acme's trigger when it started;
    # given back unstarted (a batch-mate of a slow run), acme's run must still be made.
    consumer = store.insert_job(new_job(None, next_run_at=None, key="rollup"), NOW)
    (item,) = parse_inputs(None, ["ads"], [])
    store.set_job_inputs(consumer.id, [item.to_json()], None, NOW)
    later = NOW + timedelta(minutes=1)
    # Both producers claimed before the consumer is due (`succeed` would claim it as well).
    producers = [store.insert_job(new_job(brand), NOW).id for brand in ("acme", "beta")]
    claims = {c.job.id: c for c in store.claim_due("w", later, 10)}
    for job_id, brand, at in zip(producers, ("acme", "beta"), (NOW, later), strict=True):
        archived = JobUpdate("archived", None, 0, None, claims[job_id].job.revision)
        finish(store, claims[job_id], at, archived, [DatasetOutcome(brand, "ads", True, None)])
    acme_run = claims[producers[0]].run.id
    first = start_fan_out(store, consumer.id, later)
    assert first.run.brand_id == "acme"
    assert store.get_job(consumer.id).triggered_at == later  # only beta's left pending
    # acme's input succeeds again while the run is claimed: the success given back coalesces
    # with it (the latest kept, both counted), and acme is ready from then on.
    latest = NOW + timedelta(minutes=2)
    newest_run = succeed(store, "acme", "ads", latest)
    assert given_back(store, first) == [PendingTrigger("brand", "ads", "acme", acme_run, NOW, 1)]
    assert store.release_run(first.run.id, first.run.lease_token, latest, given_back(store, first))
    assert store.get_run(first.run.id) is None
    job = store.get_job(consumer.id)
    assert (job.status, job.triggered_at, job.next_run_at) == ("active", later, NOW)

    beta = start_fan_out(store, consumer.id, latest)
    assert beta.run.brand_id == "beta"  # ready first now
    finish(store, beta, latest, JobUpdate("active", None, 0, None, beta.job.revision))
    acme = start_fan_out(store, consumer.id, latest).run
    assert acme.brand_id == "acme"
    assert acme.triggered_by == [
        {
            "dataset": "ads",
            "brand_id": "acme",
            "run_id": newest_run,
            "at": latest.isoformat(),
            "successes": 2,
        }
    ]
    assert store.get_job(consumer.id).triggered_at is None


def test_a_retry_given_back_returns_only_what_it_took(store: Store) -> None:
    # A retry carries its failed run's triggers over (it takes them again when claimed again);
    # only a success it took on top of them goes back.
    consumer = store.insert_job(new_job(None, next_run_at=None, key="rollup"), NOW)
    (item,) = parse_inputs(None, ["ads"], [])
    store.set_job_inputs(consumer.id, [item.to_json()], None, NOW)
    succeed(store, "acme", "ads", NOW)
    failed = start_fan_out(store, consumer.id, NOW)
    retry_at = NOW + timedelta(minutes=5)
    retrying = JobUpdate("active", retry_at, 1, "boom", failed.job.revision)
    finish(store, failed, NOW, retrying, error="boom")
    newer = NOW + timedelta(minutes=1)
    newer_run = succeed(store, "acme", "ads", newer)
    (claim,) = [c for c in store.claim_due("w", newer, 10) if c.job.id == consumer.id]
    (retry,), expired = start_claims(store, [claim], newer, (timedelta(hours=1),) * 2)
    assert expired == []
    assert retry.run.triggered_by[0] == failed.run.triggered_by[0]
    assert given_back(store, retry) == [PendingTrigger("brand", "ads", "acme", newer_run, newer, 1)]


def test_a_fenced_finish_records_no_freshness_and_no_trigger(store: Store) -> None:
    """A producer's outcome under a lost lease (its run recovered, or a stale token) is refused
    whole: its dataset's success is not recorded, so its consumer is not triggered."""
    consumer = store.insert_job(new_job("acme", next_run_at=None), NOW)
    (item,) = parse_inputs("acme", ["orders"], [])
    store.set_job_inputs(consumer.id, [item.to_json()], None, NOW)
    producer = store.insert_job(new_job("acme", next_run_at=NOW), NOW)
    (claim,) = [c for c in store.claim_due("w", NOW, 10) if c.job.id == producer.id]
    outcome = RunResult(
        status="completed",
        finished_at=NOW,
        error_message=None,
        logs="",
        steps=[],
        job_update=JobUpdate("archived", None, 0, None, claim.job.revision),
        datasets=[DatasetOutcome("acme", "orders", True, None)],
    )
    assert store.finish_runs([(claim.run.id, "stale-token", outcome)]) == [Recorded.LOST]
    assert store.dataset_status("orders", "acme") is None
    job = store.get_job(consumer.id)
    assert (job.triggered_at, job.next_run_at) == (None, None)
    assert store.claim_due("w", NOW, 10) == []
    # The run's own lease still records it, with the trigger.
    assert store.finish_runs([(claim.run.id, claim.run.lease_token, outcome)])
    assert store.get_job(consumer.id).triggered_at == NOW
