"""The numpy forward pass of anodet's neural models: a short program of Dense, LSTM, RepeatVector
and Reshape steps stored as ``forward.npz``, its validation, and its evaluation.

Kept apart from :mod:`anodet.detectors.neural` so that scoring needs neither Keras nor the
training code. A program is data read from disk, so :func:`check_program` validates it before
anything is scored.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The logistic function as ``(1 + tanh(x / 2)) / 2``: numpy's SIMD tanh is ~3x faster than
    scipy's ``expit`` in float32 and agrees with it to ~1e-7."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


NUMPY_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0, out=x),
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "leaky_relu": lambda x: np.maximum(x, 0.2 * x),  # the same as where(x > 0, x, 0.2 x)
}

Step = tuple[str, tuple[np.ndarray, ...], str]
"""One step of a numpy forward pass: (operation, weights, activation)."""


def lstm(x: np.ndarray, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray,
         repeats: int = 0) -> np.ndarray:
    """Keras' LSTM (gates i, f, c, o; tanh and sigmoid); every h_t, shape (n, steps, units).

    ``x`` is a sequence (n, steps, d), or with ``repeats`` one vector (n, d) fed at every step
    (a RepeatVector before the LSTM), whose input projection is then computed once.
    """
    units = recurrent.shape[0]
    # Gate columns reordered i, f, o, c: one sigmoid over the first three, one tanh over c.
    order = np.r_[0:2 * units, 3 * units:4 * units, 2 * units:3 * units]
    kernel, recurrent, bias = kernel[:, order], recurrent[:, order], bias[order]
    if repeats:
        n, steps = len(x), repeats
        constant = x @ kernel + bias
    else:
        n, steps, d = x.shape
        # the input part of every gate at once, as one 2-D product
        projected = (x.reshape(n * steps, d) @ kernel + bias).reshape(n, steps, 4 * units)
    h = np.zeros((n, units), x.dtype)
    c = np.zeros((n, units), x.dtype)
    out = np.empty((n, steps, units), x.dtype)
    for t in range(steps):
        z = h @ recurrent
        z += constant if repeats else projected[:, t]
        gates = sigmoid(z[:, :3 * units])
        g = np.tanh(z[:, 3 * units:])
        c *= gates[:, units:2 * units]
        g *= gates[:, :units]
        c += g
        h = np.tanh(c)
        h *= gates[:, 2 * units:]
        out[:, t] = h
    return out


def run_program(steps: list[Step], X: np.ndarray) -> np.ndarray:
    h = X
    repeats = 0  # a pending RepeatVector, applied lazily by the LSTM that follows it
    for op, weights, activation in steps:
        if repeats and op not in ("lstm_sequence", "lstm_last"):
            h, repeats = np.repeat(h[:, None, :], repeats, axis=1), 0
        weights = tuple(w.astype(X.dtype, copy=False) if w.dtype.kind == "f" else w for w in weights)
        if op == "dense":
            h = NUMPY_ACTIVATIONS[activation](h @ weights[0] + weights[1])
        elif op == "lstm_sequence":
            h, repeats = lstm(h, weights[0], weights[1], weights[2], repeats=repeats), 0
        elif op == "lstm_last":
            h, repeats = lstm(h, weights[0], weights[1], weights[2], repeats=repeats)[:, -1], 0
        elif op == "repeat":
            repeats = int(weights[0][0])
        elif op == "reshape":
            h = h.reshape(len(h), *(int(d) for d in weights[0]))
        else:
            raise ValueError(f"unknown step {op!r}")
    if repeats:
        h = np.repeat(h[:, None, :], repeats, axis=1)
    return h


WEIGHT_COUNTS = {"dense": 2, "lstm_sequence": 3, "lstm_last": 3, "repeat": 1, "reshape": 1}


def input_width(steps: list[Step]) -> int:
    """The record width a program takes: the rows of its first dense kernel, or its first reshape's size."""
    if not steps:
        raise ValueError("forward.npz holds no steps; retrain the model (python -m anodet train)")
    op, weights, _ = steps[0]
    if op == "dense" and weights and weights[0].ndim == 2:
        return int(weights[0].shape[0])
    if op == "reshape" and weights:
        return int(np.prod(weights[0]))
    if op not in WEIGHT_COUNTS:
        raise ValueError(f"forward.npz step 0 ({op}) is an operation anodet's numpy forward pass does not know "
                         f"(known: {', '.join(WEIGHT_COUNTS)}); retrain the model (python -m anodet train)")
    raise ValueError(f"forward.npz starts with a {op} step, which does not say its input width; retrain the model "
                     "(python -m anodet train)")


