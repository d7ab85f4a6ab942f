"""Measuring: results and their table, statistics, and timing real `pipectl` processes."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STORE_UNREACHABLE = 3  # pipectl's exit code
STORE_RETRIES = 30


@dataclass
class Result:
    """One line of the table: a measured figure and, for a target, whether it is met.

    `met` is None for figures the issue asks to report without a limit."""

    key: str
    label: str
    value: float
    unit: str
    limit: str = ""
    met: bool | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "value": round(self.value, 4),
            "unit": self.unit,
            "limit": self.limit,
            "met": self.met,
            "detail": self.detail,
        }


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p95 of 60 samples is the 57th smallest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def format_table(results: Sequence[Result]) -> str:
    rows = [("target", "measured", "limit", "result", "detail")]
    for r in results:
        verdict = "report" if r.met is None else ("met" if r.met else "MISSED")
        rows.append((r.label, f"{r.value:.3g} {r.unit}".strip(), r.limit, verdict, r.detail))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for index, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[4]]).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


class Pipectl:
    """Runs the installed `pipectl` the way operators and cron do: a fresh process each time.

    The environment is the caller's minus pipectl's own settings (the benchmark sets what it
    needs) and minus PYTHONDONTWRITEBYTECODE: bytecode is cached, as in any real installation,
    but under PYTHONPYCACHEPREFIX in the benchmark's temp dir rather than in the source tree."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        executable = Path(sys.executable).parent / "pipectl"
        self.command = (
            [str(executable)] if executable.exists() else [sys.executable, "-m", "pipectl"]
        )
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PIPECTL_", "SUPABASE_")) and key != "PYTHONDONTWRITEBYTECODE"
        }
        self.env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")

    def start(self, url: str, *args: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
        with log.open("ab") as stderr:
            return subprocess.Popen(
                [*self.command, "--database-url", url, *args],
                env={**self.env, **env},
                cwd=self.workdir,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def time(self, argv: Sequence[str]) -> float:
        """Wall time of one process, start to exit, in seconds. A run that finds the store
        unreachable (exit 3: on a shared machine, someone's test suite restarting PostgreSQL)
        is not a sample: it is retried after a pause."""
        for _ in range(STORE_RETRIES):
            started = time.perf_counter()
            done = subprocess.run(
                argv,
                env=self.env,
                cwd=self.workdir,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            elapsed = time.perf_counter() - started
            if done.returncode != STORE_UNREACHABLE:
                break
            time.sleep(1)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited with {done.returncode}: {done.stderr}")
        return elapsed


def wait_for_peak_rss(proc: subprocess.Popen[bytes], every_s: float = 0.02) -> tuple[int, int]:
    """Wait for a child; return (its exit status, its peak RSS in bytes), read from VmHWM in
    /proc/PID/status while it runs. Not wait4's ru_maxrss: that keeps the high-water mark of
    the image the child was forked from (this benchmark process, which is bigger than a
    worker) across exec, so it would report the parent's size."""
    status_file = Path(f"/proc/{proc.pid}/status")
    peak = 0
    while proc.poll() is None:
        try:
            text = status_file.read_text()
        except OSError:
            break
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) * 1024)
        time.sleep(every_s)
    return proc.wait(), peak


def interleaved(
    commands: dict[str, Callable[[], float]], rounds: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Time several commands in turn, `rounds` times each (after `warmup` untimed rounds), so
    that load from other users of the machine falls on all of them alike."""
    for _ in range(warmup):
        for run in commands.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, run in commands.items():
            times[name].append(run())
    return times
