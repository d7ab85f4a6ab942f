"""Targets for `python` jobs in the integration tests (imported by the worker as `helpers_jobs`;
in-process workers share this module with the test that imported it)."""

from __future__ import annotations

import threading
from collections import defaultdict

from pipectl.handlers import RunContext

# Gates that `held` runs wait at, by name; a test opens one when what it waits for has happened.
GATES: defaultdict[str, threading.Event] = defaultdict(threading.Event)
GATE_TIMEOUT_S = 30.0


def held(ctx: RunContext) -> None:
    """A run that lasts until the test opens the gate named by parameter `gate`: a slow run whose
    end is a signal, not a duration. Fails if the gate stays shut for GATE_TIMEOUT_S."""
    if not GATES[ctx.parameters["gate"]].wait(GATE_TIMEOUT_S):
        raise RuntimeError(f"gate {ctx.parameters['gate']!r} never opened")


def performance_and_thumbnails(ctx: RunContext) -> None:
    """The multi-step sync: performance succeeds, the non-fatal thumbnails step fails."""
    with ctx.step("performance", ["ads_performance"]):
        ctx.log.info("performance rows loaded")
    with ctx.step("thumbnails", ["thumbnails"], fatal=False):
        raise RuntimeError("CDN timeout")


def fatal_thumbnails(ctx: RunContext) -> None:
    """As above, but the thumbnails step is fatal: the run fails after performance succeeded."""
    with ctx.step("performance", ["ads_performance"]):
        pass
    with ctx.step("thumbnails", ["thumbnails"]):
        raise RuntimeError("CDN timeout")


def per_brand(ctx: RunContext) -> None:
    """A global job that refreshes a dataset for each brand in parameter `brands`; parameter
    `failing` names the brands whose (non-fatal) step fails."""
    failing = set(ctx.parameters.get("failing", []))
    for brand in ctx.parameters["brands"]:
        with ctx.step(f"performance {brand}", ["ads_performance"], brand_id=brand, fatal=False):
            if brand in failing:
                raise RuntimeError(f"API error for {brand}")


def edited_mid_run(ctx: RunContext) -> None:
    """An operator edits this run's job while it runs (`pipectl jobs edit`, from another
    connection): parameter `edit` holds Client.edit_job's arguments, `url` the store. Then the
    run fails when parameter `fail` is set."""
    from pipectl.client import Client

    with Client.from_url(ctx.parameters["url"]) as operator:
        operator.edit_job(ctx.job_id, **ctx.parameters["edit"])
    if ctx.parameters.get("fail"):
        ctx.fail("boom")
