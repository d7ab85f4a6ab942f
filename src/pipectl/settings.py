"""Configuration: environment variables (PIPECTL_*, and Supabase's own SUPABASE_*), a `.env`
file, then these defaults."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def default_database_url() -> str:
    """A SQLite file under $XDG_DATA_HOME (default ~/.local/share): the same store whatever the
    current directory, which is what cron jobs and operators' shells both need."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return f"sqlite:///{Path(data_home) / 'pipectl' / 'pipectl.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PIPECTL_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: str = Field(
        default_factory=default_database_url,
        description="Where the store lives: sqlite:///path.db or postgresql://user@host/db "
        "(or supabase+https://<ref>.supabase.co, which SUPABASE_URL implies).",
        examples=["postgresql://pipectl:secret@db.internal:5432/pipelines"],
    )
    listen_url: str | None = Field(
        None,
        description="PostgreSQL only: a separate connection for workers' LISTEN (instant pickup "
        "of enqueued jobs), for when PIPECTL_DATABASE_URL goes through a transaction pooler, "
        "where LISTEN hears nothing. Point it at the database directly or at a session-mode "
        "pooler. Unset: the database URL.",
        examples=["postgresql://pipectl:secret@db-host:5432/pipelines"],
    )
    supabase_url: str | None = Field(
        None,
        validation_alias=AliasChoices("SUPABASE_URL"),
        description="Supabase project URL (https://<ref>.supabase.co). Without "
        "PIPECTL_DATABASE_URL, pipectl then uses the supabase backend.",
        examples=["https://<project-ref>.supabase.co"],
    )
    supabase_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_KEY"),
        description="The project's service_role key, for the supabase backend. Never printed.",
        examples=["<service_role key: keep it out of version control>"],
    )
    poll_interval: timedelta = Field(
        timedelta(seconds=5), description="How long an idle worker waits between polls."
    )
    heartbeat_interval: timedelta = Field(
        timedelta(seconds=10), description="How often a worker renews its running run."
    )
    stuck_after: timedelta = Field(
        timedelta(minutes=5),
        # PIPECTL_STALE_AFTER, its former name, stays accepted.
        validation_alias=AliasChoices("PIPECTL_STUCK_AFTER", "PIPECTL_STALE_AFTER"),
        description="A running run whose heartbeat is older than this is stuck and recovered.",
    )
    start_grace: timedelta = Field(
        timedelta(minutes=1),
        description="A running run that never sent its first heartbeat is stuck after this long "
        "(at most stuck_after). Keep it several heartbeat intervals long.",
    )
    worker_stale_after: timedelta = Field(
        timedelta(minutes=2),
        description="A worker not seen for this long no longer counts as live (one stopped by a "
        "signal counts out at once); `status` and `doctor` warn when none is live.",
    )
    shutdown_grace: timedelta = Field(
        timedelta(seconds=30),
        description="On SIGTERM/SIGINT, how long the current run may take before it is failed.",
    )
    retry_base: timedelta = Field(
        timedelta(minutes=5), description="First retry delay; each further retry doubles it."
    )
    retry_cap: timedelta = Field(timedelta(minutes=60), description="Longest retry delay.")
    max_retries: int = Field(3, ge=0, le=100, description="Default retries per job.")
    warn_after: timedelta = Field(
        timedelta(hours=24), description="Default age at which a dataset turns `warn`."
    )
    error_after: timedelta = Field(
        timedelta(hours=48), description="Default age at which a dataset turns `stale`."
    )
    claim_batch_size: int = Field(
        32,
        ge=1,
        le=1000,
        description="The most due jobs a worker claims per round trip. It claims one at first and "
        "doubles up to this while runs take under 50 ms; a slower run takes it back to one and "
        "gives its unstarted batch-mates back to other workers. 1: always one at a time.",
    )
    prune_runs_after: timedelta | None = Field(
        None,
        description="Workers delete finished runs older than this (keeping each job's latest), "
        "hourly. Unset: never.",
        examples=["90d"],
    )
    purge_archived_after: timedelta | None = Field(
        None,
        description="Workers delete archived jobs (and their runs) untouched for this long, "
        "hourly. Unset: never.",
        examples=["30d"],
    )
    alert_webhooks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated URLs that get a JSON POST (with a Slack-compatible `text`) "
        "when a job exhausts its retries, a stuck run is recovered, or a dataset turns stale or "
        "fresh again.",
        examples=["https://hooks.slack.com/services/T000/B000/XXXX"],
    )
    alert_check_interval: timedelta = Field(
        timedelta(minutes=1),
        description="How often a worker looks for datasets that turned stale or fresh.",
    )
    log_level: str = Field("INFO", description="Worker log level (DEBUG, INFO, WARNING, ERROR).")
    api_tokens: SecretStr | None = Field(
        None,
        description="Bearer tokens for `pipectl serve`, a JSON list: "
        '[{"name": "ops", "scope": "operate", "token": "…"}, {"name": "acme-page", '
        '"scope": "read", "token": "…", "brands": ["acme"]}]. Scope `read` or `operate`; '
        "`brands` limits a token to those brands. Never printed (docs/web.md).",
    )

    @field_validator(
        "poll_interval",
        "heartbeat_interval",
        "stuck_after",
        "start_grace",
        "worker_stale_after",
        "shutdown_grace",
        "retry_base",
        "retry_cap",
        "warn_after",
        "error_after",
        "prune_runs_after",
        "purge_archived_after",
        "alert_check_interval",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "off", "never"):
            return None
        if isinstance(value, str):
            from pipectl.errors import InvalidInput
            from pipectl.parsing import parse_duration

            try:
                return parse_duration(value)
            except InvalidInput as exc:
                raise ValueError(str(exc)) from None
        if isinstance(value, int | float):
            return timedelta(seconds=value)
        return value

    @field_validator("alert_webhooks", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @field_validator("alert_webhooks")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError("each webhook must be an http:// or https:// URL")
        return value

    @field_validator("api_tokens")
    @classmethod
    def _api_tokens(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        from pipectl.errors import InvalidInput
        from pipectl.tokens import parse_api_tokens

        try:
            parse_api_tokens(value.get_secret_value())
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("listen_url", "supabase_url", "supabase_key", "api_tokens", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("supabase_url")
    @classmethod
    def _project_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        scheme, _, rest = value.partition("://")
        if scheme not in ("https", "http") or not rest or any(c.isspace() for c in rest):
            raise ValueError("must be the project URL, like https://<ref>.supabase.co")
        return value

    @property
    def stale_after(self) -> timedelta:
        """The former name of `stuck_after`, still readable."""
        return self.stuck_after

    @model_validator(mode="after")
    def _supabase_backend(self) -> Settings:
        """SUPABASE_URL selects the supabase backend unless a database URL was given."""
        if self.supabase_url is not None and "database_url" not in self.model_fields_set:
            self.database_url = f"supabase+{self.supabase_url}"
        return self


def env_name(field: str) -> str:
    """The environment variable a setting is read from (the first, where there are several)."""
    return env_names(field)[0]


def env_names(field: str) -> list[str]:
    """Every environment variable a setting is read from, the one that wins first."""
    alias = Settings.model_fields[field].validation_alias
    choices = getattr(alias, "choices", None)
    return [str(choice) for choice in choices] if choices else [f"PIPECTL_{field.upper()}"]


# The fields with names of their own (AliasChoices), e.g. stuck_after and SUPABASE_URL.
ALIASED = frozenset(f for f, info in Settings.model_fields.items() if info.validation_alias)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `.env`, with explicit overrides (e.g. CLI options)."""
    from pydantic import ValidationError

    from pipectl.errors import InvalidInput

    try:
        # A setting read from other names than PIPECTL_<FIELD> is given by its first one (not by
        # field name: that would also make PIPECTL_SUPABASE_URL a name of SUPABASE_URL).
        given = {
            env_name(k) if k in ALIASED else k: v for k, v in overrides.items() if v is not None
        }
        return Settings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = str(first["loc"][0]) if first["loc"] else ""  # a field, or its first alias
        names = next(
            (env_names(f) for f in Settings.model_fields if loc in (f, *env_names(f))),
            [loc.upper()],
        )
        # Of a setting's several names, the one that was set.
        name = next((n for n in names if os.environ.get(n) is not None), names[0])
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidInput(f"invalid setting {name}: {message}") from None
