"""What a running handler sees: its job, parameters, a log, steps, and cancellation."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any, Final

from pipectl.clock import SYSTEM, Clock
from pipectl.models import Job, Run, Step

MAX_LOG_CHARS = 64 * 1024
_DROPPED = re.compile(r"… (\d+) earlier lines dropped")


class _Unset(Enum):
    UNSET = "UNSET"


# A step's brand when none is given: the job's (None is a brand: global).
_UNSET: Final = _Unset.UNSET
logger = logging.getLogger("pipectl.job")


class JobFailed(Exception):
    """Raised by handlers (or `ctx.fail`) to fail a run with a plain message."""


class Cancelled(JobFailed):
    """The run was cancelled: it timed out, the worker is shutting down, or it lost its lease."""


class RunLog:
    """The run's log: kept (tail-truncated) on the run record and echoed to the worker's log.
    Each line is stamped with the time on `clock` (the worker's)."""

    def __init__(self, run_id: int, clock: Clock = SYSTEM) -> None:
        self.run_id = run_id
        self._clock = clock
        self._lines: list[str] = []
        self._size = 0
        self._dropped = 0
        self._written = 0  # writes so far: tells a heartbeat whether there is news
        self._lock = threading.Lock()

    def write(self, level: str, message: str) -> None:
        line = f"{self._clock.now().strftime('%H:%M:%S')} {level} {message}"
        with self._lock:
            self._lines.append(line)
            self._written += 1
            self._size += len(line) + 1
            while self._size > MAX_LOG_CHARS and len(self._lines) > 1:
                gone = self._lines.pop(0)
                self._size -= len(gone) + 1
                self._dropped += gone.count("\n") + 1  # lines, as a follower counts them
        logger.log(
            getattr(logging, level, logging.INFO), "%s", message, extra={"run_id": self.run_id}
        )

    def info(self, message: str) -> None:
        self.write("INFO", message)

    def warning(self, message: str) -> None:
        self.write("WARNING", message)

    def error(self, message: str) -> None:
        self.write("ERROR", message)

    def text(self) -> str:
        return self.snapshot()[1]

    def snapshot(self) -> tuple[int, str]:
        """(writes so far, the log as stored): the text changes only with the count."""
        with self._lock:
            head = [f"… {self._dropped} earlier lines dropped"] if self._dropped else []
            return self._written, "\n".join(head + self._lines)


def lines_after(logs: str, seen: int) -> tuple[list[str], int]:
    """The lines of a stored log (RunLog.text) past the first `seen` ever written, and the new
    count, for a reader that follows a run's log as it grows. Lines dropped from the log's head
    before the reader saw them are announced in one line instead."""
    lines = logs.split("\n") if logs else []
    dropped = 0
    if lines and (match := _DROPPED.fullmatch(lines[0])):
        dropped = int(match.group(1))
        lines = lines[1:]
    total = dropped + len(lines)
    if total <= seen:
        return [], seen
    if seen < dropped:
        return [f"… {dropped - seen} lines dropped", *lines], total
    return lines[seen - dropped :], total


class RunContext:
    """Passed to every handler. `ctx.step(...)` records step-level dataset outcomes. Steps and
    log lines are stamped with `clock`: the worker passes its own."""

    def __init__(self, job: Job, run: Run, *, clock: Clock = SYSTEM) -> None:
        self.job = job
        self.run = run
        self.clock = clock
        self.parameters: dict[str, Any] = dict(job.parameters)
        self.log = RunLog(run.id, clock)
        self.steps: list[Step] = []
        self._cancel_reason: str | None = None
        self._cancelled = threading.Event()

    @property
    def brand_id(self) -> str | None:
        return self.job.brand_id

    @property
    def job_id(self) -> int:
        return self.job.id

    @property
    def run_id(self) -> int:
        return self.run.id

    # -- cancellation (set by the worker; handlers poll it or wait on it) ----------------
    def cancel(self, reason: str) -> None:
        if not self._cancelled.is_set():
            self._cancel_reason = reason
            self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def cancel_reason(self) -> str | None:
        return self._cancel_reason

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, raising Cancelled as soon as the run is cancelled."""
        if self._cancelled.wait(seconds):
            raise Cancelled(self._cancel_reason or "cancelled")

    def fail(self, message: str) -> None:
        raise JobFailed(message)

    # -- steps ----------------------------------------------------------------------------
    def record_step(
        self,
        name: str,
        *,
        succeeded: bool,
        datasets: list[str] | tuple[str, ...] = (),
        fatal: bool = True,
        brand_id: str | _Unset | None = _UNSET,
        error: str | None = None,
    ) -> None:
        """Record a step's outcome directly (the command handler's step protocol uses this)."""
        self.steps.append(
            Step(
                name=name,
                status="completed" if succeeded else "failed",
                datasets=list(datasets),
                brand_id=self.job.brand_id if brand_id is _UNSET else brand_id,
                fatal=fatal,
                error=None if succeeded else (error or "failed"),
                finished_at=self.clock.now().isoformat(),
            )
        )

    @contextmanager
    def step(
        self,
        name: str,
        datasets: list[str] | tuple[str, ...] = (),
        *,
        fatal: bool = True,
        brand_id: str | _Unset | None = _UNSET,
    ) -> Iterator[None]:
        """Run a block as a named step. Its datasets are fresh if it completes. A failing fatal
        step fails the job; a failing non-fatal step is recorded and the job carries on."""
        self.log.info(f"step {name} started")
        try:
            yield
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            self.record_step(
                name,
                succeeded=False,
                datasets=datasets,
                fatal=fatal,
                brand_id=brand_id,
                error=error,
            )
            self.log.error(f"step {name} failed: {error}")
            if fatal or isinstance(exc, Cancelled):
                raise
        else:
            self.record_step(
                name, succeeded=True, datasets=datasets, fatal=fatal, brand_id=brand_id
            )
            self.log.info(f"step {name} completed")
