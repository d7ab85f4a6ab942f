"""`pipectl db …`: create or upgrade the schema, and show its SQL."""

from __future__ import annotations

from typing import Annotated

import typer

from pipectl.cli import common

app = typer.Typer(help="The store's schema: migrate, version, sql.", no_args_is_help=True)


@app.command()
def migrate() -> None:
    """Create or upgrade the schema (idempotent; safe to run from several hosts at once).

    Example: pipectl db migrate
    """
    from pipectl.cli.render import note
    from pipectl.client import Client
    from pipectl.store.migrations import latest_version

    url = common.settings().database_url
    applied = Client.migrate_url(url)
    dialect = "sqlite" if url.startswith("sqlite") else "postgres"
    if applied:
        note(
            f"applied migrations {', '.join(map(str, applied))}; schema is at v{latest_version(dialect)}"
        )
    else:
        note(f"schema is up to date (v{latest_version(dialect)})")


@app.command()
def version(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout.")
    ] = False,
) -> None:
    """Print the installed schema version and this pipectl's.

    Example: pipectl db version --json
    """
    from pipectl.cli.render import print_json
    from pipectl.store import open_store
    from pipectl.store.migrations import latest_version

    url = common.settings().database_url
    store = open_store(url)
    try:
        installed = store.schema_version()
    finally:
        store.close()
    latest = latest_version("sqlite" if url.startswith("sqlite") else "postgres")
    if as_json:
        print_json({"installed": installed, "latest": latest})
    else:
        typer.echo(
            f"installed: {installed if installed is not None else 'none'}; this pipectl: {latest}"
        )


@app.command()
def sql(
    dialect: Annotated[
        str, typer.Option("--dialect", help="postgres (also for Supabase) or sqlite.")
    ] = "postgres",
) -> None:
    """Print the full schema SQL, e.g. to paste into Supabase's SQL editor.

    Example: pipectl db sql > supabase/migrations/20261129000000_pipectl.sql
    """
    from pipectl.errors import InvalidInput
    from pipectl.store.migrations import full_sql

    if dialect not in ("postgres", "sqlite"):
        raise InvalidInput("--dialect must be postgres or sqlite")
    typer.echo(full_sql(dialect), nl=False)
