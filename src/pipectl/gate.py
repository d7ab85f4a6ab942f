"""The readiness gate: its verdict on the datasets asked for, and each failure in plain words."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pipectl.errors import InvalidInput
from pipectl.lifecycle import is_due
from pipectl.liveness import last_sign_of_life
from pipectl.models import Claim, Freshness, FreshnessState, Job, WorkerInfo
from pipectl.parsing import format_duration

FailureKind = Literal["dataset", "no_datasets", "no_live_worker", "stuck_runs"]
STATES: tuple[FreshnessState, ...] = ("fresh", "warn", "stale", "never")
NAMES_SHOWN = 10  # known names listed in an "unknown name" error
ERROR_SHOWN = 200  # characters of a last error quoted in a reason


@dataclass(frozen=True, slots=True)
class GateFailure:
    kind: FailureKind
    reason: str
    facts: Freshness | None = None  # the dataset's facts, for kind "dataset"
    brand_id: str | None = None  # for kind "no_datasets"

    def to_json(
        self, *, datetimes: bool = False, facts: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """`facts`: the dataset's own document when the caller has it already."""
        if facts is None:
            facts = (
                self.facts.to_json(datetimes=datetimes)
                if self.facts
                else {"brand_id": self.brand_id, "dataset": None}
            )
        return {"kind": self.kind, "reason": self.reason, **facts}


@dataclass(frozen=True, slots=True)
class GateResult:
    """`ok` when no failure; `datasets` are every dataset the gate judged."""

    ok: bool
    datasets: list[Freshness]
    failures: list[GateFailure]
    strict: bool
    require_worker: bool

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(d.state for d in self.datasets)
        return {state: found[state] for state in STATES}

    def summary(self) -> str:
        """The last line after the reasons: the verdict and the counts."""
        counts = ", ".join(f"{n} {state}" for state, n in self.counts.items())
        checked = f"{len(self.datasets)} dataset{'s' * (len(self.datasets) != 1)} ({counts})"
        if self.ok:
            return f"gate passed: {checked}"
        return f"gate failed: {len(self.failures)} failing of {checked}"

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "strict": self.strict,
            "require_worker": self.require_worker,
            "counts": self.counts,
            "failures": [failure.to_json() for failure in self.failures],
            "datasets": [d.to_json() for d in self.datasets],
        }


def label(brand_id: str | None, dataset: str) -> str:
    return f"{brand_id or 'global'}/{dataset}"


def dataset_reason(item: Freshness, now: datetime) -> str:
    """`acme/ads_performance: stale — last success 2d 3h ago (error after 1d); last attempt
    20m ago failed: HTTP 401 from Meta`."""
    if item.last_success_at is None:
        text = f"{item.state} — no success yet"
    else:
        limit = ("warn", item.warn_after) if item.state == "warn" else ("error", item.error_after)
        text = (
            f"{item.state} — last success {_ago(item.last_success_at, now)} "
            f"({limit[0]} after {format_duration(limit[1])})"
        )
    if item.last_attempt_failed and item.last_attempt_at is not None:
        error = " ".join((item.last_error or "no error recorded").split())
        if len(error) > ERROR_SHOWN:
            error = error[: ERROR_SHOWN - 1] + "…"
        text += f"; last attempt {_ago(item.last_attempt_at, now)} failed: {error}"
    elif item.last_attempt_at is None:
        text += "; never attempted"
    return f"{label(item.brand_id, item.dataset)}: {text}"


def _ago(when: datetime, now: datetime) -> str:
    return (
        "just now"
        if abs((now - when).total_seconds()) < 1
        else f"{format_duration(now - when)} ago"
    )


