"""The poll loop: each cycle sweeps stuck runs, claims due jobs, runs them and hands their
outcomes to the completer; between cycles it waits for work."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pipectl.clock import SYSTEM, Clock
from pipectl.errors import SchemaMissing, StoreUnavailable
from pipectl.handlers import RunContext
from pipectl.lifecycle import cancel_reason, cancelled_result, run_result
from pipectl.models import Claim, RunResult
from pipectl.settings import Settings
from pipectl.store import Store, open_store
from pipectl.worker import maintenance
from pipectl.worker.completer import Completer, Ran
from pipectl.worker.events import Broadcast, WorkerEvents, WorkerStats, standard_watchers
from pipectl.worker.heartbeat import Heartbeat
from pipectl.worker.leases import HeldRuns
from pipectl.worker.logs import ids, log, run_ids
from pipectl.worker.reconnect import reconnect_delays
from pipectl.worker.runner import QUICK_RUN_S, Runner
from pipectl.worker.wakeups import Wakeups

IDLE_SLICE_S = 0.5


def next_claim_size(size: int, *, full: bool, all_quick: bool, most: int) -> int:
    """The next claim's size after a batch: doubled (up to `most`) when the claim was filled and
    every run was quick, one after a slow run, the same otherwise."""
    if not all_quick:
        return 1
    return min(size * 2, most) if full else size


class Worker:
    """One worker: `run()` until stopped (or, with `once`, until nothing is due).
    `Worker.from_settings` assembles a complete one, with metrics, alerts and retention."""

    def __init__(
        self,
        database_url: str,
        settings: Settings,
        *,
        worker_id: str | None = None,
        once: bool = False,
        max_jobs: int | None = None,
        poll_interval: timedelta | None = None,
        store_factory: Callable[[str], Store] | None = None,
        events: WorkerEvents | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.url = database_url
        self.settings = settings
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.once = once
        self.max_jobs = max_jobs
        self.poll_interval = poll_interval or settings.poll_interval
        # The default passes the settings on: the supabase backend takes its key from them.
        self._open = store_factory or functools.partial(open_store, settings=settings)
        self.events = events or WorkerEvents()
        self.clock = clock
        self.stats = WorkerStats()
        self._held = HeldRuns()
        self._completer = Completer(self.id, self._held, self.stats, self.events, clock)
        self._runner = Runner(settings, clock, lambda: self._stop_requested_at)
        self._housekeeping = maintenance.Housekeeping(self.id, settings, clock)
        self._claim_size = 1  # grows while runs are quick; see _cycle
        self._stop = threading.Event()
        self._stop_requested_at: float | None = None
        self._wakeups = Wakeups(self.id, self.poll_interval, self._stop, clock)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        worker_id: str | None = None,
        once: bool = False,
        max_jobs: int | None = None,
        poll_interval: timedelta | None = None,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        watchers: list[WorkerEvents] | None = None,
        clock: Clock = SYSTEM,
    ) -> Worker:
        """A complete worker on `settings.database_url`: retention as the settings say, alert
        webhooks when configured, and with `metrics_port`, Prometheus metrics and the /metrics,
        /status, /ready and /healthz endpoints (served from this call on; InvalidInput when the
        port cannot be had). `watchers` are called besides."""
        from pipectl.parsing import check_name

        check_name(worker_id, "worker id")
        standard = standard_watchers(
            settings,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            poll_interval=poll_interval,
        )
        return cls(
            settings.database_url,
            settings,
            worker_id=worker_id,
            once=once,
            max_jobs=max_jobs,
            poll_interval=poll_interval,
            events=Broadcast([*standard, *(watchers or [])]),
            clock=clock,
        )

    # -- lifecycle ------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop claiming; the current run gets `shutdown_grace` to finish."""
        if self._stop_requested_at is None:
            self._stop_requested_at = self.clock.monotonic()
            log.info("stop requested; finishing the current run", extra=ids(self.id))
        self._stop.set()

    def run(self) -> WorkerStats:
        store = self._connect(first=True)
        maintenance.register(store, self.id, self.clock)
        heartbeat = Heartbeat(
            self.id,
            self._held,
            lambda: self._open(self.url),
            self.settings.heartbeat_interval.total_seconds(),
            self.clock,
        )
        heartbeat.start()
        restore = self._install_signal_handlers()
        try:
            while not self._stop.is_set():
                try:
                    processed = self._cycle(store)
                    if self.max_jobs is not None and self._total() >= self.max_jobs:
                        break
                    if processed == 0:
                        if self.once:
                            break
                        self._idle(store)
                except SchemaMissing:
                    raise  # the store answers but cannot serve: waiting will not help
                except StoreUnavailable as exc:
                    log.error(f"store unavailable: {exc}", extra=ids(self.id, "reconnect"))
                    store = self._reconnect(store)
        finally:
            restore()
            with contextlib.suppress(StoreUnavailable):
                self._completer.give_back(store, patient=False)
                self._completer.record(store, patient=False)
            heartbeat.stop()
            self.events.on_stop()
            heartbeat.join(5)
            with contextlib.suppress(StoreUnavailable):
                maintenance.sign_off(store, self.id, self.clock, once=self.once)
            store.close()
            log.info(
                f"worker stopped: {self.stats.completed} completed, {self.stats.failed} failed",
                extra=ids(self.id, "stop"),
            )
        return self.stats

    def _total(self) -> int:
        return self.stats.completed + self.stats.failed + self.stats.lost

    def _cycle(self, store: Store) -> int:
        """One poll cycle: the recovery sweep first, then claim and run what is due.

        The claim grows with the work: it starts at one job, doubles (up to claim_batch_size)
        after a batch whose runs were all quick, and falls back to one after a slower run.
        As soon as a run outlasts a quick one, its unstarted batch-mates are given back for
        other workers to take and the outcomes of the quick runs before it are committed;
        otherwise they are committed together at the end of the batch. Each outcome is
        reported only once committed."""
        completer = self._completer
        self.events.on_tick()
        completer.record(store)  # left over from a cycle the store cut short
        recovered = maintenance.sweep(store, self.settings, self.clock)
        if recovered:
            self.stats.recovered += len(recovered)
            self.events.on_recovered(recovered)
        self._housekeeping.run_if_due(store)
        limit = self._claim_size
        if self.max_jobs is not None:
            limit = min(limit, self.max_jobs - self._total())
        if completer.unstarted:  # the store cut the last cycle short: run its claims first
            claims = list(completer.unstarted)
        else:
            claims = store.claim_due(self.id, self.clock.now(), max(limit, 1))
            started, expired = self._start(store, claims)
            self._held.add(started + [claim for claim, _ in expired])
            completer.unstarted = list(started)
            for claim, result in expired:
                completer.add(Ran(claim, result, result.error_message, 0.0, self.clock.monotonic()))
        all_quick = True
        while completer.unstarted:
            if self._stop.is_set():
                completer.give_back(store)
                break
            if not self._execute(store, completer.unstarted.pop(0)):
                all_quick = False  # its batch-mates were given back while it ran
            if completer.overdue():
                completer.record(store)
        completer.record(store)
        self._claim_size = next_claim_size(
            self._claim_size,
            full=len(claims) == limit,
            all_quick=all_quick,
            most=self.settings.claim_batch_size,
        )
        return len(claims)

    def _start(
        self, store: Store, claims: list[Claim]
    ) -> tuple[list[Claim], list[tuple[Claim, RunResult]]]:
        """Data-aware scheduling: holds, max-hold failures, triggered brands (dataflow.py),
        imported with the first claim that returns jobs, which an idle `--once` never has."""
        if not claims:
            return [], []
        from pipectl.dataflow import start_claims

        thresholds = (self.settings.warn_after, self.settings.error_after)
        return start_claims(store, claims, self.clock.now(), thresholds)

    def _idle(self, store: Store) -> None:
        """Wait for the next poll. On PostgreSQL, LISTEN/NOTIFY wakes the worker as soon as a
        job is enqueued (the poll interval stays the fallback); the wait is cut into short
        slices so that a stop request is honoured promptly either way."""
        deadline = self.clock.monotonic() + self.poll_interval.total_seconds()
        while not self._stop.is_set():
            self.events.on_tick()
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                return
            if self._wakeups.wait(store, min(remaining, IDLE_SLICE_S)):
                return

    # -- one run --------------------------------------------------------------------------
    def _execute(self, store: Store, claim: Claim) -> bool:
        """Run one claimed job; its outcome goes to the completer. True when it was quick."""
        job, run = claim.job, claim.run
        ctx = RunContext(job, run, clock=self.clock)
        self._held.start(run.id, ctx)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("run started", extra=run_ids(self.id, claim))
        started = self.clock.monotonic()
        error = self._runner.run(ctx, functools.partial(self._while_slow, store))
        ended = self.clock.monotonic()
        duration_s = ended - started
        by = self._held.cancelled_by(run.id)
        now = self.clock.now()
        if by is not None and ctx.cancel_reason == cancel_reason(by):
            result = cancelled_result(job, now, by, steps=ctx.steps, logs=ctx.log.text())
        else:
            result = run_result(job, now, error=error, steps=ctx.steps, logs=ctx.log.text())
        if ctx.cancel_reason and ctx.cancel_reason.startswith("lease lost"):
            self.stats.lost += 1
            log.warning("run outcome discarded: lease lost", extra=run_ids(self.id, claim))
            self._held.release([run.id])
        else:
            self._completer.add(Ran(claim, result, error, duration_s, ended))
        return duration_s <= QUICK_RUN_S

    def _while_slow(self, store: Store) -> None:
        """A run outlasts a quick one: nothing else waits for it (its batch-mates are given back,
        the outcomes before it committed), and the loop stays visibly alive."""
        self._completer.flush(store)
        self.events.on_tick()

    # -- plumbing -------------------------------------------------------------------------
    def _connect(self, *, first: bool = False) -> Store:
        store = self._open(self.url)
        if first:
            store.check_schema()
        return store

    def _reconnect(self, old: Store) -> Store:
        with contextlib.suppress(Exception):
            old.close()
        delays = reconnect_delays()
        while True:  # a second signal exits at once; otherwise the outcome is worth the wait
            try:
                store = self._open(self.url)
                maintenance.register(store, self.id, self.clock)
                self._wakeups.reset()
                return store
            except StoreUnavailable as exc:
                delay = next(delays)
                log.error(
                    f"reconnect failed: {exc}; next try in {delay:g}s",
                    extra=ids(self.id, "reconnect"),
                )
                self.clock.sleep(delay)

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handle(signum: int, _frame: Any) -> None:
            if self._stop_requested_at is not None:
                from pipectl.handlers.builtin import kill_running_commands

                log.warning("second signal: exiting at once", extra=ids(self.id, "exit"))
                kill_running_commands()
                os._exit(130)
            self.request_stop()

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore
