"""Chaos: workers draining a mixed queue while a driver kill -9s a random one every few seconds
and restarts it. At the end every job's runs are accounted for. Bounded in count and time."""

from __future__ import annotations

import itertools
import random
import subprocess
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from procs import Workers, wait_for

from pipectl.client import Client
from pipectl.settings import load_settings

pytestmark = pytest.mark.slow

CHAOS_SECONDS = 20
DRAIN_TIMEOUT_S = 120
WORKER_ENV = {
    "PIPECTL_STALE_AFTER": "2s",
    "PIPECTL_SHUTDOWN_GRACE": "1s",
    "PIPECTL_LOG_LEVEL": "WARNING",
}


@pytest.fixture(params=[("postgres", 3), ("sqlite", 2)], ids=["postgres-3", "sqlite-2"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, int]:
    backend, workers = request.param
    url = (
        request.getfixturevalue("postgres_url")
        if backend == "postgres"
        else f"sqlite:///{tmp_path / 'chaos.db'}"
    )
    Client.migrate_url(url)
    return url, workers


def enqueue_mix(client: Client, rng: random.Random) -> dict[int, str]:
    kinds: dict[int, str] = {}
    for i in range(48):
        kind = ("ok", "fail", "sleep", "timeout")[i % 4]
        brand = f"brand-{i % 6}"
        datasets = [f"ds-{i % 5}"]
        if kind == "ok":
            job = client.enqueue(
                "noop", brand, {"i": i, "datasets": datasets}, concurrency_key=None
            )
        elif kind == "fail":
            job = client.enqueue(
                "command",
                brand,
                {"i": i, "command": "exit 7", "datasets": datasets},
                max_retries=1,
                concurrency_key=None,
            )
        elif kind == "sleep":
            seconds = rng.choice([0.5, 1, 2, 3])
            job = client.enqueue(
                "sleep",
                brand,
                {"i": i, "seconds": seconds, "datasets": datasets},
                max_retries=6,
                concurrency_key=None,
            )
        else:
            job = client.enqueue(
                "command",
                brand,
                {"i": i, "command": "sleep 30", "datasets": datasets},
                timeout=timedelta(seconds=1),
                max_retries=1,
                concurrency_key=None,
            )
        kinds[job.id] = kind
    return kinds


def test_chaos(setup: tuple[str, int], workers: Workers) -> None:
    url, worker_count = setup
    rng = random.Random(1234)
    settings = load_settings(database_url=url, retry_base="1s", retry_cap="2s")
    client = Client.from_url(url, settings)
    kinds = enqueue_mix(client, rng)
    started = 0

    def start() -> subprocess.Popen[bytes]:
        nonlocal started
        started += 1
        return workers.start(url, "--worker-id", f"chaos-{started}", **WORKER_ENV)

    running = [start() for _ in range(worker_count)]
    kills = 0
    try:
        deadline = time.monotonic() + CHAOS_SECONDS
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(1.5, 3.0))
            victim = rng.randrange(len(running))
            workers.kill(running[victim])
            kills += 1
            running[victim] = start()

        def settled() -> bool:
            jobs = [client.get_job(job_id) for job_id in kinds]
            return all(j.status in ("archived", "failed") for j in jobs) and not client.list_runs(
                status="running", limit=10
            )

        wait_for(settled, timeout=DRAIN_TIMEOUT_S)  # the queue drains after the chaos
    finally:
        workers.stop_all()

    runs = client.list_runs(limit=10_000)
    tally: Counter[str] = Counter()
    by_job: dict[int, list] = {job_id: [] for job_id in kinds}
    for run in runs:
        by_job[run.job_id].append(run)
    for job_id, kind in kinds.items():
        job = client.get_job(job_id)
        job_runs = sorted(by_job[job_id], key=lambda r: r.attempt)
        # Each attempt ran to an outcome exactly once: attempts 1..n, none left running.
        assert [r.attempt for r in job_runs] == list(range(1, len(job_runs) + 1)), job_runs
        assert all(r.status in ("completed", "failed") and r.finished_at for r in job_runs)
        # One run at a time per job: no due occurrence ran twice in parallel.
        for earlier, later in itertools.pairwise(job_runs):
            assert earlier.finished_at <= later.started_at, (earlier, later)  # type: ignore[operator]
        stuck = sum(1 for r in job_runs if "stuck" in (r.error_message or ""))
        tally["recovered runs"] += stuck
        if job.status == "archived":
            assert job_runs[-1].status == "completed"
            assert all(r.status == "failed" for r in job_runs[:-1])
        else:
            assert job.status == "failed" and len(job_runs) == job.max_retries + 1
            assert all(r.status == "failed" for r in job_runs)
        for run in job_runs:
            if run.status == "failed" and "stuck" not in (run.error_message or ""):
                expected = {
                    "fail": "command exited with status 7",
                    "timeout": "timed out after 1s",
                }.get(kind, "worker shut down")
                assert expected in (run.error_message or ""), (kind, run.error_message)
        tally[f"{kind} → {job.status}"] += 1
        tally["runs"] += len(job_runs)
    # No dataset is fresh without a successful run behind it.
    completed = {
        (client.get_job(r.job_id).brand_id, r.finished_at) for r in runs if r.status == "completed"
    }
    for status in client.store.dataset_statuses():
        if status.last_success_at is not None:
            assert (status.brand_id, status.last_success_at) in completed, status
    tally["kills"] = kills
    print("\nchaos tally:", dict(sorted(tally.items())))
    assert tally["ok → archived"] == 12 and tally["fail → failed"] == 12
    assert tally["timeout → failed"] == 12
    client.close()
