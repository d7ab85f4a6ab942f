"""Issue 18's targets (performance, round two): instant pickup on SQLite, concurrency keys at
full speed, a cheap idle `run-worker --once`, Supabase round trips, ten thousand brands."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.measure import Result, interleaved, median, percentile, wait_for_peak_rss
from benchmarks.stores import History, PostgresBench, PostgresServer, SQLiteBench, Store, brand_name
from benchmarks.workers import drain, pickup_latencies, stop, warm_up

if TYPE_CHECKING:
    from benchmarks.run import Bench

MB = 1024 * 1024
IMPORT_FLOOR_SQLITE = "import typer, pydantic_settings, sqlite3"
IMPORT_FLOOR_POSTGRES = "import typer, pydantic_settings, sqlite3, psycopg"
# Issue 18's store of ten thousand brands: 20 jobs a brand (2 live, 18 archived), 10 runs each.
TEN_THOUSAND = History(brands=10_000, jobs_per_brand=20, runs_per_job=10)
# The calls the issue asks to batch: one of each per batch of quick jobs.
BATCHED = ("claim_due", "heartbeat", "finish_runs")
TEN = History(brands=10, jobs_per_brand=20, runs_per_job=10)


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- 1. pickup on SQLite, and an idle worker's CPU ------------------------------------------------
def sqlite_pickup(bench: Bench, idle_seconds: float) -> None:
    sizes, pipectl = bench.sizes, bench.pipectl
    store = SQLiteBench(bench.workdir / "pickup.db")
    warm_up(pipectl, store)
    samples = max(sizes.sqlite_latency_samples, 20)
    note(f"sqlite pickup: {samples} samples, Client.enqueue in this process to the run's start")
    latencies = pickup_latencies(pipectl, store, samples)
    p50, p95 = median(latencies) * 1000, percentile(latencies, 0.95) * 1000
    detail = f"{len(latencies)} samples, default poll interval"
    bench.add(
        Result(
            "pickup_p50_sqlite", "18.1 pickup median, sqlite", p50, "ms", "≤ 25", p50 <= 25, detail
        )
    )
    bench.add(
        Result("pickup_p95_sqlite", "18.1 pickup p95, sqlite", p95, "ms", "≤ 60", p95 <= 60, detail)
    )
    note(f"sqlite idle worker: CPU over {idle_seconds:g} s from /proc")
    share = idle_cpu(bench, store, idle_seconds)
    bench.add(
        Result(
            "idle_cpu_sqlite",
            f"18.1 idle worker CPU over {idle_seconds:g} s, sqlite",
            share * 100,
            "% of a core",
            "≤ 2",
            share <= 0.02,
            "utime + stime of the process, /proc/PID/stat",
        )
    )
    store.close()


def idle_cpu(bench: Bench, store: Store, seconds: float) -> float:
    """The share of one core an idle `pipectl run-worker` (default settings) uses over
    `seconds`, counted from its first idle second on."""
    log = bench.workdir / f"{store.dialect}-idle.log"
    worker = bench.pipectl.start(store.url, "run-worker", log=log)
    try:
        time.sleep(2.0)  # start-up and the first (empty) cycle are not idle time
        before, started = cpu_ticks(worker.pid), time.monotonic()
        time.sleep(seconds)
        after, elapsed = cpu_ticks(worker.pid), time.monotonic() - started
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.returncode}; see {log}")
    finally:
        stop(worker)
    return (after - before) / os.sysconf("SC_CLK_TCK") / elapsed


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process (all its threads), in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


# -- 2. concurrency keys at full speed -------------------------------------------------------------
def full_speed_keys(bench: Bench, name: str, create: Callable[[str], Store], jobs: int) -> None:
    """`jobs` noop jobs over 20 brands (20 default keys) against as many jobs of a key each,
    drained back to back by one `run-worker --once`."""
    pipectl = bench.pipectl
    store = create("keys20")
    warm_up(pipectl, store)
    twenty, distinct = [], []
    for index in range(bench.sizes.repetitions):
        note(f"{name}: repetition {index + 1}: {jobs:,} jobs over 20 keys, then over a key each")
        twenty.append(drain(pipectl, store, jobs, keys=20))
        distinct.append(drain(pipectl, store, jobs, keys=None))
    store.close()
    ratio = median([t / d for t, d in zip(twenty, distinct, strict=True)])
    bench.add(
        Result(
            f"keys_twenty_full_{name}",
            f"18.2 {jobs:,} jobs of 20 keys / of a key each, {name}",
            ratio,
            "×",
            "≥ 0.8",
            ratio >= 0.8,
            f"{median(twenty):.0f} vs {median(distinct):.0f} jobs/s",
        )
    )


# -- 3. an idle `run-worker --once` ------------------------------------------------------------------
def idle_once(bench: Bench, name: str, store: Store) -> None:
    """`run-worker --once` with nothing due, against the import floor, interleaved."""
    pipectl, python = bench.pipectl, sys.executable
    floor = IMPORT_FLOOR_POSTGRES if store.dialect == "postgres" else IMPORT_FLOOR_SQLITE
    warm_up(pipectl, store)
    commands: dict[str, Callable[[], float]] = {
        "once": lambda: pipectl.time(
            [*pipectl.command, "--database-url", store.url, "run-worker", "--once"]
        ),
        "floor": lambda: pipectl.time([python, "-c", floor]),
    }
    ratios, once, floors = [], [], []
    for repetition in range(bench.sizes.repetitions):
        times = interleaved(
            commands, bench.sizes.startup_rounds, warmup=2 if repetition == 0 else 0
        )
        once.append(median(times["once"]))
        floors.append(median(times["floor"]))
        ratios.append(once[-1] / floors[-1])
    ratio = median(ratios)
    bench.add(
        Result(
            f"idle_once_{name}",
            f"18.3 idle run-worker --once / import floor, {name}",
            ratio,
            "×",
            "≤ 1.3",
            ratio <= 1.3,
            f"{median(once) * 1000:.0f} ms vs {median(floors) * 1000:.0f} ms ({floor})",
        )
    )
    bench.add(
        Result(
            f"idle_once_full_{name}",
            f"18.3 idle run-worker --once, full cost, {name}",
            median(once) * 1000,
            "ms",
            "",
            None,
            "process start, imports, connect, sweep, claim, exit",
        )
    )


# -- 4. Supabase round trips -------------------------------------------------------------------------
class CountingRpcServer:
    """The tests' PostgREST stand-in (tests/supabase_server.py) over a database set up like a
    Supabase project's, counting the calls it serves by function, and the claims that
    returned jobs."""

    def __init__(self, server: PostgresServer) -> None:
        from tests.supabase_server import (
            SUPABASE_PUBLIC_GRANTS,
            SUPABASE_ROLES,
            RpcServer,
            make_key,
        )

        server.admin.execute(SUPABASE_ROLES)
        self.db = server.create("supabase", setup=SUPABASE_PUBLIC_GRANTS)
        self.calls: Counter[str] = Counter()
        self.claims_with_jobs = 0
        counting = self

        class Counting(RpcServer):
            def call(self, headers: Any, name: str, body: bytes) -> tuple[int, bytes | None]:
                status, payload = super().call(headers, name, body)
                counting.calls[name] += 1
                if name == "pipectl_claim_due" and payload not in (None, b"[]"):
                    counting.claims_with_jobs += 1
                return status, payload

        no_listen = self.db.url  # the stand-in connects as the owner; roles come from the JWT
        self.rpc = Counting(no_listen, ["public"]).start()
        self.key = make_key("service_role")
        self.url = f"supabase+{self.rpc.url}"

    def reset(self) -> None:
        self.calls.clear()
        self.claims_with_jobs = 0

    def close(self) -> None:
        self.rpc.stop()
        self.db.close()


def supabase_drain(bench: Bench, server: PostgresServer, jobs: int) -> None:
    pipectl = bench.pipectl
    project = CountingRpcServer(server)
    direct = server.create("supabase_direct")
    key = {"SUPABASE_SERVICE_ROLE_KEY": project.key}
    try:
        via_api = SupabaseView(project)
        warm_up(pipectl, direct)
        drain(pipectl, via_api, 10, **key)
        rates_api, rates_direct, per_job, per_batch, all_per_batch = [], [], [], [], []
        calls: Counter[str] = Counter()
        for index in range(bench.sizes.repetitions):
            note(f"supabase: repetition {index + 1}: {jobs:,} jobs through the API, then direct")
            project.reset()
            rates_api.append(drain(pipectl, via_api, jobs, **key))
            rates_direct.append(drain(pipectl, direct, jobs))
            batches = max(project.claims_with_jobs, 1)
            total = sum(project.calls.values())
            batched = sum(project.calls[f"pipectl_{name}"] for name in BATCHED)
            per_job.append(total / jobs)
            per_batch.append(batched / batches)
            all_per_batch.append(total / batches)
            calls = Counter(project.calls)
        ratio = median([a / d for a, d in zip(rates_api, rates_direct, strict=True)])
        bench.add(
            Result(
                "supabase_drain",
                f"18.4 drain {jobs:,} noop jobs, supabase / postgres",
                ratio,
                "×",
                "≥ 0.3",
                ratio >= 0.3,
                f"{median(rates_api):.0f} vs {median(rates_direct):.0f} jobs/s",
            )
        )
        batch = median(per_batch)
        bench.add(
            Result(
                "supabase_requests_per_batch",
                "18.4 claim + heartbeat + finish requests per batch, supabase",
                batch,
                "",
                "≤ 3",
                batch <= 3,
                f"batches of up to 32 quick jobs; {median(per_job):.3f} requests per job in all",
            )
        )
        detail = ", ".join(
            f"{name.removeprefix('pipectl_')} {n}" for name, n in calls.most_common()
        )
        bench.add(
            Result(
                "supabase_all_requests_per_batch",
                "18.4 context: every request per batch, supabase",
                median(all_per_batch),
                "",
                "",
                None,
                f"sweep, start and stop included; last drain: {detail}",
            )
        )
    finally:
        direct.close()
        project.close()


class SupabaseView(Store):
    """The project's database for bulk SQL, with the Supabase URL for the workers."""

    def __init__(self, project: CountingRpcServer) -> None:
        self.dialect = "supabase"
        self.url = project.url
        self.conn = project.db.conn
        self._db = project.db

    def server_epoch(self) -> object:
        return self._db.server_epoch()

    def _insert_due(self, count: int, keys: int, first_brand: int) -> None:
        self._db._insert_due(count, keys, first_brand)

    def close(self) -> None:
        pass


