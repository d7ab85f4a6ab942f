"""Every pipectl command, through the real entry point: exit 0, ids and JSON on stdout, human
notes on stderr, and the JSON field names scripts rely on."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pipectl.cli import TOP_LEVEL, _app, _command, app
from pipectl.store import open_store

JOB_FIELDS = {
    "id",
    "brand_id",
    "job_type",
    "name",
    "schedule_type",
    "cron_expression",
    "timezone",
    "status",
    "next_run_at",
    "retry_count",
    "max_retries",
    "last_error",
    "parameters",
}
RUN_FIELDS = {
    "id",
    "job_id",
    "attempt",
    "status",
    "started_at",
    "finished_at",
    "heartbeat_at",
    "worker_id",
    "error_message",
    "steps",
}
DATASET_FIELDS = {
    "brand_id",
    "dataset",
    "state",
    "last_success_at",
    "last_attempt_at",
    "last_attempt_failed",
    "last_error",
}
STATUS_KEYS = {"datasets", "jobs", "stuck_runs", "workers", "worker_alert"}

# A command job that logs a line and reports one completed step for dataset `d_cmd`.
STEP_COMMAND = (
    "echo hello-from-command; "
    'echo \'{"step": "load", "status": "completed", "datasets": ["d_cmd"]}\' '
    '>> "$PIPECTL_STEPS_FILE"'
)

Cli = Callable[..., Any]


def when(value: str | None) -> datetime:
    """An ISO 8601 timestamp from the JSON contract: it must carry an offset."""
    assert value is not None
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    assert parsed.utcoffset() == timedelta(0), value
    return parsed


def add_job(cli: Cli, *args: str) -> dict[str, Any]:
    return cli("jobs", "add", *args, "--json").assert_ok().json()


def enqueue(cli: Cli, *args: str) -> dict[str, Any]:
    return cli("enqueue", *args, "--json").assert_ok().json()


def command_job(cli: Cli, command: str, *args: str) -> dict[str, Any]:
    return enqueue(cli, "command", "--params", json.dumps({"command": command}), *args)


def run_worker(cli: Cli, *args: str) -> None:
    result = cli("run-worker", "--once", *args).assert_ok()
    assert result.stdout == ""


def jobs_by_id(cli: Cli, *args: str) -> dict[int, dict[str, Any]]:
    return {
        job["id"]: job for job in cli("jobs", "list", "--all", "--json", *args).assert_ok().json()
    }


# -- db ---------------------------------------------------------------------------------------


def test_db_migrate_creates_the_store_and_is_idempotent(invoke: Cli, tmp_path: Path) -> None:
    path = tmp_path / "new" / "store.db"
    url = f"sqlite:///{path}"
    first = invoke("--database-url", url, "db", "migrate").assert_ok()
    assert first.stdout == ""
    assert "applied migrations 1" in first.stderr
    assert path.exists()
    second = invoke("--database-url", url, "db", "migrate").assert_ok()
    assert second.stdout == ""
    assert "up to date" in second.stderr
    invoke("--database-url", url, "jobs", "list", "--json").assert_ok()


def test_db_migrate_reads_the_url_from_the_environment(
    invoke: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "env.db"
    monkeypatch.setenv("PIPECTL_DATABASE_URL", f"sqlite:///{path}")
    invoke("db", "migrate").assert_ok()
    assert path.exists()
    assert invoke("jobs", "list", "--json").assert_ok().json() == []


def test_database_url_option_overrides_the_environment(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPECTL_DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert cli("jobs", "list", "--json").assert_ok().json() == []
    assert not (tmp_path / "elsewhere.db").exists()


def test_db_version(cli: Cli) -> None:
    result = cli("db", "version").assert_ok()
    assert re.fullmatch(r"installed: (\d+); this pipectl: \1\n", result.stdout), result


def test_db_version_json(cli: Cli) -> None:
    doc = cli("db", "version", "--json").assert_ok().json()
    assert doc["installed"] == doc["latest"]


@pytest.mark.parametrize("dialect", ["postgres", "sqlite"])
def test_db_sql_prints_the_schema(invoke: Cli, tmp_path: Path, dialect: str) -> None:
    missing = tmp_path / "never.db"
    result = invoke("--database-url", f"sqlite:///{missing}", "db", "sql", "--dialect", dialect)
    result.assert_ok()
    assert "CREATE TABLE scheduled_jobs" in result.stdout
    assert "CREATE TABLE scheduled_job_runs" in result.stdout
    assert not missing.exists()  # printing the SQL needs no store


def test_db_sql_defaults_to_postgres(invoke: Cli) -> None:
    result = invoke("db", "sql").assert_ok()
    assert "CREATE TABLE" in result.stdout
    assert "pipectl_" in result.stdout  # the SQL functions the postgres backend calls


# -- jobs add -----------------------------------------------------------------------------------


def test_jobs_add_prints_the_id_on_stdout(cli: Cli, counts: Callable[[], dict[str, int]]) -> None:
    first = cli("jobs", "add", "noop", "--cron", "0 3 * * *").assert_ok()
    assert first.stdout == "1\n"
    assert "added job 1" in first.stderr
    second = cli("jobs", "add", "noop", "--cron", "0 4 * * *").assert_ok()
    assert second.stdout == "2\n"
    assert counts()["scheduled_jobs"] == 2


def test_jobs_add_json_is_the_job_object(cli: Cli) -> None:
    before = datetime.now(UTC)
    job = add_job(cli, "noop", "--cron", "15 3 * * *")
    assert job.keys() >= JOB_FIELDS
    assert job["id"] == 1
    assert job["brand_id"] is None
    assert job["job_type"] == "noop"
    assert job["name"] == "noop"
    assert job["schedule_type"] == "recurring"
    assert job["cron_expression"] == "15 3 * * *"
    assert job["timezone"] == "UTC"
    assert job["status"] == "active"
    assert job["retry_count"] == 0
    assert job["max_retries"] == 3
    assert job["last_error"] is None
    assert job["parameters"] == {}
    next_run = when(job["next_run_at"])
    assert (next_run.hour, next_run.minute) == (3, 15)
    assert before < next_run <= before + timedelta(days=1)


def test_jobs_add_brand_name_and_paused(cli: Cli) -> None:
    job = add_job(
        cli, "noop", "--cron", "@daily", "--brand", "acme", "--name", "Nightly", "--paused"
    )
    assert job["brand_id"] == "acme"
    assert job["name"] == "Nightly"
    assert job["status"] == "paused"
    assert job["cron_expression"] == "0 0 * * *"
    assert jobs_by_id(cli, "--status", "paused").keys() == {job["id"]}


def test_jobs_add_parameters_from_param_and_params(cli: Cli) -> None:
    job = add_job(
        cli,
        "noop",
        "--cron",
        "0 3 * * *",
        "--params",
        '{"a": 1, "k": "from --params", "datasets": ["ads"]}',
        "--param",
        "k=v",
        "--param",
        "n:=5",
        "--param",
        'flags:=[1, "x", null]',
        "--param",
        "eq=a=b",
        "--param",
        'text:="quoted"',
    )
    assert job["parameters"] == {
        "a": 1,
        "k": "v",
        "n": 5,
        "flags": [1, "x", None],
        "eq": "a=b",
        "text": "quoted",
        "datasets": ["ads"],
    }


def test_jobs_add_timezone_schedules_in_wall_time(cli: Cli) -> None:
    job = add_job(cli, "noop", "--cron", "0 3 * * *", "--tz", "Europe/Berlin")
    assert job["timezone"] == "Europe/Berlin"
    local = when(job["next_run_at"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) == (3, 0)


def test_jobs_add_timeout_and_max_retries(cli: Cli) -> None:
    job = add_job(cli, "noop", "--cron", "0 3 * * *", "--timeout", "1h30m", "--max-retries", "5")
    assert job["timeout_seconds"] == 5400
    assert job["max_retries"] == 5
    assert add_job(cli, "noop", "--cron", "0 3 * * *", "--max-retries", "0")["max_retries"] == 0


def test_jobs_add_concurrency_key(cli: Cli) -> None:
    default = add_job(cli, "noop", "--cron", "0 3 * * *", "--brand", "acme")
    assert default["concurrency_key"] == "noop:acme"
    assert add_job(cli, "noop", "--cron", "0 3 * * *")["concurrency_key"] == "noop"
    named = add_job(cli, "noop", "--cron", "0 3 * * *", "--concurrency-key", "warehouse")
    assert named["concurrency_key"] == "warehouse"
    none = add_job(cli, "noop", "--cron", "0 3 * * *", "--no-concurrency-key")
    assert none["concurrency_key"] is None


def test_a_brand_of_the_longest_valid_length_gets_a_valid_default_key(cli: Cli) -> None:
    brand, twin = "b" * 199 + "1", "b" * 199 + "2"  # 200 characters, the most a brand may have
    added = add_job(cli, "noop", "--cron", "0 3 * * *", "--brand", brand)
    queued = enqueue(cli, "noop", "--brand", brand)
    other = enqueue(cli, "noop", "--brand", twin)
    key = added["concurrency_key"]
    assert queued["concurrency_key"] == key  # one brand, one key: they exclude each other
    assert len(key) == 200 and key.startswith("noop:bbb")
    assert other["concurrency_key"] != key  # two brands that share a long prefix do not


# -- jobs list / show / pause / resume / archive / edit --------------------------------------------


def test_jobs_list_filters(cli: Cli) -> None:
    acme = add_job(cli, "noop", "--cron", "0 3 * * *", "--brand", "acme")
    globex = add_job(cli, "sleep", "--cron", "0 3 * * *", "--brand", "globex")
    paused = add_job(cli, "noop", "--cron", "0 3 * * *", "--paused")
    archived = add_job(cli, "noop", "--cron", "0 3 * * *", "--brand", "acme")
    cli("jobs", "archive", str(archived["id"])).assert_ok()

    everything = cli("jobs", "list", "--all", "--json").assert_ok().json()
    assert [job["id"] for job in everything] == [1, 2, 3, 4]
    live = cli("jobs", "list", "--json").assert_ok().json()  # archived jobs hidden
    assert [job["id"] for job in live] == [1, 2, 3]
    assert all(job.keys() >= JOB_FIELDS for job in everything)
    assert jobs_by_id(cli, "--brand", "acme").keys() == {acme["id"], archived["id"]}
    assert jobs_by_id(cli, "--type", "sleep").keys() == {globex["id"]}
    assert jobs_by_id(cli, "--status", "paused").keys() == {paused["id"]}
    assert jobs_by_id(cli, "--status", "archived").keys() == {archived["id"]}
    assert jobs_by_id(cli, "--brand", "acme", "--status", "active").keys() == {acme["id"]}
    assert jobs_by_id(cli, "--type", "python").keys() == set()
    assert len(cli("jobs", "list", "--json", "--limit", "2").assert_ok().json()) == 2


def test_jobs_list_table(cli: Cli) -> None:
    empty = cli("jobs", "list").assert_ok()
    assert empty.stdout == ""
    assert "no jobs" in empty.stderr
    add_job(cli, "noop", "--cron", "0 3 * * *", "--brand", "acme", "--name", "nightly")
    add_job(cli, "noop", "--cron", "0 4 * * *", "--name", "global one")
    table = cli("jobs", "list").assert_ok().stdout
    assert "nightly" in table
    assert "acme" in table
    assert "global" in table
    assert "0 3 * * * UTC" in table


def test_jobs_show(cli: Cli) -> None:
    job = add_job(cli, "noop", "--cron", "0 3 * * *", "--name", "shown", "--param", "limit:=10")
    shown = cli("jobs", "show", str(job["id"]), "--json").assert_ok().json()
    assert shown.keys() >= JOB_FIELDS
    assert shown["id"] == job["id"]
    assert shown["runs"] == []
    table = cli("jobs", "show", str(job["id"])).assert_ok().stdout
    assert "shown" in table
    assert '{"limit": 10}' in table


def test_jobs_show_lists_recent_runs(cli: Cli) -> None:
    job = enqueue(cli, "noop", "--brand", "acme")
    run_worker(cli)
    shown = cli("jobs", "show", str(job["id"]), "--json").assert_ok().json()
    assert shown["status"] == "archived"
    assert len(shown["runs"]) == 1
    assert shown["runs"][0].keys() >= RUN_FIELDS
    assert shown["runs"][0]["status"] == "completed"


def test_jobs_pause_resume_archive(cli: Cli) -> None:
    job = add_job(cli, "noop", "--cron", "0 3 * * *")
    job_id = str(job["id"])

    paused = cli("jobs", "pause", job_id, "--json").assert_ok().json()
    assert paused.keys() >= JOB_FIELDS
    assert paused["status"] == "paused"

    resumed = cli("jobs", "resume", job_id, "--json").assert_ok().json()
    assert resumed["status"] == "active"
    assert when(resumed["next_run_at"]) > datetime.now(UTC)

    note = cli("jobs", "pause", job_id).assert_ok()
    assert note.stdout == ""
    assert f"job {job_id} paused" in note.stderr
    note = cli("jobs", "resume", job_id).assert_ok()
    assert note.stdout == ""
    assert f"job {job_id} resumed" in note.stderr

    archived = cli("jobs", "archive", job_id, "--json").assert_ok().json()
    assert archived["status"] == "archived"
    assert jobs_by_id(cli)[job["id"]]["status"] == "archived"


def test_jobs_archive_without_json_notes_on_stderr(cli: Cli) -> None:
    job_id = str(add_job(cli, "noop", "--cron", "0 3 * * *")["id"])
    result = cli("jobs", "archive", job_id).assert_ok()
    assert result.stdout == ""
    assert f"job {job_id} archived" in result.stderr


def test_jobs_edit_cron_reschedules(cli: Cli) -> None:
    job = add_job(cli, "noop", "--cron", "0 3 * * *")
    edited = cli("jobs", "edit", str(job["id"]), "--cron", "30 2 * * *", "--json").assert_ok()
    doc = edited.json()
    assert doc["cron_expression"] == "30 2 * * *"
    next_run = when(doc["next_run_at"])
    assert (next_run.hour, next_run.minute) == (2, 30)
    assert datetime.now(UTC) < next_run <= datetime.now(UTC) + timedelta(days=1)

    in_tokyo = cli("jobs", "edit", str(job["id"]), "--tz", "Asia/Tokyo", "--json").assert_ok()
    local = when(in_tokyo.json()["next_run_at"]).astimezone(ZoneInfo("Asia/Tokyo"))
    assert in_tokyo.json()["timezone"] == "Asia/Tokyo"
    assert (local.hour, local.minute) == (2, 30)


def test_jobs_edit_param_merges(cli: Cli) -> None:
    job = add_job(cli, "noop", "--cron", "0 3 * * *", "--params", '{"a": 1, "b": "x"}')
    other = add_job(cli, "noop", "--cron", "0 3 * * *", "--params", '{"a": 1, "b": "x"}')
    doc = (
        cli("jobs", "edit", str(job["id"]), "--param", "b=y", "--param", "c:=[3]", "--json")
        .assert_ok()
        .json()
    )
    assert doc["parameters"] == {"a": 1, "b": "y", "c": [3]}
    assert jobs_by_id(cli)[other["id"]]["parameters"] == {"a": 1, "b": "x"}


def test_jobs_edit_name_retries_timeout(cli: Cli) -> None:
    job = add_job(cli, "noop", "--cron", "0 3 * * *")
    result = cli(
        "jobs",
        "edit",
        str(job["id"]),
        "--name",
        "renamed",
        "--max-retries",
        "7",
        "--timeout",
        "45s",
    ).assert_ok()
    assert result.stdout == ""
    assert f"job {job['id']} updated" in result.stderr
    doc = jobs_by_id(cli)[job["id"]]
    assert (doc["name"], doc["max_retries"], doc["timeout_seconds"]) == ("renamed", 7, 45)
    assert doc["next_run_at"] == job["next_run_at"]  # no schedule change, no reschedule


# -- enqueue ------------------------------------------------------------------------------------


def test_enqueue_prints_the_id_and_json_has_created(cli: Cli) -> None:
    plain = cli("enqueue", "noop", "--brand", "acme").assert_ok()
    assert plain.stdout == "1\n"
    before = datetime.now(UTC)
    doc = enqueue(cli, "noop", "--brand", "globex")
    assert doc.keys() >= JOB_FIELDS
    assert doc["created"] is True
    assert doc["id"] == 2
    assert doc["schedule_type"] == "one_time"
    assert doc["cron_expression"] is None
    assert doc["status"] == "active"
    assert before - timedelta(seconds=5) <= when(doc["next_run_at"]) <= datetime.now(UTC)


def test_enqueue_dedupes_a_pending_identical_job(cli: Cli) -> None:
    first = enqueue(cli, "noop", "--brand", "acme", "--param", "since=2026-11-01")
    again = cli("enqueue", "noop", "--brand", "acme", "--param", "since=2026-11-01", "--json")
    again.assert_ok()
    assert again.json()["id"] == first["id"]
    assert again.json()["created"] is False
    assert f"job {first['id']} is already pending" in again.stderr_text
    plain = cli("enqueue", "noop", "--brand", "acme", "--param", "since=2026-11-01").assert_ok()
    assert plain.stdout == f"{first['id']}\n"
    assert "already pending" in plain.stderr_text
    # Other parameters or another brand are another job.
    assert enqueue(cli, "noop", "--brand", "acme", "--param", "since=2026-11-02")["created"]
    assert enqueue(cli, "noop", "--brand", "globex", "--param", "since=2026-11-01")["created"]


def test_enqueue_allow_duplicate(cli: Cli, counts: Callable[[], dict[str, int]]) -> None:
    first = enqueue(cli, "noop")
    duplicate = enqueue(cli, "noop", "--allow-duplicate")
    assert duplicate["created"] is True
    assert duplicate["id"] != first["id"]
    assert counts()["scheduled_jobs"] == 2


def test_enqueue_again_after_the_job_ran(cli: Cli) -> None:
    first = enqueue(cli, "noop")
    run_worker(cli)
    again = enqueue(cli, "noop")
    assert again["created"] is True
    assert again["id"] != first["id"]


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2030-01-01T09:00+01:00", "2030-01-01T08:00:00+00:00"),
        ("2030-01-01T09:00", "2030-01-01T09:00:00+00:00"),
        ("2030-01-01T09:00:00Z", "2030-01-01T09:00:00+00:00"),
    ],
)
def test_enqueue_at(cli: Cli, at: str, expected: str) -> None:
    doc = enqueue(cli, "noop", "--at", at)
    assert when(doc["next_run_at"]) == datetime.fromisoformat(expected)


def test_enqueue_in(cli: Cli) -> None:
    before = datetime.now(UTC)
    doc = enqueue(cli, "noop", "--in", "10m")
    after = datetime.now(UTC)
    assert (
        before + timedelta(minutes=10) <= when(doc["next_run_at"]) <= after + timedelta(minutes=10)
    )


def test_enqueue_options(cli: Cli) -> None:
    doc = enqueue(
        cli,
        "noop",
        "--name",
        "backfill",
        "--max-retries",
        "1",
        "--timeout",
        "5m",
        "--concurrency-key",
        "k",
    )
    assert (doc["name"], doc["max_retries"], doc["timeout_seconds"]) == ("backfill", 1, 300)
    assert doc["concurrency_key"] == "k"
    assert enqueue(cli, "sleep", "--no-concurrency-key")["concurrency_key"] is None


# -- run-worker ---------------------------------------------------------------------------------


def test_run_worker_once_runs_noop_and_command_jobs(cli: Cli) -> None:
    noop = enqueue(cli, "noop", "--brand", "acme", "--param", 'datasets:=["d_noop"]')
    command = command_job(cli, STEP_COMMAND, "--brand", "acme")
    result = cli("run-worker", "--once", "--worker-id", "test-worker").assert_ok()
    assert result.stdout == ""
    assert "2 completed, 0 failed" in result.stderr

    runs = cli("runs", "--json").assert_ok().json()
    assert {run["job_id"] for run in runs} == {noop["id"], command["id"]}
    assert all(run["status"] == "completed" for run in runs)
    assert all(run["worker_id"] == "test-worker" for run in runs)
    jobs = jobs_by_id(cli)
    assert jobs[noop["id"]]["status"] == jobs[command["id"]]["status"] == "archived"
    datasets = {d["dataset"]: d for d in cli("datasets", "list", "--json").assert_ok().json()}
    assert datasets["d_noop"]["state"] == datasets["d_cmd"]["state"] == "fresh"

    workers = cli("status", "--json").assert_ok().json()["workers"]
    assert [w["id"] for w in workers] == ["test-worker"]


def test_run_worker_once_records_a_failure_and_exits_0(cli: Cli) -> None:
    job = command_job(cli, "echo boom >&2; exit 3")
    run_worker(cli)
    doc = jobs_by_id(cli)[job["id"]]
    assert doc["status"] == "active"
    assert doc["retry_count"] == 1
    assert doc["last_error"] == "command exited with status 3: boom"
    (run,) = cli("runs", "--json").assert_ok().json()
    assert run["status"] == "failed"
    assert run["error_message"] == "command exited with status 3: boom"


def test_run_worker_max_jobs_and_poll_interval(cli: Cli) -> None:
    enqueue(cli, "noop", "--brand", "a")
    enqueue(cli, "noop", "--brand", "b")
    run_worker(cli, "--max-jobs", "1", "--poll-interval", "0.1s")
    assert len(cli("runs", "--json").assert_ok().json()) == 1
    run_worker(cli)
    assert len(cli("runs", "--json").assert_ok().json()) == 2


def test_run_worker_with_nothing_due(cli: Cli) -> None:
    add_job(cli, "noop", "--cron", "0 3 1 1 *")
    run_worker(cli)
    assert cli("runs", "--json").assert_ok().json() == []


# -- status -------------------------------------------------------------------------------------


def test_status_json_keys_and_worker_alert(cli: Cli) -> None:
    enqueue(cli, "noop", "--brand", "acme", "--param", 'datasets:=["ads"]')
    doc = cli("status", "--json").assert_ok().json()
    assert doc.keys() >= STATUS_KEYS
    assert doc["workers"] == []
    assert "no worker has ever registered" in doc["worker_alert"]
    assert doc["stuck_runs"] == []
    (dataset,) = doc["datasets"]
    assert dataset.keys() >= DATASET_FIELDS
    assert (dataset["brand_id"], dataset["dataset"], dataset["state"]) == ("acme", "ads", "never")
    (job,) = doc["jobs"]
    assert job.keys() >= JOB_FIELDS

    run_worker(cli)
    doc = cli("status", "--json").assert_ok().json()
    assert doc["worker_alert"] is None
    assert doc["workers"][0]["live"] is True
    (dataset,) = doc["datasets"]
    assert dataset["state"] == "fresh"
    when(dataset["last_success_at"])
    when(dataset["last_attempt_at"])
    assert doc["jobs"] == []  # the one-time job is archived: status shows live jobs only


def test_status_table(cli: Cli) -> None:
    empty = cli("status").assert_ok()
    assert "No jobs and no datasets yet" in empty.stdout
    assert "WARNING: no worker has ever registered" in empty.stderr_text

    add_job(cli, "noop", "--cron", "0 3 * * *", "--brand", "acme", "--name", "nightly")
    add_job(cli, "noop", "--cron", "0 3 * * *", "--name", "global_job")
    enqueue(cli, "noop", "--brand", "globex", "--param", 'datasets:=["reviews"]')
    run_worker(cli)
    table = cli("status").assert_ok()
    for text in ("acme", "globex", "global", "nightly", "global_job", "reviews", "fresh"):
        assert text in table.stdout
    assert "workers:" in table.stdout
    assert "WARNING" not in table.stderr


def test_status_brand_filter(cli: Cli) -> None:
    add_job(cli, "noop", "--cron", "0 3 * * *", "--brand", "acme", "--param", "datasets=a_ds")
    add_job(cli, "noop", "--cron", "0 3 * * *", "--brand", "globex", "--param", "datasets=g_ds")
    add_job(cli, "noop", "--cron", "0 3 * * *", "--param", "datasets=global_ds")
    doc = cli("status", "--brand", "acme", "--json").assert_ok().json()
    assert [d["dataset"] for d in doc["datasets"]] == ["a_ds"]
    assert {j["brand_id"] for j in doc["jobs"]} == {"acme"}
    table = cli("status", "--brand", "acme").assert_ok().stdout
    assert "a_ds" in table
    assert "g_ds" not in table
    assert "global_ds" not in table


def age_datasets(db_path: Path, by: timedelta) -> None:
    """Move every dataset's last success and attempt `by` into the past, in the SQLite file."""
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT rowid, last_success_at, last_attempt_at FROM dataset_status")
        for rowid, *stamps in rows.fetchall():
            aged = [
                stamp and (datetime.fromisoformat(stamp) - by).isoformat(timespec="microseconds")
                for stamp in stamps
            ]
            conn.execute(
                "UPDATE dataset_status SET last_success_at = ?, last_attempt_at = ? "
                "WHERE rowid = ?",
                [*aged, rowid],
            )
    conn.close()


