"""What a follower of a run's log prints: each line once, in order, even as the log's head is
dropped (the stored log keeps its last MAX_LOG_CHARS)."""

from __future__ import annotations

import re

from pipectl.handlers import context
from pipectl.handlers.context import RunLog, lines_after


def test_new_lines_only_as_the_log_grows() -> None:
    assert lines_after("", 0) == ([], 0)
    assert lines_after("a\nb", 0) == (["a", "b"], 2)
    assert lines_after("a\nb", 2) == ([], 2)
    assert lines_after("a\nb\nc", 2) == (["c"], 3)


def test_dropped_head_lines_are_counted_not_repeated() -> None:
    assert lines_after("… 3 earlier lines dropped\nd\ne", 4) == (["e"], 5)
    assert lines_after("… 3 earlier lines dropped\nd\ne", 5) == ([], 5)
    # Lines dropped before the follower saw them: said in one line.
    assert lines_after("… 3 earlier lines dropped\nd\ne", 1) == (
        ["… 2 lines dropped", "d", "e"],
        5,
    )


def test_a_follower_of_a_truncated_log_sees_every_kept_line_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(context, "MAX_LOG_CHARS", 100)
    log = RunLog(1)
    seen, printed = 0, []
    for number in range(12):
        log.info(f"line {number}")
        if number == 0:
            log.error("a traceback\n  spanning\n  three lines")
        new, seen = lines_after(log.text(), seen)
        printed += new
    assert log.text().startswith("… ")
    messages = [re.sub(r"^\d\d:\d\d:\d\d [A-Z]+ ", "", line) for line in printed]
    assert messages[:4] == ["line 0", "a traceback", "  spanning", "  three lines"]
    assert messages[4:] == [f"line {number}" for number in range(1, 12)]
    assert log.snapshot()[0] == 13  # writes, not lines
