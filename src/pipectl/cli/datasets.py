"""`pipectl datasets …`: freshness per (brand, dataset) and its thresholds."""

from typing import Annotated

import typer

from pipectl.cli import common
from pipectl.cli.common import BrandFilter, JsonOption

app = typer.Typer(help="Dataset freshness and thresholds.", no_args_is_help=True)


@app.command("list")
def list_(
    brand: BrandFilter = None,
    include_retired: Annotated[
        bool, typer.Option("--all", help="Also the retired datasets (state 'retired').")
    ] = False,
    as_json: JsonOption = False,
) -> None:
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
    from pipectl.models import iso as stamp_iso
    from pipectl.parsing import format_duration

    with common.client() as client:
        brand_id = common.known_brand(client, brand)
        found = client.datasets(brand_id=brand_id)
        retired = client.retired_datasets(brand_id=brand_id) if include_retired else []
    if as_json:
        document = [d.to_json() for d in found]
        if include_retired:
            document = [{**item, "retired": False, "retired_at": None} for item in document]
            document += [
                {
                    "brand_id": r.brand_id,
                    "dataset": r.dataset,
                    "state": "retired",
                    "last_success_at": stamp_iso(r.last_success_at),
                    "last_attempt_at": stamp_iso(r.last_attempt_at),
                    "retired": True,
                    "retired_at": stamp_iso(r.retired_at),
                }
                for r in retired
            ]
        print_json(document)
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
    for r in retired:
        grid.add_row(
            brand_label(r.brand_id),
            esc(r.dataset),
            f"[dim]retired {ago(r.retired_at, now)}[/]",
            "—",
            stamp(r.last_success_at),
            ago(r.last_attempt_at, now),
            "",
            "",
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
        threshold = client.set_threshold(dataset, warn, error, brand_id=brand)
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


DatasetArgument = Annotated[str, typer.Argument(help="Dataset name, e.g. ads_performance.")]
RetireBrand = Annotated[
    str | None,
    typer.Option("--brand", "-b", help="Only for this brand (default: wherever it counts)."),
]


def _pairs(keys: list[tuple[str | None, str]]) -> str:
    from pipectl.gate import label

    return ", ".join(label(brand, dataset) for brand, dataset in keys)


@app.command()
def retire(
    dataset: DatasetArgument, brand: RetireBrand = None, as_json: JsonOption = False
) -> None:
    """Take a dataset out of the gate and of `status`, keeping its history (`datasets list
    --all` shows it; `datasets restore` undoes it).

    Example: pipectl datasets retire creative_thumbnails --brand acme
    """
    from pipectl.cli.render import note, print_json

    with common.client() as client:
        keys = client.retire_dataset(dataset, brand_id=common.brand_filter(brand))
    if as_json:
        print_json([{"brand_id": b, "dataset": d} for b, d in keys])
    else:
        note(f"retired {_pairs(keys)}")


@app.command()
def restore(
    dataset: DatasetArgument, brand: RetireBrand = None, as_json: JsonOption = False
) -> None:
    """Put a retired dataset back in the gate and in `status`.

    Example: pipectl datasets restore creative_thumbnails --brand acme
    """
    from pipectl.cli.render import note, print_json

    with common.client() as client:
        keys = client.restore_dataset(dataset, brand_id=common.brand_filter(brand))
    if as_json:
        print_json([{"brand_id": b, "dataset": d} for b, d in keys])
    else:
        note(f"restored {_pairs(keys)}")


@app.command()
def unset(
    dataset: DatasetArgument,
    brand: Annotated[
        str | None,
        typer.Option(
            "--brand", "-b", help="The brand's own threshold (default: the dataset-wide one)."
        ),
    ] = None,
) -> None:
    """Remove a dataset's freshness thresholds; the defaults (or the dataset-wide ones) apply.

    Example: pipectl datasets unset ads_performance --brand acme
    """
    from pipectl.cli.render import note

    with common.client() as client:
        if brand is not None:
            common.known_brand(client, brand)
        client.unset_threshold(dataset, brand_id=brand)
    note(f"{dataset}: threshold removed" + (f" for {brand}" if brand else ""))


@app.command("graph")
def graph(
    brand: BrandFilter = None,
    dot: Annotated[bool, typer.Option("--dot", help="Graphviz DOT, for `dot -Tsvg`.")] = False,
    as_json: JsonOption = False,
) -> None:
    """The lineage: which job produces each dataset and which jobs take it as input (--after
    triggers, --requires-fresh holds).

    Example: pipectl datasets graph --brand acme --dot | dot -Tsvg > lineage.svg
    """
    from pipectl.cli.render import print_json
    from pipectl.cli.views import render_lineage
    from pipectl.errors import InvalidInput
    from pipectl.triggers import to_dot

    if dot and as_json:
        raise InvalidInput("give --dot or --json, not both")
    with common.client() as client:
        lineage = client.lineage(brand_id=common.known_brand(client, brand))
    if as_json:
        print_json(lineage)
    elif dot:
        typer.echo(to_dot(lineage), nl=False)
    else:
        render_lineage(lineage)
