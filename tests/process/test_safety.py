"""Safety with real processes: secrets never leak, parameters are inert in the shell, a second
signal stops a worker at once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from procs import pipectl, wait_for

from pipectl.client import Client

pytestmark = pytest.mark.slow

SECRET = "S3cret-Passw0rd-do-not-print"


def with_password(postgres_url: str) -> str:
    # Trust auth ignores the password, so the store works and the secret is really in use.
    return postgres_url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")


@pytest.mark.postgres
def test_the_database_password_never_reaches_output_logs_or_run_records(
    postgres_url: str,
) -> None:
    url = with_password(postgres_url)
    seen: list[str] = []
    for args in (("db", "migrate"), ("db", "version")):
        done = pipectl(url, *args)
        assert done.returncode == 0, done.stderr
        seen += [done.stdout, done.stderr]
    job = json.loads(
        pipectl(
            url,
            "enqueue",
            "command",
            "--brand",
            "acme",
            "--json",
            "--params",
            json.dumps({"command": 'env; echo "$PIPECTL_DATABASE_URL"; exit 4'}),
        ).stdout
    )
    for args in (
        ("run-worker", "--once"),
        ("doctor",),
        ("doctor", "--json"),
        ("status",),
        ("status", "--json"),
        ("runs", "--json"),
        ("runs", "show", "1"),
        ("runs", "show", "1", "--json"),
        ("jobs", "show", str(job["id"]), "--json"),
        ("retry", "--json"),
    ):
        done = pipectl(url, *args)
        seen += [done.stdout, done.stderr]
    with Client.from_url(url) as client:
        (run,) = client.list_runs()
        assert run.status == "failed" and "PIPECTL_JOB_ID=" in run.logs  # the env was dumped
        seen += [run.logs, run.error_message or "", json.dumps(run.steps)]
    unreachable = pipectl(url.replace("127.0.0.1:5432", "127.0.0.1:1"), "status")
    assert unreachable.returncode == 3
    seen += [unreachable.stdout, unreachable.stderr]
    assert not [text for text in seen if SECRET in text]
    assert any("***" in text for text in seen)  # doctor shows the URL, masked


def test_parameters_and_brands_are_inert_in_the_shell(
    client: Client, sqlite_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "out.txt"
    pwned = tmp_path / "pwned"
    brand = f"acme'; touch {pwned}-brand; echo '"
    target = f"$(touch {pwned}-param) `touch {pwned}-tick` ; rm -rf {tmp_path}/nothing"
    client.enqueue(
        "command",
        brand,
        {
            "command": f'printf "%s\\n%s\\n" "$PIPECTL_BRAND_ID" "$PIPECTL_PARAM_TARGET" > {out}',
            "target": target,
        },
    )
    assert pipectl(sqlite_url, "run-worker", "--once").returncode == 0
    assert out.read_text().splitlines() == [brand, target]
    assert not list(tmp_path.glob("pwned*"))


def test_a_second_signal_exits_at_once(client: Client, sqlite_url: str, tmp_path: Path) -> None:
    client.enqueue("command", "acme", {"command": "sleep 59.75"})  # a unique command line

    def sleeping() -> str:
        found = subprocess.run(["pgrep", "-f", "^sleep 59.75$"], capture_output=True, text=True)
        return found.stdout.strip()

    log = tmp_path / "worker.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipectl", "run-worker", "--poll-interval", "0.2s"],
            env={
                **os.environ,
                "PIPECTL_DATABASE_URL": sqlite_url,
                "PIPECTL_SHUTDOWN_GRACE": "60s",
            },
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        # The command itself is running: a claim not started yet is given back at a stop.
        wait_for(lambda: sleeping() != "", timeout=20)
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "stop requested" in log.read_text())  # the first signal was handled
        assert proc.poll() is None  # ... and waits for the run (grace 60 s)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 130
        assert sleeping() == ""  # it took the job's command (its own process group) down with it
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_python_job_past_its_timeout_is_failed(
    client: Client, sqlite_url: str, tmp_path: Path
) -> None:
    module = tmp_path / "slow_jobs.py"
    module.write_text("def crawl(ctx):\n    while True:\n        ctx.wait(0.05)\n")
    client.enqueue(
        "python",
        "acme",
        {"target": "slow_jobs:crawl"},
        timeout=timedelta(seconds=1),
    )
    done = subprocess.run(
        [sys.executable, "-m", "pipectl", "run-worker", "--once"],
        env={**os.environ, "PIPECTL_DATABASE_URL": sqlite_url, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    (run,) = client.list_runs()
    assert run.status == "failed" and run.error_message == "timed out after 1s"
