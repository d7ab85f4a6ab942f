"""Parsers for what operators type: durations, points in time, job parameters, brand names."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any, overload

from pipectl.clock import SYSTEM, Clock
from pipectl.errors import InvalidInput

MAX_PARAMETERS_BYTES = 64 * 1024
MAX_NAME_LENGTH = 200
MAX_ID = 2**63 - 1  # ids are 64-bit integers in every store

_UNITS_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.ASCII)


def parse_duration(text: str) -> timedelta:
    """'90s', '5m', '1h30m', '2d', '1.5h' or plain seconds ('30') as a positive timedelta."""
    raw = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", raw, re.ASCII):
        seconds = float(raw)
    else:
        pos, seconds = 0, 0.0
        for match in _DURATION_PART.finditer(raw):
            if match.start() != pos and raw[pos : match.start()].strip():
                break
            seconds += float(match.group(1)) * _UNITS_S[match.group(2)]
            pos = match.end()
        if pos == 0 or raw[pos:].strip():
            raise InvalidInput(f"invalid duration {text!r}: use e.g. 30s, 5m, 1h30m, 2d")
    if not 0 < seconds <= 10 * 365 * 86400 or timedelta(seconds=seconds) <= timedelta(0):
        raise InvalidInput(f"invalid duration {text!r}: must be positive and under ten years")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """A short human form: '45s', '5m', '1h 30m', '2d 3h'. Negative durations get a minus sign."""
    total = int(delta.total_seconds())
    if total < 0:
        return "-" + format_duration(-delta)
    if total < 60:
        return f"{total}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    if not parts or (len(parts) == 1 and parts[0].endswith("m") and total):
        parts.append(f"{total}s")
    return " ".join(parts[:2])


def parse_when(text: str, clock: Clock = SYSTEM) -> datetime:
    """An ISO 8601 time ('2026-12-01T09:00', with an offset or naive meaning UTC) or 'now' (on
    `clock`)."""
    raw = text.strip()
    if raw.lower() == "now":
        return clock.now()
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"invalid time {text!r}: use ISO 8601, e.g. 2026-12-01T09:00 (UTC) or 2026-12-01T09:00+01:00"
        ) from None


def parse_parameters(
    pairs: list[str] | None = None, params_json: str | None = None
) -> dict[str, Any]:
    """Merge `--params JSON` with `--param key=value` (a string) / `--param key:=JSON` (typed)."""
    parameters: dict[str, Any] = {}
    if params_json is not None:
        try:
            loaded = json.loads(params_json)
        except (ValueError, RecursionError) as exc:
            raise InvalidInput(f"--params is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise InvalidInput("--params must be a JSON object, e.g. '{\"limit\": 10}'")
        parameters.update(loaded)
    for pair in pairs or []:
        key, typed, value = _split_pair(pair)
        if typed:
            try:
                parameters[key] = json.loads(value)
            except (ValueError, RecursionError) as exc:
                raise InvalidInput(f"--param {key}:= needs a JSON value: {exc}") from None
        else:
            parameters[key] = value
    check_parameters(parameters)
    return parameters


def _split_pair(pair: str) -> tuple[str, bool, str]:
    if ":=" in pair and ("=" not in pair or pair.index(":=") < pair.index("=")):
        key, value = pair.split(":=", 1)
        typed = True
    elif "=" in pair:
        key, value = pair.split("=", 1)
        typed = False
    else:
        raise InvalidInput(f"--param {pair!r} must look like key=value or key:=JSON")
    key = key.strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,99}", key, re.ASCII):
        raise InvalidInput(f"--param key {key!r} must be a plain name (letters, digits, _ . -)")
    return key, typed, value


def check_parameters(parameters: Any) -> None:
    if not isinstance(parameters, dict):
        raise InvalidInput("parameters must be a JSON object")
    try:
        encoded = json.dumps(parameters, allow_nan=False)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"parameters are not valid JSON: {exc}") from None
    if len(encoded.encode()) > MAX_PARAMETERS_BYTES:
        raise InvalidInput(f"parameters are larger than {MAX_PARAMETERS_BYTES // 1024} KiB")


@overload
def check_name(value: str, what: str) -> str: ...
@overload
def check_name(value: str | None, what: str) -> str | None: ...
def check_name(value: str | None, what: str) -> str | None:
    """Brand ids, job names, dataset names: printable, bounded, no control characters."""
    if value is None:
        return None
    if not value.strip():
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInput(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise InvalidInput(f"{what} {value!r} contains control characters")
    return value
