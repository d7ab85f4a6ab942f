"""Servers a test starts for itself: a private PostgreSQL cluster (one it may restart, unlike the
shared server) and a PgBouncer in front of a server, each on its own port in a temporary
folder, run as the `postgres` user (both refuse root) and stopped when the test ends.

Without what they need (root to switch users, or the binaries) they skip, except in CI
(CI=true), where they fail: CI installs PgBouncer (`.ci/run`)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SERVER_USER = "postgres"


def require(what: str, ready: bool) -> None:
    if ready:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {what}")
    pytest.skip(what)


def _as_server_user(*command: str) -> list[str]:
    if os.geteuid() == pwd.getpwnam(SERVER_USER).pw_uid:
        return list(command)
    return ["runuser", "-u", SERVER_USER, "--", *command]


def _can_switch_user() -> bool:
    try:
        uid = pwd.getpwnam(SERVER_USER).pw_uid
    except KeyError:
        return False
    return os.geteuid() in (0, uid)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _folder() -> Path:
    """A temporary folder the server user owns (pytest's own are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="pipectl-server-"))
    user = pwd.getpwnam(SERVER_USER)
    os.chown(folder, user.pw_uid, user.pw_gid)
    return folder


def _wait_for_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout_s:g}s")


class PrivateCluster:
    """A PostgreSQL cluster of the test's own (trust auth, user postgres, database postgres)."""

    def __init__(self) -> None:
        require(
            f"a private PostgreSQL cluster needs root (or the {SERVER_USER} user) and {PG_BIN}",
            _can_switch_user() and (PG_BIN / "initdb").exists(),
        )
        self.folder = _folder()
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        subprocess.run(
            _as_server_user(
                str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"
            ),
            check=True,
            capture_output=True,
        )
        self._pg_ctl("start")

    def _pg_ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        subprocess.run(
            _as_server_user(
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.folder / "server.log"),
                "-o",
                options,
                "-m",
                "fast",
                "-w",
                action,
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def restart(self) -> None:
        self._pg_ctl("restart")

    def stop(self) -> None:
        subprocess.run(
            _as_server_user(
                str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"
            ),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


class PgBouncer:
    """PgBouncer in front of a server, in one pool mode (`session`, `transaction`,
    `statement`), with every database of that server reachable through it."""

    def __init__(
        self, server_port: int = 5432, *, mode: str = "transaction", pool_size: int = 2
    ) -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        require(
            f"PgBouncer tests need pgbouncer (apt-get install pgbouncer) and root (or the "
            f"{SERVER_USER} user)",
            _can_switch_user() and Path(binary).exists(),
        )
        self.folder = _folder()
        self.port = free_port()
        self.mode = mode
        users = self.folder / "userlist.txt"
        users.write_text('"postgres" ""\n')
        ini = self.folder / "pgbouncer.ini"
        ini.write_text(
            "\n".join(
                [
                    "[databases]",
                    f"* = host=127.0.0.1 port={server_port}",
                    "[pgbouncer]",
                    "listen_addr = 127.0.0.1",
                    f"listen_port = {self.port}",
                    "unix_socket_dir =",
                    "auth_type = trust",
                    f"auth_file = {users}",
                    f"pool_mode = {mode}",
                    f"default_pool_size = {pool_size}",
                    "max_client_conn = 200",
                    f"logfile = {self.folder / 'pgbouncer.log'}",
                    f"pidfile = {self.folder / 'pgbouncer.pid'}",
                    "",
                ]
            )
        )
        for path in (users, ini):
            os.chmod(path, 0o644)
        self.proc = subprocess.Popen(
            _as_server_user(binary, str(ini)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port)

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def log(self) -> str:
        path = self.folder / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        pidfile = self.folder / "pgbouncer.pid"
        if pidfile.exists():  # the server itself, not runuser in front of it
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
