"""Throw-away stores for the benchmarks: a SQLite file or a fresh PostgreSQL database, filled in
bulk with SQL (never through pipectl's API, which would take hours for a million runs)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipectl.client import Client


@dataclass(frozen=True)
class History:
    """The shape of a store that has been in use for a while. Every brand has two recurring
    jobs (hourly, between them declaring the brand's datasets; next run a day away, so that
    none falls due during the benchmark) and finished one-time jobs (manual syncs, archived);
    every job has `runs_per_job` finished runs, one in twenty failed."""

    brands: int
    jobs_per_brand: int
    runs_per_job: int
    datasets_per_brand: int = 10
    first_brand: int = 0

    @property
    def jobs(self) -> int:
        return self.brands * self.jobs_per_brand

    @property
    def runs(self) -> int:
        return self.jobs * self.runs_per_job


def brand_name(index: int) -> str:
    return f"brand-{index:04d}"


class Store:
    """A migrated pipectl store and a plain DB-API connection to it for bulk SQL."""

    dialect: str
    url: str
    conn: Any

    def server_epoch(self) -> object:
        """Changes when the database server restarts; a SQLite file has no server."""
        return None

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = self.conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []

    def close(self) -> None:
        self.conn.close()

    # -- due jobs and their outcome ---------------------------------------------------------
    def add_due_noop_jobs(
        self, count: int, keys: int | None = 1_000, first_brand: int = 0
    ) -> tuple[int, int]:
        """`count` one-time noop jobs due now, in id order, each with the default concurrency key
        of a `pipectl enqueue noop --brand B`, the brands taken in turn from `keys` of them
        numbered from `first_brand` (by default 1,000; None: a brand, so a key, of each job's
        own); returns their id range."""
        (first,) = self.sql("SELECT coalesce(max(id), 0) + 1 FROM scheduled_jobs")[0]
        self._insert_due(count, keys or count, first_brand)
        (last,) = self.sql("SELECT max(id) FROM scheduled_jobs")[0]
        assert last - first + 1 == count, (first, last, count)
        return first, last

    def check_drained(self, ids: tuple[int, int]) -> None:
        """Every job in the range ran exactly once and completed: no job run twice, none left."""
        runs, jobs, completed = self.sql(
            "SELECT count(*), count(DISTINCT job_id), "
            "coalesce(sum(CASE WHEN status = 'completed' THEN 1 ELSE 0 END), 0) "
            f"FROM scheduled_job_runs WHERE job_id BETWEEN {int(ids[0])} AND {int(ids[1])}"
        )[0]
        expected = ids[1] - ids[0] + 1
        if not runs == jobs == completed == expected:
            raise AssertionError(
                f"{expected} jobs: {runs} runs for {jobs} jobs, {completed} completed"
            )

    def commit_rate(self, min_seconds: float) -> float:
        """The database's durable single-row commit rate, one client in a loop (commits/s)."""
        count = 0
        started = time.perf_counter()
        while True:
            self._commit_one()
            count += 1
            elapsed = time.perf_counter() - started
            if elapsed >= min_seconds and count >= 200:
                return count / elapsed

    def finish_rate(self, count: int) -> float:
        """Runs per second pipectl's store records (`finish_run`, one transaction each) when
        called in a loop in this process: the ceiling of a worker's drain rate, with no worker,
        thread, log or claim around it."""
        from pipectl import clock
        from pipectl.lifecycle import run_result
        from pipectl.store import open_store

        ids = self.add_due_noop_jobs(count)
        store = open_store(self.url)
        try:
            claims = store.claim_due("bench-finish-rate", clock.now(), count)
            assert len(claims) == count, (len(claims), count)
            started = time.perf_counter()
            for claim in claims:
                result = run_result(claim.job, clock.now(), error=None)
                assert store.finish_run(claim.run.id, claim.run.lease_token, result)
            elapsed = time.perf_counter() - started
        finally:
            store.close()
        self.check_drained(ids)
        return count / elapsed

    def _insert_due(self, count: int, keys: int, first_brand: int) -> None:
        raise NotImplementedError

    def _commit_one(self) -> None:
        raise NotImplementedError


