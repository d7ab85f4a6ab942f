"""Printing one JSON document on stdout. Nothing here imports rich, so that `status --json` never
loads it (see pipectl.documents)."""

from __future__ import annotations

import sys
from typing import Any

from pipectl.json_text import dumps


def print_json(document: Any) -> None:
    """Indented for a person at a terminal; compact when piped to a program or a file, which is
    where big documents go."""
    text = dumps(document, indent=sys.stdout.isatty())
    sys.stdout.flush()
    out = getattr(sys.stdout, "buffer", None)
    if out is None:  # a text-only stream (a test's capture): no bytes underneath
        sys.stdout.write(text.decode() + "\n")
    else:
        out.write(text)  # not `text + b"\n"`: a copy of what may be tens of megabytes
        out.write(b"\n")
        out.flush()
