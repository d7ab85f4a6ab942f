"""The errors pipectl raises on purpose, each with the exit code the CLI turns it into."""

from __future__ import annotations


class PipectlError(Exception):
    """Base class: a message fit for one line on stderr, and an exit code."""

    exit_code = 1


class InvalidInput(PipectlError):
    """The caller asked for something malformed or impossible (exit 2)."""

    exit_code = 2


class NotFound(InvalidInput):
    """An id that names nothing (exit 2: it is bad input)."""


class StoreUnavailable(PipectlError):
    """The store cannot be reached (exit 3)."""

    exit_code = 3


class SchemaMissing(StoreUnavailable):
    """The store is reachable but `pipectl db migrate` has not been run (exit 3)."""

    def __init__(self, detail: str = "") -> None:
        message = "the pipectl schema is not installed in this store; run `pipectl db migrate`"
        super().__init__(f"{message} ({detail})" if detail else message)


class LeaseLost(PipectlError):
    """A worker tried to touch a run it no longer owns (it was recovered or finished elsewhere)."""
