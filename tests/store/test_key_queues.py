"""A claim reads one job per concurrency key, however many wait behind it (issue 20), and its key
locks are its own schema's (issue 19): counted on the real stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from test_contract import T0, new_job

from pipectl.client import Client
from pipectl.models import Job
from pipectl.store import Store, open_store
from pipectl.store.functions import job_from_row
from pipectl.store.postgres import split_schema
from pipectl.store.sqlite import SQLiteStore

WAITING = 2_000
# Every column a job needs, copied from one job: `waiting` jobs in one statement.
COPY_COLUMNS = (
    "brand_id, job_type, name, schedule_type, timezone, next_run_at, status, parameters, "
    "max_retries, retry_base_seconds, retry_cap_seconds, concurrency_key, created_at, updated_at"
)


def pg_connect(url: str) -> psycopg.Connection:
    """A plain connection in the schema of a `?schema=` URL, in a transaction until commit."""
    conninfo, schema = split_schema(url)
    conn = psycopg.connect(conninfo)
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema or "public")))
    conn.commit()
    return conn


def claimed_job(row: list[Any]) -> Job:
    """The job of one row of pipectl_claim_due: [run, job], each an array in field order."""
    return job_from_row(row[1])


def queue_behind_a_taken_key(store: Store, url: str, waiting: int) -> int:
    """A key `busy` with a running run and `waiting` due jobs behind it, all due before one job
    of a free key; returns the free job's id."""
    store.insert_job(new_job(concurrency_key="busy", next_run_at=T0 - timedelta(hours=2)), T0)
    assert len(store.claim_due("w", T0, 1)) == 1
    template = store.insert_job(
        new_job(concurrency_key="busy", next_run_at=T0 - timedelta(hours=1)), T0
    )
    copy = f"INSERT INTO scheduled_jobs ({COPY_COLUMNS}) SELECT {COPY_COLUMNS} FROM scheduled_jobs"
    if isinstance(store, SQLiteStore):
        with store.conn:
            store.conn.executemany(f"{copy} WHERE id = ?", [(template.id,)] * (waiting - 1))
    else:
        with pg_connect(url) as conn:
            conn.execute(f"{copy}, generate_series(2, %s) WHERE id = %s", (waiting, template.id))
            # Statistics that know one key only: any key looks as common as that one, which
            # once made the planner look for the free key's head along the due jobs.
            conn.execute("ANALYZE scheduled_jobs")
    return store.insert_job(new_job(concurrency_key="free"), T0).id


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    Client.migrate_url(url)
    store = open_store(url)
    assert isinstance(store, SQLiteStore)
    yield store
    store.close()


def sqlite_claim_steps(store: SQLiteStore) -> tuple[list[int], int]:
    """The jobs a claim of 32 takes and the SQLite VM steps it took (one per instruction, the
    cost of every row read included)."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    store.conn.set_progress_handler(count, 1)
    try:
        claimed = [claim.job.id for claim in store.claim_due("w", T0, 32)]
    finally:
        store.conn.set_progress_handler(None, 1)
    return claimed, steps


def test_sqlite_claim_passes_a_taken_key_in_steps_that_do_not_grow_with_its_queue(
    sqlite_store: SQLiteStore, tmp_path: Path
) -> None:
    free = queue_behind_a_taken_key(sqlite_store, "", WAITING)
    claimed, steps = sqlite_claim_steps(sqlite_store)
    assert claimed == [free]

    url = f"sqlite:///{tmp_path / 'few.db'}"
    Client.migrate_url(url)
    few = open_store(url)
    assert isinstance(few, SQLiteStore)
    few_free = queue_behind_a_taken_key(few, url, 20)
    few_claimed, few_steps = sqlite_claim_steps(few)
    few.close()
    assert few_claimed == [few_free]
    # 2,000 jobs behind the key cost what 20 do (reading each of them took ~50x as many steps).
    assert steps <= few_steps * 1.2, (steps, few_steps)


def test_postgres_claim_passes_a_taken_key_reading_a_bounded_number_of_rows(
    postgres_url: str,
) -> None:
    Client.migrate_url(postgres_url)
    store = open_store(postgres_url)
    free = queue_behind_a_taken_key(store, postgres_url, WAITING)
    store.close()
    with pg_connect(postgres_url) as conn:
        claimed = conn.execute("SELECT pipectl_claim_due('w', %s, 32)", (T0,)).fetchall()
        assert [claimed_job(row[0]).id for row in claimed] == [free]
        # What this transaction read of the jobs: index entries, and rows by index or scan.
        (entries,) = conn.execute(
            "SELECT sum(pg_stat_get_xact_tuples_returned(indexrelid)) FROM pg_index "
            "WHERE indrelid = 'scheduled_jobs'::regclass"
        ).fetchone()
        (rows,) = conn.execute(
            "SELECT idx_tup_fetch + seq_tup_read FROM pg_stat_xact_user_tables "
            "WHERE relid = 'scheduled_jobs'::regclass"
        ).fetchone()
    assert entries <= 10 and rows <= 10, (entries, rows)


def test_a_claim_in_one_schema_does_not_hold_the_same_key_in_another(
    two_schemas: tuple[str, str],
) -> None:
    first, second = two_schemas
    for url in two_schemas:
        store = open_store(url)
        store.insert_job(new_job(concurrency_key="shared"), T0)
        store.close()
    with pg_connect(first) as holding:
        # A claim in the first schema, its transaction (and its key lock) still open.
        (taken,) = holding.execute("SELECT pipectl_claim_due('a', %s, 1)", (T0,)).fetchall()
        assert claimed_job(taken[0]).concurrency_key == "shared"
        store = open_store(second)
        claimed = store.claim_due("b", T0, 1)
        store.close()
        assert [claim.job.concurrency_key for claim in claimed] == ["shared"]


@pytest.mark.postgres
@pytest.mark.parametrize("key", [None, "per-job"])
def test_postgres_claim_reads_past_the_jobs_a_concurrent_claim_holds(
    postgres_url: str, key: str | None
) -> None:
    """Two workers claim at once: the second reads past the jobs the first holds (locked until
    its claim commits) and takes the next ones, instead of coming back empty, which would stop
    a `run-worker --once` with work still due. With and without concurrency keys."""
    Client.migrate_url(postgres_url)
    store = open_store(postgres_url)
    ids = [
        store.insert_job(
            new_job(
                concurrency_key=f"{key}-{n}" if key else None,
                next_run_at=T0 - timedelta(minutes=10 - n),
            ),
            T0,
        ).id
        for n in range(6)
    ]
    with pg_connect(postgres_url) as first:
        held = first.execute(
            "SELECT * FROM pipectl_claim_due(%s, %s, %s)", ("first", T0, 3)
        ).fetchall()
        assert len(held) == 3  # the oldest three, locked until `first` commits
        second = store.claim_due("second", T0, 3)
        assert sorted(claim.job.id for claim in second) == ids[3:]
        first.commit()
    assert store.claim_due("third", T0, 3) == []
    store.close()
