"""`pipectl demo`: a self-contained store that shows every concept on one screen."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pipectl import clock
from pipectl.client import Client, StatusReport
from pipectl.errors import InvalidInput
from pipectl.handlers import RunContext
from pipectl.parsing import parse_duration
from pipectl.settings import load_settings
from pipectl.worker import Worker

_MULTI_STEP = " ; ".join(
    [
        "echo 'fetching ad performance for' \"$PIPECTL_BRAND_ID\"",
        'echo \'{"step": "performance", "status": "completed", "datasets": ["ads_performance"]}\' >> "$PIPECTL_STEPS_FILE"',
        "echo 'thumbnail CDN timed out' >&2",
        'echo \'{"step": "thumbnails", "status": "failed", "fatal": false, "datasets": ["creative_thumbnails"], "error": "CDN timed out"}\' >> "$PIPECTL_STEPS_FILE"',
    ]
)


def approve_items(ctx: RunContext) -> None:
    """The demo's global job: one cross-brand pass that refreshes each brand's approvals."""
    for brand in ctx.parameters.get("brands", []):
        with ctx.step(f"approve {brand}", datasets=["approvals"], brand_id=brand):
            ctx.log.info(f"approved pending items for {brand}")


def build_demo(path: str | None = None) -> tuple[str, StatusReport]:
    """Create the demo store at `path` (default: a new temp dir), run a worker once over it and
    return its URL and status."""
    folder = Path(path).parent if path else Path(tempfile.mkdtemp(prefix="pipectl-demo-"))
    db_file = Path(path) if path else folder / "demo.db"
    if db_file.exists():
        raise InvalidInput(f"{db_file} already exists; give the demo a new path")
    url = f"sqlite:///{db_file.resolve()}"
    Client.migrate_url(url)
    settings = load_settings(database_url=url, poll_interval="1s")
    with Client.from_url(url, settings) as client:
        now = clock.now()
        client.set_threshold("ads_performance", parse_duration("6h"), parse_duration("1d"))
        jobs = [
            client.add_job(
                "command",
                "0 */6 * * *",
                timezone="Europe/Berlin",
                brand_id="acme",
                name="meta_sync",
                parameters={"command": _MULTI_STEP, "datasets": ["ads_performance"]},
            ),
            client.add_job(
                "command",
                "30 2 * * *",
                timezone="America/New_York",
                brand_id="globex",
                name="reviews_sync",
                parameters={
                    "command": "echo 'reviews API answered 503' >&2; exit 1",
                    "datasets": ["reviews"],
                },
            ),
            client.add_job(
                "python",
                "0 * * * *",
                name="approve_items",
                parameters={
                    "target": "pipectl.demo:approve_items",
                    "brands": ["acme", "globex", "initech"],
                },
            ),
            client.add_job(
                "noop",
                "0 4 * * 1",
                brand_id="initech",
                name="weekly_rollup",
                parameters={"datasets": ["weekly_rollup"]},
                paused=True,
            ),
        ]
        for job in jobs[:3]:
            client.store.update_job(job.id, {"next_run_at": now}, now)
        client.enqueue(
            "command",
            "initech",
            {"command": "echo backfilling orders; sleep 0.2", "datasets": ["orders"]},
        )
        Worker(url, settings, once=True, worker_id="demo-worker").run()
        return url, client.status()
