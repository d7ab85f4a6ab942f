"""The operator verbs: run-worker, status, enqueue, recover, retry, demo."""

from typing import TYPE_CHECKING, Annotated

import typer

from pipectl.cli import common
from pipectl.cli.common import (
    BrandFilter,
    BrandOption,
    BrandsFilter,
    DatasetsFilter,
    JsonOption,
    ParamOption,
    ParamsOption,
)

if TYPE_CHECKING:
    from pipectl.client import DefaultKey


def register(app: typer.Typer) -> None:
    app.command("run-worker")(run_worker)
    app.command()(status)
    app.command()(enqueue)
    app.command()(recover)
    app.command()(retry)
    app.command()(demo)
    app.command()(doctor)
    app.command("metrics")(metrics_once)


def run_worker(
    once: Annotated[
        bool, typer.Option("--once", help="Process everything due now, then exit (for cron).")
    ] = False,
    poll_interval: Annotated[
        str | None, typer.Option("--poll-interval", help="Idle wait between polls, e.g. 5s.")
    ] = None,
    worker_id: Annotated[
        str | None, typer.Option("--worker-id", help="Name this worker (default host-pid).")
    ] = None,
    max_jobs: Annotated[
        int | None, typer.Option("--max-jobs", min=1, help="Exit after this many runs.")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port", min=1, max=65535, help="Serve /metrics, /status and /healthz."
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address for --metrics-port (0.0.0.0: all).")
    ] = "127.0.0.1",
) -> None:
    """Run the worker: sweep stuck runs, claim due jobs, run them, record them; repeat.

    Example: pipectl run-worker --once   (from cron, every minute)
    """
    from pipectl import logs
    from pipectl.worker import Worker

    interval = common.duration(poll_interval)
    current = common.settings()
    logs.configure(current.log_level)
    Worker.from_settings(
        current,
        worker_id=worker_id,
        once=once,
        max_jobs=max_jobs,
        poll_interval=interval,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    ).run()


def status(
    brand: BrandsFilter = None,
    dataset: DatasetsFilter = None,
    as_json: JsonOption = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="The readiness gate: exit 1 when a selected dataset is stale or never "
            "refreshed, with one reason per failure on stderr.",
        ),
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="With --check: a dataset in warn fails too.")
    ] = False,
    require_worker: Annotated[
        bool,
        typer.Option(
            "--require-worker",
            help="With --check: fail also when no worker is live while jobs are due, or when a "
            "run is stuck.",
        ),
    ] = False,
    brief: Annotated[
        bool,
        typer.Option("--brief", help="Only the summary and the failing rows (stale, never)."),
    ] = False,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Redraw live until Ctrl-C.")] = False,
    interval: Annotated[
        str, typer.Option("--interval", help="Redraw interval for --watch.")
    ] = "2s",
) -> None:
    """Datasets, jobs, stuck runs and workers at a glance; with --check, the readiness gate.

    Example: pipectl status --check --brand acme --dataset ads_performance --require-worker
    """
    from pipectl.errors import InvalidInput
    from pipectl.parsing import check_name

    brands = common.brand_list(brand)
    datasets = [check_name(name, "dataset") for name in dataset or []]
    if (strict or require_worker) and not check:
        raise InvalidInput("--strict and --require-worker are options of --check")
    if watch:
        if as_json or check:
            raise InvalidInput(
                "--watch draws the live view; it does not combine with --json or --check"
            )
        from pipectl.cli.views import watch_status

        every = common.duration(interval)
        with common.client() as client:
            watch_status(
                lambda: client.gate_status(brands, datasets),
                every.total_seconds(),
                brief=brief,
            )
        return
    with common.gc_paused():
        with common.client() as client:
            report = client.gate_status(brands, datasets)
        gate = report.gate(strict=strict, require_worker=require_worker)
        if as_json:
            from pipectl.cli.json_output import print_json
            from pipectl.documents import status_json

            print_json(status_json(report, gate))
        else:
            from pipectl.cli.views import render_status

            render_status(report, brief=brief)
    if check:
        # Plain lines, not rich: a CI log or a cron mail gets them unwrapped and uncoloured.
        for failure in gate.failures:
            typer.echo(failure.reason, err=True)
        typer.echo(gate.summary(), err=True)
        if not gate.ok:
            raise typer.Exit(1)


