"""Settings: environment, .env, durations, and .env.example listing every setting."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pipectl.errors import InvalidInput
from pipectl.settings import Settings, env_name, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    missing = [env_name(name) for name in Settings.model_fields if f"{env_name(name)}=" not in text]
    assert missing == []


def test_defaults_and_sqlite_default_location(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.retry_base == timedelta(minutes=5)
    assert settings.retry_cap == timedelta(minutes=60)
    assert settings.max_retries == 3
    assert (
        settings.database_url
        == f"sqlite:///{tmp_path / 'home' / 'data' / 'pipectl' / 'pipectl.db'}"
    )


def test_environment_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("PIPECTL_POLL_INTERVAL=90s\nPIPECTL_MAX_RETRIES=5\n")
    monkeypatch.setenv("PIPECTL_MAX_RETRIES", "7")
    settings = load_settings()
    assert settings.poll_interval == timedelta(seconds=90)
    assert settings.max_retries == 7  # the environment wins over .env
    assert load_settings(database_url="sqlite:///x.db").database_url == "sqlite:///x.db"


def test_bad_setting_is_invalid_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_STUCK_AFTER", "soon")
    with pytest.raises(InvalidInput, match="PIPECTL_STUCK_AFTER"):
        load_settings()


def test_stuck_after_is_also_read_from_its_former_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_STALE_AFTER", "7m")
    settings = load_settings()
    assert settings.stuck_after == settings.stale_after == timedelta(minutes=7)
    monkeypatch.setenv("PIPECTL_STUCK_AFTER", "3m")  # the new name wins
    assert load_settings().stuck_after == timedelta(minutes=3)
    assert load_settings(stuck_after="90s").stuck_after == timedelta(seconds=90)
    monkeypatch.delenv("PIPECTL_STUCK_AFTER")
    monkeypatch.setenv("PIPECTL_STALE_AFTER", "soon")
    with pytest.raises(InvalidInput, match="invalid setting PIPECTL_STALE_AFTER:"):
        load_settings()  # the error names the variable that was set