def test_status_check_exit_codes(cli: Cli, db_path: Path) -> None:
    assert cli("status", "--check").exit_code == 0  # nothing to be stale yet
    enqueue(cli, "noop", "--brand", "acme", "--param", 'datasets:=["ads"]')

    never = cli("status", "--check", "--json")
    assert never.exit_code == 1
    assert never.json()["ok"] is False
    assert never.json()["datasets"][0]["state"] == "never"
    assert "Traceback" not in never.stderr

    run_worker(cli)
    fresh = cli("status", "--check", "--json")
    assert fresh.exit_code == 0
    assert fresh.json()["ok"] is True
    assert cli("status", "--check").exit_code == 0

    age_datasets(db_path, timedelta(hours=1))  # the data is an hour old, written not waited for
    cli("datasets", "set", "ads", "--warn-after", "30m", "--error-after", "1d").assert_ok()
    warn = cli("status", "--check", "--json")
    assert (warn.exit_code, warn.json()["datasets"][0]["state"]) == (0, "warn")

    cli("datasets", "set", "ads", "--warn-after", "30m", "--error-after", "45m").assert_ok()
    stale = cli("status", "--check", "--json")
    assert (stale.exit_code, stale.json()["datasets"][0]["state"]) == (1, "stale")
    assert cli("status", "--check").exit_code == 1
    assert cli("status").exit_code == 0  # without --check, stale data is not a failure


def test_status_check_only_looks_at_the_brand_asked_for(cli: Cli) -> None:
    enqueue(cli, "noop", "--brand", "acme", "--param", "datasets=ads")
    run_worker(cli)
    add_job(cli, "noop", "--cron", "0 3 * * *", "--brand", "globex", "--param", "datasets=reviews")
    assert cli("status", "--check").exit_code == 1
    assert cli("status", "--check", "--brand", "acme").exit_code == 0
    assert cli("status", "--check", "--brand", "globex").exit_code == 1


# -- retry --------------------------------------------------------------------------------------


def test_retry_lists_jobs_in_backoff_and_now_rearms(cli: Cli) -> None:
    empty = cli("retry").assert_ok()
    assert "no jobs in backoff" in empty.stderr
    assert cli("retry", "--json").assert_ok().json() == []

    job = command_job(cli, "exit 1", "--brand", "acme")
    started = datetime.now(UTC)
    run_worker(cli)
    (backoff,) = cli("retry", "--json").assert_ok().json()
    assert backoff.keys() >= JOB_FIELDS
    assert backoff["id"] == job["id"]
    assert backoff["retry_count"] == 1
    assert (backoff["attempt"], backoff["attempts_allowed"]) == (2, 4)
    assert backoff["after_last_retry"] == "the job ends failed"
    assert backoff["last_error"] == "command exited with status 1"
    delay = when(backoff["next_run_at"]) - started
    assert timedelta(minutes=4) < delay <= timedelta(minutes=5, seconds=30)
    cli("retry", "--brand", "globex", "--json").assert_pipectl_error(2)  # no such brand
    add_job(cli, "noop", "--cron", "0 3 * * *", "--brand", "globex")
    assert cli("retry", "--brand", "globex", "--json").assert_ok().json() == []
    table = cli("retry").assert_ok().stdout
    assert "2 of 4" in table

    rearmed = cli("retry", str(job["id"]), "--now", "--json").assert_ok().json()
    assert rearmed["status"] == "active"
    assert rearmed["retry_count"] == 1
    assert when(rearmed["next_run_at"]) <= datetime.now(UTC)
    run_worker(cli)
    (backoff,) = cli("retry", "--json").assert_ok().json()
    assert backoff["retry_count"] == 2

    note = cli("retry", str(job["id"]), "--now").assert_ok()
    assert note.stdout == ""
    assert "will run at the next poll" in note.stderr


