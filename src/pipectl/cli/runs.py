"""`pipectl runs …`: the run history, and one run with its logs and steps."""

from __future__ import annotations

from typing import Annotated

import typer

from pipectl.cli import common
from pipectl.cli.common import MAX_ID, BrandFilter, JsonOption

app = typer.Typer(help="Run history: pipectl runs [--job ID] [--status S]; runs show RUN_ID.")


@app.callback(invoke_without_command=True)
def runs(
    ctx: typer.Context,
    job: Annotated[
        int | None, typer.Option("--job", min=1, max=MAX_ID, help="Only this job's runs.")
    ] = None,
    brand: BrandFilter = None,
    status: Annotated[
        str | None,
        typer.Option("--status", help="Only runs with this status: running, completed, failed."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first.

    Example: pipectl runs --status failed --limit 20
    """
    if ctx.invoked_subcommand is not None:
        return
    from pipectl.cli.render import print_json
    from pipectl.cli.views import render_runs
    from pipectl.errors import InvalidInput
    from pipectl.models import RUN_STATUSES

    if status is not None and status not in RUN_STATUSES:
        raise InvalidInput(f"unknown run status {status!r}; use one of {', '.join(RUN_STATUSES)}")
    with common.client() as client:
        if job is not None:
            client.get_job(job)
        found = client.list_runs(
            job_id=job, brand_id=common.known_brand(client, brand), status=status, limit=limit
        )
    if as_json:
        print_json([run.to_json() for run in found])
    else:
        render_runs(found)


@app.command()
def show(
    run_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The run's id.")],
    as_json: JsonOption = False,
) -> None:
    """Show one run with its steps and logs.

    Example: pipectl runs show 311
    """
    from pipectl.cli.render import print_json
    from pipectl.cli.views import render_run

    with common.client() as client:
        run = client.get_run(run_id)
    if as_json:
        print_json(run.to_json(with_logs=True))
    else:
        render_run(run)


@app.command()
def prune(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Delete runs that finished longer ago, e.g. 90d.")
    ],
    keep_last: Annotated[
        int, typer.Option("--keep-last", min=1, help="Always keep each job's newest N runs.")
    ] = 1,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete old run history in batches (never a running run, never a job's latest).

    Example: pipectl runs prune --older-than 90d --keep-last 10 --dry-run
    """
    from pipectl.cli.render import note, print_json

    age = common.duration(older_than)
    with common.client() as client:
        count = client.prune_runs(age, keep_last=keep_last, dry_run=dry_run)  # type: ignore[arg-type]
    if as_json:
        print_json({"dry_run": dry_run, "runs": count})
    else:
        note(f"{'would delete' if dry_run else 'deleted'} {count} runs")
