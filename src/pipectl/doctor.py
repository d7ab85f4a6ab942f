"""`pipectl doctor`: checks of the configuration, the store, the clock, workers and jobs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pipectl import clock
from pipectl.errors import InvalidInput, PipectlError
from pipectl.settings import Settings
from pipectl.store.base import Listener, listener

Level = Literal["ok", "warn", "fail"]

CLOCK_SKEW_WARN = timedelta(seconds=2)
CLOCK_SKEW_FAIL = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    level: Level
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "level": self.level, "detail": self.detail}


def masked_settings(settings: Settings) -> dict[str, str]:
    """The configuration in effect, as text, with passwords and keys masked."""
    shown = {}
    for name, value in settings.model_dump().items():
        text = str(value)
        if isinstance(value, timedelta):
            from pipectl.parsing import format_duration

            text = format_duration(value)
        if "url" in name and text.startswith("postgres"):
            from pipectl.store.urls import mask_password

            text = mask_password(text)
        if any(word in name for word in ("key", "secret", "password", "webhook")):
            text = "***" if value else ""  # webhook URLs carry their own tokens
        shown[name] = text
    return shown


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in order; a store that cannot be opened ends the list early."""
    from pipectl.client import Client
    from pipectl.store import open_store

    checks = [Check("config", "ok", "settings loaded (see below)")]
    started = time.perf_counter()
    try:
        store = open_store(settings.database_url, settings=settings)
        installed = store.schema_version()
    except PipectlError as exc:
        return [*checks, Check("store", "fail", str(exc))]
    latency_ms = (time.perf_counter() - started) * 1000
    checks.append(Check("store", "ok", f"{store.display_url} reachable in {latency_ms:.0f} ms"))
    try:
        store.check_schema()  # the store's own advice: `db migrate`, or `db sql` on Supabase
    except PipectlError as exc:
        store.close()
        return [*checks, Check("schema", "fail", str(exc))]
    checks.append(Check("schema", "ok", f"v{installed} (current)"))
    client = Client(store, settings)
    try:
        checks.append(_clock_check(client))
        if (listening := listener(store)) is not None:
            checks.append(_listen_check(listening))
        checks.extend(_worker_checks(client))
        checks.extend(_job_checks(client))
    finally:
        client.close()
    return checks


def _clock_check(client: Any) -> Check:
    before = clock.now()
    db_now = client.store.db_now()
    after = clock.now()
    local = before + (after - before) / 2
    skew = abs(db_now - local)
    level: Level = "ok"
    if skew > CLOCK_SKEW_FAIL:
        level = "fail"
    elif skew > CLOCK_SKEW_WARN:
        level = "warn"
    return Check(
        "clock", level, f"this machine and the database differ by {skew.total_seconds():.3f}s"
    )


def _listen_check(store: Listener) -> Check:
    """The workers' wake-up path: does a NOTIFY reach a LISTEN (not through a transaction
    pooler)? Without it workers still work, picking jobs up at the next poll."""
    if store.listen_check():
        return Check("listen", "ok", "ok: workers wake as soon as a job is enqueued")
    return Check(
        "listen",
        "warn",
        "not delivered (transaction pooler?): workers poll instead; for instant pickup set "
        "PIPECTL_LISTEN_URL to a direct or session-mode connection",
    )


def _worker_checks(client: Any) -> list[Check]:
    """Live workers and stuck runs, by the gate's own rule (`StatusReport.scheduler_failures`):
    no live worker while jobs are due fails, and so does a stuck run."""
    from pipectl.liveness import last_sign_of_life
    from pipectl.parsing import format_duration

    report = client.status()
    now = report.now
    failures = {failure.kind: failure.reason for failure in report.scheduler_failures()}
    live, workers = report.live_workers, report.workers
    if live:
        seen = ", ".join(f"{w.id} ({format_duration(now - w.last_seen_at)} ago)" for w in live)
        workers_check = Check("workers", "ok", f"{len(live)} live: {seen}")
    elif "no_live_worker" in failures:
        workers_check = Check("workers", "fail", failures["no_live_worker"])
    elif workers:
        workers_check = Check(
            "workers", "warn", f"no live worker; {last_sign_of_life(workers, now)} (no job is due)"
        )
    else:
        workers_check = Check("workers", "warn", "no worker has ever registered (no job is due)")
    stuck_check = (
        Check("stuck runs", "fail", failures["stuck_runs"])
        if "stuck_runs" in failures
        else Check("stuck runs", "ok", "none")
    )
    return [workers_check, stuck_check, _retired_check(client, report)]


def _retired_check(client: Any, report: Any) -> Check:
    """A live job that still declares a retired dataset: its runs refresh what nobody reads."""
    from pipectl.freshness import dataset_declarations
    from pipectl.models import LIVE_JOB_STATUSES

    found = []
    for job in report.jobs:
        if job.status not in LIVE_JOB_STATUSES:
            continue
        for dataset, brands in dataset_declarations(job):
            targets = brands if job.brand_id is None and brands else [job.brand_id]
            for brand in targets:
                if (brand, dataset) in report.retired:
                    found.append(f"job {job.id} declares {brand or 'global'}/{dataset}")
    if found:
        return Check(
            "retired datasets",
            "warn",
            "; ".join(found[:10]) + " (retired: edit the job, or pipectl datasets restore)",
        )
    return Check("retired datasets", "ok", "no live job declares a retired dataset")


def _job_checks(client: Any) -> list[Check]:
    from pipectl.handlers import get_job_type
    from pipectl.models import LIVE_JOB_STATUSES
    from pipectl.schedule import check_cron, next_occurrence

    live = client.store.list_jobs(statuses=LIVE_JOB_STATUSES)
    no_handler, bad_cron = [], []
    for job in live:
        try:
            get_job_type(job.job_type)
        except InvalidInput:
            no_handler.append(f"{job.id} ({job.job_type})")
        if job.is_recurring:
            try:
                next_occurrence(check_cron(job.cron_expression or ""), job.timezone, clock.now())
            except InvalidInput:
                bad_cron.append(f"{job.id} ({job.cron_expression!r} {job.timezone})")
    return [
        Check("job types", "fail", "no handler installed for jobs " + ", ".join(no_handler))
        if no_handler
        else Check("job types", "ok", f"every live job's type has a handler ({len(live)} jobs)"),
        Check("cron", "fail", "invalid schedule on jobs " + ", ".join(bad_cron))
        if bad_cron
        else Check("cron", "ok", "every recurring job's schedule is valid"),
    ]
