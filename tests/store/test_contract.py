"""The store contract: every backend passes these, so the engine can rely on them."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from pipectl.lifecycle import run_result, settle_edited_job
from pipectl.models import (
    DatasetOutcome,
    JobUpdate,
    NewJob,
    Recorded,
    RunResult,
    Threshold,
    WorkerInfo,
)
from pipectl.store import ANY, Store, open_store

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def new_job(**overrides: object) -> NewJob:
    values: dict[str, object] = dict(
        brand_id="acme",
        job_type="noop",
        name="noop acme",
        schedule_type="one_time",
        cron_expression=None,
        timezone="UTC",
        next_run_at=T0,
        status="active",
        parameters={"datasets": ["orders"]},
        max_retries=3,
        retry_base_seconds=300,
        retry_cap_seconds=3600,
        timeout_seconds=None,
        dedupe_key=None,
        concurrency_key=None,
    )
    values.update(overrides)
    return NewJob(**values)  # type: ignore[arg-type]


def result(status: str = "completed", *, at: datetime = T0, datasets=(), error=None) -> RunResult:
    update = (
        JobUpdate("archived", None, 0, None)
        if status == "completed"
        else JobUpdate("active", at + timedelta(minutes=5), 1, error)
    )
    return RunResult(
        status=status,  # type: ignore[arg-type]
        finished_at=at,
        error_message=error,
        logs="line 1\nline 2",
        steps=[{"name": "s", "status": status}],
        job_update=update,
        datasets=list(datasets),
    )


def test_schema_is_current_after_migrate(store: Store) -> None:
    store.check_schema()
    assert store.schema_version() is not None
    assert store.migrate() == []  # idempotent


def test_insert_and_read_back_a_job(store: Store) -> None:
    job = store.insert_job(new_job(parameters={"q": "O'Brien; DROP TABLE x;--", "n": 1}), T0)
    assert job.id > 0
    again = store.get_job(job.id)
    assert again == job
    assert again.parameters == {"q": "O'Brien; DROP TABLE x;--", "n": 1}
    assert again.next_run_at == T0 and again.next_run_at.tzinfo is not None
    assert store.get_job(job.id + 1000) is None


def test_list_jobs_filters(store: Store) -> None:
    a = store.insert_job(new_job(), T0)
    g = store.insert_job(new_job(brand_id=None, job_type="sleep"), T0)
    p = store.insert_job(new_job(status="paused"), T0)
    assert [j.id for j in store.list_jobs()] == [a.id, g.id, p.id]
    assert [j.id for j in store.list_jobs(brand_id=None)] == [g.id]
    assert [j.id for j in store.list_jobs(brand_id="acme")] == [a.id, p.id]
    assert [j.id for j in store.list_jobs(job_type="sleep")] == [g.id]
    assert [j.id for j in store.list_jobs(statuses=("paused",))] == [p.id]
    assert [j.id for j in store.list_jobs(limit=1)] == [a.id]


def test_enqueue_dedupes_on_active_jobs_only(store: Store) -> None:
    first, created = store.enqueue(new_job(dedupe_key="k"), T0)
    assert created
    same, created = store.enqueue(new_job(dedupe_key="k"), T0)
    assert not created and same.id == first.id
    other, created = store.enqueue(new_job(dedupe_key="other"), T0)
    assert created and other.id != first.id
    store.claim_due("w", T0, 10)  # first is now running: no longer pending
    later, created = store.enqueue(new_job(dedupe_key="k"), T0)
    assert created and later.id != first.id


def test_concurrent_enqueues_of_one_key_create_one_job(store_url: str) -> None:
    ids: list[int] = []
    errors: list[BaseException] = []

    def enqueue() -> None:
        s = open_store(store_url)
        try:
            for _ in range(5):
                ids.append(s.enqueue(new_job(dedupe_key="same"), T0)[0].id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=enqueue) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(ids)) == 1


def test_update_job_guarded_by_status(store: Store) -> None:
    job = store.insert_job(new_job(), T0)
    paused = store.update_job(job.id, {"status": "paused"}, T0, only_if_status=("active",))
    assert paused is not None and paused.status == "paused"
    assert store.update_job(job.id, {"status": "paused"}, T0, only_if_status=("active",)) is None
    edited = store.update_job(job.id, {"parameters": {"a": [1, 2]}, "next_run_at": T0}, T0)
    assert edited is not None and edited.parameters == {"a": [1, 2]}


def test_claim_takes_due_active_jobs_oldest_first(store: Store) -> None:
    late = store.insert_job(new_job(next_run_at=T0 - timedelta(minutes=1)), T0)
    early = store.insert_job(new_job(next_run_at=T0 - timedelta(minutes=5)), T0)
    store.insert_job(new_job(next_run_at=T0 + timedelta(minutes=1)), T0)  # not due
    store.insert_job(new_job(status="paused", next_run_at=T0 - timedelta(hours=1)), T0)
    claims = store.claim_due("w1", T0, 10)
    assert [c.job.id for c in claims] == [early.id, late.id]
    for claim in claims:
        assert claim.job.status == "running"
        assert claim.run.status == "running" and claim.run.worker_id == "w1"
        assert claim.run.attempt == 1 and claim.run.lease_token
        assert (
            claim.run.started_at == claim.run.heartbeat_at == T0
        )  # "never heartbeated" reads this
        assert claim.job.last_run_id == claim.run.id
    assert store.claim_due("w2", T0, 10) == []


def test_a_claim_returns_the_job_and_run_as_they_are_read_back(store: Store) -> None:
    """Every field, whatever form the claim sends it in (PostgreSQL: arrays in field order)."""
    store.insert_job(
        new_job(
            name="every field",
            schedule_type="recurring",
            cron_expression="*/5 * * * *",
            timezone="Europe/Berlin",
            next_run_at=T0 - timedelta(seconds=1),
            parameters={"datasets": ["orders", {"dataset": "ads", "brands": ["acme"]}], "n": 1.5},
            max_retries=7,
            retry_base_seconds=60,
            retry_cap_seconds=600,
            timeout_seconds=90.5,
            dedupe_key="dedupe",
            concurrency_key="key",
        ),
        T0,
    )
    (claim,) = store.claim_due("w", T0, 1)
    assert claim.job == store.get_job(claim.job.id)
    assert claim.run == store.get_run(claim.run.id)
    assert (claim.job.timeout_seconds, claim.job.concurrency_key) == (90.5, "key")


def test_claim_respects_limit(store: Store) -> None:
    for _ in range(5):
        store.insert_job(new_job(), T0)
    assert len(store.claim_due("w", T0, 2)) == 2
    assert len(store.claim_due("w", T0, 10)) == 3


def test_claim_one_run_per_concurrency_key(store: Store) -> None:
    a1 = store.insert_job(new_job(concurrency_key="meta:acme", next_run_at=T0 - timedelta(2)), T0)
    a2 = store.insert_job(new_job(concurrency_key="meta:acme", next_run_at=T0 - timedelta(1)), T0)
    b = store.insert_job(new_job(concurrency_key="meta:globex"), T0)
    first = store.claim_due("w", T0, 10)
    assert sorted(c.job.id for c in first) == sorted([a1.id, b.id])
    assert store.claim_due("w", T0, 10) == []  # a2 waits for a1
    run = next(c.run for c in first if c.job.id == a1.id)
    assert store.finish_run(run.id, run.lease_token, result())
    assert [c.job.id for c in store.claim_due("w", T0, 10)] == [a2.id]


def test_claim_looks_past_many_jobs_waiting_on_busy_keys(store: Store) -> None:
    for n in range(40):
        store.insert_job(new_job(concurrency_key=f"k{n}", next_run_at=T0 - timedelta(2)), T0)
    running = store.claim_due("w", T0, 40)
    assert len(running) == 40
    # Each key now has a running run and a due job waiting behind it, due before the free ones.
    for n in range(40):
        store.insert_job(new_job(concurrency_key=f"k{n}", next_run_at=T0 - timedelta(1)), T0)
    free = [store.insert_job(new_job(concurrency_key=f"free{n}"), T0).id for n in range(3)]
    unkeyed = store.insert_job(new_job(), T0).id
    assert [c.job.id for c in store.claim_due("w", T0, 2)] == free[:2]
    assert [c.job.id for c in store.claim_due("w", T0, 10)] == [free[2], unkeyed]
    assert store.claim_due("w", T0, 10) == []


def test_claim_takes_a_keys_next_job_in_its_own_due_place(store: Store) -> None:
    a1 = store.insert_job(new_job(concurrency_key="a", next_run_at=T0 - timedelta(minutes=10)), T0)
    a2 = store.insert_job(new_job(concurrency_key="a", next_run_at=T0 - timedelta(minutes=1)), T0)
    c = store.insert_job(new_job(concurrency_key="c", next_run_at=T0 - timedelta(minutes=5)), T0)
    (first,) = store.claim_due("w", T0, 1)
    assert first.job.id == a1.id
    assert store.finish_run(first.run.id, first.run.lease_token, result())
    # Key a's next job is due after c's, however early a's first one was.
    assert [claim.job.id for claim in store.claim_due("w", T0, 1)] == [c.id]
    assert [claim.job.id for claim in store.claim_due("w", T0, 1)] == [a2.id]


def test_parallel_claims_never_share_a_job(store_url: str) -> None:
    setup = open_store(store_url)
    for _ in range(60):
        setup.insert_job(new_job(), T0)
    setup.close()
    claimed: list[int] = []
    lock = threading.Lock()

    def drain(worker: str) -> None:
        s = open_store(store_url)
        try:
            while claims := s.claim_due(worker, T0, 3):
                with lock:
                    claimed.extend(c.job.id for c in claims)
        finally:
            s.close()

    threads = [threading.Thread(target=drain, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == 60 and len(set(claimed)) == 60


def test_finish_run_writes_run_job_and_datasets(store: Store) -> None:
    store.insert_job(new_job(), T0)
    (claim,) = store.claim_due("w", T0, 1)
    done_at = T0 + timedelta(seconds=3)
    ok = result(at=done_at, datasets=[DatasetOutcome("acme", "orders", True)])
    assert store.finish_run(claim.run.id, claim.run.lease_token, ok)
    run = store.get_run(claim.run.id)
    assert run is not None and run.status == "completed" and run.finished_at == done_at
    assert run.logs == "line 1\nline 2" and run.steps == [{"name": "s", "status": "completed"}]
    job = store.get_job(claim.job.id)
    assert job is not None and job.status == "archived" and job.next_run_at is None
    status = store.dataset_status("orders", "acme")
    assert status is not None
    assert status.last_success_at == done_at and status.last_attempt_at == done_at
    assert status.last_status == "completed" and status.last_run_id == run.id
    # The lease is spent: a second finish is refused.
    assert not store.finish_run(claim.run.id, claim.run.lease_token, ok)


def test_finish_runs_records_several_outcomes_each_under_its_own_lease(store: Store) -> None:
    for brand in ("acme", "globex", "initech"):
        store.insert_job(new_job(brand_id=brand), T0)
    a, b, c = store.claim_due("w", T0, 3)
    done_at = T0 + timedelta(seconds=2)
    failed = result("failed", at=done_at, error="boom\x00", datasets=[])
    recorded = store.finish_runs(
        [
            (a.run.id, a.run.lease_token, result(at=done_at, datasets=[])),
            (b.run.id, "forged", result(at=done_at)),
            (c.run.id, c.run.lease_token, failed),
        ]
    )
    assert recorded == [Recorded.RECORDED, Recorded.LOST, Recorded.RECORDED]
    assert store.get_run(a.run.id).status == "completed"  # type: ignore[union-attr]
    assert store.get_job(a.job.id).status == "archived"  # type: ignore[union-attr]
    # The refused outcome wrote nothing: its run still runs under its real lease.
    assert store.get_run(b.run.id).status == "running"  # type: ignore[union-attr]
    assert store.get_job(b.job.id).status == "running"  # type: ignore[union-attr]
    rerun = store.get_run(c.run.id)
    assert rerun is not None and rerun.status == "failed" and rerun.finished_at == done_at
    assert store.get_job(c.job.id).retry_count == 1  # type: ignore[union-attr]
    assert store.finish_runs([]) == []


def test_finish_runs_with_outcomes_for_the_same_dataset(store: Store) -> None:
    for _ in range(3):
        store.insert_job(new_job(), T0)
    a, b, c = store.claim_due("w", T0, 3)
    first, second = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    orders_ok = [DatasetOutcome("acme", "orders", True)]
    orders_failed = [DatasetOutcome("acme", "orders", False, "late")]
    recorded = store.finish_runs(
        [
            (b.run.id, b.run.lease_token, result("failed", at=second, datasets=orders_failed)),
            (a.run.id, a.run.lease_token, result(at=first, datasets=orders_ok)),
            (c.run.id, "forged", result(at=second + timedelta(minutes=1), datasets=orders_ok)),
        ]
    )
    assert recorded == [Recorded.RECORDED, Recorded.RECORDED, Recorded.LOST]
    status = store.dataset_status("orders", "acme")
    assert status is not None
    # The newest attempt decides the status; the success is kept; the refused outcome is absent.
    assert status.last_attempt_at == second and status.last_status == "failed"
    assert status.last_success_at == first and status.last_run_id == b.run.id
    assert status.last_error == "late"


def test_failed_run_records_attempt_not_success(store: Store) -> None:
    store.insert_job(new_job(), T0)
    (claim,) = store.claim_due("w", T0, 1)
    failed = result(
        "failed", datasets=[DatasetOutcome("acme", "orders", False, "boom")], error="boom"
    )
    assert store.finish_run(claim.run.id, claim.run.lease_token, failed)
    status = store.dataset_status("orders", "acme")
    assert status is not None and status.last_success_at is None
    assert status.last_attempt_at == T0 and status.last_status == "failed"
    assert status.last_error == "boom"
    job = store.get_job(claim.job.id)
    assert job is not None and job.status == "active" and job.retry_count == 1


def test_dataset_timestamps_only_move_forward(store: Store) -> None:
    for _ in range(2):
        store.insert_job(new_job(), T0)
    first, second = store.claim_due("w", T0, 2)
    newer, older = T0 + timedelta(minutes=10), T0 + timedelta(minutes=1)
    store.finish_run(
        first.run.id,
        first.run.lease_token,
        result(at=newer, datasets=[DatasetOutcome("acme", "orders", True)]),
    )
    store.finish_run(
        second.run.id,
        second.run.lease_token,
        result("failed", at=older, datasets=[DatasetOutcome("acme", "orders", False, "x")]),
    )
    status = store.dataset_status("orders", "acme")
    assert status is not None
    assert status.last_success_at == newer and status.last_attempt_at == newer
    assert status.last_status == "completed"


def test_global_and_brand_datasets_are_distinct(store: Store) -> None:
    store.insert_job(new_job(brand_id=None), T0)
    (claim,) = store.claim_due("w", T0, 1)
    outcomes = [
        DatasetOutcome(None, "approvals", True),
        DatasetOutcome("acme", "approvals", False, "x"),
    ]
    store.finish_run(claim.run.id, claim.run.lease_token, result(datasets=outcomes))
    assert store.dataset_status("approvals", None).last_success_at == T0  # type: ignore[union-attr]
    assert store.dataset_status("approvals", "acme").last_success_at is None  # type: ignore[union-attr]
    assert {(s.brand_id, s.dataset) for s in store.dataset_statuses()} == {
        (None, "approvals"),
        ("acme", "approvals"),
    }
    assert [s.brand_id for s in store.dataset_statuses(brand_id=None)] == [None]
    assert [s.brand_id for s in store.dataset_statuses(brand_id="acme")] == ["acme"]


def test_finish_keeps_an_operator_status_set_mid_run(store: Store) -> None:
    store.insert_job(new_job(), T0)
    (claim,) = store.claim_due("w", T0, 1)
    store.update_job(claim.job.id, {"status": "paused"}, T0)
    failed = run_result(claim.job, T0, error="x")
    assert store.finish_run(claim.run.id, claim.run.lease_token, failed) is Recorded.EDITED
    settle_edited_job(store, claim.job.id, claim.run.id, failed)  # as the worker does
    job = store.get_job(claim.job.id)
    assert job is not None and job.status == "paused" and job.retry_count == 1


def test_heartbeat_renews_and_reports_lost_leases(store: Store) -> None:
    store.register_worker(WorkerInfo("w", "host", 1, T0, T0, "0.1.0"))
    for _ in range(3):
        store.insert_job(new_job(), T0)
    a, b, done = store.claim_due("w", T0, 3)
    assert store.finish_run(done.run.id, done.run.lease_token, result())
    later = T0 + timedelta(seconds=30)
    leases = [(a.run.id, a.run.lease_token), (b.run.id, "forged")]
    lost = store.heartbeat("w", [*leases, (done.run.id, done.run.lease_token)], later)
    assert sorted(lost) == sorted([b.run.id, done.run.id])  # a finished run's lease is spent
    assert store.get_run(a.run.id).heartbeat_at == later  # type: ignore[union-attr]
    assert store.workers()[0].last_seen_at == later


def test_stuck_runs_and_guarded_recovery(store: Store) -> None:
    for _ in range(2):
        store.insert_job(new_job(), T0)
    a, b = store.claim_due("w", T0, 2)
    store.heartbeat("w", [(b.run.id, b.run.lease_token)], T0 + timedelta(minutes=9))
    cutoff = T0 + timedelta(minutes=5)
    assert [c.run.id for c in store.stuck_runs(cutoff, cutoff)] == [a.run.id]
    failing = result("failed", at=T0 + timedelta(minutes=10), error="stuck: no heartbeat")
    assert store.fail_stuck_run(a.run.id, cutoff, cutoff, failing)
    assert store.get_run(a.run.id).status == "failed"  # type: ignore[union-attr]
    # b heartbeated after the cutoff: the guard inside the UPDATE leaves it alone.
    assert not store.fail_stuck_run(b.run.id, cutoff, cutoff, failing)
    # a was recovered: its worker's late finish is refused (fencing).
    assert not store.finish_run(a.run.id, a.run.lease_token, result())
    assert store.get_run(a.run.id).error_message == "stuck: no heartbeat"  # type: ignore[union-attr]


def test_fail_stuck_runs_records_a_batch_guarded_per_run(store: Store) -> None:
    jobs = [store.insert_job(new_job(), T0) for _ in range(4)]
    a, b, c, d = store.claim_due("w", T0, 4)
    store.heartbeat("w", [(b.run.id, b.run.lease_token)], T0 + timedelta(minutes=9))
    store.update_job(c.job.id, {"max_retries": 7}, T0 + timedelta(minutes=1))  # edited mid-run
    cutoff = T0 + timedelta(minutes=5)
    at = T0 + timedelta(minutes=10)
    failing = result("failed", at=at, datasets=[DatasetOutcome(None, "sales", False, "stuck")])
    batch = [(run.run.id, failing) for run in (d, b, c, a)]
    assert store.fail_stuck_runs(cutoff, cutoff, batch) == [
        Recorded.RECORDED,
        Recorded.LOST,  # b heartbeated after the cut-off: the guard leaves it alone
        Recorded.EDITED,
        Recorded.RECORDED,
    ]
    assert [store.get_run(x.run.id).status for x in (a, b, c, d)] == [  # type: ignore[union-attr]
        "failed",
        "running",
        "failed",
        "failed",
    ]
    assert store.get_job(jobs[0].id).retry_count == 1  # type: ignore[union-attr]
    assert store.get_job(c.job.id).retry_count == 0  # type: ignore[union-attr]
    sales = store.dataset_status("sales", None)
    assert sales is not None and sales.last_attempt_at == at and sales.last_status == "failed"
    assert store.fail_stuck_runs(cutoff, cutoff, batch) == [Recorded.LOST] * 4
    assert store.fail_stuck_runs(cutoff, cutoff, []) == []


def test_recovery_frees_the_concurrency_key(store: Store) -> None:
    store.insert_job(new_job(concurrency_key="k"), T0)
    store.insert_job(new_job(concurrency_key="k"), T0)
    (first,) = store.claim_due("w", T0, 10)
    assert store.claim_due("w", T0, 10) == []
    later = T0 + timedelta(minutes=10)
    store.fail_stuck_run(first.run.id, later, later, result("failed", error="stuck"))
    assert len(store.claim_due("w", later, 10)) == 1


def test_release_run_puts_the_job_back(store: Store) -> None:
    job = store.insert_job(new_job(), T0)
    (claim,) = store.claim_due("w", T0, 1)
    assert not store.release_run(claim.run.id, "forged", T0)
    assert store.release_run(claim.run.id, claim.run.lease_token, T0)
    assert store.get_run(claim.run.id) is None
    back = store.get_job(job.id)
    assert back is not None and back.status == "active" and back.next_run_at == T0
    assert back.last_run_id is None
    assert len(store.claim_due("w", T0, 1)) == 1


def test_list_runs_newest_first_with_filters(store: Store) -> None:
    acme = store.insert_job(new_job(), T0)
    store.insert_job(new_job(brand_id="globex"), T0)
    claims = store.claim_due("w", T0, 2)
    store.finish_run(claims[0].run.id, claims[0].run.lease_token, result())
    runs = store.list_runs()
    assert [r.id for r in runs] == sorted((c.run.id for c in claims), reverse=True)
    assert [r.job_id for r in store.list_runs(job_id=acme.id)] == [acme.id]
    assert [r.status for r in store.list_runs(status="running")] == ["running"]
    assert len(store.list_runs(brand_id="globex")) == 1
    assert store.list_runs(limit=1)[0].id == runs[0].id
    assert set(store.runs_by_id([c.run.id for c in claims])) == {c.run.id for c in claims}


def test_thresholds_upsert(store: Store) -> None:
    store.set_threshold(Threshold("orders", None, timedelta(hours=1), timedelta(hours=2)), T0)
    store.set_threshold(Threshold("orders", None, timedelta(hours=3), timedelta(hours=4)), T0)
    store.set_threshold(Threshold("orders", "acme", timedelta(minutes=5), timedelta(minutes=9)), T0)
    found = {(t.brand_id, t.dataset): t for t in store.thresholds()}
    assert found[(None, "orders")].warn_after == timedelta(hours=3)
    assert found[("acme", "orders")].error_after == timedelta(minutes=9)
    assert len(found) == 2


def test_workers_register_and_are_forgotten(store: Store) -> None:
    old = WorkerInfo("old", "h", 1, T0, T0, "0.1.0")
    store.register_worker(old)
    store.register_worker(replace(old, id="busy"))
    store.register_worker(replace(old, id="new", last_seen_at=T0 + timedelta(days=8)))
    store.insert_job(new_job(), T0)
    store.claim_due("busy", T0, 1)
    assert store.forget_workers(T0 + timedelta(days=7)) == 1
    assert sorted(w.id for w in store.workers()) == ["busy", "new"]


def test_a_stopped_worker_is_recorded_at_once_and_running_again_when_it_registers(
    store: Store,
) -> None:
    running = WorkerInfo("running", "h", 1, T0, T0, "0.1.0")
    store.register_worker(running)
    store.register_worker(replace(running, id="stopping"))
    stop = T0 + timedelta(seconds=7)
    store.stop_worker("stopping", stop)
    found = {w.id: w for w in store.workers()}
    assert found["stopping"].stopped_at == stop and found["stopping"].last_seen_at == stop
    assert found["running"].stopped_at is None and found["running"].last_seen_at == T0
    snapshot = store.status_snapshot(
        statuses=("active",), heartbeat_before=T0, started_before=T0, running_limit=10
    )
    assert {w.id: w.stopped_at for w in snapshot.workers} == {"stopping": stop, "running": None}
    store.heartbeat("stopping", [], stop + timedelta(seconds=1))  # a late beat does not revive
    assert {w.id: w for w in store.workers()}["stopping"].stopped_at == stop
    back = T0 + timedelta(minutes=1)
    store.register_worker(replace(running, id="stopping", started_at=back, last_seen_at=back))
    assert {w.id: w for w in store.workers()}["stopping"].stopped_at is None


def test_brand_filter_any_is_default(store: Store) -> None:
    store.insert_job(new_job(), T0)
    assert store.list_jobs(brand_id=ANY) == store.list_jobs()


@pytest.mark.parametrize("brand", ["O'Brien", 'qu"ote', "ünïcødé", "a; DROP TABLE workers;--"])
def test_odd_brand_names_are_plain_data(store: Store, brand: str) -> None:
    job = store.insert_job(new_job(brand_id=brand), T0)
    assert [j.id for j in store.list_jobs(brand_id=brand)] == [job.id]


def test_a_run_that_never_heartbeated_is_stuck_after_the_start_grace(store: Store) -> None:
    for _ in range(2):
        store.insert_job(new_job(), T0)
    silent, beating = store.claim_due("w", T0, 2)
    store.heartbeat("w", [(beating.run.id, beating.run.lease_token)], T0 + timedelta(seconds=5))
    now = T0 + timedelta(minutes=2)
    heartbeat_before, started_before = now - timedelta(minutes=5), now - timedelta(minutes=1)
    # Both started 2 minutes ago; only the one that never heartbeated is past the start grace.
    stuck = store.stuck_runs(heartbeat_before, started_before)
    assert [c.run.id for c in stuck] == [silent.run.id]
    assert not store.fail_stuck_run(beating.run.id, heartbeat_before, started_before, result())
    assert store.fail_stuck_run(
        silent.run.id, heartbeat_before, started_before, result("failed", error="stuck")
    )


def test_prune_keeps_running_recent_and_newest_runs(store: Store) -> None:
    job = store.insert_job(new_job(schedule_type="recurring", cron_expression="0 * * * *"), T0)
    other = store.insert_job(new_job(next_run_at=T0 + timedelta(hours=5)), T0)
    finished = []
    for hour in range(5):
        at = T0 + timedelta(hours=hour)
        store.update_job(job.id, {"status": "active", "next_run_at": at}, at)
        (claim,) = store.claim_due("w", at, 5)
        store.finish_run(claim.run.id, claim.run.lease_token, result(at=at))
        finished.append(claim.run.id)
    (lone,) = store.claim_due("w", T0 + timedelta(hours=5), 5)  # other's only run, running
    assert lone.job.id == other.id
    cutoff = T0 + timedelta(hours=3, minutes=30)  # runs at 0h..3h are old
    assert store.count_prunable_runs(cutoff, keep_last=2) == 3
    assert store.prune_runs(cutoff, keep_last=2, limit=2) == 2  # a batch
    assert store.prune_runs(cutoff, keep_last=2, limit=2) == 1
    assert store.prune_runs(cutoff, keep_last=2, limit=2) == 0
    left = {r.id for r in store.list_runs(limit=100)}
    assert left == {finished[3], finished[4], lone.run.id}


def test_purge_archived_jobs_takes_their_runs(store: Store) -> None:
    old = store.insert_job(new_job(), T0)
    (claim,) = store.claim_due("w", T0, 1)
    store.finish_run(claim.run.id, claim.run.lease_token, result(at=T0))  # archived at T0
    recent = store.insert_job(new_job(status="archived"), T0 + timedelta(days=10))
    live = store.insert_job(new_job(status="paused"), T0)
    cutoff = T0 + timedelta(days=5)
    assert store.count_purgeable_jobs(cutoff) == 1
    assert store.purge_archived_jobs(cutoff, limit=100) == 1
    assert store.get_job(old.id) is None and store.get_run(claim.run.id) is None
    assert store.get_job(recent.id) is not None and store.get_job(live.id) is not None


def test_claim_alert_is_a_compare_and_set(store: Store) -> None:
    store.insert_job(new_job(), T0)
    (claim,) = store.claim_due("w", T0, 1)
    outcome = DatasetOutcome("acme", "orders", True)
    store.finish_run(claim.run.id, claim.run.lease_token, result(datasets=[outcome]))
    assert store.claim_alert("acme", "orders", None, "stale")
    assert not store.claim_alert("acme", "orders", None, "stale")  # someone else got it
    assert store.dataset_status("orders", "acme").alerted_state == "stale"  # type: ignore[union-attr]
    assert store.claim_alert("acme", "orders", "stale", "fresh")
    assert not store.claim_alert("globex", "orders", None, "stale")  # no such row


def test_live_jobs_in_id_order_with_a_limit(store: Store) -> None:
    ids = [
        store.insert_job(new_job(brand_id=brand, status=status), T0).id
        for brand, status in [
            ("globex", "active"),
            ("acme", "archived"),
            ("acme", "paused"),
            (None, "active"),
            ("acme", "active"),
        ]
    ]
    live = ("active", "running", "paused", "failed")
    assert [j.id for j in store.list_jobs(statuses=live)] == [ids[0], ids[2], ids[3], ids[4]]
    assert [j.id for j in store.list_jobs(statuses=live, limit=2)] == [ids[0], ids[2]]
    assert [j.id for j in store.list_jobs(brand_id="acme", statuses=live)] == [ids[2], ids[4]]
    assert [j.id for j in store.list_jobs(statuses=("archived",))] == [ids[1]]
    store.update_job(ids[4], {"retry_count": 1}, T0)
    store.update_job(ids[0], {"retry_count": 2}, T0)
    assert [j.id for j in store.list_jobs(in_backoff=True)] == [ids[0], ids[4]]


def test_status_snapshot_reads_what_the_single_reads_return(store: Store) -> None:
    for brand in ("acme", "globex"):
        store.insert_job(new_job(brand_id=brand, parameters={"datasets": ["ads"], "n": 1.5}), T0)
    store.insert_job(new_job(brand_id=None, concurrency_key="shared"), T0)
    store.insert_job(new_job(brand_id="acme", status="paused"), T0)
    store.insert_job(new_job(brand_id="globex", status="archived"), T0)
    done, failing, stuck = store.claim_due("w1", T0, 3)
    succeeded = result(datasets=[DatasetOutcome("acme", "ads", True)])
    again_in_an_hour = JobUpdate("active", T0 + timedelta(hours=1), 0, None)
    store.finish_run(
        done.run.id, done.run.lease_token, replace(succeeded, job_update=again_in_an_hour)
    )
    store.finish_run(
        failing.run.id,
        failing.run.lease_token,
        result("failed", error="boom", datasets=[DatasetOutcome("globex", "ads", False, "boom")]),
    )
    # Waits for the stuck run's key; the failed job's retry runs and heartbeats.
    store.insert_job(new_job(brand_id="globex", concurrency_key="shared"), T0)
    (running,) = store.claim_due("w2", T0 + timedelta(minutes=9), 5)
    assert running.job.id == failing.job.id
    store.heartbeat("w2", [(running.run.id, running.run.lease_token)], T0 + timedelta(minutes=9))
    store.set_threshold(Threshold("ads", None, timedelta(hours=1), timedelta(hours=2)), T0)
    store.set_threshold(Threshold("ads", "acme", timedelta(hours=3), timedelta(hours=4)), T0)
    store.register_worker(WorkerInfo("w1", "h", 1, T0, T0, "0.1.0"))
    store.register_worker(WorkerInfo("w2", "h", 2, T0, T0 + timedelta(minutes=9), "0.1.0"))
    heartbeat_before = started_before = T0 + timedelta(minutes=5)
    live = ("active", "running", "paused", "failed")

    for brand_id in (ANY, "acme", "globex", None, "nobody"):
        snapshot = store.status_snapshot(
            brand_id=brand_id,
            statuses=live,
            heartbeat_before=heartbeat_before,
            started_before=started_before,
            running_limit=10,
        )
        jobs = store.list_jobs(brand_id=brand_id, statuses=live)
        assert snapshot.jobs == jobs
        assert snapshot.last_runs == store.runs_by_id(
            [j.last_run_id for j in jobs if j.last_run_id]
        )
        assert snapshot.datasets == store.dataset_statuses(brand_id=brand_id)
        assert snapshot.thresholds == store.thresholds()
        assert snapshot.stuck_runs == store.stuck_runs(heartbeat_before, started_before)
        assert snapshot.running_runs == store.list_runs(status="running", limit=10)
        assert snapshot.workers == store.workers()

    everything = store.status_snapshot(
        statuses=live,
        heartbeat_before=heartbeat_before,
        started_before=started_before,
        running_limit=1,
    )
    assert [c.run.id for c in everything.stuck_runs] == [stuck.run.id]
    assert [r.id for r in everything.running_runs] == [running.run.id]
    assert set(everything.last_runs) == {done.run.id, stuck.run.id, running.run.id}
    assert [w.id for w in everything.workers] == ["w2", "w1"]


# -- brands and retirement (the readiness gate, issue 13) --------------------------------------


YEAR = timedelta(days=365)


def finish_one(store: Store, *datasets: DatasetOutcome, at: datetime = T0) -> None:
    job = store.insert_job(new_job(brand_id=datasets[0].brand_id, next_run_at=at - YEAR), at)
    (claim,) = store.claim_due("w", at, 1)  # the oldest due: this one
    assert claim.job.id == job.id
    assert store.finish_run(claim.run.id, claim.run.lease_token, result(at=at, datasets=datasets))


def test_brand_ids_names_every_brand_jobs_rows_and_thresholds_ever_named(store: Store) -> None:
    assert store.brand_ids() == []
    archived = store.insert_job(new_job(brand_id="zeta", status="archived"), T0)
    assert archived.status == "archived"
    store.insert_job(new_job(brand_id=None), T0)
    store.set_threshold(Threshold("orders", "acme", timedelta(hours=1), timedelta(hours=2)), T0)
    store.set_threshold(Threshold("orders", None, timedelta(hours=1), timedelta(hours=2)), T0)
    finish_one(store, DatasetOutcome("globex", "orders", True))
    assert store.brand_ids() == ["acme", "globex", "zeta"]


def test_retiring_datasets_keeps_history_and_restoring_undoes_it(store: Store) -> None:
    finish_one(store, DatasetOutcome("acme", "orders", True))
    before = store.dataset_status("orders", "acme")
    assert before is not None and before.retired_at is None
    # A pair with a row and one without (declared only): both are marked, the second gets a
    # row without history.
    assert store.set_datasets_retired([("acme", "orders"), ("acme", "thumbs")], T0, T0) == 2
    assert store.set_datasets_retired([("acme", "orders")], T0, T0) == 0  # already retired
    orders = store.dataset_status("orders", "acme")
    assert orders == replace(before, retired_at=T0)
    thumbs = store.dataset_status("thumbs", "acme")
    assert thumbs is not None and thumbs.retired_at == T0 and thumbs.last_attempt_at is None
    # A run that reports a retired dataset records it and leaves it retired.
    later = T0 + timedelta(hours=1)
    finish_one(store, DatasetOutcome("acme", "orders", True), at=later)
    after_run = store.dataset_status("orders", "acme")
    assert after_run is not None and after_run.last_success_at == later
    assert after_run.retired_at == T0

    assert store.set_datasets_retired([("acme", "orders"), ("acme", "thumbs")], None, T0) == 2
    restored = store.dataset_status("orders", "acme")
    assert restored is not None and restored.retired_at is None
    assert restored.last_success_at == later
    assert store.dataset_status("thumbs", "acme") is None  # nothing to keep: gone again


def test_retire_global_and_brand_pairs_apart(store: Store) -> None:
    finish_one(store, DatasetOutcome(None, "fx", True), DatasetOutcome("acme", "fx", True))
    store.set_datasets_retired([(None, "fx")], T0, T0)
    assert store.dataset_status("fx", None).retired_at == T0  # type: ignore[union-attr]
    assert store.dataset_status("fx", "acme").retired_at is None  # type: ignore[union-attr]


def test_delete_threshold_removes_exactly_one(store: Store) -> None:
    store.set_threshold(Threshold("orders", "acme", timedelta(hours=1), timedelta(hours=2)), T0)
    store.set_threshold(Threshold("orders", None, timedelta(hours=3), timedelta(hours=4)), T0)
    assert store.delete_threshold("orders", "acme") is True
    assert store.delete_threshold("orders", "acme") is False
    assert [(t.brand_id, t.dataset) for t in store.thresholds()] == [(None, "orders")]
    assert store.delete_threshold("orders", None) is True
    assert store.thresholds() == []


def test_retire_brand_archives_and_retires_at_once_and_restore_undoes_it(store: Store) -> None:
    active = store.insert_job(new_job(brand_id="acme", next_run_at=T0 + timedelta(days=1)), T0)
    paused = store.insert_job(new_job(brand_id="acme", status="paused"), T0)
    gone = store.insert_job(new_job(brand_id="acme", status="archived"), T0)
    other = store.insert_job(new_job(brand_id="globex"), T0)
    finish_one(store, DatasetOutcome("acme", "orders", True))
    done = store.list_jobs(brand_id="acme", statuses=("archived",))
    assert {job.id for job in done} >= {gone.id}

    archived = store.retire_brand("acme", ["orders", "thumbs"], T0)
    assert [job.id for job in archived] == [active.id, paused.id]
    assert all(job.status == "archived" for job in archived)
    assert store.get_job(other.id).status == "active"  # type: ignore[union-attr]
    assert store.dataset_status("orders", "acme").retired_at == T0  # type: ignore[union-attr]
    assert store.dataset_status("thumbs", "acme").retired_at == T0  # type: ignore[union-attr]
    (retirement,) = store.brand_retirements()
    assert retirement.brand_id == "acme" and retirement.retired_at == T0
    assert retirement.jobs == [
        {"id": active.id, "status": "active"},
        {"id": paused.id, "status": "paused"},
    ]
    assert retirement.datasets == ["orders", "thumbs"]
    assert store.retire_brand("acme", ["orders"], T0) == []  # already retired: no change

    later = T0 + timedelta(hours=2)
    back = [(active.id, "active", later), (paused.id, "paused", paused.next_run_at)]
    assert store.restore_brand("acme", back, later) is True
    assert store.get_job(active.id).status == "active"  # type: ignore[union-attr]
    assert store.get_job(active.id).next_run_at == later  # type: ignore[union-attr]
    assert store.get_job(paused.id).status == "paused"  # type: ignore[union-attr]
    assert store.get_job(gone.id).status == "archived"  # type: ignore[union-attr]
    assert store.dataset_status("orders", "acme").retired_at is None  # type: ignore[union-attr]
    assert store.dataset_status("thumbs", "acme") is None
    assert store.brand_retirements() == []
    assert store.restore_brand("acme", back, later) is False
