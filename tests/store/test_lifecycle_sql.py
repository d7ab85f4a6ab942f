"""Where a store's SQL restates a lifecycle rule, it answers as the Python rule does, on every
backend: the stuck-run predicate (lifecycle.is_stuck, with lifecycle.stuck_cutoffs) and the
in-backoff filter (lifecycle.in_backoff)."""

from __future__ import annotations

from datetime import timedelta

from test_contract import T0, new_job

from pipectl.lifecycle import in_backoff, is_stuck, run_result, stuck_cutoffs
from pipectl.models import JOB_STATUSES
from pipectl.store import Store

S = timedelta(seconds=1)
US = timedelta(microseconds=1)


def test_the_stuck_predicate_in_sql_is_the_python_rule(store: Store) -> None:
    # (started after T0, heartbeats after T0): never heartbeated, heartbeated at the instant it
    # started (still counts as never), heartbeated once or twice, and a run that finished.
    shapes = {
        "silent": (0 * S, []),
        "silent, started later": (10 * S, []),
        "beat at its start": (10 * S, [10 * S]),
        "beat once": (0 * S, [20 * S]),
        "beat twice": (0 * S, [20 * S, 40 * S]),
        "finished": (0 * S, [5 * S]),
    }
    for name, (started, _) in shapes.items():
        store.insert_job(new_job(name=name, next_run_at=T0 + started, parameters={}), T0)
    claims = {}
    for started in sorted({started for started, _ in shapes.values()}):
        for claim in store.claim_due("w", T0 + started, 10):
            claims[claim.job.name] = claim
    assert claims.keys() == shapes.keys()
    for name, (_, beats) in shapes.items():
        for beat in beats:
            lease = (claims[name].run.id, claims[name].run.lease_token)
            assert store.heartbeat("w", [lease], T0 + beat) == []
    done = claims["finished"]
    assert store.finish_run(done.run.id, done.run.lease_token, run_result(done.job, T0, error=None))
    runs = [store.get_run(claim.run.id) for claim in claims.values()]

    # Every instant a run started or heartbeated, and a microsecond either side of it, as the
    # `now` of three settings: a start grace shorter than, equal to and longer than stuck_after
    # (where stuck_cutoffs caps it).
    moments = {0 * S, 5 * S, 10 * S, 20 * S, 40 * S}
    settings = [(30 * S, 10 * S), (30 * S, 30 * S), (20 * S, 60 * S)]
    cases = 0
    for stuck_after, start_grace in settings:
        for moment in sorted(moments):
            for offset in (stuck_after, min(start_grace, stuck_after)):
                for edge in (-US, 0 * S, US):
                    now = T0 + moment + offset + edge
                    cutoffs = stuck_cutoffs(now, stuck_after, start_grace)
                    expected = {run.id for run in runs if run and is_stuck(run, *cutoffs)}
                    found = {claim.run.id for claim in store.stuck_runs(*cutoffs)}
                    assert found == expected, (now, stuck_after, start_grace)
                    cases += 1
    assert cases == 90

    # The guard the recovery's write re-checks is the same predicate: at a moment where some
    # runs are stuck and some are not, exactly the stuck ones can be failed.
    now = T0 + 50 * S
    cutoffs = stuck_cutoffs(now, 30 * S, 10 * S)
    stuck = {run.id for run in runs if run and is_stuck(run, *cutoffs)}
    assert stuck and stuck != {run.id for run in runs if run}
    for claim in claims.values():
        failed = run_result(claim.job, now, error="stuck")
        assert bool(store.fail_stuck_run(claim.run.id, *cutoffs, failed)) is (claim.run.id in stuck)


def test_the_in_backoff_filter_in_sql_is_the_python_rule(store: Store) -> None:
    for status in JOB_STATUSES:
        for retry_count in (0, 1, 3, 4):
            job = store.insert_job(new_job(name=f"{status} {retry_count}"), T0)
            store.update_job(job.id, {"status": status, "retry_count": retry_count}, T0)
    jobs = store.list_jobs()
    assert len(jobs) == len(JOB_STATUSES) * 4
    expected = [job.id for job in jobs if in_backoff(job)]
    assert expected  # the table has jobs on both sides of the rule
    assert [job.id for job in store.list_jobs(in_backoff=True)] == expected
    assert [job.id for job in store.list_jobs(brand_id="acme", in_backoff=True)] == expected
