"""The default concurrency key (issue 14 §6): `name:brand` for a job with a name of its own,
`job_type:brand` otherwise; long keys shortened with a digest; which keys a rename and the
schema migration move."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from factories import make_job

from pipectl.concurrency import (
    default_concurrency_key,
    default_job_name,
    migrated_key,
    renamed_key,
)
from pipectl.parsing import MAX_NAME_LENGTH


def job(**overrides: object):  # type: ignore[no-untyped-def]
    return make_job(job_type="command", brand_id="acme", **overrides)


def test_a_named_job_is_keyed_by_its_name_an_unnamed_one_by_its_type() -> None:
    assert default_concurrency_key("command", "acme", "meta sync") == "meta sync:acme"
    assert default_concurrency_key("command", None, "nightly") == "nightly"
    assert default_concurrency_key("command", "acme") == "command:acme"
    assert default_concurrency_key("command", None) == "command"
    # The name a job given none gets is no name of its own.
    assert default_job_name("command", "acme") == "command acme"
    assert default_concurrency_key("command", "acme", "command acme") == "command:acme"


def test_a_long_key_keeps_its_start_and_ends_in_a_digest_of_the_whole() -> None:
    name = "n" * 150
    key = default_concurrency_key("command", "b" * 100, name)
    whole = f"{name}:{'b' * 100}"
    digest = hashlib.sha256(whole.encode()).hexdigest()[:16]
    assert len(key) == MAX_NAME_LENGTH and key == f"{whole[:183]}~{digest}"
    assert default_concurrency_key("command", "b" * 100, name + "x") != key


def test_a_rename_moves_a_default_key_and_keeps_a_given_one() -> None:
    named = job(name="meta sync", concurrency_key="meta sync:acme")
    assert renamed_key(named, "orders sync") == "orders sync:acme"
    unnamed = job(name="command acme", concurrency_key="command:acme")
    assert renamed_key(unnamed, "orders sync") == "orders sync:acme"
    assert renamed_key(named, "command acme") == "command:acme"
    assert renamed_key(replace(named, concurrency_key="meta"), "orders sync") is None
    assert renamed_key(replace(named, concurrency_key=None), "orders sync") is None


def test_the_migration_moves_only_keys_equal_to_the_old_default() -> None:
    assert migrated_key("command", "acme", "meta sync", "command:acme") == "meta sync:acme"
    assert migrated_key("command", None, "nightly", "command") == "nightly"
    assert migrated_key("command", "acme", "command acme", "command:acme") is None  # unnamed
    assert migrated_key("command", "acme", "meta sync", "meta") is None  # given
    assert migrated_key("command", "acme", "meta sync", None) is None  # no key
