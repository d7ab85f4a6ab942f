"""Measurements with real `pipectl run-worker` processes: drains, pickup latency, peak memory."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from datetime import UTC, datetime

from benchmarks.measure import Pipectl, wait_for_peak_rss
from benchmarks.stores import Store
from pipectl.client import Client


def drain(
    pipectl: Pipectl,
    store: Store,
    jobs: int,
    *,
    workers: int = 1,
    keys: int | None = 1_000,
    **settings: str,
) -> float:
    """Queue `jobs` due noop jobs (their concurrency keys spread over `keys` brands; None: one
    each), then time `pipectl run-worker --once` processes (start to exit; environment
    `settings` such as PIPECTL_CLAIM_BATCH_SIZE) until all have exited; returns jobs per second.
    Fails unless every job ran exactly once and completed."""
    ids = store.add_due_noop_jobs(jobs, keys)
    elapsed = _run_workers(pipectl, store, workers, settings)
    store.check_drained(ids)
    return jobs / elapsed


def drain_behind_one_key(pipectl: Pipectl, store: Store, distinct: int, same: int) -> float:
    """Queue `same` due jobs of one key, then `distinct` due jobs of a key each, all due at the
    same time (the one key's first, in id order), and drain them with one worker; returns the
    distinct jobs per second, from the worker's start to the end of the last of them."""
    same_ids = store.add_due_noop_jobs(same, 1, first_brand=distinct) if same else None
    ids = store.add_due_noop_jobs(distinct, None)
    started = datetime.now(UTC)
    _run_workers(pipectl, store, 1, {})
    store.check_drained(ids)
    if same_ids:
        store.check_drained(same_ids)
    (((last,),)) = store.sql(
        "SELECT max(finished_at) FROM scheduled_job_runs "
        f"WHERE job_id BETWEEN {int(ids[0])} AND {int(ids[1])}"
    )
    if isinstance(last, str):  # SQLite keeps ISO 8601 text
        last = datetime.fromisoformat(last)
    return distinct / (last - started).total_seconds()


def _run_workers(pipectl: Pipectl, store: Store, workers: int, settings: dict[str, str]) -> float:
    """Seconds from the start of `workers` `run-worker --once` processes until all have exited."""
    log = pipectl.workdir / f"{store.dialect}-drain.log"
    started = time.perf_counter()
    procs = [
        pipectl.start(store.url, "run-worker", "--once", log=log, **settings)
        for _ in range(workers)
    ]
    for proc in procs:
        if proc.wait() != 0:
            raise RuntimeError(f"worker exited with {proc.returncode}; see {log}")
    return time.perf_counter() - started


def warm_up(pipectl: Pipectl, store: Store) -> None:
    """One small untimed drain: the first run of a command compiles its bytecode."""
    drain(pipectl, store, 10)


def peak_rss(pipectl: Pipectl, store: Store, jobs: int) -> int:
    """Peak RSS (bytes) of one `run-worker --once` process that drains `jobs` noop jobs."""
    ids = store.add_due_noop_jobs(jobs)
    log = pipectl.workdir / f"{store.dialect}-memory.log"
    proc = pipectl.start(store.url, "run-worker", "--once", log=log)
    status, rss = wait_for_peak_rss(proc)
    if status != 0:
        raise RuntimeError(f"worker exited with {status}; see {log}")
    store.check_drained(ids)
    return rss


def pickup_latencies(
    pipectl: Pipectl, store: Store, samples: int, *, poll_interval_s: float | None = None
) -> list[float]:
    """Seconds from an enqueue (the job's created_at, taken by the enqueuing client just before
    its INSERT, so the enqueue's commit counts) to the start of its run (the run's started_at,
    taken by the worker as it claims the job), with one idle worker waiting. Between samples
    the worker is idle for a random while, so that on SQLite samples fall anywhere in the poll
    interval."""
    extra = ["--poll-interval", f"{poll_interval_s}s"] if poll_interval_s else []
    log = pipectl.workdir / f"{store.dialect}-latency.log"
    worker = pipectl.start(store.url, "run-worker", *extra, log=log)
    latencies: list[float] = []
    try:
        with Client.from_url(store.url) as client:
            idle_s = (0.02, 0.08) if poll_interval_s is None else (0.0, poll_interval_s)
            _run_one(client, worker)  # the worker is up and has been through one cycle
            for _ in range(samples):
                time.sleep(random.uniform(*idle_s))
                enqueued_at, started_at = _run_one(client, worker)
                latencies.append((started_at - enqueued_at).total_seconds())
    finally:
        stop(worker)
    return latencies


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as a service manager stops a worker; SIGKILL if it has not exited in 30 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _run_one(client: Client, worker: subprocess.Popen[bytes]) -> tuple[datetime, datetime]:
    job = client.enqueue("noop", allow_duplicate=True)
    enqueued_at = job.created_at  # the client's clock, just before its INSERT … COMMIT
    deadline = time.monotonic() + 60
    while True:
        job = client.get_job(job.id)
        if job.status == "archived" and job.last_run_id is not None:
            return enqueued_at, client.get_run(job.last_run_id).started_at
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job.id} was not run within 60 s")
        time.sleep(0.005)
