"""Worker logging: one line per event, with the action and the ids involved as key=value pairs,
so `grep run_id=42` tells one run's whole story."""

from __future__ import annotations

import logging
import sys

_FIELDS = ("action", "worker_id", "job_id", "run_id", "job_type", "brand_id", "attempt")


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = [
            f"{field}={getattr(record, field)}"
            for field in _FIELDS
            if getattr(record, field, None) is not None
        ]
        return f"{line} {' '.join(pairs)}" if pairs else line


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("pipectl")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
