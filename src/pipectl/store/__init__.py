"""Store backends behind one protocol; `open_store` picks one from a URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pipectl.errors import InvalidInput, StoreUnavailable
from pipectl.store.base import ANY, Store

if TYPE_CHECKING:
    from pipectl.settings import Settings

__all__ = ["ANY", "Store", "open_store"]


def open_store(url: str, *, create: bool = False, settings: Settings | None = None) -> Store:
    """Open the store a URL names. `create` lets SQLite create a missing file (for `db migrate`).
    A `supabase+https://…` URL takes its key from `settings` (default: the environment), so
    that the key never has to travel in a URL; a PostgreSQL store takes its LISTEN URL from
    `settings` when given.

    Drivers are imported here, on demand, so that the SQLite path never imports psycopg or
    supabase."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from pipectl.store.sqlite import SQLiteStore

        return SQLiteStore(url, create=create)
    if scheme in ("postgresql", "postgres"):
        with _needs_extra("postgres"):
            from pipectl.store.postgres import PostgresStore

        return PostgresStore(url, listen_url=settings.listen_url if settings else None)
    if scheme in ("supabase+https", "supabase+http"):
        with _needs_extra("supabase"):
            from pipectl.store.supabase import SupabaseStore

        if settings is None:
            from pipectl.settings import load_settings

            settings = load_settings()
        return SupabaseStore(url, settings.supabase_key)
    raise InvalidInput(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///path.db, postgresql://… "
        "or supabase+https://<ref>.supabase.co"
    )


@contextmanager
def _needs_extra(extra: str) -> Iterator[None]:
    """Turn a driver that is not installed into exit 3 and the install line that fixes it."""
    try:
        yield
    except ModuleNotFoundError as exc:
        missing = exc.name or "a module"
        if missing.split(".")[0] == "pipectl":
            raise
        raise StoreUnavailable(
            f"the {extra} backend needs the [{extra}] extra, which is not installed "
            f"({missing} is missing): pip install 'pipectl[{extra}]'"
        ) from None
