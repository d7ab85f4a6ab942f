"""Shared fixtures: every test gets its own real SQLite file (or PostgreSQL schema, or Supabase
project) and a clean environment.

PostgreSQL tests read PIPECTL_TEST_POSTGRES_URL (default: the local test server) and get a
schema of their own. Without a reachable server they skip, except in CI (CI=true), where they
fail, so a broken server can never turn the suite green by skipping. The Supabase stand-in
(supabase_server.py) runs over that same server, so it skips or fails with it.

`store_url` is the one fixture for tests that must hold on every store: the store contract
(tests/store) and the engine's integration tests (tests/integration) take it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import Workers
from supabase_server import (  # noqa: F401 (fixtures)
    SupabaseProject,
    new_project,
    supabase_project,
    supabase_url,
)

from pipectl.client import Client
from pipectl.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No PIPECTL_* or .env from the developer's machine leaks into a test."""
    import os

    for key in list(os.environ):
        if key.startswith(("PIPECTL_", "SUPABASE_")):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """Start real worker processes; all are killed when the test ends."""
    started = Workers(tmp_path)
    yield started
    started.stop_all()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite store in this test's temp dir."""
    url = f"sqlite:///{tmp_path / 'pipectl.db'}"
    Client.migrate_url(url)
    return url


@pytest.fixture
def client_url(sqlite_url: str) -> str:
    """The store `settings` and `client` open: SQLite; tests/integration/conftest.py makes it
    `store_url`, so that its tests run on every store."""
    return sqlite_url


@pytest.fixture
def settings(client_url: str) -> Settings:
    return load_settings(database_url=client_url, poll_interval="0.2s", heartbeat_interval="0.5s")


@pytest.fixture
def client(client_url: str, settings: Settings) -> Iterator[Client]:
    with Client.from_url(client_url, settings) as opened:
        yield opened


POSTGRES_URL = os.environ.get(
    "PIPECTL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def postgres_available() -> str | None:
    """None when the server answers; otherwise why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        return f"PostgreSQL at {POSTGRES_URL} is unreachable: {str(exc).strip().splitlines()[0]}"
    return None


def require_postgres() -> None:
    reason = postgres_available()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections live in a fresh schema, dropped afterwards."""
    require_postgres()
    import psycopg

    schema = f"pipectl_test_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}schema={schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def two_schemas(postgres_url: str) -> Iterator[tuple[str, str]]:
    """Two installs side by side in one database: `?schema=` URLs of two fresh schemas, each
    migrated."""
    import psycopg
    from psycopg import sql

    from pipectl.store.postgres import split_schema

    server, _ = split_schema(postgres_url)
    other = f"pipectl_test_{uuid.uuid4().hex[:12]}"
    second = f"{server}{'&' if '?' in server else '?'}schema={other}"
    for url in (postgres_url, second):
        Client.migrate_url(url)
    yield postgres_url, second
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(other)))


@pytest.fixture(params=["sqlite", "postgres"])
def both_url(request: pytest.FixtureRequest) -> str:
    """A migrated store on SQLite, then on PostgreSQL: for tests that run on both."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    url = request.getfixturevalue("postgres_url")
    Client.migrate_url(url)
    return url


class SharedStore:
    """A store migrated once per test session, emptied before each test that takes it: every
    table but the migration record loses its rows and every id sequence restarts, which leaves
    it as a fresh migration would (no migration inserts rows). Creating and migrating a schema
    or a Supabase project costs seconds on a loaded server; emptying one costs milliseconds."""

    def __init__(self, url: str, dsn: str, schema: str) -> None:
        self.url = url  # what tests use
        self.dsn = dsn  # the database itself, as its owner
        self.schema = schema

    def empty(self) -> None:
        import psycopg
        from psycopg import sql

        from pipectl.store.migrations import MIGRATIONS_TABLE

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            # A test that left a transaction open fails the next one here instead of hanging it.
            conn.execute("SET lock_timeout = '20s'")
            tables = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> %s",
                [self.schema, MIGRATIONS_TABLE],
            ).fetchall()
            sequences = conn.execute(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = %s", [self.schema]
            ).fetchall()
            with conn.transaction():
                # Every row goes, so foreign keys and triggers need not run.
                conn.execute("SET LOCAL session_replication_role = replica")
                for (table,) in tables:
                    conn.execute(
                        sql.SQL("DELETE FROM {}").format(sql.Identifier(self.schema, table))
                    )
                for (sequence,) in sequences:
                    name = sql.Identifier(self.schema, sequence).as_string(conn)
                    conn.execute("SELECT setval(%s::regclass, 1, false)", [name])


@pytest.fixture(scope="session")
def shared_postgres() -> Iterator[SharedStore]:
    """A PostgreSQL schema for `store_url`, migrated once."""
    require_postgres()
    import psycopg

    schema = f"pipectl_test_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}schema={schema}"
    Client.migrate_url(url)
    yield SharedStore(url, POSTGRES_URL, schema)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="session")
def shared_supabase() -> Iterator[tuple[SupabaseProject, SharedStore]]:
    """A Supabase project (the PostgREST stand-in over its own database) for `store_url`, its
    schema installed once."""
    require_postgres()
    with new_project(POSTGRES_URL) as project:
        project.install_schema()
        yield project, SharedStore(project.store_url, project.dsn, "public")


STORES = ("sqlite", "postgres", "supabase")


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated, empty store of each backend, for tests that must hold on every store. SQLite:
    a file of the test's own. PostgreSQL and Supabase: a store of the session's, emptied first
    (SharedStore). For supabase, the store is selected the way users select it: SUPABASE_URL and
    the service_role key in the environment (where `open_store` and `load_settings` find it, in
    this process and in the processes it starts)."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    if request.param == "postgres":
        shared = request.getfixturevalue("shared_postgres")
    else:
        project, shared = request.getfixturevalue("shared_supabase")
        for name, value in project.env().items():
            monkeypatch.setenv(name, value)
    shared.empty()
    return shared.url
