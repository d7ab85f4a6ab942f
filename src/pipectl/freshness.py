"""Dataset freshness: thresholds, the state of each (brand, dataset), and which ones to show."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pipectl.models import (
    LIVE_JOB_STATUSES,
    DatasetStatus,
    Freshness,
    FreshnessState,
    Job,
    Threshold,
)


def classify(
    last_success_at: datetime | None, now: datetime, warn_after: timedelta, error_after: timedelta
) -> FreshnessState:
    """`never` without a success; else fresh (age ≤ warn_after), warn (≤ error_after), stale."""
    if last_success_at is None:
        return "never"
    age = now - last_success_at
    if age <= warn_after:
        return "fresh"
    if age <= error_after:
        return "warn"
    return "stale"


class Thresholds:
    """Threshold lookup: the brand's own, else the dataset's, else the default."""

    def __init__(self, thresholds: Iterable[Threshold], default: tuple[timedelta, timedelta]):
        self._by_key = {(t.brand_id, t.dataset): t for t in thresholds}
        self.default = default

    def for_dataset(self, dataset: str, brand_id: str | None) -> tuple[timedelta, timedelta]:
        found = self._by_key.get((brand_id, dataset)) or self._by_key.get((None, dataset))
        return (found.warn_after, found.error_after) if found else self.default

    def brand_keys(self) -> Iterable[tuple[str | None, str]]:
        return (key for key in self._by_key if key[0] is not None)


def freshness(
    dataset: str,
    brand_id: str | None,
    status: DatasetStatus | None,
    thresholds: Thresholds,
    now: datetime,
    last_job_id: int | None = None,
) -> Freshness:
    """The one rule of a (brand, dataset)'s state; `last_job_id` is the job of its last run."""
    warn_after, error_after = thresholds.for_dataset(dataset, brand_id)
    success = status.last_success_at if status else None
    attempt = status.last_attempt_at if status else None
    attempt_failed = bool(
        status
        and status.last_status == "failed"
        and attempt is not None
        and (success is None or attempt > success)
    )
    # Positional, in field order: this runs once per dataset of `status`.
    return Freshness(
        brand_id,
        dataset,
        classify(success, now, warn_after, error_after),
        success,
        attempt,
        attempt_failed,
        status.last_error if attempt_failed and status else None,
        now - success if success else None,
        warn_after,
        error_after,
        status.last_run_id if status else None,
        last_job_id,
    )


def _names(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _declarations(value: object) -> list[tuple[str, list[str] | None]]:
    """`datasets` entries: a name, or {"dataset": name, "brands": [...]} (a global job that
    refreshes the dataset per brand names those brands)."""
    found: list[tuple[str, list[str] | None]] = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str):
            found.append((item, None))
        elif isinstance(item, dict) and isinstance(item.get("dataset"), str):
            brands = item.get("brands")
            found.append((item["dataset"], _names(brands) if brands is not None else None))
    return found


def declared_datasets(job: Job) -> list[str]:
    """The datasets a job says it refreshes (its `datasets` parameter)."""
    return [name for name, _ in _declarations(job.parameters.get("datasets"))]


def declared_with_brands(job: Job) -> list[tuple[str, list[str] | None]]:
    """The `datasets` parameter's entries, each with the brands it names (None: none named)."""
    return _declarations(job.parameters.get("datasets"))


def dataset_declarations(job: Job) -> list[tuple[str, list[str] | None]]:
    """Everything a job declares it refreshes, with the brands named for each (None: the job's
    own brand, or for a global job the brands it reports): its `datasets` parameter and the
    datasets of the steps it declares in its `steps` parameter."""
    found = declared_with_brands(job)
    steps = job.parameters.get("steps")
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict):
            found += _declarations(step.get("datasets"))
    return found


def check_declarations(parameters: dict[str, Any]) -> None:
    """Reject a `datasets` or `steps` parameter that declares nothing readable."""
    from pipectl.errors import InvalidInput

    def check(value: object, where: str) -> None:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            raise InvalidInput(f"parameter '{where}' must be a list of dataset names")
        for item in items:
            if isinstance(item, dict):
                brands = item.get("brands", [])
                if not (isinstance(item.get("dataset"), str) and item["dataset"]) or not (
                    isinstance(brands, list) and all(isinstance(b, str) and b for b in brands)
                ):
                    raise InvalidInput(
                        f"parameter '{where}': an object entry needs 'dataset' (a name) and "
                        "may name 'brands' (a list of brand ids)"
                    )
            elif not (isinstance(item, str) and item):
                raise InvalidInput(f"parameter '{where}' must be a list of dataset names")

    if "datasets" in parameters:
        check(parameters["datasets"], "datasets")
    steps = parameters.get("steps", [])
    if not isinstance(steps, list) or not all(isinstance(step, dict) for step in steps):
        raise InvalidInput(
            "parameter 'steps' must be a list of objects like "
            '{"name": "performance", "datasets": ["ads_performance"]}'
        )
    for step in steps:
        check(step.get("datasets", []), "steps.datasets")


