"""`pipectl datasets …`: freshness per (brand, dataset) and its thresholds."""

from __future__ import annotations

from typing import Annotated

import typer

from pipectl.cli import common
from pipectl.cli.common import BrandFilter, JsonOption

app = typer.Typer(help="Dataset freshness and thresholds.", no_args_is_help=True)


@app.command("list")
def list_(brand: BrandFilter = None, as_json: JsonOption = False) -> None:
    """Each dataset's freshness state, age, last success and last attempt.

    Example: pipectl datasets list --brand acme
    """
    from pipectl import clock
    from pipectl.cli.render import (
        ago,
        brand_label,
        esc,
        out,
        print_json,
        stamp,
        styled,
        table,
        truncate,
    )
    from pipectl.parsing import format_duration

    with common.client() as client:
        found = client.datasets(brand_id=common.brand_filter(brand))
    if as_json:
        print_json([d.to_json() for d in found])
        return
    now = clock.now()
    grid = table(
        None,
        "brand",
        "dataset",
        "state",
        "age",
        "last success",
        "last attempt",
        "warn/error after",
        "error",
    )
    for d in found:
        grid.add_row(
            brand_label(d.brand_id),
            esc(d.dataset),
            styled(d.state),
            format_duration(d.age) if d.age is not None else "—",
            stamp(d.last_success_at),
            ago(d.last_attempt_at, now),
            f"{format_duration(d.warn_after)} / {format_duration(d.error_after)}",
            truncate(d.last_error, 40),
        )
    out.print(grid)


@app.command("set")
def set_(
    dataset: Annotated[str, typer.Argument(help="Dataset name, e.g. ads_performance.")],
    warn_after: Annotated[
        str, typer.Option("--warn-after", help="Age at which it turns warn, e.g. 6h.")
    ],
    error_after: Annotated[
        str, typer.Option("--error-after", help="Age at which it turns stale, e.g. 1d.")
    ],
    brand: Annotated[
        str | None,
        typer.Option("--brand", "-b", help="Only for this brand (default: every brand)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Set a dataset's freshness thresholds (for one brand, or the default for all).

    Example: pipectl datasets set ads_performance --warn-after 6h --error-after 1d
    """
    from pipectl.cli.render import note, print_json

    warn, error = common.duration(warn_after), common.duration(error_after)
    with common.client() as client:
        threshold = client.set_threshold(dataset, warn, error, brand_id=brand)  # type: ignore[arg-type]
    if as_json:
        print_json(
            {
                "dataset": threshold.dataset,
                "brand_id": threshold.brand_id,
                "warn_after_seconds": threshold.warn_after.total_seconds(),
                "error_after_seconds": threshold.error_after.total_seconds(),
            }
        )
    else:
        note(
            f"{dataset}: warn after {warn_after}, stale after {error_after}"
            + (f" for {brand}" if brand else "")
        )
