"""The `store` fixture: the same contract tests run against every backend (`store_url`, in
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipectl.store import Store, open_store


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()
