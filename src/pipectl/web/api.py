"""The HTTP API under /api: the CLI's JSON documents, over bearer tokens.

Each endpoint is the CLI command of the same name: `GET /api/status` is `status --json`,
`POST /api/enqueue` is `enqueue --json`, and so on, through the same `Client` calls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pipectl.client import DEFAULT_KEY, Client
from pipectl.documents import jobs_json, status_json
from pipectl.errors import InvalidInput
from pipectl.json_text import dumps
from pipectl.models import JOB_STATUSES, RUN_STATUSES
from pipectl.parsing import MAX_ID, check_name, parse_duration, parse_when
from pipectl.tokens import Principal
from pipectl.web import access
from pipectl.web.auth import AuthError, require_operate

JobId = Annotated[int, Path(ge=1, le=MAX_ID)]


def open_client(request: Request) -> Iterator[Client]:
    settings = request.app.state.settings
    with Client.from_url(settings.database_url, settings, clock=request.app.state.clock) as client:
        yield client


def reader(request: Request) -> Principal:
    auth = request.app.state.auth
    auth.check_host(request)
    return auth.api_principal(request)


def operator(principal: Annotated[Principal, Depends(reader)]) -> Principal:
    return require_operate(principal)


ClientDep = Annotated[Client, Depends(open_client)]
Reader = Annotated[Principal, Depends(reader)]
Operator = Annotated[Principal, Depends(operator)]
Brands = Annotated[list[str], Query(alias="brand", description="Only this brand (repeatable).")]
Datasets = Annotated[
    list[str], Query(alias="dataset", description="Only this dataset (repeatable).")
]
Flag = Annotated[bool, Query(description="As on the command line.")]

router = APIRouter(prefix="/api", tags=["api"])


def _gate_document(
    client: Client,
    principal: Principal,
    brands: list[str],
    datasets: list[str],
    strict: bool,
    require_worker: bool,
) -> tuple[bool, dict[str, Any]]:
    brands = [check_name(b, "brand") or "" for b in brands]
    datasets = [check_name(d, "dataset") or "" for d in datasets]
    report = access.gate_report(client, principal, brands, datasets)
    gate = report.gate(strict=strict, require_worker=require_worker)
    return gate.ok, status_json(report, gate)


@router.get("/status", summary="The `status --json` document")
def status(
    principal: Reader,
    client: ClientDep,
    brand: Brands = [],  # noqa: B006  (FastAPI copies query defaults)
    dataset: Datasets = [],  # noqa: B006
    strict: Flag = False,
    require_worker: Flag = False,
) -> Response:
    document = _gate_document(client, principal, brand, dataset, strict, require_worker)[1]
    return _json_response(document)


@router.get(
    "/ready",
    summary="The readiness gate: 200 when it passes, 503 when not; the status document",
    responses={503: {"description": "The gate failed; the body says why (`failures`)."}},
)
def ready(
    principal: Reader,
    client: ClientDep,
    brand: Brands = [],  # noqa: B006
    dataset: Datasets = [],  # noqa: B006
    strict: Flag = False,
    require_worker: Flag = False,
) -> Response:
    ok, document = _gate_document(client, principal, brand, dataset, strict, require_worker)
    return _json_response(document, 200 if ok else 503)


def _json_response(document: dict[str, Any], status_code: int = 200) -> Response:
    """The status document as the CLI writes it (its timestamps are datetimes, see
    pipectl.json_text)."""
    return Response(dumps(document), status_code=status_code, media_type="application/json")


@router.get("/freshness", summary="Each dataset's freshness (`datasets list --json`)")
def freshness(
    principal: Reader,
    client: ClientDep,
    brand: Brands = [],  # noqa: B006
    dataset: Datasets = [],  # noqa: B006
) -> list[dict[str, Any]]:
    brands = [check_name(b, "brand") or "" for b in brand]
    datasets = [check_name(d, "dataset") or "" for d in dataset]
    report = access.gate_report(client, principal, brands, datasets)
    return [d.to_json() for d in report.datasets]


@router.get("/jobs", summary="Jobs (`jobs list --json`)")
def jobs(
    principal: Reader,
    client: ClientDep,
    brand: str | None = None,
    type: str | None = None,
    status: str | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> list[dict[str, Any]]:
    if status is not None and status not in JOB_STATUSES:
        raise InvalidInput(f"unknown status {status!r}; use one of {', '.join(JOB_STATUSES)}")
    if brand is not None:
        access.require_known_brands(client, principal, [check_name(brand, "brand") or ""])
    found = access.list_jobs(client, principal, brand, job_type=type, status=status, limit=limit)
    return jobs_json(found, client.waiting(found))


@router.get("/jobs/{job_id}", summary="One job and its recent runs (`jobs show --json`)")
def job(principal: Reader, client: ClientDep, job_id: JobId) -> dict[str, Any]:
    found = access.visible_job(client, principal, job_id)
    runs = client.list_runs(job_id=job_id, limit=10)
    return {**found.to_json(), "runs": [run.to_json() for run in runs]}


@router.get("/runs", summary="Runs, newest first (`runs --json`)")
def runs(
    principal: Reader,
    client: ClientDep,
    job: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    brand: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
) -> list[dict[str, Any]]:
    if status is not None and status not in RUN_STATUSES:
        raise InvalidInput(f"unknown run status {status!r}; use one of {', '.join(RUN_STATUSES)}")
    if job is not None:
        access.visible_job(client, principal, job)
    if brand is not None:
        access.require_known_brands(client, principal, [check_name(brand, "brand") or ""])
    found = access.list_runs(client, principal, brand, job_id=job, status=status, limit=limit)
    return [run.to_json() for run in found]


@router.get("/runs/{run_id}", summary="One run with its steps and logs (`runs show --json`)")
def run(principal: Reader, client: ClientDep, run_id: JobId) -> dict[str, Any]:
    return access.visible_run(client, principal, run_id).to_json(with_logs=True)


class EnqueueRequest(BaseModel):
    """`pipectl enqueue`'s options, by their JSON names."""

    model_config = ConfigDict(extra="forbid")

    job_type: str = Field(description="Job type, e.g. meta_sync or command.")
    brand_id: str | None = Field(None, description="Brand (tenant) id; null for a global job.")
    parameters: dict[str, Any] = Field(default_factory=dict)
    run_at: str | None = Field(None, description="ISO 8601 (naive = UTC); default the next poll.")
    run_in: str | None = Field(None, description="A delay instead of run_at, e.g. 10m.")
    name: str | None = None
    allow_duplicate: bool = Field(
        False, description="Queue it even if an identical one is pending."
    )
    max_retries: int | None = Field(None, ge=0, le=100)
    timeout: str | None = Field(None, description="Fail the run after this long, e.g. 30m.")
    concurrency_key: str | None = Field(
        None, description="Default: name:brand (job_type:brand without a name)."
    )
    no_concurrency_key: bool = Field(False, description="May overlap with anything.")


