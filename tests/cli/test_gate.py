"""The readiness gate end to end (issue 13): `status --check` and its options, unknown names,
which datasets count, the reasons, the scheduler check, `doctor`, and retiring datasets and
brands — each on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from pipectl.client import Client
from pipectl.lifecycle import run_result
from pipectl.models import Job, RunHold, WorkerInfo
from pipectl.parsing import parse_duration

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def url(both_url: str) -> str:
    """A migrated store on SQLite, then on PostgreSQL (tests/conftest.py)."""
    return both_url


@pytest.fixture
def client(url: str) -> Iterator[Client]:
    with Client.from_url(url) as opened:
        yield opened


Run = Callable[..., Any]


@pytest.fixture
def run(url: str, invoke: Run) -> Run:
    """`pipectl ARGS…` against this test's store, through the real entry point."""
    return lambda *args: invoke("--database-url", url, *args)


def job(client: Client, brand: str | None, parameters: dict[str, Any], **options: Any) -> Job:
    return client.add_job("noop", "0 3 * * *", brand_id=brand, parameters=parameters, **options)


def record(
    client: Client, target: Job, at: datetime, *, error: str | None = None, steps: Any = None
) -> None:
    """Run `target` once as if a worker had, finishing at `at` (its datasets take the outcome)."""
    client.store.update_job(target.id, {"next_run_at": at - timedelta(days=3650)}, at)
    (claim,) = client.store.claim_due("test-worker", at, 1)
    assert claim.job.id == target.id
    result = run_result(claim.job, at, error=error, steps=steps)
    assert client.store.finish_run(claim.run.id, claim.run.lease_token, result)


def live_worker(client: Client, seen: datetime) -> None:
    client.store.register_worker(WorkerInfo("w1", "host", 1, seen, seen, "test"))


# -- unknown names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["status", "--check"],
        ["status"],
        ["jobs", "list"],
        ["retry"],
        ["runs"],
        ["datasets", "list"],
    ],
)
def test_an_unknown_brand_exits_2_naming_it_and_the_known_ones_closest_first(
    url: str, client: Client, command: list[str], run: Run
) -> None:
    for brand in ("acme", "globex", "initech"):
        job(client, brand, {"datasets": ["ads"]})
    result = run(*command, "--brand", "globx")
    result.assert_pipectl_error(2)
    assert "unknown brand 'globx'" in result.stderr
    assert "closest first: globex, " in result.stderr  # globex before acme and initech
    assert run(*command, "--brand", "globex").exit_code in (0, 1)


def test_a_brand_known_only_by_a_threshold_or_an_archived_job_is_known(
    url: str, client: Client, run: Run
) -> None:
    client.set_threshold("ads", timedelta(hours=1), timedelta(hours=2), brand_id="acme")
    client.archive(job(client, "globex", {}).id)
    assert run("jobs", "list", "--brand", "acme").exit_code == 0
    assert run("jobs", "list", "--brand", "globex").exit_code == 0
    run("jobs", "list", "--brand", "initech").assert_pipectl_error(2)


def test_an_unknown_dataset_for_the_selected_brand_exits_2(
    url: str, client: Client, run: Run
) -> None:
    job(client, "acme", {"datasets": ["ads_performance", "reviews"]})
    job(client, "globex", {"datasets": ["orders"]})
    result = run("status", "--check", "--brand", "acme", "--dataset", "ads_perf")
    result.assert_pipectl_error(2)
    assert "unknown dataset 'ads_perf'" in result.stderr
    assert "for brand acme, closest first: ads_performance, reviews" in result.stderr
    # orders counts for globex, not for acme.
    run("status", "--check", "--brand", "acme", "--dataset", "orders").assert_pipectl_error(2)
    assert run("status", "--check", "--dataset", "orders").exit_code == 1  # never, known


# -- which datasets count ---------------------------------------------------------------------


