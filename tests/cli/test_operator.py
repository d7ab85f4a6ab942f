"""Operator control (issue 14), end to end: brand-wide pause, resume and archive, and
re-arming a brand's jobs in backoff — on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from helpers_cli import CliResult, invoke

Cli = Callable[..., CliResult]


@pytest.fixture
def cli(both_url: str) -> Cli:
    def run(*args: str, input: str | None = None) -> CliResult:
        return invoke("--database-url", both_url, *args, input=input)

    return run


def add(cli: Cli, job_type: str, brand: str, *args: str) -> dict[str, Any]:
    return (
        cli("jobs", "add", job_type, "--cron", "0 3 * * *", "--brand", brand, *args, "--json")
        .assert_ok()
        .json()
    )


def statuses(cli: Cli) -> dict[int, str]:
    listed = cli("jobs", "list", "--all", "--json").assert_ok().json()
    return {job["id"]: job["status"] for job in listed}


def test_brand_wide_pause_resume_and_archive(cli: Cli) -> None:
    meta = add(cli, "sleep", "acme", "--name", "meta")
    reviews = add(cli, "noop", "acme", "--name", "reviews")
    already = add(cli, "noop", "acme", "--paused")
    other = add(cli, "sleep", "globex")

    paused = cli("jobs", "pause", "--brand", "acme", "--yes", "--json").assert_ok().json()
    assert [job["id"] for job in paused] == [meta["id"], reviews["id"]]
    assert all(job["status"] == "paused" for job in paused)
    assert statuses(cli)[other["id"]] == "active"
    assert statuses(cli)[already["id"]] == "paused"

    resumed = cli("jobs", "resume", "--brand", "acme", "--type", "sleep", "--yes", "--json")
    (job,) = resumed.assert_ok().json()
    assert (job["id"], job["status"]) == (meta["id"], "active")
    assert datetime.fromisoformat(job["next_run_at"]) > datetime.now(UTC)  # no catch-up

    named = cli("jobs", "resume", "--brand", "acme", "--name", "reviews", "--yes", "--json")
    assert [job["id"] for job in named.assert_ok().json()] == [reviews["id"]]

    archived = cli("jobs", "archive", "--brand", "acme", "--yes").assert_ok()
    assert "3 job(s) archived" in archived.stderr_text
    assert {i: s for i, s in statuses(cli).items() if i != other["id"]} == {
        meta["id"]: "archived",
        reviews["id"]: "archived",
        already["id"]: "archived",
    }
    nothing = cli("jobs", "pause", "--brand", "acme", "--yes", "--json").assert_ok()
    assert nothing.json() == []
    assert "nothing changed" in nothing.stderr_text


def test_brand_wide_action_lists_the_jobs_and_asks_first(cli: Cli) -> None:
    meta = add(cli, "sleep", "acme", "--name", "meta sync")
    declined = cli("jobs", "pause", "--brand", "acme", input="n\n")
    # Click's test runner echoes what was typed on stdout, as a terminal would show it.
    assert declined.exit_code == 1 and declined.stdout.strip() == "n"
    assert "pause 1 job(s) of brand acme" in declined.stderr_text
    assert "meta sync" in declined.stderr_text
    assert "nothing changed" in declined.stderr_text
    assert statuses(cli)[meta["id"]] == "active"

    accepted = cli("jobs", "pause", "--brand", "acme", input="y\n").assert_ok()
    assert accepted.stdout.strip() == "y"
    assert "1 job(s) paused" in accepted.stderr_text
    assert statuses(cli)[meta["id"]] == "paused"


def test_brand_wide_action_bad_input_changes_nothing(cli: Cli) -> None:
    meta = add(cli, "sleep", "acme")
    cli("jobs", "pause", "--brand", "acmee", "--yes").assert_pipectl_error(2)  # unknown brand
    cli("jobs", "pause").assert_pipectl_error(2)  # neither an id nor --brand
    cli("jobs", "pause", str(meta["id"]), "--brand", "acme").assert_pipectl_error(2)
    cli("jobs", "pause", "--type", "sleep", "--yes").assert_pipectl_error(2)  # no --brand
    assert statuses(cli)[meta["id"]] == "active"


def test_single_job_actions_keep_their_messages(cli: Cli) -> None:
    meta = add(cli, "sleep", "acme")
    assert f"job {meta['id']} paused" in cli("jobs", "pause", str(meta["id"])).stderr_text
    result = cli("jobs", "pause", str(meta["id"]))
    result.assert_pipectl_error(2)
    assert "is paused and cannot be paused" in result.stderr
    resumed = cli("jobs", "resume", str(meta["id"]), "--json").assert_ok().json()
    assert resumed["status"] == "active"


def failing_command(cli: Cli, brand: str, status: int = 1) -> dict[str, Any]:
    params = json.dumps({"command": f"exit {status}"})
    return (
        cli("enqueue", "command", "--params", params, "--brand", brand, "--json").assert_ok().json()
    )


def test_retry_brand_now_rearms_every_job_of_the_brand_in_backoff(cli: Cli) -> None:
    first = failing_command(cli, "acme")
    second = failing_command(cli, "acme", 2)
    other = failing_command(cli, "globex")
    cli("run-worker", "--once").assert_ok()
    in_backoff = {job["id"] for job in cli("retry", "--json").assert_ok().json()}
    assert in_backoff == {first["id"], second["id"], other["id"]}

    before = datetime.now(UTC)
    rearmed = cli("retry", "--brand", "acme", "--now", "--json").assert_ok().json()
    assert [job["id"] for job in rearmed] == [first["id"], second["id"]]
    for job in rearmed:
        assert datetime.fromisoformat(job["next_run_at"]) <= datetime.now(UTC)
        assert job["retry_count"] == 1  # the retry budget is kept
    (still,) = cli("retry", "--brand", "globex", "--json").assert_ok().json()
    assert datetime.fromisoformat(still["next_run_at"]) > before

    note = cli("retry", "--brand", "acme", "--now").assert_ok()
    assert "2 job(s) of brand acme will run at the next poll" in note.stderr_text
    cli("retry", "--brand", "acmee", "--now").assert_pipectl_error(2)


# -- run now ----------------------------------------------------------------------------------


def test_jobs_run_runs_a_recurring_job_now_and_it_returns_to_its_cron(cli: Cli) -> None:
    job = add(cli, "noop", "acme")
    assert datetime.fromisoformat(job["next_run_at"]) > datetime.now(UTC)
    note = cli("jobs", "run", str(job["id"])).assert_ok()
    assert f"job {job['id']} will run at the next poll" in note.stderr_text
    cli("run-worker", "--once").assert_ok()
    after = cli("jobs", "show", str(job["id"]), "--json").assert_ok().json()
    assert [run["status"] for run in after["runs"]] == ["completed"]
    assert after["status"] == "active"
    assert datetime.fromisoformat(after["next_run_at"]) == datetime.fromisoformat(
        job["next_run_at"]
    )


def test_jobs_run_reactivates_a_failed_job_and_refuses_a_paused_one(cli: Cli) -> None:
    failed = failing_command(cli, "acme")
    cli("jobs", "edit", str(failed["id"]), "--max-retries", "0").assert_ok()
    cli("run-worker", "--once").assert_ok()
    again = cli("jobs", "run", str(failed["id"]), "--json").assert_ok().json()
    assert (again["status"], again["retry_count"]) == ("active", 0)
    assert datetime.fromisoformat(again["next_run_at"]) <= datetime.now(UTC)

    paused = add(cli, "noop", "acme", "--paused")
    refused = cli("jobs", "run", str(paused["id"]))
    refused.assert_pipectl_error(2)
    assert "is paused and cannot be run now" in refused.stderr
    cli("jobs", "run", "999").assert_pipectl_error(2)


def test_enqueue_of_a_pending_job_due_later_brings_it_forward(cli: Cli) -> None:
    later = cli("enqueue", "noop", "--brand", "acme", "--in", "2h", "--json").assert_ok().json()
    assert later["created"] is True and later["rearmed"] is False
    now = cli("enqueue", "noop", "--brand", "acme", "--json").assert_ok()
    moved = now.json()
    assert (moved["id"], moved["created"], moved["rearmed"]) == (later["id"], False, True)
    assert datetime.fromisoformat(moved["next_run_at"]) <= datetime.now(UTC)
    assert "brought forward" in now.stderr_text
    same = cli("enqueue", "noop", "--brand", "acme", "--json").assert_ok()
    assert (same.json()["created"], same.json()["rearmed"]) == (False, False)
    assert "not queued again" in same.stderr_text


def test_enqueue_of_a_job_in_backoff_brings_it_forward(cli: Cli) -> None:
    job = failing_command(cli, "acme")
    cli("run-worker", "--once").assert_ok()
    (backoff,) = cli("retry", "--json").assert_ok().json()
    assert datetime.fromisoformat(backoff["next_run_at"]) > datetime.now(UTC)
    again = failing_command(cli, "acme")
    assert (again["id"], again["rearmed"], again["retry_count"]) == (job["id"], True, 1)
    assert datetime.fromisoformat(again["next_run_at"]) <= datetime.now(UTC)


# -- cancel and wait --------------------------------------------------------------------------


def test_cancelling_a_pending_one_time_job_archives_it_as_cancelled(cli: Cli) -> None:
    job = cli("enqueue", "noop", "--brand", "acme", "--in", "1h", "--json").assert_ok().json()
    done = cli("runs", "cancel", "--job", str(job["id"]), "--json").assert_ok().json()
    assert done["run"] is None
    assert done["job"]["status"] == "archived"
    assert done["job"]["last_error"].startswith("cancelled by ")
    cli("run-worker", "--once").assert_ok()
    assert cli("runs", "--json").assert_ok().json() == []  # it never ran
    waited = cli("runs", "wait", "--job", str(job["id"]))
    assert waited.exit_code == 1
    assert f"job {job['id']} is archived: cancelled by" in waited.stderr_text


def test_cancel_refuses_what_is_not_running_or_pending(cli: Cli) -> None:
    job = cli("enqueue", "noop", "--brand", "acme", "--json").assert_ok().json()
    cli("run-worker", "--once").assert_ok()
    (run,) = cli("runs", "--json").assert_ok().json()
    refused = cli("runs", "cancel", str(run["id"]))
    refused.assert_pipectl_error(2)
    assert "is completed; only a running run can be cancelled" in refused.stderr
    cli("runs", "cancel", "--job", str(job["id"])).assert_pipectl_error(2)
    recurring = add(cli, "noop", "acme")
    cli("runs", "cancel", "--job", str(recurring["id"])).assert_pipectl_error(2)
    cli("runs", "cancel").assert_pipectl_error(2)
    cli("runs", "cancel", str(run["id"]), "--job", str(job["id"])).assert_pipectl_error(2)
    cli("runs", "cancel", "999").assert_pipectl_error(2)


def test_runs_wait_on_an_ended_run_exits_with_its_outcome_at_once(cli: Cli) -> None:
    ok = cli("enqueue", "noop", "--brand", "acme", "--json").assert_ok().json()
    failing = failing_command(cli, "acme")
    cli("jobs", "edit", str(failing["id"]), "--max-retries", "0").assert_ok()
    cli("run-worker", "--once").assert_ok()
    runs = {run["job_id"]: run for run in cli("runs", "--json").assert_ok().json()}
    done = cli("runs", "wait", str(runs[ok["id"]]["id"]), "--json").assert_ok()
    assert done.json()["status"] == "completed"
    assert cli("runs", "wait", "--job", str(ok["id"])).exit_code == 0
    failed = cli("runs", "wait", "--job", str(failing["id"]))
    assert failed.exit_code == 1 and "command exited with status 1" in failed.stderr
    cli("runs", "wait").assert_pipectl_error(2)
    cli("runs", "wait", "999").assert_pipectl_error(2)
    cli("runs", "wait", "--job", str(ok["id"]), "--timeout", "soon").assert_pipectl_error(2)
    cli("enqueue", "noop", "--wait-timeout", "1s").assert_pipectl_error(2)  # needs --wait


def test_runs_wait_times_out_with_124(cli: Cli) -> None:
    job = cli("enqueue", "noop", "--brand", "acme", "--in", "1h", "--json").assert_ok().json()
    result = cli("runs", "wait", "--job", str(job["id"]), "--timeout", "0.3s")
    assert result.exit_code == 124 and result.stdout == ""
    assert "timed out after 0.3s" in result.stderr


# -- partial failures in plain sight ----------------------------------------------------------

PARTIAL = (
    'echo \'{"step": "load", "status": "completed", "datasets": ["orders"]}\' '
    '>> "$PIPECTL_STEPS_FILE"; '
    'echo \'{"step": "thumbs", "status": "failed", "fatal": false, "datasets": ["thumbs"], '
    '"error": "cdn down"}\' >> "$PIPECTL_STEPS_FILE"'
)


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables 160 columns wide, so that a cell reads on one line."""
    from pipectl.cli import render

    monkeypatch.setattr(render.out, "_width", 160)


