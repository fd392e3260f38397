"""Validate and score tabular input in chunks (placeholder until issue 4 lands)."""