def test_retry_now_gives_a_failed_one_time_job_a_fresh_budget(cli: Cli) -> None:
    job = command_job(cli, "exit 1", "--max-retries", "0")
    run_worker(cli)
    assert jobs_by_id(cli)[job["id"]]["status"] == "failed"
    rearmed = cli("retry", str(job["id"]), "--now", "--json").assert_ok().json()
    assert (rearmed["status"], rearmed["retry_count"]) == ("active", 0)


def test_retry_id_without_now_is_bad_input(cli: Cli) -> None:
    job = command_job(cli, "exit 1")
    run_worker(cli)
    result = cli("retry", str(job["id"]))
    result.assert_pipectl_error(2)
    assert "--now" in result.stderr


# -- recover ------------------------------------------------------------------------------------


def _stuck_run(cli: Cli, url: str, heartbeat_age: timedelta) -> tuple[int, int]:
    """A run claimed by a worker that then died: its heartbeat is `heartbeat_age` old."""
    started = datetime.now(UTC) - heartbeat_age
    job = enqueue(
        cli, "noop", "--brand", "acme", "--at", (started - timedelta(minutes=1)).isoformat()
    )
    store = open_store(url)
    try:
        (claim,) = store.claim_due("dead-worker", started, 1)
    finally:
        store.close()
    return job["id"], claim.run.id


