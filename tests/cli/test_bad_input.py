"""Bad input, table-driven: exit 2, one `pipectl: error:` line on stderr (Typer's own usage errors
may span lines), nothing on stdout, nothing written. Odd but valid data is stored verbatim. A
missing schema or an unreachable store is exit 3 and creates nothing. Never a traceback."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

Cli = Callable[..., Any]

PIPECTL = "pipectl"  # pipectl's own error: exactly one line
USAGE = "usage"  # Typer's usage error: several lines

DURATION_OPTIONS = {
    "jobs add --timeout": ["jobs", "add", "noop", "--cron", "0 3 * * *", "--timeout={}"],
    "jobs edit --timeout": ["jobs", "edit", "1", "--timeout={}"],
    "enqueue --timeout": ["enqueue", "noop", "--timeout={}"],
    "enqueue --in": ["enqueue", "noop", "--in={}"],
    "recover --stale-after": ["recover", "--stale-after={}"],
    "run-worker --poll-interval": ["run-worker", "--once", "--poll-interval={}"],
    "datasets set --warn-after": ["datasets", "set", "ads", "--warn-after={}", "--error-after=9d"],
    "datasets set --error-after": ["datasets", "set", "ads", "--warn-after=1s", "--error-after={}"],
}
BAD_DURATIONS = ["5x", "-1m", "", "0s", "1h 5x", "4000w"]

PARAMS_COMMANDS = {
    "jobs add": ["jobs", "add", "noop", "--cron", "0 3 * * *"],
    "enqueue": ["enqueue", "noop"],
    "jobs edit": ["jobs", "edit", "1"],
}
BAD_PARAMS = {
    "not JSON": "{bad",
    "a list": "[1]",
    "a string": '"text"',
    "null": "null",
    "empty": "",
    "NaN": '{"x": NaN}',
}
BAD_PARAM_PAIRS = {
    "no equals": "novalue",
    "empty key": "=value",
    "key with a space": "bad key=v",
    "bad typed JSON": "k:={bad",
    "empty typed JSON": "k:=",
    "typed Infinity": "k:=Infinity",
}
ENORMOUS = "x" * (64 * 1024)
DEEP = "[" * 5000 + "]" * 5000
HUGE_ID = "99999999999999999999"

ID_COMMANDS = {
    "jobs show": ["jobs", "show", "{}"],
    "jobs pause": ["jobs", "pause", "{}"],
    "jobs resume": ["jobs", "resume", "{}"],
    "jobs archive": ["jobs", "archive", "{}"],
    "jobs edit": ["jobs", "edit", "{}", "--name", "renamed"],
    "runs show": ["runs", "show", "{}"],
    "retry --now": ["retry", "{}", "--now"],
    "runs --job": ["runs", "--job", "{}"],
}


def _fill(template: list[str], value: str) -> list[str]:
    return [part.replace("{}", value) for part in template]


def _cases() -> Iterator[Any]:
    # Cron expressions.
    for cron in [
        "not a cron",
        "61 * * * *",
        "",
        "* * * *",
        "0 3 * * * *",
        "@reboot",
        "0 3 * * *\nrm",
    ]:
        yield pytest.param(
            ["jobs", "add", "noop", "--cron", cron], PIPECTL, id=f"add cron {cron!r}"
        )
    for cron in ["not a cron", "61 * * * *", "* 24 * * *"]:
        yield pytest.param(["jobs", "edit", "1", "--cron", cron], PIPECTL, id=f"edit cron {cron!r}")
    yield pytest.param(
        ["jobs", "add", "noop", "--cron", "0 0 30 2 *"],
        PIPECTL,
        id="add cron never fires",
    )
    yield pytest.param(
        ["jobs", "edit", "1", "--cron", "0 0 31 4 *"],
        PIPECTL,
        id="edit cron never fires",
    )
    # Timezones.
    for tz in ["Mars/Phobos", "", "../../etc/passwd", "/etc/localtime", "UTC\n", "utc+1"]:
        yield pytest.param(
            ["jobs", "add", "noop", "--cron", "0 3 * * *", "--tz", tz], PIPECTL, id=f"add tz {tz!r}"
        )
    yield pytest.param(["jobs", "edit", "1", "--tz", "Mars/Phobos"], PIPECTL, id="edit tz")
    # Job types and what each type demands of its parameters.
    yield pytest.param(["jobs", "add", "meta_sink", "--cron", "0 3 * * *"], PIPECTL, id="add type")
    yield pytest.param(["enqueue", "meta_sink"], PIPECTL, id="enqueue type")
    yield pytest.param(["enqueue", "noop\nx"], PIPECTL, id="enqueue type with newline")
    for args, label in [
        (["enqueue", "command"], "command without command"),
        (["enqueue", "command", "--param", "command=  "], "blank command"),
        (["enqueue", "python", "--param", "target=nope"], "python bad target"),
        (["enqueue", "sleep", "--param", "seconds=abc"], "sleep seconds not a number"),
        (["enqueue", "sleep", "--param", "seconds:=-1"], "sleep seconds negative"),
        (["enqueue", "noop", "--param", "datasets:=5"], "datasets not a list"),
        (["jobs", "edit", "1", "--param", "datasets:=[1]"], "edit datasets not names"),
    ]:
        yield pytest.param(args, PIPECTL, id=label)
    # --params / --param.
    for command, base in PARAMS_COMMANDS.items():
        for label, value in BAD_PARAMS.items():
            yield pytest.param(
                [*base, "--params", value], PIPECTL, id=f"{command} --params {label}"
            )
        for label, pair in BAD_PARAM_PAIRS.items():
            yield pytest.param([*base, "--param", pair], PIPECTL, id=f"{command} --param {label}")
        yield pytest.param(
            [*base, "--params", json.dumps({"blob": ENORMOUS})],
            PIPECTL,
            id=f"{command} enormous --params",
        )
        yield pytest.param(
            [*base, "--params", '{"a": ' + DEEP + "}"],
            PIPECTL,
            id=f"{command} deeply nested --params",
        )
    yield pytest.param(
        ["enqueue", "noop", "--param", f"blob={ENORMOUS}"], PIPECTL, id="enqueue enormous --param"
    )
    yield pytest.param(
        ["enqueue", "noop", "--param", f"a:={DEEP}"],
        PIPECTL,
        id="enqueue deeply nested --param",
    )
    # Durations.
    for label, template in DURATION_OPTIONS.items():
        for value in BAD_DURATIONS:
            yield pytest.param(_fill(template, value), PIPECTL, id=f"{label} {value!r}")
    # Dates.
    for at in ["tomorrow", "2026-13-01", "", "2026-02-30T10:00", "2026-11-29 25:00", "12/01/2026"]:
        yield pytest.param(["enqueue", "noop", "--at", at], PIPECTL, id=f"--at {at!r}")
    for at in ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00+01:00"]:
        yield pytest.param(["enqueue", "noop", "--at", at], PIPECTL, id=f"--at {at!r}")
    yield pytest.param(
        ["enqueue", "noop", "--at", "2030-01-01T09:00", "--in", "5m"], PIPECTL, id="--at and --in"
    )
    # Ids: unknown, huge, not numbers.
    for command, template in ID_COMMANDS.items():
        yield pytest.param(_fill(template, "999"), PIPECTL, id=f"{command} unknown id")
        yield pytest.param(_fill(template, HUGE_ID), USAGE, id=f"{command} huge id")
        for value in ["abc", "0", "-1", "1.5", ""]:
            yield pytest.param(_fill(template, value), USAGE, id=f"{command} id {value!r}")
    # Transitions the job's state does not allow (1 active, 2 archived, 3 in backoff, 4 paused).
    for args, label in [
        (["jobs", "resume", "1"], "resume an active job"),
        (["jobs", "pause", "2"], "pause an archived job"),
        (["jobs", "archive", "2"], "archive an archived job"),
        (["jobs", "resume", "2"], "resume an archived job"),
        (["retry", "2", "--now"], "retry an archived job"),
        (["retry", "4", "--now"], "retry a paused job"),
        (["jobs", "edit", "2", "--cron", "0 3 * * *"], "edit the cron of a one-time job"),
        (["jobs", "edit", "1"], "edit nothing"),
        (["jobs", "edit", "1", "--params", "{}"], "edit with empty params"),
        (["retry", "3"], "retry without --now"),
        (["retry", "--now"], "retry --now without an id"),
    ]:
        yield pytest.param(args, PIPECTL, id=label)
    for base in (["jobs", "add", "noop", "--cron", "0 3 * * *"], ["enqueue", "noop"]):
        yield pytest.param(
            [*base, "--concurrency-key", "k", "--no-concurrency-key"],
            PIPECTL,
            id=f"{base[0]} both concurrency options",
        )
    # Names: control characters, empty, too long.
    for brand in ["a\x01b", "a\nb", "a\tb", "a\x1b[31mb", "a\udcffb", "", " ", "b" * 201]:
        yield pytest.param(
            ["enqueue", "noop", "--brand", brand], PIPECTL, id=f"enqueue brand {brand[:8]!r}"
        )
    for args, label in [
        (["jobs", "add", "noop", "--cron", "0 3 * * *", "--brand", "a\x01b"], "add brand"),
        (
            ["datasets", "set", "ads", "--warn-after=1h", "--error-after=2h", "--brand", "a\nb"],
            "threshold brand",
        ),
        (["jobs", "add", "noop", "--cron", "0 3 * * *", "--name", "x\x07"], "add name"),
        (["jobs", "edit", "1", "--name", "x\ny"], "edit name"),
        (["jobs", "edit", "1", "--name", ""], "edit empty name"),
        (["enqueue", "noop", "--concurrency-key", "k\x00"], "concurrency key"),
        (["run-worker", "--once", "--worker-id", "w\n1"], "worker id"),
        (["datasets", "set", "ads\x01", "--warn-after=1h", "--error-after=2h"], "dataset name"),
    ]:
        yield pytest.param(args, PIPECTL, id=f"control characters in {label}")
    for args in (
        ["jobs", "list", "--brand"],
        ["runs", "--brand"],
        ["retry", "--brand"],
        ["datasets", "list", "--brand"],
        ["status", "--brand"],
        ["status", "--check", "--brand"],
    ):
        yield pytest.param(
            [*args, "a\x01b"],
            PIPECTL,
            id=f"control characters in {' '.join(args)}",
        )
    # Thresholds, statuses, dialects.
    yield pytest.param(
        ["datasets", "set", "ads", "--warn-after", "2h", "--error-after", "1h"],
        PIPECTL,
        id="error-after shorter than warn-after",
    )
    for status in ["bogus", "ACTIVE", "archived "]:
        yield pytest.param(
            ["jobs", "list", "--status", status], PIPECTL, id=f"jobs status {status!r}"
        )
    for status in ["bogus", "archived", "paused"]:
        yield pytest.param(["runs", "--status", status], PIPECTL, id=f"runs status {status!r}")
    yield pytest.param(["db", "sql", "--dialect", "oracle"], PIPECTL, id="db sql dialect")
    # Typer's own checks.
    for args, label in [
        (["jobs", "add", "noop"], "add without --cron"),
        (["jobs", "add", "--cron", "0 3 * * *"], "add without a type"),
        (["enqueue"], "enqueue without a type"),
        (["datasets", "set", "ads", "--warn-after", "1h"], "set without --error-after"),
        (["jobs", "add", "noop", "--cron", "0 3 * * *", "--max-retries", "101"], "retries > 100"),
        (["jobs", "add", "noop", "--cron", "0 3 * * *", "--max-retries=-1"], "retries < 0"),
        (["enqueue", "noop", "--max-retries", "many"], "retries not a number"),
        (["jobs", "list", "--limit", "0"], "jobs list --limit 0"),
        (["runs", "--limit", "0"], "runs --limit 0"),
        (["runs", "--limit", "10001"], "runs --limit too big"),
        (["run-worker", "--once", "--max-jobs", "0"], "--max-jobs 0"),
        (["frobnicate"], "unknown command"),
        (["jobs", "list", "--frob"], "unknown option"),
        (["status", "extra"], "extra argument"),
    ]:
        yield pytest.param(args, USAGE, id=label)


def _build_seed(path: Path, invoke: Cli) -> None:
    """Jobs 1 (active recurring, acme), 2 (archived one-time), 3 (one-time in backoff) and
    4 (paused), a threshold, runs 1-2 and a worker."""

    def cli(*args: str) -> None:
        result = invoke("--database-url", f"sqlite:///{path}", *args)
        assert result.exit_code == 0, result

    cli("db", "migrate")
    cli("jobs", "add", "noop", "--cron", "0 3 * * *", "--brand", "acme", "--param", "datasets=ads")
    cli("enqueue", "noop", "--brand", "globex")
    cli("enqueue", "command", "--param", "command=exit 1")
    cli("jobs", "add", "noop", "--cron", "0 3 * * *", "--paused")
    cli("datasets", "set", "ads", "--warn-after", "1h", "--error-after", "2h")
    cli("run-worker", "--once", "--worker-id", "seed-worker")


@pytest.fixture(scope="module")
def seed_file(tmp_path_factory: pytest.TempPathFactory, invoke: Cli) -> Path:
    path = tmp_path_factory.mktemp("seed") / "seed.db"
    with pytest.MonkeyPatch.context() as patch:
        import os

        for key in list(os.environ):
            if key.startswith(("PIPECTL_", "SUPABASE_")):
                patch.delenv(key)
        _build_seed(path, invoke)
    return path


@pytest.fixture
def sqlite_url(seed_file: Path, tmp_path: Path) -> str:
    """This module's store: a copy of the seeded one (faster than seeding each test)."""
    path = tmp_path / "pipectl.db"
    shutil.copyfile(seed_file, path)
    return f"sqlite:///{path}"


