"""The status view leads with what is wrong (issue 14): the summary first, brands worst first
with headers in the colour of their worst dataset, `--brief`, and a layout that breaks no cron
expression, timezone or time at 80 and at 120 columns."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import factories
import pytest
from helpers_cli import assert_unbroken
from rich.console import Console

from pipectl.cli.views import fitted_view, status_view
from pipectl.client import StatusReport
from pipectl.freshness import worst_first, worst_state
from pipectl.lifecycle import in_backoff
from pipectl.models import Claim, Freshness, Job, Run, WorkerInfo

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def dataset(brand: str | None, name: str, state: str, **extra: Any) -> Freshness:
    values: dict[str, Any] = dict(
        brand_id=brand,
        dataset=name,
        state=state,
        last_success_at=None if state == "never" else NOW - 3 * HOUR,
        last_attempt_at=NOW - HOUR,
        last_attempt_failed=state in ("stale", "never"),
        last_error="upstream API answered 503 Service Unavailable" if state != "fresh" else None,
        age=None if state == "never" else 3 * HOUR,
        warn_after=HOUR,
        error_after=2 * HOUR,
        last_run_id=7,
        last_job_id=1,
    )
    values.update(extra)
    return Freshness(**values)


def job(job_id: int, brand: str | None, name: str, cron: str, tz: str, **extra: Any) -> Job:
    return factories.make_job(
        **{
            "id": job_id,
            "brand_id": brand,
            "job_type": "command",
            "name": name,
            "cron_expression": cron,
            "timezone": tz,
            "next_run_at": NOW + timedelta(hours=3, minutes=39),
            "created_at": NOW,
            **extra,
        }
    )


def report() -> StatusReport:
    worker = WorkerInfo("worker-1", "host", 1, NOW - HOUR, NOW - timedelta(seconds=3), "1")
    return StatusReport(
        now=NOW,
        datasets=[
            dataset("acme", "ads_performance", "fresh"),
            dataset("globex", "reviews", "stale"),
            dataset("globex", "orders", "fresh"),
            dataset("initech", "weekly_rollup", "warn"),
            dataset("hooli", "thumbnails", "never"),
        ],
        jobs=[
            job(1, "acme", "meta_sync", "0 */6 * * *", "Europe/Berlin"),
            job(
                2, "globex", "google_reviews_sync", "30 2 * * *", "America/New_York", retry_count=1
            ),
            job(3, "initech", "weekly_rollup", "0 4 * * 1", "UTC", status="paused"),
            job(
                4,
                "hooli",
                "creative_thumbnails_refresh",
                "15 */2 * * 1-5",
                "America/Argentina/Buenos_Aires",
            ),
            job(5, "hooli", "google_reviews_sync", "*/5 * * * *", "America/Argentina/Buenos_Aires"),
        ],
        last_runs={},
        stuck_runs=[],
        workers=[worker],
        worker_stale_after=timedelta(minutes=2),
        waiting={},
    )


def render(width: int, *, brief: bool = False, color: bool = False) -> str:
    console = Console(
        width=width, record=True, force_terminal=color, color_system="standard" if color else None
    )
    for part in status_view(report(), brief=brief):
        console.print(part)
    return console.export_text(styles=color)


def test_the_summary_comes_first() -> None:
    lines = render(120).splitlines()
    assert lines[0].split() == ["datasets", "1", "stale", "1", "never", "1", "warn", "2", "fresh"]
    assert lines[1].split() == ["runs", "0", "stuck", "1", "in", "backoff"]
    assert lines[2].split() == ["workers", "1", "live,", "last", "seen", "3s", "ago"]
    assert lines[3].startswith("brands    globex stale, hooli never, initech warn, acme fresh")


def test_brands_come_worst_first() -> None:
    text = render(120)
    headers = [line.split()[0] for line in text.splitlines() if "────" in line]
    assert headers == ["globex", "hooli", "initech", "acme"]
    assert worst_first(["acme", None, "zeta"], report().datasets[:1]) == ["acme", None, "zeta"]
    assert worst_state(["fresh", "warn"]) == "warn" and worst_state([]) is None


def test_brand_headers_take_the_colour_of_their_worst_dataset() -> None:
    text = render(120, color=True)
    header = {
        re.sub(r"\x1b\[[0-9;]*m", "", line).split()[0]: line
        for line in text.splitlines()
        if "────" in line
    }
    assert "\x1b[1;31m" in header["globex"]  # bold red: stale
    assert "\x1b[32m" in header["acme"]  # green: fresh
    assert "\x1b[33m" in header["initech"]  # yellow: warn
    assert "\x1b" not in render(120)  # no colour for a non-terminal (NO_COLOR alike)


def test_brief_shows_only_the_summary_and_the_failing_rows() -> None:
    text = render(120, brief=True)
    assert text.startswith("datasets")
    assert "reviews" in text and "thumbnails" in text
    assert "ads_performance" not in text and "weekly_rollup" not in text
    assert "────" not in text  # no per-brand detail


@pytest.mark.parametrize("width", [80, 120])
def test_nothing_wraps_mid_token(width: int) -> None:
    assert_unbroken(
        render(width),
        width,
        tokens=(
            "0 */6 * * *",
            "30 2 * * *",
            "15 */2 * * 1-5",
            "*/5 * * * *",
            "Europe/Berlin",
            "America/New_York",
            "America/Argentina/Buenos_Aires",
            "in 3h 39m",
            "attempt 2 of 4",
        ),
        names=("meta_sync", "google_reviews_sync", "creative_thumbnails_refresh"),
    )


def test_the_backoff_rule_matches_the_stores() -> None:
    assert in_backoff(job(1, "a", "n", "0 3 * * *", "UTC", retry_count=1))
    assert in_backoff(job(1, "a", "n", "0 3 * * *", "UTC", retry_count=1, status="paused"))
    assert not in_backoff(job(1, "a", "n", "0 3 * * *", "UTC", retry_count=1, status="failed"))
    assert not in_backoff(job(1, "a", "n", "0 3 * * *", "UTC"))


def test_watch_fits_the_screen_and_keeps_the_warnings() -> None:
    stuck = Run(
        id=99,
        job_id=2,
        attempt=1,
        status="running",
        started_at=NOW - 2 * HOUR,
        finished_at=None,
        heartbeat_at=NOW - HOUR,
        worker_id="gone-worker",
        lease_token="t",
        error_message=None,
        logs="",
        steps=[],
        concurrency_key=None,
    )
    dead = replace(
        report(),
        stuck_runs=[Claim(run=stuck, job=report().jobs[1])],
        workers=[WorkerInfo("gone-worker", "h", 1, NOW - 3 * HOUR, NOW - HOUR, "1")],
    )
    for width, height in ((80, 24), (120, 40)):
        console = Console(width=width, height=height, record=True)
        for part in fitted_view(dead, console, footer="footer line"):
            console.print(part)
        lines = console.export_text().splitlines()
        assert len(lines) <= height, (width, height, len(lines))
        text = "\n".join(lines)
        assert text.startswith("datasets")
        assert "stuck runs" in text and "gone-worker" in text
        assert "WARNING: no live worker (the last was seen 1h ago)" in text
        assert lines[-1] == "footer line"
        assert re.search(r"… \d more brand\(s\), \d+ row\(s\) hidden", text), text
        assert "globex" in text  # the worst brand is the one shown
    roomy = Console(width=120, height=200, record=True)
    for part in fitted_view(report(), roomy):
        roomy.print(part)
    assert "hidden" not in roomy.export_text()
