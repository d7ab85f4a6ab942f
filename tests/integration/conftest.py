"""The engine's integration tests run on every store: `settings` and `client` here are built on
`store_url` (tests/conftest.py), so each test that takes them runs on SQLite, PostgreSQL and
Supabase (the PostgREST stand-in)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipectl.client import Client
from pipectl.settings import Settings, load_settings


@pytest.fixture
def settings(store_url: str) -> Settings:
    return load_settings(database_url=store_url, poll_interval="0.2s", heartbeat_interval="0.5s")


@pytest.fixture
def client(store_url: str, settings: Settings) -> Iterator[Client]:
    with Client.from_url(store_url, settings) as opened:
        yield opened
