"""Issue 17's figure: a drain of jobs triggered by their inputs (`--after`) against the same
drain of jobs without dependencies."""

from __future__ import annotations

from benchmarks.measure import Pipectl
from benchmarks.stores import Store, brand_name
from benchmarks.workers import _run_workers
from pipectl import clock
from pipectl.models import NewJob
from pipectl.store import open_store
from pipectl.triggers import parse_inputs


def _new(brand: str, datasets: list[str], *, due: bool) -> NewJob:
    return NewJob(
        brand_id=brand,
        job_type="noop",
        name="bench",
        schedule_type="one_time" if due else "datasets",
        cron_expression=None,
        timezone="UTC",
        next_run_at=clock.now() if due else None,
        status="active",
        parameters={"datasets": datasets},
        max_retries=3,
        retry_base_seconds=300,
        retry_cap_seconds=3600,
        timeout_seconds=None,
        dedupe_key=None,
        concurrency_key=f"noop:{brand}",
    )


def dependent_drain(pipectl: Pipectl, store: Store, jobs: int, *, dependent: bool) -> float:
    """`jobs` upstream noop jobs due now (a brand each, each refreshing `ads`) and `jobs` more
    of the same brands: with `dependent`, each waits `--after ads` (so it is triggered by its
    brand's upstream success, in that success's transaction); without, each is simply due.
    Times one `run-worker --once` running all 2 × `jobs`; returns jobs per second. Fails unless
    every job ran exactly once and completed."""
    opened = open_store(store.url)
    ids = []
    try:
        after = [item.to_json() for item in parse_inputs("b", ["ads"], [])]
        for index in range(jobs):
            brand = brand_name(index)
            ids.append(opened.insert_job(_new(brand, ["ads"], due=True), clock.now()).id)
            downstream = opened.insert_job(_new(brand, ["roas"], due=not dependent), clock.now())
            ids.append(downstream.id)
            if dependent:
                opened.set_job_inputs(downstream.id, after, None, clock.now())
    finally:
        opened.close()
    elapsed = _run_workers(pipectl, store, 1, {})
    store.check_drained((min(ids), max(ids)))
    return 2 * jobs / elapsed
