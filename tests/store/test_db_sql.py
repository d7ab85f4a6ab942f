"""`pipectl db sql`: the printed script installs a schema that `db migrate` recognises."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

from pipectl.client import Client
from pipectl.store import open_store
from pipectl.store.migrations import full_sql, latest_version


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
