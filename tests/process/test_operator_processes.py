"""Operator control across processes (issue 14): `runs cancel` from one process stops a run a
worker process holds; `enqueue --wait` and `runs wait` block until another process ends the
run; another process follows a running command's output live, and a run whose worker was
killed keeps, once recovered, the log written before — on SQLite and on PostgreSQL (where the
wait is woken by NOTIFY)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from procs import FAST, Workers, pipectl, wait_for

from pipectl.client import Client

pytestmark = pytest.mark.slow


@pytest.fixture
def url(both_url: str) -> str:
    return both_url


@pytest.fixture
def client(url: str) -> Iterator[Client]:
    with Client.from_url(url) as opened:
        yield opened


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_runs_cancel_stops_a_command_a_worker_process_holds(
    client: Client, url: str, workers: Workers, tmp_path: Path
) -> None:
    child = tmp_path / "child.pid"
    # A background child in the command's process group: the cancel must reach it too.
    command = f"sleep 60 & echo $! > {child}; wait"
    job = client.add_job(
        "command", "0 3 * * *", brand_id="acme", parameters={"command": command, "datasets": ["d"]}
    )
    client.run_now(job.id)
    worker = workers.start(url)
    run = wait_for(lambda: next(iter(client.list_runs(job_id=job.id, status="running")), None))
    pid = int(wait_for(lambda: child.exists() and child.read_text().strip()))
    assert alive(pid)

    cancelled = pipectl(url, "runs", "cancel", str(run.id), "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["cancel_requested_by"]
    waited = pipectl(url, "runs", "wait", str(run.id), "--timeout", "30s")
    assert waited.returncode == 1, waited.stderr
    assert f"run {run.id} cancelled: cancelled by " in waited.stderr

    ended = client.get_run(run.id)
    assert ended.status == "cancelled"
    assert ended.cancel_requested_at is not None and ended.finished_at is not None
    assert ended.error_message == f"cancelled by {ended.cancel_requested_by}"
    shown = pipectl(url, "runs", "show", str(run.id))
    assert "cancel asked" in shown.stdout and ended.cancel_requested_by in shown.stdout
    wait_for(lambda: not alive(pid))  # the whole process group was killed
    after = client.get_job(job.id)
    assert (after.status, after.retry_count) == ("active", 0)  # not a failure: no retry
    assert after.next_run_at == job.next_run_at  # back on its cron
    assert client.store.dataset_status("d", "acme") is None  # freshness untouched
    assert worker.poll() is None


def test_python_handler_sees_the_cancellation_and_a_recurring_job_returns_to_cron(
    client: Client, url: str, workers: Workers
) -> None:
    job = client.add_job("sleep", "0 3 * * *", brand_id="acme", parameters={"seconds": 60})
    client.run_now(job.id)
    workers.start(url)
    run = wait_for(lambda: next(iter(client.list_runs(job_id=job.id, status="running")), None))
    client.cancel_run(run.id, by="ops-bot")
    waited = client.wait_for_run(run.id, timedelta(seconds=30))
    assert waited.run is not None and waited.run.status == "cancelled"
    assert waited.run.error_message == "cancelled by ops-bot"
    after = client.get_job(job.id)
    assert after.status == "active" and after.next_run_at == job.next_run_at


def test_enqueue_wait_exits_with_the_runs_outcome(url: str, workers: Workers) -> None:
    workers.start(url)
    ok = pipectl(url, "enqueue", "noop", "--brand", "acme", "--wait", "--wait-timeout", "30s")
    assert ok.returncode == 0, ok.stderr
    assert "completed" in ok.stderr
    params = json.dumps({"command": "echo boom >&2; exit 3"})
    failed = pipectl(
        url, "enqueue", "command", "--params", params, "--max-retries", "0", "--wait", "--json"
    )
    assert failed.returncode == 1, failed.stderr
    assert json.loads(failed.stdout)["run"]["status"] == "failed"
    assert "command exited with status 3" in failed.stderr


def test_wait_times_out_with_124_when_no_worker_runs_the_job(url: str) -> None:
    started = time.monotonic()
    result = pipectl(url, "enqueue", "noop", "--wait", "--wait-timeout", "1s")
    assert result.returncode == 124, result.stderr
    assert "timed out after 1s" in result.stderr
    assert time.monotonic() - started < 20


def test_runs_wait_for_a_job_returns_when_another_process_runs_it(client: Client, url: str) -> None:
    job = client.enqueue("noop", "acme")
    waiter = subprocess.Popen(
        [sys.executable, "-m", "pipectl", "runs", "wait", "--job", str(job.id), "--json"],
        env={**os.environ, "PIPECTL_DATABASE_URL": url, **FAST},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert pipectl(url, "run-worker", "--once").returncode == 0
        out, err = waiter.communicate(timeout=30)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert waiter.returncode == 0, err
    assert json.loads(out)["status"] == "completed"


# -- live logs (issue 14 §5) ------------------------------------------------------------------


def running_run(client: Client, job_id: int):  # type: ignore[no-untyped-def]
    return wait_for(lambda: next(iter(client.list_runs(job_id=job_id, status="running")), None))


def test_another_process_follows_a_running_commands_output(
    client: Client, url: str, workers: Workers, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    command = f"echo first-line; while [ ! -f {go} ]; do sleep 0.05; done; echo last-line"
    job = client.enqueue("command", "acme", {"command": command})
    workers.start(url)
    run = running_run(client, job.id)
    follower = subprocess.Popen(
        [sys.executable, "-m", "pipectl", "runs", "logs", str(run.id), "--follow"],
        env={**os.environ, "PIPECTL_DATABASE_URL": url, **FAST},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    out = follower.stdout
    assert out is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in out], daemon=True)
    reader.start()
    try:
        first = lines.get(timeout=30)
        assert first.rstrip("\n").endswith("INFO first-line"), first
        assert client.get_run(run.id).status == "running"  # the line came before the end
        assert follower.poll() is None
        go.touch()
        follower.wait(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
    reader.join(timeout=5)
    rest = []
    while not lines.empty():
        rest.append(lines.get().rstrip("\n"))
    assert follower.returncode == 0, follower.stderr.read()  # type: ignore[union-attr]
    assert len(rest) == 1 and rest[0].endswith("INFO last-line"), rest  # each line once
    assert f"run {run.id} completed" in follower.stderr.read()  # type: ignore[union-attr]
    final = client.get_run(run.id)
    assert final.status == "completed"
    assert [line.split(" ", 2)[2] for line in final.logs.splitlines()] == [
        "first-line",
        "last-line",
    ]


def test_a_recovered_run_keeps_the_log_written_before_its_worker_died(
    client: Client, url: str, workers: Workers
) -> None:
    job = client.enqueue("command", "acme", {"command": "echo early-line; sleep 60"})
    worker = workers.start(url)
    run = running_run(client, job.id)
    # Written at a heartbeat, while the command still runs.
    wait_for(lambda: "early-line" in client.get_run(run.id).logs)
    workers.kill(worker)  # kill -9, with the command's process group
    recovered = pipectl(url, "recover", "--stale-after", "1ms")
    assert recovered.returncode == 0, recovered.stderr
    after = client.get_run(run.id)
    assert after.status == "failed" and after.error_message.startswith("stuck:")  # type: ignore[union-attr]
    assert after.logs.endswith("INFO early-line")
    shown = pipectl(url, "runs", "logs", str(run.id))
    assert shown.returncode == 0 and shown.stdout.rstrip().endswith("INFO early-line")