def test_a_completed_run_with_failed_steps_says_so_in_every_list(cli: Cli, wide: None) -> None:
    params = json.dumps({"command": PARTIAL})
    added = cli(
        "jobs",
        "add",
        "command",
        "--cron",
        "0 3 * * *",
        "--brand",
        "acme",
        "--name",
        "sync",
        "--params",
        params,
    )
    job = added.assert_ok().stdout.strip()
    cli("jobs", "run", job).assert_ok()
    cli("run-worker", "--once").assert_ok()

    (run,) = cli("runs", "--json").assert_ok().json()
    assert (run["status"], run["failed_steps"]) == ("completed", 1)
    assert (run["job_name"], run["brand_id"]) == ("sync", "acme")
    label = "completed (1 of 2 steps failed)"
    listed = cli("runs").assert_ok().stdout
    assert label in listed and f"{job} sync (acme)" in listed
    assert label in cli("jobs", "show", job).assert_ok().stdout
    assert label in cli("runs", "show", str(run["id"])).assert_ok().stdout
    assert label in cli("status").assert_ok().stdout

    datasets = {d["dataset"]: d for d in cli("datasets", "list", "--json").assert_ok().json()}
    for name in ("orders", "thumbs"):
        assert (datasets[name]["last_run_id"], datasets[name]["last_job_id"]) == (
            run["id"],
            int(job),
        )
    status = {d["dataset"]: d for d in cli("status", "--json").assert_ok().json()["datasets"]}
    assert status["thumbs"]["last_run_id"] == run["id"]
    assert status["thumbs"]["last_job_id"] == int(job)
    assert f"run {run['id']} failed: step thumbs: cdn down" in cli("status").assert_ok().stdout


