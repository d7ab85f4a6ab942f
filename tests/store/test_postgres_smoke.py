"""PostgresStore against a real server: the atomic transitions, races included, one schema per test.

Set PIPECTL_TEST_POSTGRES_URL to point elsewhere. Skipped when the server is unreachable, except
under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from pipectl.errors import InvalidInput, SchemaMissing, StoreUnavailable
from pipectl.models import (
    Claim,
    DatasetOutcome,
    JobUpdate,
    NewJob,
    RunResult,
    Threshold,
    WorkerInfo,
)
from pipectl.store.migrations import load_migrations
from pipectl.store.postgres import PostgresStore, mask_password, split_schema

pytestmark = pytest.mark.postgres

POSTGRES_URL = os.environ.get(
    "PIPECTL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def open_store(postgres_url: str) -> Iterator[Callable[[], PostgresStore]]:
    """Open more stores (each its own connection, like another worker) on the test's schema."""
    opened: list[PostgresStore] = []

    def open_one() -> PostgresStore:
        opened.append(PostgresStore(postgres_url))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], PostgresStore]) -> PostgresStore:
    store = open_store()
    store.migrate()
    return store


def new_job(**changes: Any) -> NewJob:
    job = NewJob(
        brand_id="acme",
        job_type="meta_sync",
        name="sync",
        schedule_type="one_time",
        cron_expression=None,
        timezone="UTC",
        next_run_at=NOW,
        status="active",
        parameters={"datasets": ["performance"], "days": 3},
        max_retries=3,
        retry_base_seconds=300,
        retry_cap_seconds=3600,
        timeout_seconds=60.0,
        dedupe_key=None,
        concurrency_key=None,
    )
    return replace(job, **changes)


def result(
    at: datetime,
    *,
    succeeded: bool = True,
    job_status: str = "archived",
    next_run_at: datetime | None = None,
    retry_count: int = 0,
    datasets: list[DatasetOutcome] | None = None,
) -> RunResult:
    error = None if succeeded else "boom"
    return RunResult(
        status="completed" if succeeded else "failed",
        finished_at=at,
        error_message=error,
        logs="12:00:00 INFO done\n",
        steps=[{"name": "fetch", "status": "completed", "datasets": ["performance"]}],
        job_update=JobUpdate(job_status, next_run_at, retry_count, error),
        datasets=datasets or [],
    )


