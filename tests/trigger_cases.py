"""Cases of the trigger rule, shared by the rule's unit tests and the stores' SQL tests."""

from __future__ import annotations

from pipectl.triggers import NO_TARGET

# The table the store's SQL is checked against too.
TARGET_CASES = [
    # job brand, input,           success brand, run brand (or NO_TARGET)
    ("acme", "orders", "acme", "acme"),
    ("acme", "orders", "beta", NO_TARGET),
    ("acme", "orders", None, NO_TARGET),
    ("acme", "global:orders", None, "acme"),
    ("acme", "global:orders", "acme", NO_TARGET),
    (None, "orders", "acme", "acme"),
    (None, "orders", "beta", "beta"),
    (None, "orders", None, NO_TARGET),
    (None, "global:orders", None, None),
    (None, "global:orders", "acme", NO_TARGET),
]