def test_declared_datasets_count_as_never_before_their_first_run(
    url: str, client: Client, run: Run
) -> None:
    job(client, "acme", {"datasets": ["ads_performance"]})
    job(
        client,
        "globex",
        {"steps": [{"name": "thumbnails", "datasets": ["creative_thumbnails"]}]},
    )
    job(client, "initech", {"datasets": "weekly_rollup"}, paused=True)
    client.set_threshold("orders", timedelta(hours=1), timedelta(hours=2), brand_id="umbrella")
    result = run("status", "--check")
    assert result.exit_code == 1
    assert result.stderr_lines[-5:] == [
        "acme/ads_performance: never — no success yet; never attempted",
        "globex/creative_thumbnails: never — no success yet; never attempted",
        "initech/weekly_rollup: never — no success yet; never attempted",
        "umbrella/orders: never — no success yet; never attempted",
        "gate failed: 4 failing of 4 datasets (0 fresh, 0 warn, 0 stale, 4 never)",
    ]
    # The paused job's dataset still counts: paused data goes stale.
    assert run("status", "--check", "--brand", "initech").exit_code == 1


def test_a_global_job_reporting_per_brand_leaves_no_global_row_that_never_turns_fresh(
    url: str, client: Client
) -> None:
    named = job(
        client, None, {"datasets": [{"dataset": "approvals", "brands": ["acme", "globex"]}]}
    )
    job(client, "acme", {})
    job(client, "globex", {})
    before = client.check()
    assert sorted((d.brand_id, d.dataset) for d in before.datasets) == [
        ("acme", "approvals"),
        ("globex", "approvals"),
    ]
    # The brand's own gate sees the global job's declaration for it.
    assert [d.dataset for d in client.check("acme").datasets] == ["approvals"]
    # A failed run records the failure for the brands named, not a global row.
    record(client, named, datetime.now(UTC), error="API down")
    assert client.store.dataset_status("approvals", None) is None
    assert client.freshness("approvals", "acme").last_attempt_failed

    # Without brands named: the brands it reported count, and a global row of a failed run
    # before the first per-brand report stops counting once they exist.
    reporter = job(client, None, {"datasets": ["reviews"]})
    record(client, reporter, datetime.now(UTC), error="boom before any step")
    assert ("global", "reviews") in {
        (d.brand_id or "global", d.dataset) for d in client.check().datasets
    }
    steps = [
        {
            "name": f"reviews {b}",
            "status": "completed",
            "datasets": ["reviews"],
            "brand_id": b,
            "fatal": True,
            "error": None,
        }
        for b in ("acme", "globex")
    ]
    record(client, reporter, datetime.now(UTC), steps=steps)
    keys = {(d.brand_id, d.dataset) for d in client.check().datasets}
    assert (None, "reviews") not in keys
    assert {("acme", "reviews"), ("globex", "reviews")} <= keys
    assert client.check(datasets="reviews").ok


# -- verdicts, reasons, JSON ------------------------------------------------------------------


def test_the_reason_line_says_why_in_plain_words(url: str, client: Client, run: Run) -> None:
    client.set_threshold("ads_performance", parse_duration("6h"), parse_duration("1d"))
    meta = job(client, "acme", {"datasets": ["ads_performance"]})
    record(client, meta, NOW - timedelta(days=2, hours=3))
    record(client, meta, NOW - timedelta(minutes=20), error="HTTP 401 from Meta")
    with freeze_time(NOW):
        result = run("status", "--check", "--brand", "acme", "--dataset", "ads_performance")
    assert result.exit_code == 1
    assert result.stderr_lines[-2:] == [
        "acme/ads_performance: stale — last success 2d 3h ago (error after 1d); "
        "last attempt 20m ago failed: HTTP 401 from Meta",
        "gate failed: 1 failing of 1 dataset (0 fresh, 0 warn, 1 stale, 0 never)",
    ]
    with freeze_time(NOW):
        document = run("status", "--check", "--json", "--brand", "acme").json()
    assert document["ok"] is False
    (failure,) = document["failures"]
    assert failure["kind"] == "dataset"
    assert failure["state"] == "stale"
    assert failure["reason"].startswith("acme/ads_performance: stale — last success 2d 3h ago")
    assert failure["last_error"] == "HTTP 401 from Meta"
    assert failure["last_success_at"] == (NOW - timedelta(days=2, hours=3)).isoformat()
    assert document["counts"] == {"fresh": 0, "warn": 0, "stale": 1, "never": 0}


