"""Schema v20 (PostgreSQL) / v11 (SQLite): a job's status check no longer admits `completed`
(a run's outcome, never a job's), and a store holding a job in that status migrates, the job
archived as a succeeded one-time job is."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_contract import T0, new_job

from pipectl.client import Client
from pipectl.store import open_store
from pipectl.store.migrations import load_migrations

JOB_STATUS = {"sqlite": 11, "postgres": 21}

Execute = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]


@contextmanager
def raw_sql(dialect: str, url: str) -> Iterator[Execute]:
    """Statements on the store's own tables, past the store's code, each committed."""
    if dialect == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            yield lambda sql, params: conn.execute(sql.replace("%s", "?"), params).fetchall()
        finally:
            conn.close()
        return
    import psycopg
    from psycopg import sql as pg_sql

    from pipectl.store.postgres import split_schema

    server, schema = split_schema(url)
    with psycopg.connect(server, autocommit=True) as pg:
        pg.execute(pg_sql.SQL("SET search_path = {}").format(pg_sql.Identifier(schema)))

        def execute(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            cursor = pg.execute(sql, params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

        yield execute


def rejected(dialect: str) -> type[Exception]:
    if dialect == "sqlite":
        return sqlite3.IntegrityError
    import psycopg

    return psycopg.errors.CheckViolation


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_a_completed_job_is_archived_and_the_status_is_refused_after(
    dialect: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    every = load_migrations(dialect)
    before = tuple(m for m in every if m.version < JOB_STATUS[dialect])
    module = "pipectl.store.sqlite" if dialect == "sqlite" else "pipectl.store.postgres"
    monkeypatch.setattr(f"{module}.load_migrations", lambda _: before)
    Client.migrate_url(url)
    store = open_store(url)
    done = store.insert_job(new_job(name="done", parameters={}), T0)
    kept = store.insert_job(new_job(name="kept", parameters={}), T0)
    store.close()
    with raw_sql(dialect, url) as execute:
        # What the old check admitted, though pipectl never wrote it.
        execute("UPDATE scheduled_jobs SET status = 'completed' WHERE id = %s", (done.id,))

        # This connection stays open across the migration: it reads the new check too.
        monkeypatch.setattr(f"{module}.load_migrations", lambda _: every)
        assert Client.migrate_url(url) == [m.version for m in every if m not in before]
        store = open_store(url)
        archived, active = store.get_job(done.id), store.get_job(kept.id)
        assert archived is not None and archived.status == "archived"
        assert abs(archived.updated_at - datetime.now(UTC)) < timedelta(minutes=5)
        assert archived.revision == done.revision
        assert active == kept
        store.close()

        with pytest.raises(rejected(dialect)):
            execute("UPDATE scheduled_jobs SET status = 'completed' WHERE id = %s", (kept.id,))
        with pytest.raises(rejected(dialect)):
            execute(
                "INSERT INTO scheduled_jobs (job_type, name, schedule_type, timezone, status, "
                "max_retries, retry_base_seconds, retry_cap_seconds, created_at, updated_at) "
                "SELECT job_type, 'new', schedule_type, timezone, 'completed', max_retries, "
                "retry_base_seconds, retry_cap_seconds, created_at, updated_at "
                "FROM scheduled_jobs WHERE id = %s",
                (kept.id,),
            )
        # The statuses a job has are still admitted.
        for status in ("active", "paused", "running", "failed", "archived"):
            execute("UPDATE scheduled_jobs SET status = %s WHERE id = %s", (status, kept.id))
        assert execute("SELECT status FROM scheduled_jobs WHERE id = %s", (kept.id,)) == [
            ("archived",)
        ]
