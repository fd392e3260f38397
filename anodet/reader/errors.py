"""What the reader says about bad input: whole-input errors and per-row problems."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class InputError(ValueError):
    """The input cannot be scored as a whole; the message says what is wrong, where, and the fix."""


@dataclass(frozen=True)
class RowProblem:
    """One row that cannot be scored."""

    row: int
    reason: str


def listed(names: Sequence[str], limit: int = 12) -> str:
    """Names for a sentence, at most ``limit`` of them ("a, b and 30 more"): an input with thousands of
    columns still gets a short message."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def describe_problems(problems: list[RowProblem], limit: int = 5) -> str:
    """A sentence listing the first few problems ("row 7: …; row 9: …")."""
    shown = "; ".join(f"row {p.row}: {p.reason}" for p in problems[:limit])
    more = f" (and {len(problems) - limit:,} more listed)" if len(problems) > limit else ""
    return f"{shown}{more}."


class BadRowsError(InputError):
    """Rows cannot be scored and the caller asked to reject the file rather than skip them."""

    def __init__(self, problems: list[RowProblem], total: int) -> None:
        self.problems, self.total = problems, total
        super().__init__(
            f"{total:,} row(s) cannot be scored, so the file was rejected as asked: "
            f"{describe_problems(problems)} Fix those rows, or choose to skip bad rows "
            "(they are then listed with their row numbers in the results)."
        )