def scheduler_failures(
    now: datetime,
    live_workers: list[WorkerInfo],
    workers: list[WorkerInfo],
    jobs: Iterable[Job],
    stuck_runs: list[Claim],
) -> list[GateFailure]:
    """The scheduler is dead when no worker is live while jobs are due; a stuck run is a run
    nobody will finish. `live_workers` is the one liveness rule (StatusReport.live_workers)."""
    failures = []
    due = [job for job in jobs if is_due(job, now)]
    if due and not live_workers:
        seen = last_sign_of_life(workers, now) if workers else "none has ever registered"
        failures.append(
            GateFailure(
                "no_live_worker",
                f"scheduler: no live worker ({seen}) while {len(due)} job"
                f"{'s are' if len(due) != 1 else ' is'} due",
            )
        )
    if stuck_runs:
        ids = ", ".join(str(claim.run.id) for claim in stuck_runs[:10])
        failures.append(
            GateFailure(
                "stuck_runs",
                f"scheduler: {len(stuck_runs)} stuck run{'s' * (len(stuck_runs) != 1)} "
                f"without a heartbeat ({ids}); pipectl recover",
            )
        )
    return failures


def judge(
    datasets: list[Freshness],
    now: datetime,
    *,
    strict: bool = False,
    require_worker: bool = False,
    scheduler: list[GateFailure] | None = None,
    brands: Iterable[str] = (),
) -> GateResult:
    """Fail on `stale` and `never` (and `warn` when strict), and for each brand asked for by
    name that has no dataset to judge (nothing to vouch for is no green light); with
    `require_worker`, also on the scheduler's failures."""
    failing = ("stale", "never", "warn") if strict else ("stale", "never")
    failures = [
        GateFailure("dataset", dataset_reason(d, now), d) for d in datasets if d.state in failing
    ]
    judged = {d.brand_id for d in datasets}
    failures += [
        GateFailure(
            "no_datasets",
            f"{brand}: no dataset counts for this brand (declare them in its jobs' "
            "parameters.datasets or steps, or set a threshold)",
            brand_id=brand,
        )
        for brand in brands
        if brand not in judged
    ]
    if require_worker:
        failures += scheduler or []
    return GateResult(not failures, datasets, failures, strict, require_worker)


def closest_first(name: str, known: Iterable[str]) -> list[str]:
    """Known names ordered by similarity to `name` (difflib's ratio), ties alphabetically."""
    return sorted(known, key=lambda k: (-difflib.SequenceMatcher(None, name, k).ratio(), k))


def unknown_name(kind: str, name: str, known: Iterable[str], where: str = "") -> InvalidInput:
    """One line: the unknown name, then the known ones, closest match first."""
    ordered = closest_first(name, known)
    if not ordered:
        listing = f"no {kind} is known{where}"
    else:
        shown = ", ".join(ordered[:NAMES_SHOWN])
        more = f" and {len(ordered) - NAMES_SHOWN} more" if len(ordered) > NAMES_SHOWN else ""
        listing = f"known {kind}s{where}, closest first: {shown}{more}"
    return InvalidInput(f"unknown {kind} {name!r} ({listing})")


def check_brands(brands: Iterable[str], known: Iterable[str]) -> None:
    """An unknown brand is one that no job, dataset row or threshold ever named."""
    known = set(known)
    for brand in brands:
        if brand not in known:
            raise unknown_name("brand", brand, known)


def check_datasets(
    wanted: Iterable[str],
    brands: list[str],
    counted: Iterable[tuple[str | None, str]],
    retired: Iterable[tuple[str | None, str]],
) -> None:
    """Each dataset asked for must count for every brand asked for (for some brand or global
    when no brand is); a retired one is named as such."""
    counted, retired = set(counted), set(retired)
    scopes: list[str | None] = list(brands) if brands else [None]
    for dataset in wanted:
        for brand in scopes:
            if brand is None:
                names = {d for _, d in counted}
                gone = {d for _, d in retired} - names
            else:
                names = {d for b, d in counted if b == brand}
                gone = {d for b, d in retired if b == brand}
            if dataset in names:
                continue
            where = f" for brand {brand}" if brand else ""
            if dataset in gone:
                restore = f" --brand {brand}" if brand else ""
                raise InvalidInput(
                    f"dataset {dataset!r} is retired{where}; it is not in the gate "
                    f"(pipectl datasets restore {dataset}{restore})"
                )
            raise unknown_name("dataset", dataset, names, where)
