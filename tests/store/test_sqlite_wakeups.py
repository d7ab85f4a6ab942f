"""An idle worker on SQLite wakes when another connection commits (PRAGMA data_version), so a
job enqueued by another process starts at once instead of at the next poll (issue 18)."""

from __future__ import annotations

import threading
import time

from test_contract import T0, new_job

from pipectl.client import Client
from pipectl.store.sqlite import SQLiteStore


def test_wait_for_work_wakes_on_another_connections_commit(sqlite_url: str) -> None:
    Client.migrate_url(sqlite_url)
    waiting, writer = SQLiteStore(sqlite_url), SQLiteStore(sqlite_url)
    try:
        assert waiting.listen_check()
        assert waiting.wait_for_work(0.05) is False  # nothing committed since it opened
        committed = threading.Event()

        def enqueue() -> None:
            writer.insert_job(new_job(), T0)
            committed.set()

        thread = threading.Thread(target=enqueue)
        started = time.monotonic()
        thread.start()
        assert waiting.wait_for_work(30.0) is True
        woken_after_s = time.monotonic() - started
        thread.join()
        assert committed.is_set()
        assert woken_after_s < 10.0  # the commit, not the 30 s timeout, ended the wait
        # Its own commits do not wake it; one wake-up serves the commit it saw.
        waiting.insert_job(new_job(), T0)
        assert waiting.wait_for_work(0.05) is False
    finally:
        waiting.close()
        writer.close()


def test_a_commit_while_busy_wakes_the_next_wait_at_once(sqlite_url: str) -> None:
    Client.migrate_url(sqlite_url)
    waiting, writer = SQLiteStore(sqlite_url), SQLiteStore(sqlite_url)
    try:
        writer.insert_job(new_job(), T0)  # before the wait starts: not lost
        started = time.monotonic()
        assert waiting.wait_for_work(30.0) is True
        assert time.monotonic() - started < 10.0
    finally:
        waiting.close()
        writer.close()
