"""`pipectl db …`: create or upgrade the schema, and show its SQL."""

from pathlib import Path
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

    current = common.settings()
    url = current.database_url
    applied = Client.migrate_url(url, current)
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

    current = common.settings()
    url = current.database_url
    store = open_store(url, settings=current)
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
    supabase_migration: Annotated[
        Path | None,
        typer.Option(
            "--supabase-migration",
            metavar="DIR",
            help="Instead of printing it, save the script as a new migration in DIR (a Supabase "
            "project's supabase/migrations) and print its path.",
        ),
    ] = None,
    grant_gate_to: Annotated[
        list[str] | None,
        typer.Option(
            "--grant-gate-to",
            metavar="ROLE",
            help="End the script by granting the read-only gate function pipectl_gate to "
            "authenticated or anon (repeatable; by default only the service role may call it).",
        ),
    ] = None,
) -> None:
    """Print the full schema SQL, e.g. to paste into Supabase's SQL editor. The PostgreSQL
    script installs the schema or upgrades an older one; running it again changes nothing.

    Example: pipectl db sql --supabase-migration supabase/migrations
    """
    from pipectl.errors import InvalidInput
    from pipectl.store.migrations import full_sql, gate_grants

    if dialect not in ("postgres", "sqlite"):
        raise InvalidInput("--dialect must be postgres or sqlite")
    roles = list(grant_gate_to or [])
    gate_grants(roles)
    if roles and dialect != "postgres":
        raise InvalidInput("--grant-gate-to is for the postgres (Supabase) script")
    if supabase_migration is not None:
        from pipectl import clock
        from pipectl.store.migrations import write_supabase_migration

        if dialect != "postgres":
            raise InvalidInput("--supabase-migration writes the postgres script")
        typer.echo(write_supabase_migration(supabase_migration, clock.now(), grant_gate_to=roles))
        return
    typer.echo(full_sql(dialect, grant_gate_to=roles), nl=False)
