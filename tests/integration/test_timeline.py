"""Timelines under a frozen clock: the real worker and Client over each real store (SQLite,
PostgreSQL, Supabase: see conftest.py).

Each test moves freezegun's clock to the instants that matter and runs one real worker pass
(`Worker(url, settings, once=True).run()`, in-process) at each. Handlers run in a thread of
their own; freezegun freezes `time.monotonic` too, which only means that job timeouts and the
shutdown grace cannot expire in these tests (the worker's supervision loop waits on a
`threading.Event`, which uses real time, so a pass never hangs). None of these jobs has a timeout.
The fall-back DST test is the exception: it sets pipectl's clock by hand (see its docstring).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from pipectl import clock as pipectl_clock
from pipectl.client import Client
from pipectl.lifecycle import run_result
from pipectl.models import Job, Recorded, Run
from pipectl.settings import Settings
from pipectl.worker import Worker, WorkerStats

HERE = Path(__file__).resolve().parent
FAIL = {"command": "exit 1"}


def at(text: str) -> datetime:
    """'2026-01-10 03:05' (UTC) as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time("2026-01-10 02:00:00+00:00") as frozen:
        yield frozen


Work = Callable[[], WorkerStats]


@pytest.fixture
def work(store_url: str, settings: Settings) -> Work:
    """One real worker pass (`run-worker --once`) over the test's store."""

    def one_pass() -> WorkerStats:
        return Worker(store_url, settings, worker_id="timeline", once=True).run()

    return one_pass


def runs_of(client: Client, job: Job) -> list[Run]:
    """The job's runs, oldest first."""
    return list(reversed(client.list_runs(job_id=job.id, limit=1000)))


def flag_command(flag: Path) -> dict[str, str]:
    """A command that fails while `flag` exists."""
    return {"command": f"test ! -e {shlex.quote(str(flag))}"}


# -- (a) the retry timeline of a failing recurring job ----------------------------------------


