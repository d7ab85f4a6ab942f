"""The richer views shared by several commands: status, the backoff list, job and run details."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.rule import Rule
from rich.table import Table

from pipectl.cli.render import (
    STATE_STYLES,
    Fitted,
    ago,
    brand_label,
    err,
    esc,
    out,
    run_status,
    shortened,
    stamp,
    styled,
    styled_as,
    table,
    truncate,
    unbroken,
    until,
)
from pipectl.client import StatusReport
from pipectl.concurrency import Waiting
from pipectl.documents import worker_alert
from pipectl.freshness import STATES_WORST_FIRST, worst_first, worst_state
from pipectl.lifecycle import after_last_retry, attempt, attempts_allowed, in_backoff
from pipectl.models import Job, Run
from pipectl.parsing import format_duration
from pipectl.phrases import retry_text, schedule_text
from pipectl.triggers import HeldWaiting, producer_index, producers_of


def next_run_text(job: Job, now: datetime) -> str:
    """When the job runs next: `paused` and `running` say so rather than a time."""
    if job.status in ("paused", "running"):
        return styled(job.status)
    if job.status == "active" and job.next_run_at is None and job.waits_for_data:
        return "on new data"
    if job.status != "active" or job.next_run_at is None:
        return "—"
    return until(job.next_run_at, now)


def backoff_json(job: Job) -> dict[str, Any]:
    return {
        **job.to_json(),
        "attempt": attempt(job),
        "attempts_allowed": attempts_allowed(job),
        "after_last_retry": after_last_retry(job),
    }


def job_state(job: Job, waiting: Waiting | HeldWaiting | None) -> str:
    return f"[yellow]{esc(waiting.describe())}[/]" if waiting else styled(job.status)


def summary_view(report: StatusReport) -> list[str]:
    """The block `status` leads with, a line each: datasets by state, runs and jobs that need a
    look, workers, and the brands, worst first."""
    now = report.now
    counts = Counter(d.state for d in report.datasets)
    states = "  ".join(
        styled_as(state, f"{counts[state]} {state}") if counts[state] else f"0 {state}"
        for state in STATES_WORST_FIRST
    )
    stuck = len(report.stuck_runs)
    backoff = sum(1 for job in report.jobs if in_backoff(job))
    runs = f"{styled_as('stale', f'{stuck} stuck') if stuck else '0 stuck'}  {backoff} in backoff"
    live = report.live_workers
    if live:
        workers = f"{len(live)} live, last seen {ago(max(w.last_seen_at for w in live), now)}"
    elif report.workers:
        last = max(report.workers, key=lambda w: w.last_seen_at)
        workers = f"[bold red]none live[/] (last: {esc(last.id)}, {ago(last.last_seen_at, now)})"
    else:
        workers = "[bold red]none ever registered[/]"
    lines = [
        f"[bold]datasets[/]  {states}",
        f"[bold]runs[/]      {runs}",
        f"[bold]workers[/]   {workers}",
    ]
    brands = _brand_states(report)
    if brands:
        lines.append(f"[bold]brands[/]    {_brand_list(brands, BRAND_LINE_CHARS)}")
    return lines


BRAND_LINE_CHARS = 66  # what fits after "brands    " at 80 columns


def _brand_states(report: StatusReport) -> list[tuple[str | None, str | None]]:
    """(brand, worst state) for every brand with datasets or jobs, worst first."""
    brands = {d.brand_id for d in report.datasets} | {j.brand_id for j in report.jobs}
    order = worst_first(brands, report.datasets)
    return [
        (brand, worst_state(d.state for d in report.datasets if d.brand_id == brand))
        for brand in order
    ]


def _brand_list(brands: list[tuple[str | None, str | None]], width: int) -> str:
    """`globex stale, acme never, initech fresh`, as many as fit in `width`, then `+N more`."""
    shown: list[str] = []
    used = 0
    for index, (brand, state) in enumerate(brands):
        plain = f"{brand or 'global'} {state or 'no data'}"
        rest = len(brands) - index - 1
        reserve = len(f", +{rest} more") if rest else 0
        if shown and used + len(plain) + 2 + reserve > width:
            return ", ".join(shown) + f", +{len(brands) - index} more"
        shown.append(styled_as(state, plain))
        used += len(plain) + (2 if len(shown) > 1 else 0)
    return ", ".join(shown)


def status_view(report: StatusReport, *, brief: bool = False) -> list[RenderableType]:
    """The status screen as renderables: the summary, then each brand worst first (with
    `brief`, only the failing rows), then stuck runs and (not with `brief`) the live workers."""
    head, blocks, tail = status_sections(report, brief=brief)
    return [*head, *(part for block in blocks for part in block.parts), *tail]


@dataclass(frozen=True, slots=True)
class BrandBlock:
    """One brand's part of the status screen, and how many dataset and job rows it shows."""

    parts: list[RenderableType]
    rows: int


