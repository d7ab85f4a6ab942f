"""Every code sample in README.md and docs/ works.

Python samples run: a page's samples, in order, as one script (later ones use the `client` the
first one made), in a fresh interpreter against a temporary SQLite store, once with
`ads_performance` declared by a job that never ran and once with it stale after a failed attempt.
`meta_sync`, the plugin job type the samples queue, is installed for real: a package with an
entry point in the `pipectl.job_types` group, on PYTHONPATH, as README.md's "Job types" shows.

Shell samples are not run (they install packages, start daemons, write to /etc): every `pipectl`
invocation in an sh, cron or systemd block is parsed by the real command line, so an unknown
command or option, a missing argument or a bad value type fails the test.
"""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from pipectl.cli import app

ROOT = Path(__file__).parents[2]
# docs/cli.md is generated from the commands' help, and checked by test_docs_current.py.
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "cli.md")]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
PLUGIN = {
    "mycompany/__init__.py": "",
    "mycompany/pipelines.py": "class MetaSync:\n    def run(self, ctx):\n        ctx.log.info('synced')\n",
    "mycompany_pipelines-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: mycompany-pipelines\nVersion: 1.0\n",
    "mycompany_pipelines-1.0.dist-info/entry_points.txt": (
        "[pipectl.job_types]\nmeta_sync = mycompany.pipelines:MetaSync\n"
    ),
}


def samples(page: Path, languages: set[str]) -> list[str]:
    return [body for language, body in FENCE.findall(page.read_text()) if language in languages]


PYTHON_PAGES = [page for page in PAGES if samples(page, {"python"})]


@pytest.fixture
def plugin_path(tmp_path: Path) -> Path:
    root = tmp_path / "plugins"
    for name, text in PLUGIN.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def declared_but_never_imported(cli) -> None:
    """acme's sync declares ads_performance and has not run yet: the gate counts it `never`."""
    ads = '{"datasets": ["ads_performance"]}'
    cli(
        "jobs", "add", "noop", "--brand", "acme", "--cron", "0 3 * * *", "--params", ads
    ).assert_ok()


def stale_after_a_failed_attempt(cli, db_path: Path) -> None:
    ads = '{"datasets": ["ads_performance"]}'
    cli("enqueue", "noop", "--brand", "acme", "--params", ads).assert_ok()
    cli("run-worker", "--once").assert_ok()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE dataset_status SET last_success_at = '2020-01-01T00:00:00+00:00'")
    failing = '{"command": "exit 1", "datasets": ["ads_performance"]}'
    cli("enqueue", "command", "--brand", "acme", "--params", failing).assert_ok()
    cli("run-worker", "--once").assert_ok()
    state = cli("status", "--json").json()["datasets"][0]
    assert state["state"] == "stale" and state["last_attempt_failed"], state


@pytest.mark.parametrize("store_state", ["never imported", "stale after a failed attempt"])
@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_python_samples_of_a_page_run(
    cli,
    db_path: Path,
    sqlite_url: str,
    plugin_path: Path,
    tmp_path: Path,
    page: Path,
    store_state: str,
) -> None:
    if store_state == "never imported":
        declared_but_never_imported(cli)
    else:
        stale_after_a_failed_attempt(cli, db_path)
    script = "\n\n".join(samples(page, {"python"}))
    env = {
        **os.environ,
        "PIPECTL_DATABASE_URL": sqlite_url,
        "PYTHONPATH": str(plugin_path),
        "PIPECTL_STEPS_FILE": str(tmp_path / "steps.jsonl"),  # for a command job's script
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, f"{page.name}:\n{script}\n{result.stderr}"


def test_the_samples_cover_the_pages_that_have_them() -> None:
    assert {p.name for p in PYTHON_PAGES} >= {"README.md", "application.md", "supabase.md"}


# -- shell ---------------------------------------------------------------------------------

SHELL = {"sh", "cron", "ini"}
STOP = {"|", "||", "&&", ";", "&", ">", ">>", "<", ">&", "2>"}


def invocations(page: Path) -> list[list[str]]:
    """The arguments of every `pipectl` command in the page's shell samples."""
    found = []
    for block in samples(page, SHELL):
        for line in block.replace("\\\n", " ").splitlines():
            if not re.search(r"(^|[\s/$])pipectl\s", line):
                continue
            line = re.sub(r"\[(--[^\]]*)\]", r"\1", line)  # `[--brand acme]`: optional
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            tokens = list(lexer)
            for start, token in enumerate(tokens):
                if token.rsplit("/", 1)[-1] != "pipectl":
                    continue
                args = []
                for arg in tokens[start + 1 :]:
                    if arg in STOP:
                        break
                    args.append(arg)
                found.append(args)
    return found


def parse(args: list[str]) -> None:
    """Parse like `pipectl ARGS` down to the command, without running it."""
    command = typer.main.get_command(app)
    ctx = command.make_context("pipectl", list(args))
    while hasattr(command, "resolve_command"):
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            return
        name, command, rest = command.resolve_command(ctx, rest)
        ctx = command.make_context(name, rest, parent=ctx)
    assert not ctx.args, f"unexpected arguments {ctx.args}"


SHELL_INVOCATIONS = [
    (page, args) for page in PAGES for args in invocations(page) if args and args != ["--help"]
]


@pytest.mark.parametrize(
    ("page", "args"),
    SHELL_INVOCATIONS,
    ids=[f"{p.relative_to(ROOT)}: {' '.join(a)}"[:90] for p, a in SHELL_INVOCATIONS],
)
def test_the_pipectl_invocations_of_the_shell_samples_parse(page: Path, args: list[str]) -> None:
    parse(args)


def test_the_shell_scan_finds_the_invocations() -> None:
    """A scan that found nothing would pass; these are samples known to be there."""
    found = {" ".join(args) for _, args in SHELL_INVOCATIONS}
    assert "datasets set ads_performance --warn-after 6h --error-after 1d --brand acme" in found
    assert "run-worker --worker-id %H-%i" in found  # the systemd unit
    assert "run-worker --once" in found  # the crontab, up to its redirection
    assert len(SHELL_INVOCATIONS) >= 30
    with pytest.raises(Exception, match="No such option"):
        parse(["status", "--no-such-option"])
