"""Retention: deleting old run history and old archived jobs, in batches of DELETE_BATCH rows
(short transactions, steady progress). `Client` and the worker's hourly housekeeping call it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pipectl.store import Store

DELETE_BATCH = 5_000  # rows per transaction


def prune_runs(store: Store, finished_before: datetime, keep_last: int = 1) -> int:
    """Delete runs that finished before the cutoff — never a running run, never one of a job's
    newest `keep_last` (≥ 1). Returns how many went."""
    return _in_batches(lambda: store.prune_runs(finished_before, keep_last, DELETE_BATCH))


def purge_archived_jobs(store: Store, archived_before: datetime) -> int:
    """Delete archived jobs last changed before the cutoff, with their runs; returns how many."""
    return _in_batches(lambda: store.purge_archived_jobs(archived_before, DELETE_BATCH))


def _in_batches(delete_batch: Callable[[], int]) -> int:
    total = 0
    while deleted := delete_batch():
        total += deleted
        if deleted < DELETE_BATCH:
            break
    return total