def status_sections(
    report: StatusReport, *, brief: bool = False
) -> tuple[list[RenderableType], list[BrandBlock], list[RenderableType]]:
    """(head, brand blocks worst first, tail): `status --watch` keeps the head and the tail
    (stuck runs, workers) whole and shows as many brand blocks as fit."""
    now = report.now
    head: list[RenderableType] = [*summary_view(report), ""]
    brands = [brand for brand, _ in _brand_states(report)]
    if not brands:
        head.append(
            "No jobs and no datasets yet. Add one: pipectl jobs add TYPE --cron '0 3 * * *'"
        )
    if brief:
        head += _failing_rows(report)
        brands = []
    blocks = []
    producers = producer_index(report.jobs)
    for brand in brands:
        parts: list[RenderableType] = []
        datasets = [d for d in report.datasets if d.brand_id == brand]
        worst = worst_state(d.state for d in datasets)
        style = STATE_STYLES.get(worst or "", "") or "bold"
        parts.append(Rule(f"[{style}]{brand_label(brand)}[/]", align="left", style=style))
        if datasets:
            grid = table(None, "dataset", "state", "age", "last success", "last attempt", "error")
            for d in datasets:
                failed = f"[red]run {d.last_run_id} failed:[/] " if d.last_attempt_failed else ""
                made_by = producers_of(producers, d.brand_id, d.dataset)
                grid.add_row(
                    esc(d.dataset) + (f" [dim]← job {made_by[0]}[/]" if made_by else ""),
                    styled(d.state),
                    format_duration(d.age) if d.age is not None else "—",
                    ago(d.last_success_at, now),
                    ago(d.last_attempt_at, now),
                    failed + truncate(d.last_error, 50),
                )
            parts.append(grid)
        jobs = [j for j in report.jobs if j.brand_id == brand]
        if jobs:
            parts.append(Fitted(functools.partial(_status_jobs, report, jobs)))
        parts.append("")
        blocks.append(BrandBlock(parts, len(datasets) + len(jobs)))
    tail: list[RenderableType] = []
    if report.stuck_runs:
        grid = table("[red]stuck runs[/]", "run", "job", "brand", "worker", "last heartbeat")
        for claim in report.stuck_runs:
            grid.add_row(
                str(claim.run.id),
                f"{claim.job.id} {esc(claim.job.name)}",
                brand_label(claim.job.brand_id),
                esc(claim.run.worker_id),
                ago(claim.run.heartbeat_at, now),
            )
        tail += [grid, "Recover them: pipectl recover\n"]
    live = report.live_workers
    if live and not brief:  # the summary's workers line says as much
        tail.append(
            "workers: " + ", ".join(f"{esc(w.id)} (seen {ago(w.last_seen_at, now)})" for w in live)
        )
    return head, blocks, tail


