"""Curves, metrics at a threshold, threshold presets and leaderboards."""
