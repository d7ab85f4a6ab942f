"""The idle wait's wake-ups: LISTEN where the store declares it (store.base.Listener), polling
otherwise."""

from __future__ import annotations

import threading
from datetime import timedelta

from pipectl.clock import Clock
from pipectl.errors import StoreUnavailable
from pipectl.parsing import format_duration
from pipectl.store import Store
from pipectl.store.base import listener
from pipectl.worker.logs import ids, log
from pipectl.worker.reconnect import FIRST_RECONNECT_DELAY_S, MAX_RECONNECT_DELAY_S


class Wakeups:
    """Where the store can LISTEN (PostgreSQL), it first checks that its LISTEN receives its own
    NOTIFY (a transaction pooler drops them): if not, it warns once and polls. A lost LISTEN
    connection is opened again with backoff, polling meanwhile."""

    def __init__(
        self, worker_id: str, poll_interval: timedelta, stop: threading.Event, clock: Clock
    ) -> None:
        self.worker_id = worker_id
        self.poll_interval = poll_interval
        self.stop = stop
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        """After a reconnect: check the path again before trusting it."""
        self.checked = False
        self.delivered = True
        self.retry_at = 0.0
        self.delay = FIRST_RECONNECT_DELAY_S

    def wait(self, store: Store, timeout_s: float) -> bool:
        """Wait up to `timeout_s` (a stop request ends it early); True when a notification says
        work arrived."""
        listening = listener(store)
        if listening is None or not self.delivered or self.clock.monotonic() < self.retry_at:
            self.clock.wait(self.stop, timeout_s)
            return False
        try:
            if not self.checked:
                self.checked = True
                self.delivered = listening.listen_check()
                if not self.delivered:
                    log.warning(
                        "LISTEN does not receive NOTIFY here (a transaction pooler?): polling "
                        f"every {format_duration(self.poll_interval)}; for instant "
                        "pickup set PIPECTL_LISTEN_URL to a direct or session-mode connection",
                        extra=ids(self.worker_id, "listen"),
                    )
                    return False
            woken = listening.wait_for_work(timeout_s)
        except StoreUnavailable as exc:
            log.warning(
                f"wake-ups lost ({exc}); polling, next LISTEN in {self.delay:g}s",
                extra=ids(self.worker_id, "listen"),
            )
            self.checked = False
            self.retry_at = self.clock.monotonic() + self.delay
            self.delay = min(self.delay * 2, MAX_RECONNECT_DELAY_S)
            return False
        self.delay = FIRST_RECONNECT_DELAY_S
        return woken