def claim_one(store: PostgresStore, at: datetime = NOW) -> Claim:
    (claim,) = store.claim_due("w1", at, 1)
    return claim


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(0..count-1) at the same moment in as many threads."""
    barrier = threading.Barrier(count)

    def start(index: int) -> Any:
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(start, range(count)))


# -- schema ------------------------------------------------------------------------------------


def test_migrate_installs_the_schema_once(open_store: Callable[[], PostgresStore]) -> None:
    store = open_store()
    assert store.schema_version() is None
    with pytest.raises(SchemaMissing):
        store.check_schema()
    with pytest.raises(SchemaMissing):
        store.get_job(1)

    every = [m.version for m in load_migrations("postgres")]
    assert store.migrate() == every
    assert store.migrate() == []
    assert store.schema_version() == every[-1]
    store.check_schema()


def test_concurrent_migrate_applies_each_version_once(
    open_store: Callable[[], PostgresStore],
) -> None:
    stores = [open_store() for _ in range(4)]
    applied = in_threads(4, lambda i: stores[i].migrate())
    every = [m.version for m in load_migrations("postgres")]
    assert sorted(applied) == [[], [], [], every]


def test_db_now_is_aware_utc(store: PostgresStore) -> None:
    db_now = store.db_now()
    assert db_now.tzinfo == UTC
    assert abs(db_now - datetime.now(UTC)) < timedelta(minutes=1)


# -- jobs --------------------------------------------------------------------------------------


def test_insert_job_round_trips(store: PostgresStore) -> None:
    new = new_job(brand_id=None, concurrency_key="meta", timeout_seconds=None)
    job = store.insert_job(new, NOW)

    assert job.id > 0
    assert (job.brand_id, job.status, job.next_run_at) == (None, "active", NOW)
    assert job.parameters == {"datasets": ["performance"], "days": 3}
    assert (job.retry_count, job.last_run_id, job.timeout_seconds) == (0, None, None)
    assert job.created_at == job.updated_at == NOW
    assert job.next_run_at is not None and job.next_run_at.tzinfo == UTC
    assert store.get_job(job.id) == job
    assert store.get_job(job.id + 1000) is None


def test_enqueue_returns_the_active_job_with_the_same_dedupe_key(store: PostgresStore) -> None:
    first, created = store.enqueue(new_job(dedupe_key="acme:meta"), NOW)
    assert created
    again, created = store.enqueue(new_job(dedupe_key="acme:meta", name="other"), NOW)
    assert (again, created) == (first, False)

    # Once that job is no longer active, the key is free again.
    store.update_job(first.id, {"status": "archived"}, NOW)
    fresh, created = store.enqueue(new_job(dedupe_key="acme:meta"), NOW)
    assert created and fresh.id != first.id
    # No key, no dedupe.
    assert store.enqueue(new_job(), NOW)[1]
    assert store.enqueue(new_job(), NOW)[1]


def test_concurrent_enqueue_creates_one_job(
    store: PostgresStore, open_store: Callable[[], PostgresStore]
) -> None:
    stores = [open_store() for _ in range(8)]
    outcomes = in_threads(8, lambda i: stores[i].enqueue(new_job(dedupe_key="race"), NOW))
    assert sum(created for _, created in outcomes) == 1
    assert len({job.id for job, _ in outcomes}) == 1


def test_update_job_applies_changes_and_honours_only_if_status(store: PostgresStore) -> None:
    job = store.insert_job(new_job(), NOW)
    later = NOW + 5 * MINUTE
    updated = store.update_job(
        job.id, {"next_run_at": later, "parameters": {"days": 7}, "max_retries": 5}, later
    )
    assert updated is not None
    assert (updated.next_run_at, updated.parameters, updated.max_retries) == (
        later,
        {"days": 7},
        5,
    )
    assert (updated.name, updated.updated_at) == (job.name, later)

    assert store.update_job(job.id, {"status": "paused"}, NOW, only_if_status=("running",)) is None
    assert store.get_job(job.id).status == "active"
    paused = store.update_job(job.id, {"status": "paused"}, NOW, only_if_status=("active",))
    assert paused is not None and paused.status == "paused"
    assert store.update_job(job.id + 1000, {"name": "x"}, NOW) is None
    with pytest.raises(ValueError, match="not editable"):
        store.update_job(job.id, {"created_at": NOW}, NOW)
    with pytest.raises(InvalidInput, match="scheduled_jobs_status_check"):
        store.update_job(job.id, {"status": "sleeping"}, NOW)


def test_list_jobs_filters(store: PostgresStore) -> None:
    acme = store.insert_job(new_job(), NOW)
    other = store.insert_job(new_job(brand_id="other", job_type="template_scrape"), NOW)
    global_job = store.insert_job(new_job(brand_id=None), NOW)
    backoff = store.insert_job(new_job(), NOW)
    store.update_job(backoff.id, {"retry_count": 2}, NOW)

    def ids(**filters: Any) -> list[int]:
        return [job.id for job in store.list_jobs(**filters)]

    assert ids() == [acme.id, other.id, global_job.id, backoff.id]
    assert ids(brand_id="acme") == [acme.id, backoff.id]
    assert ids(brand_id=None) == [global_job.id]
    assert ids(job_type="template_scrape") == [other.id]
    assert ids(statuses=("paused",)) == []
    assert ids(statuses=()) == ids()
    assert ids(in_backoff=True) == [backoff.id]
    assert ids(limit=2) == [acme.id, other.id]


# -- claiming ----------------------------------------------------------------------------------


def test_claim_due_takes_the_oldest_due_active_jobs(store: PostgresStore) -> None:
    second = store.insert_job(new_job(next_run_at=NOW - MINUTE), NOW)
    first = store.insert_job(new_job(next_run_at=NOW - 2 * MINUTE), NOW)
    third = store.insert_job(new_job(next_run_at=NOW), NOW)
    store.insert_job(new_job(next_run_at=NOW + MINUTE), NOW)  # not due yet
    store.insert_job(new_job(status="paused"), NOW)

    claims = store.claim_due("w1", NOW, 2)
    assert [claim.job.id for claim in claims] == [first.id, second.id]
    for claim in claims:
        assert claim.job.status == "running"
        assert claim.job.last_run_id == claim.run.id
        assert (claim.run.job_id, claim.run.status, claim.run.attempt) == (
            claim.job.id,
            "running",
            1,
        )
        assert claim.run.worker_id == "w1"
        assert claim.run.started_at == claim.run.heartbeat_at == NOW
        assert len(claim.run.lease_token) == 32
    assert claims[0].run.lease_token != claims[1].run.lease_token

    assert [claim.job.id for claim in store.claim_due("w2", NOW, 5)] == [third.id]
    assert store.claim_due("w2", NOW, 5) == []


def test_attempt_counts_the_retries(store: PostgresStore) -> None:
    job = store.insert_job(new_job(), NOW)
    store.update_job(job.id, {"retry_count": 2}, NOW)
    assert claim_one(store).run.attempt == 3


def test_concurrent_claims_never_share_a_job(
    store: PostgresStore, open_store: Callable[[], PostgresStore]
) -> None:
    job_ids = {store.insert_job(new_job(next_run_at=NOW - i * MINUTE), NOW).id for i in range(60)}
    workers = [open_store() for _ in range(4)]

    def drain(index: int) -> list[int]:
        taken = []
        while claims := workers[index].claim_due(f"w{index}", NOW, 3):
            taken += [claim.job.id for claim in claims]
        return taken

    taken = [job_id for batch in in_threads(4, drain) for job_id in batch]
    assert sorted(taken) == sorted(job_ids)  # each job exactly once


def test_one_running_job_per_concurrency_key(store: PostgresStore) -> None:
    a = store.insert_job(new_job(concurrency_key="acme-api", next_run_at=NOW - 2 * MINUTE), NOW)
    b = store.insert_job(new_job(concurrency_key="acme-api", next_run_at=NOW - MINUTE), NOW)
    c = store.insert_job(new_job(concurrency_key="other-api"), NOW)
    d = store.insert_job(new_job(), NOW)

    claims = store.claim_due("w1", NOW, 10)
    assert [claim.job.id for claim in claims] == [a.id, c.id, d.id]
    assert store.claim_due("w1", NOW, 10) == []  # b's key is held by a's running run

    store.finish_run(claims[0].run.id, claims[0].run.lease_token, result(NOW))
    assert [claim.job.id for claim in store.claim_due("w1", NOW, 10)] == [b.id]


def test_racing_workers_never_both_hold_a_key(
    store: PostgresStore, open_store: Callable[[], PostgresStore]
) -> None:
    keys = ["k1", "k2", "k3"]
    for i in range(30):
        store.insert_job(new_job(concurrency_key=keys[i % 3], next_run_at=NOW - i * MINUTE), NOW)
    workers = [open_store() for _ in range(6)]

    def claim_repeatedly(index: int) -> list[str | None]:
        taken = []
        for _ in range(5):
            taken += [c.job.concurrency_key for c in workers[index].claim_due("w", NOW, 2)]
        return taken

    taken = [key for batch in in_threads(6, claim_repeatedly) for key in batch]
    assert Counter(taken) == Counter(keys)
    assert len(store.list_runs(status="running")) == 3


# -- finishing ---------------------------------------------------------------------------------


def test_finish_run_records_run_job_and_datasets(store: PostgresStore) -> None:
    store.insert_job(new_job(), NOW)
    claim = claim_one(store)
    later = NOW + 3 * MINUTE
    outcome = result(
        later,
        succeeded=False,
        job_status="active",
        next_run_at=later + 5 * MINUTE,
        retry_count=1,
        datasets=[
            DatasetOutcome("acme", "performance", True),
            DatasetOutcome(None, "catalog", False, "step fetch: boom"),
        ],
    )

    assert not store.finish_run(claim.run.id, "not-the-token", outcome)
    assert store.finish_run(claim.run.id, claim.run.lease_token, outcome)
    assert not store.finish_run(claim.run.id, claim.run.lease_token, outcome)  # already done

    run = store.get_run(claim.run.id)
    assert run is not None
    assert (run.status, run.finished_at, run.error_message) == ("failed", later, "boom")
    assert run.steps == outcome.steps
    assert run.logs == outcome.logs
    job = store.get_job(claim.job.id)
    assert job is not None
    assert (job.status, job.next_run_at, job.retry_count, job.last_error) == (
        "active",
        later + 5 * MINUTE,
        1,
        "boom",
    )
    assert job.updated_at == later

    performance = store.dataset_status("performance", "acme")
    assert performance is not None
    assert (performance.last_success_at, performance.last_attempt_at) == (later, later)
    assert (performance.last_status, performance.last_run_id) == ("completed", run.id)
    catalog = store.dataset_status("catalog", None)
    assert catalog is not None
    assert (catalog.last_success_at, catalog.last_status) == (None, "failed")
    assert catalog.last_error == "step fetch: boom"
    assert [(d.brand_id, d.dataset) for d in store.dataset_statuses()] == [
        (None, "catalog"),
        ("acme", "performance"),
    ]
    assert [d.dataset for d in store.dataset_statuses(brand_id=None)] == ["catalog"]


def test_dataset_timestamps_only_move_forward(store: PostgresStore) -> None:
    store.insert_job(new_job(), NOW)
    store.insert_job(new_job(), NOW)
    early, late = store.claim_due("w1", NOW, 2)
    t1, t2 = NOW + MINUTE, NOW + 2 * MINUTE

    dataset = [DatasetOutcome("acme", "performance", True)]
    assert store.finish_run(late.run.id, late.run.lease_token, result(t2, datasets=dataset))
    # The earlier attempt reports after the later one, and failed: it changes nothing visible.
    failed = [DatasetOutcome("acme", "performance", False, "boom")]
    assert store.finish_run(
        early.run.id, early.run.lease_token, result(t1, succeeded=False, datasets=failed)
    )

    status = store.dataset_status("performance", "acme")
    assert status is not None
    assert (status.last_success_at, status.last_attempt_at) == (t2, t2)
    assert (status.last_status, status.last_error, status.last_run_id) == (
        "completed",
        None,
        late.run.id,
    )


def test_finish_keeps_a_status_the_operator_set_mid_run(store: PostgresStore) -> None:
    store.insert_job(new_job(schedule_type="recurring", cron_expression="0 * * * *"), NOW)
    claim = claim_one(store)
    store.update_job(claim.job.id, {"status": "paused"}, NOW)

    later = NOW + MINUTE
    store.finish_run(
        claim.run.id,
        claim.run.lease_token,
        result(later, job_status="active", next_run_at=NOW + 60 * MINUTE),
    )
    job = store.get_job(claim.job.id)
    assert job is not None
    assert (job.status, job.next_run_at) == ("paused", NOW + 60 * MINUTE)


def test_finish_survives_nul_characters_in_handler_output(store: PostgresStore) -> None:
    store.insert_job(new_job(), NOW)
    claim = claim_one(store)
    outcome = replace(result(NOW), logs="a\x00b", steps=[{"error": "x\x00y"}])
    assert store.finish_run(claim.run.id, claim.run.lease_token, outcome)
    run = store.get_run(claim.run.id)
    assert run is not None and run.logs == "a\ufffdb"


# -- leases ------------------------------------------------------------------------------------


def test_heartbeat_renews_live_leases_and_returns_lost_ones(store: PostgresStore) -> None:
    store.register_worker(WorkerInfo("w1", "host-a", 42, NOW, NOW, "0.1.0"))
    store.insert_job(new_job(), NOW)
    store.insert_job(new_job(), NOW)
    live, done = store.claim_due("w1", NOW, 2)
    store.finish_run(done.run.id, done.run.lease_token, result(NOW))

    later = NOW + MINUTE
    leases = [
        (live.run.id + 1000, "unknown"),
        (live.run.id, live.run.lease_token),
        (done.run.id, done.run.lease_token),
    ]
    assert store.heartbeat("w1", leases, later) == [live.run.id + 1000, done.run.id]
    assert store.heartbeat("w1", [(live.run.id, "stolen")], later) == [live.run.id]
    assert store.heartbeat("w1", [], later) == []

    renewed = store.get_run(live.run.id)
    assert renewed is not None and renewed.heartbeat_at == later
    (worker,) = store.workers()
    assert (worker.id, worker.host, worker.pid, worker.last_seen_at) == ("w1", "host-a", 42, later)


def test_forget_workers_keeps_recent_ones_and_those_still_running(store: PostgresStore) -> None:
    old = NOW - 10 * MINUTE
    for worker_id in ("gone", "busy"):
        store.register_worker(WorkerInfo(worker_id, "host-a", 42, old, old, "0.1.0"))
    store.register_worker(WorkerInfo("live", "host-b", 43, NOW, NOW, "0.1.0"))
    store.insert_job(new_job(), NOW)
    store.claim_due("busy", NOW, 1)

    assert store.forget_workers(NOW - MINUTE) == 1
    assert sorted(worker.id for worker in store.workers()) == ["busy", "live"]
    assert store.forget_workers(NOW - MINUTE) == 0


def test_fail_stuck_run_only_fails_runs_still_stuck(store: PostgresStore) -> None:
    store.insert_job(new_job(), NOW)
    claim = claim_one(store)
    failure = result(NOW + 10 * MINUTE, succeeded=False, job_status="active", retry_count=1)

    # Heartbeat at NOW is not older than a NOW cutoff.
    assert store.stuck_runs(NOW, NOW) == []
    assert not store.fail_stuck_run(claim.run.id, NOW, NOW, failure)

    store.heartbeat("w1", [(claim.run.id, claim.run.lease_token)], NOW + 2 * MINUTE)
    assert not store.fail_stuck_run(
        claim.run.id, NOW + MINUTE, NOW + MINUTE, failure
    )  # it heartbeated

    cutoff = NOW + 5 * MINUTE
    (stale,) = store.stuck_runs(cutoff, cutoff)
    assert (stale.run.id, stale.job.id) == (claim.run.id, claim.job.id)
    assert store.fail_stuck_run(claim.run.id, cutoff, cutoff, failure)
    assert not store.fail_stuck_run(claim.run.id, cutoff, cutoff, failure)  # already failed
    assert not store.finish_run(claim.run.id, claim.run.lease_token, result(NOW))  # lease lost

    job = store.get_job(claim.job.id)
    assert job is not None and (job.status, job.retry_count) == ("active", 1)


def test_release_run_gives_the_job_back_unchanged(store: PostgresStore) -> None:
    job = store.insert_job(new_job(next_run_at=NOW - MINUTE), NOW)
    claim = claim_one(store)

    assert not store.release_run(claim.run.id, "not-the-token", NOW)
    assert store.release_run(claim.run.id, claim.run.lease_token, NOW + MINUTE)
    assert not store.release_run(claim.run.id, claim.run.lease_token, NOW + MINUTE)

    assert store.get_run(claim.run.id) is None
    released = store.get_job(job.id)
    assert released is not None
    assert (released.status, released.next_run_at, released.last_run_id) == (
        "active",
        NOW - MINUTE,
        None,
    )
    assert claim_one(store).job.id == job.id


# -- reads -------------------------------------------------------------------------------------


def test_list_runs_newest_first_with_filters(store: PostgresStore) -> None:
    acme = store.insert_job(new_job(), NOW)
    store.insert_job(new_job(brand_id=None), NOW)
    first, second = store.claim_due("w1", NOW, 2)
    store.finish_run(first.run.id, first.run.lease_token, result(NOW))

    assert [run.id for run in store.list_runs()] == [second.run.id, first.run.id]
    assert [run.id for run in store.list_runs(brand_id="acme")] == [first.run.id]
    assert [run.id for run in store.list_runs(brand_id=None)] == [second.run.id]
    assert [run.id for run in store.list_runs(job_id=acme.id)] == [first.run.id]
    assert [run.id for run in store.list_runs(status="running")] == [second.run.id]
    assert [run.id for run in store.list_runs(limit=1)] == [second.run.id]
    assert set(store.runs_by_id([first.run.id, second.run.id, 999_999])) == {
        first.run.id,
        second.run.id,
    }


def test_set_threshold_upserts_per_brand_and_dataset(store: PostgresStore) -> None:
    hour = timedelta(hours=1)
    store.set_threshold(Threshold("performance", "acme", hour, 2 * hour), NOW)
    store.set_threshold(Threshold("performance", None, hour, 3 * hour), NOW)
    store.set_threshold(Threshold("performance", None, 2 * hour, 4 * hour), NOW)
    assert store.thresholds() == [
        Threshold("performance", None, 2 * hour, 4 * hour),
        Threshold("performance", "acme", hour, 2 * hour),
    ]


# -- waking and errors -------------------------------------------------------------------------


def test_wait_for_work_returns_on_enqueue(
    store: PostgresStore, open_store: Callable[[], PostgresStore]
) -> None:
    started = time.monotonic()
    store.wait_for_work(0.2)  # nothing queued: waits the whole timeout
    assert time.monotonic() - started >= 0.2

    other = open_store()
    timer = threading.Timer(0.2, lambda: other.enqueue(new_job(), NOW))
    timer.start()
    started = time.monotonic()
    store.wait_for_work(30)
    timer.join()
    assert time.monotonic() - started < 10


def test_runs_wait_listens_on_the_listen_url_and_wakes_when_a_run_ends(
    store: PostgresStore, postgres_url: str
) -> None:
    """`runs wait` LISTENs where the worker's wake-ups do: on PIPECTL_LISTEN_URL when it is set
    (a direct connection beside a transaction pooler, where a LISTEN would not hear)."""
    server = split_schema(postgres_url)[0]
    name = f"pipectl-listen-{uuid.uuid4().hex[:8]}"
    waiting = PostgresStore(
        postgres_url, listen_url=f"{server}{'&' if '?' in server else '?'}application_name={name}"
    )
    try:
        assert not waiting.wait_for_run_end(0)  # starts listening
        with psycopg.connect(server, autocommit=True) as admin:
            (query,) = admin.execute(
                "SELECT query FROM pg_stat_activity WHERE application_name = %s", [name]
            ).fetchone()
        assert query == 'LISTEN "pipectl_runs"'

        store.insert_job(new_job(), NOW)
        (claim,) = store.claim_due("w", NOW, 1)
        result = RunResult("completed", NOW, None, "", [], JobUpdate("archived", None, 0, None), [])
        assert store.finish_run(claim.run.id, claim.run.lease_token, result)
        assert waiting.wait_for_run_end(10)
    finally:
        waiting.close()


def test_a_lost_connection_fails_one_call_then_reconnects(
    store: PostgresStore,
) -> None:
    job = store.insert_job(new_job(), NOW)
    # End the store's session from outside, as a server restart or failover would.
    backend_pid = store._conn.info.backend_pid
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])

    with pytest.raises(StoreUnavailable, match=r"^PostgreSQL at .* failed: "):
        store.get_job(job.id)
    assert store.get_job(job.id) == job


def test_unreachable_server_is_one_line_without_the_password() -> None:
    with pytest.raises(StoreUnavailable) as caught:
        PostgresStore("postgresql://postgres:s3cret@127.0.0.1:1/test?schema=x")
    message = str(caught.value)
    assert message.startswith("cannot reach PostgreSQL at 127.0.0.1:1/test: ")
    assert "s3cret" not in message and "\n" not in message
    assert caught.value.exit_code == 3


def test_display_url_masks_the_password() -> None:
    assert (
        mask_password("postgresql://app:s3cret@db:5432/pipectl?schema=x")
        == "postgresql://app:***@db:5432/pipectl?schema=x"
    )
    assert mask_password("postgresql://db/pipectl?password=s3cret") == (
        "postgresql://db/pipectl?password=***"
    )
