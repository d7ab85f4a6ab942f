"""Data-aware scheduling with two real worker processes on PostgreSQL: 200 upstream successes
across 20 brands trigger exactly one downstream run per brand per batch of successes."""

from __future__ import annotations

import itertools
import signal
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta

import pytest
from procs import Workers, wait_for

from pipectl.client import Client

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BRANDS = [f"brand-{n:02d}" for n in range(20)]
PER_BRAND = 5  # upstream successes per brand per batch; two batches: 200 in all


@pytest.fixture
def pg_client(postgres_url: str) -> Iterator[Client]:
    Client.migrate_url(postgres_url)
    with Client.from_url(postgres_url) as client:
        yield client


def run_batch(client: Client, url: str, workers: Workers, batch: int) -> None:
    """Queue PER_BRAND upstream runs per brand while no worker runs, then let two drain them:
    each brand's upstream jobs are older than the downstream run they trigger, and share its
    concurrency key (`noop:BRAND`, given to the downstream job by hand, since a named job's
    default key is its name's), so the downstream run comes once after all of them."""
    for brand in BRANDS:
        for i in range(PER_BRAND):
            client.enqueue("noop", brand, {"datasets": ["ads"], "batch": batch, "i": i})
    procs = [
        workers.start(url, "--worker-id", f"w{batch}-{n}", PIPECTL_CLAIM_BATCH_SIZE="4")
        for n in range(2)
    ]
    expected = len(BRANDS) * (PER_BRAND + 1) * batch
    wait_for(lambda: len(client.list_runs(status="completed", limit=1000)) >= expected, timeout=240)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        assert proc.wait(timeout=60) == 0


def test_two_workers_run_each_brand_once_per_batch_of_upstream_successes(
    pg_client: Client, postgres_url: str, workers: Workers
) -> None:
    pg_client.set_threshold(
        "ads", timedelta(hours=1), timedelta(hours=2)
    )  # declared, so --after ads is known before any producer
    downstream = {
        brand: pg_client.add_job(
            "noop",
            brand_id=brand,
            name="rollup",
            parameters={"datasets": ["roas"]},
            after=["ads"],
            concurrency_key=f"noop:{brand}",
        )
        for brand in BRANDS
    }
    for batch in (1, 2):
        run_batch(pg_client, postgres_url, workers, batch)

    runs = pg_client.list_runs(limit=1000)
    assert {run.status for run in runs} == {"completed"}
    upstream = [run for run in runs if run.job_id not in {j.id for j in downstream.values()}]
    assert len(upstream) == 200
    assert set(Counter(run.job_id for run in upstream).values()) == {1}, "a job ran twice"
    assert len({run.worker_id for run in runs}) > 2, "the work was not shared"
    upstream_brand = {run.id: pg_client.get_job(run.job_id).brand_id for run in upstream}

    taken: list[int] = []
    for brand, job in downstream.items():
        mine = sorted((run for run in runs if run.job_id == job.id), key=lambda run: run.started_at)
        assert len(mine) == 2, f"{brand}: one downstream run per batch"
        for run in mine:
            (trigger,) = run.triggered_by
            assert trigger["dataset"] == "ads" and trigger["brand_id"] == brand
            assert trigger["successes"] == PER_BRAND
            assert upstream_brand[trigger["run_id"]] == brand
            taken.append(trigger["run_id"])
        assert pg_client.get_job(job.id).next_run_at is None
    assert len(taken) == len(set(taken)), "an upstream success triggered twice"

    # Concurrency keys intact: no two runs of one key overlapped.
    by_key = defaultdict(list)
    for run in runs:
        by_key[run.concurrency_key].append((run.started_at, run.finished_at))
    for key, spans in by_key.items():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, f"two runs of key {key} overlapped"
