"""What a principal may see: a brand-scoped token sees its brands' jobs, runs and datasets only,
and an id outside them is answered exactly as an id that does not exist."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from pipectl.client import Client, StatusReport
from pipectl.errors import InvalidInput, NotFound
from pipectl.models import Job, Run
from pipectl.store import ANY
from pipectl.tokens import Principal


def visible_job(client: Client, principal: Principal, job_id: int) -> Job:
    job = client.get_job(job_id)
    if not principal.sees(job.brand_id):
        raise NotFound(f"no job with id {job_id}")
    return job


def visible_run(client: Client, principal: Principal, run_id: int) -> Run:
    run = client.get_run(run_id)
    if principal.brands is not None:
        job = client.store.get_job(run.job_id)
        if job is None or not principal.sees(job.brand_id):
            raise NotFound(f"no run with id {run_id}")
    return run


def check_brands(principal: Principal, brands: Sequence[str]) -> None:
    """A brand outside the token's brands is unknown to it (the same words as a typo)."""
    for brand in brands:
        if not principal.sees(brand):
            raise NotFound(f"unknown brand {brand!r}")


def require_known_brands(client: Client, principal: Principal, brands: Sequence[str]) -> None:
    """`Client.require_known_brands` for an unscoped token (its message lists the known brands,
    closest first); a brand-scoped token gets a 404 that names no other brand."""
    if principal.brands is None:
        client.require_known_brands(brands)
        return
    check_brands(principal, brands)
    known = set(client.store.brand_ids()) if brands else set()
    for brand in brands:
        if brand not in known:
            raise NotFound(f"unknown brand {brand!r}")


def gate_report(
    client: Client, principal: Principal, brands: Sequence[str], datasets: Sequence[str]
) -> StatusReport:
    """`status --brand … --dataset …` as this principal may see it: a brand-scoped token asking
    for no brand gets its own brands (those the store knows)."""
    require_known_brands(client, principal, brands)
    if principal.brands is not None and not brands:
        brands = sorted(principal.brands & set(client.store.brand_ids()))
        if not brands:
            if datasets:
                raise InvalidInput(f"unknown dataset {datasets[0]!r}")
            return scoped(client.status(), principal)
    return scoped(client.gate_status(brands, datasets), principal)


def scoped(report: StatusReport, principal: Principal) -> StatusReport:
    if principal.brands is None:
        return report
    sees = principal.sees
    return dataclasses.replace(
        report,
        datasets=[d for d in report.datasets if sees(d.brand_id)],
        jobs=[j for j in report.jobs if sees(j.brand_id)],
        stuck_runs=[c for c in report.stuck_runs if sees(c.job.brand_id)],
        retired=frozenset(k for k in report.retired if sees(k[0])),
    )


def brand_filter(principal: Principal, brand: str | None) -> list[str] | None:
    """The brands a list query reads: None for every brand (an unscoped token, no filter)."""
    if brand is not None:
        check_brands(principal, [brand])
        return [brand]
    return None if principal.brands is None else sorted(principal.brands)


def list_jobs(
    client: Client,
    principal: Principal,
    brand: str | None,
    *,
    job_type: str | None = None,
    status: str | None = None,
    limit: int | None = None,
) -> list[Job]:
    brands = brand_filter(principal, brand)
    if brands is None:
        return client.list_jobs(brand_id=ANY, job_type=job_type, status=status, limit=limit)
    found = sorted(
        (
            j
            for b in brands
            for j in client.list_jobs(brand_id=b, job_type=job_type, status=status, limit=limit)
        ),
        key=lambda j: j.id,
    )
    return found[:limit] if limit else found


def list_runs(
    client: Client,
    principal: Principal,
    brand: str | None,
    *,
    job_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[Run]:
    brands = brand_filter(principal, brand)
    if brands is None:
        return client.list_runs(job_id=job_id, brand_id=ANY, status=status, limit=limit)
    found = (
        r
        for b in brands
        for r in client.list_runs(job_id=job_id, brand_id=b, status=status, limit=limit)
    )
    return sorted(found, key=lambda r: r.id, reverse=True)[:limit]