def test_recover_dry_run_writes_nothing(
    cli: Cli, sqlite_url: str, snapshot: Callable[[], Any]
) -> None:
    job_id, run_id = _stuck_run(cli, sqlite_url, timedelta(hours=1))
    (stuck,) = cli("status", "--json").assert_ok().json()["stuck_runs"]
    assert (stuck["id"], stuck["brand_id"]) == (run_id, "acme")

    before = snapshot()
    (listed,) = cli("recover", "--dry-run", "--json").assert_ok().json()
    assert listed.keys() >= RUN_FIELDS
    assert (listed["id"], listed["job_id"], listed["brand_id"]) == (run_id, job_id, "acme")
    assert listed["status"] == "running"
    table = cli("recover", "--dry-run").assert_ok().stdout
    assert "would recover" in table
    assert "dead-worker" in table
    assert snapshot() == before


def test_recover_stuck_after(cli: Cli, sqlite_url: str, snapshot: Callable[[], Any]) -> None:
    job_id, run_id = _stuck_run(cli, sqlite_url, timedelta(hours=1))
    before = snapshot()
    assert cli("recover", "--stuck-after", "2h", "--json").assert_ok().json() == []
    assert cli("recover", "--stale-after", "2h", "--json").assert_ok().json() == []  # former name
    former = {"PIPECTL_STALE_AFTER": "2h", "PIPECTL_START_GRACE": "2h"}  # grace ≤ stuck_after
    assert cli("recover", "--json", env=former).assert_ok().json() == []
    assert snapshot() == before

    (recovered,) = cli("recover", "--stuck-after", "30m", "--json").assert_ok().json()
    assert (recovered["id"], recovered["job_id"]) == (run_id, job_id)
    assert recovered["status"] == "failed"
    assert "stuck" in recovered["error_message"]
    run = cli("runs", "show", str(run_id), "--json").assert_ok().json()
    assert run["status"] == "failed"
    assert "no heartbeat from worker dead-worker" in run["error_message"]
    job = jobs_by_id(cli)[job_id]
    assert (job["status"], job["retry_count"]) == ("active", 1)

    again = cli("recover").assert_ok()
    assert "no stuck runs" in again.stderr
    assert cli("recover", "--json").assert_ok().json() == []


