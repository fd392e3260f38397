"""The real-time pipeline (placeholder until issue 5 lands)."""
