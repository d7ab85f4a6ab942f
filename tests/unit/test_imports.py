"""The commands operators and cron call constantly stay cheap: on SQLite they never import the
PostgreSQL driver, the Supabase client, the metrics library or the web stack of `pipectl serve`
(`python -X importtime` lists every module a process imported)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pipectl

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


SRC = Path(pipectl.__file__).resolve().parent


def imports_of(path: Path) -> set[str]:
    """The modules a source file imports (top level, in functions, under TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def importers_of(package: str, *, outside: str) -> list[str]:
    """The source files outside the `outside` package that import `package` or a module in it."""
    return sorted(
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if not path.is_relative_to(SRC / outside)
        and any(name == package or name.startswith(f"{package}.") for name in imports_of(path))
    )


def test_nothing_below_the_cli_imports_it() -> None:
    """The library, the worker, the stores and the web layer never import pipectl.cli: the CLI
    is a skin over them, not a layer they rely on. (`python -m pipectl` runs the CLI.)"""
    assert importers_of("pipectl.cli", outside="cli") == ["__main__.py"]
    assert "cli/ops.py" in importers_of("pipectl.cli", outside="web")  # the scan finds imports


def test_the_worker_does_not_import_the_client() -> None:
    """The worker is an engine service under the library API: it runs the rules and the store,
    and the library assembles it (Worker.from_settings), not the other way round."""
    worker = [path for path in importers_of("pipectl.client", outside="cli") if "worker" in path]
    assert worker == []
