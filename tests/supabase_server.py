"""A stand-in for a Supabase project's API, for the supabase backend's tests: the part of it
pipectl uses (`POST /rest/v1/rpc/<function>`), served over the real PostgreSQL test server.

PostgREST cannot be installed on these machines, so this small server does what Supabase's API
gateway and PostgREST do for an RPC call, and nothing else:

- gateway: the `apikey` header must be one of the project's keys (a JWT signed with the
  project's secret); missing → 401 "No API key found in request", wrong → 401 "Invalid API key";
- PostgREST auth: `Authorization: Bearer <JWT>` is verified (HS256, the same secret) and its
  `role` claim becomes the transaction's role (`SET LOCAL ROLE`); no bearer → `anon`; a bad
  JWT → 401 PGRST301;
- PostgREST schemas: `Content-Profile` picks one of the exposed schemas (default: the first),
  another → 406 PGRST106; the call runs with `search_path` set to that schema;
- PostgREST RPC: the function is looked up in pg_proc by name and argument names (missing →
  404 PGRST202); the JSON object's values are cast to the parameter types by
  `json_to_record`, as PostgREST does, and the function is called with named arguments in one
  transaction; the answer is the value as JSON (a scalar function), a JSON array (SETOF) or
  204 No Content (void);
- errors: PostgreSQL's as `{"code", "message", "details", "hint"}` with PostgREST's HTTP
  statuses (400 by default, 409 for unique/foreign-key violations, 404 for a missing function,
  403 for "permission denied" …).

Not served: tables, filters, GET/HEAD calls, `Prefer` headers, embedding, OpenAPI, auth,
storage, realtime. Function lookups hit pg_proc every call: there is no schema cache to reload.

`supabase_project` (a fixture) gives each test a fresh database whose `public` schema is set up
as Supabase sets it up: roles `anon`, `authenticated` (NOLOGIN) and `service_role` (NOLOGIN
BYPASSRLS), usage on `public` and default privileges granting them everything created there —
so row-level security and pipectl's revokes are what keep `anon` out, as on Supabase.
"""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt
import psycopg
import pytest
from psycopg import sql

JWT_SECRET = "pipectl-tests-jwt-secret-of-at-least-32-bytes"
RPC_PREFIX = "/rest/v1/rpc/"

# PostgREST's table of HTTP statuses per SQLSTATE (docs.postgrest.org, "Errors"), first match
# wins; anything else is 400.
_STATUS_BY_CODE = (
    ("08", 503),
    ("09", 500),
    ("0L", 403),
    ("0P", 403),
    ("23503", 409),
    ("23505", 409),
    ("25006", 405),
    ("25", 500),
    ("28", 403),
    ("2D", 500),
    ("38", 500),
    ("39", 500),
    ("3B", 500),
    ("40", 500),
    ("53400", 500),
    ("53", 503),
    ("54", 500),
    ("55", 500),
    ("57", 500),
    ("58", 500),
    ("F0", 500),
    ("HV", 500),
    ("P0001", 400),
    ("P0", 500),
    ("42883", 404),
    ("42P01", 404),
    ("42P17", 500),
    ("42501", 403),
)


# The keys' validity: issued long ago and valid for long, so that they hold at any instant a
# test moves freezegun's clock to (the stand-in checks `iat` and `exp` against that clock).
KEY_ISSUED_AT = 946_684_800  # 2000-01-01
KEY_EXPIRES_AT = 4_102_444_800  # 2100-01-01


def make_key(role: str, secret: str = JWT_SECRET) -> str:
    """A project API key as Supabase issues them: a long-lived HS256 JWT with a `role` claim."""
    claims = {"iss": "supabase", "ref": "pipectl-tests", "role": role}
    return jwt.encode({**claims, "iat": KEY_ISSUED_AT, "exp": KEY_EXPIRES_AT}, secret)


def http_status(code: str) -> int:
    return next((status for prefix, status in _STATUS_BY_CODE if code.startswith(prefix)), 400)


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, code: str | None = None, **extra: str | None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, **extra}
        if code is not None:
            self.body = {"code": code, "details": None, "hint": None, **self.body}


@dataclass(frozen=True)
class Function:
    returns_set: bool
    returns_void: bool
    arguments: tuple[tuple[str, str], ...]  # (name, type), in order
    required: frozenset[str]


