"""Real worker processes on a real SQLite file: kill -9, several workers, signals."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ageing import age_run
from procs import Workers, pipectl, wait_for

from pipectl.client import Client
from pipectl.models import Claim, Run

pytestmark = pytest.mark.slow


def running_run(client: Client, job_id: int) -> Run | None:
    runs = client.list_runs(job_id=job_id, status="running")
    return runs[0] if runs else None


def test_kill_9_mid_run_then_recover_and_retry(
    client: Client, sqlite_url: str, workers: Workers
) -> None:
    job = client.enqueue("sleep", "acme", {"seconds": 60, "datasets": ["orders"]})
    worker = workers.start(sqlite_url, "--worker-id", "doomed")
    run = wait_for(lambda: running_run(client, job.id))
    workers.kill(worker)

    # Its heartbeat stops; nothing is stale yet under the default 5m threshold.
    assert json.loads(pipectl(sqlite_url, "recover", "--json").stdout) == []
    age_run(sqlite_url, run.id)  # an hour of silence, written rather than waited for
    recovered = json.loads(pipectl(sqlite_url, "recover", "--json").stdout)
    assert [r["id"] for r in recovered] == [run.id]

    failed = client.get_run(run.id)
    assert failed.status == "failed" and "stuck" in (failed.error_message or "")
    retried = client.get_job(job.id)
    assert retried.status == "active" and retried.retry_count == 1
    assert retried.next_run_at is not None
    assert abs(retried.next_run_at - datetime.now(UTC) - timedelta(minutes=5)) < timedelta(
        seconds=30
    )
    orders = client.freshness("orders", "acme")
    assert orders.state == "never" and orders.last_attempt_failed

    # The retry runs (made short and due now) and completes as attempt 2.
    assert pipectl(sqlite_url, "jobs", "edit", str(job.id), "--param", "seconds:=0").returncode == 0
    assert pipectl(sqlite_url, "retry", str(job.id), "--now").returncode == 0
    assert pipectl(sqlite_url, "run-worker", "--once").returncode == 0
    last = client.list_runs(job_id=job.id)[0]
    assert last.status == "completed" and last.attempt == 2
    assert client.get_job(job.id).status == "archived"
    assert client.freshness("orders", "acme").state == "fresh"


def test_a_worker_sweeps_a_dead_workers_run_first(
    client: Client, sqlite_url: str, workers: Workers
) -> None:
    job = client.enqueue("sleep", "acme", {"seconds": 60})
    doomed = workers.start(sqlite_url, "--worker-id", "doomed")
    run = wait_for(lambda: running_run(client, job.id))
    workers.kill(doomed)
    age_run(sqlite_url, run.id)
    workers.start(sqlite_url, "--worker-id", "rescuer")
    recovered = wait_for(lambda: client.get_run(run.id).status == "failed")
    assert recovered
    assert "doomed" in (client.get_run(run.id).error_message or "")


def test_two_once_workers_never_run_a_job_twice(
    client: Client, sqlite_url: str, workers: Workers
) -> None:
    jobs = [
        client.enqueue("noop", f"brand-{i}", {"i": i}, concurrency_key=None).id for i in range(150)
    ]
    procs = [workers.start(sqlite_url, "--once", "--worker-id", f"w{n}") for n in range(2)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    runs = client.list_runs(limit=1000)
    assert sorted(r.job_id for r in runs) == sorted(jobs)  # each job exactly once
    assert {r.status for r in runs} == {"completed"}
    assert all(j.status == "archived" for j in client.list_jobs())


def test_sigterm_lets_the_current_run_finish(
    client: Client, sqlite_url: str, workers: Workers
) -> None:
    job = client.enqueue("sleep", "acme", {"seconds": 1.5})
    waiting = client.enqueue("noop", "acme", {}, concurrency_key=None)
    client.store.update_job(
        waiting.id, {"next_run_at": datetime.now(UTC) + timedelta(seconds=2)}, datetime.now(UTC)
    )
    worker = workers.start(sqlite_url, PIPECTL_LOG_LEVEL="DEBUG")
    run = wait_for(lambda: running_run(client, job.id))
    # Its handler runs: a claim not started yet would be given back at the stop.
    wait_for(lambda: "run started" in workers.log(worker))
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    assert client.get_run(run.id).status == "completed"
    # It stopped claiming: the job that fell due later never ran.
    assert client.list_runs(job_id=waiting.id) == []
    assert client.list_runs(status="running") == []


def test_sigterm_past_the_grace_fails_the_run_with_a_reason(
    client: Client, sqlite_url: str, workers: Workers
) -> None:
    job = client.enqueue("command", "acme", {"command": "sleep 30"})
    worker = workers.start(sqlite_url, PIPECTL_SHUTDOWN_GRACE="1s", PIPECTL_LOG_LEVEL="DEBUG")
    run = wait_for(lambda: running_run(client, job.id))
    wait_for(lambda: "run started" in workers.log(worker))  # not a claim to give back
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    assert time.monotonic() - started < 10
    failed = client.get_run(run.id)
    assert failed.status == "failed" and "shut down" in (failed.error_message or "")
    assert client.get_job(job.id).retry_count == 1
    assert client.list_runs(status="running") == []


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the job's processes through /proc")
def test_command_timeout_kills_the_process_group(client: Client, sqlite_url: str) -> None:
    marker = f"job-{os.getpid()}-{time.monotonic_ns()}"
    job = client.enqueue(
        "command",
        "acme",
        {"command": "(sleep 30; true) & sleep 30", "marker": marker},
        timeout=timedelta(seconds=1),
    )
    assert pipectl(sqlite_url, "run-worker", "--once").returncode == 0
    run = client.list_runs(job_id=job.id)[0]
    assert run.status == "failed" and run.error_message == "timed out after 1s"
    # The background child (its subshell and sleep) died with its group, not only the shell.
    try:
        wait_for(lambda: _processes_with(f"PIPECTL_PARAM_MARKER={marker}") == [], timeout=5)
    finally:
        _kill_all(f"PIPECTL_PARAM_MARKER={marker}")


def test_a_worker_whose_run_was_recovered_loses_its_lease(
    client: Client, sqlite_url: str, workers: Workers
) -> None:
    """Fencing: the run is recovered while its worker still works on it (a long network cut, a
    paused VM). The worker learns on its next heartbeat, stops the handler, and its late
    outcome does not overwrite the recovery."""
    job = client.enqueue("sleep", "acme", {"seconds": 30, "datasets": ["orders"]})
    worker = workers.start(sqlite_url, "--once", PIPECTL_HEARTBEAT_INTERVAL="1s")
    run = wait_for(lambda: running_run(client, job.id))

    def age_and_recover() -> list[Claim]:
        # The run looks an hour silent and the recovery (default thresholds) fails it at once.
        # Should the worker's heartbeat land in the milliseconds between the two writes, the
        # run is live again and nothing is recovered: age it again.
        age_run(sqlite_url, run.id)
        return client.recover()

    recovered = wait_for(age_and_recover)
    assert [claim.run.id for claim in recovered] == [run.id]
    assert worker.wait(timeout=30) == 0
    text = workers.log(worker)
    assert "lease lost" in text and f"run_id={run.id}" in text
    after = client.get_run(run.id)
    assert after.status == "failed" and "stuck" in (after.error_message or "")
    assert client.get_job(job.id).retry_count == 1  # the recovery's retry rule stands
    assert client.freshness("orders", "acme").state == "never"


def test_a_long_run_that_heartbeats_is_never_rescued(
    client: Client, sqlite_url: str, workers: Workers
) -> None:
    """No false rescues: a run far longer than stale_after stays alive while it heartbeats,
    although another worker sweeps every 0.2 s with the same short threshold."""
    job = client.enqueue("sleep", "acme", {"seconds": 5})
    short = {"PIPECTL_STALE_AFTER": "1s"}
    workers.start(sqlite_url, "--worker-id", "runner", **short)
    run = wait_for(lambda: running_run(client, job.id))
    workers.start(sqlite_url, "--worker-id", "sweeper", **short)
    finished = wait_for(lambda: client.get_run(run.id).finished_at and client.get_run(run.id))
    assert finished.status == "completed" and finished.error_message is None
    assert finished.worker_id == "runner"
    assert client.get_job(job.id).status == "archived"


def test_two_workers_share_slow_jobs_after_quick_ones_grew_their_batches(
    client: Client, sqlite_url: str, workers: Workers
) -> None:
    """Quick runs make a worker claim in batches; a slow run gives its batch-mates back at once,
    so the slow jobs behind the quick ones are shared instead of queueing behind one worker."""
    for n in range(60):
        client.enqueue("noop", f"quick-{n}")
    slow = [client.enqueue("sleep", f"slow-{n}", {"seconds": 0.5}).id for n in range(8)]
    for name in ("w-a", "w-b"):
        workers.start(sqlite_url, "--worker-id", name)
    wait_for(lambda: all(client.get_job(job).status == "archived" for job in slow))
    by_worker = [client.list_runs(job_id=job)[0].worker_id for job in slow]
    # Both ran slow jobs, about half each.
    assert min(by_worker.count("w-a"), by_worker.count("w-b")) >= 3, by_worker
    assert len(client.list_runs(limit=1000)) == 68  # given-back claims left no run behind


def _processes_with(marker: str) -> list[int]:
    """Live processes (zombies aside) whose environment holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


def _kill_all(marker: str) -> None:
    for pid in _processes_with(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the job's processes through /proc")
def test_a_command_dies_with_its_worker_however_the_worker_dies(
    client: Client, sqlite_url: str, workers: Workers
) -> None:
    marker = f"job-{os.getpid()}-{time.monotonic_ns()}"
    job = client.enqueue(
        "command", "acme", {"command": "sleep 300 & sleep 300; wait", "marker": marker}
    )
    worker = workers.start(sqlite_url)
    wait_for(lambda: running_run(client, job.id))
    env_marker = f"PIPECTL_PARAM_MARKER={marker}"
    wait_for(lambda: len(_processes_with(env_marker)) >= 3)  # the shell and both sleeps

    os.kill(worker.pid, signal.SIGKILL)  # the worker alone, not its process group
    worker.wait()
    try:
        wait_for(lambda: _processes_with(env_marker) == [], timeout=1.0)
    finally:
        _kill_all(env_marker)