@pytest.mark.parametrize(("args", "kind"), list(_cases()))
def test_rejected_and_nothing_written(
    cli: Cli,
    counts: Callable[[], dict[str, int]],
    snapshot: Callable[[], Any],
    args: list[str],
    kind: str,
) -> None:
    before_counts, before = counts(), snapshot()
    result = cli(*args)
    if kind == PIPECTL:
        result.assert_pipectl_error(2)
    else:
        result.assert_usage_error()
    assert counts() == before_counts
    assert snapshot() == before


def test_the_seed_is_what_the_cases_assume(cli: Cli) -> None:
    jobs = {job["id"]: job for job in cli("jobs", "list", "--all", "--json").assert_ok().json()}
    assert {i: (j["schedule_type"], j["status"]) for i, j in jobs.items()} == {
        1: ("recurring", "active"),
        2: ("one_time", "archived"),
        3: ("one_time", "active"),
        4: ("recurring", "paused"),
    }
    assert jobs[3]["retry_count"] == 1
    assert [run["id"] for run in cli("runs", "--json").assert_ok().json()] == [2, 1]


@pytest.mark.parametrize(
    "size", [pytest.param(64 * 1024, id="64 KiB"), pytest.param(64 * 1024 + 1, id="64 KiB + 1")]
)
def test_parameters_size_limit_is_64_kib(cli: Cli, snapshot: Callable[[], Any], size: int) -> None:
    params = json.dumps({"b": ""})
    blob = "x" * (size - len(params))
    before = snapshot()
    result = cli("enqueue", "noop", "--params", json.dumps({"b": blob}), "--json")
    if size <= 64 * 1024:
        assert result.assert_ok().json()["parameters"] == {"b": blob}
    else:
        result.assert_pipectl_error(2)
        assert "64 KiB" in result.stderr
        assert snapshot() == before


