"""`pipectl jobs …`: add, list, show, pause, resume, archive, edit."""

from typing import TYPE_CHECKING, Annotated

import typer

from pipectl.cli import common
from pipectl.cli.common import (
    MAX_ID,
    BrandFilter,
    BrandOption,
    JsonOption,
    ParamOption,
    ParamsOption,
)

if TYPE_CHECKING:
    from pipectl.models import Job

app = typer.Typer(
    help="Scheduled jobs: add, list, show, run, pause, resume, archive, edit.", no_args_is_help=True
)

JobId = Annotated[
    int,
    typer.Argument(help="The job's id.", min=1, max=MAX_ID, autocompletion=common.complete_job_id),
]
Cron = Annotated[str, typer.Option("--cron", help="Cron expression, e.g. '0 3 * * *'.")]
Tz = Annotated[str, typer.Option("--tz", help="IANA timezone the cron expression is in.")]
Timeout = Annotated[
    str | None, typer.Option("--timeout", help="Fail a run after this long, e.g. 30m.")
]
MaxRetries = Annotated[
    int | None, typer.Option("--max-retries", min=0, max=100, help="Retries after a failure.")
]
After = Annotated[
    list[str] | None,
    typer.Option(
        "--after",
        help="Run when this dataset (the same brand's; global:NAME for the global one) has had "
        "a new success since the job's last run; repeat for several (each must have).",
    ),
]
RequiresFresh = Annotated[
    list[str] | None,
    typer.Option(
        "--requires-fresh",
        help="Hold a due run while this dataset is stale or never succeeded; repeatable.",
    ),
]
MaxHold = Annotated[
    str | None,
    typer.Option(
        "--max-hold",
        help="Fail a run held longer than this, e.g. 6h (default: the schedule's interval, "
        "24h without a cron).",
    ),
]
AllowUnknown = Annotated[
    bool,
    typer.Option(
        "--allow-unknown", help="Accept inputs no job produces and no threshold declares (yet)."
    ),
]


def _emit(job: "Job", as_json: bool, message: str) -> None:
    from pipectl.cli.render import note, print_json

    if as_json:
        print_json(job.to_json())
    else:
        note(message)


@app.command("add")
def add(
    job_type: Annotated[
        str,
        typer.Argument(
            help="Job type, e.g. meta_sync or command.", autocompletion=common.complete_job_type
        ),
    ],
    cron: Annotated[
        str | None,
        typer.Option("--cron", help="Cron expression, e.g. '0 3 * * *' (or give --after)."),
    ] = None,
    tz: Tz = "UTC",
    brand: BrandOption = None,
    name: Annotated[str | None, typer.Option("--name", help="A name for the job.")] = None,
    param: ParamOption = None,
    params: ParamsOption = None,
    max_retries: MaxRetries = None,
    timeout: Timeout = None,
    paused: Annotated[bool, typer.Option("--paused", help="Add it paused.")] = False,
    concurrency_key: Annotated[
        str | None, typer.Option("--concurrency-key", help="Runs sharing a key never overlap.")
    ] = None,
    no_concurrency_key: Annotated[
        bool, typer.Option("--no-concurrency-key", help="May overlap with anything.")
    ] = False,
    after: After = None,
    requires_fresh: RequiresFresh = None,
    max_hold: MaxHold = None,
    allow_unknown: AllowUnknown = False,
    as_json: JsonOption = False,
) -> None:
    """Add a recurring job, or one that runs when its inputs refresh (--after); prints its id.

    Example: pipectl jobs add meta_sync --cron '0 */6 * * *' --tz Europe/Berlin --brand acme

    Example: pipectl jobs add roas_rollup --after ads_performance --brand acme
    """
    from pipectl.cli.ops import _concurrency_key
    from pipectl.cli.render import note, print_json
    from pipectl.client import DEFAULT_KEY
    from pipectl.parsing import parse_parameters

    parameters = parse_parameters(param, params)
    with common.client() as client:
        job = client.add_job(
            job_type,
            cron,
            timezone=tz,
            brand_id=brand,
            name=name,
            parameters=parameters,
            max_retries=max_retries,
            timeout=common.duration(timeout),
            paused=paused,
            concurrency_key=_concurrency_key(concurrency_key, no_concurrency_key, DEFAULT_KEY),
            after=after or (),
            requires_fresh=requires_fresh or (),
            max_hold=common.duration(max_hold),
            allow_unknown=allow_unknown,
        )
    if as_json:
        print_json(job.to_json())
    else:
        typer.echo(job.id)
        if job.next_run_at is None:
            inputs = ", ".join(item["dataset"] for item in job.inputs if item["kind"] == "after")
            note(f"added job {job.id} ({job.name}); it runs after {inputs} refresh")
        else:
            note(f"added job {job.id} ({job.name}); next run {job.next_run_at:%Y-%m-%d %H:%M} UTC")


