"""JSON documents: what `--json` prints, the HTTP API answers and /status serves.

Nothing here imports rich: a script polling `status --json` never draws a table, so it should
not pay for loading rich's console (docs/benchmarks.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipectl.liveness import last_sign_of_life

if TYPE_CHECKING:
    from pipectl.client import StatusReport
    from pipectl.concurrency import Waiting
    from pipectl.gate import GateResult
    from pipectl.models import Job
    from pipectl.triggers import HeldWaiting


def status_json(report: StatusReport, gate: GateResult | None = None) -> dict[str, Any]:
    """The status document; `ok`, `counts` and `failures` are the gate's verdict (by default
    the plain `status --check`). Its timestamps are datetimes: pipectl.json_text writes them."""
    from pipectl.triggers import producer_index, producers_of

    live = report.live_workers
    gate = gate or report.gate()
    producers = producer_index(report.jobs)
    # Each dataset's document is made once; `failures` repeats the failing ones' facts.
    failing = {id(failure.facts) for failure in gate.failures if failure.facts}
    facts: dict[int, dict[str, Any]] = {}
    datasets = []
    for d in report.datasets:
        doc = d.to_json(datetimes=True)
        if id(d) in failing:
            facts[id(d)] = dict(doc)
        doc["producers"] = producers_of(producers, d.brand_id, d.dataset)
        datasets.append(doc)
    jobs = []
    for job in report.jobs:
        doc = job.to_json(datetimes=True)
        doc["waiting_on"] = waiting_json(report.waiting.get(job.id))
        run = report.last_runs.get(job.last_run_id) if job.last_run_id is not None else None
        doc["last_run"] = run.to_json(datetimes=True) if run else None
        jobs.append(doc)
    return {
        "generated_at": report.now,
        "ok": gate.ok,
        "strict": gate.strict,
        "require_worker": gate.require_worker,
        "counts": gate.counts,
        "failures": [
            failure.to_json(
                datetimes=True, facts=facts.get(id(failure.facts)) if failure.facts else None
            )
            for failure in gate.failures
        ],
        "datasets": datasets,
        "jobs": jobs,
        "stuck_runs": [
            {**claim.run.to_json(datetimes=True), "brand_id": claim.job.brand_id}
            for claim in report.stuck_runs
        ],
        "workers": [{**w.to_json(datetimes=True), "live": w in live} for w in report.workers],
        "worker_alert": worker_alert(report),
    }


def waiting_json(waiting: Waiting | HeldWaiting | None) -> dict[str, Any] | None:
    return waiting.to_json() if waiting else None


def worker_alert(report: StatusReport) -> str | None:
    if report.live_workers:
        return None
    if not report.workers:
        return "no worker has ever registered: start one with `pipectl run-worker` (or --once from cron)"
    return f"no live worker ({last_sign_of_life(report.workers, report.now)}): jobs are not running"


def jobs_json(jobs: list[Job], waiting: dict[int, Waiting | HeldWaiting]) -> list[dict[str, Any]]:
    return [{**job.to_json(), "waiting_on": waiting_json(waiting.get(job.id))} for job in jobs]
