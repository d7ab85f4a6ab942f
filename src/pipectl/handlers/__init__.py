"""Job types: the built-ins plus plugins registered under the entry point group
`pipectl.job_types`. A job type is an object with `run(ctx)` and, optionally,
`validate(parameters)` raising `InvalidInput` for parameters it cannot accept."""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import Any, Protocol

from pipectl.errors import InvalidInput
from pipectl.handlers.context import Cancelled, JobFailed, RunContext

__all__ = ["Cancelled", "JobFailed", "JobType", "RunContext", "get_job_type", "job_type_names"]

ENTRY_POINT_GROUP = "pipectl.job_types"

BUILTINS = {
    "command": "pipectl.handlers.builtin:CommandJob",
    "python": "pipectl.handlers.builtin:PythonJob",
    "noop": "pipectl.handlers.builtin:NoopJob",
    "sleep": "pipectl.handlers.builtin:SleepJob",
}


class JobType(Protocol):
    def run(self, ctx: RunContext) -> None: ...


def _load(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    loaded = getattr(import_module(module), attr)
    return loaded() if isinstance(loaded, type) else loaded


@cache
def _plugins() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def job_type_names() -> list[str]:
    return sorted(set(BUILTINS) | set(_plugins()))


@cache
def get_job_type(name: str) -> JobType:
    """The handler for `name`; InvalidInput when no built-in or plugin has that name."""
    if name in BUILTINS:
        return _load(BUILTINS[name])
    plugin = _plugins().get(name)
    if plugin is None:
        raise InvalidInput(f"unknown job type {name!r}; known types: {', '.join(job_type_names())}")
    loaded = plugin.load()
    if isinstance(loaded, type):
        loaded = loaded()
    if not hasattr(loaded, "run"):
        # A bare function is a job type too.
        return _FunctionJob(loaded)
    return loaded


def validate_parameters(job_type: str, parameters: dict[str, Any]) -> None:
    handler = get_job_type(job_type)
    validate = getattr(handler, "validate", None)
    if validate is not None:
        validate(parameters)


class _FunctionJob:
    def __init__(self, function: Any) -> None:
        self.function = function

    def run(self, ctx: RunContext) -> None:
        self.function(ctx)
