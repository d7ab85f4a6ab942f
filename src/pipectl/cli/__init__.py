"""The `pipectl` command line: parsing, rendering and exit codes over the library API.

Command modules import the library inside their functions so that `pipectl --help` costs
little more than Typer itself. They do not use `from __future__ import annotations`: Typer
reads every command's signature at each start, whatever the command run, and a string
annotation costs a compile and an eval each time (docs/benchmarks.md); names imported only for
type checking are quoted.

For the same reason `main` runs a top-level command (`run-worker`, `status`, …) in an app
without the command groups (`jobs`, `runs`, …): Typer would build every one of their commands
first."""

import sys
from typing import Annotated

import typer

from pipectl.cli import brands, common, datasets, db, jobs, ops, runs, serve


def _global_options(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Store URL (overrides PIPECTL_DATABASE_URL): sqlite:///path.db, postgresql://… "
            "or supabase+https://<ref>.supabase.co (key from SUPABASE_SERVICE_ROLE_KEY)",
            show_default=False,
        ),
    ] = None,
) -> None:
    common.set_database_url(database_url)


def _app(*, groups: bool = True) -> typer.Typer:
    """The whole command line, or (groups=False) its top-level commands only."""
    built = typer.Typer(
        name="pipectl",
        help="Control plane for data pipelines: scheduled jobs, a worker, retries, stuck-run "
        "recovery and dataset freshness.\n\nExample: pipectl status --brand acme",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    built.callback()(_global_options)
    ops.register(built)
    serve.register(built)
    if groups:
        built.add_typer(jobs.app, name="jobs")
        built.add_typer(runs.app, name="runs")
        built.add_typer(datasets.app, name="datasets")
        built.add_typer(brands.app, name="brands")
        built.add_typer(db.app, name="db")
    return built


app = _app()
TOP_LEVEL = frozenset(
    info.name or typer.main.get_command_name(info.callback.__name__)
    for info in app.registered_commands
    if info.callback is not None
)


def _command(args: list[str]) -> str | None:
    """The command named on the command line, past the global options (None for none)."""
    rest = iter(args)
    for arg in rest:
        if arg == "--database-url":
            next(rest, None)
        elif not arg.startswith("-"):
            return arg
    return None


def main() -> None:
    """Console entry point: turns pipectl's errors into one line on stderr and an exit code."""
    from pipectl.errors import PipectlError

    try:
        (app if _command(sys.argv[1:]) not in TOP_LEVEL else _app(groups=False))()
    except PipectlError as exc:
        print(f"pipectl: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug: still one line, unless asked for the traceback
        import os

        if os.environ.get("PIPECTL_DEBUG"):
            raise
        print(
            f"pipectl: internal error: {type(exc).__name__}: {exc} "
            "(set PIPECTL_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        sys.exit(1)
