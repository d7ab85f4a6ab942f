"""The runs a worker holds: claimed, running, or waiting for their outcome's commit. The poll
loop adds them, the completer lets them go, and the heartbeat renews their leases."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from pipectl.handlers import RunContext
from pipectl.models import Claim


@dataclass
class Held:
    """A run this worker holds: its lease and, once started, its context."""

    claim: Claim
    ctx: RunContext | None = None
    cancelled_by: str | None = None  # an operator's `runs cancel`, read back at heartbeat


class HeldRuns:
    """The held runs by run id, shared by the loop's thread and the heartbeat's."""

    def __init__(self) -> None:
        self._held: dict[int, Held] = {}
        self._lock = threading.Lock()

    def add(self, claims: Iterable[Claim]) -> None:
        with self._lock:
            for claim in claims:
                self._held[claim.run.id] = Held(claim)

    def start(self, run_id: int, ctx: RunContext) -> None:
        with self._lock:
            self._held[run_id].ctx = ctx

    def cancelled_by(self, run_id: int) -> str | None:
        with self._lock:
            return self._held[run_id].cancelled_by

    def release(self, run_ids: Iterable[int]) -> None:
        with self._lock:
            for run_id in run_ids:
                self._held.pop(run_id, None)

    def snapshot(self) -> list[Held]:
        with self._lock:
            return list(self._held.values())
