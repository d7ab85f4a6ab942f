"""The gate's pure rules: which datasets count, the reasons, the verdict, unknown names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_freshness import DEFAULTS, make_job, status

from pipectl.errors import InvalidInput
from pipectl.freshness import check_declarations, counted_keys, freshness
from pipectl.gate import check_brands, check_datasets, closest_first, dataset_reason, judge
from pipectl.lifecycle import run_result
from pipectl.models import DatasetStatus, Threshold

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def keys(statuses: list[DatasetStatus], jobs: list[Any]) -> list[tuple[str | None, str]]:
    found, _ = counted_keys(statuses, jobs, DEFAULTS)
    return sorted(found, key=lambda key: (key[0] or "", key[1]))


def test_steps_a_job_declares_count_for_its_brand() -> None:
    job = make_job(parameters={"steps": [{"name": "t", "datasets": ["thumbs"]}]})
    assert keys([], [job]) == [("acme", "thumbs")]


def test_a_global_declaration_naming_brands_counts_for_them_only() -> None:
    job = make_job(
        brand_id=None, parameters={"datasets": [{"dataset": "ap", "brands": ["a", "b"]}]}
    )
    assert keys([], [job]) == [("a", "ap"), ("b", "ap")]


def test_a_global_declaration_without_brands_follows_the_rows_it_reported() -> None:
    job = make_job(brand_id=None, parameters={"datasets": ["ap"]})
    assert keys([], [job]) == [(None, "ap")]
    failed_global = status(success=None, attempt=NOW, last_status="failed", dataset="ap")
    failed_global = DatasetStatus(**{**_fields(failed_global), "brand_id": None})
    per_brand = status(success=NOW, attempt=NOW, last_status="completed", dataset="ap")
    assert keys([failed_global, per_brand], [job]) == [("acme", "ap")]
    # A global row that once succeeded is a real global dataset: it still counts.
    succeeded = DatasetStatus(**{**_fields(failed_global), "last_success_at": NOW})
    assert keys([succeeded, per_brand], [job]) == [(None, "ap"), ("acme", "ap")]


def _fields(row: DatasetStatus) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__dataclass_fields__}


def test_retired_pairs_never_count_and_are_returned_apart() -> None:
    row = status(success=NOW, attempt=NOW, last_status="completed", dataset="orders")
    retired = DatasetStatus(**{**_fields(row), "retired_at": NOW})
    job = make_job(parameters={"datasets": ["orders"]})
    found, gone = counted_keys([retired], [job], DEFAULTS)
    assert found == {} and gone == {("acme", "orders")}


@pytest.mark.parametrize(
    "parameters",
    [
        {"datasets": [{"brands": ["a"]}]},
        {"datasets": [{"dataset": "x", "brands": "a"}]},
        {"datasets": [""]},
        {"steps": {"datasets": ["x"]}},
        {"steps": [{"datasets": [3]}]},
    ],
)
def test_unreadable_declarations_are_rejected(parameters: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        check_declarations(parameters)


def test_a_global_job_naming_brands_records_a_failed_run_for_them() -> None:
    job = make_job(brand_id=None, parameters={"datasets": [{"dataset": "ap", "brands": ["a"]}]})
    result = run_result(job, NOW, error="down")
    assert [(d.brand_id, d.dataset, d.succeeded) for d in result.datasets] == [("a", "ap", False)]


def test_the_reason_names_state_age_limit_and_last_failed_attempt() -> None:
    row = status(
        success=NOW - timedelta(days=2, hours=3),
        attempt=NOW - timedelta(minutes=20),
        last_status="failed",
        error="HTTP 401\nfrom Meta",
        dataset="ads_performance",
    )
    thresholds = DEFAULTS.__class__(
        [Threshold("ads_performance", None, timedelta(hours=6), timedelta(days=1))],
        DEFAULTS.default,
    )
    item = freshness("ads_performance", "acme", row, thresholds, NOW)
    assert dataset_reason(item, NOW) == (
        "acme/ads_performance: stale — last success 2d 3h ago (error after 1d); "
        "last attempt 20m ago failed: HTTP 401 from Meta"
    )
    never = freshness("x", None, None, DEFAULTS, NOW)
    assert dataset_reason(never, NOW) == "global/x: never — no success yet; never attempted"


def test_judge_warn_fails_only_when_strict_and_scheduler_only_when_asked() -> None:
    warn_row = status(success=NOW - timedelta(hours=30), attempt=None, last_status=None)
    warn = freshness("orders", "acme", warn_row, DEFAULTS, NOW)
    assert judge([warn], NOW).ok
    assert not judge([warn], NOW, strict=True).ok
    assert judge([], NOW).ok


def test_closest_first_and_unknown_names() -> None:
    assert closest_first("globx", ["acme", "initech", "globex"]) == ["globex", "acme", "initech"]
    with pytest.raises(
        InvalidInput, match=r"unknown brand 'globx' \(known brands, closest first: globex"
    ):
        check_brands(["globx"], ["acme", "globex"])
    with pytest.raises(InvalidInput, match="no brand is known"):
        check_brands(["acme"], [])
    with pytest.raises(InvalidInput, match="is retired for brand acme"):
        check_datasets(["x"], ["acme"], [], [("acme", "x")])
    check_datasets(["x"], [], [("acme", "x")], [])
