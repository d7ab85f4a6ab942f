"""The stuck-run sweep: each stuck run (lifecycle.is_stuck) ends as lifecycle.recovered_result
says, through a store write that re-checks that it is still stuck."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from pipectl.lifecycle import recovered_result, settle_edited_job, stuck_cutoffs
from pipectl.models import Claim, Recorded
from pipectl.store.base import Store

log = logging.getLogger("pipectl.recovery")


def find_stuck(
    store: Store, now: datetime, stuck_after: timedelta, start_grace: timedelta
) -> list[Claim]:
    return store.stuck_runs(*stuck_cutoffs(now, stuck_after, start_grace))


def recover_stuck(
    store: Store,
    now: datetime,
    stuck_after: timedelta,
    start_grace: timedelta,
    *,
    dry_run: bool = False,
) -> list[Claim]:
    """End every stuck run and apply its outcome to its job. Returns the runs recovered (or,
    with dry_run, those that would be), all ended in one store write. Each run is guarded in
    the store, so a run that heartbeats or finishes meanwhile is left alone."""
    heartbeat_before, started_before = stuck_cutoffs(now, stuck_after, start_grace)
    stuck = store.stuck_runs(heartbeat_before, started_before)
    if dry_run:
        return stuck
    results = [recovered_result(claim, now) for claim in stuck]
    outcomes = [(claim.run.id, result) for claim, result in zip(stuck, results, strict=True)]
    recovered = []
    for claim, result, recorded in zip(
        stuck,
        results,
        store.fail_stuck_runs(heartbeat_before, started_before, outcomes),
        strict=True,
    ):
        if recorded is Recorded.EDITED:
            settle_edited_job(store, claim.job.id, claim.run.id, result)
        if recorded:
            log.warning(
                "recovered stuck run",
                extra={"action": "recover", "run_id": claim.run.id, "job_id": claim.job.id},
            )
            recovered.append(claim)
    return recovered