def test_a_failed_commands_error_ends_with_its_last_output(cli: Cli) -> None:
    command = "echo first; for i in 1 2 3 4 5 6; do echo line $i >&2; done; exit 4"
    job = (
        cli("enqueue", "command", "--params", json.dumps({"command": command}), "--json")
        .assert_ok()
        .json()
    )
    cli("run-worker", "--once").assert_ok()
    (run,) = cli("runs", "--json").assert_ok().json()
    expected = "command exited with status 4: line 2 | line 3 | line 4 | line 5 | line 6"
    assert run["error_message"] == expected
    assert cli("jobs", "show", str(job["id"]), "--json").assert_ok().json()["last_error"] == (
        expected
    )


# -- consistent words -------------------------------------------------------------------------


def test_lists_say_paused_running_and_the_attempt_in_one_wording(
    cli: Cli, both_url: str, wide: None
) -> None:
    from pipectl.store import open_store

    paused = add(cli, "noop", "acme", "--paused", "--name", "paused one")
    running = add(cli, "noop", "acme", "--name", "running one")
    failing = failing_command(cli, "acme")
    cli("run-worker", "--once").assert_ok()  # the failing one goes into backoff
    cli("jobs", "run", str(running["id"])).assert_ok()
    store = open_store(both_url)
    try:
        (claim,) = store.claim_due("held-by-test", datetime.now(UTC), 1)
    finally:
        store.close()
    assert claim.job.id == running["id"]

    listed = cli("jobs", "list").assert_ok().stdout
    status = cli("status").assert_ok().stdout
    for text in (listed, status):
        lines = {line.split()[0]: line for line in text.splitlines() if line[:1].isdigit()}
        assert "paused" in lines[str(paused["id"])] and "in " not in lines[str(paused["id"])]
        assert "running" in lines[str(running["id"])]
        assert "due now" not in lines[str(running["id"])]
        assert "attempt 2 of 4" in lines[str(failing["id"])]
    (backoff,) = cli("retry", "--json").assert_ok().json()
    assert (backoff["attempt"], backoff["attempts_allowed"]) == (2, 4)


