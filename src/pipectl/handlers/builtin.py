"""The built-in job types: `command`, `python`, `noop` and `sleep`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Mapping
from importlib import import_module
from typing import Any
from urllib.parse import urlsplit

from pipectl.errors import InvalidInput
from pipectl.handlers.context import Cancelled, JobFailed, RunContext

# Environment variables a `command` job must not inherit from the worker: they hold secrets.
_SECRET_ENV = re.compile(r"^(PIPECTL_DATABASE_URL|SUPABASE_.*|PGPASSWORD|DATABASE_URL)$")
_KILL_GRACE_S = 5.0
# The command's process group holds a watchdog beside the command. It reads a pipe (the guard's
# stdin, moved to fd 3; the command's stdin is /dev/null) whose write end only the worker holds:
# when the worker dies, however it dies, the kernel closes that end, the read sees end-of-file
# and the watchdog kills its whole group. A line on the pipe means the command has finished and
# the watchdog goes quietly. The guard shell then execs the command itself ("$1", never spliced
# into this script), so its pid, exit status and signals are as if it had been started directly.
_GUARD = (
    "exec 3<&0 </dev/null; "
    '{ read -r _ || kill -KILL 0; } <&3 >/dev/null 2>&1 & exec 3<&- /bin/sh -c "$1"'
)
# A failed command's error ends with its last lines of output, so lists show why it failed.
ERROR_TAIL_LINES = 5
ERROR_TAIL_CHARS = 400
# Process groups of running commands, so that a worker exiting at once takes them along.
_RUNNING_GROUPS: set[int] = set()


def kill_running_commands() -> None:
    for pgid in list(_RUNNING_GROUPS):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def _check_datasets(parameters: dict[str, Any]) -> None:
    from pipectl.freshness import check_declarations

    check_declarations(parameters)


class NoopJob:
    """Does nothing, successfully. For demos, tests and benchmarks."""

    def validate(self, parameters: dict[str, Any]) -> None:
        _check_datasets(parameters)

    def run(self, ctx: RunContext) -> None:
        return None


class SleepJob:
    """Sleeps `seconds` (default 1), cancellably. For demos and tests."""

    def validate(self, parameters: dict[str, Any]) -> None:
        _check_datasets(parameters)
        try:
            seconds = float(parameters.get("seconds", 1))
        except (TypeError, ValueError):
            raise InvalidInput("parameter 'seconds' must be a number") from None
        if not 0 <= seconds <= 7 * 86400:
            raise InvalidInput("parameter 'seconds' must be between 0 and one week")

    def run(self, ctx: RunContext) -> None:
        seconds = float(ctx.parameters.get("seconds", 1))
        ctx.log.info(f"sleeping {seconds:g}s")
        ctx.wait(seconds)


class PythonJob:
    """Calls `target` ('package.module:function') with the run context."""

    def validate(self, parameters: dict[str, Any]) -> None:
        _check_datasets(parameters)
        target = parameters.get("target")
        if not isinstance(target, str) or not re.fullmatch(
            r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", target, re.ASCII
        ):
            raise InvalidInput("parameter 'target' must look like 'package.module:function'")

    def run(self, ctx: RunContext) -> None:
        module_name, _, function_name = ctx.parameters["target"].partition(":")
        try:
            function = getattr(import_module(module_name), function_name)
        except (ImportError, AttributeError) as exc:
            raise JobFailed(f"cannot load target {ctx.parameters['target']!r}: {exc}") from None
        function(ctx)


class CommandJob:
    """Runs parameter `command` through /bin/sh in its own process group.

    The job's identity and parameters reach the command only as environment variables
    (PIPECTL_JOB_ID, PIPECTL_RUN_ID, PIPECTL_BRAND_ID, PIPECTL_JOB_TYPE, PIPECTL_PARAMETERS and
    PIPECTL_PARAM_<NAME> for each scalar parameter), never spliced into the command string.
    A non-zero exit fails the run. Step outcomes are reported by appending JSON lines to the file
    named by $PIPECTL_STEPS_FILE (see docs/command-steps.md). If the worker dies, the command's
    process group is killed with it (see _GUARD).
    """

    def validate(self, parameters: dict[str, Any]) -> None:
        _check_datasets(parameters)
        command = parameters.get("command")
        if not isinstance(command, str) or not command.strip():
            raise InvalidInput("a command job needs parameter 'command' (a shell command line)")

    def run(self, ctx: RunContext) -> None:
        lifeline, held = os.pipe()
        with tempfile.NamedTemporaryFile("r", prefix="pipectl-steps-", suffix=".jsonl") as steps:
            try:
                process = subprocess.Popen(
                    ["/bin/sh", "-c", _GUARD, "pipectl-guard", ctx.parameters["command"]],
                    stdin=lifeline,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env=command_environment(ctx, steps.name),
                    start_new_session=True,  # its own process group, so a kill reaches every child
                )
            except BaseException:
                os.close(held)
                raise
            finally:
                os.close(lifeline)
            _RUNNING_GROUPS.add(process.pid)
            tail: deque[str] = deque(maxlen=ERROR_TAIL_LINES)
            reader = threading.Thread(target=_pump, args=(process, ctx, tail), daemon=True)
            reader.start()
            cancelled = False
            try:
                while process.poll() is None:
                    try:
                        ctx.wait(0.05)
                    except Cancelled:
                        cancelled = True
                        _kill_group(process)
                        break
                process.wait()
            finally:
                _RUNNING_GROUPS.discard(process.pid)
                _release_watchdog(held)
            reader.join(timeout=_KILL_GRACE_S)
            _read_steps(steps, ctx)
        if cancelled:
            raise Cancelled(ctx.cancel_reason or "cancelled")
        if process.returncode != 0:
            raise JobFailed(failure_message(process.returncode, list(tail), os.environ))


def command_environment(ctx: RunContext, steps_file: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not _SECRET_ENV.match(key)}
    env.update(
        PIPECTL_JOB_ID=str(ctx.job_id),
        PIPECTL_RUN_ID=str(ctx.run_id),
        PIPECTL_JOB_TYPE=ctx.job.job_type,
        PIPECTL_BRAND_ID=ctx.brand_id or "",
        PIPECTL_PARAMETERS=json.dumps(ctx.parameters),
        PIPECTL_STEPS_FILE=steps_file,
    )
    for key, value in ctx.parameters.items():
        if isinstance(value, str | int | float | bool) and re.fullmatch(r"\w+", key, re.ASCII):
            env[f"PIPECTL_PARAM_{key.upper()}"] = str(value)
    return env


def _pump(process: subprocess.Popen[bytes], ctx: RunContext, tail: deque[str]) -> None:
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        ctx.log.info(line)
        if line.strip():
            tail.append(line.strip())


def failure_message(status: int, tail: list[str], environ: Mapping[str, str]) -> str:
    """`command exited with status N`, then its last lines of output (stdout and stderr), on
    one line, at most ERROR_TAIL_CHARS of them (the end kept), with the worker's secrets (the
    values the command does not inherit, and the database password) masked."""
    message = f"command exited with status {status}"
    if not tail:
        return message
    text = " | ".join(tail)
    if len(text) > ERROR_TAIL_CHARS:
        text = "…" + text[-(ERROR_TAIL_CHARS - 1) :]
    for secret in _secrets(environ):
        text = text.replace(secret, "***")
    return f"{message}: {text}"


def _secrets(environ: Mapping[str, str]) -> list[str]:
    found = []
    for key, value in environ.items():
        if _SECRET_ENV.match(key) and len(value) >= 4:
            found.append(value)
            with contextlib.suppress(ValueError):
                password = urlsplit(value).password
                if password and len(password) >= 4:
                    found.append(password)
    return sorted(found, key=len, reverse=True)  # a URL before the password inside it


def _release_watchdog(held: int) -> None:
    """The command has ended: tell its watchdog to exit without killing what is left of the
    group (a killed group's watchdog is gone already, hence the broken pipe)."""
    with contextlib.suppress(OSError):
        os.write(held, b"\n")
    os.close(held)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=_KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    # Children that ignored SIGTERM while the shell exited still share the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _read_steps(steps_file: Any, ctx: RunContext) -> None:
    """Each line: {"step": name, "status": "completed"|"failed", "datasets": [...],
    "fatal": true, "brand_id": "acme", "error": "..."} (only "step" and "status" required)."""
    steps_file.seek(0)
    for number, line in enumerate(steps_file, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            name = str(record["step"])
            status = record["status"]
            if status not in ("completed", "ok", "failed"):
                raise ValueError(f"status {status!r}")
            datasets = record.get("datasets", [])
            if isinstance(datasets, str):
                datasets = [datasets]
            brand = record.get("brand_id", ctx.brand_id)
        except (ValueError, KeyError, TypeError) as exc:
            ctx.log.warning(f"ignoring malformed step line {number}: {exc}")
            continue
        ctx.record_step(
            name,
            succeeded=status != "failed",
            datasets=[str(d) for d in datasets],
            fatal=bool(record.get("fatal", True)),
            brand_id=None if brand in (None, "") else str(brand),
            error=record.get("error"),
        )
