"""What watches a worker: its counters, the event hooks, and the watchers a complete worker
gets from its settings (metrics and alerts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pipectl.models import Claim, RunResult
from pipectl.settings import Settings


@dataclass
class WorkerStats:
    completed: int = 0
    failed: int = 0
    recovered: int = 0
    lost: int = 0
    released: int = 0


class WorkerEvents:
    """Hooks for what watches a worker (metrics, health); each is a no-op here. They are called
    on the worker's own thread and must return quickly."""

    def on_tick(self) -> None:
        """The loop is alive: polling, idling or supervising a run."""

    def on_run_finished(self, claim: Claim, result: RunResult, duration_s: float) -> None:
        """A run's outcome was recorded."""

    def on_recovered(self, claims: list[Claim]) -> None:
        """The sweep recovered these stuck runs."""

    def on_stop(self) -> None:
        """The worker is exiting: flush and release what the watcher holds."""


class Broadcast(WorkerEvents):
    """Several watchers at once (metrics and alerts)."""

    def __init__(self, watchers: list[WorkerEvents]) -> None:
        self.watchers = watchers

    def on_tick(self) -> None:
        for watcher in self.watchers:
            watcher.on_tick()

    def on_run_finished(self, claim: Claim, result: RunResult, duration_s: float) -> None:
        for watcher in self.watchers:
            watcher.on_run_finished(claim, result, duration_s)

    def on_recovered(self, claims: list[Claim]) -> None:
        for watcher in self.watchers:
            watcher.on_recovered(claims)

    def on_stop(self) -> None:
        for watcher in self.watchers:
            watcher.on_stop()


def standard_watchers(
    settings: Settings,
    *,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    poll_interval: timedelta | None = None,
) -> list[WorkerEvents]:
    """The watchers of a complete worker: with a metrics port, Prometheus counters and the
    /metrics, /status, /ready and /healthz endpoints (served from now on); with alert webhooks,
    the alerts. Their libraries are imported only when asked for."""
    watchers: list[WorkerEvents] = []
    if metrics_port is not None:
        watchers.append(_serve_metrics(settings, metrics_host, metrics_port, poll_interval))
    if settings.alert_webhooks:
        from pipectl.alerts import AlertEvents
        from pipectl.store import open_store

        watchers.append(
            AlertEvents(settings, lambda: open_store(settings.database_url, settings=settings))
        )
    return watchers


def _serve_metrics(
    settings: Settings, host: str, port: int, poll_interval: timedelta | None
) -> WorkerEvents:
    from pipectl import metrics
    from pipectl.errors import InvalidInput

    loader = metrics.status_loader(settings.database_url, settings)
    registry = metrics.store_registry(loader)
    poll_s = (poll_interval or settings.poll_interval).total_seconds()
    # Alive = the loop ticked lately: it ticks every poll, every idle slice and every 0.1 s
    # while it supervises a run, so a long run is not mistaken for a hang.
    events = metrics.WorkerMetrics(registry, healthy_within_s=max(30.0, 3 * poll_s))
    try:
        metrics.serve(host, port, registry, loader, events)
    except OSError as exc:
        raise InvalidInput(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None
    return events
