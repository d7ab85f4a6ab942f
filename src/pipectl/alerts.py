"""Alerts: which transitions deserve a webhook, and delivering them without blocking the worker.

Events: a job exhausted its retries, a stuck run was recovered, a dataset turned `stale`, a
dataset came back to `fresh`. Each is sent once per transition: run outcomes are recorded by
exactly one worker, and dataset transitions are claimed in the store (compare-and-set) before
they are sent, so several workers never send the same one twice.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pipectl import clock
from pipectl.errors import PipectlError
from pipectl.freshness import Thresholds, freshness
from pipectl.lifecycle import after_last_retry, attempt, recovered_result, retries_exhausted
from pipectl.models import Claim, Freshness, RunResult, iso
from pipectl.settings import Settings
from pipectl.store import Store
from pipectl.worker import WorkerEvents

log = logging.getLogger("pipectl.alerts")

EventKind = Literal["retries_exhausted", "stuck_run_recovered", "dataset_stale", "dataset_fresh"]
QUEUE_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class AlertEvent:
    kind: EventKind
    text: str  # one line, Slack-compatible
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {"event": self.kind, "text": self.text, "at": iso(self.at), **self.details}


def _where(brand_id: str | None) -> str:
    return "global" if brand_id is None else brand_id


def run_events(claim: Claim, result: RunResult, *, recovered: bool = False) -> list[AlertEvent]:
    """Events a recorded run outcome raises: a recovered stuck run, and exhausted retries (a
    one-time job ended `failed`, or a recurring job fell back to its cron schedule)."""
    job, at = claim.job, result.finished_at
    ids = {
        "job_id": job.id,
        "run_id": claim.run.id,
        "brand_id": job.brand_id,
        "job_type": job.job_type,
    }
    events = []
    if recovered:
        events.append(
            AlertEvent(
                "stuck_run_recovered",
                f"pipectl: recovered stuck run {claim.run.id} of job {job.id} ({job.name}, "
                f"{_where(job.brand_id)}): {result.error_message}",
                at,
                {**ids, "worker_id": claim.run.worker_id, "error": result.error_message},
            )
        )
    if result.status == "failed" and retries_exhausted(job):
        events.append(
            AlertEvent(
                "retries_exhausted",
                f"pipectl: job {job.id} ({job.name}, {_where(job.brand_id)}) failed "
                f"{attempt(job)} times in a row; {after_last_retry(job)}. "
                f"Last error: {result.error_message}",
                at,
                {**ids, "attempts": attempt(job), "error": result.error_message},
            )
        )
    return events


def dataset_event(item: Freshness, at: datetime) -> AlertEvent:
    details = {
        "brand_id": item.brand_id,
        "dataset": item.dataset,
        "state": item.state,
        "last_success_at": iso(item.last_success_at),
    }
    if item.state == "stale":
        return AlertEvent(
            "dataset_stale",
            f"pipectl: {item.dataset} ({_where(item.brand_id)}) is stale: last success "
            f"{iso(item.last_success_at) or 'never'}",
            at,
            details,
        )
    return AlertEvent(
        "dataset_fresh",
        f"pipectl: {item.dataset} ({_where(item.brand_id)}) is fresh again",
        at,
        details,
    )


class WebhookSender:
    """POSTs events as JSON to every URL from a background thread: a timeout per attempt, a few
    retries with backoff, and a bounded queue, so a slow or dead endpoint never blocks a run."""

    def __init__(
        self, urls: list[str], *, timeout_s: float = 5.0, attempts: int = 3, backoff_s: float = 1.0
    ) -> None:
        self.urls = urls
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._queue: queue.Queue[AlertEvent | None] = queue.Queue(QUEUE_LIMIT)
        self._thread = threading.Thread(target=self._deliver, name="pipectl-alerts", daemon=True)
        self._thread.start()

    def send(self, event: AlertEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            log.error("alert queue full; dropping an event", extra={"action": event.kind})

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (up to `timeout_s`), then stop."""
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _deliver(self) -> None:
        while (event := self._queue.get()) is not None:
            body = json.dumps(event.payload()).encode()
            for url in self.urls:
                self._post(url, body, event)

    def _post(self, url: str, body: bytes, event: AlertEvent) -> None:
        for delivery in range(1, self.attempts + 1):
            request = urllib.request.Request(
                url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s):
                    return
            except urllib.error.HTTPError as exc:
                reason = f"HTTP {exc.code}"
            except (OSError, ValueError) as exc:
                reason = type(exc).__name__  # not str(exc): it may echo the (secret) URL
            log.warning(
                f"alert delivery failed ({reason}), attempt {delivery} of {self.attempts}",
                extra={"action": event.kind},
            )
            time.sleep(self.backoff_s * delivery)


def alert_transition(state: str, alerted_state: str | None) -> tuple[str | None, str] | None:
    """(expected, new) alerted_state when a dataset's state deserves an alert, else None: it
    turned stale (and that was not announced yet), or it is fresh again after a stale alert."""
    if state == "stale" and alerted_state != "stale":
        return alerted_state, "stale"
    if state == "fresh" and alerted_state == "stale":
        return "stale", "fresh"
    return None


class AlertEvents(WorkerEvents):
    """The worker's alerting: run events from its own loop, dataset transitions from a monitor
    thread with a store connection of its own."""

    def __init__(self, settings: Settings, open_store: Callable[[], Store]) -> None:
        self.settings = settings
        self.sender = WebhookSender(settings.alert_webhooks)
        self._open_store = open_store
        self._stop = threading.Event()
        self._monitor = threading.Thread(
            target=self._watch, name="pipectl-alert-monitor", daemon=True
        )
        self._monitor.start()

    def on_run_finished(self, claim: Claim, result: RunResult, duration_s: float) -> None:
        for event in run_events(claim, result):
            self.sender.send(event)

    def on_recovered(self, claims: list[Claim]) -> None:
        now = clock.now()
        for claim in claims:
            result = recovered_result(claim, now)
            for event in run_events(claim, result, recovered=True):
                self.sender.send(event)

    def on_stop(self) -> None:
        self._stop.set()
        self._monitor.join(timeout=10)
        self.sender.close()

    def _watch(self) -> None:
        store: Store | None = None
        interval = self.settings.alert_check_interval.total_seconds()
        while not self._stop.wait(0 if store is None else interval):
            try:
                store = store or self._open_store()
                self.check_datasets(store)
            except PipectlError as exc:
                log.warning(f"dataset alert check failed: {exc}", extra={"action": "alerts"})
                if store is not None:
                    store.close()
                store = None
                self._stop.wait(interval)
        if store is not None:
            store.close()

    def check_datasets(self, store: Store) -> None:
        now = clock.now()
        thresholds = Thresholds(
            store.thresholds(), (self.settings.warn_after, self.settings.error_after)
        )
        for status in store.dataset_statuses():
            if status.retired_at is not None:  # out of the gate: nobody waits for it
                continue
            item = freshness(status.dataset, status.brand_id, status, thresholds, now)
            change = alert_transition(item.state, status.alerted_state)
            if change and store.claim_alert(status.brand_id, status.dataset, *change):
                self.sender.send(dataset_event(item, now))
