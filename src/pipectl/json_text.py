"""JSON text for pipectl's documents: one encoder for `--json`, the HTTP API and /status.

orjson writes datetimes itself, exactly as `datetime.isoformat()` does (microseconds when there
are any, the `+00:00` offset), so documents may hold datetime objects instead of strings; that
is most of what writing a big `status --json` costs otherwise. Anything else it cannot write
becomes `str(value)`, as `json.dumps(default=str)` did."""

from __future__ import annotations

import json
from datetime import date, time
from typing import Any

import orjson

# Dataclasses go to `_default` (str) too: orjson would otherwise write their fields.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS


def _default(value: object) -> object:
    # A datetime subclass (freezegun's, in tests) is not orjson's own type: written the same way.
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def dumps(document: Any, *, indent: bool = False) -> bytes:
    """`document` as UTF-8 JSON text: compact, or indented by two spaces for a person."""
    try:
        return orjson.dumps(
            document, default=_default, option=_OPTIONS | (orjson.OPT_INDENT_2 if indent else 0)
        )
    except orjson.JSONEncodeError:
        # What orjson refuses and json writes: integers beyond 64 bits, keys that are not
        # strings.
        text = json.dumps(
            document,
            indent=2 if indent else None,
            separators=(",", ": ") if indent else (",", ":"),
            ensure_ascii=False,
            default=_default,
        )
        return text.encode()
