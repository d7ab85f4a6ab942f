"""Concurrency keys with real worker processes, on every store: runs that share a key never
overlap in time; runs with different keys do run in parallel; a recovered run frees its key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ageing import age_run
from procs import Workers, pipectl, wait_for

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


def finished_runs(client: Client, job_ids: list[int]) -> list[Run]:
    runs = [run for run in client.list_runs(limit=100) if run.job_id in job_ids]
    return runs if len(runs) == len(job_ids) and all(r.finished_at for r in runs) else []


def overlaps(a: Run, b: Run) -> bool:
    assert a.finished_at and b.finished_at
    return a.started_at < b.finished_at and b.started_at < a.finished_at


def make_due(client: Client, job_id: int) -> None:
    now = datetime.now(UTC)
    client.store.update_job(job_id, {"next_run_at": now}, now)


def test_runs_sharing_a_key_never_overlap(client: Client, workers: Workers, url: str) -> None:
    scheduled = client.add_job("sleep", "0 3 * * *", brand_id="acme", parameters={"seconds": 2})
    manual = client.enqueue("sleep", "acme", {"seconds": 2, "manual": True})
    assert scheduled.concurrency_key == manual.concurrency_key == "sleep:acme"
    make_due(client, scheduled.id)
    workers.start(url)
    workers.start(url)
    (a, b) = wait_for(lambda: finished_runs(client, [scheduled.id, manual.id]))  # type: ignore[misc]
    assert not overlaps(a, b), (a, b)
    # The one that waited ran right after the other, not at the next poll of some later cycle.
    first, second = sorted((a, b), key=lambda run: run.started_at)
    assert second.started_at >= first.finished_at  # type: ignore[operator]


def test_runs_with_different_keys_run_in_parallel(
    client: Client, workers: Workers, url: str
) -> None:
    acme = client.enqueue("sleep", "acme", {"seconds": 2})
    globex = client.enqueue("sleep", "globex", {"seconds": 2})
    workers.start(url)
    workers.start(url)
    (a, b) = wait_for(lambda: finished_runs(client, [acme.id, globex.id]))  # type: ignore[misc]
    assert overlaps(a, b), (a, b)


def test_a_waiting_job_says_what_it_waits_for(client: Client, workers: Workers, url: str) -> None:
    running = client.enqueue("sleep", "acme", {"seconds": 30})
    workers.start(url)
    run = wait_for(lambda: client.list_runs(job_id=running.id, status="running"))[0]
    # Identical to a running job: a new request, accepted.
    waiting = client.enqueue("sleep", "acme", {"seconds": 30})
    assert waiting.id != running.id
    doc = {job["id"]: job for job in json.loads(pipectl(url, "jobs", "list", "--json").stdout)}
    assert doc[running.id]["waiting_on"] is None
    assert doc[waiting.id]["waiting_on"]["run_id"] == run.id
    assert doc[waiting.id]["waiting_on"]["concurrency_key"] == "sleep:acme"
    status = pipectl(url, "status", COLUMNS="250")
    assert f"waiting for sleep:acme (run {run.id} on worker" in status.stdout


def test_recovering_a_killed_run_frees_its_key(client: Client, workers: Workers, url: str) -> None:
    stuck = client.enqueue("sleep", "acme", {"seconds": 60})
    doomed = workers.start(url)
    run = wait_for(lambda: client.list_runs(job_id=stuck.id, status="running"))[0]  # type: ignore[index]
    workers.kill(doomed)
    follower = client.enqueue("noop", "acme", {}, concurrency_key="sleep:acme")
    age_run(url, run.id)
    workers.start(url)
    wait_for(lambda: client.get_job(follower.id).status == "archived")
    assert client.get_run(run.id).status == "failed"


def test_two_installs_in_one_database_drain_the_same_key_side_by_side(
    two_schemas: tuple[str, str], workers: Workers
) -> None:
    """Issue 19: each schema's key locks are its own, so a worker never passes over a key
    because another install's worker holds the same key."""
    queued: dict[str, list[int]] = {}
    for url in two_schemas:
        with Client.from_url(url) as client:
            queued[url] = [
                client.enqueue("noop", concurrency_key="shared", allow_duplicate=True).id
                for _ in range(100)
            ]
    procs = {url: workers.start(url, "--once") for url in two_schemas}
    for proc in procs.values():
        assert proc.wait(timeout=120) == 0, workers.log(proc)
    for url, ids in queued.items():
        with Client.from_url(url) as client:
            statuses = [client.get_job(job_id).status for job_id in ids]
        assert statuses == ["archived"] * 100, (url, workers.log(procs[url])[-2000:])
