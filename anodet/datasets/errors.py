"""The one error of users' datasets."""

from __future__ import annotations


class DatasetError(ValueError):
    """Something is wrong with a user's dataset or its declaration; the message is one sentence."""
