"""Benchmarks: `python -m benchmarks [NAME ...]` (or `make bench`). Each prints figures and ratios
against a reference measured in the same run, so a noisy shared machine moves both alike."""
