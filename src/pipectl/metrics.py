"""Prometheus metrics and the worker's HTTP endpoints: /metrics, /status, /ready and /healthz."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pipectl.client import Client, StatusReport
from pipectl.errors import InvalidInput
from pipectl.lifecycle import in_backoff, is_due
from pipectl.models import Claim, RunResult
from pipectl.worker import WorkerEvents

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
disable_created_metrics()  # *_created series only confuse the dashboards we target

RUN_BUCKETS_S = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600, float("inf"))


class StoreCollector(Collector):
    """Gauges read from the store at scrape time: what every worker and `pipectl metrics` see."""

    def __init__(self, load_status: Callable[[], StatusReport]) -> None:
        self.load_status = load_status

    def collect(self) -> Iterator[GaugeMetricFamily]:
        report = self.load_status()
        now = report.now
        due = sum(1 for job in report.jobs if is_due(job, now))
        backoff = sum(1 for job in report.jobs if in_backoff(job))
        yield GaugeMetricFamily("pipectl_queue_due_jobs", "Jobs due now and not yet claimed.", due)
        yield GaugeMetricFamily(
            "pipectl_jobs_in_backoff", "Jobs in backoff, as `pipectl retry` lists them.", backoff
        )
        yield GaugeMetricFamily(
            "pipectl_stuck_runs", "Running runs without a recent heartbeat.", len(report.stuck_runs)
        )
        yield GaugeMetricFamily(
            "pipectl_live_workers",
            "Workers running: seen recently and not stopped.",
            len(report.live_workers),
        )
        age = GaugeMetricFamily(
            "pipectl_dataset_age_seconds",
            "Seconds since the dataset's last success (absent when never refreshed).",
            labels=["brand", "dataset"],
        )
        state = GaugeMetricFamily(
            "pipectl_dataset_state",
            "1 for the dataset's current freshness state.",
            labels=["brand", "dataset", "state"],
        )
        for item in report.datasets:
            brand = item.brand_id or "global"
            if item.age is not None:
                age.add_metric([brand, item.dataset], item.age.total_seconds())
            state.add_metric([brand, item.dataset, item.state], 1)
        yield age
        yield state


class WorkerMetrics(WorkerEvents):
    """The worker's own counters, plus liveness for /healthz."""

    def __init__(self, registry: CollectorRegistry, healthy_within_s: float) -> None:
        self.healthy_within_s = healthy_within_s
        self.last_tick = time.monotonic()
        self.runs = Counter(
            "pipectl_runs",
            "Runs finished by this worker.",
            ["job_type", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "pipectl_run_duration_seconds",
            "How long runs took.",
            ["job_type"],
            buckets=RUN_BUCKETS_S,
            registry=registry,
        )
        self.recovered = Counter(
            "pipectl_stuck_runs_recovered",
            "Stuck runs this worker's sweep recovered.",
            registry=registry,
        )

    def on_tick(self) -> None:
        self.last_tick = time.monotonic()

    def on_run_finished(self, claim: Claim, result: RunResult, duration_s: float) -> None:
        self.runs.labels(claim.job.job_type, result.status).inc()
        self.duration.labels(claim.job.job_type).observe(duration_s)

    def on_recovered(self, claims: list[Claim]) -> None:
        self.recovered.inc(len(claims))

    @property
    def healthy(self) -> bool:
        return time.monotonic() - self.last_tick <= self.healthy_within_s


def store_registry(load_status: Callable[[], StatusReport]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(StoreCollector(load_status))
    return registry


def serve(
    host: str,
    port: int,
    registry: CollectorRegistry,
    load_status: Callable[..., StatusReport],
    metrics: WorkerMetrics,
) -> ThreadingHTTPServer:
    """Serve /metrics, /status, /ready and /healthz from a daemon thread; returns the server.

    `load_status()` reads the whole status; `load_status(brands, datasets)` narrows it as
    `Client.gate_status` does, for `?brand=` and `?dataset=` (each repeatable). /ready answers
    the readiness gate (`&strict=1`, `&require_worker=1` as on the command line): 200 when it
    passes, 503 when it does not, the status document as the body either way."""
    from pipectl.documents import status_json
    from pipectl.errors import PipectlError
    from pipectl.json_text import dumps

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if path == "/metrics":
                self._send(200, CONTENT_TYPE, generate_latest(registry))
            elif path in ("/status", "/ready"):
                self._gate(path == "/ready", parse_qs(query))
            elif path == "/healthz":
                ok = metrics.healthy
                self._send(200 if ok else 503, "text/plain", b"ok\n" if ok else b"stalled\n")
            else:
                self._send(
                    404, "text/plain", b"not found: try /metrics, /status, /ready or /healthz\n"
                )

        def _gate(self, ready: bool, query: dict[str, list[str]]) -> None:
            brands, datasets = query.get("brand", []), query.get("dataset", [])
            flags = {
                name: query.get(name, ["0"])[-1] in ("1", "true", "yes")
                for name in ("strict", "require_worker")
            }
            try:
                report = load_status(brands, datasets) if brands or datasets else load_status()
            except InvalidInput as exc:
                return self._json(400, {"ok": False, "error": str(exc)})
            except PipectlError as exc:
                return self._json(503, {"ok": False, "error": str(exc)})
            gate = report.gate(**flags)
            self._json(503 if ready and not gate.ok else 200, status_json(report, gate))

        def _json(self, code: int, document: Any) -> None:
            self._send(code, "application/json", dumps(document))

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="pipectl-metrics", daemon=True).start()
    return server


def status_loader(url: str, settings: Any) -> Callable[[], StatusReport]:
    """A status read on a connection of its own (the HTTP thread must not share the worker's);
    serialised, since scrapes may overlap."""
    lock = threading.Lock()
    holder: dict[str, Client] = {}

    def load(brands: Sequence[str] = (), datasets: Sequence[str] = ()) -> StatusReport:
        with lock:
            if "client" not in holder:
                holder["client"] = Client.from_url(url, settings)
            try:
                return holder["client"].gate_status(brands, datasets)
            except InvalidInput:
                raise
            except Exception:
                holder.pop("client").close()
                raise

    return load
