"""Ageing runs by writing the store: a test makes a run's worker look silent for as long as it
needs, at once, instead of waiting for real time to pass.

Importable from every test (`pythonpath = ["tests"]` in pyproject.toml)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

# How far back `age_run` moves a run by default: past stale_after and the start grace (5 min and
# 1 min by default), so that `recover` and the sweep find it stuck at their default thresholds.
LONG_AGO = timedelta(hours=1)


def age_run(url: str, run_id: int, by: timedelta = LONG_AGO) -> None:
    """Move the run's started_at and heartbeat_at `by` into the past, in one write through a
    connection of the test's own. Both move, so that a run that never heartbeated (heartbeat_at
    equal to started_at, as the claim set it) still reads as never having heartbeated. `url` is
    a SQLite or PostgreSQL store URL (for a Supabase project: its database, `project.dsn`)."""
    if url.startswith("sqlite:///"):
        _age_sqlite(url.removeprefix("sqlite:///"), run_id, by)
    else:
        _age_postgres(url, run_id, by)


def _age_sqlite(path: str, run_id: int, by: timedelta) -> None:
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT started_at, heartbeat_at FROM scheduled_job_runs WHERE id = ?", [run_id]
        ).fetchone()
        assert row is not None, f"no run {run_id}"
        # SQLite keeps one text form of a timestamp (UTC, microseconds, '+00:00').
        aged = [
            (datetime.fromisoformat(value) - by).isoformat(timespec="microseconds") for value in row
        ]
        conn.execute(
            "UPDATE scheduled_job_runs SET started_at = ?, heartbeat_at = ? WHERE id = ?",
            [*aged, run_id],
        )
    conn.close()


def _age_postgres(url: str, run_id: int, by: timedelta) -> None:
    import psycopg
    from psycopg import sql

    from pipectl.store.postgres import split_schema

    server, schema = split_schema(url)
    with psycopg.connect(server, autocommit=True) as conn:
        updated = conn.execute(
            sql.SQL(
                "UPDATE {} SET started_at = started_at - %s, heartbeat_at = heartbeat_at - %s "
                "WHERE id = %s"
            ).format(sql.Identifier(schema or "public", "scheduled_job_runs")),
            [by, by, run_id],
        ).rowcount
    assert updated == 1, f"no run {run_id}"