def test_recover_table(cli: Cli, sqlite_url: str) -> None:
    _, run_id = _stuck_run(cli, sqlite_url, timedelta(hours=1))
    table = cli("recover").assert_ok().stdout
    assert "recovered" in table
    assert str(run_id) in table


# -- runs ---------------------------------------------------------------------------------------


def test_runs_filters(cli: Cli) -> None:
    ok = enqueue(cli, "noop", "--brand", "acme")
    bad = command_job(cli, "exit 1", "--brand", "globex")
    run_worker(cli)
    cli("retry", str(bad["id"]), "--now").assert_ok()
    run_worker(cli)

    every = cli("runs", "--json").assert_ok().json()
    assert [run["id"] for run in every] == [3, 2, 1]  # newest first
    assert all(run.keys() >= RUN_FIELDS for run in every)
    assert all(when(run["started_at"]) <= when(run["finished_at"]) for run in every)
    assert {r["id"] for r in cli("runs", "--job", str(bad["id"]), "--json").json()} == {2, 3}
    assert [r["job_id"] for r in cli("runs", "--status", "completed", "--json").json()] == [
        ok["id"]
    ]
    assert len(cli("runs", "--status", "failed", "--json").json()) == 2
    assert [r["id"] for r in cli("runs", "--limit", "1", "--json").json()] == [3]
    assert [r["job_id"] for r in cli("runs", "--brand", "acme", "--json").json()] == [ok["id"]]

    table = cli("runs").assert_ok()
    assert "completed" in table.stdout
    assert "failed" in table.stdout
    assert "status 1" in table.stdout


