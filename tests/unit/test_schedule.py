"""Cron evaluation in a job's own timezone: DST days, aliases, bad input, and a property test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl.errors import InvalidInput
from pipectl.schedule import check_cron, next_occurrence, zone

NEW_YORK = "America/New_York"
NY = ZoneInfo(NEW_YORK)
LORD_HOWE = "Australia/Lord_Howe"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def occurrences(expression: str, timezone: str, start: datetime, end: datetime) -> list[datetime]:
    """Every occurrence in (start, end], found by chaining next_occurrence."""
    found = []
    current = start
    while (current := next_occurrence(expression, timezone, current)) <= end:
        found.append(current)
    return found


def wall(moment: datetime) -> str:
    """New York wall time with its UTC offset, e.g. '01:30-04:00'."""
    return moment.astimezone(NY).strftime("%H:%M%z")


# -- DST in America/New_York, 2026: spring forward on 8 March, fall back on 1 November --------


def test_daily_0130_runs_once_on_the_fall_back_day() -> None:
    runs = occurrences("30 1 * * *", NEW_YORK, utc(2026, 10, 31, 12), utc(2026, 11, 2, 12))
    assert runs == [
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT, the first of the two 01:30s
        utc(2026, 11, 2, 6, 30),  # 01:30 EST the next day
    ]


@pytest.mark.parametrize(
    "after",
    [
        utc(2026, 11, 1, 5, 30),  # exactly at the run (01:30 EDT)
        utc(2026, 11, 1, 5, 45),  # 01:45 EDT, still in the first 01:xx hour
        utc(2026, 11, 1, 6, 0),  # 01:00 EST, the repeated hour starts
        utc(2026, 11, 1, 6, 15),  # 01:15 EST, just before the repeated 01:30
    ],
)
def test_daily_0130_is_not_repeated_from_inside_the_repeated_hour(after: datetime) -> None:
    assert next_occurrence("30 1 * * *", NEW_YORK, after) == utc(2026, 11, 2, 6, 30)


def test_daily_0230_runs_at_0300_on_the_spring_forward_day() -> None:
    runs = occurrences("30 2 * * *", NEW_YORK, utc(2026, 3, 7, 12), utc(2026, 3, 9, 12))
    assert runs == [
        utc(2026, 3, 8, 7, 0),  # 02:30 does not exist; 03:00 EDT is the first instant after it
        utc(2026, 3, 9, 6, 30),  # 02:30 EDT the next day
    ]
    assert wall(runs[0]) == "03:00-0400"


def test_every_30_minutes_runs_through_both_repeated_hours_on_the_fall_back_day() -> None:
    runs = occurrences("*/30 * * * *", NEW_YORK, utc(2026, 11, 1, 4, 45), utc(2026, 11, 1, 7, 0))
    assert [wall(r) for r in runs] == [
        "01:00-0400",
        "01:30-0400",
        "01:00-0500",
        "01:30-0500",
        "02:00-0500",
    ]
    assert all(b - a == timedelta(minutes=30) for a, b in pairwise(runs))


def test_every_30_minutes_skips_the_gap_on_the_spring_forward_day() -> None:
    runs = occurrences("*/30 * * * *", NEW_YORK, utc(2026, 3, 8, 5, 45), utc(2026, 3, 8, 7, 30))
    assert [wall(r) for r in runs] == ["01:00-0500", "01:30-0500", "03:00-0400", "03:30-0400"]
    # Real time keeps its 30-minute interval: 01:30 EST and 03:00 EDT are 30 minutes apart.
    assert all(b - a == timedelta(minutes=30) for a, b in pairwise(runs))


def test_hourly_runs_in_both_repeated_hours() -> None:
    runs = occurrences("0 * * * *", NEW_YORK, utc(2026, 11, 1, 4, 30), utc(2026, 11, 1, 7, 0))
    assert [wall(r) for r in runs] == ["01:00-0400", "01:00-0500", "02:00-0500"]


@pytest.mark.parametrize("hours", ["*/1", "0-23"])
def test_an_hour_field_naming_every_hour_keeps_its_interval_like_star(hours: str) -> None:
    start, end = utc(2026, 11, 1, 4, 45), utc(2026, 11, 1, 7, 0)
    assert occurrences(f"*/30 {hours} * * *", NEW_YORK, start, end) == occurrences(
        "*/30 * * * *", NEW_YORK, start, end
    )


def test_a_wildcard_hour_skips_a_slot_inside_the_spring_forward_gap() -> None:
    runs = occurrences("0 */2 * * *", NEW_YORK, utc(2026, 3, 8, 4), utc(2026, 3, 8, 13))
    # 02:00 does not exist; cron does not move it to 03:00, where */2 names no slot.
    assert [wall(r) for r in runs] == ["00:00-0500", "04:00-0400", "06:00-0400", "08:00-0400"]


def test_a_wildcard_minute_with_a_fixed_hour_skips_the_gap_and_repeats_the_hour() -> None:
    spring = occurrences("*/20 2 * * *", NEW_YORK, utc(2026, 3, 8, 0), utc(2026, 3, 9, 0))
    assert spring == []
    fall = occurrences("*/20 1 * * *", NEW_YORK, utc(2026, 11, 1, 4), utc(2026, 11, 1, 7))
    assert [wall(r) for r in fall] == [
        *("01:00-0400", "01:20-0400", "01:40-0400"),
        *("01:00-0500", "01:20-0500", "01:40-0500"),
    ]


def test_a_fixed_time_in_a_half_hour_gap_runs_at_its_end() -> None:
    # Australia/Lord_Howe moves from 02:00 to 02:30 on 4 October 2026 (UTC+10:30 to +11).
    (run,) = occurrences("15 2 * * *", LORD_HOWE, utc(2026, 10, 3, 12), utc(2026, 10, 4, 12))
    assert run.astimezone(ZoneInfo(LORD_HOWE)).strftime("%H:%M%z") == "02:30+1100"


@pytest.mark.parametrize("expression", ["*/30 3-3 * * *", "*/30 1,3-3 * * *", "0-0,30 3 * * *"])
def test_a_range_of_one_value_is_that_value(expression: str) -> None:
    runs = occurrences(expression, "UTC", utc(2026, 1, 1), utc(2026, 1, 2))
    assert {r.hour for r in runs} <= {1, 3} and {r.minute for r in runs} == {0, 30}
    assert utc(2026, 1, 1, 3, 30) in runs


def test_result_is_utc_and_expression_is_read_in_the_jobs_zone() -> None:
    result = next_occurrence("0 9 * * *", "Europe/Berlin", utc(2026, 6, 1, 12))
    assert result == utc(2026, 6, 2, 7)  # 09:00 CEST
    assert result.utcoffset() == timedelta(0)
    assert next_occurrence("0 9 * * *", "UTC", utc(2026, 6, 1, 12)) == utc(2026, 6, 2, 9)


def test_strictly_after_an_exact_occurrence() -> None:
    assert next_occurrence("0 3 * * *", "UTC", utc(2026, 1, 10, 3)) == utc(2026, 1, 11, 3)
    assert next_occurrence("0 3 * * *", "UTC", utc(2026, 1, 10, 2, 59, 59)) == utc(2026, 1, 10, 3)


def test_after_in_another_offset_means_the_same_instant() -> None:
    tokyo = datetime(2026, 1, 10, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 03:00 UTC
    assert next_occurrence("0 3 * * *", "UTC", tokyo) == utc(2026, 1, 11, 3)


def test_leap_day_only_expression_finds_the_next_leap_year() -> None:
    assert next_occurrence("0 0 29 2 *", "UTC", utc(2026, 1, 1)) == utc(2028, 2, 29)


def test_expression_that_never_fires_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="names no future time"):
        next_occurrence("0 0 30 2 *", "UTC", utc(2026, 1, 1))


# -- check_cron ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("0 3 * * *", "0 3 * * *"),
        ("  0   3 *  * *  ", "0 3 * * *"),
        ("*/30 * * * *", "*/30 * * * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
        (" @daily ", "0 0 * * *"),
    ],
)
def test_check_cron_normalises_expressions_and_aliases(given: str, normalised: str) -> None:
    assert check_cron(given) == normalised
    # A normalised expression is one next_occurrence accepts.
    assert next_occurrence(normalised, "UTC", utc(2026, 1, 1)) > utc(2026, 1, 1)


def test_daily_alias_runs_at_midnight_in_the_jobs_zone() -> None:
    assert next_occurrence(check_cron("@daily"), NEW_YORK, utc(2026, 1, 10, 12)) == utc(
        2026, 1, 11, 5
    )


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "   ",
        "* * * *",
        "0 3 * * * *",  # six fields (seconds) are not accepted
        "61 * * * *",
        "0 24 * * *",
        "0 3 32 * *",
        "0 3 * 13 *",
        "0 3 * * 8",
        "*/0 * * * *",
        "not cron",
        "@reboot",
        "@every 5m",
    ],
)
def test_check_cron_rejects_invalid_expressions(expression: str) -> None:
    with pytest.raises(InvalidInput, match="invalid cron expression"):
        check_cron(expression)


# -- zone ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["UTC", NEW_YORK, "Europe/Berlin", "Asia/Kolkata"])
def test_zone_accepts_iana_names(name: str) -> None:
    assert zone(name) == ZoneInfo(name)


@pytest.mark.parametrize(
    "name",
    ["", " UTC", "UTC ", "Mars/Olympus", "../etc/passwd", "/etc/localtime", "America/New_York\0"],
)
def test_zone_rejects_unknown_and_path_like_names(name: str) -> None:
    with pytest.raises(InvalidInput, match="unknown timezone"):
        zone(name)


def test_next_occurrence_rejects_unknown_zone() -> None:
    with pytest.raises(InvalidInput, match="unknown timezone"):
        next_occurrence("0 3 * * *", "Not/AZone", utc(2026, 1, 1))


# -- property: always strictly later, always UTC ------------------------------------------

ZONES = [
    "UTC",
    NEW_YORK,
    "Europe/Berlin",
    "Europe/Dublin",  # negative DST in the tz database
    "Australia/Lord_Howe",  # 30-minute DST shift
    "America/Santiago",  # DST transitions at midnight
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "America/St_Johns",
]


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    return st.one_of(
        st.just("*"),
        st.integers(1, high - low + 1).map(lambda step: f"*/{step}"),
        number.map(str),
        st.tuples(number, number).map(lambda pair: f"{min(pair)}-{max(pair)}"),
        st.lists(number, min_size=2, max_size=3, unique=True).map(
            lambda values: ",".join(map(str, sorted(values)))
        ),
    )


cron_expressions = st.tuples(_field(0, 59), _field(0, 23)).map(
    lambda fields: f"{fields[0]} {fields[1]} * * *"
)
aware_datetimes = st.datetimes(
    min_value=datetime(1990, 1, 1),
    max_value=datetime(2090, 1, 1),
    timezones=st.sampled_from([UTC, *(ZoneInfo(name) for name in ZONES)]),
)


@settings(max_examples=300, deadline=None)
@given(expression=cron_expressions, timezone=st.sampled_from(ZONES), after=aware_datetimes)
def test_next_occurrence_is_strictly_after_and_utc(
    expression: str, timezone: str, after: datetime
) -> None:
    result = next_occurrence(check_cron(expression), timezone, after)
    assert result > after
    assert result.tzinfo is UTC
    # Every minute and hour field names a time at least once a day, so the wait is bounded.
    assert result - after <= timedelta(days=1, hours=2)


# -- property: the times cronsim names, the reference for cron's DST rules -----------------

DST_ZONES = [NEW_YORK, "Europe/Berlin", LORD_HOWE, "Australia/Adelaide"]  # whole and half hours


def _transitions(name: str, year: int = 2026) -> list[datetime]:
    """The instants (to the quarter hour) at which the zone's UTC offset changes in `year`."""
    tz, found = ZoneInfo(name), []
    moment, end = utc(year, 1, 1), utc(year + 1, 1, 1)
    offset = moment.astimezone(tz).utcoffset()
    while moment < end:
        moment += timedelta(minutes=15)
        if (now := moment.astimezone(tz).utcoffset()) != offset:
            found.append(moment)
            offset = now
    return found


