"""/metrics, /status, /ready and /healthz from a real worker process, and `pipectl metrics`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from freezegun import freeze_time
from procs import wait_for
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from pipectl.client import Client
from pipectl.lifecycle import run_result
from pipectl.metrics import WorkerMetrics, serve, store_registry


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    """The status and body of a GET; OSError when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def answers(url: str) -> bool:
    try:
        get(url)
    except OSError:
        return False
    return True


@pytest.fixture
def worker(store_url: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipectl",
            "run-worker",
            "--metrics-port",
            str(port),
            "--poll-interval",
            "0.2s",
        ],
        env={**os.environ, "PIPECTL_DATABASE_URL": store_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(base + "/healthz"))
    yield base
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)


def test_worker_serves_metrics_status_and_health(client: Client, worker: str) -> None:
    ok = client.enqueue("noop", "acme", {"datasets": ["orders"]})
    bad = client.enqueue("command", "acme", {"command": "exit 2"})
    wait_for(lambda: client.get_job(bad.id).retry_count == 1)
    assert client.get_job(ok.id).status == "archived"

    code, text = get(worker + "/metrics")
    assert code == 200
    found = samples(text)
    assert found[("pipectl_runs_total", (("job_type", "noop"), ("outcome", "completed")))] == 1
    assert found[("pipectl_runs_total", (("job_type", "command"), ("outcome", "failed")))] == 1
    assert found[("pipectl_run_duration_seconds_count", (("job_type", "noop"),))] == 1
    assert found[("pipectl_jobs_in_backoff", ())] == 1
    assert found[("pipectl_queue_due_jobs", ())] == 0
    assert found[("pipectl_live_workers", ())] == 1
    age = found[("pipectl_dataset_age_seconds", (("brand", "acme"), ("dataset", "orders")))]
    assert 0 <= age < 60

    code, body = get(worker + "/status")
    assert code == 200
    assert [d["state"] for d in json.loads(body)["datasets"] if d["dataset"] == "orders"] == [
        "fresh"
    ]
    assert get(worker + "/healthz") == (200, "ok\n")
    assert get(worker + "/nope")[0] == 404


def test_healthz_turns_503_when_the_loop_stalls() -> None:
    """Under a frozen clock: the loop stalls for as long as the test says, not for real."""

    def status(*args: object, **kwargs: object) -> None:
        raise AssertionError("/healthz does not read the store")

    registry = CollectorRegistry()
    port = free_port()
    with freeze_time() as clock:
        events = WorkerMetrics(registry, healthy_within_s=0.3)
        server = serve("127.0.0.1", port, registry, status, events)  # type: ignore[arg-type]
        try:
            events.on_tick()
            assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
            clock.tick(0.2)
            assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
            clock.tick(0.2)
            assert get(f"http://127.0.0.1:{port}/healthz") == (503, "stalled\n")
            events.on_tick()
            assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        finally:
            server.shutdown()


def test_metrics_command_prints_the_store_gauges(client: Client, store_url: str) -> None:
    client.enqueue("noop", "acme")
    result = subprocess.run(
        [sys.executable, "-m", "pipectl", "metrics"],
        env={**os.environ, "PIPECTL_DATABASE_URL": store_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    found = samples(result.stdout)
    assert found[("pipectl_queue_due_jobs", ())] == 1
    assert found[("pipectl_stuck_runs", ())] == 0


def test_store_gauges_count_never_refreshed_datasets(client: Client) -> None:
    client.add_job("noop", "0 3 * * *", brand_id="acme", parameters={"datasets": ["reviews"]})
    from prometheus_client import generate_latest

    found = samples(generate_latest(store_registry(client.status)).decode())
    key = ("pipectl_dataset_state", (("brand", "acme"), ("dataset", "reviews"), ("state", "never")))
    assert found[key] == 1
    assert not any(name == "pipectl_dataset_age_seconds" for name, _ in found)


def test_metrics_port_in_use_is_bad_input(sqlite_url: str) -> None:
    """A command-line check: the port is refused whatever the store, so one store is enough."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "pipectl", "run-worker", "--once", "--metrics-port", str(port)],
            env={**os.environ, "PIPECTL_DATABASE_URL": sqlite_url},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert "cannot serve metrics" in result.stderr and "Traceback" not in result.stderr


def test_status_narrows_and_ready_answers_the_gate(client: Client) -> None:
    """/status honours ?brand= and ?dataset=; /ready is 200 when the gate passes and 503 when
    it does not, with the status document as the body; an unknown name is 400."""
    ads = client.enqueue("noop", "acme", {"datasets": ["ads", "thumbs"]})
    client.enqueue("noop", "globex", {"datasets": ["ads"]})
    (claim,) = [c for c in client.store.claim_due("w", datetime.now(UTC), 10) if c.job.id == ads.id]
    client.store.finish_run(
        claim.run.id, claim.run.lease_token, run_result(claim.job, datetime.now(UTC), error=None)
    )
    port = free_port()
    events = WorkerMetrics(CollectorRegistry(), healthy_within_s=30)
    server = serve("127.0.0.1", port, CollectorRegistry(), client.gate_status, events)
    base = f"http://127.0.0.1:{port}"
    try:
        code, body = get(base + "/status?brand=acme&dataset=ads")
        assert code == 200
        document = json.loads(body)
        assert [(d["brand_id"], d["dataset"]) for d in document["datasets"]] == [("acme", "ads")]
        assert document["ok"] is True

        code, body = get(base + "/ready?brand=acme&dataset=ads")
        assert (code, json.loads(body)["ok"]) == (200, True)
        code, body = get(base + "/ready?brand=globex&dataset=ads")
        assert code == 503
        (failure,) = json.loads(body)["failures"]
        assert failure["reason"] == "globex/ads: never — no success yet; never attempted"
        assert get(base + "/ready")[0] == 503  # globex/ads is never refreshed
        assert get(base + "/ready?brand=acme&brand=globex")[0] == 503
        assert get(base + "/ready?brand=acme")[0] == 200
        # A job is due and no worker is live: only require_worker makes that a failure.
        assert get(base + "/ready?brand=acme&require_worker=1")[0] == 200
        client.enqueue("noop", "acme")
        assert get(base + "/ready?brand=acme")[0] == 200
        assert get(base + "/ready?brand=acme&require_worker=1")[0] == 503

        code, body = get(base + "/ready?brand=globx")
        assert code == 400
        assert "unknown brand 'globx'" in json.loads(body)["error"]
        assert get(base + "/status?brand=acme&dataset=nope")[0] == 400
    finally:
        server.shutdown()
