"""What an alert says: one JSON line per anomaly, formatted cheaply enough for a flood.

Every alert line is valid JSON (``allow_nan`` never needed): a score too large to be finite
(a record far outside the training range, or one that fails closed) is written as the largest
double, ``1.7976931348623157e+308``, with ``"saturated": true``. A record that fails closed (an
infinite value, a passthrough field that is not UTF-8) also carries ``"reason"``, saying why.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from json.encoder import encode_basestring
from typing import Any

import numpy as np

MAX_DOUBLE = "1.7976931348623157e+308"


def values_template(columns: tuple[str, ...] | list[str]) -> str:
    """The ``values`` object of an alert: the detector's numeric input columns, filled with ``%``."""
    return "{" + ", ".join(f"{json.dumps(c)}: %r" for c in columns) + "}"


ALERT_TEMPLATE = ('{"time": "%s", "detector": %s, "score": %s, "saturated": %s, "threshold": %r, "record": %d, '
                  '"line": %d, "label": %s, "fields": %s, "values": %s}\n')
"""One alert as a JSON line, built with ``%`` so that a flood of alerts stays cheap to write."""
ENTRY_TEMPLATE = ALERT_TEMPLATE.replace('"fields": %s', '"entry": %s, "fields": %s')
"""An alert of a record read from a broker also names its message: ``"entry"``, the Redis Stream
entry id or Kafka ``topic:partition:offset``."""
VALUES_CACHE = 65_536
"""Distinct feature vectors whose JSON is remembered: floods (smurf, neptune) repeat the same
vector over and over, and formatting 18 floats is the dearest part of writing an alert."""


def _json_value(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False)``, with strings (nearly every passthrough value) done
    by the json module's C string encoder: alerts of a flood each carry their own id."""
    if type(value) is str:
        return encode_basestring(value)
    return "null" if value is None else json.dumps(value, ensure_ascii=False)


def score_json(score: float) -> str:
    """A score as a JSON number: finite as is, +inf as the largest double."""
    return repr(score) if math.isfinite(score) else MAX_DOUBLE


def number_json(value: float) -> str:
    """A feature value as JSON: finite as a number, an infinite one as the string ``"inf"``/``"-inf"``."""
    if math.isfinite(value):
        return repr(value)
    return '"nan"' if value != value else '"inf"' if value > 0 else '"-inf"'


class AlertFormatter:
    """Formats a batch's alerts as JSON lines, caching what floods repeat."""

    def __init__(self, detector: str, threshold: float, value_columns: tuple[str, ...] | list[str] = ()) -> None:
        self.threshold = float(threshold)
        self._values_template = values_template(value_columns)
        self._values_text = self._values_template.replace("%r", "%s")
        self._detector_json = json.dumps(detector)
        self._label_json: dict[str | None, str] = {None: "null"}
        self._values_json: dict[tuple[float, ...], str] = {}
        self._fields_json: dict[tuple[Any, ...], str] = {}  # raw lines repeat protocol/service/flag

    def lines(self, X: np.ndarray, scores: np.ndarray, records: np.ndarray, line_numbers: np.ndarray,
              labels: list[str | None], fields: list[tuple[Any, ...]] | None = None,
              field_names: list[str] | None = None, entry_ids: list[str | None] | None = None,
              extras: list[dict[str, str] | None] | None = None,
              reasons: list[str | None] | None = None) -> list[str]:
        """One JSON line per row of ``X`` (the flagged rows of a batch).

        ``fields`` (named by ``field_names``) are the record's passthrough columns; ``extras`` adds
        per-row fields (those sent beside a raw line); ``entry_ids`` names each row's broker message;
        ``reasons`` says why a row failed closed (None: it did not)."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        # Floods repeat one feature vector back to back: format each run of equal rows once.
        new_run = np.ones(len(X), dtype=bool)
        new_run[1:] = np.any(X[1:] != X[:-1], axis=1)
        run_id = np.cumsum(new_run) - 1
        values_json = self._values_json
        if len(values_json) > VALUES_CACHE:
            values_json.clear()
        run_json = []
        for key in map(tuple, X[new_run].tolist()):
            vj = values_json.get(key)
            if vj is None:
                vj = values_json[key] = (self._values_template % key if all(map(math.isfinite, key))
                                         else self._values_text % tuple(map(number_json, key)))
            run_json.append(vj)
        base_template = ENTRY_TEMPLATE if entry_ids is not None else ALERT_TEMPLATE
        template = base_template.replace("%s", now, 1).replace("%s", self._detector_json, 1).replace(
            '"threshold": %r', f'"threshold": {score_json(self.threshold)}', 1)
        label_json = self._label_json
        fields_json = self._fields_json
        if len(fields_json) >= VALUES_CACHE:
            fields_json.clear()
        names_json = [_json_value(n) + ": " for n in field_names or []]
        out = []
        for i, (score, record, line, run) in enumerate(zip(scores.tolist(), records.tolist(), line_numbers.tolist(),
                                                           run_id.tolist(), strict=True)):
            label = labels[i]
            lj = label_json.get(label)
            if lj is None:
                lj = label_json[label] = json.dumps(label)
            fj = "{}"
            if fields:
                values = fields[i]
                cached = fields_json.get(values)
                if cached is None:
                    cached = "{" + ", ".join([k + _json_value(v)
                                              for k, v in zip(names_json, values, strict=True)]) + "}"
                    if len(fields_json) < VALUES_CACHE:
                        fields_json[values] = cached
                fj = cached
            extra = extras[i] if extras is not None else None
            if extra:
                merged = dict(zip(field_names or [], fields[i] if fields else (), strict=True))
                merged.update(extra)
                fj = "{" + ", ".join([_json_value(k) + ": " + _json_value(v) for k, v in merged.items()]) + "}"
            finite = math.isfinite(score)
            if entry_ids is None:
                text = template % (score_json(score), "false" if finite else "true", record, line, lj, fj,
                                   run_json[run])
            else:
                text = template % (score_json(score), "false" if finite else "true", record, line, lj,
                                   _json_value(entry_ids[i]), fj, run_json[run])
            reason = reasons[i] if reasons is not None else None
            if reason:
                text = f'{text[:-2]}, "reason": {_json_value(reason)}}}\n'
            out.append(text)
        return out