TRANSITIONS = [(name, moment) for name in DST_ZONES for moment in _transitions(name)]


def cronsim_occurrences(
    expression: str, timezone: str, start: datetime, end: datetime
) -> list[datetime]:
    found = []
    for moment in CronSim(expression, start.astimezone(ZoneInfo(timezone))):
        if (moment := moment.astimezone(UTC)) > end:
            return found
        if moment > start:  # from inside a repeated hour, cronsim may name its first pass
            found.append(moment)
    return found


def every_matching_minute(
    expression: str, timezone: str, start: datetime, end: datetime
) -> list[datetime]:
    """Vixie cron's rule for a wildcard job, applied literally: every real minute whose wall
    time matches (the fields as cronsim parses them)."""
    fields = CronSim(expression, start)
    tz, found = ZoneInfo(timezone), []
    moment = start.replace(second=0, microsecond=0)
    while (moment := moment + timedelta(minutes=1)) <= end:
        local = moment.astimezone(tz)
        if local.minute in fields.minutes and local.hour in fields.hours:
            found.append(moment)
    return found


def test_cronsim_skips_real_minutes_after_a_half_hour_fall_back() -> None:
    """Why the property below checks a wildcard job in a half-hour zone minute by minute:
    cronsim advances the hour field in steps of 3,600 real seconds, which after Lord Howe's
    30-minute fall-back land on :30 and pass over 02:00-02:29, real minutes cron runs."""
    start, end = utc(2026, 4, 4, 14), utc(2026, 4, 4, 16)
    ours = occurrences("* */2 * * *", LORD_HOWE, start, end)
    assert ours == every_matching_minute("* */2 * * *", LORD_HOWE, start, end)
    assert ours[0] == utc(2026, 4, 4, 15, 30)  # 02:00+10:30, just after the repeated half hour
    assert cronsim_occurrences("* */2 * * *", LORD_HOWE, start, end)[0] == utc(2026, 4, 4, 16)


