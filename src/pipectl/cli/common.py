"""What every command shares: the global options, opening the client, option types."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, overload

import typer

from pipectl.parsing import MAX_ID as MAX_ID  # commands import it from here

if TYPE_CHECKING:
    from datetime import timedelta

    from pipectl.client import Client
    from pipectl.models import AnyBrand
    from pipectl.settings import Settings

_global: dict[str, Any] = {"database_url": None}


def set_database_url(url: str | None) -> None:
    _global["database_url"] = url


def settings() -> Settings:
    from pipectl.settings import load_settings

    return load_settings(database_url=_global["database_url"])


def client() -> Client:
    from pipectl.client import Client

    current = settings()
    return Client.from_url(current.database_url, current)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a one-shot command builds and prints a big report.
    Everything it builds lives until printed, so the collector's passes find no garbage, yet
    each walks all of it (docs/benchmarks.md). Reference counting frees memory as usual
    meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@overload
def duration(value: str) -> timedelta: ...
@overload
def duration(value: str | None) -> timedelta | None: ...
def duration(value: str | None) -> timedelta | None:
    from pipectl.parsing import parse_duration

    return None if value is None else parse_duration(value)


@overload
def brand_filter(value: str) -> str: ...
@overload
def brand_filter(value: str | None) -> str | AnyBrand: ...
def brand_filter(value: str | None) -> str | AnyBrand:
    """A --brand filter, validated like the brand of a new job (so a typo with control
    characters is an error, not a silently empty --check)."""
    from pipectl.parsing import check_name
    from pipectl.store import ANY

    return ANY if value is None else check_name(value, "brand")


@overload
def known_brand(opened: Client, value: str) -> str: ...
@overload
def known_brand(opened: Client, value: str | None) -> str | AnyBrand: ...
def known_brand(opened: Client, value: str | None) -> str | AnyBrand:
    """A --brand filter that must name a brand some job, dataset row or threshold named: a
    typo is exit 2 with the known brands, closest first, not a silently empty answer."""
    brand = brand_filter(value)
    if isinstance(brand, str):
        opened.require_known_brands([brand])
    return brand


def brand_list(values: list[str] | None) -> list[str]:
    """Repeated --brand options, each validated like a brand id."""
    from pipectl.parsing import check_name

    return [check_name(value, "brand") for value in values or []]


def complete_job_type(incomplete: str) -> list[str]:
    """Shell completion: the built-in and installed job types."""
    from pipectl.handlers import job_type_names

    return [name for name in job_type_names() if name.startswith(incomplete)]


def complete_job_id(incomplete: str) -> list[tuple[str, str]]:
    """Shell completion: ids of jobs that are not archived, with their names."""
    try:
        with client() as opened:
            jobs = opened.list_jobs(limit=500)
    except Exception:  # completion must never print an error into the user's shell
        return []
    return [
        (str(job.id), job.name)
        for job in jobs
        if job.status != "archived" and str(job.id).startswith(incomplete)
    ]


JsonOption = Annotated[
    bool,
    typer.Option(
        "--json", help="Print one JSON document on stdout (indented on a terminal, else compact)."
    ),
]
BrandOption = Annotated[
    str | None, typer.Option("--brand", "-b", help="Brand (tenant) id; omit for global jobs.")
]
BrandFilter = Annotated[str | None, typer.Option("--brand", "-b", help="Only this brand.")]
BrandsFilter = Annotated[
    list[str] | None,
    typer.Option("--brand", "-b", help="Only this brand (repeatable; default every brand)."),
]
DatasetsFilter = Annotated[
    list[str] | None,
    typer.Option("--dataset", "-d", help="Only this dataset (repeatable; default all that count)."),
]
ParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        help="Job parameter key=value (a string) or key:=JSON (typed). Repeatable.",
    ),
]
ParamsOption = Annotated[
    str | None, typer.Option("--params", help="Job parameters as one JSON object.")
]
