"""Fuzzing liteseg's parsers of untrusted bytes: ``python -m fuzz all --runs 100000`` (see docs/fuzzing.md)."""
