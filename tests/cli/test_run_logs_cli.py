"""`runs logs` and `runs show --follow` (issue 14 §5), and the default concurrency key by job
name (§6), end to end — on SQLite and on PostgreSQL. (Following a run while another process
runs it: tests/process/test_operator_processes.py.)"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from helpers_cli import CliResult, invoke

from pipectl import clock
from pipectl.store import open_store

Cli = Callable[..., CliResult]


@pytest.fixture
def cli(both_url: str) -> Cli:
    def run(*args: str) -> CliResult:
        return invoke("--database-url", both_url, *args)

    return run


def ran(cli: Cli, command: str) -> dict:  # type: ignore[type-arg]
    params = json.dumps({"command": command})
    job = cli("enqueue", "command", "--params", params, "--max-retries", "0", "--json")
    cli("run-worker", "--once").assert_ok()
    (run,) = cli("runs", "--job", str(job.assert_ok().json()["id"]), "--json").assert_ok().json()
    return run


def messages(text: str) -> list[str]:
    return [line.split(" ", 2)[2] for line in text.splitlines()]


def test_runs_logs_prints_the_log_and_follow_exits_with_the_outcome(cli: Cli) -> None:
    ok = ran(cli, "echo one; echo two >&2")
    assert messages(cli("runs", "logs", str(ok["id"])).assert_ok().stdout) == ["one", "two"]
    followed = cli("runs", "logs", str(ok["id"]), "-f").assert_ok()
    assert messages(followed.stdout) == ["one", "two"]
    assert f"run {ok['id']} completed" in followed.stderr

    failed = ran(cli, "echo partial; exit 4")
    result = cli("runs", "logs", str(failed["id"]), "--follow")
    assert result.exit_code == 1 and messages(result.stdout) == ["partial"]
    assert f"run {failed['id']} failed: command exited with status 4" in result.stderr

    shown = cli("runs", "show", str(failed["id"]), "--follow")
    assert shown.exit_code == 1
    head, _, log = shown.stdout.partition("\nlogs\n")
    assert "status" in head and messages(log) == ["partial"]


def test_runs_logs_bad_input(cli: Cli) -> None:
    cli("runs", "logs", "999").assert_pipectl_error(2)
    cli("runs", "show", "1", "--follow", "--json").assert_pipectl_error(2)
    cli("runs", "logs").assert_usage_error()


def test_a_manual_sync_with_the_recurring_jobs_name_waits_for_it(cli: Cli, both_url: str) -> None:
    add = ["jobs", "add", "sleep", "--cron", "0 3 * * *", "--brand", "acme", "--json"]
    meta = cli(*add, "--name", "meta sync").assert_ok().json()
    reviews = cli(*add, "--name", "reviews sync").assert_ok().json()
    assert (meta["concurrency_key"], reviews["concurrency_key"]) == (
        "meta sync:acme",
        "reviews sync:acme",
    )
    for job in (meta, reviews):
        cli("jobs", "run", str(job["id"])).assert_ok()
    manual = cli("enqueue", "sleep", "--brand", "acme", "--name", "meta sync", "--json")
    assert manual.assert_ok().json()["concurrency_key"] == "meta sync:acme"
    unnamed = cli("enqueue", "noop", "--brand", "acme", "--json").assert_ok().json()
    assert unnamed["concurrency_key"] == "noop:acme"

    store = open_store(both_url)
    try:
        claimed = {c.job.id for c in store.claim_due("w", clock.now(), 10)}
        # The two recurring jobs no longer share a queue; the manual sync waits for meta sync.
        assert claimed == {meta["id"], reviews["id"], unnamed["id"]}
        assert store.claim_due("w", clock.now(), 10) == []  # still held by meta sync's run
    finally:
        store.close()


def test_renaming_a_job_moves_its_default_key_and_keeps_a_given_one(cli: Cli) -> None:
    add = ["jobs", "add", "noop", "--cron", "0 3 * * *", "--brand", "acme", "--json"]
    named = cli(*add, "--name", "meta").assert_ok().json()
    given = cli(*add, "--name", "orders", "--concurrency-key", "shared").assert_ok().json()
    edited = cli("jobs", "edit", str(named["id"]), "--name", "meta v2", "--json").assert_ok()
    assert edited.json()["concurrency_key"] == "meta v2:acme"
    kept = cli("jobs", "edit", str(given["id"]), "--name", "orders v2", "--json").assert_ok()
    assert kept.json()["concurrency_key"] == "shared"
