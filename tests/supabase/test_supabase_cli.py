"""The CLI on the supabase backend, end to end: real `pipectl` processes with SUPABASE_URL and
SUPABASE_SERVICE_ROLE_KEY set and no PIPECTL_DATABASE_URL, through the real supabase client and
the PostgREST stand-in (tests/supabase_server.py), to real PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from ageing import age_run
from procs import wait_for
from supabase_server import SupabaseProject, make_key
from typer.testing import CliRunner

from pipectl.cli import app
from pipectl.client import Client
from pipectl.store.migrations import latest_version
from pipectl.store.supabase import SupabaseStore

pytestmark = pytest.mark.postgres


@dataclass(frozen=True)
class Ran:
    exit_code: int
    stdout: str
    stderr: str

    def assert_ok(self) -> Ran:
        assert self.exit_code == 0, self
        assert "Traceback" not in self.stderr, self
        return self

    def assert_one_line_error(self, exit_code: int = 3) -> str:
        """pipectl's own error: that exit code, nothing on stdout, one line on stderr."""
        assert self.exit_code == exit_code, self
        assert self.stdout == "", self
        assert len(self.stderr.splitlines()) == 1, self
        assert self.stderr.startswith("pipectl: error: "), self
        return self.stderr


Pipectl = Callable[..., Ran]


@pytest.fixture
def pipectl() -> Pipectl:
    """Run `python -m pipectl ARGS…` in a real process: the test's environment (cleaned of the
    developer's PIPECTL_*/SUPABASE_* variables) plus `env`."""

    def run(*args: str, env: Mapping[str, str]) -> Ran:
        result = subprocess.run(
            [sys.executable, "-m", "pipectl", *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Ran(result.returncode, result.stdout, result.stderr)

    return run


@pytest.fixture
def worker_processes(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `pipectl run-worker` processes (killed at the end); logs go under tmp_path.
    Unlike procs.Workers, they get no PIPECTL_DATABASE_URL: SUPABASE_URL must select the store."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
        log = (tmp_path / f"worker-{len(procs)}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipectl", "run-worker", *args],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_install_enqueue_run_and_status(
    supabase_project: SupabaseProject, pipectl: Pipectl
) -> None:
    env = supabase_project.env()

    # Not installed yet: each command says how to install the schema, in one line, exit 3.
    for args in (["status"], ["db", "migrate"], ["run-worker", "--once"]):
        error = pipectl(*args, env=env).assert_one_line_error(3)
        assert "pipectl db sql" in error and "SQL editor" in error, error

    # Installed as a user does it: `pipectl db sql` run in the project's SQL editor.
    script = pipectl("db", "sql", env=env).assert_ok().stdout
    with psycopg.connect(supabase_project.dsn, autocommit=True) as editor:
        editor.execute(script)
    assert "up to date" in pipectl("db", "migrate", env=env).assert_ok().stderr
    version = json.loads(pipectl("db", "version", "--json", env=env).assert_ok().stdout)
    assert version == {
        "installed": latest_version("postgres"),
        "latest": latest_version("postgres"),
    }

    queued = pipectl(
        "enqueue",
        "noop",
        "--brand",
        "acme",
        "--param",
        'datasets:=["ads_performance"]',
        "--json",
        env=env,
    ).assert_ok()
    job = json.loads(queued.stdout)
    assert job["status"] == "active" and job["created"] is True

    worker = pipectl("run-worker", "--once", "--worker-id", "supabase-1", env=env).assert_ok()
    assert supabase_project.service_key not in worker.stdout + worker.stderr

    status = json.loads(pipectl("status", "--json", env=env).assert_ok().stdout)
    (dataset,) = status["datasets"]
    assert (dataset["brand_id"], dataset["dataset"], dataset["state"]) == (
        "acme",
        "ads_performance",
        "fresh",
    )
    assert [w["id"] for w in status["workers"]] == ["supabase-1"]
    store = SupabaseStore(supabase_project.store_url, supabase_project.service_key)
    assert store.get_job(job["id"]).status == "archived"  # type: ignore[union-attr]
    store.close()
    runs = json.loads(pipectl("runs", "--json", env=env).assert_ok().stdout)
    assert [(r["job_id"], r["status"], r["worker_id"]) for r in runs] == [
        (job["id"], "completed", "supabase-1")
    ]
    assert pipectl("status", "--check", env=env).exit_code == 0


def test_recover_a_run_whose_worker_was_killed(
    supabase_url: str,
    supabase_project: SupabaseProject,
    pipectl: Pipectl,
    worker_processes: Callable[..., subprocess.Popen[str]],
) -> None:
    """kill -9 mid-run; `pipectl recover` (another process) fails the stuck run and sends its
    job through the retry rule — all of it over the API."""
    env = {"PIPECTL_HEARTBEAT_INTERVAL": "0.3s", "PIPECTL_POLL_INTERVAL": "0.5s"}
    queued = pipectl("enqueue", "sleep", "--brand", "acme", "--param", "seconds:=60", env={})
    job_id = int(queued.assert_ok().stdout)
    doomed = worker_processes("--worker-id", "doomed", env=env)
    with Client.from_env() as client:
        run = wait_for(lambda: client.list_runs(job_id=job_id, status="running"))[0]  # type: ignore[index]
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait()
        age_run(supabase_project.dsn, run.id)

        preview = json.loads(pipectl("recover", "--dry-run", "--json", env={}).stdout)
        assert [r["id"] for r in preview] == [run.id]
        assert client.get_run(run.id).status == "running"

        done = json.loads(pipectl("recover", "--json", env={}).stdout)
        assert [(r["id"], r["status"]) for r in done] == [(run.id, "failed")]
        failed = client.get_run(run.id)
        assert "stuck" in (failed.error_message or "") and "doomed" in (failed.error_message or "")
        assert client.get_job(job_id).retry_count == 1
        assert pipectl("recover", "--json", env={}).assert_ok().stdout.strip() == "[]"


# Every command a user can run against a Supabase store, in an order that gives each
# something to act on. `{job}`/`{run}` are filled in as the test goes.
EVERY_COMMAND = [
    [
        "jobs",
        "add",
        "noop",
        "--cron",
        "0 6 * * *",
        "--brand",
        "acme",
        "--param",
        'datasets:=["orders"]',
    ],
    ["jobs", "list"],
    ["jobs", "list", "--json"],
    ["jobs", "show", "{job}"],
    ["jobs", "edit", "{job}", "--cron", "30 6 * * *"],
    ["jobs", "pause", "{job}"],
    ["jobs", "resume", "{job}"],
    ["retry", "{job}", "--now"],
    ["retry", "--json"],
    ["enqueue", "noop", "--brand", "beta"],
    ["datasets", "set", "orders", "--warn-after", "1h", "--error-after", "2h"],
    ["datasets", "list", "--json"],
    ["status"],
    ["status", "--json", "--brand", "acme"],
    ["runs", "--json"],
    ["recover", "--dry-run"],
    ["metrics"],
    ["doctor"],
    ["db", "version"],
    ["db", "migrate"],
    ["jobs", "archive", "{job}"],
]


def test_every_command_works_with_the_supabase_variables(
    supabase_url: str, supabase_project: SupabaseProject
) -> None:
    """In-process (one import of supabase for all), environment as the user sets it."""
    runner = CliRunner()
    job = json.loads(
        runner.invoke(app, ["jobs", "add", "noop", "--cron", "0 5 * * *", "--json"]).stdout
    )
    for args in EVERY_COMMAND:
        args = [arg.format(job=job["id"]) for arg in args]
        result = runner.invoke(app, args)
        # No worker runs here while jobs are due: doctor says so and fails (issue 13).
        expected = 1 if args == ["doctor"] else 0
        assert result.exit_code == expected, (args, result.stdout, result.stderr, result.exception)
        if args == ["doctor"]:
            assert "no live worker" in " ".join(result.stdout.split())
        assert supabase_project.service_key not in result.stdout + result.stderr, args
    with Client.from_env() as client:
        assert client.store.display_url == supabase_url
        assert client.get_job(job["id"]).cron_expression == "30 6 * * *"


# -- errors: one line on stderr, exit 3, never the key ---------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("args", [["status"], ["run-worker", "--once"]], ids=" ".join)
def test_a_wrong_key_is_one_line_and_never_printed(
    supabase_project: SupabaseProject, pipectl: Pipectl, args: list[str]
) -> None:
    supabase_project.install_schema()
    wrong = make_key("service_role", secret="not-this-projects-secret-but-as-long-as-it")
    error = pipectl(*args, env=supabase_project.env(wrong)).assert_one_line_error(3)
    assert "refused the key" in error and "SUPABASE_SERVICE_ROLE_KEY" in error, error
    assert wrong not in error and wrong.split(".")[1] not in error


def test_the_anon_key_is_refused_and_never_printed(
    supabase_project: SupabaseProject, pipectl: Pipectl
) -> None:
    supabase_project.install_schema()
    anon = supabase_project.anon_key
    result = pipectl("jobs", "list", "--json", env=supabase_project.env(anon))
    error = result.assert_one_line_error(3)
    assert "service_role" in error and "anon" in error, error
    assert anon not in error


def test_a_missing_key_says_which_variable_to_set(
    supabase_project: SupabaseProject, pipectl: Pipectl
) -> None:
    error = pipectl("status", env={"SUPABASE_URL": supabase_project.url}).assert_one_line_error(3)
    assert "SUPABASE_SERVICE_ROLE_KEY" in error, error


def test_an_unreachable_url_exits_3(supabase_project: SupabaseProject, pipectl: Pipectl) -> None:
    port = closed_port()
    env = {"SUPABASE_URL": f"http://127.0.0.1:{port}", "SUPABASE_SERVICE_ROLE_KEY": "x.y.z"}
    for args in (["status"], ["db", "migrate"], ["run-worker", "--once"]):
        error = pipectl(*args, env=env).assert_one_line_error(3)
        assert f"cannot reach Supabase at 127.0.0.1:{port}" in error, error
        assert "x.y.z" not in error


def test_a_bad_supabase_url_is_bad_input(pipectl: Pipectl) -> None:
    env = {"SUPABASE_URL": "abc.supabase.co", "SUPABASE_SERVICE_ROLE_KEY": "x.y.z"}
    error = pipectl("status", env=env).assert_one_line_error(2)
    assert "SUPABASE_URL" in error, error


def test_database_url_wins_over_supabase(
    supabase_project: SupabaseProject, pipectl: Pipectl, tmp_path: Path
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'local.db'}"
    env = {**supabase_project.env(), "PIPECTL_DATABASE_URL": sqlite_url}
    pipectl("db", "migrate", env=env).assert_ok()
    assert json.loads(pipectl("jobs", "list", "--json", env=env).assert_ok().stdout) == []
    assert (tmp_path / "local.db").exists()
