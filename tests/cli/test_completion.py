"""Shell completion of job types and job ids (bash protocol, as the shell calls it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pipectl.client import Client


def complete(words: str, cword: int, env: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "pipectl")],  # the console script, as shells call it
        env={
            **os.environ,
            **env,
            "_PIPECTL_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(cword),
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout.split()


def test_job_types_complete() -> None:
    assert complete("pipectl enqueue s", 2, {}) == ["sleep"]
    assert set(complete("pipectl jobs add ", 3, {})) >= {"command", "noop", "python", "sleep"}


def test_job_ids_complete_from_the_store(client: Client, sqlite_url: str) -> None:
    live = client.enqueue("noop", "acme")
    gone = client.archive(client.enqueue("noop", "globex").id)
    ids = complete("pipectl jobs pause ", 3, {"PIPECTL_DATABASE_URL": sqlite_url})
    assert str(live.id) in ids and str(gone.id) not in ids


def test_completion_is_silent_without_a_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing.db'}"
    assert complete("pipectl jobs show ", 3, {"PIPECTL_DATABASE_URL": url}) == []
