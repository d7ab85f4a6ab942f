"""How the worker waits out a store outage: the growing delays between its tries."""

from __future__ import annotations

from collections.abc import Iterator

FIRST_RECONNECT_DELAY_S = 0.5
MAX_RECONNECT_DELAY_S = 30.0


def reconnect_delays() -> Iterator[float]:
    """0.5 s, 1 s, 2 s, … doubling up to MAX_RECONNECT_DELAY_S, then that, for ever."""
    delay = FIRST_RECONNECT_DELAY_S
    while True:
        yield delay
        delay = min(delay * 2, MAX_RECONNECT_DELAY_S)
