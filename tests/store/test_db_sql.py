"""`pipectl db sql`: the printed script installs (or upgrades) a schema that `db migrate`
recognises, also as a file for a Supabase project's migrations folder."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from pipectl.client import Client
from pipectl.errors import InvalidInput
from pipectl.store import open_store
from pipectl.store.migrations import (
    MIGRATIONS_TABLE,
    full_sql,
    latest_version,
    load_migrations,
    write_supabase_migration,
)
from pipectl.store.postgres import split_schema


def test_sqlite_script_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "pasted.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(full_sql("sqlite"))
    url = f"sqlite:///{path}"
    assert Client.migrate_url(url) == []
    store = open_store(url)
    assert store.schema_version() == latest_version("sqlite")
    store.close()


def test_postgres_script_is_recognised(postgres_url: str) -> None:
    base, schema = postgres_url.split("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(full_sql("postgres"))
    assert Client.migrate_url(postgres_url) == []
    with Client.from_url(postgres_url) as client:
        assert client.enqueue("noop", "acme").status == "active"


def _paste(postgres_url: str, script: str, *, transaction: bool = False) -> None:
    """Run a script the way the SQL editor (or, in a transaction, the Supabase CLI) does."""
    base, schema = split_schema(postgres_url)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        if transaction:
            with conn.transaction():
                conn.execute(script)
        else:
            conn.execute(script)


def test_postgres_script_runs_twice_and_upgrades_an_older_schema(postgres_url: str) -> None:
    first, *later = load_migrations("postgres")
    assert later, "this test needs a schema with more than one migration"
    older = (
        f"CREATE TABLE {MIGRATIONS_TABLE} (version integer PRIMARY KEY, name text NOT NULL, "
        f"applied_at timestamptz NOT NULL);\n{first.sql}\n"
        f"INSERT INTO {MIGRATIONS_TABLE} VALUES ({first.version}, '{first.name}', now());"
    )
    _paste(postgres_url, older)
    # Functions older than migration 0009 are not pinned to their schema: the session's path
    # must name it, as pipectl's connections did then.
    schema = split_schema(postgres_url)[1]
    as_then = f"{postgres_url}&options=-csearch_path%3D{schema}"
    with Client.from_url(as_then, check_schema=False) as client:
        job = client.enqueue("noop", "acme")
        assert client.store.schema_version() == first.version

    _paste(postgres_url, full_sql("postgres"))  # upgrades: only the later migrations run
    _paste(postgres_url, full_sql("postgres"))  # and again: nothing to do
    assert Client.migrate_url(postgres_url) == []
    with Client.from_url(postgres_url) as client:
        assert client.store.schema_version() == latest_version("postgres")
        assert client.get_job(job.id).brand_id == "acme"  # the data survived


def test_supabase_migration_file(postgres_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "supabase" / "migrations"
    with pytest.raises(InvalidInput, match="no such folder"):
        write_supabase_migration(folder, datetime(2026, 11, 29, 12, 30, tzinfo=UTC))
    folder.parent.mkdir()
    at = datetime(2026, 11, 29, 13, 30, 5, tzinfo=timezone(timedelta(hours=1)))
    path = write_supabase_migration(folder, at)
    assert path == folder / f"20261129123005_pipectl_v{latest_version('postgres')}.sql"
    script = path.read_text()
    # The Supabase CLI runs each file in its own transaction: a COMMIT here would end it early.
    statements = {line.strip().upper() for line in script.splitlines()}
    assert not statements & {"BEGIN;", "COMMIT;"}
    with pytest.raises(InvalidInput, match="exists already"):
        write_supabase_migration(folder, at)
    assert path.read_text() == script

    _paste(postgres_url, script, transaction=True)
    assert Client.migrate_url(postgres_url) == []
