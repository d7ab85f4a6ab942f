"""The heartbeat: a thread that renews the worker and the leases of the runs it holds, and stops
a run whose lease was lost or whose cancellation an operator asked for."""

from __future__ import annotations

import threading
from collections.abc import Callable

from pipectl.clock import Clock
from pipectl.errors import StoreUnavailable
from pipectl.lifecycle import cancel_reason
from pipectl.live_logs import LogWriter
from pipectl.store import Store
from pipectl.worker.leases import HeldRuns
from pipectl.worker.logs import ids, log


class Heartbeat:
    """Beats every `interval_s` on a store connection of its own (the loop's may be busy in a
    long transaction, or down and being reopened), until `stop`."""

    def __init__(
        self,
        worker_id: str,
        held: HeldRuns,
        open_store: Callable[[], Store],
        interval_s: float,
        clock: Clock,
    ) -> None:
        self.worker_id = worker_id
        self.held = held
        self.open_store = open_store
        self.interval_s = interval_s
        self.clock = clock
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pipectl-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No more beats; the thread ends after the current one."""
        self._done.set()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout=timeout_s)

    def _loop(self) -> None:
        store: Store | None = None
        logs = LogWriter()  # live logs: each run's log so far, at each heartbeat
        while not self.clock.wait(self._done, self.interval_s):
            try:
                store = store or self.open_store()
                held = self.held.snapshot()
                leases = [(h.claim.run.id, h.claim.run.lease_token) for h in held]
                lost = set(store.heartbeat(self.worker_id, leases, self.clock.now()))
                started = [h.claim.run.id for h in held if h.ctx is not None and not h.cancelled_by]
                cancels = store.cancel_requests(started)
                logs.write(store, [(h.claim.run, h.ctx.log) for h in held if h.ctx is not None])
            except StoreUnavailable as exc:
                log.warning(f"heartbeat failed: {exc}", extra=ids(self.worker_id, "heartbeat"))
                if store is not None:
                    store.close()
                store = None
                continue
            for holding in held:
                run_id = holding.claim.run.id
                if run_id in lost and holding.ctx is not None:
                    log.warning(
                        "lease lost: the run was recovered by another worker; stopping it",
                        extra=ids(self.worker_id, "lease_lost", run_id=run_id),
                    )
                    holding.ctx.cancel("lease lost: the run was recovered as stuck")
                by = cancels.get(run_id)
                if by is not None and holding.ctx is not None:
                    log.info(
                        f"cancelled by {by}: stopping the run",
                        extra=ids(self.worker_id, "cancel", run_id=run_id),
                    )
                    holding.cancelled_by = by
                    holding.ctx.cancel(cancel_reason(by))
        if store is not None:
            store.close()