def test_jobs_edit_rejects_a_merge_over_64_kib(cli: Cli, snapshot: Callable[[], Any]) -> None:
    half = "x" * (40 * 1024)
    cli("jobs", "edit", "1", "--params", json.dumps({"first": half})).assert_ok()
    before = snapshot()
    result = cli("jobs", "edit", "1", "--params", json.dumps({"second": half}))
    result.assert_pipectl_error(2)
    assert snapshot() == before


# -- odd but valid data -------------------------------------------------------------------------

ODD_STRINGS = [
    "O'Brien; DROP TABLE scheduled_jobs;--",
    "ünïcødé brand",
    '"quoted"',
    "[bold red]markup[/]",
    "emoji 🚀 & <tags>",
    "Robert'); DELETE FROM scheduled_job_runs; --",
]


@pytest.mark.parametrize("text", ODD_STRINGS)
def test_odd_strings_are_stored_verbatim(
    cli: Cli, counts: Callable[[], dict[str, int]], text: str
) -> None:
    before = counts()
    added = cli(
        "jobs", "add", "noop", "--cron", "0 3 * * *", "--brand", text, "--name", text,
        "--param", f"note={text}", "--param", "datasets=ds", "--json",
    ).assert_ok().json()  # fmt: skip
    queued = (
        cli("enqueue", "noop", "--brand", text, "--params", json.dumps({"q": text}), "--json")
        .assert_ok()
        .json()
    )
    assert counts()["scheduled_jobs"] == before["scheduled_jobs"] + 2
    assert counts()["scheduled_job_runs"] == before["scheduled_job_runs"]

    stored = {job["id"]: job for job in cli("jobs", "list", "--json").assert_ok().json()}
    assert stored[added["id"]]["brand_id"] == text
    assert stored[added["id"]]["name"] == text
    assert stored[added["id"]]["parameters"] == {"note": text, "datasets": "ds"}
    assert stored[queued["id"]]["brand_id"] == text
    assert stored[queued["id"]]["parameters"] == {"q": text}
    mine = cli("jobs", "list", "--brand", text, "--json").assert_ok().json()
    assert {job["id"] for job in mine} == {added["id"], queued["id"]}
    datasets = cli("status", "--brand", text, "--json").assert_ok().json()["datasets"]
    assert [(d["brand_id"], d["dataset"]) for d in datasets] == [(text, "ds")]
    shown = cli("jobs", "show", str(added["id"])).assert_ok().stdout
    assert text in shown  # printed as data, never read as rich markup