class SQLiteBench(Store):
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        from pipectl.store.sqlite import SQLiteStore

        self.url = f"sqlite:///{path}"
        Client.migrate_url(self.url)
        # pipectl's own connection, so the commit-rate baseline runs with exactly its pragmas.
        self._store = SQLiteStore(self.url)
        self.conn = self._store.conn
        self.pragmas = {
            name: self.conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous")
        }
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_commit (id INTEGER PRIMARY KEY, note TEXT)"
        )

    def _commit_one(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")  # the transaction kind pipectl's writes use
        self.conn.execute("INSERT INTO bench_commit (note) VALUES ('x')")
        self.conn.execute("COMMIT")

    def _insert_due(self, count: int, keys: int, first_brand: int) -> None:
        self._bulk(
            f"""
            WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {int(count)})
            INSERT INTO scheduled_jobs (brand_id, job_type, name, schedule_type, timezone,
                next_run_at, status, parameters, max_retries, retry_base_seconds,
                retry_cap_seconds, concurrency_key, created_at, updated_at)
            SELECT printf('brand-%04d', b), 'noop', 'noop', 'one_time', 'UTC',
                {_sqlite_ts("'-1 seconds'")}, 'active', '{{}}', 3, 300, 3600,
                printf('noop:brand-%04d', b), {_sqlite_ts()}, {_sqlite_ts()}
            FROM (SELECT n, {int(first_brand)} + n % {int(keys)} AS b FROM g)
            """
        )

    def _bulk(self, *statements: str) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        for statement in statements:
            self.conn.execute(statement)
        self.conn.execute("COMMIT")

    def load_history(self, history: History) -> None:
        """One transaction of INSERT … SELECT over recursive counters (SQLite has no
        generate_series built in)."""
        h = history
        brands = f"SELECT {h.first_brand} AS b UNION ALL SELECT b + 1 FROM brands WHERE b < {h.first_brand + h.brands - 1}"
        self._bulk(
            f"""
            WITH RECURSIVE brands(b) AS ({brands}),
                 k(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM k WHERE k < {h.jobs_per_brand - 1})
            INSERT INTO scheduled_jobs (brand_id, job_type, name, schedule_type, cron_expression,
                timezone, next_run_at, status, parameters, max_retries, retry_base_seconds,
                retry_cap_seconds, concurrency_key, created_at, updated_at)
            SELECT printf('brand-%04d', b), 'noop', printf('sync %d brand-%04d', k, b),
                CASE WHEN k < 2 THEN 'recurring' ELSE 'one_time' END,
                CASE WHEN k < 2 THEN '0 * * * *' END, 'UTC',
                CASE WHEN k < 2 THEN {_sqlite_ts("'+1 days'")} END,
                CASE WHEN k < 2 THEN 'active' ELSE 'archived' END,
                CASE WHEN k < 2 THEN {_sqlite_datasets(h.datasets_per_brand)}
                     ELSE printf('{{"datasets": ["dataset-%02d"]}}', k % {h.datasets_per_brand}) END,
                3, 300, 3600, printf('noop:brand-%04d', b),
                {_sqlite_ts("'-40 days'")}, {_sqlite_ts("'-1 hours'")}
            FROM brands, k ORDER BY b, k
            """,
            f"""
            WITH RECURSIVE g(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM g WHERE g < {h.runs_per_job})
            INSERT INTO scheduled_job_runs (job_id, attempt, status, started_at, finished_at,
                heartbeat_at, worker_id, lease_token, concurrency_key, error_message, logs)
            SELECT j.id, 1, CASE WHEN (j.id + g) % 20 = 0 THEN 'failed' ELSE 'completed' END,
                {_sqlite_ts("printf('-%d minutes', (g * 4000 + j.id % 4000))")},
                {_sqlite_ts("printf('-%d minutes', (g * 4000 + j.id % 4000 - 2))")},
                {_sqlite_ts("printf('-%d minutes', (g * 4000 + j.id % 4000 - 2))")},
                'bench-worker', printf('%016x%016x', j.id, g), j.concurrency_key,
                CASE WHEN (j.id + g) % 20 = 0 THEN 'command exited with status 1' END,
                'run finished'
            FROM g, scheduled_jobs AS j
            ORDER BY g DESC, j.id
            """,
            """
            UPDATE scheduled_jobs SET last_run_id = (
                SELECT max(r.id) FROM scheduled_job_runs AS r WHERE r.job_id = scheduled_jobs.id)
            """,
            f"""
            WITH RECURSIVE brands(b) AS ({brands}),
                 d(d) AS (SELECT 0 UNION ALL SELECT d + 1 FROM d WHERE d < {h.datasets_per_brand - 1})
            INSERT INTO dataset_status (brand_id, dataset, last_success_at, last_attempt_at,
                last_status, last_run_id, updated_at)
            SELECT printf('brand-%04d', b), printf('dataset-%02d', d),
                {_sqlite_ts("printf('-%d hours', (b * 7 + d) % 60)")},
                {_sqlite_ts("printf('-%d hours', (b * 7 + d) % 60)")}, 'completed', NULL,
                {_sqlite_ts()}
            FROM brands, d
            """,
        )


def _sqlite_ts(modifier: str | None = None) -> str:
    """An SQL expression for 'now' (shifted by a modifier expression) in the store's text form."""
    shift = f", {modifier}" if modifier else ""
    return f"(strftime('%Y-%m-%dT%H:%M:%S', 'now'{shift}) || '.000000+00:00')"


def _sqlite_datasets(per_brand: int) -> str:
    """Recurring job k=0 declares the first half of the brand's datasets, k=1 the rest."""
    half = per_brand // 2
    first = ", ".join(f'"dataset-{d:02d}"' for d in range(half))
    second = ", ".join(f'"dataset-{d:02d}"' for d in range(half, per_brand))
    return f"""CASE WHEN k = 0 THEN '{{"datasets": [{first}]}}' ELSE '{{"datasets": [{second}]}}' END"""


class PostgresServer:
    """Creates fresh databases on a PostgreSQL server and drops them all at the end."""

    def __init__(self, admin_url: str) -> None:
        import psycopg

        self.admin_url = admin_url
        self.admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
        self.created: list[str] = []

    def version(self) -> str:
        return self.admin.execute("SHOW server_version").fetchone()[0]

    def create(self, purpose: str, setup: str | None = None) -> PostgresBench:
        """A fresh database, with `setup` run in it before pipectl's migrations."""
        import psycopg

        name = f"pipectl_bench_{purpose}_{secrets.token_hex(4)}"
        # Connected again and retried when the server restarted since (other suites do that).
        for attempt in range(30):
            try:
                if self.admin.closed or self.admin.broken:
                    self.admin = psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5)
                self.admin.execute(f'CREATE DATABASE "{name}"')
                break
            except psycopg.OperationalError:
                if attempt == 29:
                    raise
                time.sleep(1)
        self.created.append(name)
        return PostgresBench(_with_dbname(self.admin_url, name), setup=setup)

    def drop_all(self) -> None:
        import psycopg

        self.admin.close()
        if not self.created:
            return
        # A new connection, retried: the server may be restarting (other test suites do that).
        for attempt in range(30):
            try:
                with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as admin:
                    for name in self.created:
                        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except psycopg.OperationalError:
                if attempt == 29:
                    raise
                time.sleep(1)
        self.created.clear()


