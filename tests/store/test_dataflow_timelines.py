"""Timelines under a frozen clock with the real worker, on every store: triggers (`--after`),
fan-out, coalescing, holds (`--requires-fresh`) and their max-hold.

Each step moves freezegun's clock and runs one real worker pass (`run-worker --once`,
in-process): a pass claims until nothing is due, so a success and the run it triggers happen
in one pass."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from pipectl.client import Client
from pipectl.errors import InvalidInput
from pipectl.models import Job, Run
from pipectl.settings import load_settings
from pipectl.store import open_store
from pipectl.worker import Worker, WorkerStats

Work = Callable[[], WorkerStats]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def produces(*datasets: str, command: str = "true") -> dict[str, Any]:
    return {"command": command, "datasets": list(datasets)}


@pytest.fixture
def clock(store_url: str) -> Iterator[FrozenDateTimeFactory]:
    # Open the store once before freezing, so that its client library (supabase's pydantic
    # models) is imported with the real datetime class.
    open_store(store_url).close()
    # After the Supabase stand-in's API keys were issued (it checks their `iat`).
    with freeze_time("2027-03-02 08:00:00+00:00") as frozen:
        yield frozen


@pytest.fixture
def client(store_url: str, clock: FrozenDateTimeFactory) -> Iterator[Client]:
    settings = load_settings(database_url=store_url, poll_interval="0.2s")
    with Client.from_url(store_url, settings) as opened:
        yield opened


@pytest.fixture
def work(store_url: str) -> Work:
    settings = load_settings(database_url=store_url, poll_interval="0.2s")
    return lambda: Worker(store_url, settings, worker_id="timeline", once=True).run()


def runs_of(client: Client, job: Job) -> list[Run]:
    return list(reversed(client.list_runs(job_id=job.id, limit=100)))


def chain(client: Client, brand: str) -> tuple[Job, Job, Job]:
    sync = client.add_job("command", "0 6 * * *", brand_id=brand, parameters=produces("ads"))
    rollup = client.add_job(
        "command", brand_id=brand, name="rollup", parameters=produces("roas"), after=["ads"]
    )
    report = client.add_job(
        "command", brand_id=brand, name="report", parameters=produces("report"), after=["roas"]
    )
    return sync, rollup, report


def test_a_chain_of_three_runs_through_for_its_brand_only(client: Client, work: Work) -> None:
    acme = chain(client, "acme")
    beta = chain(client, "beta")
    assert acme[1].schedule_type == "datasets" and acme[1].next_run_at is None
    client.run_now(acme[0].id)

    stats = work()
    assert (stats.completed, stats.failed) == (3, 0)
    (sync_run,) = runs_of(client, acme[0])
    (rollup_run,) = runs_of(client, acme[1])
    (report_run,) = runs_of(client, acme[2])
    now = at("2027-03-02 08:00").isoformat()
    assert rollup_run.brand_id == "acme"
    assert rollup_run.triggered_by == [
        {"dataset": "ads", "brand_id": "acme", "run_id": sync_run.id, "at": now, "successes": 1}
    ]
    assert report_run.triggered_by[0]["run_id"] == rollup_run.id
    assert client.freshness("report", "acme").state == "fresh"
    # beta's chain did not move, and acme's waits for new data again.
    assert all(runs_of(client, job) == [] for job in beta)
    for job in acme[1:]:
        job = client.get_job(job.id)
        assert (job.status, job.next_run_at, job.triggered_at) == ("active", None, None)
    assert work().completed == 0


def test_a_global_consumer_fans_out_one_run_per_refreshed_brand(client: Client, work: Work) -> None:
    for brand in ("acme", "beta", "gamma"):
        client.add_job("command", "0 6 * * *", brand_id=brand, parameters=produces("ads"))
    rollup = client.add_job("command", name="rollup", parameters=produces("roas"), after=["ads"])
    client.enqueue("command", "acme", produces("ads"))
    # beta's sync outlasts a quick run, so its batch-mate, rollup's run for acme (started, its
    # trigger taken: the key `rollup` sorts after `command:beta`), is given back meanwhile.
    client.enqueue("command", "beta", produces("ads", command="sleep 0.2"))

    stats = work()
    assert (stats.completed, stats.released) == (4, 1)
    runs = runs_of(client, rollup)
    assert sorted(run.brand_id for run in runs) == ["acme", "beta"]
    for run in runs:
        assert [(t["dataset"], t["brand_id"]) for t in run.triggered_by] == [("ads", run.brand_id)]
    # Each run's freshness landed on its brand; gamma's nothing, nor the global dataset.
    assert client.freshness("roas", "acme").state == "fresh"
    assert client.freshness("roas", "beta").state == "fresh"
    assert client.freshness("roas", "gamma").state == "never"
    assert client.freshness("roas", None).state == "never"


def test_a_failed_input_triggers_nothing_and_keeps_its_last_success(
    client: Client, work: Work, clock: FrozenDateTimeFactory, tmp_path: Path
) -> None:
    flag = tmp_path / "fail"
    command = f"test ! -e {shlex.quote(str(flag))}"
    sync = client.add_job(
        "command", "0 * * * *", brand_id="acme", parameters=produces("ads", command=command)
    )
    rollup = client.add_job("command", brand_id="acme", parameters=produces("roas"), after=["ads"])
    clock.move_to(at("2027-03-02 09:00"))
    assert work().completed == 2
    flag.touch()
    clock.move_to(at("2027-03-02 10:00"))
    assert work().failed == 1
    assert len(runs_of(client, rollup)) == 1
    ads = client.freshness("ads", "acme")
    assert ads.last_success_at == at("2027-03-02 09:00")
    assert ads.last_attempt_failed
    assert client.get_job(rollup.id).next_run_at is None
    assert runs_of(client, sync)[-1].status == "failed"


def test_a_paused_producer_triggers_nothing_until_resumed(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    sync = client.add_job("command", "0 * * * *", brand_id="acme", parameters=produces("ads"))
    rollup = client.add_job("command", brand_id="acme", parameters=produces("roas"), after=["ads"])
    client.pause(sync.id)
    clock.move_to(at("2027-03-02 12:30"))
    assert work().completed == 0
    client.resume(sync.id)
    clock.move_to(at("2027-03-02 13:00"))
    assert work().completed == 2
    assert [run.triggered_by[0]["at"] for run in runs_of(client, rollup)] == [
        at("2027-03-02 13:00").isoformat()
    ]


def test_catch_up_after_downtime_is_one_run(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    client.add_job("command", "0 6 * * *", parameters=produces("fx"))
    client.add_job("command", "0 6 * * *", brand_id="acme", parameters=produces("ads"))
    rollup = client.add_job(
        "command", brand_id="acme", parameters=produces("roas"), after=["ads", "global:fx"]
    )
    client.pause(rollup.id)
    for hour in ("09", "10", "11"):  # three manual syncs of ads, one of fx
        clock.move_to(at(f"2027-03-02 {hour}:00"))
        client.enqueue("command", "acme", produces("ads"), allow_duplicate=True)
        assert work().completed == 1
    assert client.get_job(rollup.id).triggered_at is None  # fx has not refreshed yet
    client.enqueue("command", None, produces("fx"))
    assert work().completed == 1
    assert client.get_job(rollup.id).triggered_at == at("2027-03-02 11:00")

    clock.move_to(at("2027-03-02 15:00"))  # the consumer was paused (the worker "down")
    client.resume(rollup.id)
    assert work().completed == 1
    (run,) = runs_of(client, rollup)
    by_input = {item["dataset"]: item for item in run.triggered_by}
    assert by_input["ads"]["successes"] == 3
    assert by_input["ads"]["at"] == at("2027-03-02 11:00").isoformat()
    assert by_input["global:fx"]["brand_id"] is None
    assert work().completed == 0


def test_a_hold_waits_for_fresh_input_then_runs(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    client.set_threshold("ads", warn_after=timedelta(hours=1), error_after=timedelta(hours=2))
    client.add_job("command", "0 6 * * *", brand_id="acme", parameters=produces("ads"))
    report = client.add_job(
        "command",
        "0 9 * * *",
        brand_id="acme",
        parameters=produces("report"),
        requires_fresh=["ads"],
    )
    clock.move_to(at("2027-03-02 09:00"))
    assert work().completed == 0
    held = client.get_job(report.id)
    assert held.status == "active" and held.held_since == at("2027-03-02 09:00")
    assert held.waiting_on == "waiting for acme/ads (never succeeded)"
    (waiting,) = client.waiting([held]).values()
    assert waiting.to_json()["requires_fresh"] == ["ads"]
    assert runs_of(client, report) == []

    clock.move_to(at("2027-03-02 09:30"))
    client.enqueue("command", "acme", produces("ads"))
    assert work().completed == 2  # the sync, then at once the held report
    (run,) = runs_of(client, report)
    assert run.started_at == at("2027-03-02 09:30")
    job = client.get_job(report.id)
    assert (job.held_since, job.waiting_on) == (None, None)
    assert job.next_run_at == at("2027-03-03 09:00")


def test_a_hold_past_max_hold_fails_the_run_and_retries(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    client.add_job("command", "0 6 * * *", brand_id="acme", parameters=produces("ads"))
    report = client.add_job(
        "command",
        "0 9 * * *",
        brand_id="acme",
        parameters=produces("report"),
        requires_fresh=["ads"],
        max_hold=timedelta(hours=2),
        max_retries=1,
    )
    clock.move_to(at("2027-03-02 09:00"))
    work()
    clock.move_to(at("2027-03-02 10:59"))
    assert (work().failed, client.get_job(report.id).held_since) == (0, at("2027-03-02 09:00"))
    # The recovery sweep and other jobs are not blocked meanwhile.
    other = client.enqueue("command", "acme", {"command": "true"})
    assert work().completed == 1
    assert client.get_job(other.id).status == "archived"

    clock.move_to(at("2027-03-02 11:00"))
    assert work().failed == 1
    (run,) = runs_of(client, report)
    assert run.error_message == (
        "held longer than max-hold (2h): waiting for acme/ads (never succeeded)"
    )
    job = client.get_job(report.id)
    assert (job.retry_count, job.next_run_at) == (1, at("2027-03-02 11:05"))
    assert (job.held_since, job.waiting_on) == (None, None)
    assert client.freshness("report", "acme").last_attempt_failed

    # The retry is held again, for a max-hold of its own, then fails: retries exhausted, the
    # job back on its cron.
    clock.move_to(at("2027-03-02 11:05"))
    assert work().failed == 0
    clock.move_to(at("2027-03-02 13:05"))
    assert work().failed == 1
    job = client.get_job(report.id)
    assert (job.retry_count, job.next_run_at) == (0, at("2027-03-03 09:00"))


def test_after_with_a_cron_runs_on_new_data_or_on_its_cron(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    """`--after` with `--cron` means either (docs/concepts.md): a triggered run before the cron
    time, a cron run with no new data, and a cron run that takes the successes pending."""
    rollup = client.add_job(
        "command",
        "0 12 * * *",
        brand_id="acme",
        name="rollup",
        parameters=produces("roas"),
        after=["ads", "clicks"],
        allow_unknown=True,  # the syncs are manual: no job declares them
    )
    assert (rollup.schedule_type, rollup.next_run_at) == ("recurring", at("2027-03-02 12:00"))

    def sync(dataset: str) -> None:
        client.enqueue("command", "acme", produces(dataset), allow_duplicate=True)

    clock.move_to(at("2027-03-02 09:00"))
    sync("ads")
    sync("clicks")
    assert work().completed == 3  # both syncs, then the run they trigger
    (triggered,) = runs_of(client, rollup)
    assert triggered.started_at == at("2027-03-02 09:00")
    assert sorted(item["dataset"] for item in triggered.triggered_by) == ["ads", "clicks"]
    job = client.get_job(rollup.id)
    assert (job.next_run_at, job.triggered_at) == (at("2027-03-02 12:00"), None)  # cron kept

    clock.move_to(at("2027-03-02 12:00"))
    assert work().completed == 1
    cron_run = runs_of(client, rollup)[-1]
    assert (cron_run.started_at, cron_run.triggered_by) == (at("2027-03-02 12:00"), [])

    clock.move_to(at("2027-03-02 14:00"))
    sync("ads")  # one input of two: pending, not ready
    assert work().completed == 1
    assert len(runs_of(client, rollup)) == 2
    assert client.get_job(rollup.id).next_run_at == at("2027-03-03 12:00")

    clock.move_to(at("2027-03-03 12:00"))
    assert work().completed == 1
    taking = runs_of(client, rollup)[-1]
    assert taking.triggered_by == [
        {
            "dataset": "ads",
            "brand_id": "acme",
            "run_id": taking.triggered_by[0]["run_id"],
            "at": at("2027-03-02 14:00").isoformat(),
            "successes": 1,
        }
    ]
    # The cron run took ads' success: clicks alone makes nothing ready.
    clock.move_to(at("2027-03-03 13:00"))
    sync("clicks")
    assert work().completed == 1
    assert len(runs_of(client, rollup)) == 3
    assert client.get_job(rollup.id).triggered_at is None


def test_edit_cron_makes_a_data_triggered_job_recurring_and_a_refused_edit_writes_nothing(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    client.add_job("command", "0 6 * * *", brand_id="acme", parameters=produces("ads"))
    rollup = client.add_job("command", brand_id="acme", parameters=produces("roas"), after=["ads"])
    for refused in (
        {"requires_fresh": ["ads"], "timezone": "Europe/Paris"},  # no cron to put it in
        {"requires_fresh": ["ads"], "cron_expression": "0 * * * *", "max_retries": 500},
        {"after": ["ads"], "requires_fresh": ["roas"]},  # a cycle
    ):
        with pytest.raises(InvalidInput):
            client.edit_job(rollup.id, **refused)  # type: ignore[arg-type]
        assert client.get_job(rollup.id) == rollup, refused

    edited = client.edit_job(rollup.id, cron_expression="0 * * * *", requires_fresh=["ads"])
    assert (edited.schedule_type, edited.cron_expression) == ("recurring", "0 * * * *")
    assert edited.next_run_at == at("2027-03-02 09:00")
    assert [item["kind"] for item in edited.inputs] == ["after", "fresh"]
    clock.move_to(at("2027-03-02 09:00"))
    client.enqueue("command", "acme", produces("ads"))
    assert work().completed == 2  # the sync, and the job on its new cron (ads now fresh)
    (run,) = runs_of(client, rollup)
    assert run.triggered_by[0]["dataset"] == "ads"
