"""Concurrency keys with real worker processes, on every store: runs that share a key never
overlap in time; runs with different keys do run in parallel; a recovered run frees its key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipectl.client import Client
from pipectl.models import Run

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        chosen = f"sqlite:///{tmp_path / 'keys.db'}"
    else:
        chosen = request.getfixturevalue("postgres_url")
    Client.migrate_url(chosen)
    return chosen


@pytest.fixture
def client(url: str) -> Iterator[Client]:
    with Client.from_url(url) as opened:
        yield opened


@pytest.fixture
def start_workers(url: str, tmp_path: Path) -> Iterator[Callable[..., list[subprocess.Popen[str]]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(count: int, **extra_env: str) -> list[subprocess.Popen[str]]:
        env = {
            **os.environ,
            "PIPECTL_DATABASE_URL": url,
            "PIPECTL_POLL_INTERVAL": "0.2s",
            "PIPECTL_HEARTBEAT_INTERVAL": "0.3s",
            **extra_env,
        }
        for _ in range(count):
            log = (tmp_path / f"worker-{len(procs)}.log").open("w")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "pipectl", "run-worker"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    start_new_session=True,
                    text=True,
                )
            )
        return procs[-count:]

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def finished_runs(client: Client, job_ids: list[int]) -> list[Run]:
    runs = [run for run in client.list_runs(limit=100) if run.job_id in job_ids]
    return runs if len(runs) == len(job_ids) and all(r.finished_at for r in runs) else []


def overlaps(a: Run, b: Run) -> bool:
    assert a.finished_at and b.finished_at
    return a.started_at < b.finished_at and b.started_at < a.finished_at


def make_due(client: Client, job_id: int) -> None:
    now = datetime.now(UTC)
    client.store.update_job(job_id, {"next_run_at": now}, now)


def test_runs_sharing_a_key_never_overlap(
    client: Client, start_workers: Callable[..., list[subprocess.Popen[str]]]
) -> None:
    scheduled = client.add_job("sleep", "0 3 * * *", brand_id="acme", parameters={"seconds": 2})
    manual = client.enqueue("sleep", "acme", {"seconds": 2, "manual": True})
    assert scheduled.concurrency_key == manual.concurrency_key == "sleep:acme"
    make_due(client, scheduled.id)
    start_workers(2)
    (a, b) = wait_for(lambda: finished_runs(client, [scheduled.id, manual.id]))  # type: ignore[misc]
    assert not overlaps(a, b), (a, b)
    # The one that waited ran right after the other, not at the next poll of some later cycle.
    first, second = sorted((a, b), key=lambda run: run.started_at)
    assert second.started_at >= first.finished_at  # type: ignore[operator]


def test_runs_with_different_keys_run_in_parallel(
    client: Client, start_workers: Callable[..., list[subprocess.Popen[str]]]
) -> None:
    acme = client.enqueue("sleep", "acme", {"seconds": 2})
    globex = client.enqueue("sleep", "globex", {"seconds": 2})
    start_workers(2)
    (a, b) = wait_for(lambda: finished_runs(client, [acme.id, globex.id]))  # type: ignore[misc]
    assert overlaps(a, b), (a, b)


def test_a_waiting_job_says_what_it_waits_for(
    client: Client, start_workers: Callable[..., list[subprocess.Popen[str]]], url: str
) -> None:
    running = client.enqueue("sleep", "acme", {"seconds": 30})
    start_workers(1)
    run = wait_for(lambda: client.list_runs(job_id=running.id, status="running"))[0]  # type: ignore[index]
    waiting = client.enqueue(
        "sleep", "acme", {"seconds": 30}
    )  # identical to a running job: accepted
    assert waiting.id != running.id
    env = {**os.environ, "PIPECTL_DATABASE_URL": url}
    out = subprocess.run(
        [sys.executable, "-m", "pipectl", "jobs", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    doc = {job["id"]: job for job in json.loads(out.stdout)}
    assert doc[running.id]["waiting_on"] is None
    assert doc[waiting.id]["waiting_on"]["run_id"] == run.id
    assert doc[waiting.id]["waiting_on"]["concurrency_key"] == "sleep:acme"
    status = subprocess.run(
        [sys.executable, "-m", "pipectl", "status"],
        env={**env, "COLUMNS": "250"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"waiting for sleep:acme (run {run.id} on worker" in status.stdout


def test_recovering_a_killed_run_frees_its_key(
    client: Client, start_workers: Callable[..., list[subprocess.Popen[str]]]
) -> None:
    stuck = client.enqueue("sleep", "acme", {"seconds": 60})
    (doomed,) = start_workers(1)
    run = wait_for(lambda: client.list_runs(job_id=stuck.id, status="running"))[0]  # type: ignore[index]
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    follower = client.enqueue("noop", "acme", {}, concurrency_key="sleep:acme")
    time.sleep(1.5)
    start_workers(1, PIPECTL_STALE_AFTER="1s")
    wait_for(lambda: client.get_job(follower.id).status == "archived")
    assert client.get_run(run.id).status == "failed"
