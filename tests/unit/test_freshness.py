"""Freshness: the state of a (brand, dataset), last_attempt_failed, thresholds, the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import factories
import pytest

from pipectl.freshness import Thresholds, classify, declared_datasets, freshness, freshness_report
from pipectl.models import DatasetStatus, Job, RunStatus, Threshold

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
WARN = timedelta(hours=24)
ERROR = timedelta(hours=48)
TINY = timedelta(microseconds=1)
DEFAULTS = Thresholds([], (WARN, ERROR))


# -- classify -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "state"),
    [
        (timedelta(0), "fresh"),
        (WARN - TINY, "fresh"),
        (WARN, "fresh"),
        (WARN + TINY, "warn"),
        (ERROR - TINY, "warn"),
        (ERROR, "warn"),
        (ERROR + TINY, "stale"),
        (timedelta(days=365), "stale"),
    ],
)
def test_classify_boundaries(age: timedelta, state: str) -> None:
    assert classify(NOW - age, NOW, WARN, ERROR) == state


def test_classify_without_a_success_is_never() -> None:
    assert classify(None, NOW, WARN, ERROR) == "never"


def test_classify_success_in_the_future_counts_as_fresh() -> None:
    # Another worker's clock may run slightly ahead; that must not read as stale.
    assert classify(NOW + timedelta(seconds=5), NOW, WARN, ERROR) == "fresh"


def test_classify_with_equal_thresholds_has_no_warn_band() -> None:
    hour = timedelta(hours=1)
    assert classify(NOW - hour, NOW, hour, hour) == "fresh"
    assert classify(NOW - hour - TINY, NOW, hour, hour) == "stale"


# -- freshness ------------------------------------------------------------------------------


def status(
    *,
    success: datetime | None,
    attempt: datetime | None,
    last_status: RunStatus | None,
    error: str | None = None,
    brand_id: str | None = "acme",
    dataset: str = "orders",
) -> DatasetStatus:
    return DatasetStatus(brand_id, dataset, success, attempt, last_status, error, 7)


def test_freshness_with_no_status_is_never_and_not_failed() -> None:
    result = freshness("orders", "acme", None, DEFAULTS, NOW)
    assert result.state == "never"
    assert result.last_success_at is None
    assert result.last_attempt_at is None
    assert result.last_attempt_failed is False
    assert result.last_error is None
    assert result.age is None
    assert (result.warn_after, result.error_after) == (WARN, ERROR)


def test_failed_attempt_after_success_is_flagged_but_keeps_state_from_success() -> None:
    success = NOW - timedelta(hours=2)
    attempt = NOW - timedelta(hours=1)
    result = freshness(
        "orders",
        "acme",
        status(success=success, attempt=attempt, last_status="failed", error="boom"),
        DEFAULTS,
        NOW,
    )
    assert result.state == "fresh"
    assert result.is_fresh
    assert result.last_success_at == success
    assert result.last_attempt_at == attempt
    assert result.last_attempt_failed is True
    assert result.last_error == "boom"
    assert result.age == timedelta(hours=2)


def test_failed_attempts_only_are_never_with_last_attempt_failed() -> None:
    result = freshness(
        "orders",
        "acme",
        status(success=None, attempt=NOW, last_status="failed", error="boom"),
        DEFAULTS,
        NOW,
    )
    assert result.state == "never"
    assert result.last_attempt_failed is True
    assert result.last_error == "boom"


def test_successful_latest_attempt_is_not_flagged() -> None:
    result = freshness(
        "orders",
        "acme",
        status(success=NOW, attempt=NOW, last_status="completed"),
        DEFAULTS,
        NOW,
    )
    assert result.last_attempt_failed is False
    assert result.last_error is None


def test_failure_recorded_at_the_same_instant_as_the_success_is_not_after_it() -> None:
    result = freshness(
        "orders",
        "acme",
        status(success=NOW, attempt=NOW, last_status="failed", error="boom"),
        DEFAULTS,
        NOW,
    )
    assert result.last_attempt_failed is False
    assert result.last_error is None


def test_stale_data_keeps_its_age() -> None:
    success = NOW - timedelta(days=3)
    recorded = status(success=success, attempt=success, last_status="completed")
    result = freshness("orders", "acme", recorded, DEFAULTS, NOW)
    assert result.state == "stale"
    assert result.age == timedelta(days=3)


# -- thresholds -----------------------------------------------------------------------------


def test_threshold_precedence_brand_then_dataset_then_default() -> None:
    brand = Threshold("orders", "acme", timedelta(hours=1), timedelta(hours=2))
    dataset_wide = Threshold("orders", None, timedelta(hours=6), timedelta(hours=12))
    thresholds = Thresholds([brand, dataset_wide], (WARN, ERROR))

    assert thresholds.for_dataset("orders", "acme") == (timedelta(hours=1), timedelta(hours=2))
    assert thresholds.for_dataset("orders", "globex") == (timedelta(hours=6), timedelta(hours=12))
    assert thresholds.for_dataset("orders", None) == (timedelta(hours=6), timedelta(hours=12))
    assert thresholds.for_dataset("customers", "acme") == (WARN, ERROR)


def test_brand_threshold_does_not_leak_to_other_brands_or_global() -> None:
    thresholds = Thresholds(
        [Threshold("orders", "acme", timedelta(hours=1), timedelta(hours=2))], (WARN, ERROR)
    )
    assert thresholds.for_dataset("orders", "globex") == (WARN, ERROR)
    assert thresholds.for_dataset("orders", None) == (WARN, ERROR)


def test_freshness_applies_the_brand_threshold() -> None:
    thresholds = Thresholds(
        [
            Threshold("orders", "acme", timedelta(hours=1), timedelta(hours=2)),
            Threshold("orders", None, timedelta(hours=6), timedelta(hours=12)),
        ],
        (WARN, ERROR),
    )
    three_hours_ago = NOW - timedelta(hours=3)
    for brand, state in [("acme", "stale"), ("globex", "fresh")]:
        result = freshness(
            "orders",
            brand,
            status(success=three_hours_ago, attempt=three_hours_ago, last_status="completed"),
            thresholds,
            NOW,
        )
        assert result.state == state, brand


# -- declared datasets and the report ---------------------------------------------------------


def make_job(**overrides: Any) -> Job:
    return factories.make_job(**{"next_run_at": NOW, "created_at": NOW, **overrides})


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({}, []),
        ({"datasets": "orders"}, ["orders"]),
        ({"datasets": ["orders", "customers"]}, ["orders", "customers"]),
        ({"datasets": ["orders", 3, None]}, ["orders"]),
        ({"datasets": {"orders": True}}, []),
    ],
)
def test_declared_datasets(parameters: dict[str, Any], expected: list[str]) -> None:
    assert declared_datasets(make_job(parameters=parameters)) == expected


def test_report_includes_declared_datasets_of_live_jobs_as_never() -> None:
    recorded = status(
        success=NOW - timedelta(hours=1),
        attempt=NOW - timedelta(hours=1),
        last_status="completed",
        dataset="orders",
    )
    jobs = [
        make_job(id=1, parameters={"datasets": ["orders", "customers"]}),
        make_job(id=2, brand_id=None, status="paused", parameters={"datasets": "fx_rates"}),
        make_job(id=3, brand_id="globex", status="running", parameters={"datasets": ["orders"]}),
        make_job(id=4, status="archived", parameters={"datasets": ["archived_only"]}),
        make_job(id=5, status="failed", parameters={"datasets": ["failed_only"]}),
        make_job(id=6, status="completed", parameters={"datasets": ["completed_only"]}),
    ]
    report = freshness_report([recorded], jobs, DEFAULTS, NOW)
    assert [(f.brand_id, f.dataset, f.state) for f in report] == [
        (None, "fx_rates", "never"),
        ("acme", "customers", "never"),
        ("acme", "orders", "fresh"),
        ("globex", "orders", "never"),
    ]


def test_report_includes_brand_thresholds_and_keeps_recorded_status() -> None:
    thresholds = Thresholds(
        [
            Threshold("orders", "acme", timedelta(hours=1), timedelta(hours=2)),
            Threshold("customers", None, timedelta(hours=1), timedelta(hours=2)),
        ],
        (WARN, ERROR),
    )
    recorded = status(
        success=NOW - timedelta(hours=90),
        attempt=NOW - timedelta(minutes=5),
        last_status="failed",
        error="boom",
        dataset="orders",
    )
    report = freshness_report([recorded], [], thresholds, NOW)
    # A dataset-wide threshold names no brand, so it adds no row; the brand threshold does.
    assert len(report) == 1
    (orders,) = report
    assert (orders.brand_id, orders.dataset, orders.state) == ("acme", "orders", "stale")
    assert orders.last_attempt_failed is True
    assert (orders.warn_after, orders.error_after) == (timedelta(hours=1), timedelta(hours=2))


def test_report_of_a_declared_dataset_with_a_status_is_not_duplicated() -> None:
    recorded = status(success=NOW, attempt=NOW, last_status="completed", dataset="orders")
    report = freshness_report(
        [recorded], [make_job(parameters={"datasets": ["orders"]})], DEFAULTS, NOW
    )
    assert [(f.dataset, f.state) for f in report] == [("orders", "fresh")]
