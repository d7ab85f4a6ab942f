"""The store contract for live run logs (issue 14 §5), on every backend: a running run's log
is written as it goes, only under its lease; its outcome writes the final log; the recovery of
a run whose worker died keeps the log written before."""

from __future__ import annotations

from datetime import timedelta

from test_contract import T0, new_job, result

from pipectl.handlers.context import RunLog
from pipectl.live_logs import LogWriter
from pipectl.recovery import recover_stuck
from pipectl.store import Store


def test_a_running_runs_log_is_written_under_its_lease_only(store: Store) -> None:
    store.insert_job(new_job(), T0)
    store.insert_job(new_job(), T0)
    held, other = (c.run for c in sorted(store.claim_due("w", T0, 2), key=lambda c: c.run.id))
    store.write_run_logs(
        [(held.id, held.lease_token, "12:00:00 INFO one\0two"), (other.id, "not-its-lease", "x")]
    )
    assert store.get_run(held.id).logs in (  # type: ignore[union-attr]
        "12:00:00 INFO one\0two",
        "12:00:00 INFO one\ufffdtwo",  # PostgreSQL's text holds no NUL
    )
    assert store.get_run(other.id).logs == ""  # type: ignore[union-attr]
    store.write_run_logs([])

    store.finish_run(held.id, held.lease_token, result())  # its final log: "line 1\nline 2"
    store.write_run_logs([(held.id, held.lease_token, "too late")])
    assert store.get_run(held.id).logs == "line 1\nline 2"  # type: ignore[union-attr]


def test_a_recovered_run_keeps_the_log_its_worker_wrote(store: Store) -> None:
    store.insert_job(new_job(), T0)
    (claim,) = store.claim_due("w", T0, 1)
    store.write_run_logs([(claim.run.id, claim.run.lease_token, "12:00:00 INFO early")])
    later = T0 + timedelta(hours=1)
    (recovered,) = recover_stuck(store, later, timedelta(minutes=5), timedelta(minutes=5))
    assert recovered.run.id == claim.run.id
    run = store.get_run(claim.run.id)
    assert run is not None and run.status == "failed" and run.error_message.startswith("stuck")  # type: ignore[union-attr]
    assert run.logs == "12:00:00 INFO early"


def test_the_log_writer_writes_only_logs_with_news(store: Store) -> None:
    store.insert_job(new_job(), T0)
    store.insert_job(new_job(), T0)
    quiet, busy = (c.run for c in sorted(store.claim_due("w", T0, 2), key=lambda c: c.run.id))
    quiet_log, busy_log = RunLog(quiet.id), RunLog(busy.id)
    writer = LogWriter()
    busy_log.info("first")
    writer.write(store, [(quiet, quiet_log), (busy, busy_log)])
    assert store.get_run(quiet.id).logs == ""  # type: ignore[union-attr]
    assert store.get_run(busy.id).logs.endswith("INFO first")  # type: ignore[union-attr]

    # Nothing new: nothing written (the marker stands).
    store.write_run_logs([(busy.id, busy.lease_token, "marker")])
    writer.write(store, [(quiet, quiet_log), (busy, busy_log)])
    assert store.get_run(busy.id).logs == "marker"  # type: ignore[union-attr]
    busy_log.info("second")
    writer.write(store, [(busy, busy_log)])
    assert store.get_run(busy.id).logs == busy_log.text()  # type: ignore[union-attr]
    assert busy_log.text().splitlines()[1].endswith("INFO second")
