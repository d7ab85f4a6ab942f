"""The web view in a real browser (issue 16): headless Chromium from Debian's package, driven by
Playwright, against a real `pipectl serve` and a real `pipectl run-worker`.

The scenario: log in, see the stale brand first, open it, press "run now" and watch the run
appear and complete (the page refreshes itself), open a failed run's steps, log out. It also
takes the screenshots docs/web.md shows: into docs/ with UPDATE_SCREENSHOTS=1, else into
the test's temp dir. Without Chromium or Playwright it skips, except under CI=true, where it
fails (.ci/run installs Chromium)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers_web import OPS, READ, TOKENS, seed

from pipectl.client import Client

DOCS = Path(__file__).resolve().parents[2] / "docs"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]


def require(found: object, what: str) -> None:
    if found:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {what}")
    pytest.skip(what)


@pytest.fixture
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        sync_playwright = None
    require(sync_playwright, "playwright is not installed (pip install -e '.[test]')")
    chromium = shutil.which("chromium")
    require(chromium, "chromium is not installed (apt-get install chromium)")
    expect.set_options(timeout=30_000)  # the pages refresh every 5 s; a loaded machine is slow
    with sync_playwright() as playwright:  # type: ignore[misc]
        launched = playwright.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
        yield launched
        launched.close()


def shots(tmp_path: Path) -> Path:
    return DOCS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path


def test_log_in_see_the_stale_brand_run_it_now_read_a_failed_run_and_log_out(
    sqlite_url: str, serve: Any, workers: Any, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with Client.from_url(sqlite_url) as client:
        seeded = seed(client)
        # Not due until someone presses "run now" (the seed left it in backoff, due already).
        client.store.update_job(
            seeded.acme_job,
            {"next_run_at": datetime.now(UTC) + timedelta(days=1)},
            datetime.now(UTC),
        )
    server = serve(sqlite_url, PIPECTL_API_TOKENS=TOKENS)
    workers.start(sqlite_url)
    page = browser.new_page(viewport={"width": 960, "height": 640})
    page.set_default_timeout(30_000)

    # Log in: the health view sends a visitor to the login form first.
    page.goto(f"{server.base}/")
    expect(page).to_have_url(f"{server.base}/login")
    page.get_by_label("API token").fill(OPS)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server.base}/")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()

    # The stale brand first, its state in words; the worker is live, so no banner.
    first = page.locator("main section").first
    expect(first.get_by_role("heading")).to_have_text("acme stale")
    expect(page.locator("main section").nth(1).get_by_role("heading")).to_have_text("globex fresh")
    expect(page.get_by_role("cell", name="live")).to_be_visible()
    expect(page.get_by_text("No live worker")).to_have_count(0)
    page.screenshot(path=shots(tmp_path) / "web-health.png", full_page=True)

    # Open it, press "run now", and watch the run appear and complete as the page refreshes.
    first.get_by_role("link", name="acme").click()
    expect(page).to_have_url(f"{server.base}/brands/acme")
    page.get_by_role("button", name=f"Run job {seeded.acme_job} now").click()
    expect(page.get_by_role("status")).to_have_text(f"Job {seeded.acme_job}: run now.")
    newest = page.locator("main table").last.locator("tbody tr").first
    expect(newest.get_by_role("link")).not_to_have_text(f"run {seeded.failed_run}")
    expect(newest.locator(".state")).to_have_text("completed", timeout=60_000)
    expect(page.locator("main table").first).to_contain_text("fresh", timeout=30_000)
    page.screenshot(path=shots(tmp_path) / "web-brand.png", full_page=True)

    # A failed run's steps.
    page.get_by_role("link", name=f"run {seeded.failed_run}", exact=True).first.click()
    expect(page).to_have_url(f"{server.base}/runs/{seeded.failed_run}")
    load = page.get_by_role("row", name=re.compile(r"^load failed"))
    expect(load).to_contain_text("failed")
    expect(load).to_contain_text("HTTP 401 from Meta")

    # Log out: the pages ask for a login again.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{server.base}/login")
    page.goto(f"{server.base}/brands/acme")
    expect(page).to_have_url(f"{server.base}/login")
    for name in ("web-health.png", "web-brand.png"):
        assert (shots(tmp_path) / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_read_login_has_no_buttons_and_a_forged_form_is_refused(
    sqlite_url: str, serve: Any, browser: Any
) -> None:
    from playwright.sync_api import expect

    with Client.from_url(sqlite_url) as client:
        seeded = seed(client)
    server = serve(sqlite_url, PIPECTL_API_TOKENS=TOKENS)
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{server.base}/login")
    page.get_by_label("API token").fill(READ)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{server.base}/brands/acme")
    expect(page.get_by_role("heading", name="Brand acme")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Run job"))).to_have_count(0)
    # A page elsewhere posting to the server without the CSRF token: refused.
    page.set_content(
        f'<form method="post" action="{server.base}/brands/acme/jobs/{seeded.acme_job}/pause">'
        '<button type="submit">go</button></form>'
    )
    page.get_by_role("button", name="go").click()
    expect(page.get_by_role("alert")).to_contain_text("CSRF token")
    with Client.from_url(sqlite_url) as client:
        assert client.get_job(seeded.acme_job).status == "active"
