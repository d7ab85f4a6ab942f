"""sql/sqlite/queries.sql beside the PostgreSQL functions: each statement carries the name of the
function it stands for, so the two dialects read side by side; and the listings read their
indexes."""

from __future__ import annotations

import re
import sqlite3
from importlib import resources
from pathlib import Path

import pytest

from pipectl.store.migrations import load_queries
from pipectl.store.sqlite import SQL, SQLiteStore

# Fragments of SQLite statements with no function of their own on PostgreSQL, which states
# them inside the functions that use them.
SQLITE_ONLY = {
    "lease_guard": "a finish's guard in record_outcomes_runs (inside pipectl_record_outcomes)",
    "in_backoff": "lifecycle.in_backoff, stated once per dialect (inside pipectl_list_jobs)",
}


def postgres_functions() -> set[str]:
    schema = (resources.files("pipectl.store") / "sql" / "postgres" / "schema.sql").read_text()
    return set(re.findall(r"^CREATE FUNCTION pipectl_(\w+)\(", schema, re.MULTILINE))


def function_of(name: str, functions: set[str]) -> str | None:
    """The PostgreSQL function a statement stands for: its name, or the name less a suffix (one
    function that takes several statements here, as claim_due_runs and claim_due_jobs)."""
    parts = name.split("_")
    for end in range(len(parts), 0, -1):
        if "_".join(parts[:end]) in functions:
            return "_".join(parts[:end])
    return None


def test_every_sqlite_statement_is_named_for_a_postgres_function() -> None:
    functions = postgres_functions()
    assert {"claim_due", "list_jobs", "is_stuck"} <= functions
    unmatched = {name for name in load_queries("sqlite") if function_of(name, functions) is None}
    assert unmatched == set(SQLITE_ONLY), "name each statement for its pipectl_ function"
    assert function_of("claim_due_runs", functions) == "claim_due"
    assert function_of("stuck_runs", functions) == "stuck_runs"


def test_a_fragment_is_filled_in_where_it_is_named() -> None:
    assert "{" not in SQL["list_jobs_live_of_brand"]
    assert SQL["in_backoff"] in SQL["list_jobs_live_of_brand"]
    assert SQL["is_stuck"] in SQL["stuck_runs"]


LISTINGS = {
    # statement: what EXPLAIN QUERY PLAN must show it reads
    "list_jobs_of_brand": "USING INDEX scheduled_jobs_brand (brand_id=?)",
    "list_jobs_live": "USING INDEX scheduled_jobs_live",
    "list_jobs_live_of_brand": "USING INDEX scheduled_jobs_live (brand_id=?)",
    "list_runs_of_job": "USING INDEX scheduled_job_runs_job (job_id=?)",
    "list_runs_of_brand": "USING COVERING INDEX scheduled_jobs_brand (brand_id=?)",
    "list_runs_running": "USING INDEX scheduled_job_runs_running",
}


@pytest.mark.parametrize("name", LISTINGS)
def test_a_listing_reads_its_index(name: str, tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'plans.db'}", create=True)
    store.migrate()
    store.close()
    params = {
        "brand_id": "acme",
        "all_brands": False,
        "job_id": 1,
        "job_type": None,
        "statuses": None,
        "in_backoff": False,
        "status": None,
        "limit": 50,
    }
    conn = sqlite3.connect(tmp_path / "plans.db")
    try:
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + SQL[name], params)]
    finally:
        conn.close()
    assert any(LISTINGS[name] in step for step in plan), plan