def _with_dbname(url: str, dbname: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(path=f"/{dbname}"))


class PostgresBench(Store):
    dialect = "postgres"

    def __init__(self, url: str, *, setup: str | None = None, migrate: bool = True) -> None:
        import psycopg

        self.url = url
        if setup:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(setup)
        if migrate:
            Client.migrate_url(url)
        self.conn = psycopg.connect(url, autocommit=True)
        # The baseline: default synchronous_commit (on), a plain logged table.
        self.synchronous_commit = self.conn.execute("SHOW synchronous_commit").fetchone()[0]
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_commit (id bigserial PRIMARY KEY, note text)"
        )

    def server_epoch(self) -> object:
        """The server's start time; connects again (waiting for the server) when needed."""
        import psycopg

        for attempt in range(60):
            try:
                if self.conn.closed or self.conn.broken:
                    self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                return self.conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
            except psycopg.OperationalError:
                if attempt == 59:
                    raise
                time.sleep(1)
        raise AssertionError("unreachable")

    def _commit_one(self) -> None:
        self.conn.execute("INSERT INTO bench_commit (note) VALUES ('x')")  # autocommit: COMMIT

    def _insert_due(self, count: int, keys: int, first_brand: int) -> None:
        self.conn.execute(
            """
            INSERT INTO scheduled_jobs (brand_id, job_type, name, schedule_type, timezone,
                next_run_at, status, parameters, max_retries, retry_base_seconds,
                retry_cap_seconds, concurrency_key, created_at, updated_at)
            SELECT format('brand-%%s', b), 'noop', 'noop', 'one_time', 'UTC',
                now() - interval '1 second', 'active', '{}', 3, 300, 3600,
                format('noop:brand-%%s', b), now(), now()
            FROM generate_series(1, %(count)s::int) AS g,
                lpad((%(first)s + g %% %(keys)s)::text, 4, '0') AS b
            """,
            {"count": count, "keys": keys, "first": first_brand},
        )
        # What autovacuum does soon after a burst of inserts: without statistics the planner
        # may read and sort every due job on each claim instead of taking the first from an
        # index (docs/benchmarks.md), which would make the empty store the slow one.
        self.conn.execute("ANALYZE scheduled_jobs, scheduled_job_runs")

    def load_history(self, history: History) -> None:
        """One transaction of INSERT … SELECT FROM generate_series, then VACUUM ANALYZE (what
        autovacuum does for a store that has been in use)."""
        h = history
        last_brand = h.first_brand + h.brands - 1
        half = h.datasets_per_brand // 2
        with self.conn.transaction():
            self.conn.execute(
                """
                INSERT INTO scheduled_jobs (brand_id, job_type, name, schedule_type,
                    cron_expression, timezone, next_run_at, status, parameters, max_retries,
                    retry_base_seconds, retry_cap_seconds, concurrency_key, created_at,
                    updated_at)
                SELECT format('brand-%%s', lpad(b::text, 4, '0')), 'noop',
                    format('sync %%s brand-%%s', k, lpad(b::text, 4, '0')),
                    CASE WHEN k < 2 THEN 'recurring' ELSE 'one_time' END,
                    CASE WHEN k < 2 THEN '0 * * * *' END, 'UTC',
                    CASE WHEN k < 2 THEN date_trunc('hour', now()) + interval '1 day' END,
                    CASE WHEN k < 2 THEN 'active' ELSE 'archived' END,
                    jsonb_build_object('datasets', CASE
                        WHEN k = 0 THEN (SELECT jsonb_agg(format('dataset-%%s', lpad(d::text, 2, '0')))
                                         FROM generate_series(0, %(half)s::int - 1) AS d)
                        WHEN k = 1 THEN (SELECT jsonb_agg(format('dataset-%%s', lpad(d::text, 2, '0')))
                                         FROM generate_series(%(half)s::int, %(per_brand)s::int - 1) AS d)
                        ELSE jsonb_build_array(format('dataset-%%s', lpad((k %% %(per_brand)s::int)::text, 2, '0')))
                    END),
                    3, 300, 3600, format('noop:brand-%%s', lpad(b::text, 4, '0')),
                    now() - interval '40 days', now() - interval '1 hour'
                FROM generate_series(%(first)s::int, %(last)s::int) AS b,
                     generate_series(0, %(jobs)s::int - 1) AS k
                ORDER BY b, k
                """,
                {
                    "first": h.first_brand,
                    "last": last_brand,
                    "jobs": h.jobs_per_brand,
                    "half": half,
                    "per_brand": h.datasets_per_brand,
                },
            )
            self.conn.execute(
                """
                INSERT INTO scheduled_job_runs (job_id, attempt, status, started_at, finished_at,
                    heartbeat_at, worker_id, lease_token, concurrency_key, error_message, logs)
                SELECT j.id, 1, CASE WHEN (j.id + g) %% 20 = 0 THEN 'failed' ELSE 'completed' END,
                    now() - make_interval(mins => (g * 4000 + j.id %% 4000)::int),
                    now() - make_interval(mins => (g * 4000 + j.id %% 4000 - 2)::int),
                    now() - make_interval(mins => (g * 4000 + j.id %% 4000 - 2)::int),
                    'bench-worker', md5(j.id || '-' || g), j.concurrency_key,
                    CASE WHEN (j.id + g) %% 20 = 0 THEN 'command exited with status 1' END,
                    'run finished'
                FROM generate_series(1, %(runs)s::int) AS g, scheduled_jobs AS j
                ORDER BY g DESC, j.id
                """,
                {"runs": h.runs_per_job},
            )
            self.conn.execute(
                """
                UPDATE scheduled_jobs AS j SET last_run_id = r.last_id
                FROM (SELECT job_id, max(id) AS last_id FROM scheduled_job_runs GROUP BY job_id) AS r
                WHERE r.job_id = j.id
                """
            )
            self.conn.execute(
                """
                INSERT INTO dataset_status (brand_id, dataset, last_success_at, last_attempt_at,
                    last_status, updated_at)
                SELECT format('brand-%%s', lpad(b::text, 4, '0')),
                    format('dataset-%%s', lpad(d::text, 2, '0')),
                    now() - make_interval(hours => (b * 7 + d) %% 60),
                    now() - make_interval(hours => (b * 7 + d) %% 60), 'completed', now()
                FROM generate_series(%(first)s::int, %(last)s::int) AS b,
                     generate_series(0, %(per_brand)s::int - 1) AS d
                """,
                {"first": h.first_brand, "last": last_brand, "per_brand": h.datasets_per_brand},
            )
        self.conn.execute("VACUUM ANALYZE")
