"""Configuration: environment variables (PIPECTL_*), a `.env` file, then these defaults."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_database_url() -> str:
    """A SQLite file under $XDG_DATA_HOME (default ~/.local/share): the same store whatever the
    current directory, which is what cron jobs and operators' shells both need."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return f"sqlite:///{Path(data_home) / 'pipectl' / 'pipectl.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PIPECTL_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default_factory=default_database_url,
        description="Where the store lives: sqlite:///path.db or postgresql://user@host/db.",
    )
    poll_interval: timedelta = Field(
        timedelta(seconds=5), description="How long an idle worker waits between polls."
    )
    heartbeat_interval: timedelta = Field(
        timedelta(seconds=10), description="How often a worker renews its running run."
    )
    stale_after: timedelta = Field(
        timedelta(minutes=5),
        description="A running run whose heartbeat is older than this is stuck and recovered.",
    )
    worker_stale_after: timedelta = Field(
        timedelta(minutes=2),
        description="`status` warns when no worker has been seen for this long.",
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
        1, ge=1, le=1000, description="Due jobs a worker claims per round trip."
    )
    log_level: str = Field("INFO", description="Worker log level (DEBUG, INFO, WARNING, ERROR).")

    @field_validator(
        "poll_interval",
        "heartbeat_interval",
        "stale_after",
        "worker_stale_after",
        "shutdown_grace",
        "retry_base",
        "retry_cap",
        "warn_after",
        "error_after",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> Any:
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


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `.env`, with explicit overrides (e.g. CLI options)."""
    from pydantic import ValidationError

    from pipectl.errors import InvalidInput

    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(f"invalid setting PIPECTL_{field.upper()}: {first['msg']}") from None
