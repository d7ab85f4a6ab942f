"""The Supabase store: the pipectl_* SQL functions called through supabase-py's PostgREST `rpc`.

The same functions as the postgres backend (`FunctionStore` writes every protocol method once),
reached over the project's HTTPS API with the service_role key instead of a database password.
That is how a claim gets `FOR UPDATE SKIP LOCKED`: PostgREST runs each `rpc` call in a
transaction of its own, and offers nothing like it for plain table calls.

URL: `supabase+https://<ref>.supabase.co` (what SUPABASE_URL becomes), optionally with
`?schema=NAME` for a schema other than `public` that the project exposes in its API settings.
The key is passed separately and never printed: error messages name the host, not the key.

The API cannot run DDL, so `migrate` only checks: the schema is installed from `pipectl db sql`
(the SQL editor, or a file in the project's supabase/migrations). Functions and tables are
closed to the anon and authenticated roles by migration 0002.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx
from postgrest.exceptions import APIError
from pydantic import SecretStr
from supabase import ClientOptions, SupabaseException, create_client

from pipectl.errors import InvalidInput, PipectlError, SchemaMissing, StoreUnavailable
from pipectl.store.functions import FunctionStore, Json
from pipectl.store.migrations import check_version, latest_version

CONNECT_TIMEOUT_S = 10
REQUEST_TIMEOUT_S = 60
KEY_VARIABLE = "SUPABASE_SERVICE_ROLE_KEY"
INSTALL_HINT = (
    "run the output of `pipectl db sql` in the project's SQL editor, or save it as a migration "
    "with `pipectl db sql --supabase-migration supabase/migrations` (see docs/supabase.md)"
)

# PostgREST's codes for "no such function / table / schema", and PostgreSQL's.
_MISSING = frozenset({"PGRST202", "PGRST205", "42883", "42P01", "3F000"})


class SupabaseSchemaMissing(SchemaMissing):
    """The schema is not installed (or older than this pipectl), said the Supabase way: the
    API cannot install it, the SQL editor or a migration can."""

    def __init__(
        self, detail: str = "", *, what: str = "the pipectl schema is not installed"
    ) -> None:
        message = f"{what} in this Supabase project; {INSTALL_HINT}"
        Exception.__init__(self, f"{message} ({detail})" if detail else message)


class SupabaseStore(FunctionStore):
    def __init__(self, url: str, key: SecretStr | str | None) -> None:
        base, self.schema = split_url(url)
        self.display_url = url
        self._where = urlsplit(base).netloc
        secret = key.get_secret_value() if isinstance(key, SecretStr) else key
        if not secret:
            raise StoreUnavailable(
                f"no key for Supabase at {self._where}: set {KEY_VARIABLE} to the project's "
                "service_role key"
            )
        self._key = secret
        self._http = httpx.Client(
            timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        )
        options = ClientOptions(
            schema=self.schema,
            httpx_client=self._http,
            auto_refresh_token=False,
            persist_session=False,
        )
        try:
            self._client = create_client(base, secret, options)
        except SupabaseException as exc:
            self._http.close()
            # Its messages ("Invalid URL", "supabase_key is required") never quote the key.
            raise StoreUnavailable(f"cannot use Supabase at {self._where}: {exc.message}") from None

    def close(self) -> None:
        self._http.close()

    # -- transport ----------------------------------------------------------------------
    def _rpc(self, function: str, args: dict[str, Any]) -> Any:
        params = {name: _json_arg(value) for name, value in args.items()}
        try:
            return self._client.rpc(function, params).execute().data
        except APIError as exc:
            raise self._error(exc) from None
        except httpx.HTTPError as exc:
            reason = self._one_line(str(exc) or type(exc).__name__)
            raise StoreUnavailable(f"cannot reach Supabase at {self._where}: {reason}") from None

    def _call(self, function: str, **args: Any) -> list[Any]:
        data = self._rpc(function, args)
        if not isinstance(data, list):
            raise StoreUnavailable(
                f"Supabase at {self._where} answered {function} with {type(data).__name__}, "
                "not a list"
            )
        return data

    def _call_one(self, function: str, **args: Any) -> Any:
        return self._rpc(function, args)

    def _error(self, exc: APIError) -> PipectlError:
        """PostgREST's error (or the API gateway's) as pipectl's: one line, never the key."""
        code = exc.code or ""
        message = self._one_line(exc.message or code or "no message")
        if code in _MISSING or (message.startswith("Could not find the") and "function" in message):
            return SupabaseSchemaMissing(message)
        if code == "PGRST106":
            return StoreUnavailable(
                f"Supabase at {self._where} does not expose the schema {self.schema!r}: add it "
                "to the project's exposed schemas (API settings)"
            )
        if code.startswith("PGRST3") or code in ("401", "403") or "API key" in message:
            return StoreUnavailable(
                f"Supabase at {self._where} refused the key ({message}): set {KEY_VARIABLE} to "
                "the project's service_role key"
            )
        if code == "42501":
            return StoreUnavailable(
                f"Supabase at {self._where} refused the call ({message}): pipectl needs the "
                f"service_role key in {KEY_VARIABLE}, not the anon key"
            )
        if code[:2] in ("22", "23"):
            return InvalidInput(message)
        if code.isdigit():  # not PostgREST's JSON: a proxy's page, an outage
            return StoreUnavailable(f"Supabase at {self._where} answered HTTP {code} {message}")
        return StoreUnavailable(f"Supabase at {self._where} failed: {message} ({code})")

    def _one_line(self, text: str) -> str:
        return " ".join(text.split()).replace(self._key, "***")

    # -- schema -------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Nothing to apply when the schema is current; otherwise say how to install it, since
        the API cannot run DDL."""
        installed = self.schema_version()
        expected = latest_version("postgres")
        if installed is not None and installed >= expected:
            check_version(installed, "postgres")
            return []
        raise SupabaseSchemaMissing(
            "" if installed is None else f"it has v{installed}, this pipectl needs v{expected}",
            what="`pipectl db migrate` cannot install or upgrade the schema through the API",
        )

    def schema_version(self) -> int | None:
        try:
            return self._call_one("pipectl_schema_version")
        except SchemaMissing:
            return None

    def check_schema(self) -> None:
        installed = self.schema_version()
        expected = latest_version("postgres")
        if installed is None:
            raise SupabaseSchemaMissing()
        if installed < expected:
            raise SupabaseSchemaMissing(
                f"it has v{installed}, this pipectl needs v{expected}",
                what="the pipectl schema is out of date",
            )
        check_version(installed, "postgres")

    def db_now(self) -> datetime:
        return datetime.fromisoformat(self._call_one("pipectl_db_now")).astimezone(UTC)


def split_url(url: str) -> tuple[str, str]:
    """`supabase+https://host[/path][?schema=NAME]` → (`https://host[/path]`, schema)."""
    parts = urlsplit(url.removeprefix("supabase+"))
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise InvalidInput(
            f"not a Supabase URL: {url!r} (expected supabase+https://<ref>.supabase.co)"
        )
    if "@" in parts.netloc:
        raise InvalidInput("a Supabase URL carries no credentials: set SUPABASE_SERVICE_ROLE_KEY")
    query = parse_qsl(parts.query, keep_blank_values=True)
    unknown = sorted({key for key, _ in query} - {"schema"})
    if unknown:
        raise InvalidInput(f"unknown Supabase URL parameter(s): {', '.join(unknown)}")
    schemas = [value for key, value in query if key == "schema"]
    if schemas and not schemas[-1]:
        raise InvalidInput("the Supabase URL has an empty schema= parameter")
    base = urlunsplit(parts._replace(query="", fragment="")).rstrip("/")
    return base, schemas[-1] if schemas else "public"


def _json_arg(value: Any) -> Any:
    """An argument as JSON: PostgREST casts each to its parameter's type (timestamptz from an
    ISO 8601 string, jsonb from the value itself, arrays from lists)."""
    if isinstance(value, Json):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return value
