"""`pipectl serve` as a real process (issue 16): it refuses an open address without tokens, a
bad token list, a taken port; it serves the API on uvicorn, with one or several workers."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from pathlib import Path

from helpers_web import OPS, TOKENS, get
from procs import pipectl


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
    # A session made by one process is good in the others (they share the signing key).
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    form = browser.open(f"{server.base}/login", timeout=10).read().decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    data = urllib.parse.urlencode({"token": OPS, "csrf": csrf}).encode()
    assert browser.open(f"{server.base}/login", data=data, timeout=10).url == f"{server.base}/"
    for _ in range(12):
        page = browser.open(f"{server.base}/", timeout=10)
        assert page.url == f"{server.base}/"
        assert "<h1>Health</h1>" in page.read().decode()
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


def test_doctor_shows_the_token_setting_masked(sqlite_url: str) -> None:
    result = pipectl(sqlite_url, "doctor", PIPECTL_API_TOKENS=TOKENS)
    assert "api_tokens" in result.stdout or "PIPECTL_API_TOKENS" in result.stdout
    assert OPS not in result.stdout + result.stderr
    assert "ops-token" not in result.stdout + result.stderr
