"""anodet: compare anomaly detectors on network-intrusion data and put one to work."""

__version__ = "0.1.0"
