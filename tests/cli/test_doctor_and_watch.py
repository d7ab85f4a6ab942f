"""`pipectl doctor` and `pipectl status --watch`."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from procs import pipectl

from pipectl.client import Client


def test_doctor_all_ok_but_no_worker(sqlite_url: str) -> None:
    import json

    result = pipectl(sqlite_url, "doctor", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    levels = {check["name"]: check["level"] for check in doc["checks"]}
    assert levels == {
        "config": "ok",
        "store": "ok",
        "schema": "ok",
        "clock": "ok",
        "listen": "ok",  # SQLite's wake-ups: PRAGMA data_version
        "workers": "warn",
        "stuck runs": "ok",
        "retired datasets": "ok",
        "job types": "ok",
        "cron": "ok",
    }
    assert doc["settings"]["database_url"] == sqlite_url


def test_doctor_fails_on_a_job_without_handler_and_a_stuck_run(
    client: Client, sqlite_url: str
) -> None:
    import json

    job = client.enqueue("noop", "acme")
    client.store.update_job(job.id, {"name": "x"}, datetime.now(UTC))
    # A job whose type's plugin was uninstalled after it was queued.
    client.store.conn.execute(
        "UPDATE scheduled_jobs SET job_type = 'gone_plugin' WHERE id = ?", (job.id,)
    )  # type: ignore[attr-defined]
    client.enqueue("sleep", "globex", {"seconds": 1})
    client.store.claim_due("dead-worker", datetime.now(UTC), 10)
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    client.store.conn.execute("UPDATE scheduled_job_runs SET heartbeat_at = ?", (an_hour_ago,))  # type: ignore[attr-defined]
    result = pipectl(sqlite_url, "doctor", "--json")
    assert result.returncode == 1
    levels = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert levels["job types"]["level"] == "fail" and "gone_plugin" in levels["job types"]["detail"]
    assert levels["stuck runs"]["level"] == "fail"


def test_doctor_masks_the_database_password() -> None:
    url = "postgresql://pipectl:hunter2secret@127.0.0.1:1/nowhere"
    result = pipectl(url, "doctor")
    assert result.returncode == 1
    assert "hunter2secret" not in result.stdout + result.stderr
    assert "***" in result.stdout


def test_doctor_without_schema_says_migrate(tmp_path: Path) -> None:
    result = pipectl(f"sqlite:///{tmp_path / 'none.db'}", "doctor")
    assert result.returncode == 1
    assert "db migrate" in result.stdout


def test_status_watch_redraws_until_interrupted(client: Client, sqlite_url: str) -> None:
    """On a real terminal (a pty): the alternate screen, several frames, a clean exit."""
    import pty

    client.enqueue("noop", "acme", {"datasets": ["orders"]})
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipectl", "status", "--watch", "--interval", "0.3s"],
        env={**os.environ, "PIPECTL_DATABASE_URL": sqlite_url, "COLUMNS": "120", "LINES": "50"},
        stdin=secondary,
        stdout=secondary,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(secondary)
    screen = b""
    # Read until three frames are drawn (not for a fixed time: a loaded machine may take
    # seconds to start the process); then interrupt it.
    deadline = time.monotonic() + 60
    while screen.count(b"refreshed ") < 3 and time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.2)
        if ready:
            screen += os.read(primary, 65536)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    os.close(primary)
    text = screen.decode(errors="replace")
    assert proc.returncode == 0, err
    assert "\x1b[?1049h" in text  # the alternate screen: nothing left in the scrollback
    assert text.count("refreshed ") >= 3  # redrawn, not printed once
    assert "orders" in text and "Traceback" not in err


def test_status_watch_refuses_json(sqlite_url: str) -> None:
    result = pipectl(sqlite_url, "status", "--watch", "--json")
    assert result.returncode == 2 and "--watch" in result.stderr


def test_doctor_masks_webhook_urls(sqlite_url: str) -> None:
    result = pipectl(
        sqlite_url, "doctor", "--json", PIPECTL_ALERT_WEBHOOKS="https://hooks.example/T0/s3cret"
    )
    assert "s3cret" not in result.stdout + result.stderr
    assert json.loads(result.stdout)["settings"]["alert_webhooks"] == "***"
