"""Starting the claimed runs of jobs with inputs: hold those whose inputs are stale, fail those
held past max-hold, and give the others their brand and the input successes that triggered
them (the worker's claim hook; the rules are triggers.py's)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from pipectl.freshness import Thresholds, freshness
from pipectl.lifecycle import run_result
from pipectl.models import (
    Claim,
    Freshness,
    InputSuccess,
    PendingTrigger,
    RunHold,
    RunResult,
    RunStart,
)
from pipectl.store.base import Store
from pipectl.triggers import (
    GLOBAL_PREFIX,
    Hold,
    HoldExpired,
    fans_out,
    fresh_inputs,
    hold_decision,
)


def start_claims(
    store: Store, claims: list[Claim], now: datetime, default: tuple[timedelta, timedelta]
) -> tuple[list[Claim], list[tuple[Claim, RunResult]]]:
    """The claims to run (in order), and those to record at once as failed: held past max-hold.
    Claims of jobs without inputs pass through untouched, at no cost."""
    if not any(claim.job.inputs for claim in claims):
        return claims, []
    thresholds: Thresholds | None = None
    starts: list[RunStart] = []
    holds: list[RunHold] = []
    expired: dict[int, str] = {}
    for claim in claims:
        job, run = claim.job, claim.run
        if not job.inputs:
            continue
        carried, brand = _retried(store, claim)
        decision = None
        if fresh_inputs(job):
            thresholds = thresholds or Thresholds(store.thresholds(), default)
            decision = hold_decision(
                job, brand, _freshness(store, claim, brand, thresholds, now), now
            )
        if isinstance(decision, Hold):
            holds.append(
                RunHold(
                    run.id,
                    run.lease_token,
                    decision.next_check,
                    decision.held_since,
                    decision.waiting_on,
                )
            )
            continue
        if isinstance(decision, HoldExpired):
            expired[run.id] = decision.reason
        pick = fans_out(job) and not carried
        starts.append(RunStart(run.id, run.lease_token, pick, brand, carried))
    store.hold_runs(holds, now)
    started = store.start_runs(starts)
    held = {hold.run_id for hold in holds}
    to_run, failed = [], []
    for claim in claims:
        if claim.run.id in held:
            continue
        if claim.job.inputs:
            started_run = started.get(claim.run.id)
            if started_run is None:  # the lease was lost meanwhile: nothing to run
                continue
            brand = started_run.brand_id
            job = replace(claim.job, brand_id=brand) if fans_out(claim.job) else claim.job
            claim = Claim(run=started_run, job=job)
            if started_run.id in expired:
                failed.append((claim, run_result(claim.job, now, error=expired[started_run.id])))
                continue
        to_run.append(claim)
    return to_run, failed


def given_back(store: Store, claim: Claim) -> list[PendingTrigger]:
    """What a started run given back unstarted returns to its job's pending triggers: the input
    successes it took when it started, so that its brand's run is still made. Not what a
    retried run carried over from the run it retries (its triggered_by starts with that run's):
    the retry carries them again."""
    taken = list(claim.run.triggered_by)
    if taken and claim.job.retry_count:
        previous = next(
            (
                run
                for run in store.list_runs(job_id=claim.job.id, limit=2)
                if run.id != claim.run.id
            ),
            None,
        )
        carried = previous.triggered_by if previous is not None else []
        if carried and taken[: len(carried)] == carried:
            taken = taken[len(carried) :]
    return [
        PendingTrigger(
            scope="global" if item["dataset"].startswith(GLOBAL_PREFIX) else "brand",
            dataset=item["dataset"].removeprefix(GLOBAL_PREFIX),
            brand_id=item["brand_id"],
            run_id=item["run_id"],
            at=datetime.fromisoformat(item["at"]),
            successes=item["successes"],
        )
        for item in taken
    ]


def _retried(store: Store, claim: Claim) -> tuple[list[InputSuccess], str | None]:
    """A run that retries a failed triggered run carries its brand and its triggers over."""
    job = claim.job
    if job.retry_count == 0 or not (fans_out(job) or job.waits_for_data):
        return [], job.brand_id
    previous = next(
        (run for run in store.list_runs(job_id=job.id, limit=2) if run.id != claim.run.id), None
    )
    if previous is None:
        return [], job.brand_id
    return list(previous.triggered_by), previous.brand_id if fans_out(job) else job.brand_id


def _freshness(
    store: Store, claim: Claim, brand: str | None, thresholds: Thresholds, now: datetime
) -> dict[tuple[str | None, str], Freshness]:
    found = {}
    for item in fresh_inputs(claim.job):
        key = (item.brand_for(brand), item.dataset)
        found[key] = freshness(
            item.dataset, key[0], store.dataset_status(item.dataset, key[0]), thresholds, now
        )
    return found
