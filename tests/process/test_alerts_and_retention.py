"""Alerts from real workers to a real local webhook receiver, and history retention on a store
with 100,000 runs."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ageing import age_run
from procs import Workers, pipectl, wait_for

from pipectl.client import Client

pytestmark = pytest.mark.slow


class Receiver:
    def __init__(self) -> None:
        self.events: list[dict] = []
        events = self.events

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                events.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook?token=s3cret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, kind: str) -> list[dict]:
        return [event for event in self.events if event["event"] == kind]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.server.shutdown()


def test_retries_exhausted_and_stuck_runs_are_announced(
    client: Client, sqlite_url: str, workers: Workers, receiver: Receiver
) -> None:
    alerting = {"PIPECTL_ALERT_WEBHOOKS": receiver.url}
    failing = client.enqueue("command", "acme", {"command": "exit 9"}, max_retries=0)
    stuck = client.enqueue("sleep", "globex", {"seconds": 60}, max_retries=0)
    doomed = workers.start(sqlite_url, **alerting)
    wait_for(lambda: receiver.of("retries_exhausted"))
    wait_for(lambda: client.list_runs(job_id=stuck.id, status="running"))
    workers.kill(doomed)
    age_run(sqlite_url, client.list_runs(job_id=stuck.id)[0].id)
    workers.start(sqlite_url, **alerting)
    wait_for(lambda: receiver.of("stuck_run_recovered"))
    wait_for(lambda: len(receiver.of("retries_exhausted")) == 2)

    exhausted = {e["job_id"]: e for e in receiver.of("retries_exhausted")}
    assert set(exhausted) == {failing.id, stuck.id}
    assert "command exited with status 9" in exhausted[failing.id]["text"]
    (recovered,) = receiver.of("stuck_run_recovered")
    assert recovered["job_id"] == stuck.id and "stuck" in recovered["text"]
    assert all(isinstance(e["text"], str) and e["text"] for e in receiver.events)


def test_a_dataset_turning_stale_and_fresh_is_announced_once(
    client: Client, sqlite_url: str, workers: Workers, receiver: Receiver
) -> None:
    """Two workers check every 0.2 s; each transition is announced once. That no second alert
    comes is seen by a later one: a `sentinel` dataset that the test turns stale (and fresh)
    by its thresholds. A check reads `orders` before `sentinel` (datasets go in name order), so
    once the sentinel's alert is in, `orders` was checked again after its own alert."""
    day = timedelta(days=1)
    client.set_threshold("orders", timedelta(seconds=1), timedelta(seconds=2), brand_id="acme")
    client.set_threshold("sentinel", day, 2 * day, brand_id="acme")
    client.enqueue("noop", "acme", {"datasets": ["orders", "sentinel"]})
    assert pipectl(sqlite_url, "run-worker", "--once").returncode == 0
    assert client.freshness("orders", "acme").state == "fresh"
    alerting = {"PIPECTL_ALERT_WEBHOOKS": receiver.url, "PIPECTL_ALERT_CHECK_INTERVAL": "0.2s"}
    for _ in range(2):  # two workers watch the same store
        workers.start(sqlite_url, **alerting)

    def of(kind: str, dataset: str) -> list[dict]:
        return [event for event in receiver.of(kind) if event["dataset"] == dataset]

    wait_for(lambda: of("dataset_stale", "orders"))
    tiny = timedelta(milliseconds=1)
    client.set_threshold("sentinel", tiny, 2 * tiny, brand_id="acme")
    wait_for(lambda: of("dataset_stale", "sentinel"))
    (stale,) = of("dataset_stale", "orders")
    assert (stale["brand_id"], stale["dataset"], stale["state"]) == ("acme", "orders", "stale")

    client.enqueue("noop", "acme", {"datasets": ["orders"], "again": True})
    wait_for(lambda: of("dataset_fresh", "orders"))
    client.set_threshold("sentinel", day, 2 * day, brand_id="acme")
    wait_for(lambda: of("dataset_fresh", "sentinel"))
    assert len(of("dataset_fresh", "orders")) == 1
    assert len(of("dataset_stale", "orders")) in (1, 2)  # it may go stale again 2 s later


