"""The one injected clock: `Worker` and `Client` read "now" and wait through the `Clock` they are
given, so a test sets the time and drives the waits (reconnect delays, job timeouts) without
freezegun and without waiting. Real SQLite and PostgreSQL stores; the store is made to fail by
a factory that wraps the real one."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipectl.client import Client
from pipectl.clock import Clock
from pipectl.errors import StoreUnavailable
from pipectl.settings import Settings
from pipectl.store import Store, open_store
from pipectl.store.base import Listener, listener
from pipectl.worker import Worker

AT = datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)  # far from the real now, so no default can pass


class DrivenClock(Clock):
    """A clock the test owns: `now()` is `at`; sleeps and the worker loop's waits pass no real
    time (beyond a moment for the handler's thread) but move the monotonic time on."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self.elapsed_s = 0.0
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.elapsed_s

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.elapsed_s += seconds

    def wait(self, event: threading.Event, timeout_s: float) -> bool:
        if threading.current_thread() is not threading.main_thread():
            return event.wait(timeout_s)  # the heartbeat's thread keeps real time: no spinning
        if event.wait(0.001):
            return True
        self.elapsed_s += timeout_s
        return event.is_set()


def test_client_and_worker_read_the_injected_now(client_url: str, settings: Settings) -> None:
    clock = DrivenClock(AT)
    with Client.from_url(client_url, settings, clock=clock) as client:
        job = client.enqueue("noop", brand_id="acme", parameters={"datasets": ["orders"]})
        assert job.next_run_at == AT and job.created_at == AT
        stats = Worker(client_url, settings, once=True, worker_id="driven", clock=clock).run()
        assert stats.completed == 1
        (run,) = client.list_runs(job_id=job.id)
        assert run.started_at == AT and run.finished_at == AT
        assert client.freshness("orders", brand_id="acme").last_success_at == AT
        (worker,) = client.store.workers()
        assert worker.started_at == AT and worker.last_seen_at == AT


def test_steps_and_log_lines_are_stamped_by_the_injected_now(
    client_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handler's `ctx.step` and `ctx.log` read the worker's clock, not the system's."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # the worker imports helpers_jobs
    clock = DrivenClock(AT)
    with Client.from_url(client_url, settings, clock=clock) as client:
        job = client.enqueue(
            "python",
            brand_id="acme",
            parameters={"target": "helpers_jobs:performance_and_thumbnails"},
        )
        assert Worker(client_url, settings, once=True, clock=clock).run().completed == 1
        (run,) = client.list_runs(job_id=job.id)
        assert [(step["name"], step["finished_at"]) for step in run.steps] == [
            ("performance", AT.isoformat()),
            ("thumbnails", AT.isoformat()),
        ]
        lines = run.logs.splitlines()
        assert "03:02:01 INFO step performance started" in lines
        assert "03:02:01 ERROR step thumbnails failed: CDN timeout" in lines
        assert all(line.startswith("03:02:01 ") for line in lines)


def test_the_sweep_recovers_by_the_injected_now(client_url: str, settings: Settings) -> None:
    with Client.from_url(client_url, settings, clock=DrivenClock(AT)) as client:
        job = client.enqueue("noop", brand_id="acme", run_at=AT - timedelta(minutes=1))
        # A worker that claimed it a minute before AT and died: its last heartbeat is AT.
        (claim,) = client.store.claim_due("dead-worker", AT - timedelta(minutes=1), 1)
        client.store.heartbeat("dead-worker", [(claim.run.id, claim.run.lease_token)], AT)
        just_in_time = DrivenClock(AT + settings.stale_after - timedelta(seconds=1))
        assert Worker(client_url, settings, once=True, clock=just_in_time).run().recovered == 0
        late = DrivenClock(AT + settings.stale_after + timedelta(seconds=1))
        assert Worker(client_url, settings, once=True, clock=late).run().recovered == 1
        run = client.get_run(claim.run.id)
        assert run.status == "failed" and run.finished_at == late.at
        assert client.get_job(job.id).status == "active"  # retried, as after any failure


class Flaky:
    """A store factory: the stores it opens fail `fail_finishes` outcome commits and, once, a
    claim; after that failed claim, `fail_opens` reopenings fail too."""

    def __init__(self, *, fail_finishes: int = 0, fail_opens: int = 0) -> None:
        self.fail_finishes = fail_finishes
        self.fail_opens = fail_opens
        self.claim_failed = fail_opens == 0  # nothing to fail at reopening: no failed claim

    def __call__(self, url: str) -> Store:
        if (
            self.claim_failed
            and self.fail_opens
            and threading.current_thread().name != ("pipectl-heartbeat")
        ):
            self.fail_opens -= 1
            raise StoreUnavailable("the test's store is down")
        store = open_store(url)
        claim_due, finish_runs = store.claim_due, store.finish_runs

        def claim(*args: Any) -> Any:
            if not self.claim_failed:
                self.claim_failed = True
                raise StoreUnavailable("the test's store went away")
            return claim_due(*args)

        def finish(*args: Any) -> Any:
            if self.fail_finishes:
                self.fail_finishes -= 1
                raise StoreUnavailable("the test's store cannot commit")
            return finish_runs(*args)

        store.claim_due = claim  # type: ignore[method-assign]
        store.finish_runs = finish  # type: ignore[method-assign]
        return store


def test_store_outages_are_waited_out_on_the_injected_clock(
    client: Client, client_url: str, settings: Settings
) -> None:
    """The reconnect and the commit retries back off 0.5 s, 1 s, 2 s… through `Clock.sleep`."""
    client.enqueue("noop", brand_id="acme")
    clock = DrivenClock(AT)
    flaky = Flaky(fail_opens=3)
    stats = Worker(client_url, settings, once=True, store_factory=flaky, clock=clock).run()
    assert stats.completed == 1 and clock.slept == [0.5, 1.0, 2.0]

    client.enqueue("noop", brand_id="beta")
    clock = DrivenClock(AT)
    flaky = Flaky(fail_finishes=2)
    stats = Worker(client_url, settings, once=True, store_factory=flaky, clock=clock).run()
    assert stats.completed == 1 and clock.slept == [0.5, 1.0]


def test_a_job_times_out_on_the_injected_clock(
    client: Client, client_url: str, settings: Settings
) -> None:
    """An hour-long run with a one-minute timeout is stopped after a minute of driven time."""
    job = client.enqueue(
        "sleep", brand_id="acme", parameters={"seconds": 3600}, timeout=timedelta(minutes=1)
    )
    clock = DrivenClock(AT)
    stats = Worker(client_url, settings, once=True, clock=clock).run()
    assert stats.failed == 1
    (run,) = client.list_runs(job_id=job.id)
    assert run.error_message == "timed out after 1m"
    assert 60 < clock.elapsed_s < 61


def test_listen_is_a_declared_capability(both_url: str) -> None:
    store = open_store(both_url)
    try:
        # PostgreSQL through LISTEN/NOTIFY, SQLite through PRAGMA data_version.
        assert isinstance(store, Listener) and listener(store) is store
        assert store.listen_check() is True  # a direct connection: NOTIFY reaches LISTEN
    finally:
        store.close()
