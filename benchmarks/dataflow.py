"""Issue 17's figure: a drain of jobs triggered by their inputs (`--after`) against the same
drain of jobs without dependencies."""

from __future__ import annotations

import json
from datetime import timedelta

from benchmarks.measure import Pipectl
from benchmarks.stores import Store, brand_name
from benchmarks.workers import _run_workers
from pipectl import clock
from pipectl.store.sqlite import ts

AFTER_ADS = json.dumps([{"kind": "after", "scope": "brand", "dataset": "ads"}])


def dependent_drain(pipectl: Pipectl, store: Store, jobs: int, *, dependent: bool) -> float:
    """`jobs` upstream noop jobs due now (a brand each, each refreshing `ads`) and `jobs` more
    of the same brands: with `dependent`, each waits `--after ads` (so it is triggered by its
    brand's upstream success, in that success's transaction); without, each is simply due.
    Times one `run-worker --once` running all 2 × `jobs`; returns jobs per second. Fails unless
    every job ran exactly once and completed."""
    ids = _insert(store, jobs, dependent)
    elapsed = _run_workers(pipectl, store, 1, {})
    store.check_drained(ids)
    return 2 * jobs / elapsed


def _insert(store: Store, jobs: int, dependent: bool) -> tuple[int, int]:
    """The jobs as `jobs add`/`enqueue` would write them, in one transaction; their id range."""
    due = clock.now() - timedelta(seconds=1)
    sqlite = store.dialect == "sqlite"
    mark = "?" if sqlite else "%s"
    at = ts if sqlite else (lambda value: value)
    rows = []
    for index in range(jobs):
        brand = brand_name(index)
        rows.append((brand, "one_time", at(due), '{"datasets": ["ads"]}', "[]"))
        if dependent:
            rows.append((brand, "datasets", None, '{"datasets": ["roas"]}', AFTER_ADS))
        else:
            rows.append((brand, "one_time", at(due), '{"datasets": ["roas"]}', "[]"))
    insert = f"""
        INSERT INTO scheduled_jobs (brand_id, job_type, name, schedule_type, timezone,
            next_run_at, status, parameters, max_retries, retry_base_seconds, retry_cap_seconds,
            concurrency_key, created_at, updated_at, inputs)
        VALUES ({mark}, 'noop', 'noop', {mark}, 'UTC', {mark}, 'active', {mark}, 3, 300, 3600,
            'noop:' || {mark}, {mark}, {mark}, {mark})
    """
    (first,) = store.sql("SELECT coalesce(max(id), 0) + 1 FROM scheduled_jobs")[0]
    now = at(clock.now())
    params = [(b, kind, when, doc, b, now, now, inputs) for b, kind, when, doc, inputs in rows]
    inputs = (
        "INSERT INTO job_inputs (job_id, kind, scope, dataset) SELECT id, 'after', 'brand', "
        f"'ads' FROM scheduled_jobs WHERE schedule_type = 'datasets' AND id >= {int(first)}"
    )
    if sqlite:
        store.conn.execute("BEGIN IMMEDIATE")
        store.conn.executemany(insert, params)
        store.conn.execute(inputs)
        store.conn.execute("COMMIT")
    else:
        with store.conn.transaction(), store.conn.cursor() as cursor:
            cursor.executemany(insert, params)
            cursor.execute(inputs)
        store.conn.execute("ANALYZE scheduled_jobs, job_inputs")
    (last,) = store.sql("SELECT max(id) FROM scheduled_jobs")[0]
    assert last - first + 1 == 2 * jobs, (first, last, jobs)
    return first, last
