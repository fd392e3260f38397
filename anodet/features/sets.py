"""Feature sets: which raw columns a detector sees and how each becomes model input.

A feature set is a declaration (:class:`FeatureSetSpec`: columns, each numeric, log-numeric or
categorical) plus what was fitted on the training normals (:class:`FeatureSet`: per numeric
column its range after the transform, per categorical column its categories). The fitted set is
stored in the model store as JSON with its hash, and it alone turns raw records into the
``(n, d)`` matrix detectors take; nothing below it knows a width. A third feature set is one more
:class:`FeatureSetSpec`, not new code.

Transforms: ``numeric`` is min-max scaled onto the training range; ``log`` is ``log1p`` (of the
value clipped at 0) then min-max, for heavy-tailed counts and byte sizes; ``categorical`` is one
hot over the training categories plus an ``other`` bucket for the categories past the most frequent
:data:`MAX_CATEGORIES`. A category never seen in training is counted (the output names it) and, in
sets fitted since the unseen rule was recorded, encoded as the rarest category seen in training,
so it weighs at most as much as the most unusual value the detectors learned from, instead of
lighting a one-hot column that was always 0 in training (which z-score-like detectors read as
thousands of standard deviations).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anodet.datasets.kdd_schema import FEATURES, RAW_COLUMNS, TEXT_COLUMNS

KINDS = ("numeric", "log", "categorical")
OTHER = "<other>"
MAX_CATEGORIES = 64
"""Categories kept per categorical column (the most frequent in training); the rest go to ``other``."""

FORMAT = "anodet-featureset/1"


@dataclass(frozen=True)
class ColumnSpec:
    """One raw column of a feature set and how it is transformed."""

    name: str
    kind: str  # one of KINDS

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name!r}: unknown kind {self.kind!r}; choose one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class FeatureSetSpec:
    """A named declaration of a feature set: its raw columns in order, each with its transform."""

    name: str
    description: str
    columns: tuple[ColumnSpec, ...]

    @property
    def raw_columns(self) -> list[str]:
        return [c.name for c in self.columns]


_LOG_COLUMNS = frozenset({
    "duration", "src_bytes", "dst_bytes", "wrong_fragment", "urgent", "hot", "num_failed_logins",
    "num_compromised", "num_root", "num_file_creations", "num_shells", "num_access_files",
    "num_outbound_cmds", "count", "srv_count", "dst_host_count", "dst_host_srv_count",
})
"""Heavy-tailed KDD counts and byte sizes, scaled on a log scale in ``kdd41``."""

KDD18 = FeatureSetSpec(
    "kdd18",
    "The reference prototype's 18 continuous traffic features, min-max scaled.",
    tuple(ColumnSpec(f, "numeric") for f in FEATURES),
)
KDD41 = FeatureSetSpec(
    "kdd41",
    "All 41 KDD features: log1p of the byte and count columns, one-hot protocol, service and flag, "
    "min-max scaled on the training normals.",
    tuple(ColumnSpec(c, "categorical" if c in TEXT_COLUMNS else "log" if c in _LOG_COLUMNS else "numeric")
          for c in RAW_COLUMNS),
)
BUILTIN: dict[str, FeatureSetSpec] = {spec.name: spec for spec in (KDD18, KDD41)}
"""The built-in feature sets, in the order they are trained and shown."""

DEFAULT = KDD18.name


def spec(name: str) -> FeatureSetSpec:
    """The built-in feature set ``name``, or a ValueError naming the known ones."""
    try:
        return BUILTIN[name]
    except KeyError:
        raise ValueError(f"unknown feature set {name!r}; known: {', '.join(BUILTIN)}") from None


def qualified(kind: str, feature_set: str) -> str:
    """A detector's name in a store: the kind alone on the default set, ``kind@set`` on the others."""
    return kind if feature_set == DEFAULT else f"{kind}@{feature_set}"


def kind_of(name: str) -> str:
    """The detector kind (registry key) of a stored detector's name."""
    return name.split("@", 1)[0]


def set_of_name(name: str) -> str:
    """The feature set a stored detector's name says it was trained on."""
    return name.split("@", 1)[1] if "@" in name else DEFAULT


