"""The stuck-run sweep: runs whose heartbeat is older than `stale_after` are failed and retried."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from pipectl.models import Claim
from pipectl.outcome import run_result
from pipectl.parsing import format_duration
from pipectl.store.base import Store

log = logging.getLogger("pipectl.recovery")


def stuck_error(claim: Claim, now: datetime) -> str:
    last_seen = claim.run.heartbeat_at or claim.run.started_at
    return (
        f"stuck: no heartbeat from worker {claim.run.worker_id} for {format_duration(now - last_seen)}"
        " (worker died or lost its connection); recovered"
    )


def recover_stale(
    store: Store, now: datetime, stale_after: timedelta, *, dry_run: bool = False
) -> list[Claim]:
    """Fail every run whose heartbeat is older than `now - stale_after` and apply the retry rule
    to its job. Returns the runs recovered (or, with dry_run, those that would be). Each write is
    guarded in the store, so a run that heartbeats or finishes meanwhile is left alone."""
    cutoff = now - stale_after
    recovered = []
    for claim in store.stale_runs(cutoff):
        if dry_run:
            recovered.append(claim)
            continue
        error = stuck_error(claim, now)
        if store.fail_stale_run(claim.run.id, cutoff, run_result(claim.job, now, error=error)):
            log.warning(
                "recovered stuck run",
                extra={"action": "recover", "run_id": claim.run.id, "job_id": claim.job.id},
            )
            recovered.append(claim)
    return recovered
