"""Real worker processes sharing one PostgreSQL store: races, kill -9, a database restart."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import Workers, wait_for

from pipectl.client import Client

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def pg_client(postgres_url: str) -> Iterator[Client]:
    Client.migrate_url(postgres_url)
    with Client.from_url(postgres_url) as client:
        yield client


def enqueue_noops(client: Client, count: int) -> list[int]:
    return [
        client.enqueue("noop", f"brand-{i % 50}", {"i": i}, concurrency_key=None).id
        for i in range(count)
    ]


def test_four_workers_drain_2000_jobs_exactly_once(
    pg_client: Client, postgres_url: str, workers: Workers
) -> None:
    jobs = enqueue_noops(pg_client, 2000)
    procs = [
        workers.start(postgres_url, "--once", "--worker-id", f"w{n}", PIPECTL_CLAIM_BATCH_SIZE="5")
        for n in range(4)
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0
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
    time.sleep(1.5)
    workers.start(postgres_url, "--worker-id", "rescuer", PIPECTL_STALE_AFTER="1s")
    wait_for(lambda: pg_client.get_run(run.id).status == "failed")
    failed = pg_client.get_run(run.id)
    assert "stuck" in (failed.error_message or "") and "doomed" in (failed.error_message or "")
    assert pg_client.get_job(job.id).retry_count == 1


def test_an_idle_worker_wakes_on_enqueue(
    pg_client: Client, postgres_url: str, workers: Workers
) -> None:
    workers.start(postgres_url, "--poll-interval", "60s")
    wait_for(lambda: pg_client.store.workers())
    time.sleep(1)  # the worker is now idle, LISTENing
    job = pg_client.enqueue("noop", "acme", {})
    wait_for(lambda: pg_client.get_job(job.id).status == "archived", timeout=10)


def _restart_command() -> list[str] | None:
    clusters = Path("/etc/postgresql")
    if os.geteuid() != 0 or not shutil.which("pg_ctlcluster") or not clusters.is_dir():
        return None
    version = sorted(p.name for p in clusters.iterdir())[-1]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"]


def test_the_queue_drains_across_a_database_restart(
    pg_client: Client, postgres_url: str, workers: Workers
) -> None:
    restart = _restart_command()
    if restart is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but this machine cannot restart PostgreSQL (root + pg_ctlcluster)")
        pytest.skip("restarting PostgreSQL needs root and pg_ctlcluster")
    jobs = [
        pg_client.enqueue("sleep", "acme", {"seconds": 0.2, "i": i}, concurrency_key=None).id
        for i in range(30)
    ]
    worker = workers.start(postgres_url, "--worker-id", "survivor")
    wait_for(lambda: len(pg_client.list_runs(status="completed")) >= 3)
    pg_client.close()
    subprocess.run(restart, check=True, capture_output=True, timeout=120)
    client = wait_for(lambda: _try_open(postgres_url), timeout=120)
    assert isinstance(client, Client)
    with client:

        def settled() -> bool:
            """Every job done, or (if the restart failed its run) waiting in backoff."""
            states = [client.get_job(j) for j in jobs]
            return not client.list_runs(status="running") and all(
                j.status == "archived" or (j.status == "active" and j.retry_count > 0)
                for j in states
            )

        wait_for(settled, timeout=120)
        for job_id in jobs:  # re-arm what the restart failed, as an operator would
            if client.get_job(job_id).status == "active":
                client.retry_now(job_id)
        wait_for(lambda: all(client.get_job(j).status == "archived" for j in jobs), timeout=120)
    assert worker.poll() is None, "the worker died with the database"


def _try_open(url: str) -> Client | None:
    try:
        return Client.from_url(url)
    except Exception:
        return None
