"""Fixtures for `pipectl serve`: a seeded store on SQLite and PostgreSQL, and the application
under FastAPI's TestClient (the real ASGI app, in process)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_web import TOKENS, Seed, Server, free_port, get, seed
from procs import wait_for

from pipectl.client import Client
from pipectl.settings import load_settings

pytest.importorskip("fastapi")


@pytest.fixture
def url(both_url: str) -> str:
    """A migrated store on SQLite, then on PostgreSQL (tests/conftest.py)."""
    return both_url


@pytest.fixture
def store(url: str) -> Iterator[Client]:
    with Client.from_url(url) as opened:
        yield opened


@pytest.fixture
def seeded(store: Client) -> Seed:
    return seed(store)


@pytest.fixture
def api(url: str) -> Iterator[Any]:
    """The app with the three tokens, under TestClient."""
    from fastapi.testclient import TestClient

    from pipectl.web.app import create_app

    app = create_app(load_settings(database_url=url, api_tokens=TOKENS))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        yield client


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    started: list[subprocess.Popen[bytes]] = []

    def start(url: str, *args: str, **env: str) -> Server:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pipectl", "serve", "--port", str(port), *args],
                env={**os.environ, "PIPECTL_DATABASE_URL": url, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(proc)
        server = Server(proc, port, log)
        wait_for(lambda: get(f"{server.base}/healthz")[0] == 200 or proc.poll() is not None)
        assert proc.poll() is None, log.read_text()
        return server

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