# -- layout at 80 and 120 columns --------------------------------------------------------------

LONG_JOBS = (
    ("acme_international", "creative_thumbnails_refresh", "*/5 * * * *", "Europe/Berlin"),
    ("acme_international", "google_reviews_sync", "0 6 * * 1-5", "America/Argentina/Buenos_Aires"),
    ("acme_international", "meta_ads_performance_daily", "30 2 * * *", "America/New_York"),
)


@pytest.mark.parametrize("width", [80, 120])
def test_jobs_list_and_the_brand_wide_preview_break_no_token(
    cli: Cli, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from freezegun import freeze_time
    from helpers_cli import assert_unbroken

    from pipectl.cli import render

    with freeze_time("2026-11-30 12:00:00"):
        for brand, name, cron, tz in LONG_JOBS:
            cli("jobs", "add", "noop", "--brand", brand, "--name", name, "--cron", cron, "--tz", tz)
        failing_command(cli, "acme_international")
        cli("run-worker", "--once").assert_ok()  # into backoff: attempt 2 of 4
        monkeypatch.setattr(render.out, "_width", width)
        monkeypatch.setattr(render.err, "_width", width)
        listed = cli("jobs", "list").assert_ok().stdout
        preview = cli("jobs", "pause", "--brand", "acme_international", input="n\n").stderr
    tokens = [cron for _, _, cron, _ in LONG_JOBS] + [tz for _, _, _, tz in LONG_JOBS]
    names = [name for _, name, _, _ in LONG_JOBS] + ["acme_international"]
    for text in (listed, preview):
        assert_unbroken(text, width, [*tokens, "in 5m", "in 21h", "in 19h 30m"], names)
    assert_unbroken(listed, width, ["attempt 2 of 4"])


def test_status_brief_prints_only_the_summary_and_the_failing_rows(cli: Cli) -> None:
    fresh = json.dumps({"datasets": ["orders"]})
    cli("enqueue", "noop", "--brand", "acme", "--params", fresh).assert_ok()
    failing = json.dumps({"command": "exit 1", "datasets": ["reviews"]})
    cli("enqueue", "command", "--brand", "globex", "--params", failing).assert_ok()
    cli("run-worker", "--once").assert_ok()

    lines = cli("status", "--brief").assert_ok().stdout.splitlines()
    assert lines[0].split() == ["datasets", "0", "stale", "1", "never", "0", "warn", "1", "fresh"]
    assert [line.split()[0] for line in lines[1:4]] == ["runs", "workers", "brands"]
    assert lines[4] == ""
    assert lines[5].split()[:5] == ["brand", "┃", "dataset", "┃", "state"]
    rows = [line.split()[:5] for line in lines[7:] if line.strip()]
    assert rows == [["globex", "│", "reviews", "│", "never"]], lines
    text = "\n".join(lines)
    assert "orders" not in text and "schedule" not in text and "────" not in text
    assert "workers:" not in text  # the live workers: the summary says how many
