"""Real `pipectl` processes for tests: run a command, start workers, wait for a condition.

Importable from every test (`pythonpath = ["tests"]` in pyproject.toml)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Short intervals, so that process tests see polls, heartbeats and sweeps within seconds.
FAST = {"PIPECTL_POLL_INTERVAL": "0.2s", "PIPECTL_HEARTBEAT_INTERVAL": "0.3s"}


def pipectl(
    url: str, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `python -m pipectl ARGS` against the store at `url`; capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "pipectl", *args],
        env={**os.environ, "PIPECTL_DATABASE_URL": url, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll until `predicate()` is truthy; return its value, or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout:g}s")


class Workers:
    """`pipectl run-worker` processes, each in its own session (so a kill takes its commands
    along) and logging to a file (a full stderr pipe would stall it). `stop_all` kills them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, url: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = self.log_dir / f"worker-{len(self.procs)}.log"
        with log.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pipectl", "run-worker", *args],
                env={**os.environ, "PIPECTL_DATABASE_URL": url, **FAST, **env},
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return (self.log_dir / f"worker-{self.procs.index(proc)}.log").read_text()

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs:
            self.kill(proc)
