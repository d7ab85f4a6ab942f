"""A failed command's error message: its last lines of output, bounded, secrets masked."""

from __future__ import annotations

from pipectl.handlers.builtin import ERROR_TAIL_CHARS, failure_message


def test_no_output_keeps_the_plain_message() -> None:
    assert failure_message(1, [], {}) == "command exited with status 1"


def test_the_last_lines_follow_on_one_line() -> None:
    assert failure_message(3, ["boom", "bang"], {}) == "command exited with status 3: boom | bang"


def test_a_long_tail_keeps_its_end() -> None:
    message = failure_message(2, ["x" * 1000, "the reason"], {})
    tail = message.removeprefix("command exited with status 2: ")
    assert len(tail) == ERROR_TAIL_CHARS
    assert tail.startswith("…") and tail.endswith("x | the reason")


def test_the_workers_secrets_are_masked() -> None:
    environ = {
        "PIPECTL_DATABASE_URL": "postgresql://app:s3cretpw@db.internal/pipectl",
        "SUPABASE_SERVICE_ROLE_KEY": "eyJhbGciOiJIUzI1NiJ9.key",
        "HOME": "/root",
    }
    tail = [
        "connecting to postgresql://app:s3cretpw@db.internal/pipectl",
        "auth failed for password s3cretpw with key eyJhbGciOiJIUzI1NiJ9.key in /root",
    ]
    message = failure_message(1, tail, environ)
    assert "s3cretpw" not in message and "eyJhbGciOiJIUzI1NiJ9" not in message
    assert message == (
        "command exited with status 1: connecting to *** | "
        "auth failed for password *** with key *** in /root"
    )
