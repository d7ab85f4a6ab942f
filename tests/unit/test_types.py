"""src/ type-checks clean under mypy, with the settings in pyproject.toml ([tool.mypy]), so
the README's `pytest` (and CI) fails on a type error. mypy keeps its cache in .mypy_cache/:
after the first run it re-checks only what changed (about a second)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


def test_src_type_checks() -> None:
    result = mypy()  # the files and settings of pyproject.toml
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_settings_are_strict(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def untyped(x):\n"
        "    return x\n"
        "\n"
        "def implicit_optional(x: int = None) -> int:\n"
        "    return 1\n"
        "\n"
        "def never_equal(x: int) -> bool:\n"
        "    return x == 'one'\n"
    )
    result = mypy("--config-file", str(ROOT / "pyproject.toml"), str(sample))
    assert result.returncode == 1, result.stdout + result.stderr
    for code in ("no-untyped-def", "assignment", "comparison-overlap"):
        assert f"[{code}]" in result.stdout, result.stdout
