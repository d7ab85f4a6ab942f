"""pipectl behind a real PgBouncer: migrations, schemas and wake-ups through its pool modes."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from procs import Workers, pipectl, wait_for
from servers import PgBouncer

from pipectl.client import Client
from pipectl.settings import load_settings
from pipectl.store.migrations import MIGRATE_LOCK_KEY, latest_version
from pipectl.store.postgres import split_schema

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DEFAULT_SEARCH_PATH = '"$user", public'


@pytest.fixture
def server(postgres_url: str) -> str:
    """The test server's URL (the schema of `postgres_url` is not used)."""
    return split_schema(postgres_url)[0]


def _database_url(server: str, dbname: str) -> str:
    return urlunsplit(urlsplit(server)._replace(path=f"/{dbname}"))


@pytest.fixture
def fresh_database(server: str) -> Iterator[str]:
    """The name of a new, empty database on the test server, dropped afterwards."""
    name = f"pipectl_pool_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def transaction_pool(server: str) -> Iterator[PgBouncer]:
    pooler = PgBouncer(mode="transaction", pool_size=2)
    yield pooler
    pooler.stop()


def _migrate_processes(url: str, count: int) -> list[subprocess.CompletedProcess[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pipectl", "db", "migrate"],
            env={**_env(), "PIPECTL_DATABASE_URL": url},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_six_concurrent_migrates_through_a_transaction_pool_ten_times(
    transaction_pool: PgBouncer, server: str
) -> None:
    for trial in range(10):
        name = f"pipectl_pool_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            results = _migrate_processes(transaction_pool.url(name), 6)
            for result in results:
                assert result.returncode == 0, f"trial {trial}: {result.stderr}"
                assert "error" not in result.stderr, f"trial {trial}: {result.stderr}"
            with psycopg.connect(_database_url(server, name), autocommit=True) as conn:
                (version,) = conn.execute(
                    "SELECT max(version) FROM pipectl_schema_migrations"
                ).fetchone()
                assert version == latest_version("postgres"), f"trial {trial}"
                held = conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = %s)",
                    [MIGRATE_LOCK_KEY & 0xFFFFFFFF, name],
                ).fetchone()
                assert held == (0,), f"trial {trial}: a migrate lock was left behind"
        finally:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_migrate_through_a_statement_pool_is_refused_in_one_line(
    server: str, fresh_database: str
) -> None:
    pooler = PgBouncer(mode="statement")
    try:
        result = pipectl(pooler.url(fresh_database), "db", "migrate")
    finally:
        pooler.stop()
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "statement mode" in lines[0] and "session-mode port" in lines[0]
    with psycopg.connect(_database_url(server, fresh_database)) as conn:
        assert conn.execute("SELECT to_regclass('scheduled_jobs')").fetchone() == (None,)


def test_two_installs_share_one_transaction_pool_without_leaking_their_schema(
    transaction_pool: PgBouncer, server: str, fresh_database: str
) -> None:
    public_url = transaction_pool.url(fresh_database)
    schema_url = f"{public_url}?schema=pipectl"
    assert Client.migrate_url(public_url) == Client.migrate_url(schema_url)
    plain = psycopg.connect(public_url, autocommit=True, prepare_threshold=None)
    with (
        Client.from_url(public_url, load_settings(database_url=public_url)) as public,
        Client.from_url(schema_url, load_settings(database_url=schema_url)) as schema,
    ):
        for i in range(100):
            public.enqueue("noop", "public-brand", {"i": i}, concurrency_key=None)
            schema.enqueue("noop", "schema-brand", {"i": i}, concurrency_key=None)
            if i % 10 == 0:  # a plain client on the pool sees the server's default path
                assert plain.execute("SHOW search_path").fetchone() == (DEFAULT_SEARCH_PATH,)
        # And the reverse: a client that leaves its own search_path on a pooled connection
        # does not move pipectl.
        plain.execute("SET search_path TO pg_catalog")
        for client, brand in ((public, "public-brand"), (schema, "schema-brand")):
            assert {job.brand_id for job in client.list_jobs(limit=500)} == {brand}
            client.enqueue("noop", brand, {"after": True}, concurrency_key=None)
    plain.close()
    with psycopg.connect(_database_url(server, fresh_database), autocommit=True) as conn:
        counts = conn.execute(
            "SELECT 'public', brand_id, count(*) FROM public.scheduled_jobs GROUP BY brand_id "
            "UNION ALL "
            "SELECT 'pipectl', brand_id, count(*) FROM pipectl.scheduled_jobs GROUP BY brand_id "
            "ORDER BY 1"
        ).fetchall()
    assert counts == [("pipectl", "schema-brand", 101), ("public", "public-brand", 101)]


def _doctor_listen(url: str, **env: str) -> dict[str, str]:
    result = pipectl(url, "doctor", "--json", **env)
    checks = {check["name"]: check for check in json.loads(result.stdout)["checks"]}
    return checks["listen"]


def _listening(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN %%'"
        ).fetchone()
    return count > 0


def test_listen_through_a_transaction_pool_is_detected_and_listen_url_restores_pickup(
    transaction_pool: PgBouncer, server: str, fresh_database: str, workers: Workers
) -> None:
    pooled = transaction_pool.url(fresh_database)
    direct = _database_url(server, fresh_database)
    Client.migrate_url(pooled)

    assert _doctor_listen(direct)["detail"].startswith("ok")
    listen = _doctor_listen(pooled)
    assert listen["level"] == "warn"
    assert listen["detail"].startswith("not delivered (transaction pooler?)")
    assert _doctor_listen(pooled, PIPECTL_LISTEN_URL=direct)["detail"].startswith("ok")

    with Client.from_url(pooled, load_settings(database_url=pooled)) as client:
        polling = workers.start(pooled, "--poll-interval", "1s", "--worker-id", "polling")
        wait_for(lambda: "LISTEN does not receive NOTIFY" in workers.log(polling), timeout=30)
        job = client.enqueue("noop", "acme", {"n": 1})
        wait_for(lambda: client.get_job(job.id).status == "archived", timeout=10)
        assert workers.log(polling).count("LISTEN does not receive NOTIFY") == 1
        assert "PIPECTL_LISTEN_URL" in workers.log(polling)
        workers.kill(polling)

        instant = workers.start(
            pooled, "--poll-interval", "60s", "--worker-id", "instant", PIPECTL_LISTEN_URL=direct
        )
        wait_for(lambda: _listening(direct))  # idle, LISTENing on the direct connection
        job = client.enqueue("noop", "acme", {"n": 2})
        wait_for(lambda: client.get_job(job.id).status == "archived", timeout=10)
        assert "LISTEN does not receive NOTIFY" not in workers.log(instant)