def check_program(steps: list[Step]) -> int:
    """The record width ``d`` if ``steps`` maps (n, d) records to (n, d); else ValueError (one sentence).

    A forward.npz is data from disk: an unknown operation or activation, or weights whose
    shapes do not chain, must fail when the model is loaded, not in the middle of scoring.
    """
    width = input_width(steps)
    shape: tuple[int, ...] = (width,)
    fix = "retrain the model (python -m anodet train) or restore the original file"
    for i, (op, weights, activation) in enumerate(steps):
        where = f"forward.npz step {i} ({op})"
        if op not in WEIGHT_COUNTS:
            raise ValueError(f"{where} is an operation anodet's numpy forward pass does not know "
                             f"(known: {', '.join(WEIGHT_COUNTS)}); {fix}.")
        if len(weights) != WEIGHT_COUNTS[op]:
            raise ValueError(f"{where} has {len(weights)} weight arrays, expected {WEIGHT_COUNTS[op]}; {fix}.")
        wanted_kind = "f" if op in ("dense", "lstm_sequence", "lstm_last") else "iu"
        if any(w.dtype.kind not in wanted_kind for w in weights):
            raise ValueError(f"{where} has weights of dtype {', '.join(str(w.dtype) for w in weights)}, "
                             f"expected {'floating point' if wanted_kind == 'f' else 'integer'}; {fix}.")
        if op == "dense" and activation not in NUMPY_ACTIVATIONS:
            raise ValueError(f"{where} uses activation {activation!r}, which anodet's numpy forward pass "
                             f"does not know (known: {', '.join(NUMPY_ACTIVATIONS)}); {fix}.")
        if op != "dense" and activation:
            raise ValueError(f"{where} names activation {activation!r} but takes none; {fix}.")
        if op == "dense":
            kernel, bias = weights
            if kernel.ndim != 2 or kernel.shape[0] != shape[-1] or bias.shape != (kernel.shape[1],):
                raise ValueError(f"{where} has weights {kernel.shape} and {bias.shape} that do not fit "
                                 f"its input of shape {shape}; {fix}.")
            shape = (*shape[:-1], kernel.shape[1])
        elif op in ("lstm_sequence", "lstm_last"):
            kernel, recurrent, bias = weights
            units = recurrent.shape[0] if recurrent.ndim == 2 else -1
            if (len(shape) != 2 or kernel.shape != (shape[-1], 4 * units)
                    or recurrent.shape != (units, 4 * units) or bias.shape != (4 * units,)):
                raise ValueError(f"{where} has weights {kernel.shape}, {recurrent.shape} and {bias.shape} "
                                 f"that do not fit its input of shape {shape}; {fix}.")
            shape = (shape[0], units) if op == "lstm_sequence" else (units,)
        elif op == "repeat":
            count = int(weights[0].ravel()[0]) if weights[0].size == 1 else 0
            if count < 1 or len(shape) != 1:
                raise ValueError(f"{where} repeats {weights[0].tolist()} times an input of shape {shape}; "
                                 f"expected one positive count and a vector; {fix}.")
            shape = (count, shape[0])
        else:
            target = tuple(int(d) for d in weights[0].ravel())
            if weights[0].ndim != 1 or any(d < 1 for d in target) or np.prod(target) != np.prod(shape):
                raise ValueError(f"{where} reshapes an input of shape {shape} to {target}; {fix}.")
            shape = target
    if int(np.prod(shape)) != width:
        raise ValueError(f"forward.npz ends with outputs of shape {shape}, not {width} "
                         f"reconstructed features; {fix}.")
    return width
