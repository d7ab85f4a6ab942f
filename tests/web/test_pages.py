"""The web view's rules without a browser (issue 16): login and logout, the session cookie, the
CSRF token on every form, scopes and brand scope on pages, the open mode without tokens, and
what the pages say."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from helpers_web import ACME, OPS, READ, TOKENS, Seed

from pipectl.client import Client
from pipectl.models import WorkerInfo
from pipectl.settings import load_settings


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def log_in(api: Any, token: str) -> Any:
    form = api.get("/login")
    response = api.post(
        "/login", data={"token": token, "csrf": csrf_of(form.text)}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return response


def jobs_table(store: Client) -> list[dict[str, Any]]:
    return [job.to_json() for job in store.list_jobs()]


def test_pages_need_a_login_and_the_login_form_needs_its_csrf_token(api: Any, seeded: Seed) -> None:
    for path in ("/", "/brands/acme", f"/runs/{seeded.failed_run}"):
        response = api.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/login")
    form = api.get("/login")
    assert 'type="password"' in form.text
    assert api.post("/login", data={"token": OPS}).status_code == 403
    assert api.post("/login", data={"token": OPS, "csrf": "forged"}).status_code == 403
    wrong = api.post("/login", data={"token": "nope-0123456789abcdef", "csrf": csrf_of(form.text)})
    assert wrong.status_code == 401
    assert "That token is not valid." in wrong.text
    assert api.get("/", follow_redirects=False).status_code == 303


def test_the_session_cookie_is_httponly_samesite_and_secure_behind_tls(api: Any) -> None:
    cookie = log_in(api, OPS).headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie
    assert OPS not in cookie
    api.cookies.clear()
    form = api.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in form.headers["set-cookie"]
    # The client keeps a Secure cookie for https only: send it by hand, as the proxy would.
    session = form.headers["set-cookie"].split(";")[0]
    api.cookies.clear()
    behind_tls = api.post(
        "/login",
        data={"token": OPS, "csrf": csrf_of(form.text)},
        headers={"X-Forwarded-Proto": "https", "Cookie": session},
        follow_redirects=False,
    )
    assert behind_tls.status_code == 303
    assert "Secure" in behind_tls.headers["set-cookie"]


def test_the_health_view_puts_the_stale_brand_first_in_colour_and_words(
    api: Any, seeded: Seed, store: Client
) -> None:
    log_in(api, OPS)
    page = api.get("/").text
    assert page.index("acme") < page.index("globex")
    assert '<span class="state stale">stale</span>' in page
    assert '<span class="state fresh">fresh</span>' in page
    assert "last attempt failed: step load: HTTP 401 from Meta" in page
    assert '<meta http-equiv="refresh" content="5">' in page
    assert 'role="alert">No live worker: no worker has ever registered' in page
    assert "Jobs in backoff" in page
    now = datetime.now(UTC)
    store.store.register_worker(WorkerInfo("w1", "host", 1, now, now, "test"))
    page = api.get("/").text
    assert "No live worker" not in page
    assert '<span class="state fresh">live</span>' in page


def test_buttons_post_with_csrf_and_a_missing_token_is_403_with_nothing_written(
    api: Any, seeded: Seed, store: Client
) -> None:
    log_in(api, OPS)
    page = api.get("/brands/acme").text
    action = f"/brands/acme/jobs/{seeded.acme_job}/pause"
    assert f'action="{action}"' in page
    before = jobs_table(store)
    for data in ({}, {"csrf": "forged"}):
        refused = api.post(action, data=data)
        assert refused.status_code == 403
        assert "CSRF token" in refused.text
    assert jobs_table(store) == before
    done = api.post(action, data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert done.status_code == 303
    assert store.get_job(seeded.acme_job).status == "paused"
    after = api.get(done.headers["location"]).text
    assert f"Job {seeded.acme_job}: paused." in after
    assert "Resume" in after
    # A refused transition says why on the page, and writes nothing.
    again = api.post(action, data={"csrf": csrf_of(after)})
    assert again.status_code == 409
    assert f"job {seeded.acme_job} is paused and cannot be paused" in again.text


def test_a_read_session_sees_no_buttons_and_gets_403_on_actions(
    api: Any, seeded: Seed, store: Client
) -> None:
    log_in(api, READ)
    page = api.get("/brands/acme").text
    assert "Run now" not in page
    before = jobs_table(store)
    response = api.post(f"/brands/acme/jobs/{seeded.acme_job}/run", data={"csrf": csrf_of(page)})
    assert response.status_code == 403
    assert jobs_table(store) == before


def test_a_brand_scoped_session_sees_its_brand_only(api: Any, seeded: Seed, store: Client) -> None:
    log_in(api, ACME)
    health = api.get("/").text
    assert "acme" in health
    assert "globex" not in health
    assert api.get("/brands/globex").status_code == 404
    assert api.get("/brands/nobody").status_code == 404
    assert api.get(f"/runs/{seeded.globex_run}").status_code == 404
    page = api.get("/brands/acme").text
    before = jobs_table(store)
    for path in (
        f"/brands/acme/jobs/{seeded.globex_job}/pause",
        f"/brands/globex/jobs/{seeded.globex_job}/pause",
    ):
        assert api.post(path, data={"csrf": csrf_of(page)}).status_code == 404
    assert jobs_table(store) == before


def test_logout_ends_the_session(api: Any, seeded: Seed) -> None:
    log_in(api, OPS)
    page = api.get("/")
    assert api.post("/logout", data={}).status_code == 403
    out = api.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert out.headers["location"] == "/login"
    assert api.get("/", follow_redirects=False).status_code == 303


def test_the_run_page_shows_steps_and_logs_and_refreshes_only_while_running(
    api: Any, seeded: Seed, store: Client
) -> None:
    log_in(api, OPS)
    page = api.get(f"/runs/{seeded.failed_run}").text
    assert "<td>load</td>" in page
    assert "HTTP 401 from Meta" in page
    assert "run of meta acme" in page
    assert "http-equiv" not in page
    assert api.get("/runs/999").status_code == 404
    assert api.get("/runs/0").status_code == 400


def test_pages_may_not_be_framed_or_cached_and_load_nothing_from_elsewhere(api: Any) -> None:
    log_in(api, OPS)
    for path in ("/", "/login", "/api/status"):
        headers = api.get(path, headers={"Authorization": f"Bearer {OPS}"}).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "default-src 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"
    assert "content-security-policy" not in api.get("/docs").headers


def test_user_data_is_escaped(api: Any, store: Client) -> None:
    store.add_job("noop", "0 3 * * *", brand_id="acme", name="<script>alert(1)</script>")
    log_in(api, OPS)
    page = api.get("/brands/acme").text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.fixture
def open_api(url: str) -> Any:
    from fastapi.testclient import TestClient

    from pipectl.web.app import create_app

    with TestClient(
        create_app(load_settings(database_url=url)), base_url="http://127.0.0.1:8000"
    ) as client:
        yield client


def test_without_tokens_loopback_pages_act_with_csrf_and_the_api_only_reads(
    open_api: Any, seeded: Seed, store: Client
) -> None:
    page = open_api.get("/")
    assert page.status_code == 200
    assert "Log out" not in page.text
    assert open_api.get("/api/status").status_code == 200
    before = jobs_table(store)
    assert open_api.post(f"/api/jobs/{seeded.acme_job}/pause").status_code == 403
    action = f"/brands/acme/jobs/{seeded.acme_job}/pause"
    assert open_api.post(action, data={}).status_code == 403
    assert jobs_table(store) == before
    brand = open_api.get("/brands/acme").text
    assert open_api.post(action, data={"csrf": csrf_of(brand)}).status_code == 200
    assert store.get_job(seeded.acme_job).status == "paused"
    # DNS rebinding: a page served from another name that resolves to 127.0.0.1.
    for path in ("/", "/api/status"):
        assert open_api.get(path, headers={"Host": "evil.example:8000"}).status_code == 403


def test_changing_the_tokens_ends_every_session(api: Any, url: str) -> None:
    from fastapi.testclient import TestClient

    from pipectl.web.app import create_app

    log_in(api, OPS)
    cookie = api.cookies["pipectl_session"]
    assert api.get("/", follow_redirects=False).status_code == 200
    rotated = json.dumps([{"name": "ops", "scope": "operate", "token": "rotated-0123456789abcdef"}])
    app = create_app(load_settings(database_url=url, api_tokens=rotated))
    with TestClient(app, base_url="http://127.0.0.1:8000") as other:
        other.cookies.set("pipectl_session", cookie)
        response = other.get("/", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login")


def test_the_openapi_page_and_an_unreachable_store(api: Any, tmp_path: Any) -> None:
    from fastapi.testclient import TestClient

    from pipectl.web.app import create_app

    assert api.get("/docs").status_code == 200
    missing = f"sqlite:///{tmp_path / 'never-migrated.db'}"
    with TestClient(
        create_app(load_settings(database_url=missing, api_tokens=TOKENS)),
        base_url="http://127.0.0.1:8000",
    ) as broken:
        response = broken.get("/api/status", headers={"Authorization": f"Bearer {OPS}"})
    assert response.status_code == 503
    assert "pipectl db migrate" in response.json()["error"]