class RpcServer(ThreadingHTTPServer):
    """`POST /rest/v1/rpc/<function>` over PostgreSQL at `dsn`, exposing `schemas`."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, dsn: str, schemas: list[str], secret: str = JWT_SECRET) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.dsn = dsn
        self.schemas = schemas
        self.secret = secret
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._opened: list[psycopg.Connection] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> RpcServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
        for conn in self._opened:
            conn.close()

    # -- one call -------------------------------------------------------------------------
    def call(self, headers: Any, name: str, body: bytes) -> tuple[int, bytes | None]:
        role = self._authorize(headers)
        schema = headers.get("Content-Profile") or self.schemas[0]
        if schema not in self.schemas:
            raise ApiError(
                406,
                f"Invalid schema: {schema}",
                "PGRST106",
                hint=f"Only the following schemas are exposed: {', '.join(self.schemas)}",
            )
        try:
            args = json.loads(body or b"{}")
        except ValueError:
            raise ApiError(400, "Empty or invalid json", "PGRST102") from None
        if not isinstance(args, dict):
            raise ApiError(400, "Empty or invalid json", "PGRST102")
        conn = self._connection()
        try:
            with conn.transaction():
                function = self._lookup(conn, schema, name, set(args))
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
                result = self._execute(conn, schema, name, function, args)
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError) and conn.broken:
                conn.close()
            diag = exc.diag
            code = diag.sqlstate or "XX000"
            raise ApiError(
                http_status(code),
                diag.message_primary or str(exc),
                code,
                details=diag.message_detail,
                hint=diag.message_hint,
            ) from None
        finally:
            if not conn.closed:
                self._idle.put(conn)
        if function.returns_void:
            return 204, None
        return 200, result.encode()

    def _authorize(self, headers: Any) -> str:
        apikey = headers.get("apikey")
        if not apikey:
            raise ApiError(
                401,
                "No API key found in request",
                hint="No `apikey` request header or url param was found.",
            )
        try:
            jwt.decode(apikey, self.secret, algorithms=["HS256"])
        except jwt.PyJWTError:
            raise ApiError(
                401,
                "Invalid API key",
                hint="Double check your Supabase `anon` or `service_role` API key.",
            ) from None
        bearer = headers.get("Authorization", "")
        if not bearer.startswith("Bearer "):
            return "anon"
        try:
            claims = jwt.decode(bearer.removeprefix("Bearer "), self.secret, algorithms=["HS256"])
        except jwt.PyJWTError as exc:
            raise ApiError(401, f"JWSError {type(exc).__name__}", "PGRST301") from None
        return str(claims.get("role") or "anon")

    def _connection(self) -> psycopg.Connection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            conn = psycopg.connect(self.dsn, autocommit=True)
            self._opened.append(conn)
            return conn

    def _lookup(
        self, conn: psycopg.Connection, schema: str, name: str, given: set[str]
    ) -> Function:
        rows = conn.execute(
            """
            SELECT p.proretset, p.prorettype = 'void'::regtype, p.pronargdefaults,
                   ARRAY(SELECT format_type(t.oid, NULL)
                         FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS t (oid, n)
                         ORDER BY t.n),
                   coalesce(p.proargnames, '{}')
            FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
            WHERE n.nspname = %s AND p.proname = %s AND p.prokind = 'f'
            """,
            (schema, name),
        ).fetchall()
        for returns_set, returns_void, defaults, types, names in rows:
            arguments = tuple(zip(names[: len(types)], types, strict=True))
            required = frozenset(arg for arg, _ in arguments[: len(arguments) - defaults])
            if required <= given <= {arg for arg, _ in arguments}:
                return Function(returns_set, returns_void, arguments, required)
        listed = ", ".join(sorted(given))
        raise ApiError(
            404,
            f"Could not find the function {schema}.{name}({listed}) in the schema cache",
            "PGRST202",
            details=f"Searched for the function {schema}.{name} with parameters {listed} or with "
            "a single unnamed json/jsonb parameter, but no matches were found in the schema cache.",
            hint=None,
        )

    def _execute(
        self,
        conn: psycopg.Connection,
        schema: str,
        name: str,
        function: Function,
        args: dict[str, Any],
    ) -> str:
        used = [(arg, type_) for arg, type_ in function.arguments if arg in args]
        call = sql.SQL("{}.{}({})").format(
            sql.Identifier(schema),
            sql.Identifier(name),
            sql.SQL(", ").join(
                sql.SQL("{} => r.{}").format(sql.Identifier(arg), sql.Identifier(arg))
                for arg, _ in used
            ),
        )
        if used:
            source = sql.SQL("json_to_record(%(args)s::json) AS r ({})").format(
                sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(arg), sql.SQL(type_))
                    for arg, type_ in used
                )
            )
        else:
            source = sql.SQL("(SELECT) AS r")
        body = (
            "coalesce(json_agg(c.value), '[]')::text"
            if function.returns_set
            else "coalesce((json_agg(c.value) -> 0)::text, 'null')"
        )
        query = sql.SQL("SELECT {} FROM {}, LATERAL (SELECT {} AS value) AS c").format(
            sql.SQL(body), source, call
        )
        (result,) = conn.execute(query, {"args": json.dumps(args)}).fetchone()
        return result


class _Handler(BaseHTTPRequestHandler):
    server: RpcServer
    protocol_version = "HTTP/1.1"
    timeout = 30
    # TCP_NODELAY, as PostgREST's server sets it: with Nagle's algorithm the body, written after
    # the headers, waits for the client's delayed ACK (40 ms) on every call.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        path = urlsplit(self.path).path
        try:
            if not path.startswith(RPC_PREFIX):
                raise ApiError(404, "no Route matched with those values")
            status, payload = self.server.call(self.headers, path.removeprefix(RPC_PREFIX), body)
        except ApiError as exc:
            status, payload = exc.status, json.dumps(exc.body).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload or b"")))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


# -- fixtures ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SupabaseProject:
    """A fresh database set up like a Supabase project's, with its API served by `RpcServer`."""

    url: str  # what SUPABASE_URL would be
    dsn: str  # the database itself, as the owner (what `pipectl db migrate` could use)
    service_key: str
    anon_key: str
    server: RpcServer

    @property
    def store_url(self) -> str:
        return f"supabase+{self.url}"

    def env(self, key: str | None = None) -> dict[str, str]:
        """The environment a process needs to use this project (no PIPECTL_DATABASE_URL)."""
        return {"SUPABASE_URL": self.url, "SUPABASE_SERVICE_ROLE_KEY": key or self.service_key}

    def install_schema(self) -> None:
        from pipectl.client import Client

        Client.migrate_url(self.dsn)


