"""Issue 7's and issue 20's targets, each measured as a ratio within one run (or a latency over
many samples).

    python -m benchmarks            # the full run (about 4 minutes on 2 cores)
    python -m benchmarks --quick    # a smaller history, same checks (about 2 minutes)

Prints a table, then one JSON line; exits 1 when a target is missed, 2 when it cannot run.
Options: --only SECTION[,SECTION] (startup, sqlite, postgres, keys, memory, dataflow), --explain (query plans of
the claim and of `status` on the big history), --postgres-url (an admin URL; a fresh database
is created there and dropped afterwards).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from benchmarks.measure import Pipectl, Result, format_table, interleaved, median, percentile
from benchmarks.stores import History, PostgresServer, SQLiteBench, Store, brand_name
from benchmarks.workers import (
    drain,
    drain_behind_one_key,
    peak_rss,
    pickup_latencies,
    warm_up,
)

SECTIONS = ("startup", "sqlite", "postgres", "keys", "memory", "dataflow")
# Issue 18's sections.
ROUND_TWO = ("pickup", "keys20", "idle", "supabase", "brands")
POSTGRES_SECTIONS = {"postgres", "keys", "dataflow", "keys20", "idle", "supabase", "brands"}
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MB = 1024 * 1024
T = TypeVar("T")
# For comparison: a worker that claims one job per round trip and commits each outcome alone
# (by default the claim grows up to 32 while runs are quick, and their outcomes commit together).
ONE_AT_A_TIME = {"PIPECTL_CLAIM_BATCH_SIZE": "1"}


@dataclass(frozen=True)
class Sizes:
    repetitions: int
    drain_jobs: int
    finish_jobs: int
    history: History
    latency_samples: int
    sqlite_latency_samples: int
    sqlite_poll_interval_s: float
    memory_jobs: tuple[int, int]
    startup_rounds: int
    commit_seconds: float
    dependent_jobs: int = 1_000  # issue 17's size
    key_queue_jobs: tuple[int, int] = (1_000, 4_000)  # issue 20's sizes (--quick: half)
    twenty_key_jobs: int = 2_000
    behind_one_key: tuple[int, int] = (5_000, 2_000)  # distinct keys, then one key
    supabase_jobs: int = 2_000  # each through HTTP: a drain takes several seconds


FULL = Sizes(
    repetitions=3,
    drain_jobs=5_000,
    finish_jobs=1_000,
    history=History(brands=1_000, jobs_per_brand=100, runs_per_job=10),
    latency_samples=60,
    sqlite_latency_samples=20,
    sqlite_poll_interval_s=1.0,
    memory_jobs=(2_000, 20_000),
    startup_rounds=10,
    commit_seconds=1.5,
)
QUICK = Sizes(
    repetitions=3,
    drain_jobs=5_000,  # the size: with fewer, process start-up is most of a drain
    finish_jobs=500,
    history=History(brands=100, jobs_per_brand=100, runs_per_job=10),
    latency_samples=50,
    sqlite_latency_samples=6,
    sqlite_poll_interval_s=0.5,
    memory_jobs=(500, 5_000),
    startup_rounds=4,
    commit_seconds=0.5,
    key_queue_jobs=(500, 2_000),
    twenty_key_jobs=1_000,
    behind_one_key=(2_500, 1_000),
)

MINIMAL_TYPER_APP = """\
import typer

app = typer.Typer()


@app.command()
def hello(name: str = "world") -> None:
    print(f"hello {name}")


@app.command()
def goodbye(name: str = "world") -> None:
    print(f"goodbye {name}")


