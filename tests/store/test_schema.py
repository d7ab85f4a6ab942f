"""Each dialect's schema.sql is what the migrations make: a database built from schema.sql and
one migrated through every migration hold the same tables, columns, constraints, indexes,
functions and triggers (as Procrastinate's migration test checks). A migration added without
running scripts/gen_schema.py fails here."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from pipectl.store.migrations import load_migrations
from pipectl.store.postgres import PostgresStore, split_schema
from pipectl.store.sqlite import SQLiteStore

REGENERATE = "schema.sql is out of date: run scripts/gen_schema.py"


def schema_sql(dialect: str) -> str:
    return (resources.files("pipectl.store") / "sql" / dialect / "schema.sql").read_text()


def test_schema_sql_is_no_migration() -> None:
    for dialect in ("postgres", "sqlite"):
        assert "schema" not in {migration.name for migration in load_migrations(dialect)}


# -- SQLite ------------------------------------------------------------------------------------


def sqlite_catalog(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        objects = sorted(
            conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master "
                "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            ).fetchall()
        )
        columns = {
            name: conn.execute(f'PRAGMA table_xinfo("{name}")').fetchall()
            for kind, name, _, _ in objects
            if kind == "table"
        }
    finally:
        conn.close()
    return {"objects": objects, "columns": columns}


def test_sqlite_schema_sql_equals_the_migrations(tmp_path: Path) -> None:
    migrated = SQLiteStore(f"sqlite:///{tmp_path / 'migrated.db'}", create=True)
    migrated.migrate()
    migrated.close()
    built = sqlite3.connect(tmp_path / "built.db")
    built.executescript(schema_sql("sqlite"))
    built.close()
    assert sqlite_catalog(tmp_path / "built.db") == sqlite_catalog(tmp_path / "migrated.db"), (
        REGENERATE
    )


# -- PostgreSQL --------------------------------------------------------------------------------

# Each query returns sorted rows of text: the catalog of schema `public`, free of oids and of
# column numbers (a column dropped by a migration leaves a gap in attnum; its order remains).
PG_CATALOG = {
    "tables": """
        SELECT c.relname, c.relkind::text, c.relrowsecurity::text FROM pg_class AS c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
        ORDER BY 1""",
    "columns": """
        SELECT c.relname, (row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum))::text,
            a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull::text,
            coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity::text,
            a.attgenerated::text
        FROM pg_class AS c JOIN pg_attribute AS a ON a.attrelid = c.oid
        LEFT JOIN pg_attrdef AS d ON d.adrelid = c.oid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
          AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY 1, 2""",
    "constraints": """
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint AS c WHERE c.connamespace = 'public'::regnamespace
        ORDER BY 1, 2""",
    "indexes": """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
        WHERE c.relnamespace = 'public'::regnamespace
        ORDER BY 1""",
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid)
        FROM pg_proc AS p WHERE p.pronamespace = 'public'::regnamespace
        ORDER BY 1""",
    "triggers": """
        SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger AS t
        JOIN pg_class AS c ON c.oid = t.tgrelid
        WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
        ORDER BY 1""",
    "policies": """
        SELECT tablename, policyname, cmd, coalesce(qual, ''), coalesce(with_check, '')
        FROM pg_policies WHERE schemaname = 'public'
        ORDER BY 1, 2""",
}


@pytest.fixture
def two_databases(postgres_url: str) -> Iterator[tuple[str, str]]:
    """Two fresh databases on the test server (schema.sql names no schema, so each gets its
    own `public`), dropped afterwards."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    admin, _ = split_schema(postgres_url)
    names = [f"pipectl_test_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            )
    try:
        yield make_conninfo(admin, dbname=names[0]), make_conninfo(admin, dbname=names[1])
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def pg_catalog(url: str) -> dict[str, list[tuple[str, ...]]]:
    import psycopg

    with psycopg.connect(url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in PG_CATALOG.items()}


def test_postgres_schema_sql_equals_the_migrations(two_databases: tuple[str, str]) -> None:
    import psycopg

    migrated_url, built_url = two_databases
    store = PostgresStore(migrated_url)
    store.migrate()
    store.close()
    with psycopg.connect(built_url, autocommit=True) as conn:
        conn.execute(schema_sql("postgres"))
    migrated, built = pg_catalog(migrated_url), pg_catalog(built_url)
    assert migrated["functions"], "nothing was migrated"
    for part in PG_CATALOG:
        assert built[part] == migrated[part], f"{part}: {REGENERATE}"
