"""docs/cli.md, docs/configuration.md and .env.example are generated from the code and must be
current; docs/supabase.md names the tables the PostgreSQL schema creates."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipectl.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_generated_reference_docs_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_supabase_docs_name_every_table_of_the_schema() -> None:
    """An app sharing Supabase's `public` schema checks its own names against this list."""
    schema = (ROOT / "src/pipectl/store/sql/postgres/schema.sql").read_text()
    tables = set(re.findall(r"^CREATE TABLE (\w+) \(", schema, flags=re.MULTILINE))
    text = " ".join((ROOT / "docs" / "supabase.md").read_text().split())
    listed = re.search(r"schema: (\w+) tables \(([^)]*?) — check", text)
    assert listed is not None
    words = {"six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
    assert set(re.findall(r"`(\w+)`", listed[2])) == tables
    assert words.get(listed[1]) == len(tables)


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


def test_env_example_shows_the_defaults_of_the_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uncommenting every line that shows a default changes nothing; every setting is listed."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    settings = [line.removeprefix("# ") for line in lines if re.match(r"# [A-Z_]+=", line)]
    names = {line.split("=", 1)[0] for line in settings}
    assert {"PIPECTL_CLAIM_BATCH_SIZE", "PIPECTL_DATABASE_URL", "SUPABASE_URL"} <= names
    assert len(names) == len(Settings.model_fields)
    with_default = {
        f"PIPECTL_{name.upper()}"
        for name, field in Settings.model_fields.items()
        if field.default_factory is None and field.default is not None
    }
    env = tmp_path / ".env"
    env.write_text("\n".join(s for s in settings if s.split("=", 1)[0] in with_default) + "\n")
    assert len(env.read_text().splitlines()) == len(with_default)
    monkeypatch.chdir(tmp_path)
    assert Settings(_env_file=env) == Settings(_env_file=None)
    assert Settings(_env_file=env).claim_batch_size == 32
    assert Settings(_env_file=env).database_url == Settings(_env_file=None).database_url
