"""Query plans of the claim and of `status` on the big history, for docs/benchmarks.md.

SQLite: the statements the store really runs are captured with a trace callback while
`Client.status` and `claim_due` run, then each is explained. PostgreSQL: the pipectl_* functions
(the store's whole database API) are called as the store calls them, with auto_explain logging
every statement inside them, nested ones included, as notices to this client."""

from __future__ import annotations

from datetime import timedelta

from benchmarks.stores import PostgresBench, SQLiteBench
from pipectl import clock
from pipectl.client import Client
from pipectl.settings import load_settings


def explain_sqlite(store: SQLiteBench, brand: str) -> str:
    from pipectl.store.sqlite import SQLiteStore

    traced = SQLiteStore(store.url)
    statements: list[str] = []
    traced.conn.set_trace_callback(statements.append)
    client = Client(traced, load_settings(database_url=store.url))
    sections = []
    for title, call in (
        (
            "claim (nothing is due: the plan is the same)",
            lambda: traced.claim_due("x", clock.now(), 10),
        ),
        (f"status --brand {brand}", lambda: client.status(brand_id=brand)),
        ("status (every brand)", lambda: client.status()),
    ):
        statements.clear()
        call()
        lines = [f"-- {title}"]
        for statement in statements:
            if not statement.lstrip().upper().startswith(("SELECT", "WITH", "UPDATE", "INSERT")):
                continue
            plan = traced.conn.execute(f"EXPLAIN QUERY PLAN {statement}").fetchall()
            lines.append(_one_line(statement))
            lines += [f"    {'  ' * _depth(row, plan)}{row[3]}" for row in plan]
        sections.append("\n".join(lines))
    traced.close()
    return "\n\n".join(sections)


def _depth(row: tuple[int, int, int, str], plan: list[tuple[int, int, int, str]]) -> int:
    parents = {r[0]: r[1] for r in plan}
    depth, parent = 0, row[1]
    while parent:
        depth += 1
        parent = parents.get(parent, 0)
    return depth


def _one_line(statement: str, width: int = 150) -> str:
    text = " ".join(statement.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def explain_postgres(store: PostgresBench, brand: str) -> str:
    import psycopg

    conn = psycopg.connect(store.url, autocommit=True)
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    for setting in (
        "LOAD 'auto_explain'",
        "SET auto_explain.log_min_duration = 0",
        "SET auto_explain.log_nested_statements = on",
        "SET auto_explain.log_analyze = on",
        "SET auto_explain.log_timing = off",
        "SET auto_explain.log_level = notice",
        "SET client_min_messages = notice",
    ):
        conn.execute(setting)
    now = clock.now()
    stale_before = now - timedelta(minutes=5)
    (last_runs,) = conn.execute(
        "SELECT array_agg(last_run_id) FROM scheduled_jobs "
        "WHERE brand_id = %s AND status IN ('active', 'running', 'paused', 'failed')",
        (brand,),
    ).fetchone()
    calls = {
        "claim (in a transaction rolled back; nothing is due)": (
            "SELECT * FROM pipectl_claim_due(p_worker_id => 'explain', p_now => %s, p_limit => 10)",
            (now,),
        ),
        f"status --brand {brand}: jobs": (
            "SELECT * FROM pipectl_list_jobs(p_all_brands => false, p_brand_id => %s, "
            "p_statuses => ARRAY['active', 'running', 'paused', 'failed'])",
            (brand,),
        ),
        f"status --brand {brand}: datasets": (
            "SELECT * FROM pipectl_dataset_statuses(p_all_brands => false, p_brand_id => %s)",
            (brand,),
        ),
        f"status --brand {brand}: last runs": (
            "SELECT * FROM pipectl_runs_by_id(p_run_ids => %s)",
            (last_runs or [],),
        ),
        "status: stuck runs": (
            "SELECT * FROM pipectl_stale_runs(p_heartbeat_before => %s)",
            (stale_before,),
        ),
        "status: running runs (what due jobs wait on)": (
            "SELECT * FROM pipectl_list_runs(p_status => 'running', p_limit => 10000)",
            (),
        ),
        "status (every brand): datasets": ("SELECT * FROM pipectl_dataset_statuses()", ()),
    }
    sections = []
    for title, (query, params) in calls.items():
        notices.clear()
        with conn.transaction(force_rollback=True):
            conn.execute(query, params).fetchall()
        sections.append(f"-- {title}\n" + "\n".join(notices))
    conn.close()
    return "\n\n".join(sections)
