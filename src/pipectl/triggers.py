"""Data-aware scheduling rules: a job's inputs, when its triggers are ready, holds on stale
inputs and their limit, and the lineage (producers → datasets → consumers) with its cycles.

The store restates two of these rules inside the transaction that records a dataset's success
(PostgreSQL migration 0014, SQLite 0010): which jobs an input success triggers (`target_brand`)
and when a job's pending successes make a run ready (`ready_at`);
tests/store/test_dataflow_triggers.py checks the SQL against them on a table of cases, on every
store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final, Literal

from pipectl.errors import InvalidInput
from pipectl.freshness import dataset_declarations
from pipectl.models import Freshness, Job
from pipectl.parsing import check_name
from pipectl.schedule import next_occurrence

GLOBAL_PREFIX = "global:"
# A held job is looked at again this often (at once when one of its inputs succeeds).
HOLD_RECHECK = timedelta(minutes=1)
# A one-time or data-triggered job's max hold, when --max-hold is not given.
DEFAULT_MAX_HOLD = timedelta(hours=24)
HOLDING_STATES = ("stale", "never")

Kind = Literal["after", "fresh"]
Scope = Literal["brand", "global"]


class NoTarget(Enum):
    """What `target_brand` gives for an input success that triggers no run of the job (None is
    a brand: global)."""

    NO_TARGET = "NO_TARGET"

    def __repr__(self) -> str:
        return "NO_TARGET"


NO_TARGET: Final = NoTarget.NO_TARGET


@dataclass(frozen=True, slots=True)
class JobInput:
    kind: Kind  # after: a trigger; fresh: a hold
    scope: Scope  # brand: the run's brand's dataset; global: the global dataset
    dataset: str

    @property
    def name(self) -> str:
        """As the operator writes it: `orders` or `global:fx_rates`."""
        return GLOBAL_PREFIX + self.dataset if self.scope == "global" else self.dataset

    def brand_for(self, run_brand: str | None) -> str | None:
        """The brand whose dataset this input reads for a run carrying `run_brand`."""
        return None if self.scope == "global" else run_brand

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "scope": self.scope, "dataset": self.dataset}

    @classmethod
    def from_json(cls, doc: Mapping[str, str]) -> JobInput:
        """A stored input, as `to_json` wrote it."""
        kind: Kind = "after" if doc["kind"] == "after" else "fresh"
        scope: Scope = "global" if doc["scope"] == "global" else "brand"
        return cls(kind, scope, doc["dataset"])


def parse_input(text: str, kind: Kind) -> JobInput:
    """`orders` (the same brand's dataset) or `global:orders` (the global dataset)."""
    scope: Scope = "brand"
    name = text
    if text.startswith(GLOBAL_PREFIX):
        scope, name = "global", text.removeprefix(GLOBAL_PREFIX)
    flag = "--after" if kind == "after" else "--requires-fresh"
    check_name(name, f"{flag} dataset")
    if ":" in name:
        raise InvalidInput(f"{flag} {text!r}: write a dataset name, or global:NAME")
    return JobInput(kind, scope, name)


def parse_inputs(
    brand_id: str | None, after: Iterable[str], requires_fresh: Iterable[str]
) -> list[JobInput]:
    """The inputs `jobs add/edit --after/--requires-fresh` give, checked (duplicates dropped)."""
    found: list[JobInput] = []
    flags: tuple[tuple[Kind, Iterable[str]], ...] = (("after", after), ("fresh", requires_fresh))
    for kind, texts in flags:
        for text in texts:
            item = parse_input(text, kind)
            if item not in found:
                found.append(item)
    if brand_id is None:
        # A global job's plain input fans out: one run per brand whose dataset refreshed. Its
        # runs' brand then comes from the trigger, so a global input cannot trigger it as well,
        # and what it requires fresh must not depend on the brand it is about to pick.
        after_scopes = {item.scope for item in found if item.kind == "after"}
        if after_scopes == {"brand", "global"}:
            raise InvalidInput(
                "a global job's --after inputs are either all per brand (one run per brand "
                "whose input refreshed) or all global:NAME, not both"
            )
        if "brand" in after_scopes and any(
            item.kind == "fresh" and item.scope == "brand" for item in found
        ):
            raise InvalidInput(
                "a global job fanning out per brand can only --requires-fresh global:NAME inputs"
            )
    return found


def inputs_of(job: Job) -> list[JobInput]:
    return [JobInput.from_json(item) for item in job.inputs or ()]


def after_inputs(job: Job) -> list[JobInput]:
    return [item for item in inputs_of(job) if item.kind == "after"]


def fresh_inputs(job: Job) -> list[JobInput]:
    return [item for item in inputs_of(job) if item.kind == "fresh"]


def fans_out(job: Job) -> bool:
    """A global job with a per-brand `--after` input runs once per brand whose input refreshed."""
    return job.brand_id is None and any(item.scope == "brand" for item in after_inputs(job))


def target_brand(
    job_brand: str | None, item: JobInput, success_brand: str | None
) -> str | NoTarget | None:
    """The brand of the run that a success of `item`'s dataset for `success_brand` triggers,
    or NO_TARGET. (Restated in SQL by pipectl_dataset_succeeded / the SQLite trigger.)"""
    if item.kind != "after":
        return NO_TARGET
    if item.scope == "global":
        return job_brand if success_brand is None else NO_TARGET
    if success_brand is None or job_brand not in (None, success_brand):
        return NO_TARGET
    return success_brand


def ready_at(
    pending: Iterable[tuple[str | None, str, datetime]], after_count: int
) -> datetime | None:
    """When a job's pending input successes — (run brand, input name, time), one per input and
    brand, the latest — first make some brand's run ready: every `after` input has one. The
    earliest such brand's latest success; None when no brand is ready. (Restated in SQL by
    pipectl_ready_at.)"""
    by_brand: dict[str | None, list[datetime]] = {}
    for brand, _, at in pending:
        by_brand.setdefault(brand, []).append(at)
    ready = [max(times) for times in by_brand.values() if len(times) >= after_count]
    return min(ready) if ready else None


# -- holds ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hold:
    """Keep a due run back: the job stays due since `held_since`, looked at again at `next_check`."""

    held_since: datetime
    next_check: datetime
    waiting_on: str


@dataclass(frozen=True, slots=True)
class HoldExpired:
    """Held past max-hold: the run fails with `reason` (and the retry rules apply)."""

    reason: str


def max_hold(job: Job, due_at: datetime) -> timedelta:
    """--max-hold, else the job's schedule interval (from the occurrence it fell due at), else
    24 h (a one-time or data-triggered job)."""
    if job.max_hold_seconds is not None:
        return timedelta(seconds=job.max_hold_seconds)
    if job.schedule_type == "recurring" and job.cron_expression:
        following = next_occurrence(job.cron_expression, job.timezone, due_at)
        return max(following - due_at, timedelta(seconds=1))
    return DEFAULT_MAX_HOLD


def describe_wait(item: Freshness, now: datetime) -> str:
    """`waiting for acme/orders (stale, last success 2d ago)`."""
    where = f"{item.brand_id}/{item.dataset}" if item.brand_id else f"global/{item.dataset}"
    if item.last_success_at is None:
        return f"waiting for {where} (never succeeded)"
    return f"waiting for {where} ({item.state}, last success {_ago(now - item.last_success_at)})"


def _ago(age: timedelta) -> str:
    seconds = max(int(age.total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def holding(
    job: Job, run_brand: str | None, freshness_of: Mapping[tuple[str | None, str], Freshness]
) -> list[Freshness]:
    """The `--requires-fresh` inputs that hold a run of `job` for `run_brand`: those `stale` or
    `never`. `freshness_of` has every fresh input's key (`hold_keys`)."""
    found = []
    for item in fresh_inputs(job):
        state = freshness_of[(item.brand_for(run_brand), item.dataset)]
        if state.state in HOLDING_STATES:
            found.append(state)
    return found


def hold_keys(job: Job, run_brand: str | None) -> list[tuple[str | None, str]]:
    """The (brand, dataset) of each `--requires-fresh` input of a run of `job` for `run_brand`."""
    return [(item.brand_for(run_brand), item.dataset) for item in fresh_inputs(job)]


def hold_decision(
    job: Job,
    run_brand: str | None,
    freshness_of: Mapping[tuple[str | None, str], Freshness],
    now: datetime,
) -> Hold | HoldExpired | None:
    """Whether a claimed run of `job` for `run_brand` may start: None (it may), a Hold while a
    `--requires-fresh` input is stale or never succeeded, or HoldExpired once it has been held
    longer than max-hold since it fell due. `freshness_of` has every fresh input's key."""
    waits = holding(job, run_brand, freshness_of)
    if not waits:
        return None
    waiting_on = "; ".join(describe_wait(state, now) for state in waits)
    since = job.held_since or job.next_run_at or now
    limit = max_hold(job, since)
    if now >= since + limit:
        return HoldExpired(f"held longer than max-hold ({_span(limit)}): {waiting_on}")
    return Hold(since, min(now + HOLD_RECHECK, since + limit), waiting_on)


def _span(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# -- lineage -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Edge:
    """Job `producer` refreshes a dataset job `consumer` takes as input."""

    producer: int
    dataset: str
    consumer: int
    kind: Kind


def produces(job: Job) -> list[tuple[str | None, str]]:
    """(brand, dataset) pairs a job declares it refreshes; brand None for a global job that
    names no brands (it may refresh the global dataset or any brand's)."""
    found = []
    for dataset, brands in dataset_declarations(job):
        if job.brand_id is not None or not brands:
            found.append((job.brand_id, dataset))
        else:
            found += [(brand, dataset) for brand in brands]
    return found


def _feeds(producer: Job, brand: str | None, dataset: str, consumer: Job, item: JobInput) -> bool:
    """Whether `producer`'s (brand, dataset) may be `consumer`'s input `item` (a global job on
    either side may touch any brand, so it counts as linked)."""
    if item.dataset != dataset:
        return False
    if item.scope == "global":
        return producer.brand_id is None
    if consumer.brand_id is None or producer.brand_id is None:
        return True
    return brand == consumer.brand_id


def edges(jobs: Iterable[Job]) -> list[Edge]:
    live = [job for job in jobs if job.status != "archived"]
    found = []
    for consumer in live:
        for item in inputs_of(consumer):
            for producer in live:
                if any(
                    _feeds(producer, brand, dataset, consumer, item)
                    for brand, dataset in produces(producer)
                ):
                    found.append(Edge(producer.id, item.dataset, consumer.id, item.kind))
    return found


def find_cycle(jobs: Iterable[Job]) -> list[int] | None:
    """A cycle of job ids (first id repeated at the end) among producer → consumer edges, or
    None: a job that waits, through others, on itself would never run."""
    graph: dict[int, list[int]] = {}
    for edge in edges(jobs):
        graph.setdefault(edge.producer, []).append(edge.consumer)
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    path: list[int] = []

    def visit(node: int) -> list[int] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(set(graph.get(node, []))):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def describe_cycle(cycle: list[int], jobs: Mapping[int, Job]) -> str:
    return " → ".join(
        f"job {job_id} ({jobs[job_id].name})" if job_id else f"the new job ({jobs[0].name})"
        for job_id in cycle
    )


def unknown_inputs(
    inputs: Iterable[JobInput], jobs: Iterable[Job], declared: Iterable[str]
) -> list[JobInput]:
    """Inputs whose dataset no job produces and no threshold declares (`declared`)."""
    known = set(declared)
    for job in jobs:
        if job.status != "archived":
            known.update(dataset for _, dataset in produces(job))
    return [item for item in inputs if item.dataset not in known]


def lineage(jobs: Iterable[Job], brand_id: Any = None, *, every_brand: bool = True) -> dict:
    """Producers → datasets → consumers, as one JSON-ready document: each dataset with the jobs
    that produce it and those that take it as input. With `every_brand` False, only the jobs of
    `brand_id` and the global jobs (which may touch any brand)."""
    live = [
        job
        for job in jobs
        if job.status != "archived"
        and (every_brand or job.brand_id is None or job.brand_id == brand_id)
    ]
    datasets: dict[str, dict[str, Any]] = {}

    def entry(name: str) -> dict[str, Any]:
        return datasets.setdefault(name, {"dataset": name, "producers": [], "consumers": []})

    for job in live:
        for brand, dataset in produces(job):
            producer = {"job_id": job.id, "name": job.name, "brand_id": brand}
            if producer not in entry(dataset)["producers"]:
                entry(dataset)["producers"].append(producer)
        for item in inputs_of(job):
            entry(item.dataset)["consumers"].append(
                {
                    "job_id": job.id,
                    "name": job.name,
                    "brand_id": job.brand_id,
                    "input": item.name,
                    "kind": item.kind,
                }
            )
    return {
        "jobs": [
            {
                "id": job.id,
                "name": job.name,
                "brand_id": job.brand_id,
                "schedule_type": job.schedule_type,
                "status": job.status,
            }
            for job in live
        ],
        "datasets": [datasets[name] for name in sorted(datasets)],
    }


def to_dot(graph: dict) -> str:
    """The lineage as Graphviz DOT: jobs are boxes, datasets ellipses; a dashed edge is a hold
    (`--requires-fresh`), a solid one a trigger or a production."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"')

    def quote(text: str) -> str:
        return '"' + escape(text) + '"'

    lines = ["digraph pipectl {", "  rankdir=LR;"]
    for job in graph["jobs"]:
        where = f"({job['brand_id']})" if job["brand_id"] else "(global)"
        # Each part is escaped; the line break between them is DOT's own `\n`, left as it is.
        label = '"' + escape(job["name"]) + "\\n" + escape(f"#{job['id']} {where}") + '"'
        lines.append(f"  {quote('job:' + str(job['id']))} [shape=box, label={label}];")
    for item in graph["datasets"]:
        node = quote("dataset:" + item["dataset"])
        lines.append(f"  {node} [shape=ellipse, label={quote(item['dataset'])}];")
        for producer in item["producers"]:
            lines.append(f"  {quote('job:' + str(producer['job_id']))} -> {node};")
        for consumer in item["consumers"]:
            style = " [style=dashed]" if consumer["kind"] == "fresh" else ""
            lines.append(f"  {node} -> {quote('job:' + str(consumer['job_id']))}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def producer_index(jobs: Iterable[Job]) -> dict[tuple[str | None, str], list[int]]:
    """(brand, dataset) → the ids of the jobs that declare they refresh it (brand None: a global
    job naming no brands, which may refresh any brand's)."""
    index: dict[tuple[str | None, str], list[int]] = {}
    for job in jobs:
        if job.status == "archived":
            continue
        for key in produces(job):
            if job.id not in index.setdefault(key, []):
                index[key].append(job.id)
    return index


def producers_of(
    index: Mapping[tuple[str | None, str], list[int]], brand_id: str | None, dataset: str
) -> list[int]:
    return index.get((brand_id, dataset)) or index.get((None, dataset)) or []


# -- what a held job waits on (shown beside concurrency keys) -------------------------------


@dataclass(frozen=True, slots=True)
class HeldWaiting:
    """A due job held back by a `--requires-fresh` input that is stale or never succeeded:
    `description` as the worker wrote it when it held the job, `holding` the inputs that hold it
    now (empty once they succeeded, until the worker looks again, at once)."""

    job_id: int
    since: datetime
    description: str
    requires_fresh: list[str]
    holding: list[Freshness]

    def describe(self) -> str:
        return f"{self.description} (held since {self.since:%Y-%m-%d %H:%M:%S} UTC)"

    def to_json(self) -> dict[str, Any]:
        return {
            "requires_fresh": self.requires_fresh,
            "holding": [
                {
                    "brand_id": item.brand_id,
                    "dataset": item.dataset,
                    "state": item.state,
                    "last_success_at": item.last_success_at.isoformat()
                    if item.last_success_at
                    else None,
                }
                for item in self.holding
            ],
            "job_id": self.job_id,
            "since": self.since.isoformat(),
            "description": self.describe(),
        }


def is_held(job: Job) -> bool:
    return job.status == "active" and job.held_since is not None and bool(job.waiting_on)


def held_waiting(
    jobs: Iterable[Job], freshness_of: Mapping[tuple[str | None, str], Freshness]
) -> dict[int, HeldWaiting]:
    """What each held job waits on; `freshness_of` has the `hold_keys` of each held job."""
    return {
        job.id: HeldWaiting(
            job.id,
            job.held_since,  # type: ignore[arg-type]
            job.waiting_on or "",
            [item.name for item in fresh_inputs(job)],
            holding(job, job.brand_id, freshness_of),
        )
        for job in jobs
        if is_held(job)
    }