@app.command("list")
def list_(
    brand: BrandFilter = None,
    job_type: Annotated[str | None, typer.Option("--type", help="Only this job type.")] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", help="Only this status: active, paused, running, failed, archived…"
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1)] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Archived jobs too (hidden unless --status archived).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List jobs (not archived ones, unless --all).

    Example: pipectl jobs list --brand acme --status active
    """
    from pipectl.cli.render import print_json
    from pipectl.cli.views import render_jobs
    from pipectl.documents import jobs_json
    from pipectl.errors import InvalidInput
    from pipectl.models import JOB_STATUSES

    if status is not None and status not in JOB_STATUSES:
        raise InvalidInput(f"unknown status {status!r}; use one of {', '.join(JOB_STATUSES)}")
    with common.client() as client:
        jobs = client.list_jobs(
            brand_id=common.known_brand(client, brand),
            job_type=job_type,
            status=status,
            limit=limit,
            archived=all_,
        )
        waiting = client.waiting(jobs)
    if as_json:
        print_json(jobs_json(jobs, waiting))
    else:
        render_jobs(jobs, waiting)


@app.command()
def show(job_id: JobId, as_json: JsonOption = False) -> None:
    """Show one job and its recent runs.

    Example: pipectl jobs show 12
    """
    from pipectl.cli.render import print_json
    from pipectl.cli.views import render_job

    with common.client() as client:
        job = client.get_job(job_id)
        runs = client.list_runs(job_id=job_id, limit=10)
    if as_json:
        print_json({**job.to_json(), "runs": [run.to_json() for run in runs]})
    else:
        render_job(job, runs)


OptionalJobId = Annotated[
    int | None,
    typer.Argument(
        help="The job's id (or select a brand's jobs with --brand).",
        min=1,
        max=MAX_ID,
        autocompletion=common.complete_job_id,
    ),
]
SelectBrand = Annotated[
    str | None, typer.Option("--brand", "-b", help="Every matching job of this brand.")
]
SelectType = Annotated[
    str | None, typer.Option("--type", help="With --brand: only jobs of this job type.")
]
SelectName = Annotated[str | None, typer.Option("--name", help="With --brand: only jobs so named.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="With --brand: do not ask (for scripts).")]


def _act(
    action: str,
    job_id: int | None,
    brand: str | None,
    job_type: str | None,
    name: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """One job by id, or every matching job of a brand: listed, confirmed, changed at once."""
    from pipectl.actions import DONE
    from pipectl.cli.render import note, print_json
    from pipectl.cli.views import render_jobs
    from pipectl.errors import InvalidInput

    if job_id is not None:
        if brand is not None or job_type is not None or name is not None:
            raise InvalidInput("give a JOB_ID or --brand (with --type/--name), not both")
        with common.client() as client:
            job = getattr(client, action)(job_id)
        message = f"job {job.id} {DONE[action]}"
        if action == "resume":
            message += f"; next run {job.next_run_at:%Y-%m-%d %H:%M} UTC"
        _emit(job, as_json, message)
        return
    if brand is None:
        raise InvalidInput(f"give a JOB_ID, or --brand to {action} a brand's jobs")
    with common.client() as client:
        jobs = client.jobs_for_action(action, brand_id=brand, job_type=job_type, name=name)
        if not jobs:
            note(f"no job of brand {brand} to {action}; nothing changed")
            if as_json:
                print_json([])
            return
        note(f"{action} {len(jobs)} job(s) of brand {brand}:")
        render_jobs(jobs, {}, to_stderr=True)
        if not yes and not typer.confirm(
            f"{action.capitalize()} {len(jobs)} job(s)?", default=False, err=True
        ):
            note("nothing changed")
            raise typer.Exit(1)
        changed = client.act_on_jobs(action, jobs)
    if as_json:
        print_json([job.to_json() for job in changed])
    else:
        note(f"{len(changed)} job(s) {DONE[action]}")


def _action_command(action: str, help_text: str) -> None:
    """Register `jobs ACTION [JOB_ID] [--brand B [--type T] [--name N]]`."""

    def command(
        job_id: OptionalJobId = None,
        brand: SelectBrand = None,
        job_type: SelectType = None,
        name: SelectName = None,
        yes: Yes = False,
        as_json: JsonOption = False,
    ) -> None:
        _act(action, job_id, brand, job_type, name, yes, as_json)

    command.__doc__ = help_text
    app.command(action)(command)


_action_command(
    "pause",
    """Pause a job, or every active job of a brand (in one transaction, after asking): it stays
    scheduled but no worker claims it.

    Example: pipectl jobs pause --brand acme --type meta_sync --yes
    """,
)
_action_command(
    "resume",
    """Resume a paused job, or every paused job of a brand (a recurring one at its next regular
    time, without catch-up).

    Example: pipectl jobs resume --brand acme --yes
    """,
)
_action_command(
    "archive",
    """Archive a job, or every matching job of a brand: it never runs again and stays on
    record.

    Example: pipectl jobs archive 12
    """,
)


@app.command("run")
def run(job_id: JobId, as_json: JsonOption = False) -> None:
    """Run a job at the next poll, whatever its schedule or backoff ("sync now"); a recurring
    job returns to its cron afterwards.

    Example: pipectl jobs run 12
    """
    with common.client() as client:
        job = client.run_now(job_id)
    _emit(job, as_json, f"job {job.id} will run at the next poll")


@app.command()
def edit(
    job_id: JobId,
    cron: Annotated[
        str | None,
        typer.Option("--cron", help="New cron expression; a job run --after its inputs gets one."),
    ] = None,
    tz: Annotated[str | None, typer.Option("--tz", help="New timezone.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    param: ParamOption = None,
    params: ParamsOption = None,
    max_retries: MaxRetries = None,
    timeout: Timeout = None,
    after: After = None,
    requires_fresh: RequiresFresh = None,
    max_hold: MaxHold = None,
    allow_unknown: AllowUnknown = False,
    as_json: JsonOption = False,
) -> None:
    """Change a job; --param/--params merge into its parameters; --after / --requires-fresh
    replace its inputs of that kind; --cron on a job that runs on its inputs makes it run on
    new data or on its cron. A refused edit changes nothing.

    Example: pipectl jobs edit 12 --cron '30 2 * * *' --param limit=500
    """
    from pipectl.parsing import parse_parameters

    parameters = parse_parameters(param, params)
    with common.client() as client:
        job = client.edit_job(
            job_id,
            cron_expression=cron,
            timezone=tz,
            name=name,
            parameters=parameters,
            max_retries=max_retries,
            timeout=common.duration(timeout),
            after=after,
            requires_fresh=requires_fresh,
            max_hold=common.duration(max_hold),
            allow_unknown=allow_unknown,
        )
    _emit(job, as_json, f"job {job.id} updated")


@app.command()
def purge(
    older_than: Annotated[
        str,
        typer.Option("--older-than", help="Delete archived jobs untouched for longer, e.g. 180d."),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete archived jobs (and their runs) that have not changed for a while.

    Example: pipectl jobs purge --older-than 180d --dry-run
    """
    from pipectl.cli.render import note, print_json

    age = common.duration(older_than)
    with common.client() as client:
        count = client.purge_archived_jobs(age, dry_run=dry_run)
    if as_json:
        print_json({"dry_run": dry_run, "jobs": count})
    else:
        note(f"{'would delete' if dry_run else 'deleted'} {count} archived jobs and their runs")
