"""anodet: compare anomaly detectors on network-intrusion data and put one to work."""

__version__ = "0.1.0"

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The checkout anodet runs from: where ``models_store/`` and ``data/`` live unless configured elsewhere."""
