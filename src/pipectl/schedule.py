"""When a job runs next: cron expressions evaluated in the job's own timezone, across DST."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipectl.errors import InvalidInput

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# A cron expression that names no time within this many steps is treated as never firing.
_MAX_STEPS = 1000


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The IANA timezone `name`, or InvalidInput."""
    try:
        if not name or name != name.strip() or ".." in name or name.startswith("/"):
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(
            f"unknown timezone {name!r}: use an IANA name such as Europe/Berlin or UTC"
        ) from None


def check_cron(expression: str) -> str:
    """Validate a five-field cron expression (or @hourly, @daily, …); return it normalised."""
    from croniter import croniter

    normalised = " ".join(expression.split())
    normalised = _ALIASES.get(normalised.lower(), normalised)
    if len(normalised.split(" ")) != 5 or not croniter.is_valid(normalised):
        raise InvalidInput(
            f"invalid cron expression {expression!r}: use five fields "
            "(minute hour day-of-month month day-of-week), e.g. '0 3 * * *'"
        )
    return normalised


def next_occurrence(expression: str, timezone: str, after: datetime) -> datetime:
    """The first time strictly after `after` that the cron expression names, as aware UTC.

    The expression is wall-clock time in `timezone`. On a spring-forward day a time inside the
    gap runs at the first instant after it (02:30 → 03:00). On a fall-back day a job with fixed
    hours runs once, at the first of the two identical wall times; a job whose hour field is `*`
    (e.g. `*/30 * * * *`) keeps its interval through both repeated hours.
    """
    from croniter import CroniterBadDateError, croniter

    expression = _ALIASES.get(expression.lower(), expression)
    tz = zone(timezone)
    itr = croniter(expression, after.astimezone(tz))
    hours = itr.expanded[1]
    every_hour = hours == ["*"] or len(hours) == 24
    for _ in range(_MAX_STEPS):
        try:
            candidate: datetime = itr.get_next(datetime)
        except CroniterBadDateError:
            break
        result = candidate.astimezone(UTC)
        if result <= after:
            continue
        if not every_hour and _is_repeated_wall_time(candidate, tz):
            continue
        return result
    raise InvalidInput(f"the cron expression {expression!r} names no future time")


def _is_repeated_wall_time(candidate: datetime, tz: ZoneInfo) -> bool:
    """True for the second occurrence of a wall time that a fall-back transition repeats."""
    wall = candidate.replace(tzinfo=None)
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    return candidate.astimezone(UTC) != first and wall.replace(tzinfo=tz, fold=1).astimezone(
        UTC
    ) == candidate.astimezone(UTC)
