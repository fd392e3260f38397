"""What training again with the same seed reproduces byte for byte, and what it cannot (said in the manifest).

A store's files are a function of the data, the seed, anodet's code and the libraries' versions,
computed on one kind of CPU, so a retraining on the same machine writes the same bytes. Wall-clock
facts (when, how long) are kept out of ``manifest.json`` in ``run.json`` beside it, which the
manifest's ``reproducibility`` entry lists as not reproducible, with why. Keras's ``.keras`` zips
carry a save time and object ids; they are written without them (:mod:`anodet.detectors.keras_zip`).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

RUN_FILE = "run.json"
RULE = ("Training again with the same seed on the same data, with the same anodet and library versions, on the "
        "same kind of CPU and number of cores, writes byte-identical files, except those listed under "
        "not_reproducible. On another CPU, numbers computed by BLAS, OpenMP and TensorFlow kernels chosen for that "
        "CPU and its cores (weights, scores, thresholds) may differ in their last bits; versions.blas names this "
        "machine's BLAS.")
RUN_FILE_WHY = "when the store was written and how long each detector took to fit: wall-clock times"


def section() -> dict[str, Any]:
    """The manifest's ``reproducibility`` entry."""
    return {"rule": RULE, "not_reproducible": {RUN_FILE: RUN_FILE_WHY}}


def blas() -> str:
    """The BLAS libraries numpy and scikit-learn call here, with the kernel chosen for this CPU."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    seen = []
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        text = " ".join(str(v) for v in (info.get("internal_api"), info.get("version"), info.get("architecture")) if v)
        if text not in seen:
            seen.append(text)
    return "; ".join(seen) or "unknown"


def write_run(root: Path, seconds: dict[str, float]) -> Path:
    """``run.json``: when the store was written and each detector's fit seconds (kept ones from the old run)."""
    path = Path(root) / RUN_FILE
    doc = {"created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "fit_seconds": {name: round(float(s), 2) for name, s in seconds.items()}}
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def read_run(root: Path) -> dict[str, Any]:
    """``run.json`` of the store at ``root`` ({} when missing or unreadable: it is informational only)."""
    try:
        doc = json.loads((Path(root) / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def fit_seconds(root: Path, manifest: dict[str, Any]) -> dict[str, float]:
    """Each detector's fit seconds: from ``run.json``, or an older store's ``train_seconds`` in its manifest."""
    recorded = read_run(root).get("fit_seconds")
    out = {n: float(e["train_seconds"]) for n, e in manifest.get("detectors", {}).items() if "train_seconds" in e}
    if isinstance(recorded, dict):
        out.update({n: float(s) for n, s in recorded.items() if isinstance(s, int | float)})
    return out