app()
"""
DEPENDENCY_FLOOR = "import typer, rich.table, pydantic_settings, sqlite3"


class Bench:
    def __init__(self, workdir: Path, sizes: Sizes, explain: bool) -> None:
        self.workdir = workdir
        self.sizes = sizes
        self.explain = explain
        self.pipectl = Pipectl(workdir)
        self.results: list[Result] = []
        self.plans: list[str] = []

    def add(self, result: Result) -> None:
        self.results.append(result)
        verdict = "" if result.met is None else (" met" if result.met else " MISSED")
        print(f"  {result.label}: {result.value:.3g} {result.unit}{verdict}", file=sys.stderr)


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- 6. start-up --------------------------------------------------------------------------------
def startup(bench: Bench) -> None:
    note("start-up: pipectl --help vs a minimal Typer app; status --json vs its imports")
    app = bench.workdir / "minimal_typer_app.py"
    app.write_text(MINIMAL_TYPER_APP)
    small = SQLiteBench(bench.workdir / "small.db")
    small.load_history(History(brands=3, jobs_per_brand=10, runs_per_job=3))
    small.close()
    cmd, python, time_it = bench.pipectl.command, sys.executable, bench.pipectl.time
    commands: dict[str, Callable[[], float]] = {
        "help": lambda: time_it([*cmd, "--help"]),
        "typer": lambda: time_it([python, str(app), "--help"]),
        "status": lambda: time_it([*cmd, "--database-url", small.url, "status", "--json"]),
        "floor": lambda: time_it([python, "-c", DEPENDENCY_FLOOR]),
    }
    medians: dict[str, list[float]] = {name: [] for name in commands}
    for repetition in range(bench.sizes.repetitions):
        times = interleaved(
            commands, bench.sizes.startup_rounds, warmup=2 if repetition == 0 else 0
        )
        for name, values in times.items():
            medians[name].append(median(values))
    help_ratio = median([h / t for h, t in zip(medians["help"], medians["typer"], strict=True)])
    status_ratio = median([s / f for s, f in zip(medians["status"], medians["floor"], strict=True)])
    ms = {name: median(values) * 1000 for name, values in medians.items()}
    bench.add(
        Result(
            "startup_help",
            "6. pipectl --help / minimal Typer app --help",
            help_ratio,
            "×",
            "≤ 1.3",
            help_ratio <= 1.3,
            f"{ms['help']:.0f} ms vs {ms['typer']:.0f} ms",
        )
    )
    bench.add(
        Result(
            "startup_status",
            "6. status --json (small SQLite) / import floor",
            status_ratio,
            "×",
            "≤ 1.3",
            status_ratio <= 1.3,
            f"{ms['status']:.0f} ms vs {ms['floor']:.0f} ms ({DEPENDENCY_FLOOR})",
        )
    )


def surviving_restarts(store: Store, measure: Callable[[], T]) -> T:
    """`measure()`, again if the database server restarted meanwhile: on a shared machine
    someone else's test suite may restart PostgreSQL, and a figure that includes the restart
    measures nothing."""
    for _ in range(5):
        epoch = store.server_epoch()
        try:
            result = measure()
        except Exception:
            if store.server_epoch() == epoch:
                raise
        else:
            if store.server_epoch() == epoch:
                return result
        note("the database server restarted during the measurement; measuring again")
    raise RuntimeError("the database server kept restarting")


# -- 1, 2, 3, 4, 5: one backend -----------------------------------------------------------------
def backend(bench: Bench, name: str, create: Callable[[str], Store]) -> None:
    sizes, pipectl = bench.sizes, bench.pipectl
    brand = brand_name(sizes.history.brands // 2)
    postgres = name == "postgres"
    empty = create("empty")
    big = create("history")
    h = sizes.history
    note(f"{name}: loading {h.runs:,} runs, {h.jobs:,} jobs, {h.brands:,} brands with SQL")
    started = time.perf_counter()
    big.load_history(h)
    load_s = time.perf_counter() - started
    note(f"{name}: loaded in {load_s:.0f} s")

    warm_up(pipectl, empty)
    warm_up(pipectl, big)  # its first drain would also pay for reading the history's pages

    def repetition() -> tuple[float, ...]:
        return (
            empty.commit_rate(sizes.commit_seconds),
            empty.finish_rate(sizes.finish_jobs),
            drain(pipectl, empty, sizes.drain_jobs),
            drain(pipectl, empty, sizes.drain_jobs, **ONE_AT_A_TIME),
            drain(pipectl, empty, sizes.drain_jobs, workers=2) if postgres else 0.0,
            drain(pipectl, big, sizes.drain_jobs),
        )

    figures = []
    for index in range(sizes.repetitions):
        note(f"{name}: repetition {index + 1}: commit rate, drains of {sizes.drain_jobs:,}")
        figures.append(surviving_restarts(empty, repetition))
    commits, finishes, one, unbatched, two, on_history = (
        list(column) for column in zip(*figures, strict=True)
    )

    number = "1" if postgres else "2"
    drain_ratio = median([d / c for d, c in zip(one, commits, strict=True)])
    bench.add(
        Result(
            f"drain_{name}",
            f"{number}. drain {sizes.drain_jobs:,} noop jobs, {name} / commit rate",
            drain_ratio,
            "×",
            "≥ 0.5",
            drain_ratio >= 0.5,
            f"{median(one):.0f} jobs/s vs {median(commits):.0f} commits/s",
        )
    )
    unbatched_ratio = median([u / c for u, c in zip(unbatched, commits, strict=True)])
    bench.add(
        Result(
            f"drain_unbatched_{name}",
            f"{number}. context: the same drain, one job per claim and commit",
            unbatched_ratio,
            "×",
            "",
            None,
            f"{median(unbatched):.0f} jobs/s with PIPECTL_CLAIM_BATCH_SIZE=1 (default 32)",
        )
    )
    ceiling = median([f / c for f, c in zip(finishes, commits, strict=True)])
    bench.add(
        Result(
            f"finish_ceiling_{name}",
            f"{number}. context: finish_run alone, one commit per run / commit rate",
            ceiling,
            "×",
            "",
            None,
            f"{median(finishes):.0f} finish_run/s in a loop, no worker: the ceiling without "
            "batches",
        )
    )
    if postgres:
        scale = median([b / a for a, b in zip(one, two, strict=True)])
        bench.add(
            Result(
                "scale_out_postgres",
                "3. two workers / one worker, postgres",
                scale,
                "×",
                "≥ 1.4",
                scale >= 1.4,
                f"{median(two):.0f} vs {median(one):.0f} jobs/s; no job ran twice",
            )
        )

    note(f"{name}: pickup latency")
    if postgres:
        latencies = surviving_restarts(
            empty, lambda: pickup_latencies(pipectl, empty, sizes.latency_samples)
        )
        p50, p95 = median(latencies) * 1000, percentile(latencies, 0.95) * 1000
        detail = f"{len(latencies)} samples, LISTEN/NOTIFY"
        bench.add(
            Result(
                "latency_p50_postgres",
                "4. pickup latency median, postgres",
                p50,
                "ms",
                "≤ 10",
                p50 <= 10,
                detail,
            )
        )
        bench.add(
            Result(
                "latency_p95_postgres",
                "4. pickup latency p95, postgres",
                p95,
                "ms",
                "≤ 25",
                p95 <= 25,
                detail,
            )
        )
    else:
        interval = sizes.sqlite_poll_interval_s
        latencies = pickup_latencies(
            pipectl, empty, sizes.sqlite_latency_samples, poll_interval_s=interval
        )
        p50, p95 = median(latencies) * 1000, percentile(latencies, 0.95) * 1000
        bench.add(
            Result(
                "latency_p50_sqlite",
                "4. pickup latency median, sqlite",
                p50,
                "ms",
                f"poll {interval:g} s",
                None,
                f"p95 {p95:.0f} ms, {len(latencies)} samples: bounded by the poll interval",
            )
        )

    history_ratio = median([b / e for e, b in zip(one, on_history, strict=True)])
    bench.add(
        Result(
            f"history_drain_{name}",
            f"5. drain with history / empty, {name}",
            history_ratio,
            "×",
            "≥ 0.9",
            history_ratio >= 0.9,
            f"{median(on_history):.0f} vs {median(one):.0f} jobs/s; {h.runs:,} runs loaded in {load_s:.0f} s",
        )
    )

    note(f"{name}: status --brand {brand} --json, history vs empty; full status --json")
    cmd, time_it = pipectl.command, pipectl.time
    status = [*cmd, "status", "--json"]
    commands: dict[str, Callable[[], float]] = {
        "empty": lambda: time_it(
            [*cmd, "--database-url", empty.url, "status", "--brand", brand, "--json"]
        ),
        "history": lambda: time_it(
            [*cmd, "--database-url", big.url, "status", "--brand", brand, "--json"]
        ),
    }
    per_repetition = []
    for repetition in range(sizes.repetitions):
        times = interleaved(commands, sizes.startup_rounds, warmup=1 if repetition == 0 else 0)
        per_repetition.append((median(times["history"]), median(times["empty"])))
    status_ratio = median([b / e for b, e in per_repetition])
    bench.add(
        Result(
            f"history_status_brand_{name}",
            f"5. status --brand B --json with history / empty, {name}",
            status_ratio,
            "×",
            "≤ 1.5",
            status_ratio <= 1.5,
            f"{median([b for b, _ in per_repetition]) * 1000:.0f} vs "
            f"{median([e for _, e in per_repetition]) * 1000:.0f} ms",
        )
    )
    full = median(
        [
            time_it([*status[:1], "--database-url", big.url, *status[1:]])
            for _ in range(sizes.repetitions)
        ]
    )
    bench.add(
        Result(
            f"history_status_full_{name}",
            f"5. full status --json over {h.brands:,} brands × {h.datasets_per_brand} datasets, {name}",
            full,
            "s",
            "< 1 s" if postgres else "",
            full < 1.0 if postgres else None,
            "process start included",
        )
    )

    if bench.explain:
        from benchmarks import explain

        try:
            plans = (
                explain.explain_postgres(big, brand)
                if postgres
                else explain.explain_sqlite(big, brand)
            )
        except Exception as exc:  # the plans are for the docs; a failure costs no figure
            plans = f"(no plans: {type(exc).__name__}: {exc})"
        bench.plans.append(
            f"== {name}: {h.runs:,} runs, {h.jobs:,} jobs, {h.brands:,} brands\n{plans}"
        )
    empty.close()
    big.close()


# -- issue 20: queues of jobs that share a concurrency key, on both stores ----------------------
def key_queues(bench: Bench, name: str, create: Callable[[str], Store]) -> None:
    sizes, pipectl = bench.sizes, bench.pipectl
    small, large = sizes.key_queue_jobs
    twenty = sizes.twenty_key_jobs
    distinct, same = sizes.behind_one_key
    store = create("keys")
    warm_up(pipectl, store)

    def repetition() -> tuple[float, ...]:
        return (
            drain(pipectl, store, small, keys=1),
            drain(pipectl, store, large, keys=1),
            drain(pipectl, store, large, keys=None, **ONE_AT_A_TIME),
            drain(pipectl, store, twenty, keys=20),
            drain(pipectl, store, twenty, keys=None),
            drain_behind_one_key(pipectl, store, distinct, same),
            drain_behind_one_key(pipectl, store, distinct, 0),
        )

    figures = []
    for index in range(sizes.repetitions):
        note(f"{name}: repetition {index + 1}: queues of one key, of 20 keys, behind one key")
        figures.append(surviving_restarts(store, repetition))
    one_small, one_large, unbatched, twenty_keys, twenty_distinct, behind, alone = (
        list(column) for column in zip(*figures, strict=True)
    )
    store.close()

    growth = median([(large / b) / (small / a) for a, b in zip(one_small, one_large, strict=True)])
    bench.add(
        Result(
            f"key_queue_linear_{name}",
            f"20. drain time of {large:,} jobs of one key / of {small:,}, {name}",
            growth,
            "×",
            "≤ 4.5",
            growth <= 4.5,
            f"{median(one_large):.0f} vs {median(one_small):.0f} jobs/s",
        )
    )
    single = median([k / u for k, u in zip(one_large, unbatched, strict=True)])
    bench.add(
        Result(
            f"key_queue_single_{name}",
            f"20. {large:,} jobs of one key / of a key each, one per claim, {name}",
            single,
            "×",
            "≥ 0.8",
            single >= 0.8,
            f"{median(one_large):.0f} vs {median(unbatched):.0f} jobs/s "
            "(PIPECTL_CLAIM_BATCH_SIZE=1 for the second)",
        )
    )
    spread = median([k / d for k, d in zip(twenty_keys, twenty_distinct, strict=True)])
    bench.add(
        Result(
            f"key_queue_twenty_{name}",
            f"20. {twenty:,} jobs of 20 keys / of a key each, {name}",
            spread,
            "×",
            "≥ 0.8",
            spread >= 0.8,
            f"{median(twenty_keys):.0f} vs {median(twenty_distinct):.0f} jobs/s",
        )
    )
    mixed = median([b / a for b, a in zip(behind, alone, strict=True)])
    bench.add(
        Result(
            f"key_queue_mixed_{name}",
            f"20. {distinct:,} jobs of a key each queued behind {same:,} of one key / alone, {name}",
            mixed,
            "×",
            "≥ 0.8",
            mixed >= 0.8,
            f"{median(behind):.0f} vs {median(alone):.0f} jobs/s, to the last of them",
        )
    )
    if bench.explain:
        from benchmarks import explain

        try:
            planned = create("plans")
            plans = explain.explain_taken_key(planned, 2_000)
            planned.close()
        except Exception as exc:  # the plans are for the docs; a failure costs no figure
            plans = f"(no plans: {type(exc).__name__}: {exc})"
        bench.plans.append(f"== {name}, a key taken\n{plans}")


# -- issue 17: jobs triggered by their inputs ---------------------------------------------------
def dataflow(bench: Bench, name: str, create: Callable[[str], Store]) -> None:
    from benchmarks.dataflow import dependent_drain

    jobs, pipectl = bench.sizes.dependent_jobs, bench.pipectl
    figures = []
    for index in range(bench.sizes.repetitions):
        note(f"dataflow {name}: repetition {index + 1}: {jobs:,} dependent jobs, then none")
        store = create(f"dataflow{index}")
        warm_up(pipectl, store)
        figures.append(
            (
                dependent_drain(pipectl, store, jobs, dependent=True),
                dependent_drain(pipectl, store, jobs, dependent=False),
            )
        )
        store.close()
    ratio = median([with_inputs / plain for with_inputs, plain in figures])
    bench.add(
        Result(
            f"dataflow_drain_{name}",
            f"17. drain of {jobs:,} upstream + {jobs:,} dependent jobs / without dependencies, "
            f"{name}",
            ratio,
            "×",
            "≥ 0.8",
            ratio >= 0.8,
            f"{median([f[0] for f in figures]):.0f} vs {median([f[1] for f in figures]):.0f} "
            "jobs/s",
        )
    )


# -- 7. memory ----------------------------------------------------------------------------------
def memory(bench: Bench) -> None:
    small_n, large_n = bench.sizes.memory_jobs
    note(f"memory: peak RSS of a worker after {small_n:,} and {large_n:,} noop jobs (SQLite)")
    store = SQLiteBench(bench.workdir / "memory.db")
    warm_up(bench.pipectl, store)
    small, large = [], []
    for _ in range(bench.sizes.repetitions):
        small.append(peak_rss(bench.pipectl, store, small_n))
        large.append(peak_rss(bench.pipectl, store, large_n))
    store.close()
    growth = (median(large) - median(small)) / MB
    bench.add(
        Result(
            "memory_growth",
            f"7. worker peak RSS, {large_n:,} jobs − {small_n:,} jobs",
            growth,
            "MB",
            "≤ 5",
            growth <= 5,
            f"{median(small) / MB:.1f} → {median(large) / MB:.1f} MB",
        )
    )
    bench.add(
        Result(
            "memory_peak",
            f"7. worker peak RSS after {large_n:,} jobs",
            median(large) / MB,
            "MB",
            "< 80",
            median(large) / MB < 80,
        )
    )


# -- issue 18 ------------------------------------------------------------------------------------
def round_two(
    bench: Bench, sections: list[str], server: PostgresServer | None, args: argparse.Namespace
) -> None:
    from benchmarks import round2

    tmp = bench.workdir
    jobs = bench.sizes.drain_jobs
    if "pickup" in sections:
        round2.sqlite_pickup(bench, args.idle_seconds)
    if "keys20" in sections:
        round2.full_speed_keys(
            bench, "sqlite", lambda purpose: SQLiteBench(tmp / f"{purpose}.db"), jobs
        )
        if server is not None:
            round2.full_speed_keys(bench, "postgres", server.create, jobs)
    if "idle" in sections:
        sqlite_store = SQLiteBench(tmp / "idle.db")
        round2.idle_once(bench, "sqlite", sqlite_store)
        sqlite_store.close()
        if server is not None:
            postgres_store = server.create("idle")
            round2.idle_once(bench, "postgres", postgres_store)
            postgres_store.close()
    if "supabase" in sections and server is not None:
        round2.supabase_drain(bench, server, bench.sizes.supabase_jobs)
    if "brands" in sections and server is not None:
        round2.ten_thousand_brands(bench, server, args.brands_url)


# -- the run ------------------------------------------------------------------------------------
def machine(server: PostgresServer | None) -> dict[str, str | int | None]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "cpu": model,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgres": server.version() if server else None,
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, the same checks")
    parser.add_argument(
        "--only", help=f"comma-separated sections: {', '.join(SECTIONS + ROUND_TWO)}"
    )
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=60.0,
        help="how long the idle worker's CPU is measured (pickup section; default %(default)s)",
    )
    parser.add_argument(
        "--brands-url",
        help="a store of ten thousand brands already loaded (brands section): used as it is and "
        "kept, instead of loading one and dropping it",
    )
    parser.add_argument("--explain", action="store_true", help="print query plans on the history")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("PIPECTL_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="admin URL of the PostgreSQL server (default %(default)s)",
    )
    args = parser.parse_args(argv)
    sections = args.only.split(",") if args.only else list(SECTIONS + ROUND_TWO)
    unknown = set(sections) - set(SECTIONS + ROUND_TWO)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    sizes = QUICK if args.quick else FULL

    server = None
    if POSTGRES_SECTIONS & set(sections):
        try:
            server = PostgresServer(args.postgres_url)
        except Exception as exc:
            print(
                f"benchmarks: cannot reach PostgreSQL at {args.postgres_url}: {exc}",
                file=sys.stderr,
            )
            return 2
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pipectl-bench-") as tmp:
        bench = Bench(Path(tmp), sizes, args.explain)
        info = machine(server)
        try:
            if "startup" in sections:
                startup(bench)
            if "sqlite" in sections:
                backend(bench, "sqlite", lambda purpose: SQLiteBench(Path(tmp) / f"{purpose}.db"))
            if server is not None and "postgres" in sections:
                backend(bench, "postgres", server.create)
            if "keys" in sections:
                key_queues(
                    bench, "sqlite", lambda purpose: SQLiteBench(Path(tmp) / f"{purpose}.db")
                )
                if server is not None:
                    key_queues(bench, "postgres", server.create)
            if "memory" in sections:
                memory(bench)
            if "dataflow" in sections:
                dataflow(bench, "sqlite", lambda purpose: SQLiteBench(Path(tmp) / f"{purpose}.db"))
                if server is not None:
                    dataflow(bench, "postgres", server.create)
            round_two(bench, sections, server, args)
        finally:
            if server is not None:
                server.drop_all()
    results = bench.results
    missed = [r.key for r in results if r.met is False]
    print(format_table(results))
    for plan in bench.plans:
        print(f"\n{plan}")
    print(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "quick": args.quick,
                "machine": info,
                "seconds": round(time.perf_counter() - started),
                "results": [r.to_json() for r in results],
                "missed": missed,
                "ok": not missed,
            },
            ensure_ascii=False,
        )
    )
    return 1 if missed else 0
