"""The web view: the health of every brand (`/`), a brand's page with its jobs and their
buttons (`/brands/{brand}`), a run with its steps and logs (`/runs/{id}`), and logging in."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pipectl.actions import applies
from pipectl.client import Client, StatusReport
from pipectl.documents import worker_alert
from pipectl.errors import InvalidInput, NotFound
from pipectl.lifecycle import attempt, attempts_allowed, run_is_live
from pipectl.models import Freshness, Job, Run
from pipectl.parsing import MAX_ID, format_duration
from pipectl.phrases import ago, retry_text, schedule_text, stamp, until
from pipectl.tokens import Principal
from pipectl.web import access
from pipectl.web.auth import (
    SESSION_COOKIE,
    SESSION_LIFETIME_S,
    cookie_secure,
    require_operate,
)
from pipectl.web.html import button_form, link, page, state, table, text

SEVERITY = {"stale": 0, "never": 1, "warn": 2, "fresh": 3}  # worst first
ACTIONS = {"run": "run now", "pause": "paused", "resume": "resumed"}

router = APIRouter(include_in_schema=False)


class Visit:
    """One page request: its session (a new one is issued to a first-time visitor, so that
    even the login form carries a CSRF token), and who is logged in."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.auth = request.app.state.auth
        self.auth.check_host(request)
        self.session = self.auth.session(request)
        self.cookie: str | None = None
        if self.session is None:
            self.session, self.cookie = self.auth.new_session(None)
        self.principal: Principal | None = self.auth.page_principal(self.session)

    @property
    def csrf(self) -> str:
        assert self.session is not None
        return self.auth.csrf_token(self.session)

    def require(self) -> Principal:
        if self.principal is None:
            raise LoginRequired
        return self.principal

    def start(self, token_name: str | None) -> None:
        self.session, self.cookie = self.auth.new_session(token_name)

    def respond(self, response: Response) -> Response:
        if self.cookie is not None:
            response.set_cookie(
                SESSION_COOKIE,
                self.cookie,
                max_age=SESSION_LIFETIME_S,
                httponly=True,
                samesite="lax",
                secure=cookie_secure(self.request),
            )
        return response

    def html(self, title: str, body: str, status: int = 200, refresh: bool = True) -> Response:
        user = self.principal.name if self.principal and not self.auth.open else None
        document = page(
            title,
            body,
            user=user,
            csrf=self.csrf,
            refresh_s=self.request.app.state.refresh_s if refresh else None,
        )
        return self.respond(HTMLResponse(document, status_code=status))

    def redirect(self, to: str) -> Response:
        return self.respond(RedirectResponse(to, status_code=303))


class LoginRequired(Exception):
    """A page asked for without a session: the answer is the login form."""


def open_client(request: Request) -> Client:
    settings = request.app.state.settings
    return Client.from_url(settings.database_url, settings, clock=request.app.state.clock)


def brand_href(brand: str) -> str:
    return f"/brands/{quote(brand, safe='')}"


# -- logging in and out ---------------------------------------------------------------------
@router.get("/login")
def login_form(request: Request) -> Response:
    visit = Visit(request)
    if visit.auth.open or visit.principal is not None:
        return visit.redirect("/")
    return visit.html("Log in", _login_body(visit.csrf, None), refresh=False)


def _login_body(csrf: str, error: str | None) -> str:
    from pipectl.web.html import csrf_field

    alert = f'<p class="banner" role="alert">{text(error)}</p>' if error else ""
    return (
        f"<h1>Log in</h1>{alert}"
        '<form method="post" action="/login">'
        f"{csrf_field(csrf)}"
        '<p><label for="token">API token</label><br>'
        '<input id="token" name="token" type="password" autocomplete="current-password" '
        'size="40" required autofocus></p><p><button type="submit">Log in</button></p></form>'
        '<p class="muted">A token from PIPECTL_API_TOKENS; it is exchanged for a session '
        "cookie and not kept in the browser.</p>"
    )