def test_runs_empty(cli: Cli) -> None:
    assert cli("runs", "--json").assert_ok().json() == []
    empty = cli("runs").assert_ok()
    assert empty.stdout == ""
    assert "no runs" in empty.stderr


def test_runs_show_has_logs_and_steps(cli: Cli) -> None:
    command_job(cli, STEP_COMMAND, "--brand", "acme")
    run_worker(cli)
    run = cli("runs", "show", "1", "--json").assert_ok().json()
    assert run.keys() >= RUN_FIELDS
    assert "hello-from-command" in run["logs"]
    (step,) = run["steps"]
    assert (step["name"], step["status"], step["datasets"]) == ("load", "completed", ["d_cmd"])
    table = cli("runs", "show", "1").assert_ok().stdout
    assert "hello-from-command" in table
    assert "load" in table
    assert "d_cmd" in table
    assert "logs" in table


# -- datasets -----------------------------------------------------------------------------------


def test_datasets_set_and_list(cli: Cli, counts: Callable[[], dict[str, int]]) -> None:
    doc = (
        cli("datasets", "set", "ads", "--warn-after", "6h", "--error-after", "1d", "--json")
        .assert_ok()
        .json()
    )
    assert doc == {
        "dataset": "ads",
        "brand_id": None,
        "warn_after_seconds": 21600,
        "error_after_seconds": 86400,
    }
    note = cli("datasets", "set", "ads", "--warn-after", "2h", "--error-after", "4h").assert_ok()
    assert note.stdout == ""
    assert "ads: warn after 2h, stale after 4h" in note.stderr
    assert counts()["dataset_thresholds"] == 1  # set again: replaced, not added
    # A global default threshold alone does not make a dataset appear.
    assert cli("datasets", "list", "--json").assert_ok().json() == []

    per_brand = cli(
        "datasets", "set", "ads", "--warn-after", "1h", "--error-after", "2h", "--brand", "acme"
    ).assert_ok()
    assert "for acme" in per_brand.stderr
    (listed,) = cli("datasets", "list", "--json").assert_ok().json()
    assert listed.keys() >= DATASET_FIELDS
    assert (listed["brand_id"], listed["dataset"], listed["state"]) == ("acme", "ads", "never")
    assert listed["warn_after_seconds"] == 3600

    enqueue(cli, "noop", "--brand", "globex", "--param", "datasets=ads")
    run_worker(cli)
    listed = cli("datasets", "list", "--json").assert_ok().json()
    by_brand = {d["brand_id"]: d for d in listed}
    assert by_brand["globex"]["state"] == "fresh"
    assert by_brand["globex"]["warn_after_seconds"] == 7200  # the dataset's default
    assert by_brand["globex"]["last_attempt_failed"] is False
    assert [
        d["brand_id"] for d in cli("datasets", "list", "--brand", "globex", "--json").json()
    ] == ["globex"]
    table = cli("datasets", "list").assert_ok().stdout
    assert "ads" in table
    assert "never" in table
    assert "fresh" in table