def test_warn_passes_unless_strict_and_only_selected_datasets_count(
    url: str, client: Client, run: Run
) -> None:
    client.set_threshold("thumbnails", parse_duration("1h"), parse_duration("1d"))
    meta = job(client, "acme", {"datasets": ["ads_performance", "thumbnails"]})
    record(client, meta, NOW - timedelta(hours=2))
    with freeze_time(NOW):
        passed = run("status", "--check", "--brand", "acme")
        strict = run("status", "--check", "--brand", "acme", "--strict")
        only_ads = run("status", "--check", "--strict", "-b", "acme", "-d", "ads_performance")
    assert passed.exit_code == 0
    assert passed.stderr_lines[-1] == "gate passed: 2 datasets (1 fresh, 1 warn, 0 stale, 0 never)"
    assert strict.exit_code == 1
    assert strict.stderr_lines[-2].startswith("acme/thumbnails: warn — last success 2h ago")
    assert "(warn after 1h)" in strict.stderr_lines[-2]
    assert only_ads.exit_code == 0  # the thumbnails warning does not block the ads page


def test_several_brands_and_datasets(url: str, client: Client, run: Run) -> None:
    a = job(client, "acme", {"datasets": ["ads"]})
    job(client, "globex", {"datasets": ["ads"]})
    job(client, "initech", {"datasets": ["ads"]})
    record(client, a, datetime.now(UTC))
    assert run("status", "--check", "-b", "acme").exit_code == 0
    both = run("status", "--check", "--json", "-b", "acme", "-b", "globex")
    assert both.exit_code == 1
    assert [f["brand_id"] for f in both.json()["failures"]] == ["globex"]
    assert {d["brand_id"] for d in both.json()["datasets"]} == {"acme", "globex"}


