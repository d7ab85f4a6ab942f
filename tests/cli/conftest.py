"""Fixtures for the CLI tests: `invoke` (see helpers_cli.py) against a test's migrated store, and
looks at the SQLite file underneath it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from helpers_cli import CliResult, Invoke, invoke

TABLES = ("scheduled_jobs", "scheduled_job_runs", "dataset_status", "dataset_thresholds")
# Every table a command could write to, for the stricter "nothing written" snapshot.
ALL_TABLES = (*TABLES, "workers")


@pytest.fixture(name="invoke", scope="session")
def invoke_fixture() -> Invoke:
    """`invoke` itself, for tests that pick their own store (or none)."""
    return invoke


@pytest.fixture
def db_path(sqlite_url: str) -> Path:
    """The migrated SQLite file behind `sqlite_url`."""
    return Path(sqlite_url.removeprefix("sqlite:///"))


@pytest.fixture
def cli(sqlite_url: str) -> Invoke:
    """`invoke` against this test's migrated store (given with the global --database-url)."""

    def run(*args: str, env: Mapping[str, str | None] | None = None) -> CliResult:
        return invoke("--database-url", sqlite_url, *args, env=env)

    return run


def _connect(path: Path) -> sqlite3.Connection:
    assert path.exists(), f"no database file at {path}"
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def row_counts(path: Path) -> dict[str, int]:
    """Rows per pipectl table, read straight from the SQLite file."""
    conn = _connect(path)
    try:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES
        }
    finally:
        conn.close()


def db_state(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every pipectl table: equal before and after means nothing was written."""
    conn = _connect(path)
    try:
        return {
            table: sorted(
                conn.execute(f"SELECT * FROM {table}").fetchall(),
                key=repr,
            )
            for table in ALL_TABLES
        }
    finally:
        conn.close()


@pytest.fixture
def counts(db_path: Path) -> Callable[[], dict[str, int]]:
    """`counts()`: the row counts of this test's store right now."""
    return lambda: row_counts(db_path)


@pytest.fixture
def snapshot(db_path: Path) -> Callable[[], dict[str, list[tuple[Any, ...]]]]:
    """`snapshot()`: every row of this test's store right now."""
    return lambda: db_state(db_path)
