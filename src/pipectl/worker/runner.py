"""Running one handler: on a long-lived thread, under the job's timeout and the shutdown grace."""

from __future__ import annotations

import queue
import threading
import traceback
from collections.abc import Callable
from datetime import timedelta

from pipectl.clock import Clock
from pipectl.errors import InvalidInput
from pipectl.handlers import Cancelled, JobFailed, RunContext, get_job_type
from pipectl.parsing import format_duration
from pipectl.settings import Settings

# A run that finishes this fast is quick: see the poll loop's claim batches.
QUICK_RUN_S = 0.05
SUPERVISE_TICK_S = 0.1
# A handler that ignores cancellation this long is abandoned (its thread is a daemon) and the run
# is recorded failed anyway.
ABANDON_AFTER_S = 10.0


class _Done:
    """Set once, by the runner's thread, when a call has returned: a lock held until then. A
    threading.Event would cost a Condition to make and a new lock at each wait, once per run."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        self._lock.release()

    def is_set(self) -> bool:
        return not self._lock.locked()

    def wait(self, timeout: float | None = None) -> bool:
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            return False
        self._lock.release()
        return True


class _Thread:
    """A long-lived thread that runs handlers one at a time: starting a thread per run costs
    more than a quick job's whole run (docs/benchmarks.md)."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], None], _Done]]
        self._calls = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="pipectl-runner", daemon=True).start()

    def submit(self, call: Callable[[], None]) -> _Done:
        """Queue `call` (which must not raise); `done` is set when it has returned."""
        done = _Done()
        self._calls.put((call, done))
        return done

    def _serve(self) -> None:
        while True:
            call, done = self._calls.get()
            call()
            done.set()


class Runner:
    """Runs handlers and supervises them. `stop_requested_at` is when the worker was asked to
    stop (Clock.monotonic()), or None."""

    def __init__(
        self, settings: Settings, clock: Clock, stop_requested_at: Callable[[], float | None]
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.stop_requested_at = stop_requested_at
        self._thread: _Thread | None = None  # started with the first run

    def run(self, ctx: RunContext, while_slow: Callable[[], None]) -> str | None:
        """Run the job's handler; return its error, or None when it succeeded. Once the run
        outlasts a quick one, `while_slow` is called at every supervision tick, so that nothing
        else waits for it."""
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

        self._thread = self._thread or _Thread()
        clock = self.clock
        started = clock.monotonic()
        done = self._thread.submit(call)
        timeout_s = ctx.job.timeout_seconds
        grace_s = self.settings.shutdown_grace.total_seconds()
        cancelled_at: float | None = None
        clock.wait(done, QUICK_RUN_S)
        while not done.is_set():
            while_slow()
            now = clock.monotonic()
            if timeout_s is not None and now - started > timeout_s:
                ctx.cancel(f"timed out after {format_duration(timedelta(seconds=timeout_s))}")
            stop_at = self.stop_requested_at()
            if stop_at is not None and now - stop_at > grace_s:
                ctx.cancel(
                    "worker shut down before the run finished "
                    f"(shutdown grace {format_duration(self.settings.shutdown_grace)})"
                )
            if ctx.cancelled:
                cancelled_at = cancelled_at or now
                if now - cancelled_at > ABANDON_AFTER_S:
                    ctx.log.error("the handler ignored cancellation; abandoning it")
                    self._thread = None  # left to the handler; the next run gets a new thread
                    break
            clock.wait(done, SUPERVISE_TICK_S)
        if ctx.cancelled:
            return ctx.cancel_reason
        return outcome["error"]
