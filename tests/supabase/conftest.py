"""Fixtures for the supabase backend's own tests (the contract suite runs it in tests/store)."""

from __future__ import annotations

from supabase_server import supabase_project, supabase_url  # noqa: F401 (fixtures)