@router.post("/login")
def login(
    request: Request, token: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = ""
) -> Response:
    visit = Visit(request)
    visit.auth.check_csrf(visit.session, csrf)
    principal = visit.auth.login(token)
    if principal is None:
        return visit.html(
            "Log in", _login_body(visit.csrf, "That token is not valid."), 401, refresh=False
        )
    visit.start(principal.name)
    return visit.redirect("/")


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    visit = Visit(request)
    visit.auth.check_csrf(visit.session, csrf)
    visit.start(None)
    return visit.redirect("/login" if not visit.auth.open else "/")


# -- the health view ------------------------------------------------------------------------
@router.get("/")
def health(request: Request) -> Response:
    visit = Visit(request)
    principal = visit.require()
    with open_client(request) as client:
        report = access.scoped(client.status(), principal)
        backoff = [j for j in client.jobs_in_backoff() if principal.sees(j.brand_id)]
    return visit.html("Health", _health_body(report, backoff))


def brand_order(report: StatusReport) -> list[tuple[str | None, list[Freshness]]]:
    """Brands worst first: by their worst dataset (stale, never, warn, fresh; a brand with jobs
    and no datasets last), then by name, global before the brands."""
    brands = {d.brand_id for d in report.datasets} | {j.brand_id for j in report.jobs}
    grouped = {b: [d for d in report.datasets if d.brand_id == b] for b in brands}

    def worst(brand: str | None) -> tuple[int, bool, str]:
        ranks = [SEVERITY[d.state] for d in grouped[brand]]
        return (min(ranks, default=len(SEVERITY)), brand is not None, brand or "")

    return [
        (b, sorted(grouped[b], key=lambda d: (SEVERITY[d.state], d.dataset)))
        for b in sorted(brands, key=worst)
    ]


def _health_body(report: StatusReport, backoff: list[Job]) -> str:
    now = report.now
    parts = ["<h1>Health</h1>"]
    alert = worker_alert(report)
    if alert:
        parts.append(f'<p class="banner" role="alert">No live worker: {text(alert)}</p>')
    counts = report.gate().counts
    parts.append(
        '<p class="muted">'
        + ", ".join(f"{n} {name}" for name, n in counts.items())
        + f" · generated {text(stamp(now))}</p>"
    )
    ordered = brand_order(report)
    if not ordered:
        parts.append("<p>No jobs and no datasets yet.</p>")
    for brand, datasets in ordered:
        title = text("global") if brand is None else link(brand_href(brand), brand)
        worst = datasets[0].state if datasets else None
        badge = f" {state(worst)}" if worst else ""
        parts.append(
            f'<section aria-label="brand {text(brand or "global")}"><h2>{title}{badge}</h2>'
        )
        if datasets:
            parts.append(_datasets_table(datasets, now))
        else:
            parts.append('<p class="muted">No datasets.</p>')
        parts.append("</section>")
    parts.append("<h2>Jobs in backoff</h2>")
    if backoff:
        rows: list[tuple[str, ...]] = [
            (
                _job_cell(j),
                text(j.brand_id or "global"),
                text(f"{attempt(j)} of {attempts_allowed(j)}"),
                text(f"{stamp(j.next_run_at)} ({until(j.next_run_at, now)})"),
                text(_first_line(j.last_error)),
            )
            for j in backoff
        ]
        parts.append(table(("job", "brand", "attempt", "next try", "last error"), rows))
    else:
        parts.append('<p class="muted">None.</p>')
    parts.append("<h2>Stuck runs</h2>")
    if report.stuck_runs:
        rows = [
            (
                link(f"/runs/{c.run.id}", f"run {c.run.id}"),
                _job_cell(c.job),
                text(c.run.worker_id),
                text(ago(c.run.heartbeat_at, now)),
            )
            for c in report.stuck_runs
        ]
        parts.append(table(("run", "job", "worker", "last heartbeat"), rows))
        parts.append("<p>Recover them: <code>pipectl recover</code></p>")
    else:
        parts.append('<p class="muted">None.</p>')
    parts.append("<h2>Workers</h2>")
    live = report.live_workers
    if report.workers:
        rows = [
            (
                text(w.id),
                state("live", "fresh") if w in live else state("gone", "stale"),
                text(ago(w.last_seen_at, now)),
                text(w.version),
            )
            for w in report.workers
        ]
        parts.append(table(("worker", "state", "last seen", "version"), rows))
    else:
        parts.append('<p class="muted">No worker has ever registered.</p>')
    return "".join(parts)