SUPABASE_ROLES = """
DO $$
BEGIN
    CREATE ROLE anon NOLOGIN NOINHERIT;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
    CREATE ROLE authenticated NOLOGIN NOINHERIT;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
    CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
"""

# What a new Supabase project grants on `public` (supabase/postgres' init scripts, reduced to
# the objects pipectl creates).
SUPABASE_PUBLIC_GRANTS = """
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
"""


def _with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


@contextmanager
def new_project(server_url: str) -> Iterator[SupabaseProject]:
    """A fresh database on the server at `server_url` with Supabase's roles and grants, and the
    API stand-in in front of it; dropped afterwards. The pipectl schema is not installed."""
    dbname = f"pipectl_supabase_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(SUPABASE_ROLES)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    dsn = _with_database(server_url, dbname)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SUPABASE_PUBLIC_GRANTS)
    server = RpcServer(dsn, ["public"]).start()
    try:
        yield SupabaseProject(
            url=server.url,
            dsn=dsn,
            service_key=make_key("service_role"),
            anon_key=make_key("anon"),
            server=server,
        )
    finally:
        server.stop()
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


@pytest.fixture
def supabase_project(postgres_url: str) -> Iterator[SupabaseProject]:
    """A project of this test's own (`new_project`): call `install_schema()`. (`postgres_url`
    skips the test without a PostgreSQL server, or fails it under CI=true.)"""
    from pipectl.store.postgres import split_schema

    with new_project(split_schema(postgres_url)[0]) as project:
        yield project


@pytest.fixture
def supabase_url(supabase_project: SupabaseProject, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated project, selected the way users select it: SUPABASE_URL and the service_role
    key in the environment. Returns the store URL they imply."""
    supabase_project.install_schema()
    for name, value in supabase_project.env().items():
        monkeypatch.setenv(name, value)
    return supabase_project.store_url


__all__ = ["SupabaseProject", "make_key", "new_project", "supabase_project", "supabase_url"]
