"""API tokens for `pipectl serve`: parsing PIPECTL_API_TOKENS and matching a presented token.

PIPECTL_API_TOKENS is a JSON list, one object per token::

    [{"name": "ops", "scope": "operate", "token": "…"},
     {"name": "acme-page", "scope": "read", "token": "…", "brands": ["acme"]}]

`scope` is `read` (every GET) or `operate` (also the actions); `brands`, when given, limits the
token to those brands. Nothing here imports the web stack: settings validate the list at load."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from pipectl.errors import InvalidInput
from pipectl.parsing import check_name

SCOPES = ("read", "operate")
MIN_TOKEN_LENGTH = 16  # characters: a short token is guessable over HTTP


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a token's name, its scope, and the brands it may see (None: all)."""

    name: str
    scope: str
    brands: frozenset[str] | None = None

    @property
    def can_operate(self) -> bool:
        return self.scope == "operate"

    def sees(self, brand_id: str | None) -> bool:
        """A brand-scoped token sees its brands only: not global jobs, not other brands."""
        return self.brands is None or brand_id in self.brands


@dataclass(frozen=True, slots=True)
class ApiToken:
    principal: Principal
    secret: SecretStr = field(repr=False)


def parse_api_tokens(text: str) -> list[ApiToken]:
    """The tokens in PIPECTL_API_TOKENS; InvalidInput names what is wrong, never a secret."""
    if not text.strip():
        return []
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"not a JSON list of tokens ({exc.msg} at character {exc.pos})"
        ) from None
    if not isinstance(entries, list):
        raise InvalidInput("must be a JSON list of {name, scope, token[, brands]} objects")
    tokens: list[ApiToken] = []
    for index, entry in enumerate(entries):
        tokens.append(_token(entry, f"token {index + 1}"))
    names = [t.principal.name for t in tokens]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise InvalidInput(f"two tokens are named {duplicate!r}")
    secrets = [t.secret.get_secret_value() for t in tokens]
    if len(set(secrets)) != len(secrets):
        raise InvalidInput("two tokens have the same secret")
    return tokens


def _token(entry: Any, where: str) -> ApiToken:
    if not isinstance(entry, dict):
        raise InvalidInput(f"{where} must be an object with name, scope and token")
    unknown = sorted(set(entry) - {"name", "scope", "token", "brands"})
    if unknown:
        raise InvalidInput(f"{where} has an unknown key {unknown[0]!r}")
    name = entry.get("name")
    if not isinstance(name, str):
        raise InvalidInput(f"{where} needs a name")
    check_name(name, "token name")
    where = f"token {name!r}"
    scope = entry.get("scope")
    if scope not in SCOPES:
        raise InvalidInput(f"{where}: scope must be one of {', '.join(SCOPES)}")
    secret = entry.get("token")
    if not isinstance(secret, str) or len(secret) < MIN_TOKEN_LENGTH:
        raise InvalidInput(f"{where}: token must be a string of {MIN_TOKEN_LENGTH}+ characters")
    if secret != secret.strip() or any(not ch.isprintable() for ch in secret):
        raise InvalidInput(f"{where}: token must be printable, without surrounding spaces")
    brands = entry.get("brands")
    if brands is not None:
        if (
            not isinstance(brands, list)
            or not brands
            or not all(isinstance(b, str) for b in brands)
        ):
            raise InvalidInput(f"{where}: brands must be a non-empty list of brand ids")
        for brand in brands:
            check_name(brand, "brand")
    return ApiToken(
        Principal(name, scope, frozenset(brands) if brands is not None else None),
        SecretStr(secret),
    )


def match_token(tokens: list[ApiToken], presented: str) -> Principal | None:
    """The principal whose token this is, compared in constant time against every token (so the
    answer's timing tells nothing about which one nearly matched)."""
    found = None
    offered = presented.encode()
    for token in tokens:
        if hmac.compare_digest(token.secret.get_secret_value().encode(), offered):
            found = token.principal
    return found


def signing_key(tokens: list[ApiToken]) -> bytes:
    """The key that signs session cookies and CSRF tokens, derived from the configured tokens:
    the same in every server process, and changing any token ends every session."""
    material = "\0".join(f"{t.principal.name}={t.secret.get_secret_value()}" for t in tokens)
    return hashlib.sha256(b"pipectl-session\0" + material.encode()).digest()
