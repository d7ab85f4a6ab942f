"""Concurrency keys: which due jobs are waiting because another run holds their key."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipectl.lifecycle import is_due
from pipectl.models import Job, Run, iso
from pipectl.parsing import MAX_NAME_LENGTH

KEY_DIGEST_LENGTH = 16  # hex digits of sha256 that end a shortened concurrency key


def default_job_name(job_type: str, brand_id: str | None) -> str:
    """The name of a job given none: `job_type brand` (`job_type` when global)."""
    return job_type if brand_id is None else f"{job_type} {brand_id}"


def default_concurrency_key(job_type: str, brand_id: str | None, name: str | None = None) -> str:
    """`name:brand` when the job has a name of its own, `job_type:brand` otherwise (without
    `:brand` when global), shortened to a valid name when too long. So a job's runs wait only
    for the runs of the same job (and of one-time jobs queued under its name), not for every
    job of its type and brand.

    A key over MAX_NAME_LENGTH keeps its start and ends in `~` and a digest of the whole key,
    so it stays readable, is the same on every call, and two long brands still get two keys.
    """
    if name is None or name == default_job_name(job_type, brand_id):
        name = job_type
    key = name if brand_id is None else f"{name}:{brand_id}"
    if len(key) <= MAX_NAME_LENGTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:KEY_DIGEST_LENGTH]
    return f"{key[: MAX_NAME_LENGTH - KEY_DIGEST_LENGTH - 1]}~{digest}"


def renamed_key(job: Job, new_name: str) -> str | None:
    """The key a job renamed to `new_name` takes: the new default, if its key is its current
    default (a key given explicitly stays); None when the key stays as it is."""
    if job.concurrency_key != default_concurrency_key(job.job_type, job.brand_id, job.name):
        return None
    key = default_concurrency_key(job.job_type, job.brand_id, new_name)
    return key if key != job.concurrency_key else None


def migrated_key(job_type: str, brand_id: str | None, name: str, key: str | None) -> str | None:
    """Schema v12 (PostgreSQL) / v9 (SQLite): a key that is the default of the rule before
    them (`job_type:brand`) becomes the default of today's rule; None when it stays. A store
    cannot tell such a key from one an operator gave that spells the same: both move."""
    if key is None or key != default_concurrency_key(job_type, brand_id):
        return None
    new = default_concurrency_key(job_type, brand_id, name)
    return new if new != key else None


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
