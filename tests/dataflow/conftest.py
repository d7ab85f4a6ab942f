"""Data-aware scheduling on every store: SQLite, PostgreSQL and Supabase (the stand-in)."""

from __future__ import annotations

from pathlib import Path

import pytest
from supabase_server import supabase_project, supabase_url  # noqa: F401 (fixtures)

from pipectl.client import Client


@pytest.fixture(params=["sqlite", "postgres", "supabase"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated store of each backend (as tests/store/conftest.py's)."""
    if request.param == "supabase":
        return request.getfixturevalue("supabase_url")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'dataflow.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    Client.migrate_url(url)
    return url
