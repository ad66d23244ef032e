"""Rendering: the `Report` table shape and its formats (JSON, CSV, XLSX, PDF, FOCUS)."""
