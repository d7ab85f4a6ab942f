"""Real worker processes sharing one PostgreSQL store: races, kill -9 (a restart: test_reconnect)."""

from __future__ import annotations

import signal
import uuid
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest
from ageing import age_run
from procs import Workers, wait_for

from pipectl.client import Client
from pipectl.store.postgres import WAKE_CHANNEL, split_schema

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def pg_client(postgres_url: str) -> Iterator[Client]:
    Client.migrate_url(postgres_url)
    with Client.from_url(postgres_url) as client:
        yield client


def listening(url: str, application_name: str) -> bool:
    """Whether a connection of that name has LISTENed for wake-ups (its last query)."""
    with psycopg.connect(split_schema(url)[0], autocommit=True) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = %s AND query = %s",
            [application_name, f'LISTEN "{WAKE_CHANNEL}"'],
        ).fetchone()
    return row is not None


def enqueue_noops(client: Client, count: int) -> list[int]:
    return [
        client.enqueue("noop", f"brand-{i % 50}", {"i": i}, concurrency_key=None).id
        for i in range(count)
    ]


def test_four_workers_drain_2000_jobs_exactly_once(
    pg_client: Client, postgres_url: str, workers: Workers
) -> None:
    # All four are polling before the first job is queued: a worker started a moment earlier
    # than the others could otherwise drain 2,000 quick jobs on its own.
    procs = [
        workers.start(postgres_url, "--worker-id", f"w{n}", PIPECTL_CLAIM_BATCH_SIZE="5")
        for n in range(4)
    ]
    wait_for(lambda: len(pg_client.store.workers()) == 4)
    jobs = enqueue_noops(pg_client, 2000)
    wait_for(lambda: len(pg_client.list_runs(status="completed", limit=5000)) >= 2000, timeout=300)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    runs = pg_client.list_runs(limit=5000)
    per_job = Counter(run.job_id for run in runs)
    assert sorted(per_job) == sorted(jobs)
    assert set(per_job.values()) == {1}, "a job ran twice"
    assert {run.status for run in runs} == {"completed"}
    assert len({run.worker_id for run in runs}) > 1, "the work was not shared"


def test_kill_9_mid_run_is_recovered_by_the_next_sweep(
    pg_client: Client, postgres_url: str, workers: Workers
) -> None:
    job = pg_client.enqueue("sleep", "acme", {"seconds": 60})
    doomed = workers.start(postgres_url, "--worker-id", "doomed")
    run = wait_for(lambda: pg_client.list_runs(job_id=job.id, status="running"))[0]  # type: ignore[index]
    workers.kill(doomed)
    age_run(postgres_url, run.id)
    workers.start(postgres_url, "--worker-id", "rescuer")
    wait_for(lambda: pg_client.get_run(run.id).status == "failed")
    failed = pg_client.get_run(run.id)
    assert "stuck" in (failed.error_message or "") and "doomed" in (failed.error_message or "")
    assert pg_client.get_job(job.id).retry_count == 1


def test_an_idle_worker_wakes_on_enqueue(
    pg_client: Client, postgres_url: str, workers: Workers
) -> None:
    name = f"pipectl-idle-{uuid.uuid4().hex[:8]}"
    workers.start(f"{postgres_url}&application_name={name}", "--poll-interval", "60s")
    # Its wake-up connection LISTENs only once a poll found nothing: the worker is idle.
    wait_for(lambda: listening(postgres_url, name))
    job = pg_client.enqueue("noop", "acme", {})
    wait_for(lambda: pg_client.get_job(job.id).status == "archived", timeout=10)
