"""Webhook alerts: events posted as JSON (with a Slack-compatible `text`) to a real local HTTP
server, with a timeout and retries, never blocking the caller."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipectl.alerts import AlertEvent, WebhookSender

AT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class Hook:
    """A webhook receiver on 127.0.0.1 that can fail its first N requests or hang (until
    `released` is set, at the latest when the test ends)."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.fail_first = 0
        self.hang = False
        self.released = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.hang:
                    hook.released.wait(30)
                if hook.fail_first > 0:
                    hook.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                hook.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    yield receiver
    receiver.stop()


def event(text: str = "pipectl: reviews (acme) is stale") -> AlertEvent:
    return AlertEvent("dataset_stale", text, AT, {"brand_id": "acme", "dataset": "reviews"})


def test_posts_json_with_a_slack_text(hook: Hook) -> None:
    sender = WebhookSender([hook.url], backoff_s=0.05)
    sender.send(event())
    sender.close()
    assert hook.received == [
        {
            "event": "dataset_stale",
            "text": "pipectl: reviews (acme) is stale",
            "at": "2026-11-29T12:00:00+00:00",
            "brand_id": "acme",
            "dataset": "reviews",
        }
    ]


def test_retries_until_delivered(hook: Hook) -> None:
    hook.fail_first = 2
    sender = WebhookSender([hook.url], backoff_s=0.05, attempts=3)
    sender.send(event())
    sender.close()
    assert len(hook.received) == 1


def test_gives_up_after_the_last_attempt(hook: Hook) -> None:
    hook.fail_first = 5
    sender = WebhookSender([hook.url], backoff_s=0.01, attempts=3)
    sender.send(event())
    sender.close()
    assert hook.received == [] and hook.fail_first == 2


def test_a_hanging_endpoint_never_blocks_the_caller(hook: Hook) -> None:
    hook.hang = True
    sender = WebhookSender([hook.url], timeout_s=0.3, attempts=1)
    started = time.monotonic()
    for i in range(20):
        sender.send(event(f"event {i}"))
    assert time.monotonic() - started < 0.1
    sender.close(timeout_s=0.1)


def test_every_url_gets_every_event(hook: Hook) -> None:
    other = Hook()
    try:
        sender = WebhookSender([hook.url, other.url], backoff_s=0.01)
        sender.send(event("one"))
        sender.send(event("two"))
        sender.close()
        assert [e["text"] for e in hook.received] == ["one", "two"]
        assert [e["text"] for e in other.received] == ["one", "two"]
    finally:
        other.stop()


def test_a_retired_dataset_raises_no_stale_alert(store_url: str) -> None:
    """Dataset alerts follow the gate: a retired (brand, dataset) that goes stale is news to
    nobody."""
    from datetime import timedelta
    from types import SimpleNamespace

    from pipectl.alerts import AlertEvents
    from pipectl.client import Client
    from pipectl.lifecycle import run_result
    from pipectl.settings import load_settings

    settings = load_settings(database_url=store_url, alert_webhooks="http://127.0.0.1:9/x")
    with Client.from_url(store_url, settings) as client:
        long_ago = datetime.now(UTC) - timedelta(days=30)
        for brand in ("acme", "globex"):
            job = client.enqueue("noop", brand, {"datasets": ["ads"]}, run_at=long_ago)
            (claim,) = client.store.claim_due("w", long_ago, 1)
            assert claim.job.id == job.id
            result = run_result(claim.job, long_ago, error=None)
            assert client.store.finish_run(claim.run.id, claim.run.lease_token, result)
        client.retire_dataset("ads", brand_id="globex")
        sent: list[AlertEvent] = []
        # The monitor's check, without its thread: a sender that collects instead of posting.
        monitor = SimpleNamespace(settings=settings, sender=SimpleNamespace(send=sent.append))
        AlertEvents.check_datasets(monitor, client.store)  # type: ignore[arg-type]
    assert [(e.kind, e.details["brand_id"]) for e in sent] == [("dataset_stale", "acme")]


def test_a_hold_past_max_hold_alerts_once_when_its_retries_are_exhausted(
    store_url: str, hook: Hook
) -> None:
    """docs/concepts.md: past max-hold the run fails with that reason, the retry rules apply,
    and the alert webhooks fire once. A real worker (with the alerts a `run-worker` has) and a
    real webhook receiver, on every store, under a frozen clock."""
    from datetime import timedelta

    from freezegun import freeze_time

    from pipectl.client import Client
    from pipectl.settings import load_settings
    from pipectl.store import open_store
    from pipectl.worker import Worker

    open_store(store_url).close()  # import the store's client library with the real clock
    settings = load_settings(database_url=store_url, poll_interval="0.2s", alert_webhooks=hook.url)

    def work() -> int:
        stats = Worker.from_settings(settings, worker_id="held", once=True).run()
        return stats.failed

    def exhausted() -> list[dict]:
        return [event for event in hook.received if event["event"] == "retries_exhausted"]

    with (
        freeze_time("2027-03-02 08:00:00+00:00") as clock,
        Client.from_url(store_url, settings) as client,
    ):
        client.add_job("noop", "0 6 * * *", brand_id="acme", parameters={"datasets": ["ads"]})
        report = client.add_job(
            "noop",
            "0 9 * * *",
            brand_id="acme",
            parameters={"datasets": ["report"]},
            requires_fresh=["ads"],
            max_hold=timedelta(hours=1),
            max_retries=0,
        )
        clock.move_to("2027-03-02 09:00:00+00:00")
        assert work() == 0  # held: ads never succeeded
        clock.move_to("2027-03-02 09:59:00+00:00")
        assert work() == 0
        assert exhausted() == []
        clock.move_to("2027-03-02 10:00:00+00:00")
        assert work() == 1  # past max-hold: failed, no retry left
        clock.move_to("2027-03-02 10:30:00+00:00")
        assert work() == 0  # back on its cron: nothing due until tomorrow 09:00
    (event,) = exhausted()
    assert event["job_id"] == report.id and event["brand_id"] == "acme"
    assert "held longer than max-hold (1h): waiting for acme/ads (never succeeded)" in event["text"]
