"""Fixtures for `pipectl serve`: a seeded store on SQLite and PostgreSQL, three tokens, and the
application under FastAPI's TestClient (the real ASGI app, in process).

The seed: brand acme's ads_performance is stale (last success three days ago, and the last
attempt failed with steps), brand globex's reviews is fresh."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipectl.client import Client
from pipectl.models import Job
from pipectl.outcome import run_result
from pipectl.settings import load_settings

pytest.importorskip("fastapi")

OPS = "ops-token-0123456789abcdef"
READ = "read-token-0123456789abcdef"
ACME = "acme-token-0123456789abcdef"
TOKENS = json.dumps(
    [
        {"name": "ops", "scope": "operate", "token": OPS},
        {"name": "viewer", "scope": "read", "token": READ},
        {"name": "acme-page", "scope": "operate", "token": ACME, "brands": ["acme"]},
    ]
)
FAILED_STEPS = [
    {
        "name": "fetch",
        "status": "completed",
        "datasets": [],
        "brand_id": "acme",
        "fatal": True,
        "error": None,
    },
    {
        "name": "load",
        "status": "failed",
        "datasets": ["ads_performance"],
        "brand_id": "acme",
        "fatal": True,
        "error": "HTTP 401 from Meta",
    },
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def record(
    client: Client, target: Job, at: datetime, *, error: str | None = None, steps: Any = None
) -> int:
    """Run `target` once as if a worker had, finishing at `at`; returns the run id."""
    client.store.update_job(target.id, {"next_run_at": at - timedelta(days=3650)}, at)
    (claim,) = client.store.claim_due("test-worker", at, 1)
    assert claim.job.id == target.id
    result = run_result(claim.job, at, error=error, steps=steps, logs=f"run of {target.name}\n")
    assert client.store.finish_run(claim.run.id, claim.run.lease_token, result)
    return claim.run.id


@dataclass(frozen=True)
class Seed:
    acme_job: int
    globex_job: int
    failed_run: int
    globex_run: int


def seed(client: Client) -> Seed:
    now = datetime.now(UTC)
    acme = client.add_job(
        "noop",
        "0 3 * * *",
        brand_id="acme",
        name="meta acme",
        parameters={"datasets": ["ads_performance"]},
    )
    globex = client.add_job(
        "noop",
        "0 4 * * *",
        brand_id="globex",
        name="reviews globex",
        parameters={"datasets": ["reviews"]},
    )
    record(client, acme, now - timedelta(days=3))
    failed = record(client, acme, now - timedelta(minutes=20), error=None, steps=FAILED_STEPS)
    globex_run = record(client, globex, now - timedelta(minutes=5))
    # The runs left both jobs active, due at their next cron occurrence.
    return Seed(acme.id, globex.id, failed, globex_run)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    found = request.getfixturevalue("postgres_url")
    Client.migrate_url(found)
    return found


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
