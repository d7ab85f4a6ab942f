"""A worker stopped by a signal is counted out at once by `status`, `doctor` and the metrics; one
killed with -9 ages out after worker_stale_after; a `--once` pass stays counted (cron's rhythm)."""

from __future__ import annotations

import json
import re
import signal

import pytest
from procs import Workers, pipectl, wait_for

from pipectl.client import Client

pytestmark = pytest.mark.slow


def live(url: str, **env: str) -> dict[str, bool]:
    doc = json.loads(pipectl(url, "status", "--json", **env).stdout)
    return {w["id"]: w["live"] for w in doc["workers"]}


def doctor_workers(url: str) -> str:
    doc = json.loads(pipectl(url, "doctor", "--json").stdout)
    return {c["name"]: c["detail"] for c in doc["checks"]}["workers"]


def live_gauge(url: str) -> float:
    text = pipectl(url, "metrics").stdout
    return float(re.search(r"^pipectl_live_workers (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sigterm_counts_a_worker_out_at_once_and_kill_9_ages_out(
    request: pytest.FixtureRequest, workers: Workers, backend: str
) -> None:
    url = request.getfixturevalue(f"{backend}_url")
    Client.migrate_url(url)
    stays = workers.start(url, "--worker-id", "stays")
    leaves = workers.start(url, "--worker-id", "leaves")
    killed = workers.start(url, "--worker-id", "killed")
    everyone = {"stays": True, "leaves": True, "killed": True}
    wait_for(lambda: live(url) == everyone)

    leaves.send_signal(signal.SIGTERM)
    assert leaves.wait(timeout=30) == 0
    workers.kill(killed)

    # At once, under the default two-minute worker_stale_after.
    assert live(url) == {"stays": True, "leaves": False, "killed": True}
    assert doctor_workers(url).startswith("2 live: ")
    assert "leaves" not in doctor_workers(url)
    assert live_gauge(url) == 2
    stopped = {w["id"]: w for w in json.loads(pipectl(url, "status", "--json").stdout)["workers"]}
    assert stopped["leaves"]["stopped_at"] is not None
    assert stopped["killed"]["stopped_at"] is None and stopped["stays"]["stopped_at"] is None

    # The killed worker stops heartbeating and ages out; the one still running does not.
    short = {"PIPECTL_WORKER_STALE_AFTER": "2s"}
    wait_for(lambda: live(url, **short) == {"stays": True, "leaves": False, "killed": False})
    assert stays.poll() is None


def test_a_once_pass_stays_counted(sqlite_url: str) -> None:
    """cron starts the next pass within worker_stale_after: the scheduler is not stopped."""
    assert pipectl(sqlite_url, "run-worker", "--once", "--worker-id", "cron").returncode == 0
    assert live(sqlite_url) == {"cron": True}


def test_status_says_the_last_worker_stopped(sqlite_url: str, workers: Workers) -> None:
    proc = workers.start(sqlite_url, "--worker-id", "daemon")
    wait_for(lambda: live(sqlite_url).get("daemon"))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    doc = json.loads(pipectl(sqlite_url, "status", "--json").stdout)
    assert doc["worker_alert"].startswith("no live worker (the last stopped ")
    table = pipectl(sqlite_url, "status")
    assert "no live worker (the last stopped" in " ".join(table.stderr.split()) + table.stdout
