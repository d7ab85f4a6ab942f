"""PIPECTL_API_TOKENS (issue 16): the parser's rules, one clear message without the secret, and
matching a presented token."""

from __future__ import annotations

import json

import pytest

from pipectl.errors import InvalidInput
from pipectl.settings import load_settings
from pipectl.tokens import Principal, match_token, parse_api_tokens, signing_key

SECRET = "s3cret-0123456789abcdef"


def entry(**fields: object) -> str:
    return json.dumps([{"name": "ops", "scope": "operate", "token": SECRET, **fields}])


def test_tokens_parse_with_scopes_and_brands() -> None:
    tokens = parse_api_tokens(
        json.dumps(
            [
                {"name": "ops", "scope": "operate", "token": SECRET},
                {"name": "page", "scope": "read", "token": "x" * 16, "brands": ["acme", "a,b"]},
            ]
        )
    )
    assert [t.principal for t in tokens] == [
        Principal("ops", "operate"),
        Principal("page", "read", frozenset({"acme", "a,b"})),
    ]
    assert tokens[1].principal.sees("a,b")
    assert not tokens[1].principal.sees("globex")
    assert not tokens[1].principal.sees(None)  # not even global jobs
    assert tokens[0].principal.sees(None)
    assert SECRET not in repr(tokens)
    assert parse_api_tokens("  ") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ops:operate=abc", "not a JSON list of tokens"),
        ('{"name": "ops"}', "must be a JSON list"),
        ("[1]", "token 1 must be an object"),
        (entry(scope="admin"), "token 'ops': scope must be one of read, operate"),
        (entry(token="short"), "token 'ops': token must be a string of 16+ characters"),
        (entry(token=f" {SECRET}"), "token 'ops': token must be printable"),
        (entry(brands=[]), "token 'ops': brands must be a non-empty list"),
        (entry(brands="acme"), "token 'ops': brands must be a non-empty list"),
        (entry(extra=1), "token 1 has an unknown key 'extra'"),
        (json.dumps([{"scope": "read", "token": SECRET}]), "token 1 needs a name"),
        (
            json.dumps([json.loads(entry())[0], {**json.loads(entry())[0], "token": "y" * 20}]),
            "two tokens are named 'ops'",
        ),
        (
            json.dumps([json.loads(entry())[0], {**json.loads(entry())[0], "name": "b"}]),
            "two tokens have the same secret",
        ),
    ],
)
def test_a_bad_token_list_is_one_message_that_never_shows_a_secret(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_api_tokens(text)
    assert str(raised.value).startswith(message)
    assert SECRET not in str(raised.value)
    with pytest.raises(InvalidInput) as at_load:
        load_settings(api_tokens=text)
    assert str(at_load.value).startswith("invalid setting PIPECTL_API_TOKENS: ")
    assert SECRET not in str(at_load.value)


def test_settings_keep_the_tokens_secret() -> None:
    settings = load_settings(api_tokens=entry())
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.model_dump())
    assert load_settings(api_tokens="").api_tokens is None


def test_a_presented_token_matches_its_principal_only() -> None:
    tokens = parse_api_tokens(
        json.dumps(
            [
                {"name": "ops", "scope": "operate", "token": SECRET},
                {"name": "viewer", "scope": "read", "token": "v" * 20},
            ]
        )
    )
    assert match_token(tokens, SECRET) == Principal("ops", "operate")
    assert match_token(tokens, "v" * 20) == Principal("viewer", "read")
    for wrong in ("", SECRET[:-1], SECRET + "x", SECRET.upper(), "é" * 20):
        assert match_token(tokens, wrong) is None


def test_the_session_key_follows_the_tokens() -> None:
    one = parse_api_tokens(entry())
    assert signing_key(one) == signing_key(parse_api_tokens(entry()))
    assert signing_key(one) != signing_key(parse_api_tokens(entry(token="z" * 20)))
