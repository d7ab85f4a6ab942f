"""The data-aware scheduling rules (triggers.py), without a store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import factories
import pytest
from trigger_cases import TARGET_CASES

from pipectl.errors import InvalidInput
from pipectl.freshness import Thresholds, freshness
from pipectl.models import DatasetStatus, Job
from pipectl.triggers import (
    NO_TARGET,
    Hold,
    HoldExpired,
    JobInput,
    describe_cycle,
    fans_out,
    find_cycle,
    held_waiting,
    hold_decision,
    lineage,
    max_hold,
    parse_inputs,
    ready_at,
    target_brand,
    to_dot,
    unknown_inputs,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def job(job_id: int = 1, brand: str | None = "acme", **changes: Any) -> Job:
    """A data-triggered `command` job (no cron), due at NOW."""
    return factories.make_job(
        **{
            "id": job_id,
            "brand_id": brand,
            "job_type": "command",
            "name": f"job{job_id}",
            "schedule_type": "datasets",
            "cron_expression": None,
            "next_run_at": NOW,
            **changes,
        }
    )


def with_inputs(
    j: Job,
    after: tuple[str, ...] = (),
    fresh: tuple[str, ...] = (),
    produces: list[str] | None = None,
) -> Job:
    inputs = parse_inputs(j.brand_id, after, fresh)
    params = {**j.parameters, "datasets": produces} if produces else j.parameters
    return replace(j, inputs=[item.to_json() for item in inputs], parameters=params)


# -- inputs ---------------------------------------------------------------------------------


def test_parse_inputs_reads_global_prefix_and_drops_duplicates() -> None:
    found = parse_inputs("acme", ["orders", "global:fx", "orders"], ["orders"])
    assert found == [
        JobInput("after", "brand", "orders"),
        JobInput("after", "global", "fx"),
        JobInput("fresh", "brand", "orders"),
    ]
    assert [item.name for item in found] == ["orders", "global:fx", "orders"]


@pytest.mark.parametrize(
    ("brand", "after", "fresh", "message"),
    [
        ("acme", ["acme:orders"], [], "global:NAME"),
        ("acme", [""], [], "must not be empty"),
        ("acme", ["global:"], [], "must not be empty"),
        (None, ["orders", "global:fx"], [], "all per brand"),
        (None, ["orders"], ["stock"], "only --requires-fresh global:NAME"),
    ],
)
def test_parse_inputs_refuses(
    brand: str | None, after: list[str], fresh: list[str], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_inputs(brand, after, fresh)


def test_a_global_job_with_a_plain_input_fans_out() -> None:
    assert fans_out(with_inputs(job(brand=None), ("orders",)))
    assert not fans_out(with_inputs(job(brand=None), ("global:orders",)))
    assert not fans_out(with_inputs(job(brand="acme"), ("orders",)))


@pytest.mark.parametrize(("job_brand", "text", "success_brand", "expected"), TARGET_CASES)
def test_target_brand(
    job_brand: str | None, text: str, success_brand: str | None, expected: object
) -> None:
    (item,) = parse_inputs(job_brand, [text], [])
    assert target_brand(job_brand, item, success_brand) == expected


def test_a_hold_input_triggers_nothing() -> None:
    (item,) = parse_inputs("acme", [], ["orders"])
    assert target_brand("acme", item, "acme") is NO_TARGET


def test_ready_when_every_input_has_a_success_for_one_brand() -> None:
    t1, t2, t3 = NOW, NOW + timedelta(minutes=1), NOW + timedelta(minutes=2)
    assert ready_at([], 1) is None
    assert ready_at([("acme", "orders", t1)], 2) is None
    assert ready_at([("acme", "orders", t1), ("beta", "stock", t2)], 2) is None
    assert ready_at([("acme", "orders", t1), ("acme", "stock", t2)], 2) == t2
    # Two brands ready: the one ready first.
    pending = [("acme", "o", t3), ("beta", "o", t1), ("beta", "s", t2), ("acme", "s", t1)]
    assert ready_at(pending, 2) == t2


# -- holds ----------------------------------------------------------------------------------

THRESHOLDS = Thresholds([], (timedelta(hours=6), DAY))


def state(brand: str | None, dataset: str, last_success: datetime | None) -> object:
    status = DatasetStatus(brand, dataset, last_success, last_success, "completed", None, 7)
    return freshness(dataset, brand, status if last_success else None, THRESHOLDS, NOW)


def test_no_hold_while_inputs_are_fresh_or_warn() -> None:
    held = with_inputs(job(), fresh=("orders",))
    fresh = {("acme", "orders"): state("acme", "orders", NOW - timedelta(hours=12))}  # warn
    assert hold_decision(held, "acme", fresh, NOW) is None  # type: ignore[arg-type]


def test_a_stale_input_holds_the_run_and_says_why() -> None:
    held = with_inputs(job(next_run_at=NOW - timedelta(hours=1)), fresh=("orders", "global:fx"))
    states = {
        ("acme", "orders"): state("acme", "orders", NOW - 2 * DAY),
        (None, "fx"): state(None, "fx", None),
    }
    decision = hold_decision(held, "acme", states, NOW)  # type: ignore[arg-type]
    assert decision == Hold(
        held_since=NOW - timedelta(hours=1),
        next_check=NOW + timedelta(minutes=1),
        waiting_on="waiting for acme/orders (stale, last success 2d ago); "
        "waiting for global/fx (never succeeded)",
    )


def test_a_hold_expires_after_max_hold_from_when_the_run_fell_due() -> None:
    held = with_inputs(
        job(held_since=NOW - timedelta(hours=2), max_hold_seconds=7200.0), fresh=("orders",)
    )
    states = {("acme", "orders"): state("acme", "orders", None)}
    decision = hold_decision(held, "acme", states, NOW)  # type: ignore[arg-type]
    assert decision == HoldExpired(
        "held longer than max-hold (2h): waiting for acme/orders (never succeeded)"
    )
    # A moment earlier it is still held, looked at again no later than the limit.
    early = hold_decision(held, "acme", states, NOW - timedelta(seconds=30))  # type: ignore[arg-type]
    assert isinstance(early, Hold) and early.next_check == NOW


def test_a_held_job_waits_on_its_holding_inputs_with_their_state() -> None:
    held = with_inputs(
        job(held_since=NOW - timedelta(hours=1), waiting_on="waiting for acme/orders (…)"),
        fresh=("orders", "stock", "global:fx"),
    )
    states = {
        ("acme", "orders"): state("acme", "orders", NOW - 2 * DAY),
        ("acme", "stock"): state("acme", "stock", NOW - timedelta(hours=1)),  # fresh: not listed
        (None, "fx"): state(None, "fx", None),
    }
    waiting = held_waiting([held, job(2)], states)  # type: ignore[arg-type]
    assert list(waiting) == [held.id]
    doc = waiting[held.id].to_json()
    assert doc["requires_fresh"] == ["orders", "stock", "global:fx"]
    assert doc["holding"] == [
        {
            "brand_id": "acme",
            "dataset": "orders",
            "state": "stale",
            "last_success_at": (NOW - 2 * DAY).isoformat(),
        },
        {"brand_id": None, "dataset": "fx", "state": "never", "last_success_at": None},
    ]
    assert doc["description"].startswith("waiting for acme/orders (…) (held since")


def test_max_hold_defaults_to_the_schedule_interval_or_a_day() -> None:
    hourly = job(schedule_type="recurring", cron_expression="0 * * * *")
    assert max_hold(hourly, NOW) == timedelta(hours=1)
    assert max_hold(job(schedule_type="one_time"), NOW) == DAY
    assert max_hold(job(), NOW) == DAY
    assert max_hold(job(max_hold_seconds=90.0), NOW) == timedelta(seconds=90)


# -- lineage ----------------------------------------------------------------------------------


def test_a_cycle_is_found_and_named() -> None:
    a = with_inputs(job(1, name="sync"), ("roas",), produces=["ads"])
    b = with_inputs(job(2, name="rollup"), ("ads",), produces=["roas"])
    cycle = find_cycle([a, b])
    assert cycle == [1, 2, 1]
    assert describe_cycle(cycle, {1: a, 2: b}) == "job 1 (sync) → job 2 (rollup) → job 1 (sync)"


def test_no_cycle_across_brands_or_when_archived() -> None:
    a = with_inputs(job(1, brand="acme"), ("roas",), produces=["ads"])
    b = with_inputs(job(2, brand="beta"), ("ads",), produces=["roas"])
    assert find_cycle([a, b]) is None
    c = with_inputs(job(3, brand="acme"), ("ads",), produces=["roas"])
    assert find_cycle([a, c]) == [1, 3, 1]
    assert find_cycle([a, replace(c, status="archived")]) is None


def test_a_chain_is_no_cycle() -> None:
    chain = [
        with_inputs(job(1), produces=["ads"]),
        with_inputs(job(2), ("ads",), produces=["roas"]),
        with_inputs(job(3), ("roas",), produces=["report"]),
    ]
    assert find_cycle(chain) is None


def test_unknown_inputs_are_those_nobody_produces_or_declares() -> None:
    producer = with_inputs(job(1), produces=["ads"])
    inputs = parse_inputs("acme", ["ads", "orders", "fx"], [])
    assert unknown_inputs(inputs, [producer], ["fx"]) == [JobInput("after", "brand", "orders")]


def test_lineage_and_dot() -> None:
    producer = with_inputs(job(1, name='sync "ads"'), produces=["ads"])
    consumer = with_inputs(job(2, name="rollup"), ("ads",), ["global:fx"])
    graph = lineage([producer, consumer])
    assert [d["dataset"] for d in graph["datasets"]] == ["ads", "fx"]
    ads = graph["datasets"][0]
    assert ads["producers"] == [{"job_id": 1, "name": 'sync "ads"', "brand_id": "acme"}]
    assert ads["consumers"][0]["input"] == "ads"
    dot = to_dot(graph)
    assert dot.startswith("digraph pipectl {")
    assert '"job:1" -> "dataset:ads";' in dot
    assert '"dataset:fx" -> "job:2" [style=dashed];' in dot
    # The name's quote is escaped; the line break before the id is DOT's `\n`, not `\\n`.
    assert '"job:1" [shape=box, label="sync \\"ads\\"\\n#1 (acme)"];' in dot
    other = lineage(
        [producer, consumer, with_inputs(job(3, brand="beta"), produces=["x"])],
        "acme",
        every_brand=False,
    )
    assert [d["dataset"] for d in other["datasets"]] == ["ads", "fx"]


def test_dot_labels_escape_names_but_not_their_line_break() -> None:
    graph = lineage([with_inputs(job(7, name="a\\b", brand=None), produces=["x"])])
    (line,) = [line for line in to_dot(graph).splitlines() if "shape=box" in line]
    assert line == '  "job:7" [shape=box, label="a\\\\b\\n#7 (global)"];'
