"""When a job runs next: cron expressions evaluated in the job's own timezone, across DST."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
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
# `3-3`, a range of one value: croniter reads it as `*`, so it is handed over as `3`.
_ONE_VALUE_RANGE = re.compile(r"(?<![\d/])(\d+)-\1(?![\d/])")


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

    The expression is wall-clock time in `timezone`, read as Vixie (Debian) cron reads it. A
    job whose minute or hour field starts with `*` (`*/30 * * * *`, `0 */2 * * *`) is a
    wildcard job: it runs at every real instant whose wall time matches, so a slot inside a
    spring-forward gap is skipped and a repeated hour runs twice. A job at fixed times
    (`30 2 * * *`) runs once per wall time: a time inside the gap runs at the first instant after
    it (02:30 → 03:00), and a repeated time runs at the first of its two instants.
    """
    from croniter import CroniterBadDateError, croniter

    expression = _ALIASES.get(expression.lower(), expression)
    expression = _ONE_VALUE_RANGE.sub(r"\1", expression)
    tz = zone(timezone)
    minutes, hours = expression.split()[:2]
    wildcard = minutes.startswith("*") or hours.startswith("*")
    start = after.astimezone(tz).replace(tzinfo=None)
    start -= _repeat(start, tz)  # inside a repeated hour, its second pass is still to come
    walls = croniter(expression, start)
    best: datetime | None = None
    for _ in range(_MAX_STEPS):
        try:
            wall: datetime = walls.get_next(datetime)
        except CroniterBadDateError:
            break
        first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
        real = _exists(wall, tz)
        if real:
            instants = [first]
            if wildcard and _repeat(wall, tz):
                instants.append(wall.replace(tzinfo=tz, fold=1).astimezone(UTC))
        elif wildcard:
            continue
        else:
            instants = [_end_of_gap(wall, tz)]
        for instant in instants:
            if instant > after and (best is None or instant < best):
                best = instant
        # The first instants of real wall times only grow, so no later slot comes sooner.
        if best is not None and real and first >= best:
            return best
    if best is not None:
        return best
    raise InvalidInput(f"the cron expression {expression!r} names no future time")


def _exists(wall: datetime, tz: ZoneInfo) -> bool:
    """False for a wall time that a spring-forward transition skips."""
    local = wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)
    return local.replace(tzinfo=None) == wall


def _repeat(wall: datetime, tz: ZoneInfo) -> timedelta:
    """How long a fall-back transition repeats `wall` for (zero for a wall time it does not)."""
    if not _exists(wall, tz):
        return timedelta(0)
    first, second = wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1)
    return second.astimezone(UTC) - first.astimezone(UTC)  # the difference of their offsets


def _end_of_gap(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first instant after the gap that swallows `wall`, as cron finds it: minute by minute."""
    while not _exists(wall, tz):
        wall += timedelta(minutes=1)
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