@router.post(
    "/enqueue",
    summary="Queue a manual sync (`enqueue --json`)",
    status_code=201,
    responses={200: {"description": "An identical job was pending: that one, `created` false."}},
)
def enqueue(
    principal: Operator, client: ClientDep, body: EnqueueRequest, response: Response
) -> dict[str, Any]:
    if body.run_at is not None and body.run_in is not None:
        raise InvalidInput("give run_at or run_in, not both")
    if body.concurrency_key is not None and body.no_concurrency_key:
        raise InvalidInput("give concurrency_key or no_concurrency_key, not both")
    key = body.concurrency_key if body.concurrency_key is not None else DEFAULT_KEY
    if principal.brands is not None and not principal.sees(body.brand_id):
        raise AuthError(403, f"token {principal.name!r} may only act on its own brands")
    run_at = parse_when(body.run_at, client.clock) if body.run_at is not None else None
    if body.run_in is not None:
        run_at = client.clock.now() + parse_duration(body.run_in)
    result = client.enqueue_job(
        body.job_type,
        body.brand_id,
        body.parameters,
        run_at,
        name=body.name,
        allow_duplicate=body.allow_duplicate,
        max_retries=body.max_retries,
        timeout=parse_duration(body.timeout) if body.timeout is not None else None,
        concurrency_key=None if body.no_concurrency_key else key,
    )
    if not result.created:
        response.status_code = 200
    return {**result.job.to_json(), "created": result.created, "rearmed": result.rearmed}


@router.post(
    "/jobs/{job_id}/run", summary="Run a job at the next poll; a recurring one keeps its cron"
)
def run_now(principal: Operator, client: ClientDep, job_id: JobId) -> dict[str, Any]:
    access.visible_job(client, principal, job_id)
    return client.run_now(job_id).to_json()


@router.post("/jobs/{job_id}/pause", summary="Pause a job (`jobs pause --json`)")
def pause(principal: Operator, client: ClientDep, job_id: JobId) -> dict[str, Any]:
    access.visible_job(client, principal, job_id)
    return client.pause(job_id).to_json()


@router.post("/jobs/{job_id}/resume", summary="Resume a paused job (`jobs resume --json`)")
def resume(principal: Operator, client: ClientDep, job_id: JobId) -> dict[str, Any]:
    access.visible_job(client, principal, job_id)
    return client.resume(job_id).to_json()


@router.post(
    "/runs/{run_id}/cancel",
    summary="Cancel a running run (`runs cancel --json`): its worker stops it at its next "
    "heartbeat, and the run ends cancelled",
)
def cancel(principal: Operator, client: ClientDep, run_id: JobId) -> dict[str, Any]:
    access.visible_run(client, principal, run_id)
    return client.cancel_run(run_id, by=f"api token {principal.name}").to_json()
