"""Jobs built in memory for the tests of pure rules and layouts (no store)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipectl.models import Job

AT = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)


def make_job(**fields: Any) -> Job:
    """An active recurring daily 03:00 UTC `noop` job of acme, due at `next_run_at` (default
    AT), with three retries of 5 to 60 minutes and no run yet; any field can be given."""
    at = fields.get("created_at", fields.get("next_run_at", AT))
    values: dict[str, Any] = {field: None for field in Job.__dataclass_fields__}
    values.update(
        id=1,
        brand_id="acme",
        job_type="noop",
        name="noop acme",
        schedule_type="recurring",
        cron_expression="0 3 * * *",
        timezone="UTC",
        next_run_at=AT,
        status="active",
        parameters={},
        max_retries=3,
        retry_count=0,
        retry_base_seconds=300,
        retry_cap_seconds=3600,
        created_at=at,
        updated_at=at,
        revision=0,
    )
    values.update(fields)
    return Job(**values)
