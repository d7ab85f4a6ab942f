"""The one clock pipectl reads: aware UTC datetimes, patched by freezegun in tests."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
