"""A store URL whose driver extra is not installed: exit 3 and the `pip install` that fixes it.

The drivers are genuinely absent: pipectl runs in `python -I -S` (no site-packages, no .pth
files) with a sys.path of pipectl's source and a copy of the venv's site-packages made of
symlinks to every entry except the extra's packages.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

import pipectl

SITE_PACKAGES = Path(typer.__file__).resolve().parents[1]
SOURCE = Path(pipectl.__file__).resolve().parents[1]
EXTRA_PACKAGES = {"postgres": ("psycopg",), "supabase": ("supabase",)}


def site_packages_without(tmp_path: Path, prefixes: tuple[str, ...]) -> Path:
    farm = tmp_path / "site-packages"
    farm.mkdir()
    for entry in SITE_PACKAGES.iterdir():
        if not entry.name.lower().startswith(prefixes):
            (farm / entry.name).symlink_to(entry)
    return farm


def run_python(
    farm: Path, code: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    preamble = f"import sys; sys.path[:0] = {json.dumps([str(SOURCE), str(farm)])}\n"
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", preamble + code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def run_pipectl(farm: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = f"sys.argv = ['pipectl', *{list(args)!r}]\nfrom pipectl.cli import main\nmain()\n"
    return run_python(farm, code, env)


@pytest.mark.parametrize(
    ("extra", "url"),
    [
        ("postgres", "postgresql://postgres@127.0.0.1:5432/test"),
        ("supabase", "supabase+https://abcdefghijklmnop.supabase.co"),
    ],
)
@pytest.mark.parametrize("command", [["status"], ["db", "migrate"], ["jobs", "list"]])
def test_a_url_whose_extra_is_missing_exits_3_naming_the_extra(
    tmp_path: Path, extra: str, url: str, command: list[str]
) -> None:
    farm = site_packages_without(tmp_path, EXTRA_PACKAGES[extra])
    module = EXTRA_PACKAGES[extra][0]
    absent = run_python(farm, f"import {module}")
    assert "ModuleNotFoundError" in absent.stderr, absent  # the driver really is not there
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "SUPABASE_SERVICE_ROLE_KEY": "k" * 40}

    result = run_pipectl(farm, "--database-url", url, *command, env=env)

    assert result.returncode == 3, result
    assert result.stdout == "", result
    assert len(result.stderr.splitlines()) == 1, result
    assert f"[{extra}] extra" in result.stderr, result
    assert f"pip install 'pipectl[{extra}]'" in result.stderr, result
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_the_same_interpreter_runs_sqlite_without_either_extra(tmp_path: Path) -> None:
    farm = site_packages_without(tmp_path, ("psycopg", "supabase"))
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    url = f"sqlite:///{tmp_path / 'p.db'}"
    migrated = run_pipectl(farm, "--database-url", url, "db", "migrate", env=env)
    assert migrated.returncode == 0, migrated
    status = run_pipectl(farm, "--database-url", url, "status", "--json", env=env)
    assert status.returncode == 0, status
    assert "workers" in json.loads(status.stdout)


@pytest.mark.parametrize("as_json", [False, True])
def test_doctor_reports_the_missing_extra_as_its_store_check(tmp_path: Path, as_json: bool) -> None:
    farm = site_packages_without(tmp_path, EXTRA_PACKAGES["postgres"])
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "COLUMNS": "300"}
    url = "postgresql://app:s3cret@127.0.0.1:5432/test"
    json_flag = ["--json"] if as_json else []

    result = run_pipectl(farm, "--database-url", url, "doctor", *json_flag, env=env)

    assert result.returncode == 1, result  # a check failed; doctor itself ran
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result
    assert "s3cret" not in result.stdout + result.stderr
    if as_json:
        store = {c["name"]: c for c in json.loads(result.stdout)["checks"]}["store"]
        assert store["level"] == "fail"
        assert "pip install 'pipectl[postgres]'" in store["detail"]
    else:
        assert "pip install 'pipectl[postgres]'" in result.stdout, result
