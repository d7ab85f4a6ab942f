"""Helpers for the CLI tests: run the real `pipectl` entry point in-process, and look at the
SQLite file underneath it.

How a command is invoked
------------------------
`invoke(*args)` calls `pipectl.cli.main()` — the very function `[project.scripts] pipectl`
points at — with `sys.argv` set to `["pipectl", *args]`, inside Typer's
`typer.testing.CliRunner().isolation()`, which swaps `sys.stdin`/`sys.stdout`/`sys.stderr` for
separate buffers (the installed Typer vendors Click and its runner always keeps stdout and stderr
apart; there is no `mix_stderr`). `main()` always ends in `SystemExit`, whose code is the exit
code.

Why not `CliRunner().invoke(app, args)`: that calls the Typer app directly, so a `PipectlError`
escapes as `result.exception` with exit code 1 and never goes through `main()`'s mapping to
`pipectl: error: …` plus the error's exit code. Testing through `main()` checks the mapping a
user's shell really sees, Typer's own usage errors (exit 2) included, without a process per call.
A few tests in test_commands.py also run the installed console script in a subprocess.

`assert_unbroken(text, width, tokens, names)` is the layout check of the tables at 80 and 120
columns: no token split across lines, a name whole or cut with `…`.

The worker configures the `pipectl` logger with a handler bound to the stderr of the moment;
`invoke` restores the logger afterwards so that a later command never logs into a closed buffer.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from typer.testing import CliRunner

from pipectl.cli import main


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout as exactly one JSON document (json.loads rejects anything around it)."""
        return json.loads(self.stdout)

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()

    @property
    def stderr_text(self) -> str:
        """stderr with rich's line wrapping undone, for matching human notes."""
        return " ".join(self.stderr.split())

    def assert_ok(self) -> CliResult:
        assert self.exit_code == 0, self
        assert "Traceback" not in self.stderr, self
        return self

    def assert_pipectl_error(self, exit_code: int = 2) -> None:
        """pipectl's own error: that exit code, one `pipectl: error:` line, empty stdout."""
        assert self.exit_code == exit_code, self
        assert self.stdout == "", self
        assert len(self.stderr_lines) == 1, self
        assert self.stderr.startswith("pipectl: error: "), self
        assert "Traceback" not in self.stderr, self

    def assert_usage_error(self) -> None:
        """Typer's usage error: exit 2, something on stderr (it spans lines), empty stdout."""
        assert self.exit_code == 2, self
        assert self.stdout == "", self
        assert self.stderr.strip(), self
        assert "Traceback" not in self.stderr, self


def invoke(
    *args: str, env: Mapping[str, str | None] | None = None, input: str | None = None
) -> CliResult:
    """Run `pipectl ARGS…` through `pipectl.cli.main()` and capture exit code, stdout, stderr;
    `input` is what the user types on stdin."""
    runner = CliRunner()
    logger = logging.getLogger("pipectl")
    saved_logger = (list(logger.handlers), logger.level, logger.propagate)
    saved_argv = sys.argv
    exit_code: int | None = None
    try:
        with runner.isolation(input=input, env=env) as (stdout, stderr, _mixed):
            sys.argv = ["pipectl", *args]
            try:
                main()
            except SystemExit as exc:
                code = exc.code
                exit_code = code if isinstance(code, int) else (0 if code is None else 1)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                out_bytes, err_bytes = stdout.getvalue(), stderr.getvalue()
    finally:
        sys.argv = saved_argv
        logger.handlers[:], logger.level, logger.propagate = saved_logger
    assert exit_code is not None, "main() returned without SystemExit"
    return CliResult(exit_code, out_bytes.decode(), err_bytes.decode())


Invoke = Callable[..., CliResult]


def assert_unbroken(
    text: str, width: int, tokens: Iterable[str], names: Iterable[str] = ()
) -> None:
    """No line of `text` is wider than `width`; every token (a cron expression, a timezone, a
    time) is whole on one line; every name is whole or cut short with `…` wherever it starts,
    never carried over to the next line (so no other word may be a prefix of a name)."""
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), [line for line in lines if len(line) > width]
    for token in tokens:
        assert any(token in line for line in lines), (token, text)
    words = text.split()
    for name in names:
        assert any(w == name or _cut_from(w, name) for w in words), (name, text)
        broken = [w for w in words if w != name and name.startswith(w) and not _cut_from(w, name)]
        assert not broken, (name, broken, text)


def _cut_from(word: str, name: str) -> bool:
    """`word` is `name` cut short with `…`."""
    return len(word) > 1 and word.endswith("…") and name.startswith(word[:-1])