def enqueue(
    job_type: Annotated[
        str,
        typer.Argument(
            help="Job type, e.g. meta_sync or command.", autocompletion=common.complete_job_type
        ),
    ],
    brand: BrandOption = None,
    param: ParamOption = None,
    params: ParamsOption = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Run at this time (ISO 8601; naive = UTC).")
    ] = None,
    in_: Annotated[str | None, typer.Option("--in", help="Run after this delay, e.g. 10m.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="A name for the job.")] = None,
    allow_duplicate: Annotated[
        bool,
        typer.Option("--allow-duplicate", help="Queue it even if an identical job is pending."),
    ] = False,
    max_retries: Annotated[int | None, typer.Option("--max-retries", min=0, max=100)] = None,
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="Fail the run after this long, e.g. 30m.")
    ] = None,
    concurrency_key: Annotated[
        str | None,
        typer.Option("--concurrency-key", help="Runs sharing a key never overlap."),
    ] = None,
    no_concurrency_key: Annotated[
        bool, typer.Option("--no-concurrency-key", help="May overlap with anything.")
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Block until its run ends; exit 0 completed, 1 failed or cancelled, 124 timeout.",
        ),
    ] = False,
    wait_timeout: Annotated[
        str | None,
        typer.Option("--wait-timeout", help="With --wait: give up after this long, e.g. 10m."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Queue a one-time job (a manual sync) for the next poll; prints the job id.

    Example: pipectl enqueue meta_sync --brand acme --param since=2026-11-01
    """
    from pipectl.cli.render import note, print_json
    from pipectl.client import DEFAULT_KEY
    from pipectl.errors import InvalidInput
    from pipectl.parsing import parse_parameters, parse_when

    if at is not None and in_ is not None:
        raise InvalidInput("give --at or --in, not both")
    parameters = parse_parameters(param, params)
    run_at = parse_when(at) if at is not None else None
    if in_ is not None:
        from pipectl import clock

        run_at = clock.now() + common.duration(in_)
    if wait_timeout is not None and not wait:
        raise InvalidInput("--wait-timeout needs --wait")
    limit = common.duration(wait_timeout)
    with common.client() as client:
        result = client.enqueue_job(
            job_type,
            brand,
            parameters,
            run_at,
            name=name,
            allow_duplicate=allow_duplicate,
            max_retries=max_retries,
            timeout=common.duration(timeout),
            concurrency_key=_concurrency_key(concurrency_key, no_concurrency_key, DEFAULT_KEY),
        )
        waited = client.wait_for_job(result.job.id, limit) if wait else None
    job = result.job
    if result.rearmed:
        note(
            f"job {job.id} was already pending with the same type, brand and parameters; "
            f"brought forward to {job.next_run_at:%Y-%m-%d %H:%M:%S} UTC"
        )
    elif not result.created:
        note(
            f"job {job.id} is already pending with the same type, brand and parameters; "
            "not queued again (--allow-duplicate overrides)"
        )
    document = {**job.to_json(), "created": result.created, "rearmed": result.rearmed}
    if waited is not None:
        from pipectl.cli.runs import exit_with

        if as_json:
            document["run"] = waited.run.to_json() if waited.run else None
            print_json(document)
        else:
            typer.echo(job.id)
        exit_with(waited, wait_timeout)
    elif as_json:
        print_json(document)
    else:
        typer.echo(job.id)


def _concurrency_key(
    key: str | None, none: bool, default: "DefaultKey"
) -> "str | DefaultKey | None":
    from pipectl.errors import InvalidInput

    if key is not None and none:
        raise InvalidInput("give --concurrency-key or --no-concurrency-key, not both")
    return None if none else (key if key is not None else default)


def recover(
    stuck_after: Annotated[
        str | None,
        typer.Option(
            "--stuck-after",
            "--stale-after",
            help="Heartbeat age that makes a run stuck (default 5m; --stale-after is its "
            "former name).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be recovered.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Fail runs whose worker stopped heartbeating, and send their jobs through the retry rule.

    Example: pipectl recover --stuck-after 10m --dry-run
    """
    from pipectl import clock
    from pipectl.cli.render import ago, brand_label, esc, note, print_json, table

    threshold = common.duration(stuck_after)
    with common.client() as client:
        recovered = client.recover(threshold, dry_run=dry_run)
        runs = {claim.run.id: client.store.get_run(claim.run.id) for claim in recovered}
    if as_json:
        print_json(
            [(runs[c.run.id] or c.run).to_json() | {"brand_id": c.job.brand_id} for c in recovered]
        )
        return
    if not recovered:
        note("no stuck runs")
        return
    now = clock.now()
    grid = table(
        "would recover" if dry_run else "recovered",
        "run",
        "job",
        "brand",
        "worker",
        "last heartbeat",
    )
    for claim in recovered:
        grid.add_row(
            str(claim.run.id),
            f"{claim.job.id} {esc(claim.job.name)}",
            brand_label(claim.job.brand_id),
            esc(claim.run.worker_id),
            ago(claim.run.heartbeat_at, now),
        )
    from pipectl.cli.render import out

    out.print(grid)


def retry(
    job_id: Annotated[
        int | None,
        typer.Argument(
            min=1,
            max=common.MAX_ID,
            help="Re-arm this job (with --now).",
            autocompletion=common.complete_job_id,
        ),
    ] = None,
    now: Annotated[
        bool,
        typer.Option(
            "--now",
            help="Run the job (with --brand: each of its jobs in backoff) at the next poll.",
        ),
    ] = False,
    brand: BrandFilter = None,
    as_json: JsonOption = False,
) -> None:
    """Show every job in backoff, or re-arm one (or all of a brand's) to run at the next poll.

    Example: pipectl retry 42 --now   or   pipectl retry --brand acme --now
    """
    from pipectl.cli.render import note, print_json
    from pipectl.cli.views import backoff_json, render_backoff
    from pipectl.errors import InvalidInput

    with common.client() as client:
        if job_id is not None:
            if not now:
                raise InvalidInput(f"to re-arm job {job_id}, add --now")
            job = client.retry_now(job_id)
            if as_json:
                print_json(job.to_json())
            else:
                note(f"job {job.id} will run at the next poll")
            return
        if now:
            if brand is None:
                raise InvalidInput("--now needs a JOB_ID, or --brand to re-arm a brand's jobs")
            rearmed = client.retry_brand_now(common.known_brand(client, brand))
            if as_json:
                print_json([job.to_json() for job in rearmed])
            else:
                ids = ", ".join(str(job.id) for job in rearmed) or "none"
                note(f"{len(rearmed)} job(s) of brand {brand} will run at the next poll: {ids}")
            return
        jobs = client.jobs_in_backoff(brand_id=common.known_brand(client, brand))
    if as_json:
        print_json([backoff_json(job) for job in jobs])
    else:
        render_backoff(jobs)


def demo(
    database: Annotated[
        str | None,
        typer.Option(
            "--database", help="Where to build the demo SQLite file (default: a temp dir)."
        ),
    ] = None,
) -> None:
    """Build a self-contained demo store, run the worker once, and show the status view.

    Example: pipectl demo
    """
    from pipectl.demo import build_demo

    url, report = build_demo(database)
    from pipectl.cli.render import note
    from pipectl.cli.views import render_status

    render_status(report)
    note(f"\nDemo store: {url}\nExplore it: pipectl --database-url {url} jobs list")


def doctor(as_json: JsonOption = False) -> None:
    """Check the configuration, the store, the clock, workers, stuck runs and jobs; exit 1 when
    a check fails.

    Example: pipectl doctor
    """
    from pipectl.cli.render import err, esc, out, print_json, styled, table
    from pipectl.doctor import masked_settings, run_checks
    from pipectl.settings import env_name

    current = common.settings()
    checks = run_checks(current)
    failed = any(check.level == "fail" for check in checks)
    if as_json:
        print_json(
            {
                "ok": not failed,
                "checks": [check.to_json() for check in checks],
                "settings": masked_settings(current),
            }
        )
    else:
        grid = table(None, "check", "result", "detail")
        for check in checks:
            grid.add_row(check.name, styled(check.level), esc(check.detail), style=None)
        out.print(grid)
        out.print()
        settings_grid = table("configuration in effect", "setting", "value")
        for name, value in masked_settings(current).items():
            settings_grid.add_row(env_name(name), value)
        out.print(settings_grid)
        if failed:
            err.print("[bold red]doctor found problems[/]")
    if failed:
        raise typer.Exit(1)


def metrics_once() -> None:
    """Print the store's gauges once in Prometheus text format (for node_exporter's textfile
    collector).

    Example: pipectl metrics > /var/lib/node_exporter/pipectl.prom
    """
    from prometheus_client import generate_latest

    from pipectl.metrics import store_registry

    with common.client() as client:
        registry = store_registry(client.status)
        typer.echo(generate_latest(registry).decode(), nl=False)
