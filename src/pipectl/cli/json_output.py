"""Printing one JSON document on stdout. Nothing here imports rich, so that `status --json` never
loads it (see pipectl.documents)."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(document: Any) -> None:
    """Indented for a person at a terminal; compact when piped to a program or a file, which is
    where big documents go: an indent makes `json` use its pure-Python encoder, several times
    slower than the C one (docs/benchmarks.md)."""
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(document, indent=indent, ensure_ascii=False, default=str) + "\n")