minute_fields = st.one_of(
    st.sampled_from(["*/5", "*/15", "*/20", "*/30", "*/45"]),
    st.integers(0, 59).map(str),
    st.lists(st.integers(0, 59), min_size=2, max_size=3, unique=True).map(
        lambda values: ",".join(map(str, sorted(values)))
    ),
)
dst_expressions = st.tuples(minute_fields, _field(0, 23)).map(
    lambda fields: f"{fields[0]} {fields[1]} * * *"
)


@settings(max_examples=300, deadline=None)
@given(
    expression=dst_expressions,
    transition=st.sampled_from(TRANSITIONS),
    minutes_before=st.integers(-6 * 60, 26 * 60),
)
def test_next_occurrence_names_the_times_cronsim_names_around_dst(
    expression: str, transition: tuple[str, datetime], minutes_before: int
) -> None:
    timezone, moment = transition
    start = moment - timedelta(minutes=minutes_before)
    end = start + timedelta(hours=30)
    minutes, hours = expression.split()[:2]
    wildcard = minutes.startswith("*") or hours.startswith("*")
    reference = every_matching_minute if wildcard and timezone == LORD_HOWE else cronsim_occurrences
    assert occurrences(expression, timezone, start, end) == reference(
        expression, timezone, start, end
    )
