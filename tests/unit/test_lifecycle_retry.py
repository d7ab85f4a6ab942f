"""lifecycle.py's retry rule: backoff delays, the next regular occurrence as a ceiling, exhaustion,
success."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import factories
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl.lifecycle import after_failure, after_last_retry, after_success, retry_delay
from pipectl.models import Job
from pipectl.schedule import next_occurrence

BASE = timedelta(minutes=5)
CAP = timedelta(minutes=60)
T0 = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)


def make_job(**overrides: Any) -> Job:
    """A recurring daily 03:00 UTC job, running, with the default retry settings; override any
    field."""
    return factories.make_job(
        **{
            "next_run_at": T0,
            "status": "running",
            "retry_base_seconds": int(BASE.total_seconds()),
            "retry_cap_seconds": int(CAP.total_seconds()),
            "created_at": T0 - timedelta(days=1),
            "updated_at": T0,
            **overrides,
        }
    )


def one_time(**overrides: Any) -> Job:
    return make_job(schedule_type="one_time", cron_expression=None, **overrides)


# -- retry_delay ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_count", "minutes"), [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (6, 60), (50, 60)]
)
def test_retry_delay_doubles_from_base_and_is_capped(retry_count: int, minutes: int) -> None:
    assert retry_delay(retry_count, BASE, CAP) == timedelta(minutes=minutes)


def test_retry_delay_with_huge_retry_count_stays_at_cap() -> None:
    assert retry_delay(10**6, BASE, CAP) == CAP


@pytest.mark.parametrize("retry_count", [0, -1])
def test_retry_delay_counts_from_one(retry_count: int) -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        retry_delay(retry_count, BASE, CAP)


# -- after_failure ----------------------------------------------------------------------------


def test_failures_back_off_5_10_20_minutes_then_return_to_cron() -> None:
    job = make_job()
    now = T0
    seen = []
    for _ in range(3):
        update = after_failure(job, now, "boom")
        assert update.status == "active"
        assert update.last_error == "boom"
        seen.append((update.retry_count, update.next_run_at - now))
        job = make_job(retry_count=update.retry_count)
        now = update.next_run_at
    assert seen == [
        (1, timedelta(minutes=5)),
        (2, timedelta(minutes=10)),
        (3, timedelta(minutes=20)),
    ]
    exhausted = after_failure(job, now, "still broken")
    assert exhausted.status == "active"
    assert exhausted.retry_count == 0
    assert exhausted.next_run_at == datetime(2026, 1, 11, 3, 0, tzinfo=UTC)
    assert exhausted.last_error == "still broken"


def test_retry_never_later_than_next_regular_occurrence() -> None:
    # Hourly job, third retry (20 min) from 10:50 would be 11:10: the 11:00 run comes first.
    job = make_job(cron_expression="0 * * * *", retry_count=2)
    now = datetime(2026, 1, 10, 10, 50, tzinfo=UTC)
    update = after_failure(job, now, "boom")
    assert update.retry_count == 3
    assert update.next_run_at == datetime(2026, 1, 10, 11, 0, tzinfo=UTC)
    assert update.status == "active"


def test_retry_before_next_regular_occurrence_uses_the_delay() -> None:
    job = make_job(cron_expression="0 * * * *", retry_count=0)
    now = datetime(2026, 1, 10, 10, 10, tzinfo=UTC)
    assert after_failure(job, now, "boom").next_run_at == now + timedelta(minutes=5)


def test_retry_ceiling_uses_the_jobs_timezone() -> None:
    # 01:00 New York (EST) is 06:00 UTC; the second retry (10 min) from 05:55 UTC would be later.
    job = make_job(cron_expression="0 1 * * *", timezone="America/New_York", retry_count=1)
    now = datetime(2026, 1, 10, 5, 55, tzinfo=UTC)
    assert after_failure(job, now, "boom").next_run_at == datetime(2026, 1, 10, 6, tzinfo=UTC)


def test_per_job_base_and_cap_are_used() -> None:
    job = one_time(retry_base_seconds=60, retry_cap_seconds=150, max_retries=5, retry_count=2)
    assert after_failure(job, T0, "boom").next_run_at == T0 + timedelta(seconds=150)
    job = one_time(retry_base_seconds=60, retry_cap_seconds=150, max_retries=5, retry_count=1)
    assert after_failure(job, T0, "boom").next_run_at == T0 + timedelta(seconds=120)


def test_exhausted_recurring_job_resets_and_returns_to_cron() -> None:
    job = make_job(cron_expression="*/10 * * * *", retry_count=3)
    now = datetime(2026, 1, 10, 4, 3, tzinfo=UTC)
    update = after_failure(job, now, "boom")
    assert update.status == "active"
    assert update.retry_count == 0
    assert update.next_run_at == datetime(2026, 1, 10, 4, 10, tzinfo=UTC)


def test_recurring_job_with_no_retries_returns_to_cron_at_once() -> None:
    update = after_failure(make_job(max_retries=0), T0, "boom")
    assert (update.status, update.retry_count) == ("active", 0)
    assert update.next_run_at == T0 + timedelta(days=1)


def test_one_time_job_retries_then_ends_failed() -> None:
    job = one_time()
    update = after_failure(job, T0, "boom")
    assert (update.status, update.retry_count) == ("active", 1)
    assert update.next_run_at == T0 + BASE

    exhausted = after_failure(one_time(retry_count=3), T0, "final")
    assert exhausted.status == "failed"
    assert exhausted.next_run_at is None
    assert exhausted.retry_count == 4
    assert exhausted.last_error == "final"


def test_one_time_job_with_no_retries_fails_on_first_failure() -> None:
    update = after_failure(one_time(max_retries=0), T0, "boom")
    assert (update.status, update.next_run_at, update.retry_count) == ("failed", None, 1)


def test_after_last_retry_in_words() -> None:
    assert after_last_retry(make_job()) == "back to its cron schedule"
    assert after_last_retry(one_time()) == "the job ends failed"


# -- after_success ----------------------------------------------------------------------------


def test_success_resets_retry_count_and_schedules_next_regular_run() -> None:
    job = make_job(retry_count=2, last_error="boom")
    now = T0 + timedelta(minutes=15)
    update = after_success(job, now)
    assert update.status == "active"
    assert update.retry_count == 0
    assert update.last_error is None
    assert update.next_run_at == datetime(2026, 1, 11, 3, tzinfo=UTC)


def test_success_archives_a_one_time_job() -> None:
    update = after_success(one_time(retry_count=1, last_error="boom"), T0)
    assert update.status == "archived"
    assert update.next_run_at is None
    assert update.retry_count == 0
    assert update.last_error is None


# -- properties -------------------------------------------------------------------------------


@given(
    retry_count=st.integers(1, 10_000),
    base_s=st.integers(1, 3_600),
    cap_s=st.integers(1, 86_400),
)
def test_delay_never_exceeds_cap_and_never_shrinks(
    retry_count: int, base_s: int, cap_s: int
) -> None:
    base, cap = timedelta(seconds=base_s), timedelta(seconds=cap_s)
    delay = retry_delay(retry_count, base, cap)
    assert timedelta(0) < delay <= cap
    assert delay.total_seconds() <= base_s * 2 ** (retry_count - 1)
    assert retry_delay(retry_count + 1, base, cap) >= delay


def test_long_base_and_many_retries_do_not_overflow() -> None:
    day = timedelta(days=1)
    assert retry_delay(31, day, day) == day
    job = make_job(
        max_retries=50, retry_count=30, retry_base_seconds=86_400, retry_cap_seconds=86_400
    )
    update = after_failure(job, T0, "boom")
    assert update.next_run_at == T0 + day
    assert update.retry_count == 31


CRONS = ["* * * * *", "*/10 * * * *", "0 * * * *", "30 1 * * *", "0 3 * * *", "15 */6 * * *"]
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata"]


@settings(max_examples=200, deadline=None)
@given(
    cron=st.sampled_from(CRONS),
    timezone=st.sampled_from(ZONES),
    now=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
    ),
    max_retries=st.integers(0, 10),
    prior=st.integers(0, 12),
    base_s=st.integers(1, 7200),
    cap_s=st.integers(1, 7200),
)
def test_failure_never_schedules_later_than_next_occurrence(
    cron: str,
    timezone: str,
    now: datetime,
    max_retries: int,
    prior: int,
    base_s: int,
    cap_s: int,
) -> None:
    job = make_job(
        cron_expression=cron,
        timezone=timezone,
        max_retries=max_retries,
        retry_count=min(prior, max_retries),
        retry_base_seconds=base_s,
        retry_cap_seconds=cap_s,
    )
    update = after_failure(job, now, "boom")
    regular = next_occurrence(cron, timezone, now)
    assert update.status == "active"
    assert update.next_run_at is not None
    assert now < update.next_run_at <= regular
    if update.retry_count == 0:
        assert job.retry_count == max_retries
        assert update.next_run_at == regular  # exhausted: back on the cron schedule
    else:
        assert update.retry_count == job.retry_count + 1 <= max_retries
        assert update.next_run_at - now <= timedelta(seconds=cap_s)