# -- the store: unsupported, unreachable, without a schema ------------------------------------------

STORE_COMMANDS = [
    ["status"],
    ["status", "--check"],
    ["enqueue", "noop"],
    ["recover"],
    ["recover", "--dry-run"],
    ["retry"],
    ["retry", "1", "--now"],
    ["runs"],
    ["runs", "--job", "1"],
    ["runs", "show", "1"],
    ["jobs", "add", "noop", "--cron", "0 3 * * *"],
    ["jobs", "list"],
    ["jobs", "show", "1"],
    ["jobs", "pause", "1"],
    ["jobs", "resume", "1"],
    ["jobs", "archive", "1"],
    ["jobs", "edit", "1", "--name", "x"],
    ["datasets", "list"],
    ["datasets", "set", "ads", "--warn-after", "1h", "--error-after", "2h"],
    ["db", "version"],
    ["run-worker", "--once"],
]


def _ids(args: list[str]) -> str:
    return " ".join(args)


@pytest.mark.parametrize("args", STORE_COMMANDS, ids=_ids)
def test_schema_missing_exits_3_and_creates_nothing(
    invoke: Cli, tmp_path: Path, args: list[str]
) -> None:
    folder = tmp_path / "fresh"
    result = invoke("--database-url", f"sqlite:///{folder / 'pipectl.db'}", *args)
    result.assert_pipectl_error(3)
    assert "pipectl db migrate" in result.stderr
    assert not folder.exists()


