"""The `store` fixture: the same contract tests run against every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from supabase_server import supabase_project, supabase_url  # noqa: F401 (fixtures)

from pipectl.client import Client
from pipectl.store import Store, open_store


@pytest.fixture(params=["sqlite", "postgres", "supabase"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated store of each backend. For supabase: a fresh database set up like a Supabase
    project's, its schema installed, reached through the PostgREST stand-in with SUPABASE_URL
    and SUPABASE_SERVICE_ROLE_KEY in the environment (where `open_store` finds the key)."""
    if request.param == "supabase":
        return request.getfixturevalue("supabase_url")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'contract.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    Client.migrate_url(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()
