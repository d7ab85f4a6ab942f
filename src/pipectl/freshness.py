"""Dataset freshness: thresholds, the state of each (brand, dataset), and which ones to show."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from pipectl.models import DatasetStatus, Freshness, FreshnessState, Job, Threshold


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
) -> Freshness:
    warn_after, error_after = thresholds.for_dataset(dataset, brand_id)
    success = status.last_success_at if status else None
    attempt = status.last_attempt_at if status else None
    attempt_failed = bool(
        status
        and status.last_status == "failed"
        and attempt is not None
        and (success is None or attempt > success)
    )
    return Freshness(
        brand_id=brand_id,
        dataset=dataset,
        state=classify(success, now, warn_after, error_after),
        last_success_at=success,
        last_attempt_at=attempt,
        last_attempt_failed=attempt_failed,
        last_error=status.last_error if attempt_failed and status else None,
        age=now - success if success else None,
        warn_after=warn_after,
        error_after=error_after,
    )


def declared_datasets(job: Job) -> list[str]:
    """The datasets a job says it refreshes (its `datasets` parameter)."""
    value = job.parameters.get("datasets")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def freshness_report(
    statuses: Iterable[DatasetStatus],
    jobs: Iterable[Job],
    thresholds: Thresholds,
    now: datetime,
) -> list[Freshness]:
    """Every dataset worth showing: those with a recorded attempt, those a live job declares and
    those with a brand threshold — the last two show up as `never` until their first success."""
    by_key: dict[tuple[str | None, str], DatasetStatus | None] = {
        (s.brand_id, s.dataset): s for s in statuses
    }
    for job in jobs:
        if job.status in ("active", "running", "paused"):
            for dataset in declared_datasets(job):
                by_key.setdefault((job.brand_id, dataset), None)
    for key in thresholds.brand_keys():
        by_key.setdefault(key, None)
    ordered = sorted(by_key.items(), key=lambda item: (item[0][0] or "", item[0][1]))
    return [freshness(ds, brand, status, thresholds, now) for (brand, ds), status in ordered]
