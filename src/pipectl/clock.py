"""The one clock pipectl reads: aware UTC datetimes, patched by freezegun in tests.

`Clock` is the injectable face of it: `Worker` and `Client` take one (default `SYSTEM`), and a
test that wants to drive time itself passes a subclass. `SYSTEM` reads this module's `now()` at
each call, so freezegun (and a test that replaces `pipectl.clock.now`) steers it too."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Signal(Protocol):
    """What a wait waits for: a threading.Event, or anything set once that waits like one."""

    def wait(self, timeout: float | None = None) -> bool: ...

    def is_set(self) -> bool: ...


def now() -> datetime:
    return datetime.now(UTC)


class Clock:
    """Wall time for what is stored, a monotonic time for intervals, and the waits."""

    def now(self) -> datetime:
        return now()

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for timeouts and intervals."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def wait(self, event: Signal, timeout_s: float) -> bool:
        """Wait until `event` is set or `timeout_s` passes; True when it is set."""
        return event.wait(timeout_s)


SYSTEM = Clock()
