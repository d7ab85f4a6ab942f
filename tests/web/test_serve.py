"""`pipectl serve` as a real process (issue 16): it refuses an open address without tokens, a
bad token list, a taken port; it serves the API on uvicorn, with one or several workers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import OPS, TOKENS
from procs import pipectl, wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.base, self.log = proc, f"http://127.0.0.1:{port}", log


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    started: list[subprocess.Popen[bytes]] = []

    def start(url: str, *args: str, **env: str) -> Server:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pipectl", "serve", "--port", str(port), *args],
                env={**os.environ, "PIPECTL_DATABASE_URL": url, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(proc)
        server = Server(proc, port, log)
        wait_for(lambda: get(f"{server.base}/healthz")[0] == 200 or proc.poll() is not None)
        assert proc.poll() is None, log.read_text()
        return server

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def test_serve_refuses_another_address_than_loopback_without_tokens(sqlite_url: str) -> None:
    for host in ("0.0.0.0", "::", "192.0.2.1"):
        result = pipectl(sqlite_url, "serve", "--host", host)
        assert result.returncode == 2
        assert result.stderr.startswith(f"pipectl: error: refusing to serve on {host} without ")
        assert len(result.stderr.splitlines()) == 1


def test_serve_refuses_a_bad_token_list_without_showing_it(sqlite_url: str) -> None:
    secret = "leaky-secret-0123456789"
    bad = json.dumps([{"name": "ops", "scope": "admin", "token": secret}])
    result = pipectl(sqlite_url, "serve", PIPECTL_API_TOKENS=bad)
    assert result.returncode == 2
    assert result.stderr == (
        "pipectl: error: invalid setting PIPECTL_API_TOKENS: token 'ops': scope must be one of "
        "read, operate\n"
    )
    assert secret not in result.stdout + result.stderr


def test_serve_with_several_workers_answers_with_tokens_only(
    sqlite_url: str, serve: object
) -> None:
    server = serve(sqlite_url, "--host", "0.0.0.0", "--workers", "2", PIPECTL_API_TOKENS=TOKENS)  # type: ignore[operator]
    assert get(f"{server.base}/healthz") == (200, '{"ok":true}')
    assert get(f"{server.base}/api/status")[0] == 401
    code, body = get(f"{server.base}/api/status", OPS)
    assert code == 200
    assert json.loads(body)["ok"] is True
    taken = pipectl(sqlite_url, "serve", "--port", server.base.rsplit(":", 1)[1])
    assert taken.returncode == 2
    assert "cannot serve on 127.0.0.1:" in taken.stderr
    server.proc.terminate()
    server.proc.wait(timeout=30)
    assert OPS not in server.log.read_text()


def test_serve_on_an_unreachable_store_exits_3(tmp_path: Path) -> None:
    result = pipectl(f"sqlite:///{tmp_path / 'none.db'}", "serve")
    assert result.returncode == 3
    assert "pipectl db migrate" in result.stderr
