"""The `pipectl` command line: parsing, rendering and exit codes over the library API.

Command modules import the library inside their functions so that `pipectl --help` costs
little more than Typer itself. They do not use `from __future__ import annotations`: Typer
reads every command's signature at each start, whatever the command run, and a string
annotation costs a compile and an eval each time (about 1,200 of them: 25-40 ms of an idle
`run-worker --once`, docs/benchmarks.md); names imported only for type checking are quoted."""

import sys
from typing import Annotated

import typer

from pipectl.cli import brands, common, datasets, db, jobs, ops, runs, serve

app = typer.Typer(
    name="pipectl",
    help="Control plane for data pipelines: scheduled jobs, a worker, retries, stuck-run "
    "recovery and dataset freshness.\n\nExample: pipectl status --brand acme",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
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


ops.register(app)
serve.register(app)
app.add_typer(jobs.app, name="jobs")
app.add_typer(runs.app, name="runs")
app.add_typer(datasets.app, name="datasets")
app.add_typer(brands.app, name="brands")
app.add_typer(db.app, name="db")


def main() -> None:
    """Console entry point: turns pipectl's errors into one line on stderr and an exit code."""
    from pipectl.errors import PipectlError

    try:
        app()
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
