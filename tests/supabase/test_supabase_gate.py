"""The readiness gate as a read-only SQL function (issue 13), called as a page's banner would
call it: supabase-py's `rpc("pipectl_gate", …)` through the PostgREST stand-in. By default only
the service role may call it; `pipectl db sql --grant-gate-to authenticated` opens it to signed-in
users, who see states and timestamps only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from supabase_server import SupabaseProject, make_key

from pipectl.client import Client
from pipectl.lifecycle import run_result
from pipectl.models import Job
from pipectl.parsing import parse_duration
from pipectl.store.migrations import full_sql

pytestmark = pytest.mark.postgres


@pytest.fixture
def client(supabase_url: str) -> Iterator[Client]:
    with Client.from_env() as opened:
        yield opened


def rpc(project: SupabaseProject, role: str, **args: Any) -> Any:
    from supabase import ClientOptions, create_client

    with httpx.Client() as http:
        api = create_client(project.url, make_key(role), ClientOptions(httpx_client=http))
        return api.rpc("pipectl_gate", args).execute().data


def record(client: Client, target: Job, at: datetime, error: str | None = None) -> None:
    client.store.update_job(target.id, {"next_run_at": at - timedelta(days=3650)}, at)
    (claim,) = client.store.claim_due("test-worker", at, 1)
    assert claim.job.id == target.id
    result = run_result(claim.job, at, error=error)
    assert client.store.finish_run(claim.run.id, claim.run.lease_token, result)


def states(document: dict[str, Any]) -> dict[str, str]:
    return {d["dataset"]: d["state"] for d in document["datasets"]}


def test_the_gate_function_agrees_with_client_check(
    client: Client, supabase_project: SupabaseProject
) -> None:
    now = datetime.now(UTC)
    client.set_threshold("thumbs", parse_duration("1h"), parse_duration("1d"))
    client.set_threshold("old", parse_duration("1h"), parse_duration("2h"), brand_id="acme")
    meta = client.add_job(
        "noop",
        "0 3 * * *",
        brand_id="acme",
        parameters={"datasets": ["ads", "thumbs", "old"], "steps": [{"datasets": ["reviews"]}]},
    )
    client.add_job(
        "noop",
        "0 3 * * *",
        parameters={"datasets": [{"dataset": "approvals", "brands": ["acme"]}]},
        paused=True,
    )
    record(client, meta, now - timedelta(hours=3))  # thumbs warn, old stale
    record(client, meta, now - timedelta(minutes=1), error="HTTP 401 from Meta")
    client.store.set_datasets_retired([("acme", "gone")], now, now)
    asked = ["ads", "thumbs", "old", "reviews", "approvals"]

    document = rpc(supabase_project, "service_role", p_brand_id="acme", p_datasets=asked)
    python = client.check("acme", asked)
    assert states(document) == {d.dataset: d.state for d in python.datasets}
    assert states(document) == {
        "ads": "fresh",
        "thumbs": "warn",
        "old": "stale",
        "reviews": "never",
        "approvals": "never",
    }
    assert document["ok"] is python.ok is False
    assert document["failures"] == ["approvals", "old", "reviews"]
    old = next(d for d in document["datasets"] if d["dataset"] == "old")
    assert old["last_attempt_failed"] is True
    assert old["last_error"] == "HTTP 401 from Meta"  # the service role sees errors
    assert old["error_after_seconds"] == 7200

    fresh_only = rpc(supabase_project, "service_role", p_brand_id="acme", p_datasets=["ads"])
    assert (fresh_only["ok"], fresh_only["failures"]) == (True, [])
    warn = rpc(supabase_project, "service_role", p_brand_id="acme", p_datasets=["thumbs"])
    assert warn["ok"] is True
    strict = rpc(
        supabase_project, "service_role", p_brand_id="acme", p_datasets=["thumbs"], p_strict=True
    )
    assert strict["ok"] is False
    # Names nothing declares, retired ones and an empty list never pass.
    odd = rpc(supabase_project, "service_role", p_brand_id="acme", p_datasets=["ads_perf", "gone"])
    assert states(odd) == {"ads_perf": "unknown", "gone": "retired"}
    assert odd["ok"] is False
    assert (
        rpc(supabase_project, "service_role", p_brand_id="globx", p_datasets=["ads"])["ok"] is False
    )
    assert rpc(supabase_project, "service_role", p_brand_id="acme", p_datasets=[])["ok"] is False


def test_granted_to_authenticated_it_shows_states_and_timestamps_only(
    client: Client, supabase_project: SupabaseProject
) -> None:
    from postgrest.exceptions import APIError

    meta = client.add_job("noop", "0 3 * * *", brand_id="acme", parameters={"datasets": ["ads"]})
    record(client, meta, datetime.now(UTC), error="secret token leaked in an error")
    for role in ("authenticated", "anon"):
        with pytest.raises(APIError) as refused:
            rpc(supabase_project, role, p_brand_id="acme", p_datasets=["ads"])
        assert refused.value.code == "42501"

    with psycopg.connect(supabase_project.dsn, autocommit=True) as owner:
        owner.execute(full_sql("postgres", grant_gate_to=["authenticated"]))

    document = rpc(supabase_project, "authenticated", p_brand_id="acme", p_datasets=["ads"])
    (ads,) = document["datasets"]
    assert set(ads) == {
        "dataset",
        "state",
        "last_success_at",
        "last_attempt_at",
        "last_attempt_failed",
    }
    assert (ads["state"], ads["last_attempt_failed"]) == ("never", True)
    assert "secret" not in str(document)
    with pytest.raises(APIError) as still_refused:
        rpc(supabase_project, "anon", p_brand_id="acme", p_datasets=["ads"])
    assert still_refused.value.code == "42501"
    # Its owner's rights let it read; the role itself still reads no table.
    with psycopg.connect(supabase_project.dsn) as conn:
        conn.execute("SET ROLE authenticated")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM dataset_status")
