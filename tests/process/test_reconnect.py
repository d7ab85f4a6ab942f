"""Workers that lose their connections carry on: each connection terminated in turn, then a full
restart of a private PostgreSQL cluster (never the shared server)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from procs import Workers, wait_for
from servers import PrivateCluster

from pipectl.client import Client
from pipectl.settings import load_settings

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# Each worker's connections, told apart by what they last ran.
CONNECTIONS = {
    "listen": "query LIKE 'LISTEN %%'",
    # The heartbeat thread's connection last ran its heartbeat, or the cancel-request read that
    # follows it while the worker holds a run.
    "heartbeat": "(query LIKE '%%pipectl_heartbeat%%' OR query LIKE '%%pipectl_cancel_requests%%')",
    "claim": "query NOT LIKE 'LISTEN %%' AND query NOT LIKE '%%pipectl_heartbeat%%'"
    " AND query NOT LIKE '%%pipectl_cancel_requests%%'",
}


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    started = PrivateCluster()
    yield started
    started.stop()


def _backends(cluster: PrivateCluster, worker: str, where: str = "true") -> list[int]:
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        rows = conn.execute(
            f"SELECT pid FROM pg_stat_activity WHERE application_name = %s AND {where}",
            [worker],
        ).fetchall()
    return [pid for (pid,) in rows]


def _terminate(cluster: PrivateCluster, pids: list[int]) -> None:
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", [pid])


def _runs_soon(client: Client, n: int) -> None:
    job = client.enqueue("noop", "acme", {"n": n}, concurrency_key=None)
    wait_for(lambda: client.get_job(job.id).status == "archived", timeout=10)


def test_idle_and_busy_workers_survive_losing_each_connection_and_a_restart(
    cluster: PrivateCluster, workers: Workers
) -> None:
    Client.migrate_url(cluster.url)
    urls = {name: f"{cluster.url}?application_name={name}" for name in ("idle", "busy")}
    client = Client.from_url(cluster.url, load_settings(database_url=cluster.url))
    long_job = client.enqueue("sleep", "acme", {"seconds": 600}, concurrency_key=None)
    busy = workers.start(urls["busy"], "--worker-id", "busy")
    wait_for(lambda: client.get_job(long_job.id).status == "running")
    idle = workers.start(urls["idle"], "--worker-id", "idle")
    procs = {"idle": idle, "busy": busy}
    wait_for(lambda: _backends(cluster, "idle", CONNECTIONS["listen"]))

    n = 0
    for connection, where in CONNECTIONS.items():
        for name in procs:
            if connection == "listen" and name == "busy":
                continue  # a busy worker is not listening
            pids = wait_for(lambda name=name, where=where: _backends(cluster, name, where))
            _terminate(cluster, pids)
            n += 1
            _runs_soon(client, n)
            for each, proc in procs.items():
                assert proc.poll() is None, f"{each} died: {workers.log(proc)}"
    # Every connection is back, the listening one included.
    wait_for(lambda: _backends(cluster, "idle", CONNECTIONS["listen"]))

    client.close()
    cluster.restart()
    client = wait_for(lambda: _open(cluster.url), timeout=60)
    _runs_soon(client, n + 1)
    wait_for(lambda: _backends(cluster, "idle", CONNECTIONS["listen"]), timeout=60)
    _runs_soon(client, n + 2)
    for each, proc in procs.items():
        assert proc.poll() is None, f"{each} died: {workers.log(proc)}"
    client.close()


def test_the_queue_drains_across_a_database_restart(
    cluster: PrivateCluster, workers: Workers
) -> None:
    Client.migrate_url(cluster.url)
    client = Client.from_url(cluster.url, load_settings(database_url=cluster.url))
    jobs = [
        client.enqueue("sleep", "acme", {"seconds": 0.2, "i": i}, concurrency_key=None).id
        for i in range(30)
    ]
    worker = workers.start(cluster.url, "--worker-id", "survivor")
    wait_for(lambda: len(client.list_runs(status="completed")) >= 3)
    client.close()
    cluster.restart()
    client = wait_for(lambda: _open(cluster.url), timeout=60)
    with client:

        def settled() -> bool:
            """Every job done, or (if the restart failed its run) waiting in backoff."""
            states = [client.get_job(j) for j in jobs]
            return not client.list_runs(status="running") and all(
                j.status == "archived" or (j.status == "active" and j.retry_count > 0)
                for j in states
            )

        wait_for(settled, timeout=120)
        for job_id in jobs:  # re-arm what the restart failed, as an operator would
            if client.get_job(job_id).status == "active":
                client.retry_now(job_id)
        wait_for(lambda: all(client.get_job(j).status == "archived" for j in jobs), timeout=120)
    assert worker.poll() is None, "the worker died with the database"


def _open(url: str) -> Client | None:
    try:
        return Client.from_url(url, load_settings(database_url=url))
    except Exception:
        return None


def test_a_missing_schema_still_stops_a_worker(cluster: PrivateCluster, workers: Workers) -> None:
    """Waiting cannot fix a store without pipectl's schema: that one the worker exits on."""
    Client.migrate_url(cluster.url)
    worker = workers.start(cluster.url, "--worker-id", "doomed")
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        wait_for(lambda: conn.execute("SELECT count(*) FROM workers").fetchone() == (1,))
        conn.execute("DROP TABLE scheduled_job_runs, scheduled_jobs CASCADE")
    assert worker.wait(timeout=30) == 3
    assert "not installed" in workers.log(worker)
