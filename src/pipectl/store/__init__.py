"""Store backends behind one protocol; `open_store` picks one from a URL."""

from __future__ import annotations

from pipectl.errors import InvalidInput
from pipectl.store.base import ANY, Store

__all__ = ["ANY", "Store", "open_store"]


def open_store(url: str, *, create: bool = False) -> Store:
    """Open the store a URL names. `create` lets SQLite create a missing file (for `db migrate`).

    Drivers are imported here, on demand, so that the SQLite path never imports psycopg."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from pipectl.store.sqlite import SQLiteStore

        return SQLiteStore(url, create=create)
    if scheme in ("postgresql", "postgres"):
        from pipectl.store.postgres import PostgresStore

        return PostgresStore(url)
    raise InvalidInput(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///path.db or postgresql://…"
    )