def counted_keys(
    statuses: Iterable[DatasetStatus], jobs: Iterable[Job], thresholds: Thresholds
) -> tuple[dict[tuple[str | None, str], DatasetStatus | None], set[tuple[str | None, str]]]:
    """Which (brand, dataset) pairs count, with their status rows, and which are retired.

    A pair counts when it has a status row, when a live job (paused included) declares it, or
    when a threshold names its brand. A global job's declared dataset counts for the brands the
    declaration names; else for the brands that already have a row for it; else as a global
    dataset until it first reports per brand. A global row that never succeeded does not count
    when the dataset is declared per brand (it could never turn fresh). Retired pairs never
    count."""
    rows = list(statuses)
    retired = {(s.brand_id, s.dataset) for s in rows if s.retired_at is not None}
    brands_with_row: dict[str, set[str]] | None = None  # made when a global job needs it
    declared: set[tuple[str | None, str]] = set()
    per_brand: set[str] = set()
    for job in jobs:
        if job.status not in LIVE_JOB_STATUSES:
            continue
        for dataset, brands in dataset_declarations(job):
            if job.brand_id is not None:
                declared.add((job.brand_id, dataset))
                continue
            if brands is None:
                if brands_with_row is None:
                    brands_with_row = {}
                    for s in rows:
                        if s.brand_id is not None:
                            brands_with_row.setdefault(s.dataset, set()).add(s.brand_id)
                brands = sorted(brands_with_row.get(dataset, ()))
            if brands:
                per_brand.add(dataset)
                declared.update((brand, dataset) for brand in brands)
            else:
                declared.add((None, dataset))
    by_key: dict[tuple[str | None, str], DatasetStatus | None] = {
        (s.brand_id, s.dataset): s
        for s in rows
        if not (s.brand_id is None and s.dataset in per_brand and s.last_success_at is None)
    }
    by_key.update(dict.fromkeys(declared.difference(by_key)))
    for key in thresholds.brand_keys():
        by_key.setdefault(key, None)
    if retired:
        by_key = {key: s for key, s in by_key.items() if key not in retired}
    return by_key, retired


def freshness_report(
    statuses: Iterable[DatasetStatus],
    jobs: Iterable[Job],
    thresholds: Thresholds,
    now: datetime,
    last_jobs: Mapping[int, int] | None = None,
) -> list[Freshness]:
    """Every dataset that counts (see `counted_keys`), `never` until its first success;
    `last_jobs` maps run ids to their jobs, for each dataset's `last_job_id`."""
    by_key, _ = counted_keys(statuses, jobs, thresholds)
    ordered = sorted(by_key.items(), key=lambda item: (item[0][0] or "", item[0][1]))
    job_of = last_jobs or {}
    return [
        freshness(
            ds,
            brand,
            status,
            thresholds,
            now,
            job_of.get(status.last_run_id) if status and status.last_run_id is not None else None,
        )
        for (brand, ds), status in ordered
    ]


# Freshness states, worst first: what `status` leads with.
STATES_WORST_FIRST: tuple[FreshnessState, ...] = ("stale", "never", "warn", "fresh")


def worst_state(states: Iterable[FreshnessState]) -> FreshnessState | None:
    """The worst of these freshness states (None: there are none)."""
    found = set(states)
    return next((state for state in STATES_WORST_FIRST if state in found), None)


def worst_first(brands: Iterable[str | None], datasets: Iterable[Freshness]) -> list[str | None]:
    """The brands (None: global), the one with the worst dataset first, then global, then by
    name; brands without datasets last."""
    states: dict[str | None, list[FreshnessState]] = {brand: [] for brand in brands}
    for d in datasets:
        states.setdefault(d.brand_id, []).append(d.state)
    rank = {state: index for index, state in enumerate(STATES_WORST_FIRST)}

    def key(brand: str | None) -> tuple[int, bool, str]:
        worst = worst_state(states[brand])
        return (rank[worst] if worst else len(rank), brand is not None, brand or "")

    return sorted(states, key=key)
