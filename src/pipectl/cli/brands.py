"""`pipectl brands …`: the known brands, and offboarding one (retire) or bringing it back."""

from typing import Annotated

import typer

from pipectl.cli import common
from pipectl.cli.common import JsonOption

app = typer.Typer(help="Brands (tenants): list, retire, restore.", no_args_is_help=True)

BrandArgument = Annotated[str, typer.Argument(help="Brand id, e.g. acme.")]


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """Every brand a job, dataset or threshold names, with its live jobs, datasets in the gate,
    failing datasets (stale or never) and whether it is retired.

    Example: pipectl brands list
    """
    from pipectl import clock
    from pipectl.cli.render import ago, err, esc, out, print_json, table

    with common.client() as client:
        found = client.brands()
    if as_json:
        print_json([brand.to_json() for brand in found])
        return
    if not found:
        err.print("no brands")
        return
    now = clock.now()
    grid = table(None, "brand", "live jobs", "datasets", "failing", "retired")
    for brand in found:
        grid.add_row(
            esc(brand.brand_id),
            str(brand.live_jobs),
            str(brand.datasets),
            f"[red]{brand.failing}[/]" if brand.failing else "0",
            ago(brand.retired_at, now) if brand.retired_at else "",
        )
    out.print(grid)


@app.command()
def retire(
    brand: BrandArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask (for scripts).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Offboard a brand in one transaction: archive its jobs and retire its datasets (history
    kept; `brands restore` undoes it). Prints what it will do and asks first.

    Example: pipectl brands retire initech --yes
    """
    from pipectl.cli.render import note, print_json
    from pipectl.parsing import check_name

    check_name(brand, "brand")
    with common.client() as client:
        plan = client.brand_retirement_plan(brand)
        jobs = ", ".join(f"{job.id} {job.name}" for job in plan.jobs) or "none"
        datasets = ", ".join(plan.datasets) or "none"
        note(
            f"retiring brand {brand} archives {len(plan.jobs)} job(s): {jobs}; "
            f"and retires {len(plan.datasets)} dataset(s): {datasets}"
        )
        if not yes and not typer.confirm("Retire it?", default=False, err=True):
            note("nothing changed")
            raise typer.Exit(1)
        archived = client.retire_brand(plan)
    if as_json:
        print_json(
            {
                "brand_id": brand,
                "archived_jobs": [job.id for job in archived],
                "retired_datasets": plan.datasets,
            }
        )
    else:
        note(f"brand {brand} retired")


@app.command()
def restore(brand: BrandArgument, as_json: JsonOption = False) -> None:
    """Undo `brands retire`: the jobs it archived get their status back (a recurring job
    continues at its next regular time) and its datasets return to the gate.

    Example: pipectl brands restore initech
    """
    from pipectl.cli.render import note, print_json
    from pipectl.parsing import check_name

    check_name(brand, "brand")
    with common.client() as client:
        retirement = client.restore_brand(brand)
    if as_json:
        print_json(retirement.to_json())
    else:
        note(
            f"brand {brand} restored: {len(retirement.jobs)} job(s) and "
            f"{len(retirement.datasets)} dataset(s) back"
        )
