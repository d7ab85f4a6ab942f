"""A SQLite store on a full or read-only disk: one clear line, exit 3, and no corruption.
Uses a small tmpfs, so it needs root (as CI runs); skipped elsewhere."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import pipectl

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=384k", "tmpfs", str(mount)])
    if done.returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_is_a_clear_error_and_corrupts_nothing(small_disk: Path) -> None:
    url = f"sqlite:///{small_disk / 'pipectl.db'}"
    assert pipectl(url, "db", "migrate").returncode == 0
    blob = "x" * 60_000
    accepted = []
    for i in range(20):
        done = pipectl(
            url,
            "enqueue",
            "noop",
            "--brand",
            f"b{i}",
            "--json",
            "--params",
            json.dumps({"blob": blob}),
        )
        if done.returncode != 0:
            break
        accepted.append(json.loads(done.stdout)["id"])
    else:
        pytest.fail("the 384 KiB disk never filled up")
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("pipectl: error: ") and "full" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert accepted, "nothing fitted at all"
    listed = json.loads(pipectl(url, "jobs", "list", "--json").stdout)
    assert [job["id"] for job in listed] == accepted
    with sqlite3.connect(small_disk / "pipectl.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_read_only_disk_refuses_writes_clearly(small_disk: Path) -> None:
    url = f"sqlite:///{small_disk / 'pipectl.db'}"
    assert pipectl(url, "db", "migrate").returncode == 0
    assert pipectl(url, "enqueue", "noop", "--brand", "acme").returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    done = pipectl(url, "enqueue", "noop", "--brand", "globex")
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("pipectl: error: ") and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    listed = json.loads(pipectl(url, "jobs", "list", "--json").stdout)
    assert [job["brand_id"] for job in listed] == ["acme"]
