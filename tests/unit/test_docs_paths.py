"""Every `docs/…` path that the code and the docs name, and every relative link in the docs,
leads to a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SOURCES = sorted([*(ROOT / "src").rglob("*.py"), ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
DOCS_PATH = re.compile(r"(?<![\w/.-])docs/[\w./-]*\w")
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def named_paths(source: Path) -> list[str]:
    return DOCS_PATH.findall(source.read_text())


def relative_links(source: Path) -> list[str]:
    return [t for t in LINK.findall(source.read_text()) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_docs_path_named_exists(source: Path) -> None:
    missing = [path for path in named_paths(source) if not (ROOT / path).exists()]
    assert missing == [], f"{source.relative_to(ROOT)} names {missing}"


@pytest.mark.parametrize(
    "source", [p for p in SOURCES if p.suffix == ".md"], ids=lambda p: str(p.relative_to(ROOT))
)
def test_every_relative_link_in_the_docs_resolves(source: Path) -> None:
    missing = [link for link in relative_links(source) if not (source.parent / link).exists()]
    assert missing == [], f"{source.relative_to(ROOT)} links to {missing}"


def test_the_scan_finds_the_paths_it_checks() -> None:
    """A pattern that matched nothing would pass every file."""
    builtin = ROOT / "src" / "pipectl" / "handlers" / "builtin.py"
    assert "docs/command-steps.md" in named_paths(builtin)
    assert "docs/guarantees.md" in relative_links(ROOT / "README.md")