def category_codes(categories: Sequence[str], values: object) -> np.ndarray:
    """Index of each value (text, or Arrow/numpy values cast to text) in ``categories``; -1 where absent."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from anodet.reader.arrays import int_values, text_array  # Arrow without pyarrow importing pandas

    array = values if isinstance(values, pa.Array | pa.ChunkedArray) else text_array(
        list(np.asarray(values, dtype=object).astype(str)))
    if array.type != pa.string():
        array = pc.cast(array, pa.string())
    found = pc.index_in(array, value_set=text_array(list(categories)))
    return int_values(found, null=-1)


def _log(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        return np.log1p(np.maximum(values, 0.0))


class FeatureSet:
    """A feature set fitted on training normals: turns raw columns into detector input."""

    def __init__(self, spec: FeatureSetSpec, data_min: Mapping[str, float], data_max: Mapping[str, float],
                 categories: Mapping[str, Sequence[str]], unseen: Mapping[str, str] | None = None) -> None:
        self.spec = spec
        self.unseen = dict(unseen or {})
        """Per categorical column, what an unseen category is encoded as: a category seen in training (the rarest),
        or :data:`OTHER`; a column not listed (sets fitted before this rule) uses ``OTHER``."""
        self.name = spec.name
        self.categories = {c: list(v) for c, v in categories.items()}
        self.numeric = [c for c in spec.columns if c.kind != "categorical"]
        self.categorical = [c for c in spec.columns if c.kind == "categorical"]
        missing = [c.name for c in self.numeric if c.name not in data_min or c.name not in data_max]
        missing += [c.name for c in self.categorical if c.name not in self.categories]
        if missing:
            raise ValueError(f"feature set {spec.name!r} has no fitted state for {', '.join(missing)}")
        self.data_min_ = np.array([data_min[c.name] for c in self.numeric], dtype=np.float64)
        self.data_max_ = np.array([data_max[c.name] for c in self.numeric], dtype=np.float64)
        span = self.data_max_ - self.data_min_
        self.scale_ = np.where(span > 0, span, 1.0)
        self._logged = np.array([c.kind == "log" for c in self.numeric])
        self.encoded_names: list[str] = [c.name for c in self.numeric]
        self.groups: list[str] = [c.name for c in self.numeric]
        for col in self.categorical:
            for value in [*self.categories[col.name], OTHER]:
                self.encoded_names.append(f"{col.name}={value}")
                self.groups.append(col.name)

    @property
    def width(self) -> int:
        """Number of model inputs (one per numeric column, one per category and ``other``)."""
        return len(self.encoded_names)

    @property
    def raw_columns(self) -> list[str]:
        return self.spec.raw_columns

    @property
    def numeric_columns(self) -> list[str]:
        return [c.name for c in self.numeric]

    @property
    def categorical_columns(self) -> list[str]:
        return [c.name for c in self.categorical]

    # -- fitting and transforming ---------------------------------------------------------------

    @classmethod
    def fit(cls, spec: FeatureSetSpec, frame: Any, max_categories: int = MAX_CATEGORIES) -> FeatureSet:
        """Fit on a DataFrame of training normals holding the spec's raw columns."""
        data_min, data_max, categories, unseen = {}, {}, {}, {}
        for col in spec.columns:
            values = frame[col.name]
            if col.kind == "categorical":
                counts = values.astype(str).value_counts(sort=False)
                ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                categories[col.name] = sorted(k for k, _ in ordered[:max_categories])
                # past the kept categories the 'other' bucket was seen in training; else the rarest kept one
                unseen[col.name] = OTHER if len(ordered) > max_categories else str(ordered[-1][0]) if ordered else OTHER
            else:
                x = values.to_numpy(dtype=np.float64)
                if col.kind == "log":
                    x = _log(x)
                data_min[col.name], data_max[col.name] = float(x.min()), float(x.max())
        return cls(spec, data_min, data_max, categories, unseen)

    def numeric_part(self, raw: np.ndarray) -> np.ndarray:
        """Numeric raw values (columns in :attr:`numeric_columns` order) after the log transform."""
        raw = np.asarray(raw, dtype=np.float64)
        if self._logged.any():
            raw = raw.copy()
            raw[:, self._logged] = _log(raw[:, self._logged])
        return raw

    def scale_numeric(self, raw: np.ndarray) -> np.ndarray:
        """Min-max scaled numeric part (float64; values outside the training range land outside [0, 1])."""
        with np.errstate(over="ignore", invalid="ignore"):
            return (self.numeric_part(raw) - self.data_min_) / self.scale_

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Float32 detector input of raw numeric rows, for a set without categorical columns."""
        if self.categorical:
            raise ValueError(f"feature set {self.name!r} has categorical columns; use transform_frame")
        return self.scale_numeric(raw).astype(np.float32)

    def one_hot(self, codes: Mapping[str, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
        """(one-hot block, per-row count of unseen categories) of ``n`` rows from per-column codes (-1 = unseen)."""
        blocks, unseen = [], np.zeros(n, dtype=np.int64)
        for col in self.categorical:
            c = np.asarray(codes[col.name], dtype=np.int64)
            k = len(self.categories[col.name])
            missing = (c < 0) | (c >= k)
            unseen += missing
            target = self.unseen.get(col.name, OTHER)
            c = np.where(missing, self.categories[col.name].index(target) if target != OTHER else k, c)
            block = np.zeros((n, k + 1), dtype=np.float32)
            block[np.arange(n), c] = 1.0
            blocks.append(block)
        return (np.hstack(blocks) if blocks else np.zeros((n, 0), np.float32)), unseen

    def codes(self, column: str, values: object) -> np.ndarray:
        """Index of each value among this set's categories of ``column``; -1 for unseen ones."""
        return category_codes(self.categories[column], values)

    def transform_frame(self, frame: Any) -> np.ndarray:
        """The float32 detector input of a DataFrame holding the raw columns (for training and tests)."""
        numeric = frame[self.numeric_columns].to_numpy(dtype=np.float64)
        onehot, _ = self.one_hot({c: self.codes(c, frame[c].to_numpy()) for c in self.categorical_columns}, len(frame))
        return np.hstack([self.scale_numeric(numeric).astype(np.float32), onehot])

    # -- explanations ---------------------------------------------------------------------------

    def grouped(self, per_input: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Per-input contributions summed back to raw columns: (raw column names, (n, columns))."""
        per_input = np.atleast_2d(per_input)
        names = self.raw_columns
        index = {c: i for i, c in enumerate(names)}
        out = np.zeros((len(per_input), len(names)))
        for j, group in enumerate(self.groups):
            out[:, index[group]] += per_input[:, j]
        return names, out

    # -- storage --------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "description": self.spec.description,
            "columns": [{"name": c.name, "kind": c.kind} for c in self.spec.columns],
            "data_min": {c.name: float(v) for c, v in zip(self.numeric, self.data_min_, strict=True)},
            "data_max": {c.name: float(v) for c, v in zip(self.numeric, self.data_max_, strict=True)},
            "categories": self.categories,
            **({"unseen": self.unseen} if self.unseen else {}),
        }

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> FeatureSet:
        """A fitted set from its JSON document; ValueError (one sentence) when it is malformed."""
        if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
            raise ValueError(f"not an anodet feature set (expected format {FORMAT!r})")
        try:
            columns = tuple(ColumnSpec(str(c["name"]), str(c["kind"])) for c in doc["columns"])
            spec_ = FeatureSetSpec(str(doc["name"]), str(doc.get("description", "")), columns)
            unseen = {str(k): str(v) for k, v in dict(doc.get("unseen") or {}).items()}
            categories = {k: [str(x) for x in v] for k, v in dict(doc["categories"]).items()}
            if any(v != OTHER and v not in categories.get(k, []) for k, v in unseen.items()):
                raise ValueError("feature set document names an unseen-category target that is not a category")
            return cls(spec_, dict(doc["data_min"]), dict(doc["data_max"]), categories, unseen)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"feature set document lacks or garbles {exc}") from None

    @classmethod
    def load(cls, path: Path) -> FeatureSet:
        return cls.from_json(json.loads(Path(path).read_text()))

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()