def test_reasons_reach_stderr_when_output_is_redirected(url: str, client: Client, run: Run) -> None:
    job(client, "acme", {"datasets": ["ads"]})
    result = subprocess.run(
        [sys.executable, "-m", "pipectl", "--database-url", url, "status", "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "acme/ads: never — no success yet; never attempted" in result.stderr.splitlines()
    assert result.stderr.splitlines()[-1].startswith("gate failed: 1 failing of 1 dataset")


# -- the scheduler ----------------------------------------------------------------------------


def test_require_worker_fails_without_a_live_worker_while_jobs_are_due(
    url: str, client: Client, run: Run
) -> None:
    now = datetime.now(UTC)
    ads = job(client, "acme", {"datasets": ["ads"]})
    record(client, ads, now)
    assert run("status", "--check", "--require-worker").exit_code == 0  # nothing due
    client.store.update_job(ads.id, {"next_run_at": now - timedelta(minutes=1)}, now)
    assert run("status", "--check").exit_code == 0  # data fresh; the scheduler not asked
    dead = run("status", "--check", "--require-worker")
    assert dead.exit_code == 1
    assert dead.stderr_lines[-2] == (
        "scheduler: no live worker (none has ever registered) while 1 job is due"
    )
    doctor = run("doctor", "--json")
    assert doctor.exit_code == 1
    checks = {c["name"]: c for c in doctor.json()["checks"]}
    assert checks["workers"]["level"] == "fail"

    live_worker(client, datetime.now(UTC))
    assert run("status", "--check", "--require-worker").exit_code == 0
    assert run("doctor").exit_code == 0
    stale_worker = datetime.now(UTC) - timedelta(hours=1)
    live_worker(client, stale_worker)
    gone = run("status", "--check", "--require-worker", "--json")
    assert gone.exit_code == 1
    (failure,) = gone.json()["failures"]
    assert failure["kind"] == "no_live_worker"
    assert "the last was seen 1h" in failure["reason"]


def test_require_worker_and_doctor_fail_on_a_stuck_run(url: str, client: Client, run: Run) -> None:
    now = datetime.now(UTC)
    live_worker(client, now)
    ads = job(client, "acme", {"datasets": ["ads"]})
    record(client, ads, now)
    client.store.update_job(ads.id, {"next_run_at": now - timedelta(hours=2)}, now)
    client.store.claim_due("w1", now - timedelta(hours=1), 1)  # a run that never heartbeated
    assert run("status", "--check").exit_code == 0
    stuck = run("status", "--check", "--require-worker")
    assert stuck.exit_code == 1
    assert stuck.stderr_lines[-2].startswith("scheduler: 1 stuck run without a heartbeat (")
    doctor = run("doctor", "--json")
    assert doctor.exit_code == 1
    assert {c["name"]: c["level"] for c in doctor.json()["checks"]}["stuck runs"] == "fail"


def test_strict_and_require_worker_need_check(url: str, run: Run) -> None:
    run("status", "--strict").assert_pipectl_error(2)
    run("status", "--require-worker").assert_pipectl_error(2)


# -- retiring datasets and brands -------------------------------------------------------------


def test_retiring_a_dataset_takes_it_out_of_the_gate_and_keeps_its_history(
    url: str, client: Client, run: Run
) -> None:
    meta = job(
        client, "acme", {"datasets": ["ads"], "steps": [{"name": "t", "datasets": ["thumbs"]}]}
    )
    record(client, meta, datetime.now(UTC))
    assert run("status", "--check", "-b", "acme").exit_code == 1  # thumbs: never
    retired = run("datasets", "retire", "thumbs", "--brand", "acme", "--json")
    assert retired.assert_ok().json() == [{"brand_id": "acme", "dataset": "thumbs"}]
    assert run("status", "--check", "-b", "acme").exit_code == 0
    assert "thumbs" not in run("status").stdout
    assert [d["dataset"] for d in run("datasets", "list", "--json").json()] == ["ads"]
    everything = {d["dataset"]: d for d in run("datasets", "list", "--all", "--json").json()}
    assert everything["thumbs"]["retired"] is True and everything["ads"]["retired"] is False
    asked = run("status", "--check", "-b", "acme", "-d", "thumbs")
    asked.assert_pipectl_error(2)
    assert "is retired" in asked.stderr
    # The job still declares it: doctor warns.
    doctor = run("doctor", "--json").json()
    check = {c["name"]: c for c in doctor["checks"]}["retired datasets"]
    assert check["level"] == "warn" and "acme/thumbs" in check["detail"]
    # History kept: ads retired and restored keeps its last success.
    before = client.freshness("ads", "acme")
    run("datasets", "retire", "ads").assert_ok()
    run("datasets", "retire", "ads").assert_pipectl_error(2)  # already retired
    run("datasets", "restore", "ads").assert_ok()
    after = client.freshness("ads", "acme")
    assert (after.last_success_at, after.state) == (before.last_success_at, "fresh")
    run("datasets", "restore", "thumbs", "-b", "acme").assert_ok()
    assert run("status", "--check", "-b", "acme").exit_code == 1
    run("datasets", "restore", "thumbs", "-b", "acme").assert_pipectl_error(2)
    run("datasets", "retire", "nope").assert_pipectl_error(2)


def test_datasets_unset_removes_a_threshold(url: str, client: Client, run: Run) -> None:
    job(client, "acme", {"datasets": ["ads"]})
    run("datasets", "set", "ads", "--warn-after", "1h", "--error-after", "2h", "-b", "acme")
    assert client.freshness("ads", "acme").warn_after == timedelta(hours=1)
    run("datasets", "unset", "ads", "--brand", "acme").assert_ok()
    assert client.freshness("ads", "acme").warn_after == timedelta(hours=24)
    run("datasets", "unset", "ads", "--brand", "acme").assert_pipectl_error(2)
    run("datasets", "unset", "ads", "--brand", "acmee").assert_pipectl_error(2)


def test_retiring_a_brand_asks_then_archives_and_retires_and_restore_undoes_it(
    url: str, client: Client, run: Run
) -> None:
    keep = job(client, "acme", {"datasets": ["ads"]})
    paused = job(client, "initech", {"datasets": ["orders"]}, paused=True)
    active = job(client, "initech", {"datasets": ["rollup"]})
    declined = subprocess.run(
        [sys.executable, "-m", "pipectl", "--database-url", url, "brands", "retire", "initech"],
        input="n\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert declined.returncode == 1
    assert f"archives 2 job(s): {paused.id} noop initech, {active.id} noop initech" in (
        declined.stderr
    )
    assert "retires 2 dataset(s): orders, rollup" in declined.stderr
    assert client.get_job(active.id).status == "active"  # nothing changed

    listed = {b["brand_id"]: b for b in run("brands", "list", "--json").json()}
    assert listed["initech"] == {
        "brand_id": "initech",
        "live_jobs": 2,
        "datasets": 2,
        "failing": 2,
        "retired": False,
        "retired_at": None,
    }
    done = run("brands", "retire", "initech", "--yes", "--json").assert_ok().json()
    assert done["archived_jobs"] == [paused.id, active.id]
    assert client.get_job(paused.id).status == "archived"
    assert client.get_job(keep.id).status == "active"
    assert run("status", "--check").exit_code == 1  # acme/ads never; initech left the gate
    assert [f["brand_id"] for f in run("status", "--check", "--json").json()["failures"]] == [
        "acme"
    ]
    run("status", "--check", "--brand", "initech").assert_pipectl_error(2)
    listed = {b["brand_id"]: b for b in run("brands", "list", "--json").json()}
    assert listed["initech"]["retired"] is True and listed["initech"]["live_jobs"] == 0
    run("brands", "retire", "initech", "--yes").assert_pipectl_error(2)

    run("brands", "restore", "initech").assert_ok()
    assert client.get_job(paused.id).status == "paused"
    restored = client.get_job(active.id)
    assert restored.status == "active" and restored.next_run_at > datetime.now(UTC)
    failing = client.check("initech").failures
    assert {f.facts.dataset for f in failing if f.facts} == {"orders", "rollup"}
    run("brands", "restore", "initech").assert_pipectl_error(2)
    run("brands", "retire", "nobody", "--yes").assert_pipectl_error(2)


# -- the library ------------------------------------------------------------------------------


def test_client_check_is_the_same_gate(url: str, client: Client) -> None:
    meta = job(client, "acme", {"datasets": ["ads", "thumbs"]})
    job(client, "globex", {"datasets": ["ads"]})
    record(client, meta, datetime.now(UTC))
    assert client.check("acme").ok
    assert not client.check().ok
    assert client.check(["acme"], ["ads"], strict=True).ok
    result = client.check(brand_id="globex", datasets=["ads"])
    assert not result.ok
    (failure,) = result.failures
    assert failure.facts is not None and failure.facts.state == "never"
    assert failure.reason == "globex/ads: never — no success yet; never attempted"
    assert json.loads(json.dumps(result.to_json()))["ok"] is False
    with pytest.raises(Exception, match="unknown brand 'globx'"):
        client.check("globx")


def test_grant_gate_to_ends_the_script_with_the_grant(invoke: Run) -> None:
    """`db sql --grant-gate-to ROLE`: the gate's GRANT comes last (after every migration's
    pipectl_restrict_functions, which revokes it); only authenticated or anon are accepted."""
    from pipectl.store.migrations import GATE_FUNCTION

    granted = invoke("db", "sql", "--grant-gate-to", "authenticated")
    assert granted.exit_code == 0
    lines = granted.stdout.splitlines()
    grant = f"GRANT EXECUTE ON FUNCTION {GATE_FUNCTION} TO authenticated;"
    assert grant in lines
    assert lines.index(grant) > max(
        i for i, line in enumerate(lines) if "pipectl_restrict_functions()" in line
    )
    assert "GRANT EXECUTE ON FUNCTION pipectl_gate" not in invoke("db", "sql").stdout
    invoke("db", "sql", "--grant-gate-to", "public").assert_pipectl_error(2)
    invoke("db", "sql", "--grant-gate-to", "anon", "--dialect", "sqlite").assert_pipectl_error(2)


def test_a_brand_asked_for_with_nothing_to_judge_does_not_pass(
    url: str, client: Client, run: Run
) -> None:
    """A brand whose jobs declare nothing has no data the gate can vouch for: red, with why."""
    job(client, "acme", {})
    job(client, "globex", {"datasets": ["ads"]})
    record(client, job(client, "initech", {"datasets": ["ads"]}), datetime.now(UTC))
    result = run("status", "--check", "--brand", "acme", "--brand", "initech")
    assert result.exit_code == 1
    assert result.stderr_lines[-2].startswith("acme: no dataset counts for this brand")
    assert run("status", "--check", "--brand", "initech").exit_code == 0
    (failure,) = run("status", "--check", "--json", "-b", "acme").json()["failures"]
    assert (failure["kind"], failure["brand_id"]) == ("no_datasets", "acme")
    assert not client.check("acme").ok


# -- the status document, pinned --------------------------------------------------------------

STATUS_DOCUMENTS = Path(__file__).with_name("status_documents.json")


def every_status_state(client: Client) -> None:
    """A store showing everything `status --json` writes, at NOW: datasets fresh, warn, stale
    (with a failed last attempt), never, global, retired, and one last refreshed by an archived
    job; a job waiting on a concurrency key
    held by a stuck run, a job held by a stale input; a live worker and a stopped one."""
    client.set_threshold("ads", timedelta(hours=1), timedelta(days=1))
    client.set_threshold("warnish", timedelta(hours=1), timedelta(days=1), brand_id="acme")
    record(
        client, job(client, "acme", {"datasets": ["ads", "orders"]}), NOW - timedelta(minutes=30)
    )
    reviews = job(client, "acme", {"datasets": ["reviews"]}, name="reviews")
    record(client, reviews, NOW - timedelta(days=3))
    record(client, reviews, NOW - timedelta(hours=2), error="HTTP 401 from Meta\n  (token expired)")
    record(client, job(client, "acme", {"datasets": ["warnish"]}), NOW - timedelta(hours=3))
    record(client, job(client, "acme", {"datasets": ["old_ds"]}), NOW - timedelta(days=1))
    job(client, "globex", {"datasets": ["never_ds"]}, name="never")
    record(client, job(client, None, {"datasets": ["fx_rates"]}), NOW - timedelta(hours=5))
    job(client, None, {"datasets": [{"dataset": "per_brand", "brands": ["acme", "globex"]}]})
    # Refreshed by a one-time job, archived since: its run is no live job's last run.
    record(
        client, client.enqueue("noop", "globex", {"datasets": ["oneoff"]}), NOW - timedelta(hours=4)
    )
    client.retire_dataset("old_ds", brand_id="acme")
    for recorded in client.list_jobs():
        client.store.update_job(recorded.id, {"next_run_at": NOW + timedelta(hours=1)}, NOW)
    # A run claimed an hour ago that never heartbeated since: stuck, and it holds its key.
    stuck = job(client, "globex", {}, name="stuck", concurrency_key="globex-api")
    client.store.update_job(stuck.id, {"next_run_at": NOW - timedelta(hours=2)}, NOW)
    (claim,) = client.store.claim_due("w-dead", NOW - timedelta(hours=1), 1)
    assert claim.job.id == stuck.id
    waiting = job(client, "globex", {}, name="waiting", concurrency_key="globex-api")
    client.store.update_job(waiting.id, {"next_run_at": NOW - timedelta(minutes=5)}, NOW)
    held = job(client, "acme", {}, name="held", requires_fresh=["reviews"])
    client.store.update_job(held.id, {"next_run_at": NOW - timedelta(minutes=20)}, NOW)
    (claim,) = client.store.claim_due("w1", NOW - timedelta(minutes=20), 1)
    assert claim.job.id == held.id
    client.store.hold_runs(
        [
            RunHold(
                claim.run.id,
                claim.run.lease_token,
                next_run_at=NOW + timedelta(minutes=5),
                held_since=NOW - timedelta(minutes=20),
                waiting_on="waiting for acme/reviews (stale)",
            )
        ],
        NOW - timedelta(minutes=20),
    )
    live_worker(client, NOW - timedelta(seconds=10))
    started = NOW - timedelta(days=2)
    client.store.register_worker(WorkerInfo("w-dead", "other", 2, started, started, "test"))
    client.store.stop_worker("w-dead", started + timedelta(hours=1))


STATUS_COMMANDS = {
    "full": ["status", "--json"],
    "acme": ["status", "--brand", "acme", "--json"],
    "two_brands_one_dataset": ["status", "-b", "acme", "-b", "globex", "-d", "per_brand", "--json"],
    "check": ["status", "--check", "--strict", "--require-worker", "--json"],
}


def test_the_status_document_is_pinned(url: str, client: Client, run: Run) -> None:
    """`status --json` writes exactly these documents (tests/cli/status_documents.json) for a
    store with every state, whichever path builds them."""
    with freeze_time(NOW):
        every_status_state(client)
        documents = {name: run(*args) for name, args in STATUS_COMMANDS.items()}
    expected = json.loads(STATUS_DOCUMENTS.read_text())
    for name, result in documents.items():
        assert result.exit_code == (1 if name == "check" else 0), result
        assert result.json() == expected[name], name
