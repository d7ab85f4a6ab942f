"""What the web tests share: three tokens, and a seeded store.

The seed: brand acme's ads_performance is stale (last success three days ago, and the last
attempt failed with steps), brand globex's reviews is fresh."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipectl.client import Client
from pipectl.lifecycle import run_result
from pipectl.models import Job

OPS = "ops-token-0123456789abcdef"
READ = "read-token-0123456789abcdef"
ACME = "acme-token-0123456789abcdef"
NEWCO = "newco-token-0123456789abcdef"  # acme and a brand the store does not know yet
TOKENS = json.dumps(
    [
        {"name": "ops", "scope": "operate", "token": OPS},
        {"name": "viewer", "scope": "read", "token": READ},
        {"name": "acme-page", "scope": "operate", "token": ACME, "brands": ["acme"]},
        {"name": "newco-page", "scope": "read", "token": NEWCO, "brands": ["acme", "newco"]},
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.base, self.log = proc, f"http://127.0.0.1:{port}", log
