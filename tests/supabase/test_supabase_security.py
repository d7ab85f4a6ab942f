"""Row-level security and grants (migration 0002): on a database set up like a Supabase
project's, the `anon` and `authenticated` roles can neither call pipectl's functions nor read or
write its tables, while `service_role` can and the owner (the postgres backend) still can."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from psycopg import errors
from supabase_server import SupabaseProject, make_key

from pipectl.client import Client
from pipectl.errors import StoreUnavailable
from pipectl.store.supabase import SupabaseStore

pytestmark = pytest.mark.postgres

OUTSIDERS = ("anon", "authenticated")


@pytest.fixture
def project(supabase_url: str, supabase_project: SupabaseProject) -> SupabaseProject:
    """Installed, with one job in it (queued through the API with the service_role key)."""
    with Client.from_env() as client:
        client.enqueue("noop", "acme", {"datasets": ["orders"]})
    return supabase_project


@pytest.fixture
def db(project: SupabaseProject) -> Iterator[psycopg.Connection]:
    """The project's database as its owner (`postgres`, like the SQL editor)."""
    with psycopg.connect(project.dsn, autocommit=True) as conn:
        yield conn


def pipectl_tables(db: psycopg.Connection) -> list[str]:
    # The project's database holds nothing but pipectl, so every table in public is one.
    rows = db.execute(
        "SELECT relname FROM pg_class "
        "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY relname"
    ).fetchall()
    return [name for (name,) in rows]


def pipectl_functions(db: psycopg.Connection) -> list[tuple[str, list[str]]]:
    """(name, input argument names) of every pipectl_* function."""
    rows = db.execute(
        "SELECT proname, coalesce(proargnames, '{}'), proargmodes FROM pg_proc "
        "WHERE pronamespace = 'public'::regnamespace AND proname LIKE 'pipectl\\_%' "
        "ORDER BY proname"
    ).fetchall()
    # Without modes every argument is an input; otherwise leave out OUT and TABLE columns.
    return [
        (
            name,
            [
                arg
                for arg, mode in zip(args, modes or "i" * len(args), strict=True)
                if mode in "ibv"
            ],
        )
        for name, args, modes in rows
    ]


def test_catalogue_rls_on_every_table_and_execute_for_service_role_only(
    db: psycopg.Connection,
) -> None:
    tables = pipectl_tables(db)
    assert {"scheduled_jobs", "scheduled_job_runs", "workers", "pipectl_schema_migrations"} <= set(
        tables
    )
    for table in tables:
        (rls,) = db.execute(
            "SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass", [table]
        ).fetchone()
        assert rls, f"{table} has no row-level security"
        (policies,) = db.execute(
            "SELECT count(*) FROM pg_policy WHERE polrelid = %s::regclass", [table]
        ).fetchone()
        assert policies == 0, f"{table} has a policy"
        for role in OUTSIDERS:
            (granted,) = db.execute(
                "SELECT has_table_privilege(%s, %s, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')",
                [role, table],
            ).fetchone()
            assert not granted, f"{role} has a privilege on {table}"

    functions = pipectl_functions(db)
    assert "pipectl_record_outcomes" in {name for name, _ in functions}
    for oid, name in db.execute(
        "SELECT oid, proname FROM pg_proc "
        "WHERE pronamespace = 'public'::regnamespace AND proname LIKE 'pipectl\\_%'"
    ).fetchall():
        for role in OUTSIDERS:
            (can,) = db.execute(
                "SELECT has_function_privilege(%s, %s, 'EXECUTE')", [role, oid]
            ).fetchone()
            assert not can, f"{role} may execute {name}"
        (public,) = db.execute(
            "SELECT count(*) FROM pg_proc, aclexplode(proacl) AS acl "
            "WHERE pg_proc.oid = %s AND acl.grantee = 0",
            [oid],
        ).fetchone()
        assert public == 0, f"PUBLIC may execute {name}"
        (can,) = db.execute(
            "SELECT has_function_privilege('service_role', %s, 'EXECUTE')", [oid]
        ).fetchone()
        assert can, f"service_role may not execute {name}"

    sequences = db.execute(
        "SELECT oid::regclass::text FROM pg_class "
        "WHERE relnamespace = 'public'::regnamespace AND relkind = 'S'"
    ).fetchall()
    assert sequences
    for (sequence,) in sequences:
        for role in OUTSIDERS:
            (granted,) = db.execute(
                "SELECT has_sequence_privilege(%s, %s, 'USAGE, SELECT, UPDATE')", [role, sequence]
            ).fetchone()
            assert not granted, f"{role} may use {sequence}"