def test_datasets_list_shows_last_attempt_failed(cli: Cli) -> None:
    command_job(
        cli, "exit 2", "--brand", "acme", "--param", 'datasets:=["reviews"]', "--max-retries", "0"
    )
    run_worker(cli)
    (dataset,) = cli("datasets", "list", "--json").assert_ok().json()
    assert dataset["state"] == "never"
    assert dataset["last_success_at"] is None
    assert dataset["last_attempt_failed"] is True
    assert "status 2" in dataset["last_error"]
    when(dataset["last_attempt_at"])


# -- demo, help, the real entry points -----------------------------------------------------------


def test_demo(invoke: Cli, tmp_path: Path) -> None:
    path = tmp_path / "demo" / "demo.db"
    result = invoke("demo", "--database", str(path)).assert_ok()
    for brand in ("acme", "globex", "initech"):
        assert brand in result.stdout
    assert "Demo store:" in result.stderr
    jobs = invoke("--database-url", f"sqlite:///{path}", "jobs", "list", "--json").json()
    assert len(jobs) >= 4


def test_demo_refuses_to_overwrite_an_existing_file(invoke: Cli, tmp_path: Path) -> None:
    precious = tmp_path / "notes.txt"
    precious.write_bytes(b"not a demo\n")
    result = invoke("demo", "--database", str(precious))
    assert precious.read_bytes() == b"not a demo\n"
    result.assert_pipectl_error(2)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["jobs"],
        ["jobs", "add"],
        ["jobs", "list"],
        ["jobs", "show"],
        ["jobs", "pause"],
        ["jobs", "resume"],
        ["jobs", "archive"],
        ["jobs", "edit"],
        ["enqueue"],
        ["run-worker"],
        ["status"],
        ["retry"],
        ["recover"],
        ["runs"],
        ["runs", "show"],
        ["datasets", "list"],
        ["datasets", "set"],
        ["db", "migrate"],
        ["db", "version"],
        ["db", "sql"],
        ["demo"],
    ],
    ids=lambda command: " ".join(command) or "pipectl",
)
def test_help(invoke: Cli, command: list[str]) -> None:
    result = invoke(*command, "--help").assert_ok()
    assert result.stdout.startswith("Usage: pipectl")
    assert result.stderr == ""


def _console_script() -> str:
    return str(Path(sys.executable).with_name("pipectl"))


def test_python_dash_m_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipectl", "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    for command in ("run-worker", "status", "enqueue", "jobs", "runs", "datasets", "db"):
        assert command in result.stdout


def test_console_script_exit_codes(tmp_path: Path) -> None:
    """The installed script maps errors the same way as the in-process `main()` does."""
    missing = tmp_path / "missing.db"
    base = [_console_script(), "--database-url", f"sqlite:///{missing}"]
    unreachable = subprocess.run([*base, "status"], capture_output=True, text=True, timeout=30)
    assert unreachable.returncode == 3
    assert unreachable.stdout == ""
    assert len(unreachable.stderr.splitlines()) == 1
    assert "pipectl db migrate" in unreachable.stderr
    assert not missing.exists()

    subprocess.run([*base, "db", "migrate"], check=True, capture_output=True, timeout=30)
    bad = subprocess.run(
        [*base, "jobs", "add", "noop", "--cron", "not a cron"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.startswith("pipectl: error: invalid cron expression")
    assert len(bad.stderr.splitlines()) == 1

    added = subprocess.run(
        [*base, "jobs", "add", "noop", "--cron", "0 3 * * *"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (added.returncode, added.stdout) == (0, "1\n")


@pytest.mark.parametrize("args", [[name, "--help"] for name in sorted(TOP_LEVEL)])
def test_a_top_level_command_reads_the_same_without_the_command_groups(args: list[str]) -> None:
    """main() runs a top-level command in an app without `jobs`, `runs`, … (Typer would build
    all their commands first): what the user sees is the whole app's."""
    from typer.testing import CliRunner

    whole = CliRunner().invoke(app, args, prog_name="pipectl")
    alone = CliRunner().invoke(_app(groups=False), args, prog_name="pipectl")
    assert (alone.exit_code, alone.stdout) == (whole.exit_code, whole.stdout) == (0, whole.stdout)


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["status", "--json"], "status"),
        (["--database-url", "sqlite:///x.db", "run-worker", "--once"], "run-worker"),
        (["--database-url=sqlite:///x.db", "jobs", "list"], "jobs"),
        (["-h"], None),
        ([], None),
    ],
)
def test_main_finds_the_command_past_the_global_options(
    argv: list[str], command: str | None
) -> None:
    assert _command(argv) == command
