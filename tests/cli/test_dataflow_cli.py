"""`jobs add/edit --after/--requires-fresh`, `datasets graph` and what `status` and `jobs list`
show of triggers and holds, through the real entry point."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from helpers_cli import CliResult, Invoke

SYNC = '{"command": "true", "datasets": ["ads"]}'
ROLLUP = '{"command": "true", "datasets": ["roas"]}'


def assert_refused(result: CliResult, message: str) -> None:
    """Invalid input: exit 2 and one line on stderr that says why, no traceback."""
    assert result.exit_code == 2, result
    assert message in result.stderr_text and "Traceback" not in result.stderr
    assert len(result.stderr_lines) == 1


@pytest.fixture
def chain(cli: Invoke) -> tuple[str, str]:
    sync = cli("jobs", "add", "command", "--brand", "acme", "--cron", "0 6 * * *", "--params", SYNC)
    rollup = cli(
        "jobs",
        "add",
        "command",
        "--brand",
        "acme",
        "--name",
        "rollup",
        "--after",
        "ads",
        "--params",
        ROLLUP,
    )
    return sync.assert_ok().stdout.strip(), rollup.assert_ok().stdout.strip()


def test_add_after_makes_a_data_triggered_job(cli: Invoke, chain: tuple[str, str]) -> None:
    job = cli("jobs", "show", chain[1], "--json").assert_ok().json()
    assert (job["schedule_type"], job["next_run_at"], job["cron_expression"]) == (
        "datasets",
        None,
        None,
    )
    assert job["inputs"] == [{"kind": "after", "scope": "brand", "dataset": "ads"}]
    listed = cli("jobs", "list").assert_ok().stdout
    assert "after ads" in listed and "on new data" in listed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--after", "nothing"], "no job produces and no threshold declares nothing"),
        (["--after", "roas", "--params", SYNC], "cycle: the new job (command acme) → job 2"),
        ([], "give --cron, --after DATASET, or both"),
        (["--after", "ads", "--max-hold", "0s"], "invalid duration '0s'"),
        (["--after", "a:b", "--allow-unknown"], "global:NAME"),
    ],
)
def test_add_refuses_and_writes_nothing(
    cli: Invoke,
    chain: tuple[str, str],
    snapshot: Callable[[], dict[str, list[tuple[Any, ...]]]],
    args: list[str],
    message: str,
) -> None:
    before = snapshot()
    result = cli("jobs", "add", "command", "--brand", "acme", "--param", "command=true", *args)
    assert_refused(result, message)
    assert snapshot() == before


def test_a_global_job_cannot_mix_fan_out_and_global_inputs(cli: Invoke) -> None:
    result = cli(
        "jobs",
        "add",
        "command",
        "--param",
        "command=true",
        "--after",
        "ads",
        "--after",
        "global:fx",
        "--allow-unknown",
    )
    assert (
        result.exit_code == 2
        and "all per brand (one run per brand whose input refreshed) or all global:NAME"
        in (result.stderr_text)
    )


def test_edit_refuses_a_cycle_and_accepts_unknown_on_request(
    cli: Invoke, chain: tuple[str, str]
) -> None:
    sync, rollup = chain
    result = cli("jobs", "edit", sync, "--after", "roas")
    assert result.exit_code == 2
    assert f"job {sync} (command acme) → job {rollup} (rollup) → job {sync}" in result.stderr_text
    assert cli("jobs", "edit", rollup, "--requires-fresh", "orders").exit_code == 2
    edited = (
        cli(
            "jobs",
            "edit",
            rollup,
            "--requires-fresh",
            "orders",
            "--allow-unknown",
            "--max-hold",
            "2h",
            "--json",
        )
        .assert_ok()
        .json()
    )
    assert edited["inputs"][-1] == {"kind": "fresh", "scope": "brand", "dataset": "orders"}
    assert edited["max_hold_seconds"] == 7200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--requires-fresh", "ads", "--cron", "not a cron"], "cron"),
        (["--after", "ads", "--cron", "0 * * * *", "--tz", "Mars/Olympus"], "Mars/Olympus"),
        (
            ["--requires-fresh", "ads", "--tz", "Europe/Paris"],
            "runs on its inputs and has no cron schedule: give --cron",
        ),
        (["--after", "nothing", "--name", "x"], "no job produces and no threshold declares"),
        (["--requires-fresh", "roas", "--params", SYNC], "cycle"),
    ],
)
def test_edit_refuses_and_writes_nothing(
    cli: Invoke,
    chain: tuple[str, str],
    snapshot: Callable[[], dict[str, list[tuple[Any, ...]]]],
    args: list[str],
    message: str,
) -> None:
    """Inputs and the other changes are all checked before anything is written."""
    before = snapshot()
    result = cli("jobs", "edit", chain[1], *args)
    assert_refused(result, message)
    assert snapshot() == before


def test_edit_cron_gives_a_data_triggered_job_a_cron_as_well(
    cli: Invoke, chain: tuple[str, str]
) -> None:
    _, rollup = chain
    edited = (
        cli("jobs", "edit", rollup, "--cron", "0 * * * *", "--requires-fresh", "ads", "--json")
        .assert_ok()
        .json()
    )
    assert (edited["schedule_type"], edited["cron_expression"]) == ("recurring", "0 * * * *")
    assert edited["next_run_at"] is not None
    assert edited["inputs"] == [
        {"kind": "after", "scope": "brand", "dataset": "ads"},
        {"kind": "fresh", "scope": "brand", "dataset": "ads"},
    ]
    one_time = cli("enqueue", "command", "--brand", "acme", "--param", "command=true")
    job_id = one_time.assert_ok().stdout.split()[0]
    refused = cli("jobs", "edit", job_id, "--cron", "0 * * * *")
    assert refused.exit_code == 2 and "is one-time" in refused.stderr_text


def test_graph_as_a_tree_json_and_dot(cli: Invoke, chain: tuple[str, str]) -> None:
    sync, rollup = chain
    tree = cli("datasets", "graph").assert_ok().stdout
    assert "ads" in tree and f"job {sync}" in tree and "triggers (ads)" in tree
    doc = cli("datasets", "graph", "--brand", "acme", "--json").assert_ok().json()
    ads = next(item for item in doc["datasets"] if item["dataset"] == "ads")
    assert [p["job_id"] for p in ads["producers"]] == [int(sync)]
    assert [(c["job_id"], c["kind"]) for c in ads["consumers"]] == [(int(rollup), "after")]
    dot = cli("datasets", "graph", "--dot").assert_ok().stdout
    assert dot.startswith("digraph pipectl {") and f'"dataset:ads" -> "job:{rollup}";' in dot
    assert cli("datasets", "graph", "--dot", "--json").exit_code == 2
    assert cli("datasets", "graph", "--brand", "nobody").exit_code == 2


def test_status_shows_producers_and_what_a_held_job_waits_on(
    cli: Invoke, chain: tuple[str, str]
) -> None:
    sync, _ = chain
    clicks = '{"command": "true", "datasets": ["clicks"]}'
    cli("enqueue", "command", "--brand", "acme", "--params", clicks).assert_ok()
    cli("run-worker", "--once").assert_ok()
    held = (
        cli(
            "jobs",
            "add",
            "command",
            "--brand",
            "acme",
            "--name",
            "report",
            "--param",
            "command=true",
            "--requires-fresh",
            "roas",
            "--requires-fresh",
            "clicks",
            "--allow-unknown",
            "--cron",
            "0 0 1 1 *",
        )
        .assert_ok()
        .stdout.strip()
    )
    cli("jobs", "run", held).assert_ok()
    cli("run-worker", "--once").assert_ok()
    doc = cli("status", "--json").assert_ok().json()
    job = next(j for j in doc["jobs"] if j["id"] == int(held))
    assert job["held_since"] is not None
    assert job["waiting_on"]["requires_fresh"] == ["roas", "clicks"]
    # Only the input that holds it (clicks is fresh), with its state.
    holding = [{"brand_id": "acme", "dataset": "roas", "state": "never", "last_success_at": None}]
    assert job["waiting_on"]["holding"] == holding
    assert "waiting for acme/roas (never succeeded)" in job["waiting_on"]["description"]
    ads = next(d for d in doc["datasets"] if d["dataset"] == "ads")
    assert ads["producers"] == [int(sync)]
    text = cli("status", env={"COLUMNS": "250"}).assert_ok().stdout
    assert f"ads ← job {sync}" in " ".join(text.split())
    assert "waiting for acme/roas" in " ".join(text.split())
    listed = cli("jobs", "list", "--json").assert_ok().json()
    assert next(j for j in listed if j["id"] == int(held))["waiting_on"]["holding"] == holding
    json.dumps(listed)
