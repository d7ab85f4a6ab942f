"""SupabaseStore beyond the contract suite: how it finds the schema, its errors, its URL, and
how the settings select it. (tests/store/test_contract.py runs every protocol method on it.)"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from supabase_server import SupabaseProject

from pipectl.client import Client
from pipectl.errors import InvalidInput, SchemaMissing, StoreUnavailable
from pipectl.settings import load_settings
from pipectl.store import open_store
from pipectl.store.migrations import MIGRATIONS_TABLE, latest_version, load_migrations
from pipectl.store.supabase import SupabaseStore, split_url

KEY = "header.payload.signature"


@pytest.fixture
def store(supabase_project: SupabaseProject) -> Iterator[SupabaseStore]:
    opened = SupabaseStore(supabase_project.store_url, supabase_project.service_key)
    yield opened
    opened.close()


# -- the schema --------------------------------------------------------------------------------


@pytest.mark.postgres
def test_missing_schema_says_how_to_install_it(store: SupabaseStore) -> None:
    assert store.schema_version() is None
    with pytest.raises(SchemaMissing, match=r"pipectl db sql.*SQL editor.*supabase-migration"):
        store.check_schema()
    with pytest.raises(SchemaMissing, match="cannot install or upgrade the schema through the API"):
        store.migrate()
    with pytest.raises(SchemaMissing, match="Could not find the function"):
        store.get_job(1)


@pytest.mark.postgres
def test_migrate_is_a_check_once_the_schema_is_current(
    store: SupabaseStore, supabase_project: SupabaseProject
) -> None:
    supabase_project.install_schema()
    assert store.schema_version() == latest_version("postgres")
    store.check_schema()
    assert store.migrate() == []
    settings = load_settings(supabase_key=supabase_project.service_key)
    assert Client.migrate_url(supabase_project.store_url, settings) == []


@pytest.mark.postgres
def test_an_older_or_newer_schema(store: SupabaseStore, supabase_project: SupabaseProject) -> None:
    first = load_migrations("postgres")[0]
    with psycopg.connect(supabase_project.dsn, autocommit=True) as owner:
        owner.execute(
            f"CREATE TABLE {MIGRATIONS_TABLE} (version integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL)"
        )
        owner.execute(first.sql)
        owner.execute(f"INSERT INTO {MIGRATIONS_TABLE} VALUES (1, 'initial', now())")
        with pytest.raises(
            SchemaMissing, match=r"schema is out of date.*pipectl db sql.*it has v1"
        ):
            store.check_schema()
        with pytest.raises(SchemaMissing, match="it has v1"):
            store.migrate()
        owner.execute(f"INSERT INTO {MIGRATIONS_TABLE} VALUES (999, 'future', now())")
    with pytest.raises(StoreUnavailable, match="upgrade pipectl") as newer:
        store.check_schema()
    assert not isinstance(newer.value, SchemaMissing)


@pytest.mark.postgres
def test_a_database_error_in_the_data_is_bad_input(
    store: SupabaseStore, supabase_project: SupabaseProject
) -> None:
    from datetime import UTC, datetime

    supabase_project.install_schema()
    with Client(store, load_settings()) as client:
        job = client.enqueue("noop", "acme")
        with pytest.raises(InvalidInput, match="check constraint"):
            store.update_job(job.id, {"status": "bogus"}, datetime.now(UTC))
        assert client.get_job(job.id).status == "active"


@pytest.mark.postgres
def test_a_schema_other_than_public(supabase_project: SupabaseProject) -> None:
    """`?schema=NAME` reaches a schema the project exposes; one it does not is a clear error."""
    with psycopg.connect(supabase_project.dsn, autocommit=True) as owner:
        owner.execute("CREATE SCHEMA pipectl")
        owner.execute("GRANT USAGE ON SCHEMA pipectl TO service_role")
    Client.migrate_url(f"{supabase_project.dsn}?schema=pipectl")
    supabase_project.server.schemas.append("pipectl")
    with Client(
        SupabaseStore(f"{supabase_project.store_url}?schema=pipectl", supabase_project.service_key),
        load_settings(),
    ) as client:
        client.store.check_schema()
        assert client.enqueue("noop", "acme").brand_id == "acme"
    hidden = SupabaseStore(
        f"{supabase_project.store_url}?schema=other", supabase_project.service_key
    )
    with pytest.raises(StoreUnavailable, match="does not expose the schema 'other'"):
        hidden.check_schema()
    hidden.close()


# -- errors, URL, key --------------------------------------------------------------------------


def test_no_key_is_a_clear_error() -> None:
    for key in (None, ""):
        with pytest.raises(StoreUnavailable, match="set SUPABASE_SERVICE_ROLE_KEY"):
            SupabaseStore("supabase+https://abc.supabase.co", key)


def test_unreachable_url() -> None:
    store = SupabaseStore("supabase+http://127.0.0.1:9", KEY)
    with pytest.raises(StoreUnavailable, match=r"cannot reach Supabase at 127\.0\.0\.1:9") as exc:
        store.schema_version()
    assert KEY not in str(exc.value)
    store.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("supabase+https://abc.supabase.co", ("https://abc.supabase.co", "public")),
        ("supabase+https://abc.supabase.co/", ("https://abc.supabase.co", "public")),
        ("supabase+http://127.0.0.1:54321?schema=jobs", ("http://127.0.0.1:54321", "jobs")),
    ],
)
def test_split_url(url: str, expected: tuple[str, str]) -> None:
    assert split_url(url) == expected


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("supabase+https://", "not a Supabase URL"),
        ("supabase+https://user:secret@abc.supabase.co", "carries no credentials"),
        ("supabase+https://abc.supabase.co?key=secret", "unknown Supabase URL parameter"),
        ("supabase+https://abc.supabase.co?schema=", "empty schema"),
    ],
)
def test_bad_urls_are_bad_input(url: str, error: str) -> None:
    with pytest.raises(InvalidInput, match=error) as exc:
        open_store(url)
    assert "secret" not in str(exc.value)


# -- selection by the settings -----------------------------------------------------------------


def test_supabase_variables_select_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().database_url.startswith("sqlite:///")
    monkeypatch.setenv("SUPABASE_URL", "https://abc.supabase.co/")
    monkeypatch.setenv("SUPABASE_KEY", "from-supabase-key")
    settings = load_settings()
    assert settings.database_url == "supabase+https://abc.supabase.co"
    assert settings.supabase_key is not None
    assert settings.supabase_key.get_secret_value() == "from-supabase-key"
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "the-service-role-key")
    settings = load_settings()
    assert settings.supabase_key.get_secret_value() == "the-service-role-key"  # type: ignore[union-attr]
    # The key never shows: not in repr, str, or a JSON dump of the settings.
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert "the-service-role-key" not in text

    # An explicit database URL wins (environment or --database-url).
    assert load_settings(database_url="sqlite:///x.db").database_url == "sqlite:///x.db"
    monkeypatch.setenv("PIPECTL_DATABASE_URL", "postgresql://db/pipectl")
    assert load_settings().database_url == "postgresql://db/pipectl"
    # pipectl's prefix is not how these are spelled.
    monkeypatch.delenv("PIPECTL_DATABASE_URL")
    monkeypatch.delenv("SUPABASE_URL")
    monkeypatch.setenv("PIPECTL_SUPABASE_URL", "https://abc.supabase.co")
    assert load_settings().database_url.startswith("sqlite:///")


def test_supabase_settings_from_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text(
        "SUPABASE_URL=https://abc.supabase.co\nSUPABASE_SERVICE_ROLE_KEY=k\n"
    )
    assert load_settings().database_url == "supabase+https://abc.supabase.co"


@pytest.mark.parametrize("value", ["abc.supabase.co", "ftp://abc.supabase.co", "https://"])
def test_a_bad_supabase_url_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SUPABASE_URL", value)
    with pytest.raises(InvalidInput, match="invalid setting SUPABASE_URL"):
        load_settings()


def test_open_store_takes_the_key_from_the_settings_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPABASE_URL", "https://abc.supabase.co")
    with pytest.raises(StoreUnavailable, match="no key"):
        open_store("supabase+https://abc.supabase.co")
    given = load_settings(supabase_key="given-key")
    store = open_store(given.database_url, settings=given)
    assert store.display_url == "supabase+https://abc.supabase.co"
    store.close()


def test_help_and_sqlite_never_import_supabase(tmp_path: Path) -> None:
    """The supabase client costs most of a second to import; only its backend pays for it."""
    probe = (
        "import sys\n"
        "from pipectl.cli import main\n"
        "sys.argv = ['pipectl', *sys.argv[1:]]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('LOADED' if any(m.split('.')[0] in ('supabase', 'postgrest', 'realtime')"
        " for m in sys.modules) else 'CLEAN', file=sys.stderr)\n"
    )
    url = f"sqlite:///{tmp_path}/probe.db"
    for args in (
        ["--help"],
        ["--database-url", url, "db", "migrate"],
        ["--database-url", url, "status"],
    ):
        result = subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60
        )
        assert result.stderr.splitlines()[-1] == "CLEAN", (args, result.stderr)
