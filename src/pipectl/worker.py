"""The worker: a poll loop that sweeps stuck runs, claims due jobs, runs them and records them."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pipectl import __version__, clock
from pipectl.dataflow import given_back, start_claims
from pipectl.errors import InvalidInput, SchemaMissing, StoreUnavailable
from pipectl.handlers import Cancelled, JobFailed, RunContext, get_job_type
from pipectl.lifecycle import cancel_reason, cancelled_result, run_result, settle_edited_job
from pipectl.live_logs import LogWriter
from pipectl.models import Claim, Recorded, RunResult
from pipectl.parsing import format_duration
from pipectl.recovery import recover_stuck
from pipectl.settings import Settings
from pipectl.store import Store, open_store

log = logging.getLogger("pipectl.worker")

# A handler that ignores cancellation this long is abandoned (its thread is a daemon) and the run
# is recorded failed anyway.
ABANDON_AFTER_S = 10.0
SUPERVISE_TICK_S = 0.1
# A run that finishes this fast is quick: its outcome waits to be committed with the rest of its
# claim batch, and a batch of quick runs doubles the next claim (up to claim_batch_size).
QUICK_RUN_S = 0.05
# ... but never longer than this after its run ended.
RECORD_WITHIN_S = 0.1
MAX_RECONNECT_DELAY_S = 30.0
FIRST_RECONNECT_DELAY_S = 0.5
FORGET_WORKERS_AFTER = timedelta(days=7)
IDLE_SLICE_S = 0.5
HOUSEKEEPING_EVERY_S = 3600.0


@dataclass
class _Held:
    """A run this worker holds: its lease and, once started, its context."""

    claim: Claim
    ctx: RunContext | None = None
    cancelled_by: str | None = None  # an operator's `runs cancel`, read back at heartbeat


def next_claim_size(size: int, *, full: bool, all_quick: bool, most: int) -> int:
    """The next claim's size after a batch: doubled (up to `most`) when the claim was filled and
    every run was quick, one after a slow run, the same otherwise."""
    if not all_quick:
        return 1
    return min(size * 2, most) if full else size


class _Runner:
    """A long-lived thread that runs handlers one at a time: starting a thread per run costs
    more than a quick job's whole run (about 0.1 ms, against 20 µs for a hand-over here)."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], None], threading.Event]]
        self._calls = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="pipectl-runner", daemon=True).start()

    def submit(self, call: Callable[[], None]) -> threading.Event:
        """Queue `call` (which must not raise); the event is set when it has returned."""
        done = threading.Event()
        self._calls.put((call, done))
        return done

    def _serve(self) -> None:
        while True:
            call, done = self._calls.get()
            call()
            done.set()


@dataclass
class _Ran:
    """A run that has finished in its handler but whose outcome is not committed yet."""

    claim: Claim
    result: RunResult
    error: str | None
    duration_s: float
    ended: float  # time.monotonic()


@dataclass
class WorkerStats:
    completed: int = 0
    failed: int = 0
    recovered: int = 0
    lost: int = 0
    released: int = 0


class WorkerEvents:
    """Hooks for what watches a worker (metrics, health); each is a no-op here. They are called
    on the worker's own thread and must return quickly."""

    def on_tick(self) -> None:
        """The loop is alive: polling, idling or supervising a run."""

    def on_run_finished(self, claim: Claim, result: RunResult, duration_s: float) -> None:
        """A run's outcome was recorded."""

    def on_recovered(self, claims: list[Claim]) -> None:
        """The sweep recovered these stuck runs."""

    def on_stop(self) -> None:
        """The worker is exiting: flush and release what the watcher holds."""


class Broadcast(WorkerEvents):
    """Several watchers at once (metrics and alerts)."""

    def __init__(self, watchers: list[WorkerEvents]) -> None:
        self.watchers = watchers

    def on_tick(self) -> None:
        for watcher in self.watchers:
            watcher.on_tick()

    def on_run_finished(self, claim: Claim, result: RunResult, duration_s: float) -> None:
        for watcher in self.watchers:
            watcher.on_run_finished(claim, result, duration_s)

    def on_recovered(self, claims: list[Claim]) -> None:
        for watcher in self.watchers:
            watcher.on_recovered(claims)

    def on_stop(self) -> None:
        for watcher in self.watchers:
            watcher.on_stop()


