"""Rendering in one place: JSON documents, rich tables, times and states, so every command
looks and serialises alike."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from pipectl.cli.json_output import print_json as print_json  # commands import it from here too
from pipectl.models import Run
from pipectl.phrases import ago as ago  # the phrases are the library's (the web says them too)
from pipectl.phrases import stamp as stamp
from pipectl.phrases import until as until

STATE_STYLES = {
    "fresh": "green",
    "warn": "yellow",
    "stale": "bold red",
    "never": "red",
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
    "running": "cyan",
    "active": "",
    "paused": "yellow",
    "archived": "dim",
    "ok": "green",
}

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def note(message: str) -> None:
    """A human remark on stderr, so stdout stays clean for ids and JSON."""
    err.print(message, markup=False)


def styled(value: str) -> str:
    style = STATE_STYLES.get(value, "")
    return f"[{style}]{value}[/]" if style else value


def styled_as(state: str | None, text: str) -> str:
    """`text` in the colour of `state` (text is plain: no markup of its own)."""
    style = STATE_STYLES.get(state or "", "")
    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def run_status(run: Run) -> str:
    """A run's status as every list shows it: a completed run with failed (non-fatal) steps
    reads `completed (1 of 4 steps failed)`, in the warning colour."""
    if run.status == "completed" and run.failed_steps:
        return f"[yellow]completed ({run.failed_steps} of {len(run.steps)} steps failed)[/]"
    return styled(run.status)


def table(title: str | None, *columns: str) -> Table:
    grid = Table(
        title=title, title_justify="left", title_style="bold", show_edge=False, pad_edge=False
    )
    for index, column in enumerate(columns):
        grid.add_column(column, overflow="fold", no_wrap=index == 0)
    return grid


def unbroken(grid: Table, *columns: int) -> None:
    """These columns never wrap: a cron expression, a timezone or a time stays on one line."""
    for column in columns:
        grid.columns[column].no_wrap = True


def shortened(grid: Table, *columns: int) -> None:
    """These columns wrap between words only, and cut a word too long for them with `…` (a name,
    a brand: `jobs show` has it in full)."""
    for column in columns:
        grid.columns[column].no_wrap = False
        grid.columns[column].overflow = "ellipsis"


ROOM = 16  # the columns a wrapping text (a waiting reason) keeps, at least, in a wide table


class Fitted:
    """A table in the form that fits the width it is given: `build(narrow=False)` when its
    names and its columns that never wrap fit whole beside ROOM columns for each text that
    wraps, else `build(narrow=True)`, which folds the lesser columns under others and cuts a
    name too long with `…`."""

    def __init__(self, build: Callable[[bool], Table]) -> None:
        self.build = build

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        probe = self.build(False)
        for column in probe.columns:
            if not column.no_wrap and column.overflow == "fold":
                column.max_width = ROOM
        unbounded = options.update_width(10_000)
        wide = Measurement.get(console, unbounded, probe).maximum <= options.max_width
        yield self.build(not wide)


def brand_label(brand_id: str | None) -> str:
    return "global" if brand_id is None else escape(brand_id)


def esc(text: str | None) -> str:
    """User data (names, ids, errors) must never be read as rich markup."""
    return escape(text) if text else ""


def truncate(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    line = text.splitlines()[0] if text.splitlines() else text
    return escape(line if len(line) <= width else line[: width - 1] + "…")
