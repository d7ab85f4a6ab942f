"""Shared fixtures: every test gets its own real SQLite file and a clean environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite store in this test's temp dir."""
    url = f"sqlite:///{tmp_path / 'pipectl.db'}"
    Client.migrate_url(url)
    return url


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return load_settings(database_url=sqlite_url, poll_interval="0.2s", heartbeat_interval="0.5s")


@pytest.fixture
def client(sqlite_url: str, settings: Settings) -> Iterator[Client]:
    with Client.from_url(sqlite_url, settings) as opened:
        yield opened