class _Wakeups:
    """The idle wait's wake-up path. Where the store can LISTEN (PostgreSQL), it first checks
    that its LISTEN receives its own NOTIFY (a transaction pooler drops them): if not, it warns
    once and polls. A lost LISTEN connection is opened again with backoff, polling meanwhile."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.reset()

    def reset(self) -> None:
        """After a reconnect: check the path again before trusting it."""
        self.checked = False
        self.delivered = True
        self.retry_at = 0.0
        self.delay = FIRST_RECONNECT_DELAY_S

    def wait(self, store: Store, timeout_s: float) -> bool:
        """Wait up to `timeout_s`; True when a notification says work arrived."""
        wait_for_work = getattr(store, "wait_for_work", None)
        if wait_for_work is None or not self.delivered or time.monotonic() < self.retry_at:
            self.worker._stop.wait(timeout_s)
            return False
        try:
            if not self.checked:
                self.checked = True
                self.delivered = store.listen_check()  # type: ignore[attr-defined]
                if not self.delivered:
                    log.warning(
                        "LISTEN does not receive NOTIFY here (a transaction pooler?): polling "
                        f"every {format_duration(self.worker.poll_interval)}; for instant "
                        "pickup set PIPECTL_LISTEN_URL to a direct or session-mode connection",
                        extra=self.worker._ids("listen"),
                    )
                    return False
            woken = bool(wait_for_work(timeout_s))
        except StoreUnavailable as exc:
            log.warning(
                f"wake-ups lost ({exc}); polling, next LISTEN in {self.delay:g}s",
                extra=self.worker._ids("listen"),
            )
            self.checked = False
            self.retry_at = time.monotonic() + self.delay
            self.delay = min(self.delay * 2, MAX_RECONNECT_DELAY_S)
            return False
        self.delay = FIRST_RECONNECT_DELAY_S
        return woken


class Worker:
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
        self.stats = WorkerStats()
        self._held: dict[int, _Held] = {}
        self._unrecorded: list[_Ran] = []
        self._unsettled: list[_Ran] = []  # recorded, but their jobs were edited during the run
        self._unstarted: list[Claim] = []  # the current batch's claims not yet run
        self._claim_size = 1  # grows while runs are quick; see _cycle
        self._runner: _Runner | None = None  # started with the first run
        self._held_lock = threading.Lock()
        self._stop = threading.Event()
        self._stop_requested_at: float | None = None
        self._done = threading.Event()
        self._next_housekeeping = 0.0  # due at the first cycle
        self._wakeups = _Wakeups(self)

    # -- lifecycle ------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop claiming; the current run gets `shutdown_grace` to finish."""
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
            log.info("stop requested; finishing the current run", extra=self._ids())
        self._stop.set()

    def run(self) -> WorkerStats:
        store = self._connect(first=True)
        self._register(store)
        heart = threading.Thread(target=self._heartbeat_loop, name="pipectl-heartbeat", daemon=True)
        heart.start()
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
                    log.error(f"store unavailable: {exc}", extra=self._ids("reconnect"))
                    store = self._reconnect(store)
        finally:
            restore()
            with contextlib.suppress(StoreUnavailable):
                self._give_back(store, patient=False)
                self._record(store, patient=False)
            self._done.set()
            self.events.on_stop()
            heart.join(timeout=5)
            with contextlib.suppress(StoreUnavailable):
                self._sign_off(store)
            store.close()
            log.info(
                f"worker stopped: {self.stats.completed} completed, {self.stats.failed} failed",
                extra=self._ids("stop"),
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
        self.events.on_tick()
        self._record(store)  # left over from a cycle the store cut short
        recovered = recover_stuck(
            store, clock.now(), self.settings.stuck_after, self.settings.start_grace
        )
        if recovered:
            self.stats.recovered += len(recovered)
            self.events.on_recovered(recovered)
        self._housekeeping(store)
        limit = self._claim_size
        if self.max_jobs is not None:
            limit = min(limit, self.max_jobs - self._total())
        if self._unstarted:  # the store cut the last cycle short: run its claims first
            claims = list(self._unstarted)
        else:
            claims = store.claim_due(self.id, clock.now(), max(limit, 1))
            # Data-aware scheduling: holds, max-hold failures, triggered brands (dataflow.py).
            thresholds = (self.settings.warn_after, self.settings.error_after)
            started, expired = start_claims(store, claims, clock.now(), thresholds)
            with self._held_lock:
                for claim in started + [claim for claim, _ in expired]:
                    self._held[claim.run.id] = _Held(claim)
            self._unstarted = list(started)
            for claim, result in expired:
                ran = _Ran(claim, result, result.error_message, 0.0, time.monotonic())
                self._unrecorded.append(ran)
        all_quick = True
        while self._unstarted:
            if self._stop.is_set():
                self._give_back(store)
                break
            if not self._execute(store, self._unstarted.pop(0)):
                all_quick = False  # its batch-mates were given back while it ran
            if self._unrecorded and time.monotonic() - self._unrecorded[0].ended > RECORD_WITHIN_S:
                self._record(store)
        self._record(store)
        self._claim_size = next_claim_size(
            self._claim_size,
            full=len(claims) == limit,
            all_quick=all_quick,
            most=self.settings.claim_batch_size,
        )
        return len(claims)

    def _housekeeping(self, store: Store) -> None:
        """Hourly, when configured: prune old run history and purge old archived jobs."""
        settings = self.settings
        if settings.prune_runs_after is None and settings.purge_archived_after is None:
            return
        if time.monotonic() < self._next_housekeeping:
            return
        self._next_housekeeping = time.monotonic() + HOUSEKEEPING_EVERY_S
        from pipectl.client import Client

        client = Client(store, settings)
        if settings.prune_runs_after is not None:
            pruned = client.prune_runs(settings.prune_runs_after)
            log.info(f"pruned {pruned} old runs", extra=self._ids("prune"))
        if settings.purge_archived_after is not None:
            purged = client.purge_archived_jobs(settings.purge_archived_after)
            log.info(f"purged {purged} archived jobs", extra=self._ids("purge"))

    def _idle(self, store: Store) -> None:
        """Wait for the next poll. On PostgreSQL, LISTEN/NOTIFY wakes the worker as soon as a
        job is enqueued (the poll interval stays the fallback); the wait is cut into short
        slices so that a stop request is honoured promptly either way."""
        deadline = time.monotonic() + self.poll_interval.total_seconds()
        while not self._stop.is_set():
            self.events.on_tick()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._wakeups.wait(store, min(remaining, IDLE_SLICE_S)):
                return

    # -- one run --------------------------------------------------------------------------
    def _execute(self, store: Store, claim: Claim) -> bool:
        """Run one claimed job; its outcome joins the unrecorded ones. True when it was quick."""
        job, run = claim.job, claim.run
        ctx = RunContext(job, run)
        with self._held_lock:
            self._held[run.id].ctx = ctx
        if log.isEnabledFor(logging.DEBUG):
            log.debug("run started", extra=self._run_ids(claim))
        started = time.monotonic()
        error = self._supervise(store, ctx)
        ended = time.monotonic()
        duration_s = ended - started
        with self._held_lock:
            by = self._held[run.id].cancelled_by
        if by is not None and ctx.cancel_reason == cancel_reason(by):
            result = cancelled_result(job, clock.now(), by, steps=ctx.steps, logs=ctx.log.text())
        else:
            result = run_result(job, clock.now(), error=error, steps=ctx.steps, logs=ctx.log.text())
        if ctx.cancel_reason and ctx.cancel_reason.startswith("lease lost"):
            self.stats.lost += 1
            log.warning("run outcome discarded: lease lost", extra=self._run_ids(claim))
            with self._held_lock:
                self._held.pop(run.id, None)
        else:
            self._unrecorded.append(_Ran(claim, result, error, duration_s, ended))
        return duration_s <= QUICK_RUN_S

    def _record(self, store: Store, *, patient: bool = True) -> None:
        """Commit the unrecorded outcomes in one transaction, then report each. Patient: wait out
        a store outage (see _finish); otherwise keep them for the next try."""
        self._settle(store, patient=patient)  # left over from a try the store cut short
        if not self._unrecorded:
            return
        ran = self._unrecorded
        outcomes = [(r.claim.run.id, r.claim.run.lease_token, r.result) for r in ran]
        if patient:
            recorded = self._finish(store, outcomes)
        else:
            try:
                recorded = store.finish_runs(outcomes)
            except StoreUnavailable:
                return
        self._unrecorded = []
        for item, ok in zip(ran, recorded, strict=True):
            ids = self._run_ids(item.claim)
            if ok is Recorded.EDITED:
                self._unsettled.append(item)
            if ok:
                if item.result.status == "completed":
                    self.stats.completed += 1
                else:
                    self.stats.failed += 1
                self.events.on_run_finished(item.claim, item.result, item.duration_s)
                error = item.error
                log.info(f"run {item.result.status}" + (f": {error}" if error else ""), extra=ids)
            else:
                self.stats.lost += 1
                log.warning("run outcome discarded: the run was recovered elsewhere", extra=ids)
        with self._held_lock:
            for item in ran:
                self._held.pop(item.claim.run.id, None)
        self._settle(store, patient=patient)

    def _supervise(self, store: Store, ctx: RunContext) -> str | None:
        """Run the handler in a thread; enforce the job's timeout and the shutdown grace. Once
        the run outlasts a quick one, nothing else waits for it: the batch's unstarted claims
        are given back and the outcomes waiting for the batch's commit are committed."""
        outcome: dict[str, str | None] = {"error": None}
        try:
            handler = get_job_type(ctx.job.job_type)
        except InvalidInput as exc:
            return str(exc)

        def call() -> None:
            try:
                handler.run(ctx)
            except Cancelled as exc:
                outcome["error"] = str(exc)
            except JobFailed as exc:
                outcome["error"] = str(exc) or "failed"
            except BaseException as exc:  # SystemExit too: a handler cannot stop the worker
                outcome["error"] = f"{type(exc).__name__}: {exc}"
                ctx.log.error(traceback.format_exc().rstrip())

        self._runner = self._runner or _Runner()
        started = time.monotonic()
        done = self._runner.submit(call)
        timeout_s = ctx.job.timeout_seconds
        grace_s = self.settings.shutdown_grace.total_seconds()
        cancelled_at: float | None = None
        done.wait(QUICK_RUN_S)
        while not done.is_set():
            self._give_back(store, patient=False)
            self._record(store, patient=False)
            self.events.on_tick()
            now = time.monotonic()
            if timeout_s is not None and now - started > timeout_s:
                ctx.cancel(f"timed out after {format_duration(timedelta(seconds=timeout_s))}")
            stop_at = self._stop_requested_at
            if stop_at is not None and now - stop_at > grace_s:
                ctx.cancel(
                    "worker shut down before the run finished "
                    f"(shutdown grace {format_duration(self.settings.shutdown_grace)})"
                )
            if ctx.cancelled:
                cancelled_at = cancelled_at or now
                if now - cancelled_at > ABANDON_AFTER_S:
                    ctx.log.error("the handler ignored cancellation; abandoning it")
                    self._runner = None  # left to the handler; the next run gets a new thread
                    break
            done.wait(SUPERVISE_TICK_S)
        if ctx.cancelled:
            return ctx.cancel_reason
        return outcome["error"]

    def _settle(self, store: Store, *, patient: bool) -> None:
        """The runs are recorded but their jobs were edited during them: their next states follow
        the edits (lifecycle.settle_edited_job). Patient: wait out a store outage, as _finish
        does; otherwise keep the rest for the next try (a job not settled keeps the next state
        its run wrote)."""
        delay = FIRST_RECONNECT_DELAY_S
        while self._unsettled:
            item = self._unsettled[0]
            try:
                settle_edited_job(store, item.claim.job.id, item.claim.run.id, item.result)
            except StoreUnavailable as exc:
                if not patient:
                    return
                log.error(
                    f"cannot update the job edited during its run yet ({exc}); "
                    f"retrying in {delay:g}s",
                    extra=self._run_ids(item.claim),
                )
                time.sleep(delay)
                delay = min(delay * 2, MAX_RECONNECT_DELAY_S)
                continue
            self._unsettled.pop(0)
            log.info(
                "job edited during the run: its next state follows the edit",
                extra=self._run_ids(item.claim),
            )

    def _finish(self, store: Store, outcomes: list[tuple[int, str, RunResult]]) -> list[Recorded]:
        """Record the outcomes; if the store is down, keep them and retry until they are recorded
        or the sweep elsewhere has recovered the runs (then the lease guard refuses them). The
        same store handle is retried (every backend reopens its connection on the next call),
        so the poll loop never goes on with a handle closed here."""
        delay = FIRST_RECONNECT_DELAY_S
        while True:
            try:
                return store.finish_runs(outcomes)
            except StoreUnavailable as exc:
                run_ids = ",".join(str(run_id) for run_id, _, _ in outcomes)
                log.error(
                    f"cannot record run outcome yet ({exc}); retrying in {delay:g}s",
                    extra=self._ids("finish_retry", run_id=run_ids),
                )
                time.sleep(delay)
                delay = min(delay * 2, MAX_RECONNECT_DELAY_S)

    def _give_back(self, store: Store, *, patient: bool = True) -> None:
        """Release the batch's unstarted claims (their jobs are due again at once, for any
        worker), with the input successes they took when they started (dataflow.given_back).
        Not patient: if the store is down, keep the rest for the next try."""
        while self._unstarted:
            claim = self._unstarted[0]
            try:
                triggers = given_back(store, claim) if claim.run.triggered_by else []
                released = store.release_run(
                    claim.run.id, claim.run.lease_token, clock.now(), triggers
                )
            except StoreUnavailable:
                if patient:
                    raise
                return
            self._unstarted.pop(0)
            if released:
                self.stats.released += 1
            with self._held_lock:
                self._held.pop(claim.run.id, None)

    # -- heartbeat ------------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        store: Store | None = None
        interval = self.settings.heartbeat_interval.total_seconds()
        logs = LogWriter()  # live logs: each run's log so far, at each heartbeat
        while not self._done.wait(interval):
            try:
                store = store or self._open(self.url)
                with self._held_lock:
                    held = list(self._held.values())
                leases = [(h.claim.run.id, h.claim.run.lease_token) for h in held]
                lost = set(store.heartbeat(self.id, leases, clock.now()))
                started = [h.claim.run.id for h in held if h.ctx is not None and not h.cancelled_by]
                cancels = store.cancel_requests(started)
                logs.write(store, [(h.claim.run, h.ctx.log) for h in held if h.ctx is not None])
            except StoreUnavailable as exc:
                log.warning(f"heartbeat failed: {exc}", extra=self._ids("heartbeat"))
                if store is not None:
                    store.close()
                store = None
                continue
            for holding in held:
                if holding.claim.run.id in lost and holding.ctx is not None:
                    log.warning(
                        "lease lost: the run was recovered by another worker; stopping it",
                        extra=self._ids("lease_lost", run_id=holding.claim.run.id),
                    )
                    holding.ctx.cancel("lease lost: the run was recovered as stuck")
                by = cancels.get(holding.claim.run.id)
                if by is not None and holding.ctx is not None:
                    log.info(
                        f"cancelled by {by}: stopping the run",
                        extra=self._ids("cancel", run_id=holding.claim.run.id),
                    )
                    holding.cancelled_by = by
                    holding.ctx.cancel(cancel_reason(by))
        if store is not None:
            store.close()

    # -- plumbing -------------------------------------------------------------------------
    def _register(self, store: Store) -> None:
        from pipectl.models import WorkerInfo

        now = clock.now()
        store.register_worker(
            WorkerInfo(self.id, socket.gethostname(), os.getpid(), now, now, __version__)
        )
        store.forget_workers(now - FORGET_WORKERS_AFTER)
        log.info("worker started", extra=self._ids("start"))

    def _sign_off(self, store: Store) -> None:
        """A stopped worker is counted out at once. A `--once` pass is not a stopped scheduler:
        it stays last seen now, so that cron's next pass keeps the scheduler counted live."""
        if self.once:
            store.heartbeat(self.id, [], clock.now())
        else:
            store.stop_worker(self.id, clock.now())

    def _connect(self, *, first: bool = False) -> Store:
        store = self._open(self.url)
        if first:
            store.check_schema()
        return store

    def _reconnect(self, old: Store) -> Store:
        with contextlib.suppress(Exception):
            old.close()
        delay = FIRST_RECONNECT_DELAY_S
        while True:  # a second signal exits at once; otherwise the outcome is worth the wait
            try:
                store = self._open(self.url)
                self._register(store)
                self._wakeups.reset()
                return store
            except StoreUnavailable as exc:
                log.error(
                    f"reconnect failed: {exc}; next try in {delay:g}s", extra=self._ids("reconnect")
                )
                time.sleep(delay)
                delay = min(delay * 2, MAX_RECONNECT_DELAY_S)

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handle(signum: int, _frame: Any) -> None:
            if self._stop_requested_at is not None:
                from pipectl.handlers.builtin import kill_running_commands

                log.warning("second signal: exiting at once", extra=self._ids("exit"))
                kill_running_commands()
                os._exit(130)
            self.request_stop()

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _run_ids(self, claim: Claim) -> dict[str, Any]:
        job, run = claim.job, claim.run
        return self._ids(
            "run", job_id=job.id, run_id=run.id, job_type=job.job_type, attempt=run.attempt
        )

    def _ids(self, action: str | None = None, **ids: Any) -> dict[str, Any]:
        return {"action": action, "worker_id": self.id, **ids}
