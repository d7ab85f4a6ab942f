"""Query plans of the claim and of `status` on the big history, for docs/benchmarks.md.

SQLite: the statements the store really runs are captured with a trace callback while
`Client.status` and `claim_due` run, then each is explained. PostgreSQL: the same calls go
through pipectl's own store with auto_explain loaded in its sessions, which sends the plan of
every statement, those inside the pipectl_* functions included, to the client as a notice."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from benchmarks.stores import PostgresBench, SQLiteBench, Store
from pipectl import clock
from pipectl.client import Client
from pipectl.settings import load_settings

if TYPE_CHECKING:
    from pipectl.store.sqlite import SQLiteStore


def explain_sqlite(store: SQLiteBench, brand: str) -> str:
    from pipectl.store.sqlite import SQLiteStore

    traced = SQLiteStore(store.url)
    client = Client(traced, load_settings(database_url=store.url))
    try:
        return _sqlite_plans(
            traced,
            (
                (
                    "claim (nothing is due: the plan is the same)",
                    lambda: traced.claim_due("x", clock.now(), 10),
                ),
                (f"status --brand {brand}", lambda: client.status(brand_id=brand)),
                ("status (every brand)", lambda: client.status()),
            ),
        )
    finally:
        traced.close()


def _sqlite_plans(traced: SQLiteStore, calls: Sequence[tuple[str, Callable[[], object]]]) -> str:
    """The plan of each statement each call runs, captured with a trace callback."""
    statements: list[str] = []
    traced.conn.set_trace_callback(statements.append)
    sections = []
    for title, call in calls:
        statements.clear()
        call()
        lines = [f"-- {title}"]
        for statement in list(statements):
            if not statement.lstrip().upper().startswith(("SELECT", "WITH", "UPDATE", "INSERT")):
                continue
            plan = traced.conn.execute(f"EXPLAIN QUERY PLAN {statement}").fetchall()
            lines.append(_one_line(statement))
            lines += [f"    {'  ' * _depth(row, plan)}{row[3]}" for row in plan]
        sections.append("\n".join(lines))
    traced.conn.set_trace_callback(None)
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
    return _postgres_plans(
        store.url,
        (
            (
                "claim (nothing is due: the plan is the same)",
                lambda client: client.store.claim_due("x", clock.now(), 10),
            ),
            (f"status --brand {brand}", lambda client: client.status(brand_id=brand)),
            ("status (every brand)", lambda client: client.status()),
        ),
    )


def explain_taken_key(store: Store, waiting: int) -> str:
    """The plans of a claim of 32 with a key taken (a running run) and `waiting` due jobs of
    that key queued before one due job of a free key; leaves them claimed."""
    from pipectl.store import open_store

    setup = open_store(store.url)
    try:
        store.add_due_noop_jobs(1, 1)
        assert len(setup.claim_due("x", clock.now(), 1)) == 1
        store.add_due_noop_jobs(waiting + 1, 1)
        store.sql(
            "UPDATE scheduled_jobs SET concurrency_key = 'free' "
            "WHERE id = (SELECT max(id) FROM scheduled_jobs)"
        )
    finally:
        setup.close()
    title = f"claim of 32: a key taken, {waiting:,} due jobs of it before one of a free key"
    if store.dialect == "sqlite":
        from pipectl.store.sqlite import SQLiteStore

        traced = SQLiteStore(store.url)
        try:
            return _sqlite_plans(traced, ((title, lambda: traced.claim_due("x", clock.now(), 32)),))
        finally:
            traced.close()
    return _postgres_plans(
        store.url, ((title, lambda client: client.store.claim_due("x", clock.now(), 32)),)
    )


def _postgres_plans(url: str, calls: Sequence[tuple[str, Callable[[Client], object]]]) -> str:
    """The plan of every statement each call runs through a client of the store at `url`,
    those inside the pipectl_* functions included, with the rows each node really read."""
    import os

    import psycopg

    notices: list[str] = []
    connect = psycopg.connect

    def connect_and_listen(*args: object, **kwargs: object) -> psycopg.Connection:
        conn = connect(*args, **kwargs)  # type: ignore[arg-type]
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        return conn

    # auto_explain in every session pipectl opens here, its plans sent to the client as notices.
    options = os.environ.get("PGOPTIONS")
    os.environ["PGOPTIONS"] = " ".join(
        f"-c {setting}"
        for setting in (
            "session_preload_libraries=auto_explain",
            "auto_explain.log_min_duration=0",
            "auto_explain.log_nested_statements=on",
            "auto_explain.log_analyze=on",
            "auto_explain.log_buffers=on",
            "auto_explain.log_timing=off",
            "auto_explain.log_level=notice",
        )
    )
    psycopg.connect = connect_and_listen  # type: ignore[assignment]
    try:
        client = Client.from_url(url, load_settings(database_url=url))
        sections = []
        for title, call in calls:
            notices.clear()
            call(client)
            sections.append(f"-- {title}\n" + "\n".join(notices))
        client.close()
    finally:
        psycopg.connect = connect
        if options is None:
            os.environ.pop("PGOPTIONS", None)
        else:
            os.environ["PGOPTIONS"] = options
    return "\n\n".join(sections)