def _bulk_history(path: Path, jobs: int, runs_per_job: int) -> None:
    """100,000 finished runs, one a minute per job, the oldest 100 days ago — straight in SQL."""
    start = datetime.now(UTC) - timedelta(days=100)
    stamp = "%Y-%m-%dT%H:%M:%S.%f+00:00"
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO scheduled_jobs (id, brand_id, job_type, name, schedule_type, "
            "cron_expression, timezone, next_run_at, status, parameters, max_retries, "
            "retry_base_seconds, retry_cap_seconds, created_at, updated_at) VALUES "
            "(?, ?, 'noop', 'noop', 'recurring', '0 * * * *', 'UTC', ?, 'active', '{}', 3, 300, "
            "3600, ?, ?)",
            [
                (
                    j,
                    f"brand-{j}",
                    start.strftime(stamp),
                    start.strftime(stamp),
                    start.strftime(stamp),
                )
                for j in range(1, jobs + 1)
            ],
        )
        rows = []
        for j in range(1, jobs + 1):
            for k in range(runs_per_job):
                at = (start + timedelta(days=k)).strftime(stamp)
                rows.append((j, k + 1, at, at, at))
        conn.executemany(
            "INSERT INTO scheduled_job_runs (job_id, attempt, status, started_at, finished_at, "
            "heartbeat_at, lease_token) VALUES (?, ?, 'completed', ?, ?, ?, 'x')",
            [(j, a, s, f, h) for j, a, s, f, h in rows],
        )
        conn.execute(
            "UPDATE scheduled_jobs SET last_run_id = "
            "(SELECT max(id) FROM scheduled_job_runs AS r WHERE r.job_id = scheduled_jobs.id)"
        )


def test_prune_100000_runs_in_batches(client: Client, sqlite_url: str, tmp_path: Path) -> None:
    _bulk_history(tmp_path / "pipectl.db", jobs=1000, runs_per_job=100)
    running = client.store.claim_due("w", datetime.now(UTC), 1)[0]  # one running run stays
    # Runs are a day apart per job, days 0..99 of 100 days ago: 70 are older than 30 days.
    dry = json.loads(
        pipectl(sqlite_url, "runs", "prune", "--older-than", "30.5d", "--dry-run", "--json").stdout
    )
    assert dry == {"dry_run": True, "runs": 70 * 1000}
    assert len(client.list_runs(limit=10_000)) == 10_000  # nothing deleted by a dry run
    done = pipectl(
        sqlite_url, "runs", "prune", "--older-than", "30.5d", "--keep-last", "95", "--json"
    )
    # 5 per job; one more of the job whose newest run is running (it counts among its 95).
    assert json.loads(done.stdout) == {"dry_run": False, "runs": 5 * 1000 + 1}
    with sqlite3.connect(tmp_path / "pipectl.db") as conn:
        (left,) = conn.execute("SELECT count(*) FROM scheduled_job_runs").fetchone()
        assert left == 95 * 1000
        # Every job keeps its latest run, and the running one is untouched.
        assert conn.execute(
            "SELECT count(*) FROM scheduled_jobs AS j WHERE NOT EXISTS "
            "(SELECT 1 FROM scheduled_job_runs AS r WHERE r.id = j.last_run_id)"
        ).fetchone() == (0,)
    assert client.get_run(running.run.id).status == "running"


def test_purge_archived_jobs_and_worker_housekeeping(
    client: Client, sqlite_url: str, workers: Workers
) -> None:
    old = client.enqueue("noop", "acme", {"old": True})
    assert pipectl(sqlite_url, "run-worker", "--once").returncode == 0
    long_ago = datetime.now(UTC) - timedelta(days=400)
    client.store.update_job(old.id, {"name": "old"}, long_ago)  # archived 400 days ago
    keep = client.archive(client.add_job("noop", "0 3 * * *", brand_id="acme").id)
    dry = json.loads(
        pipectl(sqlite_url, "jobs", "purge", "--older-than", "365d", "--dry-run", "--json").stdout
    )
    assert dry == {"dry_run": True, "jobs": 1}
    # A worker configured to purge does it by itself.
    workers.start(sqlite_url, PIPECTL_PURGE_ARCHIVED_AFTER="365d", PIPECTL_PRUNE_RUNS_AFTER="30d")
    wait_for(lambda: client.store.get_job(old.id) is None)
    assert client.store.get_job(keep.id) is not None
