"""Schema v12 (PostgreSQL) / v9 (SQLite) moves each job's key that is its old default
(`job_type:brand`) to the new one (`name:brand` for a named job), as the Python rule
(pipectl.concurrency.migrated_key) says, and the key queues follow."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_contract import T0, new_job

from pipectl.client import Client
from pipectl.concurrency import default_concurrency_key, migrated_key
from pipectl.store import open_store
from pipectl.store.migrations import load_migrations

NAME_KEYS = {"sqlite": 9, "postgres": 12}
LONG_BRAND = "b" * 120


def cases() -> list[tuple[str, str | None, str, str | None]]:
    """(job_type, brand, name, key) as stores before the migration hold them."""
    old = default_concurrency_key
    return [
        ("command", "acme", "meta sync", old("command", "acme")),  # named: moves
        ("command", "acme", "orders sync", old("command", "acme")),  # named: moves
        ("command", "acme", "command acme", old("command", "acme")),  # unnamed: stays
        ("command", None, "nightly", old("command", None)),  # global, named: moves
        ("command", "acme", "reviews", "reviews-key"),  # given: stays
        ("command", "acme", "no key", None),  # none: stays
        ("noop", LONG_BRAND, "x" * 90, old("noop", LONG_BRAND)),  # both long: digests
        ("noop", "é" * 150, "ñame", old("noop", "é" * 150)),  # characters, not bytes
    ]


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_default_keys_move_to_the_name_and_given_keys_stay(
    dialect: str, tmp_path, monkeypatch, request: pytest.FixtureRequest
) -> None:  # type: ignore[no-untyped-def]
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    every = load_migrations(dialect)
    # Every migration but the one moving the keys: the jobs are written by today's store code,
    # which reads the columns later migrations add.
    before = tuple(m for m in every if m.version != NAME_KEYS[dialect])
    module = "pipectl.store.sqlite" if dialect == "sqlite" else "pipectl.store.postgres"
    monkeypatch.setattr(f"{module}.load_migrations", lambda _: before)
    Client.migrate_url(url)
    store = open_store(url)
    jobs = [
        store.insert_job(
            new_job(job_type=t, brand_id=b, name=n, concurrency_key=k, parameters={}),
            T0 + timedelta(seconds=i),
        )
        for i, (t, b, n, k) in enumerate(cases())
    ]
    store.close()
    monkeypatch.setattr(f"{module}.load_migrations", lambda _: every)
    assert NAME_KEYS[dialect] in Client.migrate_url(url)

    store = open_store(url)
    after = {job.id: store.get_job(job.id).concurrency_key for job in jobs}  # type: ignore[union-attr]
    expected = {
        job.id: migrated_key(job.job_type, job.brand_id, job.name, job.concurrency_key)
        or job.concurrency_key
        for job in jobs
    }
    assert after == expected
    assert after[jobs[0].id] == "meta sync:acme" and after[jobs[3].id] == "nightly"
    assert after[jobs[2].id] == "command:acme" and after[jobs[4].id] == "reviews-key"
    assert len(after[jobs[6].id]) == 200 and after[jobs[6].id] != jobs[6].concurrency_key

    # The key queues follow: the two named jobs that shared `command:acme` now run side by
    # side, each job once.
    claimed = store.claim_due("w", T0 + timedelta(minutes=1), 20)
    assert sorted(c.job.id for c in claimed) == sorted(job.id for job in jobs)
    assert {c.run.concurrency_key for c in claimed} >= {"meta sync:acme", "orders sync:acme"}
    store.close()
