"""Shared pytest setup. Keep it minimal: shared helpers live in tests/support (see its README)."""