def _status_jobs(report: StatusReport, jobs: list[Job], narrow: bool) -> Table:
    """A brand's jobs in `status`. Nothing in it breaks a cron expression, a timezone or a
    time: the job type is in `jobs show`, the timezone goes under the cron expression, a name
    too long is cut with `…`; narrow, the retry goes under the next run and the last run's time
    under its outcome."""
    now = report.now
    columns = ["job", "schedule", "status", "next run", "retry", "last run"]
    grid = table(None, *(c for c in columns if not (narrow and c == "retry")))
    shortened(grid, 0)
    unbroken(grid, 1, 3, *((4,) if narrow else (4, 5)))
    for j in jobs:
        last = report.last_runs.get(j.last_run_id or -1)
        when = ago(last.finished_at or last.started_at, now) if last else ""
        row = [
            f"{j.id} {esc(j.name)}",
            schedule_text(j, stacked=True),
            job_state(j, report.waiting.get(j.id)),
        ]
        if narrow:
            retry = retry_text(j)
            row.append(next_run_text(j, now) + (f"\n{retry}" if retry else ""))
            row.append(f"{run_status(last)}\n{when}" if last else "never ran")
        else:
            row.append(next_run_text(j, now))
            row.append(retry_text(j))
            row.append(f"{run_status(last)} {when}" if last else "never ran")
        grid.add_row(*row)
    return grid


def _failing_rows(report: StatusReport) -> list[RenderableType]:
    """`status --brief`'s rows: the stale and never-refreshed datasets, worst first."""
    failing = [d for d in report.datasets if d.state in ("stale", "never")]
    if not failing:
        return ["[green]every dataset is fresh or in warn[/]"]
    rank = {state: index for index, state in enumerate(STATES_WORST_FIRST)}
    failing.sort(key=lambda d: (rank[d.state], d.brand_id is not None, d.brand_id or "", d.dataset))
    grid = table(None, "brand", "dataset", "state", "age", "error")
    for d in failing:
        grid.add_row(
            brand_label(d.brand_id),
            esc(d.dataset),
            styled(d.state),
            format_duration(d.age) if d.age is not None else "—",
            (f"run {d.last_run_id}: " if d.last_attempt_failed else "")
            + truncate(d.last_error, 40),
        )
    return [grid]


def render_status(report: StatusReport, *, brief: bool = False) -> None:
    for part in status_view(report, brief=brief):
        out.print(part)
    alert = worker_alert(report)
    if alert:
        err.print(f"[bold red]WARNING: {esc(alert)}[/]")


def fitted_view(
    report: StatusReport, console: Console, *, brief: bool = False, footer: str = ""
) -> list[RenderableType]:
    """The status screen cut to the console's height for `status --watch`: the summary, the
    stuck runs, the worker warning and the footer always; brand blocks, worst first, while
    they fit; then how many brands and rows are hidden."""
    head, blocks, tail = status_sections(report, brief=brief)
    alert = worker_alert(report)
    warning: list[RenderableType] = [f"[bold red]WARNING: {esc(alert)}[/]"] if alert else []
    end = [*tail, *warning, footer]

    def height(parts: list[RenderableType]) -> int:
        return len(console.render_lines(Group(*parts), console.options, pad=False))

    room = console.height - height([*head, *end]) - 1  # one line for the hidden note
    shown: list[RenderableType] = []
    for index, block in enumerate(blocks):
        needed = height(block.parts)
        if needed > room:
            hidden = blocks[index:]
            rows = sum(b.rows for b in hidden)
            note = (
                f"[dim]… {len(hidden)} more brand(s), {rows} row(s) hidden: "
                "a taller window, or pipectl status[/]"
            )
            return [*head, *shown, note, *end]
        shown += block.parts
        room -= needed
    return [*head, *shown, *end]


