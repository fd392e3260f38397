"""Worked examples: plug-in detectors for ``python -m anodet train --detector-class`` (see the README)."""
