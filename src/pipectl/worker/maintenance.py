"""The worker's maintenance services: the stuck-run sweep at the start of every cycle, hourly
retention, and the worker's own row in the registry (register, sign off, forget old rows)."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from pipectl import __version__, retention
from pipectl.clock import Clock
from pipectl.models import Claim, WorkerInfo
from pipectl.recovery import recover_stuck
from pipectl.settings import Settings
from pipectl.store import Store
from pipectl.worker.logs import ids, log

FORGET_WORKERS_AFTER = timedelta(days=7)
HOUSEKEEPING_EVERY_S = 3600.0


def sweep(store: Store, settings: Settings, clock: Clock) -> list[Claim]:
    """Recover the stuck runs (see recovery.recover_stuck); returns them."""
    return recover_stuck(store, clock.now(), settings.stuck_after, settings.start_grace)


class Housekeeping:
    """Hourly, when configured: prune old run history and purge old archived jobs. Due at the
    first cycle."""

    def __init__(self, worker_id: str, settings: Settings, clock: Clock) -> None:
        self.worker_id = worker_id
        self.settings = settings
        self.clock = clock
        self._next_at = 0.0  # Clock.monotonic()

    def run_if_due(self, store: Store) -> None:
        settings = self.settings
        if settings.prune_runs_after is None and settings.purge_archived_after is None:
            return
        if self.clock.monotonic() < self._next_at:
            return
        self._next_at = self.clock.monotonic() + HOUSEKEEPING_EVERY_S
        if settings.prune_runs_after is not None:
            pruned = retention.prune_runs(store, self.clock.now() - settings.prune_runs_after)
            log.info(f"pruned {pruned} old runs", extra=ids(self.worker_id, "prune"))
        if settings.purge_archived_after is not None:
            cutoff = self.clock.now() - settings.purge_archived_after
            purged = retention.purge_archived_jobs(store, cutoff)
            log.info(f"purged {purged} archived jobs", extra=ids(self.worker_id, "purge"))


def register(store: Store, worker_id: str, clock: Clock) -> None:
    """Enter the worker in the registry (again, after a reconnect), and forget the rows of
    workers unseen for FORGET_WORKERS_AFTER."""
    now = clock.now()
    store.register_worker(
        WorkerInfo(worker_id, socket.gethostname(), os.getpid(), now, now, __version__)
    )
    store.forget_workers(now - FORGET_WORKERS_AFTER)
    log.info("worker started", extra=ids(worker_id, "start"))


def sign_off(store: Store, worker_id: str, clock: Clock, *, once: bool) -> None:
    """A stopped worker is counted out at once. A `--once` pass is not a stopped scheduler:
    it stays last seen now, so that cron's next pass keeps the scheduler counted live."""
    if once:
        store.heartbeat(worker_id, [], clock.now())
    else:
        store.stop_worker(worker_id, clock.now())
