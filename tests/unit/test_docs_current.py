"""docs/cli.md and docs/configuration.md are generated from the code and must be current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_reference_docs_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_command_help_has_an_example() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    sections = text.split("\n## `")[1:]
    groups = {"pipectl jobs", "pipectl runs", "pipectl datasets", "pipectl db"}
    missing = [
        s.split("`", 1)[0]
        for s in sections
        if "Example:" not in s and s.split("`", 1)[0] not in groups
    ]
    assert missing == []