def test_failing_recurring_job_backs_off_then_returns_to_cron(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    job = client.add_job("command", "0 3 * * *", parameters=FAIL)
    assert job.next_run_at == at("2026-01-10 03:00")

    clock.move_to(at("2026-01-10 02:59:59"))
    assert work().failed == 0  # not due yet

    timeline = [
        # run at,             retry_count after, next_run_at after
        ("2026-01-10 03:00", 1, "2026-01-10 03:05"),
        ("2026-01-10 03:05", 2, "2026-01-10 03:15"),
        ("2026-01-10 03:15", 3, "2026-01-10 03:35"),
        ("2026-01-10 03:35", 0, "2026-01-11 03:00"),  # the 4th failure: back to cron
    ]
    for run_at, retry_count, next_run_at in timeline:
        clock.move_to(at(run_at) - timedelta(seconds=1))
        assert work().failed == 0, f"ran before {run_at}"
        clock.move_to(at(run_at))
        stats = work()
        assert (stats.failed, stats.completed) == (1, 0), run_at
        job = client.get_job(job.id)
        assert job.status == "active"
        assert (job.retry_count, job.next_run_at) == (retry_count, at(next_run_at)), run_at
        assert job.last_error == "command exited with status 1"

    runs = runs_of(client, job)
    assert [(r.attempt, r.started_at, r.status) for r in runs] == [
        (1, at("2026-01-10 03:00"), "failed"),
        (2, at("2026-01-10 03:05"), "failed"),
        (3, at("2026-01-10 03:15"), "failed"),
        (4, at("2026-01-10 03:35"), "failed"),
    ]
    assert all(r.error_message == "command exited with status 1" for r in runs)

    # The next day the cycle starts over from attempt 1.
    clock.move_to(at("2026-01-11 03:00"))
    assert work().failed == 1
    job = client.get_job(job.id)
    assert (job.retry_count, job.next_run_at) == (1, at("2026-01-11 03:05"))
    assert runs_of(client, job)[-1].attempt == 1


# -- (b) a one-time job that always fails -----------------------------------------------------


@pytest.mark.parametrize("max_retries", [0, 3])
def test_failing_one_time_job_ends_failed_after_max_retries(
    client: Client, work: Work, clock: FrozenDateTimeFactory, max_retries: int
) -> None:
    job = client.enqueue("command", parameters={"command": "exit 3"}, max_retries=max_retries)
    now = at("2026-01-10 02:00")
    for attempt in range(1, max_retries + 2):
        clock.move_to(now)
        assert work().failed == 1, attempt
        job = client.get_job(job.id)
        if attempt <= max_retries:
            delay = timedelta(minutes=5 * 2 ** (attempt - 1))
            assert (job.status, job.retry_count, job.next_run_at) == (
                "active",
                attempt,
                now + delay,
            )
            now += delay
    assert job.status == "failed"
    assert job.next_run_at is None
    assert job.retry_count == max_retries + 1
    assert job.last_error == "command exited with status 3"

    clock.move_to(at("2026-02-01 00:00"))
    assert work().failed == 0  # a failed job never runs again on its own
    assert len(runs_of(client, job)) == max_retries + 1
    assert [j.id for j in client.list_jobs(status="failed")] == [job.id]


# -- (c) a retry is never later than the next regular occurrence -------------------------------


def test_retries_never_later_than_the_next_regular_occurrence(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    clock.move_to(at("2026-01-10 00:01"))
    job = client.add_job("command", "*/10 * * * *", parameters=FAIL)
    timeline = [
        ("2026-01-10 00:10", 1, "2026-01-10 00:15"),  # +5 min comes before 00:20
        ("2026-01-10 00:15", 2, "2026-01-10 00:20"),  # +10 min would be 00:25
        ("2026-01-10 00:20", 3, "2026-01-10 00:30"),  # +20 min would be 00:40
        ("2026-01-10 00:30", 0, "2026-01-10 00:40"),  # exhausted: back on the schedule
    ]
    for run_at, retry_count, next_run_at in timeline:
        clock.move_to(at(run_at))
        assert work().failed == 1, run_at
        job = client.get_job(job.id)
        assert (job.retry_count, job.next_run_at) == (retry_count, at(next_run_at)), run_at


# -- (d) a success after failures resets the retry count --------------------------------------


def test_success_after_failures_resets_retry_count(
    client: Client, work: Work, clock: FrozenDateTimeFactory, tmp_path: Path
) -> None:
    flag = tmp_path / "broken"
    flag.touch()
    job = client.add_job("command", "0 3 * * *", parameters=flag_command(flag))

    for run_at in ("2026-01-10 03:00", "2026-01-10 03:05"):
        clock.move_to(at(run_at))
        assert work().failed == 1
    assert client.get_job(job.id).retry_count == 2
    assert [j.id for j in client.jobs_in_backoff()] == [job.id]

    flag.unlink()
    clock.move_to(at("2026-01-10 03:15"))
    assert work().completed == 1
    job = client.get_job(job.id)
    assert (job.status, job.retry_count, job.last_error) == ("active", 0, None)
    assert job.next_run_at == at("2026-01-11 03:00")
    assert client.jobs_in_backoff() == []

    # A fresh budget: the next failure starts the backoff over at 5 minutes.
    flag.touch()
    clock.move_to(at("2026-01-11 03:00"))
    assert work().failed == 1
    job = client.get_job(job.id)
    assert (job.retry_count, job.next_run_at) == (1, at("2026-01-11 03:05"))


def test_one_time_job_succeeding_on_retry_is_archived(
    client: Client, work: Work, clock: FrozenDateTimeFactory, tmp_path: Path
) -> None:
    flag = tmp_path / "broken"
    flag.touch()
    job = client.enqueue("command", parameters=flag_command(flag))
    assert work().failed == 1
    flag.unlink()
    clock.move_to(at("2026-01-10 02:05"))
    assert work().completed == 1
    job = client.get_job(job.id)
    assert (job.status, job.retry_count, job.next_run_at, job.last_error) == (
        "archived",
        0,
        None,
        None,
    )


# -- (e) freshness only ever comes from a success ---------------------------------------------


def test_failed_runs_never_make_data_fresh(
    client: Client, work: Work, clock: FrozenDateTimeFactory, tmp_path: Path
) -> None:
    flag = tmp_path / "broken"
    flag.touch()
    client.add_job(
        "command",
        "0 3 * * *",
        brand_id="acme",
        parameters={**flag_command(flag), "datasets": ["orders"]},
    )
    before = client.freshness("orders", "acme")
    assert (before.state, before.last_attempt_at, before.last_attempt_failed) == (
        "never",
        None,
        False,
    )

    clock.move_to(at("2026-01-10 03:00"))
    assert work().failed == 1
    failed = client.freshness("orders", "acme")
    assert failed.state == "never"
    assert failed.last_success_at is None
    assert failed.last_attempt_at == at("2026-01-10 03:00")
    assert failed.last_attempt_failed is True
    assert failed.last_error == "command exited with status 1"

    flag.unlink()
    clock.move_to(at("2026-01-10 03:05"))
    assert work().completed == 1
    fresh = client.freshness("orders", "acme")
    assert fresh.state == "fresh"
    assert fresh.last_success_at == fresh.last_attempt_at == at("2026-01-10 03:05")
    assert fresh.last_attempt_failed is False
    assert fresh.last_error is None

    flag.touch()
    clock.move_to(at("2026-01-11 03:00"))
    assert work().failed == 1
    after = client.freshness("orders", "acme")
    assert after.last_success_at == at("2026-01-10 03:05")  # kept
    assert after.last_attempt_at == at("2026-01-11 03:00")
    assert after.last_attempt_failed is True
    assert after.last_error == "command exited with status 1"
    assert after.state == "fresh"  # 23h55m old: the failure did not change its age

    # The failing retries do not refresh it either: it ages into warn, then stale.
    for run_at in ("2026-01-11 03:05", "2026-01-11 03:15", "2026-01-11 03:35"):
        clock.move_to(at(run_at))
        assert work().failed == 1
    assert client.freshness("orders", "acme").state == "warn"
    clock.move_to(at("2026-01-12 03:05:01"))
    assert client.freshness("orders", "acme").state == "stale"
    assert client.status().check_failed


# -- (f) step-level and non-fatal freshness ---------------------------------------------------


def steps_command(*records: dict[str, object], exit_code: int = 0) -> str:
    lines = " ".join(shlex.quote(json.dumps(record)) for record in records)
    return f'printf "%s\\n" {lines} >> "$PIPECTL_STEPS_FILE"; exit {exit_code}'


def test_command_job_steps_record_freshness_per_dataset(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    command = steps_command(
        {"step": "performance", "status": "completed", "datasets": ["ads_performance"]},
        {
            "step": "thumbnails",
            "status": "failed",
            "datasets": "thumbnails",
            "fatal": False,
            "error": "CDN timeout",
        },
    )
    job = client.enqueue(
        "command", "acme", {"command": command, "datasets": ["ads_performance", "campaigns"]}
    )
    assert work().completed == 1

    (run,) = runs_of(client, job)
    assert run.status == "completed"
    assert [(s["name"], s["status"], s["fatal"], s["brand_id"]) for s in run.steps] == [
        ("performance", "completed", True, "acme"),
        ("thumbnails", "failed", False, "acme"),
    ]
    assert client.get_job(job.id).status == "archived"

    performance = client.freshness("ads_performance", "acme")
    assert (performance.state, performance.last_attempt_failed) == ("fresh", False)
    thumbnails = client.freshness("thumbnails", "acme")
    assert (thumbnails.state, thumbnails.last_attempt_failed) == ("never", True)
    assert thumbnails.last_error == "step thumbnails: CDN timeout"
    assert thumbnails.last_attempt_at == at("2026-01-10 02:00")
    # Declared but reported by no step: takes the run's outcome.
    assert client.freshness("campaigns", "acme").state == "fresh"


def test_command_job_fatal_step_fails_the_run_even_with_exit_0(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    command = steps_command(
        {"step": "performance", "status": "ok", "datasets": ["ads_performance"]},
        {"step": "load", "status": "failed", "datasets": ["orders"], "error": "disk full"},
        "not json",  # a malformed line is logged and ignored
    )
    job = client.enqueue("command", "acme", {"command": command})
    assert work().failed == 1

    (run,) = runs_of(client, job)
    assert run.error_message == "step load failed: disk full"
    assert "ignoring malformed step line 3" in run.logs
    job = client.get_job(job.id)
    assert (job.status, job.retry_count) == ("active", 1)
    assert client.freshness("ads_performance", "acme").state == "fresh"
    orders = client.freshness("orders", "acme")
    assert (orders.state, orders.last_error) == ("never", "step load: disk full")


@pytest.fixture
def helpers_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker imports `python` job targets in-process: put helpers_jobs on sys.path."""
    monkeypatch.syspath_prepend(str(HERE))


@pytest.mark.usefixtures("helpers_importable")
def test_python_job_non_fatal_step_keeps_the_run_completed(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    job = client.add_job(
        "python",
        "0 3 * * *",
        brand_id="acme",
        parameters={"target": "helpers_jobs:performance_and_thumbnails"},
    )
    clock.move_to(at("2026-01-10 03:00"))
    assert work().completed == 1

    (run,) = runs_of(client, job)
    assert run.status == "completed"
    assert "step thumbnails failed: CDN timeout" in run.logs
    job = client.get_job(job.id)
    assert (job.status, job.retry_count, job.next_run_at) == ("active", 0, at("2026-01-11 03:00"))
    assert client.freshness("ads_performance", "acme").state == "fresh"
    thumbnails = client.freshness("thumbnails", "acme")
    assert (thumbnails.state, thumbnails.last_attempt_failed) == ("never", True)
    assert thumbnails.last_error == "step thumbnails: CDN timeout"


@pytest.mark.usefixtures("helpers_importable")
def test_python_job_fatal_step_fails_the_run_but_keeps_earlier_steps_fresh(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    job = client.enqueue("python", "acme", {"target": "helpers_jobs:fatal_thumbnails"})
    assert work().failed == 1
    (run,) = runs_of(client, job)
    assert run.error_message == "RuntimeError: CDN timeout"
    assert client.get_job(job.id).retry_count == 1
    assert client.freshness("ads_performance", "acme").state == "fresh"
    assert client.freshness("thumbnails", "acme").last_attempt_failed is True


@pytest.mark.usefixtures("helpers_importable")
def test_global_python_job_reports_per_brand_freshness(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    client.enqueue(
        "python",
        None,
        {"target": "helpers_jobs:per_brand", "brands": ["acme", "globex"], "failing": ["globex"]},
    )
    assert work().completed == 1
    assert client.freshness("ads_performance", "acme").state == "fresh"
    globex = client.freshness("ads_performance", "globex")
    assert (globex.state, globex.last_error) == (
        "never",
        "step performance globex: API error for globex",
    )
    assert client.freshness("ads_performance", None).last_attempt_at is None


def test_python_job_with_missing_target_fails_with_a_clear_error(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    job = client.enqueue("python", "acme", {"target": "no_such_module_here:run"})
    assert work().failed == 1
    (run,) = runs_of(client, job)
    assert run.error_message.startswith("cannot load target 'no_such_module_here:run'")


# -- (g) a completed one-time job is archived -------------------------------------------------


def test_completed_one_time_job_is_archived_not_deleted(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    job = client.enqueue("noop", "acme", run_at=at("2026-01-10 02:30"))
    assert work().completed == 0  # not due until 02:30
    clock.move_to(at("2026-01-10 02:30"))
    assert work().completed == 1
    job = client.get_job(job.id)
    assert (job.status, job.next_run_at, job.retry_count) == ("archived", None, 0)
    assert [j.id for j in client.list_jobs(status="archived")] == [job.id]
    (run,) = runs_of(client, job)
    assert (run.status, run.finished_at) == ("completed", at("2026-01-10 02:30"))

    clock.move_to(at("2026-01-11 00:00"))
    assert work().completed == 0  # it never runs again


# -- (h) enqueue dedupe -----------------------------------------------------------------------


def test_enqueue_dedupes_identical_pending_jobs(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    first = client.enqueue_job("noop", "acme", {"limit": 10})
    assert first.created

    same = client.enqueue_job("noop", "acme", {"limit": 10})
    assert (same.created, same.job.id) == (False, first.job.id)

    duplicate = client.enqueue_job("noop", "acme", {"limit": 10}, allow_duplicate=True)
    assert duplicate.created and duplicate.job.id != first.job.id

    other_params = client.enqueue_job("noop", "acme", {"limit": 11})
    other_brand = client.enqueue_job("noop", "globex", {"limit": 10})
    other_type = client.enqueue_job("sleep", "acme", {"limit": 10, "seconds": 0})
    assert other_params.created and other_brand.created and other_type.created
    ids = {first.job.id, duplicate.job.id, other_params.job.id, other_brand.job.id}
    assert len(ids | {other_type.job.id}) == 5

    # Parameter order does not make a job different.
    reordered = client.enqueue_job("noop", "acme", {"b": 1, "a": 2})
    assert client.enqueue_job("noop", "acme", {"a": 2, "b": 1}).job.id == reordered.job.id

    assert work().completed == 6
    assert client.get_job(first.job.id).status == "archived"

    again = client.enqueue_job("noop", "acme", {"limit": 10})
    assert again.created
    assert again.job.id not in ids


def test_enqueue_dedupes_against_a_job_waiting_to_retry(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    first = client.enqueue("command", "acme", FAIL)
    assert work().failed == 1
    retrying = client.enqueue_job("command", "acme", FAIL)
    assert (retrying.created, retrying.job.id, retrying.job.retry_count) == (False, first.id, 1)


# -- (i) missed schedules after downtime run once --------------------------------------------


def test_missed_schedules_after_downtime_run_once(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    clock.move_to(at("2026-01-10 00:30"))
    job = client.add_job("noop", "0 * * * *")
    assert job.next_run_at == at("2026-01-10 01:00")

    clock.move_to(at("2026-01-10 11:20"))  # ten hourly slots missed
    stats = work()
    assert stats.completed == 1
    assert len(runs_of(client, job)) == 1
    job = client.get_job(job.id)
    assert job.next_run_at == at("2026-01-10 12:00")

    assert work().completed == 0
    clock.move_to(at("2026-01-10 12:00"))
    assert work().completed == 1


# -- (j) DST: a daily 01:30 New York job on the fall-back day --------------------------------


class ManualClock:
    """pipectl's clock, set by hand (see the DST test for why not freezegun)."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current


@pytest.fixture
def manual_clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    manual = ManualClock(at("2026-10-31 12:00"))
    monkeypatch.setattr(pipectl_clock, "now", manual.now)
    return manual


def test_daily_0130_new_york_job_runs_once_on_fall_back_day(
    client: Client, work: Work, manual_clock: ManualClock
) -> None:
    """Driven through pipectl's injectable clock, not freezegun: freezegun 1.5.5 drops `fold`
    whenever it converts a datetime to its FakeDatetime (spulec/freezegun#422), and croniter
    creates datetimes through the patched `datetime` module, so under freeze_time croniter never
    steps past the repeated 01:30 EST and every next_occurrence on that day raises."""
    daily = client.add_job("noop", "30 1 * * *", timezone="America/New_York", brand_id="daily")
    manual_clock.current = at("2026-11-01 03:59")
    half_hourly = client.add_job(
        "noop", "*/30 * * * *", timezone="America/New_York", brand_id="half-hourly"
    )
    assert daily.next_run_at == at("2026-11-01 05:30")

    # Every quarter hour from 00:00 EDT to 03:00 EST: both 01:xx hours and their edges.
    manual_clock.current = at("2026-11-01 04:00")
    while manual_clock.current <= at("2026-11-01 08:00"):
        work()
        manual_clock.current += timedelta(minutes=15)
    manual_clock.current = at("2026-11-02 04:59")  # 23:59 EST, the end of the local day
    work()

    assert [r.started_at for r in runs_of(client, daily)] == [at("2026-11-01 05:30")]
    assert client.get_job(daily.id).next_run_at == at("2026-11-02 06:30")  # 01:30 EST

    # The half-hourly job ran through both repeated hours; the late pass ran it once more.
    assert [r.started_at for r in runs_of(client, half_hourly)] == [
        at("2026-11-01 04:00"),
        at("2026-11-01 04:30"),
        at("2026-11-01 05:00"),  # 01:00 EDT
        at("2026-11-01 05:30"),  # 01:30 EDT
        at("2026-11-01 06:00"),  # 01:00 EST
        at("2026-11-01 06:30"),  # 01:30 EST
        at("2026-11-01 07:00"),
        at("2026-11-01 07:30"),
        at("2026-11-01 08:00"),
        at("2026-11-02 04:59"),
    ]


def test_daily_0230_new_york_job_runs_at_0300_on_spring_forward_day(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    clock.move_to(at("2026-03-07 12:00"))
    job = client.add_job("noop", "30 2 * * *", timezone="America/New_York")
    assert job.next_run_at == at("2026-03-08 07:00")  # 03:00 EDT
    clock.move_to(at("2026-03-08 06:59:59"))
    assert work().completed == 0
    clock.move_to(at("2026-03-08 07:00"))
    assert work().completed == 1
    assert client.get_job(job.id).next_run_at == at("2026-03-09 06:30")  # 02:30 EDT


# -- (k) recovery of stuck runs ---------------------------------------------------------------


def test_stuck_run_is_failed_and_its_job_retried(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    # This test pins the heartbeat threshold; the start grace has its own test below.
    client.settings = client.settings.model_copy(
        update={"start_grace": client.settings.stale_after}
    )
    job = client.enqueue("noop", "acme", {"datasets": ["orders"]})
    (claim,) = client.store.claim_due("dead-worker", at("2026-01-10 02:00"), 1)
    assert claim.job.id == job.id
    assert client.get_job(job.id).status == "running"

    stale_after = client.settings.stale_after
    clock.move_to(at("2026-01-10 02:00") + stale_after)
    assert client.recover() == []  # exactly stale_after old is not yet stuck
    assert client.get_run(claim.run.id).status == "running"

    clock.move_to(at("2026-01-10 02:00") + stale_after + timedelta(seconds=1))
    now = at("2026-01-10 02:05:01")
    (recovered,) = client.recover()
    assert recovered.run.id == claim.run.id

    run = client.get_run(claim.run.id)
    assert run.status == "failed"
    assert run.finished_at == now
    assert "stuck" in (run.error_message or "")
    assert "dead-worker" in (run.error_message or "")
    job = client.get_job(job.id)
    assert (job.status, job.retry_count) == ("active", 1)
    assert job.next_run_at == now + timedelta(minutes=5)
    assert "stuck" in (job.last_error or "")
    orders = client.freshness("orders", "acme")
    assert (orders.state, orders.last_attempt_failed) == ("never", True)

    assert client.recover() == []

    # The retry runs like any other.
    clock.move_to(now + timedelta(minutes=5))
    assert work().completed == 1
    assert client.get_job(job.id).status == "archived"
    assert [r.attempt for r in runs_of(client, job)] == [1, 2]


def test_worker_pass_sweeps_stuck_runs_first(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    job = client.add_job("noop", "0 3 * * *")
    clock.move_to(at("2026-01-10 03:00"))
    client.store.claim_due("dead-worker", at("2026-01-10 03:00"), 1)
    clock.move_to(at("2026-01-10 03:10"))
    stats = work()
    assert (stats.recovered, stats.completed, stats.failed) == (1, 0, 0)
    job = client.get_job(job.id)
    assert (job.status, job.retry_count, job.next_run_at) == (
        "active",
        1,
        at("2026-01-10 03:15"),
    )
    clock.move_to(at("2026-01-10 03:15"))
    assert work().completed == 1
    assert client.get_job(job.id).retry_count == 0


def test_recovery_leaves_alone_a_run_that_finished_after_it_was_found(
    client: Client, clock: FrozenDateTimeFactory
) -> None:
    job = client.enqueue("noop", "acme")
    (claim,) = client.store.claim_due("slow-worker", at("2026-01-10 02:00"), 1)
    clock.move_to(at("2026-01-10 02:10"))
    cutoff = at("2026-01-10 02:10") - client.settings.stale_after
    assert [c.run.id for c in client.store.stuck_runs(cutoff, cutoff)] == [claim.run.id]

    done = run_result(claim.job, at("2026-01-10 02:10"), error=None)
    assert client.store.finish_run(claim.run.id, claim.run.lease_token, done)
    stuck = run_result(claim.job, at("2026-01-10 02:10"), error="stuck: test")
    assert client.store.fail_stuck_run(claim.run.id, cutoff, cutoff, stuck) is Recorded.LOST

    run = client.get_run(claim.run.id)
    assert (run.status, run.error_message) == ("completed", None)
    job = client.get_job(job.id)
    assert (job.status, job.retry_count, job.last_error) == ("archived", 0, None)


def test_recovery_leaves_alone_a_run_that_heartbeat_after_it_was_found(
    client: Client, clock: FrozenDateTimeFactory
) -> None:
    client.enqueue("noop", "acme")
    (claim,) = client.store.claim_due("slow-worker", at("2026-01-10 02:00"), 1)
    clock.move_to(at("2026-01-10 02:10"))
    cutoff = at("2026-01-10 02:10") - client.settings.stale_after
    assert (
        client.store.heartbeat(
            "slow-worker", [(claim.run.id, claim.run.lease_token)], at("2026-01-10 02:10")
        )
        == []
    )
    stuck = run_result(claim.job, at("2026-01-10 02:10"), error="stuck: test")
    assert client.store.fail_stuck_run(claim.run.id, cutoff, cutoff, stuck) is Recorded.LOST
    assert client.get_run(claim.run.id).status == "running"
    assert client.recover() == []


def test_a_run_without_a_first_heartbeat_is_stuck_after_the_start_grace(
    client: Client, work: Work, clock: FrozenDateTimeFactory
) -> None:
    """A worker that died right after claiming is caught by the start grace (1 min by default),
    long before stale_after (5 min); a run that heartbeats keeps the longer threshold."""
    silent = client.enqueue("noop", "acme", {"n": 1}, concurrency_key=None)
    beating = client.enqueue("noop", "acme", {"n": 2}, concurrency_key=None)
    claims = client.store.claim_due("dead-worker", at("2026-01-10 02:00"), 2)
    beat = next(c for c in claims if c.job.id == beating.id)
    client.store.heartbeat(
        "dead-worker", [(beat.run.id, beat.run.lease_token)], at("2026-01-10 02:00:05")
    )
    clock.move_to(at("2026-01-10 02:00") + client.settings.start_grace + timedelta(seconds=1))
    (recovered,) = client.recover()
    assert recovered.job.id == silent.id
    assert "since the run started" in (client.get_run(recovered.run.id).error_message or "")
    assert client.get_run(beat.run.id).status == "running"


# -- (f) an operator's edit made during a run stands -------------------------------------------


@pytest.mark.usefixtures("helpers_importable")
@pytest.mark.parametrize("fail", [False, True])
def test_an_edit_made_during_a_run_outlives_the_run(
    client: Client, work: Work, clock: FrozenDateTimeFactory, store_url: str, fail: bool
) -> None:
    edit = {"cron_expression": "*/5 * * * *", "max_retries": 0}
    job = client.add_job(
        "python",
        "0 3 * * *",
        brand_id="acme",
        max_retries=3,
        parameters={
            "target": "helpers_jobs:edited_mid_run",
            "url": store_url,
            "edit": edit,
            "fail": fail,
            "datasets": ["orders"],
        },
    )
    clock.move_to(at("2026-01-10 03:02"))
    stats = work()
    assert (stats.completed, stats.failed) == ((0, 1) if fail else (1, 0))

    job = client.get_job(job.id)
    assert (job.cron_expression, job.max_retries) == ("*/5 * * * *", 0)
    # From the edited schedule; as claimed it would be the next day's 03:00 after a success, and
    # retry 1 of 3 at 03:07 after a failure.
    assert job.next_run_at == at("2026-01-10 03:05")
    assert (job.status, job.retry_count) == ("active", 0)
    assert job.last_error == ("boom" if fail else None)
    (run,) = runs_of(client, job)
    assert run.status == ("failed" if fail else "completed")
    orders = client.freshness("orders", "acme")
    assert orders.state == ("never" if fail else "fresh")
