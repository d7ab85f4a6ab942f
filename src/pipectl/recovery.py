"""The stuck-run sweep: runs whose heartbeat is older than `stale_after` (or that never sent
one within the start grace) are failed and retried — or, when an operator had asked to cancel
them, end cancelled."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from pipectl.models import Claim, Recorded
from pipectl.outcome import cancelled_result, run_result, settle_edited_job
from pipectl.parsing import format_duration
from pipectl.store.base import Store

log = logging.getLogger("pipectl.recovery")


def stale_cutoffs(
    now: datetime, stale_after: timedelta, start_grace: timedelta
) -> tuple[datetime, datetime]:
    """(heartbeat_before, started_before): a run is stuck when its last heartbeat is older than
    the first, or when it never sent one and started before the second. The start grace never
    exceeds stale_after."""
    return now - stale_after, now - min(start_grace, stale_after)


def stuck_error(claim: Claim, now: datetime) -> str:
    run = claim.run
    if run.heartbeat_at is None or run.heartbeat_at == run.started_at:
        silence = f"since the run started {format_duration(now - run.started_at)} ago"
    else:
        silence = f"for {format_duration(now - run.heartbeat_at)}"
    return (
        f"stuck: no heartbeat from worker {run.worker_id} {silence} "
        "(the worker died or lost its connection); recovered"
    )


def find_stuck(
    store: Store, now: datetime, stale_after: timedelta, start_grace: timedelta
) -> list[Claim]:
    return store.stale_runs(*stale_cutoffs(now, stale_after, start_grace))


def recover_stale(
    store: Store,
    now: datetime,
    stale_after: timedelta,
    start_grace: timedelta,
    *,
    dry_run: bool = False,
) -> list[Claim]:
    """Fail every stuck run and apply the retry rule to its job. Returns the runs recovered (or,
    with dry_run, those that would be). Each write is guarded in the store, so a run that
    heartbeats or finishes meanwhile is left alone."""
    heartbeat_before, started_before = stale_cutoffs(now, stale_after, start_grace)
    recovered = []
    for claim in store.stale_runs(heartbeat_before, started_before):
        if dry_run:
            recovered.append(claim)
            continue
        by = claim.run.cancel_requested_by
        if by is not None:  # its worker died before it could stop it: it ends as asked
            result = cancelled_result(claim.job, now, by, logs=claim.run.logs)
        else:
            result = run_result(claim.job, now, error=stuck_error(claim, now), logs=claim.run.logs)
        recorded = store.fail_stale_run(claim.run.id, heartbeat_before, started_before, result)
        if recorded is Recorded.EDITED:
            settle_edited_job(store, claim.job.id, claim.run.id, result)
        if recorded:
            log.warning(
                "recovered stuck run",
                extra={"action": "recover", "run_id": claim.run.id, "job_id": claim.job.id},
            )
            recovered.append(claim)
    return recovered
