"""What operators type: durations, points in time, job parameters, names."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from hypothesis import given
from hypothesis import strategies as st

from pipectl.errors import InvalidInput
from pipectl.parsing import (
    MAX_NAME_LENGTH,
    MAX_PARAMETERS_BYTES,
    check_name,
    format_duration,
    parse_duration,
    parse_parameters,
    parse_when,
)

TEN_YEARS_S = 10 * 365 * 86400

# -- parse_duration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("30", timedelta(seconds=30)),
        ("0.5", timedelta(milliseconds=500)),
        (" 5M ", timedelta(minutes=5)),
        ("3650d", timedelta(days=3650)),
    ],
)
def test_parse_duration_accepts(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "5x", "-5m", "m5", "5mm", "1h-30m", "1e3", "nan", "1.h", "five minutes", "5m x"],
)
def test_parse_duration_rejects_malformed(text: str) -> None:
    with pytest.raises(InvalidInput, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0s", "0", "0m0s", "3651d", "99999999999d"])
def test_parse_duration_rejects_zero_and_over_ten_years(text: str) -> None:
    with pytest.raises(InvalidInput, match="must be positive and under ten years"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0.0000001s", "0.0001ms"])
def test_parse_duration_never_returns_zero(text: str) -> None:
    try:
        result = parse_duration(text)
    except InvalidInput:
        return
    assert result > timedelta(0)


@given(st.integers(1, TEN_YEARS_S))
def test_parse_duration_of_integer_seconds_round_trips(seconds: int) -> None:
    assert parse_duration(f"{seconds}s") == timedelta(seconds=seconds)
    assert parse_duration(str(seconds)) == timedelta(seconds=seconds)


# -- format_duration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (45, "45s"),
        (59.9, "59s"),
        (60, "1m"),
        (90, "1m 30s"),
        (300, "5m"),
        (3599, "59m 59s"),
        (3600, "1h"),
        (5400, "1h 30m"),
        (3661, "1h 1m"),
        (86400, "1d"),
        (2 * 86400 + 3 * 3600 + 59, "2d 3h"),
        (-300, "-5m"),
        (-90, "-1m 30s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


@given(st.integers(1, TEN_YEARS_S))
def test_format_duration_reads_back_within_its_precision(seconds: int) -> None:
    delta = timedelta(seconds=seconds)
    read_back = parse_duration(format_duration(delta))
    assert read_back <= delta
    # Two parts at most: a day-sized duration drops minutes and seconds, an hour-sized one seconds.
    precision = timedelta(hours=1) if seconds >= 86400 else timedelta(minutes=1)
    if seconds < 3600:
        precision = timedelta(seconds=1)
    assert delta - read_back < precision


# -- parse_when -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T09:00+01:00", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        ("2026-12-01T09:00-05:00", datetime(2026, 12, 1, 14, 0, tzinfo=UTC)),
        ("2026-12-01T09:00Z", datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
        ("2026-12-01T09:00", datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
        ("2026-12-01 09:00:30", datetime(2026, 12, 1, 9, 0, 30, tzinfo=UTC)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
    ],
)
def test_parse_when_iso(text: str, expected: datetime) -> None:
    result = parse_when(text)
    assert result == expected
    assert result.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["now", " NOW ", "Now"])
def test_parse_when_now_reads_the_clock(text: str) -> None:
    with freeze_time("2026-03-08T06:59:00Z"):
        assert parse_when(text) == datetime(2026, 3, 8, 6, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "tomorrow",
        "in 5 minutes",
        "2026-13-01",
        "2026-12-01T25:00",
        "9999-12-31T23:59:59-01:00",  # valid ISO, but past datetime.max in UTC
        "0001-01-01T00:00+01:00",
    ],
)
def test_parse_when_rejects_garbage(text: str) -> None:
    with pytest.raises(InvalidInput, match="invalid time"):
        parse_when(text)


# -- parse_parameters -----------------------------------------------------------------------


def test_parse_parameters_from_json_object() -> None:
    assert parse_parameters(params_json='{"limit": 10, "full": true}') == {
        "limit": 10,
        "full": True,
    }


def test_parse_parameters_nothing_given_is_empty() -> None:
    assert parse_parameters() == {}
    assert parse_parameters([], None) == {}


@pytest.mark.parametrize("text", ["[1, 2]", '"text"', "3", "null", "true"])
def test_parse_parameters_rejects_json_that_is_not_an_object(text: str) -> None:
    with pytest.raises(InvalidInput, match="must be a JSON object"):
        parse_parameters(params_json=text)


@pytest.mark.parametrize("text", ["{bad", "", "{'a': 1}", "[" * 100_000])
def test_parse_parameters_rejects_invalid_json(text: str) -> None:
    with pytest.raises(InvalidInput, match="not valid JSON"):
        parse_parameters(params_json=text)


def test_key_value_pairs_are_strings_and_typed_pairs_are_json() -> None:
    assert parse_parameters(
        [
            "limit=10",
            "count:=10",
            "ratio:=0.5",
            "full:=true",
            "nothing:=null",
            'tags:=["a", "b"]',
            'nested:={"x": {"y": 1}}',
            "url=http://example.com/?a=b",
            "expr=a:=b",
            "empty=",
            "brand.name-x_1=ok",
        ]
    ) == {
        "limit": "10",
        "count": 10,
        "ratio": 0.5,
        "full": True,
        "nothing": None,
        "tags": ["a", "b"],
        "nested": {"x": {"y": 1}},
        "url": "http://example.com/?a=b",
        "expr": "a:=b",
        "empty": "",
        "brand.name-x_1": "ok",
    }


def test_pairs_override_the_json_object() -> None:
    assert parse_parameters(["a=2"], '{"a": 1, "b": 2}') == {"a": "2", "b": 2}


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("noequals", "must look like key=value or key:=JSON"),
        ("=value", "must be a plain name"),
        ("1key=value", "must be a plain name"),
        ("two words=value", "must be a plain name"),
        ("ключ=value", "must be a plain name"),
        ("k" * 101 + "=value", "must be a plain name"),
        ("count:=ten", "needs a JSON value"),
        ("count:=", "needs a JSON value"),
        ("ratio:=NaN", "not valid JSON"),
    ],
)
def test_malformed_pairs_are_rejected(pair: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_parameters([pair])


def test_parameters_over_64_kib_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="larger than 64 KiB"):
        parse_parameters(params_json=json.dumps({"blob": "x" * MAX_PARAMETERS_BYTES}))
    with pytest.raises(InvalidInput, match="larger than 64 KiB"):
        parse_parameters(["blob=" + "x" * MAX_PARAMETERS_BYTES])


def test_parameters_just_under_64_kib_are_accepted() -> None:
    overhead = len(json.dumps({"blob": ""}))
    blob = "x" * (MAX_PARAMETERS_BYTES - overhead)
    assert parse_parameters(params_json=json.dumps({"blob": blob})) == {"blob": blob}
    with pytest.raises(InvalidInput, match="larger than 64 KiB"):
        parse_parameters(params_json=json.dumps({"blob": blob + "x"}))


# -- check_name -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["acme", "Café Müller", "ブランド", "o'brien", 'the "best" brand', "a/b\\c", "🚀 rockets", "x"],
)
def test_check_name_accepts_printable_unicode_and_quotes(name: str) -> None:
    assert check_name(name, "brand") == name


def test_check_name_accepts_maximum_length_and_none() -> None:
    assert check_name("b" * MAX_NAME_LENGTH, "brand") == "b" * MAX_NAME_LENGTH
    assert check_name(None, "brand") is None


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "brand must not be empty"),
        ("   ", "brand must not be empty"),
        ("b" * (MAX_NAME_LENGTH + 1), "longer than 200 characters"),
        ("acme\n", "control characters"),
        ("ac\tme", "control characters"),
        ("ac\0me", "control characters"),
        ("acme\x1b[31m", "control characters"),
        ("acme\x7f", "control characters"),
        ("acme\u202e", "control characters"),  # right-to-left override
    ],
)
def test_check_name_rejects(name: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_name(name, "brand")
