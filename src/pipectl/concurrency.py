"""Concurrency keys: which due jobs are waiting because another run holds their key."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipectl.lifecycle import is_due
from pipectl.models import Job, Run, iso


@dataclass(frozen=True, slots=True)
class Waiting:
    """A due job held back by a running run with the same concurrency key."""

    concurrency_key: str
    run_id: int
    job_id: int
    worker_id: str | None
    since: datetime

    def describe(self) -> str:
        return (
            f"waiting for {self.concurrency_key} (run {self.run_id} on worker "
            f"{self.worker_id} since {self.since:%Y-%m-%d %H:%M:%S} UTC)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "concurrency_key": self.concurrency_key,
            "run_id": self.run_id,
            "job_id": self.job_id,
            "worker_id": self.worker_id,
            "since": iso(self.since),
            "description": self.describe(),
        }


def waiting_on(jobs: Iterable[Job], running: Iterable[Run], now: datetime) -> dict[int, Waiting]:
    """For each due, active job whose key a running run of another job holds: what it waits on."""
    holders = {run.concurrency_key: run for run in running if run.concurrency_key is not None}
    waiting = {}
    for job in jobs:
        holder = holders.get(job.concurrency_key) if job.concurrency_key else None
        if holder is not None and holder.job_id != job.id and is_due(job, now):
            waiting[job.id] = Waiting(
                job.concurrency_key or "",
                holder.id,
                holder.job_id,
                holder.worker_id,
                holder.started_at,
            )
    return waiting
