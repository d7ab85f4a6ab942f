"""Who is asking: bearer tokens for the API, signed session cookies and CSRF tokens for the pages.

With no tokens configured the server is open to whoever reaches 127.0.0.1 (`serve` refuses any
other address then): pages act as the `local` operator, the API answers reads only, and a Host
header other than a loopback name is refused, so a web page cannot reach it by DNS rebinding."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from pipectl.tokens import ApiToken, Principal, match_token

SESSION_COOKIE = "pipectl_session"
SESSION_LIFETIME_S = 12 * 3600
LOCAL = Principal("local", "operate")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class AuthError(Exception):
    """401 (who are you?) or 403 (not allowed): one line for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Session:
    nonce: str
    token_name: str | None  # None: not logged in (a visitor who may still post the login form)


class Auth:
    def __init__(self, tokens: list[ApiToken], session_key: bytes) -> None:
        self.tokens = tokens
        self.by_name = {t.principal.name: t.principal for t in tokens}
        self.key = session_key

    @property
    def open(self) -> bool:
        return not self.tokens

    def check_host(self, request: Request) -> None:
        if self.open:
            host = request.headers.get("host", "").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in LOOPBACK_HOSTS:
                raise AuthError(403, "without PIPECTL_API_TOKENS, only 127.0.0.1 is served")

    # -- the API: bearer tokens ---------------------------------------------------------
    def api_principal(self, request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if header and scheme.lower() == "bearer" and presented.strip():
            principal = match_token(self.tokens, presented.strip())
            if principal is None:
                raise AuthError(401, "invalid token")
            return principal
        if self.open:
            return Principal("local", "read")
        raise AuthError(401, "missing token: send Authorization: Bearer <token>")

    # -- the pages: session cookies -------------------------------------------------------
    def session(self, request: Request) -> Session | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        payload, _, signature = raw.partition(".")
        expected = self._sign(payload.encode())
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return None
        try:
            data: dict[str, Any] = json.loads(
                base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            )
        except (ValueError, json.JSONDecodeError):
            return None
        if not isinstance(data, dict) or data.get("exp", 0) < time.time():
            return None
        return Session(str(data.get("n", "")), data.get("t"))

    def page_principal(self, session: Session | None) -> Principal | None:
        if self.open:
            return LOCAL
        if session is None or session.token_name is None:
            return None
        return self.by_name.get(session.token_name)  # a token removed since: logged out

    def new_session(self, token_name: str | None) -> tuple[Session, str]:
        """A fresh session (new nonce, so a new CSRF token) and its cookie value."""
        nonce = secrets.token_urlsafe(18)
        data = {"n": nonce, "t": token_name, "exp": int(time.time()) + SESSION_LIFETIME_S}
        payload = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
        return Session(nonce, token_name), f"{payload}.{self._sign(payload.encode())}"

    def login(self, presented: str) -> Principal | None:
        return match_token(self.tokens, presented.strip()) if presented.strip() else None

    def csrf_token(self, session: Session) -> str:
        return self._sign(b"csrf\0" + session.nonce.encode())

    def check_csrf(self, session: Session | None, presented: str | None) -> None:
        if session is None or not presented:
            raise AuthError(403, "missing CSRF token: reload the page and try again")
        if not hmac.compare_digest(self.csrf_token(session).encode(), presented.encode()):
            raise AuthError(403, "invalid CSRF token: reload the page and try again")

    def _sign(self, data: bytes) -> str:
        digest = hmac.new(self.key, data, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def require_operate(principal: Principal) -> Principal:
    if not principal.can_operate:
        raise AuthError(403, f"token {principal.name!r} has scope read; actions need operate")
    return principal


def cookie_secure(request: Request) -> bool:
    """Secure behind TLS, also when a reverse proxy terminates it and says so."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"
