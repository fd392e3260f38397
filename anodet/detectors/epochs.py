"""How long a neural detector trains: its ``epochs`` on large data, early stopping on small data.

On large data (KDD's 97,278 rows) an epoch is hundreds of gradient steps and the fixed ``epochs``
parameter is what the models were tuned with. On small data (a few hundred rows) the same ten
epochs are ten steps: the model barely learns, and the time goes to per-call overheads. So when
the training rows are fewer than :data:`SMALL_DATA_ROWS` (``early_stopping="auto"``) the rule is:

* ``validation_fraction`` of the rows (drawn with the seed) are held out; the others are trained on;
* batches are at most an eighth of those rows (at least :data:`MIN_BATCH`), so an epoch is several steps;
* training runs for whole epochs up to ``max_steps`` gradient steps, and stops once the held-out
  rows' mean squared reconstruction error (what the score measures) has not improved for
  ``patience`` epochs; the weights of the best epoch are kept.

What ran and why is returned as a report that the store keeps in the manifest (``training``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

SMALL_DATA_ROWS = 10_000
"""Below this many training rows, ``early_stopping="auto"`` turns early stopping on."""
MIN_BATCH = 16
STEPS_PER_EPOCH = 8
"""On small data the batch is at most ``rows / STEPS_PER_EPOCH`` (at least :data:`MIN_BATCH`)."""
MIN_HELD_OUT = 8
"""Fewer held-out rows than this make a noisy stopping signal: the fixed ``epochs`` are used instead."""

PARAMS: dict[str, Any] = {"early_stopping": "auto", "validation_fraction": 0.2, "patience": 20}
"""The early-stopping parameters every neural detector takes (with its own ``max_steps``)."""


@dataclass
class Schedule:
    """The rows a neural detector trains on, in which batches, for how many epochs, and why."""

    fit: np.ndarray
    held_out: np.ndarray | None
    batch_size: int
    epochs: int
    patience: int
    rule: str

    @property
    def early(self) -> bool:
        return self.held_out is not None


def early_stopping_on(setting: Any, rows: int) -> tuple[bool, str]:
    if setting == "auto":
        if rows < SMALL_DATA_ROWS:
            return True, f"{rows:,} training rows, fewer than {SMALL_DATA_ROWS:,} (early_stopping='auto')"
        return False, f"{rows:,} training rows, {SMALL_DATA_ROWS:,} or more (early_stopping='auto')"
    if setting is True:
        return True, "early_stopping=True"
    if setting is False:
        return False, "early_stopping=False"
    raise ValueError(f"early_stopping must be 'auto', True or False, not {setting!r}")


def _plan(rows: int, params: dict[str, Any]) -> tuple[int, int, int, str]:
    """(held-out rows, batch size, most epochs, rule) for ``rows`` training rows; no rows held out: fixed epochs."""
    early, why = early_stopping_on(params.get("early_stopping", False), rows)
    batch_size, fixed = int(params["batch_size"]), int(params["epochs"])
    if not early:
        return 0, batch_size, fixed, f"{fixed} epochs (the epochs parameter): {why}"
    fraction = float(params["validation_fraction"])
    if not 0 < fraction < 1:
        raise ValueError(f"validation_fraction must be between 0 and 1, not {fraction}")
    n_held = round(rows * fraction)
    if n_held < MIN_HELD_OUT or rows - n_held < 1:
        return 0, batch_size, fixed, (f"{fixed} epochs (the epochs parameter): {rows:,} training rows leave fewer "
                                      f"than {MIN_HELD_OUT} to hold out for early stopping")
    batch = min(int(params["batch_size"]), max(MIN_BATCH, (rows - n_held) // STEPS_PER_EPOCH))
    epochs = max(1, int(params["max_steps"]) // math.ceil((rows - n_held) / batch))
    rule = (f"early stopping ({why}): {n_held:,} rows held out (seeded), batches of {batch}, up to {epochs} epochs "
            f"({params['max_steps']:,} steps), stop after {params['patience']} epochs without a lower held-out "
            f"reconstruction error, keep the best epoch's weights")
    return n_held, batch, epochs, rule


def most_steps(rows: int, params: dict[str, Any]) -> tuple[int, int]:
    """(gradient steps at most, batch size) a fit on ``rows`` rows takes under ``params`` (for time estimates):
    its epochs' steps, or with early stopping its ``max_steps`` budget."""
    n_held, batch, epochs, _ = _plan(rows, params)
    if n_held:
        return int(params["max_steps"]), batch
    return epochs * math.ceil(rows / batch), batch


def schedule(X: np.ndarray, params: dict[str, Any], seed: int) -> Schedule:
    """The training plan for rows ``X`` under a neural detector's ``params`` (see the module's rule)."""
    n_held, batch, epochs, rule = _plan(len(X), params)
    if not n_held:
        return Schedule(X, None, batch, epochs, 0, rule)
    order = np.random.default_rng([seed, 1]).permutation(len(X))
    held, fit = X[np.sort(order[:n_held])], X[np.sort(order[n_held:])]
    return Schedule(fit, held, batch, epochs, int(params["patience"]), rule)


def _batches(X: np.ndarray, batch_size: int, rng: np.random.Generator):
    order = rng.permutation(len(X))
    for start in range(0, len(X), batch_size):
        yield X[order[start:start + batch_size]]


def progress_bar(n: int, label: str):
    """One tick per epoch, on a terminal only."""
    from tqdm.auto import tqdm  # training only: scoring never draws a bar

    return tqdm(total=n, desc=label, unit="epoch", leave=False, disable=not sys.stderr.isatty())


def run(plan: Schedule, step: Callable[[np.ndarray], Any], label: str, seed: int,
        held_out_error: Callable[[np.ndarray], float] | None = None,
        weights: tuple[Callable[[], list], Callable[[list], None]] | None = None) -> dict[str, Any]:
    """Train epoch by epoch: ``step(batch)`` for each shuffled batch; return the report for the manifest.

    With a held-out part (``plan.early``), ``held_out_error(rows)`` is measured after each epoch, and
    ``weights`` (get, set) keep and restore the best epoch's weights.
    """
    rng = np.random.default_rng(seed)
    best, best_epoch, best_weights, ran = math.inf, 0, None, 0
    stopped = f"ran all {plan.epochs} epochs"
    with progress_bar(plan.epochs, label) as bar:
        for epoch in range(1, plan.epochs + 1):
            for batch in _batches(plan.fit, plan.batch_size, rng):
                step(batch)
            ran = epoch
            bar.update()
            if plan.held_out is None or held_out_error is None or weights is None:
                continue
            error = float(held_out_error(plan.held_out))
            if not math.isfinite(error):
                stopped = f"the held-out error was not finite after epoch {epoch}"
                break
            if error < best:
                best, best_epoch, best_weights = error, epoch, weights[0]()
            elif epoch - best_epoch >= plan.patience:
                stopped = f"no lower held-out error for {plan.patience} epochs after epoch {best_epoch}"
                break
    report: dict[str, Any] = {"rule": plan.rule, "epochs_run": ran, "rows": len(plan.fit)}
    if plan.held_out is not None:
        report.update({"held_out_rows": len(plan.held_out), "batch_size": plan.batch_size, "max_epochs": plan.epochs,
                       "stopped": stopped})
    if weights is not None and best_weights is not None:
        weights[1](best_weights)
        report.update({"best_epoch": best_epoch, "held_out_error": float(f"{best:.7g}")})
    return report