# -- 5. ten thousand brands ----------------------------------------------------------------------------
def ten_thousand_brands(bench: Bench, server: PostgresServer, brands_url: str | None) -> None:
    pipectl = bench.pipectl
    if brands_url:
        big = PostgresBench(brands_url, migrate=False)
        note(f"ten thousand brands: using the store at {brands_url.rsplit('/', 1)[-1]}")
    else:
        big = server.create("10k")
        h = TEN_THOUSAND
        note(f"ten thousand brands: loading {h.runs:,} runs, {h.jobs:,} jobs, {h.brands:,} brands")
        started = time.perf_counter()
        big.load_history(h)
        note(f"ten thousand brands: loaded in {time.perf_counter() - started:.0f} s")
    small = server.create("10brands")
    small.load_history(TEN)
    brand = brand_name(TEN.brands // 2)
    cmd, time_it = pipectl.command, pipectl.time

    def status(url: str, *args: str) -> Callable[[], float]:
        return lambda: time_it([*cmd, "--database-url", url, "status", *args, "--json"])

    try:
        # No untimed round: the 10-brand store's runs below warm nothing this one needs, and on
        # a loaded machine one run of it takes a minute.
        full = interleaved({"full": status(big.url)}, bench.sizes.repetitions, warmup=0)["full"]
        bench.add(
            Result(
                "brands_status_full",
                "18.5 status --json, 10,000 brands, postgres",
                median(full),
                "s",
                "≤ 1.5",
                median(full) <= 1.5,
                f"process start included; {min(full):.2f}–{max(full):.2f} s",
            )
        )
        commands = {
            "big": status(big.url, "--brand", brand),
            "small": status(small.url, "--brand", brand),
        }
        per_repetition = []
        for repetition in range(bench.sizes.repetitions):
            times = interleaved(
                commands, bench.sizes.startup_rounds, warmup=1 if repetition == 0 else 0
            )
            per_repetition.append((median(times["big"]), median(times["small"])))
        ratio = median([b / s for b, s in per_repetition])
        bench.add(
            Result(
                "brands_status_brand",
                "18.5 status --brand B --json, 10,000 brands / 10 brands, postgres",
                ratio,
                "×",
                "≤ 1.1",
                ratio <= 1.1,
                f"{median([b for b, _ in per_repetition]) * 1000:.0f} vs "
                f"{median([s for _, s in per_repetition]) * 1000:.0f} ms",
            )
        )
        ids = big.add_due_noop_jobs(2_000)
        proc = pipectl.start(big.url, "run-worker", "--once", log=bench.workdir / "10k.log")
        status_code, rss = wait_for_peak_rss(proc)
        if status_code != 0:
            raise RuntimeError(f"worker exited with {status_code}")
        big.check_drained(ids)
        bench.add(
            Result(
                "brands_worker_rss",
                "18.5 worker peak RSS, 10,000 brands, postgres",
                rss / MB,
                "MB",
                "< 80",
                rss / MB < 80,
                "run-worker --once, 2,000 jobs",
            )
        )
    finally:
        small.close()
        big.close()