def watch_status(
    load: Callable[[], StatusReport], interval_s: float, *, brief: bool = False
) -> None:
    """Redraw the status screen in place every `interval_s` until Ctrl-C (alternate screen: no
    flicker, nothing left in the scrollback), cut to the screen's height."""
    import time

    from rich.live import Live

    def frame() -> Group:
        report = load()
        footer = f"[dim]refreshed {stamp(report.now)} · every {interval_s:g}s · Ctrl-C to quit[/]"
        return Group(*fitted_view(report, out, brief=brief, footer=footer))

    with Live(frame(), console=out, screen=True, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(interval_s)
                live.update(frame(), refresh=True)
        except KeyboardInterrupt:
            pass


def render_backoff(jobs: list[Job]) -> None:
    if not jobs:
        err.print("no jobs in backoff")
        return
    from pipectl import clock

    now = clock.now()
    grid = table(
        None, "job", "brand", "type", "attempt", "next try", "last error", "after the last retry"
    )
    for job in jobs:
        grid.add_row(
            f"{job.id} {esc(job.name)}",
            brand_label(job.brand_id),
            job.job_type,
            f"{attempt(job)} of {attempts_allowed(job)}",  # under the header attempt
            f"{stamp(job.next_run_at)} ({until(job.next_run_at, now)})",
            truncate(job.last_error, 50),
            after_last_retry(job),
        )
    out.print(grid)


def render_jobs(
    jobs: list[Job], waiting: dict[int, Waiting | HeldWaiting], *, to_stderr: bool = False
) -> None:
    """The jobs table, on stdout (or stderr, when it only shows what a command is about to do)."""
    if not jobs:
        err.print("no jobs")
        return
    from pipectl import clock

    now = clock.now()
    (err if to_stderr else out).print(
        Fitted(lambda narrow: _jobs_table(jobs, waiting, now, narrow))
    )


def _jobs_table(
    jobs: list[Job], waiting: dict[int, Waiting | HeldWaiting], now: datetime, narrow: bool
) -> Table:
    """The jobs table: wide, a column each; narrow, the brand and type under the name, the
    timezone under the cron expression and the retry under the next run, so that no cron
    expression, timezone or time is broken, and a name or brand too long is cut with `…`."""
    if narrow:
        grid = table(None, "id", "job", "schedule", "status", "next run")
        shortened(grid, 1)
        unbroken(grid, 2, 4)
    else:
        grid = table(None, "id", "brand", "type", "name", "schedule", "status", "next run", "retry")
        shortened(grid, 1, 2, 3)
        unbroken(grid, 4, 6, 7)
    for job in jobs:
        retry = retry_text(job)
        if narrow:
            grid.add_row(
                str(job.id),
                f"{esc(job.name)}\n[dim]{brand_label(job.brand_id)} {job.job_type}[/]",
                schedule_text(job, stacked=True),
                job_state(job, waiting.get(job.id)),
                next_run_text(job, now) + (f"\n{retry}" if retry else ""),
            )
        else:
            grid.add_row(
                str(job.id),
                brand_label(job.brand_id),
                job.job_type,
                esc(job.name),
                schedule_text(job),
                job_state(job, waiting.get(job.id)),
                next_run_text(job, now),
                retry,
            )
    return grid


def render_job(job: Job, runs: list[Run]) -> None:
    from pipectl import clock

    now = clock.now()
    rows = [
        ("id", str(job.id)),
        ("name", esc(job.name)),
        ("brand", brand_label(job.brand_id)),
        ("type", job.job_type),
        ("schedule", schedule_text(job)),
        ("status", styled(job.status)),
        ("next run", f"{stamp(job.next_run_at)} ({next_run_text(job, now)})"),
        ("retries", f"{job.retry_count} of {job.max_retries} used"),
        ("timeout", format_duration_or_none(job.timeout_seconds)),
        ("concurrency key", esc(job.concurrency_key) or "none"),
        ("last error", esc(job.last_error)),
    ]
    grid = table(None, "", "")
    grid.show_header = False
    for key, value in rows:
        grid.add_row(f"[bold]{key}[/]", value)
    grid.add_row("[bold]parameters[/]", _json_text(job.parameters))
    out.print(grid)
    if runs:
        out.print()
        render_runs(runs)


def format_duration_or_none(seconds: float | None) -> str:
    from datetime import timedelta

    return format_duration(timedelta(seconds=seconds)) if seconds else "none"


def runs_json(run: Run, job: Job | None) -> dict[str, Any]:
    """A run in a run list: named by its job's name and brand, not only the job's id."""
    return {
        **run.to_json(),
        "job_name": job.name if job else None,
        "brand_id": job.brand_id if job else None,
    }


def render_runs(runs: list[Run], jobs: dict[int, Job] | None = None) -> None:
    """The runs table; given their jobs, each run is named by its job's name and brand."""
    if not runs:
        err.print("no runs")
        return
    from pipectl import clock

    now = clock.now()
    grid = table(None, "run", "job", "attempt", "status", "started", "took", "worker", "error")
    for run in runs:
        took = format_duration(run.finished_at - run.started_at) if run.finished_at else "—"
        job = (jobs or {}).get(run.job_id)
        grid.add_row(
            str(run.id),
            f"{run.job_id} {esc(job.name)} ({brand_label(job.brand_id)})"
            if job
            else str(run.job_id),
            str(run.attempt),
            run_status(run),
            ago(run.started_at, now),
            took,
            esc(run.worker_id),
            truncate(run.error_message, 50),
        )
    out.print(grid)


def render_run(run: Run, *, with_logs: bool = True) -> None:
    """The run, its steps and its logs (without: up to the logs' title, for a follower)."""
    grid = table(None, "", "")
    grid.show_header = False
    for key, value in (
        ("run", str(run.id)),
        ("job", str(run.job_id)),
        ("attempt", str(run.attempt)),
        ("status", run_status(run)),
        ("worker", esc(run.worker_id)),
        ("started", stamp(run.started_at)),
        ("finished", stamp(run.finished_at)),
        ("heartbeat", stamp(run.heartbeat_at)),
        ("error", esc(run.error_message)),
    ):
        grid.add_row(f"[bold]{key}[/]", value)
    if run.cancel_requested_at is not None:
        by = f" by {esc(run.cancel_requested_by)}" if run.cancel_requested_by else ""
        grid.add_row("[bold]cancel asked[/]", f"{stamp(run.cancel_requested_at)}{by}")
    out.print(grid)
    if run.steps:
        steps = table("steps", "step", "status", "datasets", "brand", "fatal", "error")
        for step in run.steps:
            steps.add_row(
                esc(step["name"]),
                styled(step["status"]),
                esc(", ".join(step["datasets"])),
                brand_label(step.get("brand_id")),
                "yes" if step.get("fatal", True) else "no",
                truncate(step.get("error"), 50),
            )
        out.print(steps)
    out.print("[bold]logs[/]")
    if with_logs:
        out.print(run.logs or "(no output)", markup=False)


def _json_text(value: Any) -> str:
    import json

    from rich.markup import escape

    return escape(json.dumps(value, ensure_ascii=False))


def render_lineage(lineage: dict[str, Any]) -> None:
    """`datasets graph`: each dataset as a tree, its producers above, its consumers below."""
    from rich.tree import Tree

    if not lineage["datasets"]:
        out.print("No dataset is produced or consumed by any job yet.")
        return

    def job_text(item: dict[str, Any]) -> str:
        return f"job {item['job_id']} {esc(item['name'])} [dim]({brand_label(item['brand_id'])})[/]"

    for item in lineage["datasets"]:
        tree = Tree(f"[bold]{esc(item['dataset'])}[/]")
        made = tree.add("produced by")
        for producer in item["producers"] or []:
            made.add(job_text(producer))
        if not item["producers"]:
            made.add("[yellow]no job[/]")
        if item["consumers"]:
            used = tree.add("consumed by")
            for consumer in item["consumers"]:
                how = "triggers" if consumer["kind"] == "after" else "requires fresh"
                used.add(f"{job_text(consumer)} — {how} ({esc(consumer['input'])})")
        out.print(tree)
