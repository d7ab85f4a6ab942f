"""Installing into a database that is not pipectl's alone: another scheduler's tables, other
clients' search_path."""

from __future__ import annotations

import psycopg
from procs import pipectl

from pipectl.client import Client
from pipectl.settings import load_settings
from pipectl.store.postgres import split_schema


def test_migrate_beside_another_schedulers_table_says_which_and_how(postgres_url: str) -> None:
    base, schema = split_schema(postgres_url)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".scheduled_jobs (id serial, task text)')
    result = pipectl(postgres_url, "db", "migrate")
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert '"scheduled_jobs" already exists' in lines[0]
    assert f'schema "{schema}"' in lines[0] and "?schema=" in lines[0]
    with psycopg.connect(base, autocommit=True) as conn:  # nothing was written
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema]
        ).fetchall()
    assert tables == [("scheduled_jobs",)]

    beside = f"{postgres_url}_beside"  # the advice taken: a schema of its own
    try:
        assert pipectl(beside, "db", "migrate").returncode == 0
        assert pipectl(beside, "enqueue", "noop", "--brand", "acme").returncode == 0
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_beside" CASCADE')


def test_a_sessions_own_search_path_neither_moves_pipectl_nor_is_changed(
    postgres_url: str,
) -> None:
    Client.migrate_url(postgres_url)
    elsewhere = f"{postgres_url}&options=-csearch_path%3Dpg_catalog"
    with Client.from_url(elsewhere, load_settings(database_url=elsewhere)) as client:
        job = client.enqueue("noop", "acme", {}, concurrency_key=None)
        assert client.get_job(job.id).brand_id == "acme"
        assert client.store.claim_due("w", job.next_run_at, 1)[0].job.id == job.id
        conn = client.store._connection()
        assert conn.execute("SHOW search_path").fetchone() == ("pg_catalog",)
