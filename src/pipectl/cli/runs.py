"""`pipectl runs …`: the run history, and one run with its logs and steps."""

from typing import TYPE_CHECKING, Annotated

import typer

from pipectl.cli import common
from pipectl.cli.common import MAX_ID, BrandFilter, JsonOption

if TYPE_CHECKING:
    from pipectl.client import Client, Waited

app = typer.Typer(
    help="Run history: pipectl runs [--job ID] [--status S]; runs show RUN_ID; logs [-f]; "
    "cancel; wait."
)

OptionalRunId = Annotated[int | None, typer.Argument(min=1, max=MAX_ID, help="The run's id.")]
JobOption = Annotated[
    int | None, typer.Option("--job", min=1, max=MAX_ID, help="The job's (current or next) run.")
]


@app.callback(invoke_without_command=True)
def runs(
    ctx: typer.Context,
    job: Annotated[
        int | None, typer.Option("--job", min=1, max=MAX_ID, help="Only this job's runs.")
    ] = None,
    brand: BrandFilter = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", help="Only runs with this status: running, completed, failed, cancelled."
        ),
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
    from pipectl.cli.views import render_runs, runs_json
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
        jobs = client.jobs_of(found)
    if as_json:
        print_json([runs_json(run, jobs.get(run.job_id)) for run in found])
    else:
        render_runs(found, jobs)


RunId = Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The run's id.")]
FollowOption = Annotated[
    bool,
    typer.Option(
        "--follow",
        "-f",
        help="Stream the run's log as its worker writes it (at each heartbeat) until the run "
        "ends, then exit with its outcome as `runs wait` does.",
    ),
]


@app.command()
def show(run_id: RunId, follow: FollowOption = False, as_json: JsonOption = False) -> None:
    """Show one run with its steps and logs; --follow streams the log of a running run.

    Example: pipectl runs show 311
    """
    from pipectl.cli.render import print_json
    from pipectl.cli.views import render_run

    _no_json_follow(follow, as_json)
    with common.client() as client:
        run = client.get_run(run_id)
        if follow:
            render_run(run, with_logs=False)
            _follow(client, run_id)
            return
    if as_json:
        print_json(run.to_json(with_logs=True))
    else:
        render_run(run)


@app.command()
def logs(run_id: RunId, follow: FollowOption = False) -> None:
    """Print a run's log (a running run's log so far); --follow streams it until the run ends.

    Example: pipectl runs logs 311 -f
    """
    with common.client() as client:
        if not follow:
            _print_lines(client.get_run(run_id).logs.splitlines())
            return
        _follow(client, run_id)


def _no_json_follow(follow: bool, as_json: bool) -> None:
    from pipectl.errors import InvalidInput

    if follow and as_json:
        raise InvalidInput("--follow streams text; it does not go with --json")


def _print_lines(lines: list[str]) -> None:
    from pipectl.cli.render import out

    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def _follow(client: "Client", run_id: int) -> None:
    """Stream the run's log until it ends, then exit with its outcome (as `runs wait`)."""
    from pipectl.client import Waited

    exit_with(Waited(client.follow_run(run_id, _print_lines)), None)


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
        count = client.prune_runs(age, keep_last=keep_last, dry_run=dry_run)
    if as_json:
        print_json({"dry_run": dry_run, "runs": count})
    else:
        note(f"{'would delete' if dry_run else 'deleted'} {count} runs")


def _one_of(run_id: int | None, job: int | None) -> None:
    from pipectl.errors import InvalidInput

    if (run_id is None) == (job is None):
        raise InvalidInput("give a RUN_ID or --job ID (one of them)")


@app.command()
def cancel(
    run_id: OptionalRunId = None,
    job: JobOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a running run (the worker holding it stops it at its next heartbeat, from any
    machine; the run ends `cancelled`), or with --job a job's running or pending one-time run.

    Example: pipectl runs cancel 311
    """
    from pipectl.cli.render import note, print_json

    _one_of(run_id, job)
    with common.client() as client:
        if run_id is not None:
            run = client.cancel_run(run_id)
            document = run.to_json()
            message = f"run {run.id}: cancellation asked; its worker stops it at its next heartbeat"
        elif job is not None:
            done = client.cancel_job(job)
            document = {"job": done.job.to_json(), "run": done.run and done.run.to_json()}
            if done.run is not None:
                message = (
                    f"run {done.run.id} of job {job}: cancellation asked; its worker stops it at "
                    "its next heartbeat"
                )
            else:
                message = f"job {job} cancelled before it ran (archived)"
    if as_json:
        print_json(document)
    else:
        note(message)


@app.command()
def wait(
    run_id: OptionalRunId = None,
    job: JobOption = None,
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="Give up after this long, e.g. 10m (exit 124).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Block until a run ends (or, with --job, the job's current or next run) and exit with its
    outcome: 0 completed, 1 failed or cancelled (its error on stderr), 124 on timeout.

    Example: pipectl runs wait --job 12 --timeout 30m
    """
    _one_of(run_id, job)
    limit = common.duration(timeout)
    with common.client() as client:
        if run_id is not None:
            waited = client.wait_for_run(run_id, limit)
        elif job is not None:
            waited = client.wait_for_job(job, limit)
    if as_json:
        from pipectl.cli.render import print_json

        print_json(waited.run.to_json() if waited.run else None)
    exit_with(waited, timeout)


def exit_with(waited: "Waited", timeout: str | None) -> None:
    """Say on stderr how a wait ended and exit 0 (completed), 1 (failed, cancelled, or the job
    left the queue) or 124 (timed out, as `timeout(1)` does)."""
    from pipectl.cli.render import err

    if waited.timed_out:
        err.print(f"pipectl: timed out after {timeout}", markup=False)
        raise typer.Exit(124)
    run = waited.run
    if run is None:
        err.print(f"pipectl: {waited.reason}", markup=False)
        raise typer.Exit(1)
    if run.status != "completed":
        err.print(f"pipectl: run {run.id} {run.status}: {run.error_message or ''}", markup=False)
        raise typer.Exit(1)
    err.print(f"run {run.id} completed", markup=False)
