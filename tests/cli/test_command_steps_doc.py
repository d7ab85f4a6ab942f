"""docs/command-steps.md's examples, run as real command jobs: the steps they report are
recorded, and each dataset takes its own step's outcome."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

from pipectl.client import Client

DOC = Path(__file__).parents[2] / "docs" / "command-steps.md"


def fenced(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(), re.S | re.M)


def script(language: str, marker: str) -> str:
    (found,) = [block for block in fenced(language) if marker in block]
    return found


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("sync.sh", lambda path: f"sh {shlex.quote(str(path))}"),
        ("sync_meta.py", lambda path: f"{shlex.quote(sys.executable)} {shlex.quote(str(path))}"),
    ],
)
def test_the_documented_examples_report_their_steps(
    cli, client: Client, tmp_path: Path, name: str, command
) -> None:
    language, marker = ("sh", "#!/bin/sh") if name.endswith(".sh") else ("python", "sync_meta.py")
    path = tmp_path / name
    path.write_text(script(language, marker))
    datasets = '["ads_performance", "creative_thumbnails"]'
    cli(
        "enqueue",
        "command",
        "--brand",
        "acme",
        "--param",
        f"command={command(path)}",
        "--param",
        f"datasets:={datasets}",
    ).assert_ok()
    cli("run-worker", "--once").assert_ok()

    (run,) = client.list_runs()
    assert run.status == "completed", run.error_message
    steps = {s["name"]: s for s in run.steps}
    assert steps["performance"]["status"] == "completed"
    assert steps["thumbnails"]["status"] == "failed" and steps["thumbnails"]["fatal"] is False
    assert steps["thumbnails"]["error"] == "CDN timed out"
    assert client.freshness("ads_performance", "acme").state == "fresh"
    thumbnails = client.freshness("creative_thumbnails", "acme")
    assert thumbnails.state == "never" and thumbnails.last_attempt_failed


def test_the_documented_enqueue_line_is_accepted(cli) -> None:
    (line,) = [b for b in fenced("sh") if b.startswith("pipectl enqueue")]
    args = shlex.split(line.replace("\\\n", " "))[1:]
    job = cli(*args, "--json").assert_ok().json()
    assert job["parameters"]["datasets"] == ["ads_performance", "creative_thumbnails"]
