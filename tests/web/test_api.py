"""The HTTP API (issue 16), every endpoint on SQLite and PostgreSQL: the CLI's documents, its
validation (4xx with one message, nothing written), and the auth rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from helpers_web import ACME, NEWCO, OPS, READ, TOKENS, Seed, bearer
from procs import pipectl

from pipectl.client import Client
from pipectl.clock import Clock
from pipectl.documents import jobs_json, status_json
from pipectl.json_text import dumps
from pipectl.schedule import next_occurrence
from pipectl.settings import load_settings

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

READS = [
    "/api/status",
    "/api/ready",
    "/api/freshness",
    "/api/jobs",
    "/api/jobs/1",
    "/api/runs",
    "/api/runs/1",
]
ACTIONS = ["/api/jobs/1/run", "/api/jobs/1/pause", "/api/jobs/1/resume", "/api/runs/1/cancel"]


def jobs_table(store: Client) -> list[dict[str, Any]]:
    return [job.to_json() for job in store.list_jobs()]


# -- auth ---------------------------------------------------------------------------------------


def test_healthz_answers_without_a_token(api: Any) -> None:
    assert api.get("/healthz").json() == {"ok": True}


@pytest.mark.parametrize("path", [*READS, *ACTIONS, "/api/enqueue"])
def test_every_endpoint_but_healthz_answers_401_without_a_valid_token(
    api: Any, seeded: Seed, store: Client, path: str
) -> None:
    before = jobs_table(store)
    send = api.post if path in ACTIONS or path == "/api/enqueue" else api.get
    for headers in ({}, bearer("wrong-token-0123456789abcdef"), {"Authorization": OPS}):
        response = send(path, headers=headers)
        assert response.status_code == 401, (path, headers)
        assert response.headers["www-authenticate"] == "Bearer"
        assert set(response.json()) == {"error"}
    assert jobs_table(store) == before


def test_a_read_token_reads_everything_and_gets_403_on_every_action(
    api: Any, seeded: Seed, store: Client
) -> None:
    for path in READS:
        assert api.get(path, headers=bearer(READ)).status_code in (200, 503), path
    before = jobs_table(store)
    for path in ACTIONS:
        response = api.post(path, headers=bearer(READ))
        assert response.status_code == 403
        assert response.json() == {"error": "token 'viewer' has scope read; actions need operate"}
    enqueue = api.post("/api/enqueue", headers=bearer(READ), json={"job_type": "noop"})
    assert enqueue.status_code == 403
    assert jobs_table(store) == before


def test_a_brand_scoped_token_never_sees_another_brand_not_even_by_guessing_ids(
    api: Any, seeded: Seed, store: Client
) -> None:
    acme = bearer(ACME)
    assert {j["brand_id"] for j in api.get("/api/jobs", headers=acme).json()} == {"acme"}
    assert {r["job_id"] for r in api.get("/api/runs", headers=acme).json()} == {seeded.acme_job}
    status = api.get("/api/status", headers=acme).json()
    assert {d["brand_id"] for d in status["datasets"]} == {"acme"}
    assert {j["brand_id"] for j in status["jobs"]} == {"acme"}
    assert {d["brand_id"] for d in api.get("/api/freshness", headers=acme).json()} == {"acme"}
    # Another brand's ids and name answer exactly as ids and names that do not exist.
    assert api.get(f"/api/jobs/{seeded.globex_job}", headers=acme).json() == {
        "error": f"no job with id {seeded.globex_job}"
    }
    assert api.get(f"/api/runs/{seeded.globex_run}", headers=acme).json() == {
        "error": f"no run with id {seeded.globex_run}"
    }
    for path in (
        "/api/status?brand=globex",
        "/api/ready?brand=globex",
        "/api/freshness?brand=globex",
        "/api/jobs?brand=globex",
        "/api/runs?brand=globex",
        f"/api/runs?job={seeded.globex_job}",
    ):
        assert api.get(path, headers=acme).status_code == 404, path
    before = jobs_table(store)
    for action in ("run", "pause", "resume"):
        response = api.post(f"/api/jobs/{seeded.globex_job}/{action}", headers=acme)
        assert response.status_code == 404
    response = api.post(
        "/api/enqueue", headers=acme, json={"job_type": "noop", "brand_id": "globex"}
    )
    assert response.status_code == 403
    global_job = api.post("/api/enqueue", headers=acme, json={"job_type": "noop"})
    assert global_job.status_code == 403
    assert jobs_table(store) == before
    # Its own brand, not known to the store yet: unknown, without naming the brands that are.
    for path in ("/api/status", "/api/ready", "/api/freshness", "/api/jobs", "/api/runs"):
        response = api.get(f"{path}?brand=newco", headers=bearer(NEWCO))
        assert response.json() == {"error": "unknown brand 'newco'"}, path
    assert (
        api.get("/api/jobs?brand=newco", headers=bearer(OPS))
        .json()["error"]
        .startswith("unknown brand 'newco' (known brands")
    )
    assert {j["brand_id"] for j in api.get("/api/jobs", headers=bearer(NEWCO)).json()} == {"acme"}
    # Its own brand: it acts.
    assert api.post(f"/api/jobs/{seeded.acme_job}/pause", headers=acme).json()["status"] == "paused"
    created = api.post("/api/enqueue", headers=acme, json={"job_type": "noop", "brand_id": "acme"})
    assert created.status_code == 201


# -- reads ----------------------------------------------------------------------------------------


def test_status_ready_and_freshness_are_the_cli_documents(
    api: Any, seeded: Seed, store: Client, url: str
) -> None:
    with freeze_time(NOW + timedelta(days=1), tick=False):
        for query, brands, datasets in (
            ("", [], []),
            ("?brand=acme", ["acme"], []),
            ("?brand=acme&brand=globex", ["acme", "globex"], []),
            ("?dataset=reviews", [], ["reviews"]),
        ):
            report = store.gate_status(brands, datasets)
            expected = json.loads(dumps(status_json(report, report.gate())))
            assert api.get(f"/api/status{query}", headers=bearer(OPS)).json() == expected
            assert api.get(f"/api/freshness{query}", headers=bearer(OPS)).json() == [
                d.to_json() for d in report.datasets
            ]
        strict = store.gate_status(["globex"], [])
        expected = status_json(strict, strict.gate(strict=True, require_worker=True))
        got = api.get("/api/status?brand=globex&strict=1&require_worker=true", headers=bearer(OPS))
        assert got.json() == json.loads(dumps(expected))
    # The CLI itself, in its own process: the same fields, the same verdict.
    cli = json.loads(pipectl(url, "status", "--json", "--brand", "acme").stdout)
    served = api.get("/api/status?brand=acme", headers=bearer(OPS)).json()
    assert served.keys() == cli.keys()
    assert served["failures"][0].keys() == cli["failures"][0].keys()
    assert [(j["id"], j["status"]) for j in served["jobs"]] == [
        (j["id"], j["status"]) for j in cli["jobs"]
    ]


def test_ready_is_the_gate_200_or_503_and_400_for_an_unknown_name(api: Any, seeded: Seed) -> None:
    failing = api.get("/api/ready?brand=acme&dataset=ads_performance", headers=bearer(OPS))
    assert failing.status_code == 503
    assert failing.json()["ok"] is False
    assert failing.json()["failures"][0]["reason"].startswith("acme/ads_performance: stale")
    passing = api.get("/api/ready?brand=globex&dataset=reviews", headers=bearer(OPS))
    assert passing.status_code == 200
    assert passing.json()["ok"] is True
    assert api.get("/api/ready", headers=bearer(OPS)).status_code == 503
    unknown = api.get("/api/ready?brand=acmee", headers=bearer(OPS))
    assert unknown.status_code == 400
    assert unknown.json()["error"].startswith("unknown brand 'acmee'")
    unknown_dataset = api.get("/api/ready?brand=globex&dataset=nope", headers=bearer(OPS))
    assert unknown_dataset.status_code == 400
    assert "nope" in unknown_dataset.json()["error"]


def test_jobs_and_one_job_are_the_cli_documents(api: Any, seeded: Seed, store: Client) -> None:
    jobs = store.list_jobs()
    assert api.get("/api/jobs", headers=bearer(OPS)).json() == jobs_json(jobs, store.waiting(jobs))
    acme = api.get("/api/jobs?brand=acme&status=active&type=noop", headers=bearer(OPS)).json()
    assert [j["id"] for j in acme] == [seeded.acme_job]
    assert api.get("/api/jobs?limit=1", headers=bearer(OPS)).json()[0]["id"] == seeded.acme_job
    one = api.get(f"/api/jobs/{seeded.acme_job}", headers=bearer(OPS)).json()
    assert one == {
        **store.get_job(seeded.acme_job).to_json(),
        "runs": [r.to_json() for r in store.list_runs(job_id=seeded.acme_job, limit=10)],
    }
    for path, code, message in (
        ("/api/jobs/999", 404, "no job with id 999"),
        ("/api/jobs?status=bogus", 400, "unknown status 'bogus'"),
        ("/api/jobs?brand=nobody", 400, "unknown brand 'nobody'"),
        ("/api/jobs/0", 400, "path.job_id: "),
        ("/api/jobs/abc", 400, "path.job_id: "),
    ):
        response = api.get(path, headers=bearer(OPS))
        assert response.status_code == code, path
        assert response.json()["error"].startswith(message), response.json()


def test_runs_and_one_run_with_its_steps_and_logs(api: Any, seeded: Seed, store: Client) -> None:
    failed = api.get(
        f"/api/runs?job={seeded.acme_job}&brand=acme&status=failed", headers=bearer(OPS)
    ).json()
    assert [r["id"] for r in failed] == [seeded.failed_run]
    assert "logs" not in failed[0]
    assert len(api.get("/api/runs?limit=2", headers=bearer(OPS)).json()) == 2
    run = api.get(f"/api/runs/{seeded.failed_run}", headers=bearer(OPS)).json()
    assert run == json.loads(json.dumps(store.get_run(seeded.failed_run).to_json(with_logs=True)))
    assert [s["name"] for s in run["steps"]] == ["fetch", "load"]
    assert run["error_message"] == "step load failed: HTTP 401 from Meta"
    assert run["logs"] == "run of meta acme\n"
    for path, code in (
        ("/api/runs/999", 404),
        ("/api/runs?status=bogus", 400),
        ("/api/runs?job=999", 404),
        ("/api/runs?limit=0", 400),
    ):
        assert api.get(path, headers=bearer(OPS)).status_code == code, path


# -- actions -------------------------------------------------------------------------------------


def test_enqueue_is_the_cli_enqueue_with_its_dedupe(api: Any, store: Client) -> None:
    body = {"job_type": "noop", "brand_id": "acme", "parameters": {"since": "2026-11-01"}}
    first = api.post("/api/enqueue", headers=bearer(OPS), json=body)
    assert first.status_code == 201
    assert first.json()["created"] is True
    assert first.json()["schedule_type"] == "one_time"
    again = api.post("/api/enqueue", headers=bearer(OPS), json=body)
    assert again.status_code == 200
    assert again.json() == {**first.json(), "created": False}
    assert first.json()["rearmed"] is False
    forced = api.post("/api/enqueue", headers=bearer(OPS), json={**body, "allow_duplicate": True})
    assert forced.status_code == 201
    assert forced.json()["id"] != first.json()["id"]
    later = api.post(
        "/api/enqueue",
        headers=bearer(OPS),
        json={
            "job_type": "noop",
            "brand_id": "globex",
            "run_in": "10m",
            "timeout": "30m",
            "max_retries": 0,
            "no_concurrency_key": True,
            "name": "manual",
        },
    ).json()
    assert later["timeout_seconds"] == 1800
    assert later["concurrency_key"] is None
    assert later["max_retries"] == 0
    assert datetime.fromisoformat(later["next_run_at"]) > datetime.now(UTC) + timedelta(minutes=9)
    # A manual sync means now: the same request without a delay brings that pending job forward.
    now = api.post(
        "/api/enqueue",
        headers=bearer(OPS),
        json={
            "job_type": "noop",
            "brand_id": "globex",
            "timeout": "30m",
            "max_retries": 0,
            "no_concurrency_key": True,
            "name": "manual",
        },
    )
    assert now.status_code == 200
    assert (now.json()["id"], now.json()["created"], now.json()["rearmed"]) == (
        later["id"],
        False,
        True,
    )
    assert datetime.fromisoformat(now.json()["next_run_at"]) <= datetime.now(UTC)


class StoppedClock(Clock):
    """Always 2031-05-04 03:02: far from the real now, so no read of the system clock passes."""

    def now(self) -> datetime:
        return datetime(2031, 5, 4, 3, 2, tzinfo=UTC)


def test_enqueue_reads_now_from_the_apps_clock(url: str) -> None:
    """`run_in` and `run_at: now` count from the clock the app was given, as its Client does."""
    from fastapi.testclient import TestClient

    from pipectl.web.app import create_app

    clock = StoppedClock()
    app = create_app(load_settings(database_url=url, api_tokens=TOKENS), clock=clock)
    with TestClient(app, base_url="http://127.0.0.1:8000") as api:
        later = api.post(
            "/api/enqueue",
            headers=bearer(OPS),
            json={"job_type": "noop", "brand_id": "acme", "run_in": "10m"},
        ).json()
        now = api.post(
            "/api/enqueue",
            headers=bearer(OPS),
            json={"job_type": "noop", "brand_id": "globex", "run_at": "now"},
        ).json()
    assert datetime.fromisoformat(later["next_run_at"]) == clock.now() + timedelta(minutes=10)
    assert datetime.fromisoformat(later["created_at"]) == clock.now()
    assert datetime.fromisoformat(now["next_run_at"]) == clock.now()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"job_type": "nope"}, "unknown job type 'nope'"),
        ({"job_type": "noop", "parameters": {"datasets": 5}}, "parameter 'datasets'"),
        ({"job_type": "noop", "run_at": "tomorrow"}, "invalid time 'tomorrow'"),
        ({"job_type": "noop", "run_at": "now", "run_in": "1m"}, "give run_at or run_in"),
        ({"job_type": "noop", "timeout": "soon"}, "invalid duration"),
        ({"job_type": "noop", "max_retries": 101}, "max_retries: "),
        ({"job_type": "noop", "colour": "red"}, "colour: "),
        (
            {"job_type": "noop", "concurrency_key": "k", "no_concurrency_key": True},
            "give concurrency_key or no_concurrency_key, not both",
        ),
        ({"brand_id": "acme"}, "job_type: "),
        ({"job_type": "noop", "brand_id": "a\u0000b"}, "brand 'a\\x00b' contains control"),
        ([1, 2], ""),
    ],
)
def test_enqueue_bad_input_is_400_with_one_message_and_nothing_written(
    api: Any, store: Client, body: Any, message: str
) -> None:
    response = api.post("/api/enqueue", headers=bearer(OPS), json=body)
    assert response.status_code == 400
    (error,) = response.json().values()
    assert error.startswith(message) or message in error, error
    assert "\n" not in error
    assert store.list_jobs() == []
    malformed = api.post(
        "/api/enqueue", headers={**bearer(OPS), "Content-Type": "application/json"}, content="{"
    )
    assert malformed.status_code == 400
    assert store.list_jobs() == []


def test_run_now_runs_a_recurring_job_at_the_next_poll_and_it_keeps_its_cron(
    api: Any, seeded: Seed, store: Client
) -> None:
    store.pause(seeded.globex_job)  # the only job due is then the one run now
    now = datetime.now(UTC).replace(microsecond=0)
    with freeze_time(now):
        job = api.post(f"/api/jobs/{seeded.acme_job}/run", headers=bearer(OPS)).json()
        assert job["next_run_at"] == now.isoformat()
        assert job["cron_expression"] == "0 3 * * *"
        (claim,) = store.store.claim_due("w", now, 5)
    assert claim.job.id == seeded.acme_job
    later = now + timedelta(seconds=3)
    from pipectl.lifecycle import run_result

    store.store.finish_run(
        claim.run.id, claim.run.lease_token, run_result(claim.job, later, error=None)
    )
    after = store.get_job(seeded.acme_job)
    assert after.status == "active"
    assert after.schedule_type == "recurring"
    assert after.next_run_at == next_occurrence("0 3 * * *", "UTC", later)


def test_run_now_a_failed_one_time_job_gives_it_a_fresh_budget(api: Any, store: Client) -> None:
    job = store.enqueue("noop", "acme", max_retries=0)
    (claim,) = store.store.claim_due("w", datetime.now(UTC), 5)
    from pipectl.lifecycle import run_result

    store.store.finish_run(
        claim.run.id, claim.run.lease_token, run_result(claim.job, datetime.now(UTC), error="boom")
    )
    assert store.get_job(job.id).status == "failed"
    rearmed = api.post(f"/api/jobs/{job.id}/run", headers=bearer(OPS)).json()
    assert (rearmed["status"], rearmed["retry_count"]) == ("active", 0)


def test_pause_resume_and_refusals_write_nothing(api: Any, seeded: Seed, store: Client) -> None:
    path = f"/api/jobs/{seeded.acme_job}"
    assert api.post(f"{path}/pause", headers=bearer(OPS)).json()["status"] == "paused"
    before = jobs_table(store)
    for action, verb in (("pause", "paused"), ("run", "run now")):
        refused = api.post(f"{path}/{action}", headers=bearer(OPS))
        assert refused.status_code == 400
        assert refused.json() == {"error": f"job {seeded.acme_job} is paused and cannot be {verb}"}
    assert jobs_table(store) == before
    resumed = api.post(f"{path}/resume", headers=bearer(OPS)).json()
    assert resumed["status"] == "active"
    assert api.post(f"{path}/resume", headers=bearer(OPS)).status_code == 400
    assert api.post("/api/jobs/999/pause", headers=bearer(OPS)).status_code == 404


def test_cancel_asks_the_worker_holding_a_running_run_to_stop_it(
    api: Any, seeded: Seed, store: Client
) -> None:
    store.pause(seeded.acme_job)
    store.pause(seeded.globex_job)
    job = store.enqueue("sleep", "acme", {"seconds": 60})
    (claim,) = store.store.claim_due("w", datetime.now(UTC), 5)
    assert claim.job.id == job.id
    path = f"/api/runs/{claim.run.id}/cancel"
    asked = api.post(path, headers=bearer(OPS)).json()
    assert asked["id"] == claim.run.id and asked["status"] == "running"
    assert asked["cancel_requested_by"] == "api token ops"
    assert store.get_run(claim.run.id).cancel_requested_at is not None
    finished = api.post(f"/api/runs/{seeded.failed_run}/cancel", headers=bearer(OPS))
    assert finished.status_code == 400
    assert finished.json()["error"].endswith("only a running run can be cancelled")
    assert api.post("/api/runs/999999/cancel", headers=bearer(OPS)).status_code == 404


def test_a_brand_scoped_token_cannot_cancel_another_brands_run(
    api: Any, seeded: Seed, store: Client
) -> None:
    response = api.post(f"/api/runs/{seeded.globex_run}/cancel", headers=bearer(ACME))
    assert response.json() == {"error": f"no run with id {seeded.globex_run}"}
    assert response.status_code == 404


def test_the_openapi_document_lists_every_endpoint(api: Any) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert set(paths) == {
        "/api/status",
        "/api/ready",
        "/api/freshness",
        "/api/jobs",
        "/api/jobs/{job_id}",
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/enqueue",
        "/api/jobs/{job_id}/run",
        "/api/jobs/{job_id}/pause",
        "/api/jobs/{job_id}/resume",
        "/api/runs/{run_id}/cancel",
    }
