"""The commands operators and cron call constantly stay cheap: on SQLite they never import the
PostgreSQL driver, the Supabase client, the metrics library or the web stack of `pipectl serve`
(`python -X importtime` lists every module a process imported)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HEAVY = ("supabase", "psycopg", "prometheus_client", "fastapi", "starlette", "uvicorn")


def imported_modules(*args: str, database_url: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pipectl", *args],
        env={**os.environ, "PIPECTL_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # Lines read "import time: <self us> | <cumulative us> | <indented module name>".
    return {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and not line.endswith("imported package")
    }


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("serve", "--help"),
        ("status",),
        ("status", "--json"),
        ("enqueue", "noop", "--brand", "acme"),
    ],
    ids=" ".join,
)
def test_cheap_commands_do_not_import_heavy_packages(
    args: tuple[str, ...], sqlite_url: str
) -> None:
    modules = imported_modules(*args, database_url=sqlite_url)
    assert "pipectl.cli" in modules  # the parse found the import lines at all
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == []
