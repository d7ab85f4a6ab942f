"""The engine's integration tests run on every store: `client` and `settings` (tests/conftest.py)
open `store_url` here, so each test that takes them runs on SQLite, PostgreSQL and Supabase (the
PostgREST stand-in)."""

from __future__ import annotations

import pytest


@pytest.fixture
def client_url(store_url: str) -> str:
    return store_url
