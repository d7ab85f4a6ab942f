"""Live run logs: the worker writes each running run's log to the store as the run goes."""

from __future__ import annotations

from pipectl.handlers.context import RunLog
from pipectl.models import Run
from pipectl.store.base import Store


class LogWriter:
    """Called at each heartbeat with the worker's started runs: writes, in one store call, the
    log of each run that has written lines since its last write. The log is the one the run's
    outcome stores (tail-truncated at MAX_LOG_CHARS), so the stored log only ever grows into
    the final one; a run that is no longer running under its lease is left alone."""

    def __init__(self) -> None:
        self._written: dict[int, int] = {}  # run id -> RunLog writes stored so far

    def write(self, store: Store, runs: list[tuple[Run, RunLog]]) -> None:
        counts: dict[int, int] = {}
        news = []
        for run, log in runs:
            counts[run.id], text = log.snapshot()
            if counts[run.id] != self._written.get(run.id, 0):
                news.append((run.id, run.lease_token, text))
        if news:
            store.write_run_logs(news)
        self._written = counts  # runs that ended are forgotten
