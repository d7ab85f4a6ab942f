"""Brand names with ten thousand brands (issue 18): `pipectl_brand_ids` asks each index for the
next brand (migration 0015), and `status --brand B` lists every brand only for a brand the
report does not show."""

from __future__ import annotations

import pytest
from test_contract import T0, new_job

from pipectl.client import Client
from pipectl.errors import InvalidInput
from pipectl.settings import load_settings
from pipectl.store import Store


def test_brand_ids_skip_from_jobs_to_dataset_rows_and_back(store: Store) -> None:
    for brand in ("b", "b", "d", "f"):  # two jobs of one brand: one name
        store.insert_job(new_job(brand_id=brand), T0)
    store.insert_job(new_job(brand_id=None), T0)
    # Dataset rows without a job of their brand, before, between and after the jobs' brands.
    store.set_datasets_retired([("a", "orders"), ("c", "orders"), ("c", "ads"), ("g", "x")], T0, T0)
    store.set_datasets_retired([(None, "orders")], T0, T0)
    assert store.brand_ids() == ["a", "b", "c", "d", "f", "g"]


def test_status_of_a_brand_it_shows_lists_no_brands(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client.from_url(sqlite_url, load_settings(database_url=sqlite_url))
    try:
        client.store.insert_job(new_job(brand_id="acme"), T0)
        client.store.insert_job(new_job(brand_id="globex", status="archived"), T0)
        listed = []
        every_brand = client.store.brand_ids

        def counting() -> list[str]:
            listed.append(1)
            return every_brand()

        monkeypatch.setattr(client.store, "brand_ids", counting)
        assert client.gate_status(["acme"]).selected_brands == ("acme",)
        assert listed == []
        # An archived job's brand is known, but only the list of every brand says so.
        assert client.gate_status(["globex"]).jobs == []
        assert len(listed) == 1
        with pytest.raises(InvalidInput, match="acmee"):
            client.gate_status(["acmee"])
        assert len(listed) == 2
    finally:
        client.close()


def test_the_status_snapshot_reads_each_last_run_by_its_id(postgres_url: str) -> None:
    """Among many archived jobs' runs, the snapshot reads the live jobs' last runs and no others:
    its plan is made for any brand and status filter (half of all jobs, by the planner's guess),
    which made the join a scan of every run in the table (2M with ten thousand brands)."""
    import psycopg
    from psycopg import sql

    from pipectl.store.postgres import split_schema

    Client.migrate_url(postgres_url)
    server, schema = split_schema(postgres_url)
    assert schema is not None
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        conn.execute(
            """
            INSERT INTO scheduled_jobs (brand_id, job_type, name, schedule_type, cron_expression,
                timezone, next_run_at, status, parameters, max_retries, retry_base_seconds,
                retry_cap_seconds, created_at, updated_at)
            SELECT 'brand-' || b %% 100, 'noop', 'sync', 'recurring', '0 * * * *', 'UTC', %(t)s,
                CASE WHEN b <= 100 THEN 'active' ELSE 'archived' END, '{}', 3, 300, 3600,
                %(t)s, %(t)s
            FROM generate_series(1, 2000) AS b
            """,
            {"t": T0},
        )
        conn.execute(
            """
            INSERT INTO scheduled_job_runs (job_id, attempt, status, started_at, finished_at,
                heartbeat_at, worker_id, lease_token)
            SELECT j.id, 1, 'completed', %(t)s, %(t)s, %(t)s, 'w', md5(j.id || '-' || n)
            FROM scheduled_jobs AS j, generate_series(1, 10) AS n
            """,
            {"t": T0},
        )
        conn.execute(
            "UPDATE scheduled_jobs AS j SET last_run_id = "
            "(SELECT max(r.id) FROM scheduled_job_runs AS r WHERE r.job_id = j.id)"
        )
        conn.execute("ANALYZE")
    # A new session: PostgreSQL 15 counts the reads of a session's earlier transactions in
    # pg_stat_xact_* until it flushes them (the UPDATE above read 2,000 runs).
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        with conn.transaction():
            (doc,) = conn.execute(
                "SELECT pipectl_status_snapshot(true, NULL, ARRAY['active'], %s, %s, 50)",
                (T0, T0),
            ).fetchone()
            # This transaction's own reads, not yet reported to the server's statistics.
            (read,) = conn.execute(
                "SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables "
                "WHERE relid = 'scheduled_job_runs'::regclass"
            ).fetchone()
    assert len(doc["last_runs"]) == 100
    # The 100 last runs and a couple of index probes for running runs (there are none).
    assert read <= 200, f"the snapshot read {read} of 20,000 runs for 100 jobs' last runs"