def _datasets_table(datasets: list[Freshness], now: datetime) -> str:
    rows = [
        (
            text(d.dataset),
            state(d.state),
            text(format_duration(d.age) if d.age is not None else None),
            text(ago(d.last_success_at, now)),
            text(
                ("last attempt failed: " if d.last_attempt_failed else "")
                + (_first_line(d.last_error) or "")
            )
            if d.last_error or d.last_attempt_failed
            else text(None),
        )
        for d in datasets
    ]
    return table(("dataset", "state", "age", "last success", "last error"), rows)


def _job_cell(job: Job) -> str:
    label = f"{job.id} {job.name}"
    return link(brand_href(job.brand_id), label) if job.brand_id is not None else text(label)


def _first_line(value: str | None, width: int = 120) -> str | None:
    if not value:
        return None
    line = value.strip().splitlines()[0] if value.strip() else value
    return line if len(line) <= width else line[: width - 1] + "…"


# -- a brand's page -------------------------------------------------------------------------
@router.get("/brands/{brand}")
def brand_page(
    request: Request, brand: str, done: str | None = None, job: int | None = None
) -> Response:
    visit = Visit(request)
    principal = visit.require()
    notice = f"Job {job}: {ACTIONS[done]}." if done in ACTIONS and job is not None else None
    return _brand_response(visit, principal, brand, notice=notice)


