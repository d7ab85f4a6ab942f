"""lifecycle.run_result: from a finished run to a RunResult (run status, job update and
per-dataset outcomes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import factories

from pipectl.lifecycle import run_result
from pipectl.models import DatasetOutcome, Job

NOW = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)


def make_job(**overrides: Any) -> Job:
    return factories.make_job(
        **{
            "job_type": "python",
            "name": "meta_sync acme",
            "next_run_at": NOW,
            "status": "running",
            "created_at": NOW - timedelta(days=1),
            "updated_at": NOW,
            **overrides,
        }
    )


def step(
    name: str,
    datasets: list[str],
    *,
    ok: bool = True,
    fatal: bool = True,
    brand_id: str | None = "acme",
    error: str | None = None,
) -> dict[str, Any]:
    """A step record as RunContext.record_step writes it."""
    return {
        "name": name,
        "status": "completed" if ok else "failed",
        "datasets": datasets,
        "brand_id": brand_id,
        "fatal": fatal,
        "error": None if ok else (error or "failed"),
        "finished_at": NOW.isoformat(),
    }


def by_dataset(outcomes: list[DatasetOutcome]) -> dict[tuple[str | None, str], DatasetOutcome]:
    return {(o.brand_id, o.dataset): o for o in outcomes}


def test_non_fatal_failed_step_leaves_the_run_completed_and_other_datasets_fresh() -> None:
    steps = [
        step("performance", ["ads_performance"]),
        step("thumbnails", ["thumbnails"], ok=False, fatal=False, error="CDN timeout"),
    ]
    result = run_result(make_job(), NOW, error=None, steps=steps, logs="log text")

    assert result.status == "completed"
    assert result.error_message is None
    assert result.finished_at == NOW
    assert result.logs == "log text"
    assert result.steps == steps
    assert result.job_update.status == "active"
    assert result.job_update.retry_count == 0
    assert result.job_update.next_run_at == NOW + timedelta(days=1)
    assert by_dataset(result.datasets) == {
        ("acme", "ads_performance"): DatasetOutcome("acme", "ads_performance", True, None),
        ("acme", "thumbnails"): DatasetOutcome(
            "acme", "thumbnails", False, "step thumbnails: CDN timeout"
        ),
    }


def test_fatal_failed_step_fails_the_run_with_its_name() -> None:
    steps = [
        step("performance", ["ads_performance"]),
        step("thumbnails", ["thumbnails"], ok=False, fatal=True, error="CDN timeout"),
    ]
    result = run_result(make_job(), NOW, error=None, steps=steps)

    assert result.status == "failed"
    assert result.error_message == "step thumbnails failed: CDN timeout"
    assert result.job_update.retry_count == 1
    assert result.job_update.next_run_at == NOW + timedelta(minutes=5)
    assert result.job_update.last_error == "step thumbnails failed: CDN timeout"
    outcomes = by_dataset(result.datasets)
    # The step that completed before the fatal one still made its dataset fresh.
    assert outcomes[("acme", "ads_performance")].succeeded is True
    assert outcomes[("acme", "thumbnails")].succeeded is False


def test_first_fatal_failed_step_names_the_error() -> None:
    steps = [
        step("extract", [], ok=False, fatal=False, error="soft"),
        step("load", [], ok=False, fatal=True, error="disk full"),
        step("index", [], ok=False, fatal=True, error="later"),
    ]
    result = run_result(make_job(), NOW, error=None, steps=steps)
    assert result.error_message == "step load failed: disk full"


def test_handler_error_wins_over_step_errors() -> None:
    steps = [step("load", ["orders"], ok=False, fatal=True, error="disk full")]
    result = run_result(make_job(), NOW, error="JobFailed: crashed", steps=steps)
    assert result.status == "failed"
    assert result.error_message == "JobFailed: crashed"


def test_declared_datasets_not_covered_by_steps_take_the_runs_outcome() -> None:
    job = make_job(parameters={"datasets": ["ads_performance", "campaigns"]})
    steps = [step("thumbnails", ["thumbnails"], ok=False, fatal=False, error="CDN")]

    completed = by_dataset(run_result(job, NOW, error=None, steps=steps).datasets)
    assert completed[("acme", "ads_performance")] == DatasetOutcome(
        "acme", "ads_performance", True, None
    )
    assert completed[("acme", "campaigns")].succeeded is True
    assert completed[("acme", "thumbnails")].succeeded is False

    failed = by_dataset(run_result(job, NOW, error="boom", steps=steps).datasets)
    assert failed[("acme", "ads_performance")] == DatasetOutcome(
        "acme", "ads_performance", False, "boom"
    )
    assert failed[("acme", "campaigns")] == DatasetOutcome("acme", "campaigns", False, "boom")


def test_a_step_outcome_overrides_the_declared_dataset() -> None:
    job = make_job(parameters={"datasets": ["ads_performance", "thumbnails"]})
    steps = [step("thumbnails", ["thumbnails"], ok=False, fatal=False, error="CDN")]
    outcomes = by_dataset(run_result(job, NOW, error=None, steps=steps).datasets)
    assert outcomes[("acme", "thumbnails")].succeeded is False
    assert outcomes[("acme", "ads_performance")].succeeded is True
    assert len(outcomes) == 2


def test_no_steps_and_no_datasets_records_no_dataset() -> None:
    result = run_result(make_job(), NOW, error=None)
    assert result.status == "completed"
    assert result.datasets == []
    assert result.steps == []


def test_global_jobs_step_with_a_brand_reports_for_that_brand() -> None:
    job = make_job(brand_id=None, name="fx_rates", parameters={"datasets": ["fx_rates"]})
    steps = [
        step("acme performance", ["ads_performance"], brand_id="acme"),
        step("globex performance", ["ads_performance"], ok=False, fatal=False, brand_id="globex"),
    ]
    outcomes = by_dataset(run_result(job, NOW, error=None, steps=steps).datasets)
    assert set(outcomes) == {
        ("acme", "ads_performance"),
        ("globex", "ads_performance"),
        (None, "fx_rates"),
    }
    assert outcomes[("acme", "ads_performance")].succeeded is True
    assert outcomes[("globex", "ads_performance")].succeeded is False
    assert outcomes[(None, "fx_rates")].succeeded is True


def test_one_time_job_is_archived_on_success_and_retried_on_failure() -> None:
    job = make_job(schedule_type="one_time", cron_expression=None)
    assert run_result(job, NOW, error=None).job_update.status == "archived"
    failed = run_result(job, NOW, error="boom").job_update
    assert (failed.status, failed.retry_count) == ("active", 1)
    assert failed.next_run_at == NOW + timedelta(minutes=5)