def test_schema_missing_with_the_url_from_the_environment(
    invoke: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "env.db"
    monkeypatch.setenv("PIPECTL_DATABASE_URL", f"sqlite:///{path}")
    result = invoke("status", "--json")
    result.assert_pipectl_error(3)
    assert "pipectl db migrate" in result.stderr
    assert not path.exists()


def test_the_default_store_without_migrate_exits_3(invoke: Cli, tmp_path: Path) -> None:
    result = invoke("jobs", "list")
    result.assert_pipectl_error(3)
    assert "pipectl db migrate" in result.stderr
    assert not (tmp_path / "home" / "data" / "pipectl").exists()


@pytest.mark.parametrize("args", [a for a in STORE_COMMANDS if a != ["db", "version"]], ids=_ids)
def test_a_sqlite_file_without_the_schema_exits_3(
    invoke: Cli, tmp_path: Path, args: list[str]
) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE unrelated (x)")
    conn.close()
    result = invoke("--database-url", f"sqlite:///{path}", *args)
    result.assert_pipectl_error(3)
    assert "pipectl db migrate" in result.stderr
    conn = sqlite3.connect(path)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert tables == {"unrelated"}


def test_db_version_reports_a_file_without_the_schema(invoke: Cli, tmp_path: Path) -> None:
    """`db version` is the one command that answers for a store without the schema: 'none'."""
    path = tmp_path / "other.db"
    sqlite3.connect(path).close()
    result = invoke("--database-url", f"sqlite:///{path}", "db", "version").assert_ok()
    assert result.stdout.startswith("installed: none;")


@pytest.mark.parametrize(
    "make_url",
    [
        pytest.param(lambda tmp: f"sqlite:///{tmp}", id="a directory"),
        pytest.param(
            lambda tmp: (
                (tmp / "garbage.db").write_bytes(b"not sqlite " * 200)
                and f"sqlite:///{tmp / 'garbage.db'}"
            ),
            id="not a SQLite file",
        ),
        pytest.param(lambda tmp: "postgresql://pipectl@127.0.0.1:1/pipectl", id="postgres down"),
    ],
)
@pytest.mark.parametrize(
    "args", [["status"], ["jobs", "list", "--json"], ["db", "migrate"]], ids=_ids
)
def test_an_unreachable_store_exits_3(
    invoke: Cli, tmp_path: Path, make_url: Callable[[Path], str], args: list[str]
) -> None:
    result = invoke("--database-url", make_url(tmp_path), *args)
    result.assert_pipectl_error(3)


@pytest.mark.parametrize(
    "url",
    ["mysql://user@host/db", "http://example.com/db", "", "sqlite:/relative.db", "sqlite://"],
)
@pytest.mark.parametrize(
    "args",
    [
        ["jobs", "list"],
        ["status", "--check"],
        ["db", "migrate"],
        ["db", "version"],
        ["run-worker", "--once"],
    ],
    ids=_ids,
)
def test_unsupported_database_url_exits_2(
    invoke: Cli, tmp_path: Path, url: str, args: list[str]
) -> None:
    before = sorted(tmp_path.rglob("*"))
    result = invoke("--database-url", url, *args)
    result.assert_pipectl_error(2)
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    ("setting", "value", "args"),
    [
        ("PIPECTL_POLL_INTERVAL", "5x", ["run-worker", "--once"]),
        ("PIPECTL_STALE_AFTER", "-1m", ["recover"]),
        ("PIPECTL_MAX_RETRIES", "many", ["enqueue", "noop"]),
        ("PIPECTL_WARN_AFTER", "", ["status"]),
    ],
    ids=lambda value: value if isinstance(value, str) else _ids(value),
)
def test_bad_settings_in_the_environment_exit_2(
    cli: Cli, snapshot: Callable[[], Any], setting: str, value: str, args: list[str]
) -> None:
    before = snapshot()
    result = cli(*args, env={setting: value})
    result.assert_pipectl_error(2)
    assert setting in result.stderr
    assert snapshot() == before
