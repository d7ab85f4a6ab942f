"""What only PostgresStore has, against a real server, one schema per test: migrations racing,
the server's clock and errors, key locks raced by several connections, NUL characters, LISTEN,
a lost connection, and URLs shown without their password. The transitions every store makes
are proven by the contract suite (test_contract.py), which runs on PostgreSQL too.

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


# -- errors the server raises ---------------------------------------------------------------


def test_a_check_constraint_violation_is_invalid_input_naming_it(store: PostgresStore) -> None:
    job = store.insert_job(new_job(), NOW)
    with pytest.raises(InvalidInput, match="scheduled_jobs_status_check"):
        store.update_job(job.id, {"status": "sleeping"}, NOW)
    assert store.get_job(job.id) == job


# -- races between connections -------------------------------------------------------------


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


# -- what PostgreSQL text cannot hold ---------------------------------------------------------


def test_finish_survives_nul_characters_in_handler_output(store: PostgresStore) -> None:
    store.insert_job(new_job(), NOW)
    claim = claim_one(store)
    outcome = replace(result(NOW), logs="a\x00b", steps=[{"error": "x\x00y"}])
    assert store.finish_run(claim.run.id, claim.run.lease_token, outcome)
    run = store.get_run(claim.run.id)
    assert run is not None and run.logs == "a\ufffdb"


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
