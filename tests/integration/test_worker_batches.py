"""The worker's batches, in process over every real store: the claim grows while runs are quick and
falls back after a slow one, a quick run's outcome is committed with its batch-mates, and no
outcome is reported before it is committed."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipectl.client import Client
from pipectl.models import Claim, RunResult
from pipectl.settings import Settings, load_settings
from pipectl.store import Store, open_store
from pipectl.worker import QUICK_RUN_S, Worker, WorkerEvents

HERE = Path(__file__).resolve().parent


def batch_settings(url: str, **overrides: Any) -> Settings:
    return load_settings(database_url=url, poll_interval="0.2s", **overrides)


class ClaimLog:
    """A store factory whose stores note each claim's limit and how many it got."""

    def __init__(self) -> None:
        self.claims: list[tuple[int, int]] = []

    def __call__(self, url: str) -> Store:
        store = open_store(url)
        claim_due = store.claim_due

        def noted(worker_id: str, now: Any, limit: int) -> list[Claim]:
            claims = claim_due(worker_id, now, limit)
            self.claims.append((limit, len(claims)))
            return claims

        store.claim_due = noted  # type: ignore[method-assign]
        return store


def enqueue(client: Client, job_type: str, count: int, **parameters: Any) -> list[int]:
    return [
        client.enqueue(job_type, brand_id=f"b{n}", parameters=parameters, allow_duplicate=True).id
        for n in range(count)
    ]


def test_the_claim_doubles_while_runs_are_quick(store_url: str) -> None:
    settings = batch_settings(store_url, claim_batch_size="16")
    with Client.from_url(store_url, settings) as client:
        jobs = enqueue(client, "noop", 70)
    log = ClaimLog()
    stats = Worker(store_url, settings, once=True, store_factory=log).run()
    assert stats.completed == 70 and stats.released == 0
    assert log.claims == [
        (1, 1),
        (2, 2),
        (4, 4),
        (8, 8),
        (16, 16),
        (16, 16),
        (16, 16),
        (16, 7),
        (16, 0),
    ]
    with Client.from_url(store_url, settings) as client:
        assert {client.get_job(job).status for job in jobs} == {"archived"}
        assert len(client.list_runs(limit=1000)) == 70


def test_a_slow_run_gives_back_its_batch_mates_and_resets_the_claim(store_url: str) -> None:
    settings = batch_settings(store_url, claim_batch_size="8")
    with Client.from_url(store_url, settings) as client:
        enqueue(client, "noop", 7)  # claims of 1, 2, 4: the next claim is 8
        slow = client.enqueue("sleep", parameters={"seconds": QUICK_RUN_S * 4}).id
        later = enqueue(client, "noop", 10)
    log = ClaimLog()
    stats = Worker(store_url, settings, once=True, store_factory=log).run()
    # The claim of 8 took the slow job and 7 quick ones, gave those 7 back once the slow run
    # outlasted a quick one, and started again from 1.
    assert log.claims[:5] == [(1, 1), (2, 2), (4, 4), (8, 8), (1, 1)]
    assert stats.released == 7 and stats.completed == 18
    with Client.from_url(store_url, settings) as client:
        assert client.get_job(slow).status == "archived"
        # A given-back job ran once: its released run was removed, not left behind.
        for job in later:
            assert [run.status for run in client.list_runs(job_id=job)] == ["completed"]


class CheckCommitted(WorkerEvents):
    """Reads each reported run back through a connection of its own."""

    def __init__(self, url: str) -> None:
        self.reader = open_store(url)
        self.statuses: list[str] = []

    def on_run_finished(self, claim: Claim, result: RunResult, duration_s: float) -> None:
        run = self.reader.get_run(claim.run.id)
        self.statuses.append(run.status if run else "missing")


def test_an_outcome_is_reported_only_once_committed(store_url: str) -> None:
    settings = batch_settings(store_url, claim_batch_size="32")
    with Client.from_url(store_url, settings) as client:
        enqueue(client, "noop", 40)
    events = CheckCommitted(store_url)
    try:
        Worker(store_url, settings, once=True, events=events).run()
    finally:
        events.reader.close()
    assert events.statuses == ["completed"] * 40


class OpenWhen(WorkerEvents):
    """Opens a gate (helpers_jobs.GATES) the first time `condition`, read through a connection of
    its own, holds at one of the worker's ticks or reported outcomes: while a run held at that
    gate is under way, that is."""

    def __init__(self, url: str, gate: threading.Event, condition: Callable[[Store], bool]):
        self.reader = open_store(url)
        self.gate = gate
        self.condition = condition

    def check(self) -> None:
        if not self.gate.is_set() and self.condition(self.reader):
            self.gate.set()

    def on_tick(self) -> None:
        self.check()

    def on_run_finished(self, claim: Claim, result: RunResult, duration_s: float) -> None:
        self.check()

    def on_stop(self) -> None:
        self.reader.close()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, threading.Event]]:
    """A gate for a `helpers_jobs:held` run, by name: its run lasts until the test opens it."""
    monkeypatch.syspath_prepend(str(HERE))
    import helpers_jobs

    name = uuid.uuid4().hex
    yield name, helpers_jobs.GATES[name]
    helpers_jobs.GATES.pop(name).set()


def held(gate: str) -> dict[str, str]:
    return {"target": "helpers_jobs:held", "gate": gate}


def status(store: Store, job_id: int) -> str:
    job = store.get_job(job_id)
    assert job is not None
    return job.status


def test_quick_outcomes_do_not_wait_for_a_slow_batch_mate(
    store_url: str, gate: tuple[str, threading.Event]
) -> None:
    name, opened = gate
    settings = batch_settings(store_url, claim_batch_size="4")
    with Client.from_url(store_url, settings) as client:
        enqueue(client, "noop", 3)  # claims of 1 and 2: the next claim is 4
        quick = client.enqueue("noop", brand_id="quick").id
        slow = client.enqueue("python", brand_id="slow", parameters=held(name)).id
    # The slow run lasts until its batch-mate's outcome is committed; were that outcome kept
    # for the end of the batch, the gate would never open and the slow run would fail.
    events = OpenWhen(
        store_url,
        opened,
        lambda store: status(store, quick) == "archived" and status(store, slow) == "running",
    )
    stats = Worker(store_url, settings, once=True, events=events).run()
    assert opened.is_set()
    assert (stats.completed, stats.failed) == (5, 0)


def test_a_slow_runs_batch_mates_are_given_back_while_it_runs(
    store_url: str, gate: tuple[str, threading.Event]
) -> None:
    name, opened = gate
    settings = batch_settings(store_url, claim_batch_size="8")
    with Client.from_url(store_url, settings) as client:
        enqueue(client, "noop", 7)  # claims of 1, 2, 4: the next claim is 8
        slow = client.enqueue("python", brand_id="slow", parameters=held(name)).id
        mates = [client.enqueue("noop", brand_id=f"m{n}").id for n in range(7)]
    # Claimed with the slow job, they are due again for any worker while it runs, not after.
    events = OpenWhen(
        store_url,
        opened,
        lambda store: (
            status(store, slow) == "running"
            and all(status(store, mate) == "active" for mate in mates)
        ),
    )
    stats = Worker(store_url, settings, once=True, events=events).run()
    assert opened.is_set()
    assert (stats.released, stats.completed, stats.failed) == (7, 15, 0)
