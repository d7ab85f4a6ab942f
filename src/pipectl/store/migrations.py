"""Versioned schema migrations shipped as `.sql` files inside the package."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from pipectl.errors import SchemaMissing, StoreUnavailable

MIGRATIONS_TABLE = "pipectl_schema_migrations"
_FILE_NAME = re.compile(r"(\d{4})_(\w+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def load_migrations(dialect: str) -> tuple[Migration, ...]:
    folder = resources.files("pipectl.store") / "sql" / dialect
    found = []
    for entry in folder.iterdir():
        match = _FILE_NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    return tuple(sorted(found, key=lambda m: m.version))


def latest_version(dialect: str) -> int:
    return load_migrations(dialect)[-1].version


def check_version(installed: int | None, dialect: str) -> None:
    expected = latest_version(dialect)
    if installed is None:
        raise SchemaMissing()
    if installed < expected:
        raise SchemaMissing(f"schema v{installed} is older than this pipectl's v{expected}")
    if installed > expected:
        raise StoreUnavailable(
            f"the store's schema v{installed} is newer than this pipectl's v{expected}; "
            "upgrade pipectl"
        )