@pytest.mark.parametrize("role", OUTSIDERS)
def test_outsider_keys_cannot_call_any_function(project: SupabaseProject, role: str) -> None:
    """Every pipectl_* function, called through the API with an anon key or a signed-in user's
    token, the internal pipectl_record_outcomes included: permission denied, nothing done."""
    from postgrest.exceptions import APIError
    from supabase import ClientOptions, create_client

    with psycopg.connect(project.dsn, autocommit=True) as owner:
        functions = pipectl_functions(owner)
        before = owner.execute("SELECT count(*) FROM scheduled_jobs").fetchone()
    with httpx.Client() as http:
        api = create_client(project.url, make_key(role), ClientOptions(httpx_client=http))
        for name, arguments in functions:
            with pytest.raises(APIError) as refused:
                api.rpc(name, dict.fromkeys(arguments)).execute()
            assert refused.value.code == "42501", (name, refused.value)
            assert "permission denied" in (refused.value.message or "")
    with psycopg.connect(project.dsn, autocommit=True) as owner:
        assert owner.execute("SELECT count(*) FROM scheduled_jobs").fetchone() == before

    store = SupabaseStore(project.store_url, make_key(role))
    try:
        with pytest.raises(StoreUnavailable, match="not the anon key"):
            store.list_jobs()
    finally:
        store.close()


@pytest.mark.parametrize("role", OUTSIDERS)
def test_outsider_roles_cannot_read_or_write_the_tables(db: psycopg.Connection, role: str) -> None:
    """Straight SQL as the role (what PostgREST's table endpoints would run): denied."""
    statements = [
        "SELECT * FROM scheduled_jobs",
        "UPDATE scheduled_jobs SET status = 'paused'",
        "DELETE FROM scheduled_jobs",
        "INSERT INTO scheduled_jobs (job_type, name, schedule_type, status, max_retries, "
        "retry_base_seconds, retry_cap_seconds, created_at, updated_at) "
        "VALUES ('noop', 'x', 'one_time', 'active', 0, 1, 1, now(), now())",
        "SELECT * FROM scheduled_job_runs",
        "SELECT * FROM dataset_status",
        "SELECT * FROM dataset_thresholds",
        "SELECT * FROM workers",
        "INSERT INTO workers VALUES ('w', 'h', 1, now(), now(), 'v')",
        "DELETE FROM pipectl_schema_migrations",
        "SELECT nextval(pg_get_serial_sequence('scheduled_jobs', 'id'))",
    ]
    for query in statements:
        with pytest.raises(errors.InsufficientPrivilege), db.transaction():
            db.execute(f"SET LOCAL ROLE {role}")
            db.execute(query)
    (jobs,) = db.execute("SELECT count(*) FROM scheduled_jobs WHERE status = 'active'").fetchone()
    assert jobs == 1


def test_row_level_security_alone_keeps_anon_out(db: psycopg.Connection) -> None:
    """Even with the table privileges given back (a careless `GRANT ALL … TO anon`, or a
    dashboard default), RLS without a policy shows anon no row and lets it write none."""
    tables = pipectl_tables(db)
    for table in tables:
        db.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO anon")
    with db.transaction():
        db.execute("SET LOCAL ROLE anon")
        for table in tables:
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
        assert db.execute("UPDATE scheduled_jobs SET status = 'paused'").rowcount == 0
        assert db.execute("DELETE FROM scheduled_jobs").rowcount == 0
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"), db.transaction():
        db.execute("SET LOCAL ROLE anon")
        db.execute("INSERT INTO workers VALUES ('w', 'h', 1, now(), now(), 'v')")
    (active,) = db.execute("SELECT count(*) FROM scheduled_jobs WHERE status = 'active'").fetchone()
    assert active == 1


def test_service_role_bypasses_rls_and_the_owner_still_works(
    project: SupabaseProject, db: psycopg.Connection
) -> None:
    """service_role (BYPASSRLS) sees the rows in plain SQL too, and the postgres backend,
    connecting as the owner, reads what the supabase backend wrote: one schema, two transports."""
    with db.transaction():
        db.execute("SET LOCAL ROLE service_role")
        assert db.execute("SELECT count(*) FROM scheduled_jobs").fetchone() == (1,)
    with Client.from_url(project.dsn) as owner:
        (job,) = owner.list_jobs()
        assert (job.job_type, job.brand_id) == ("noop", "acme")
        owner.enqueue("noop", "beta")
    with Client.from_env() as api:
        assert [j.brand_id for j in api.list_jobs()] == ["acme", "beta"]
        assert api.store.db_now().tzinfo == UTC
        assert abs((api.store.db_now() - datetime.now(UTC)).total_seconds()) < 5