def _brand_response(
    visit: Visit,
    principal: Principal,
    brand: str,
    *,
    notice: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    with open_client(visit.request) as client:
        if not principal.sees(brand) or brand not in client.store.brand_ids():
            raise NotFound(f"unknown brand {brand!r}")
        report = client.status(brand_id=brand)
        runs = client.list_runs(brand_id=brand, limit=20)
    body = _brand_body(brand, report, runs, principal, visit.csrf, notice, error)
    return visit.html(brand, body, status)


def _brand_body(
    brand: str,
    report: StatusReport,
    runs: list[Run],
    principal: Principal,
    csrf: str,
    notice: str | None,
    error: str | None,
) -> str:
    now = report.now
    parts = [f"<h1>Brand {text(brand)}</h1>"]
    if error:
        parts.append(f'<p class="banner" role="alert">{text(error)}</p>')
    if notice:
        parts.append(f'<p class="notice" role="status">{text(notice)}</p>')
    alert = worker_alert(report)
    if alert:
        parts.append(f'<p class="banner" role="alert">No live worker: {text(alert)}</p>')
    parts.append("<h2>Datasets</h2>")
    datasets = sorted(report.datasets, key=lambda d: (SEVERITY[d.state], d.dataset))
    parts.append(_datasets_table(datasets, now) if datasets else '<p class="muted">None.</p>')
    parts.append("<h2>Jobs</h2>")
    headers = ["job", "type", "schedule", "status", "next run", "retry", "last run"]
    if principal.can_operate:
        headers.append("actions")
    rows = []
    for j in report.jobs:
        waiting = report.waiting.get(j.id)
        status = state(j.status) + (f" {text(waiting.describe())}" if waiting else "")
        last = report.last_runs.get(j.last_run_id or -1)
        row = [
            text(f"{j.id} {j.name}"),
            text(j.job_type),
            text(schedule_text(j)),
            status,
            text(until(j.next_run_at, now) if j.status in ("active", "paused") else None),
            text(retry_text(j) or None),
            f"{link(f'/runs/{last.id}', f'run {last.id}')} {state(last.status)} "
            f"{text(ago(last.finished_at or last.started_at, now))}"
            if last
            else text("never ran"),
        ]
        if principal.can_operate:
            row.append(_job_buttons(brand, j, csrf))
        rows.append(row)
    parts.append(table(headers, rows) if rows else '<p class="muted">No live jobs.</p>')
    parts.append("<h2>Recent runs</h2>")
    if runs:
        run_rows = [
            (
                link(f"/runs/{r.id}", f"run {r.id}"),
                text(r.job_id),
                state(r.status),
                text(ago(r.started_at, now)),
                text(format_duration(r.finished_at - r.started_at) if r.finished_at else None),
                text(_first_line(r.error_message)),
            )
            for r in runs
        ]
        parts.append(table(("run", "job", "status", "started", "took", "error"), run_rows))
    else:
        parts.append('<p class="muted">No runs yet.</p>')
    return "".join(parts)


def _job_buttons(brand: str, job: Job, csrf: str) -> str:
    base = f"{brand_href(brand)}/jobs/{job.id}"
    buttons = []
    if applies("run", job):
        buttons.append(button_form(f"{base}/run", "Run now", csrf, f"Run job {job.id} now"))
    if applies("pause", job):
        buttons.append(button_form(f"{base}/pause", "Pause", csrf, f"Pause job {job.id}"))
    if applies("resume", job):
        buttons.append(button_form(f"{base}/resume", "Resume", csrf, f"Resume job {job.id}"))
    return "".join(buttons)


@router.post("/brands/{brand}/jobs/{job_id}/{action}")
def job_action(
    request: Request,
    brand: str,
    action: str,
    job_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    visit = Visit(request)
    principal = visit.require()
    visit.auth.check_csrf(visit.session, csrf)
    require_operate(principal)
    if action not in ACTIONS:
        raise NotFound(f"no action {action!r}: run, pause or resume")
    with open_client(request) as client:
        job = access.visible_job(client, principal, job_id)
        if job.brand_id != brand:
            raise NotFound(f"no job with id {job_id}")
        try:
            {"run": client.run_now, "pause": client.pause, "resume": client.resume}[action](job_id)
        except InvalidInput as exc:
            error = str(exc)
        else:
            return visit.redirect(f"{brand_href(brand)}?done={action}&job={job_id}")
    return _brand_response(visit, principal, brand, error=error, status=409)


# -- a run ----------------------------------------------------------------------------------
@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    visit = Visit(request)
    principal = visit.require()
    with open_client(request) as client:
        run = access.visible_run(client, principal, run_id)
        job = client.store.get_job(run.job_id)
    return visit.html(f"Run {run.id}", _run_body(run, job), refresh=run_is_live(run))


def _run_body(run: Run, job: Job | None) -> str:
    brand = job.brand_id if job else None
    job_label = text(f"{run.job_id} {job.name}" if job else run.job_id)
    rows = [
        (
            "job",
            link(brand_href(brand), f"{run.job_id} {job.name}") if job and brand else job_label,
        ),
        ("brand", text(brand or "global")),
        ("attempt", text(run.attempt)),
        ("status", state(run.status)),
        ("worker", text(run.worker_id)),
        ("started", text(stamp(run.started_at))),
        ("finished", text(stamp(run.finished_at))),
        ("error", text(run.error_message)),
    ]
    facts = "".join(f'<tr><th scope="row">{k}</th><td>{v}</td></tr>' for k, v in rows)
    parts = [f"<h1>Run {run.id}</h1><table><tbody>{facts}</tbody></table>", "<h2>Steps</h2>"]
    if run.steps:
        step_rows = [
            (
                text(s["name"]),
                state(s["status"]),
                text(", ".join(s["datasets"]) or None),
                text(s.get("brand_id") or "global"),
                text("yes" if s.get("fatal", True) else "no"),
                text(s.get("error")),
            )
            for s in run.steps
        ]
        parts.append(table(("step", "status", "datasets", "brand", "fatal", "error"), step_rows))
    else:
        parts.append('<p class="muted">This run reported no steps.</p>')
    parts.append(f"<h2>Logs</h2><pre>{text(run.logs or '(no output)')}</pre>")
    return "".join(parts)
