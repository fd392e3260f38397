"""External detectors kept beside their dataset: ``data/external/<dataset>/<NAME>/`` (git-ignored).

Each holds ``scores.npz`` (record ids and scores of the test split, and of the validation split when
given, in the splits' order; plain arrays, no pickle) and ``external.json``: the source file's name,
sha256 and columns, the counts of what matched and what was ignored, whether scores were inverted,
the splits' checksums they were matched against, the sha256 of ``scores.npz``, and thresholds,
validation quantiles and metrics computed exactly as for a stored detector
(:func:`anodet.training.train.evaluate_scores`). The committed model store is never touched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from anodet.access.identity import Principal
from anodet.datasets.catalog import KDD
from anodet.datasets.errors import DatasetError
from anodet.datasets.kdd import cache_root
from anodet.external.matching import Matched, match
from anodet.store.core import sha256_file

FORMAT = "anodet-external/1"
DOC, SCORES = "external.json", "scores.npz"
KIND = "external"
"""What pages and tables call an external detector's kind and feature set."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


ROOT_ENV = "ANODET_EXTERNAL_DIR"


def external_root(dataset: str) -> Path:
    """``data/external/<dataset>``, or ``$ANODET_EXTERNAL_DIR/<dataset>`` when that is set."""
    if not _NAME.match(dataset):
        raise DatasetError(f"{dataset!r} is not a dataset name.")
    return Path(os.environ.get(ROOT_ENV) or cache_root() / "external") / dataset


def check_name(name: str) -> str:
    """``name`` if it can name an external detector, else a DatasetError saying what a name may hold."""
    from anodet.detectors import known_kinds

    if not isinstance(name, str) or not _NAME.match(name):
        raise DatasetError(f"{name!r} cannot name an external detector: use 1 to 64 letters, digits, '-' or '_', "
                           "starting with a letter or digit (e.g. my-pipeline).")
    if name in known_kinds():
        raise DatasetError(f"{name!r} is the name of a detector kind of anodet's; choose another name for your "
                           f"scores (e.g. my-{name}).")
    return name


@dataclass
class External:
    """An external detector as kept on disk: its name, its dataset, its folder and ``external.json``."""

    name: str
    dataset: str
    folder: Path
    doc: dict[str, Any]

    @property
    def display_name(self) -> str:
        return str(self.doc.get("display_name") or f"{self.name} · {KIND}")

    @property
    def digest(self) -> str:
        """What identifies this version of the scores (a new file, or scores added again, changes it)."""
        return str(self.doc["files"][SCORES])

    @property
    def entry(self) -> dict[str, Any]:
        """A manifest-shaped entry: what pages read about a detector (display name, thresholds, quantiles, metrics)."""
        keys = ("thresholds", "validation_quantiles", "metrics", "default_preset")
        return {"class": KIND, "display_name": self.display_name, "family": KIND, "feature_set": KIND, "files": {},
                "params": {}, **{k: self.doc[k] for k in keys}, "external": {
                    k: self.doc.get(k) for k in ("source", "inverted", "thresholds_on", "counts", "added")}}

    @cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        """The kept ids and scores, read once, after ``scores.npz`` is checked against its sha256."""
        path = self.folder / SCORES
        if sha256_file(path) != self.digest:
            raise DatasetError(f"{path} does not match its sha256 in {DOC} (changed or corrupt); add the scores again "
                               f"with `python -m anodet external add {self.name} --dataset {self.dataset} --scores "
                               "FILE --replace`.")
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def scores(self, split: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(record ids as text, scores) of ``split`` in the splits' order, or None (no validation scores)."""
        arrays = self.arrays
        if f"{split}_score" not in arrays:
            return None
        return arrays[f"{split}_id"], arrays[f"{split}_score"].astype(np.float64)

    def lines(self) -> list[str]:
        """What ``external list`` shows of it: source, counts, how thresholds were chosen."""
        d, c = self.doc, self.doc.get("counts", {})
        src = d.get("source", {})
        out = [f"{self.name} ({self.display_name}), dataset {self.dataset}, added {d.get('added', '?')}",
               f"  from {src.get('file')} (sha256 {str(src.get('sha256'))[:12]}…, {src.get('rows', 0):,} rows; "
               f"ids in {src.get('id_column')!r}, scores in {src.get('score_column')!r}"
               + (", inverted" if d.get("inverted") else "") + ")",
               f"  {c.get('test', 0):,} test and {c.get('validation', 0):,} validation records scored; thresholds "
               f"chosen on the {d.get('thresholds_on')}"]
        test = d.get("metrics", {}).get("test", {})
        aucs = [f"{view} {m['roc_auc']:.4f}" for view, m in test.items() if m.get("roc_auc") is not None]
        if aucs:
            out.append("  test ROC AUC " + ", ".join(aucs))
        return out


def _views(splits: Any, views: tuple[str, ...], test: np.ndarray, validation: np.ndarray | None) -> dict[str, Any]:
    """Thresholds, quantiles and metrics: on validation as for a stored detector, else on the test scores alone
    (no labels: the unlabelled presets), with test metrics at the default preset."""
    from anodet.evaluation import metrics
    from anodet.training.train import _finite_or_none, _rounded, evaluate_scores, unlabelled_presets

    if validation is not None:
        got = evaluate_scores(validation, test, splits, views)
        labelled = all("best_f1" in got["thresholds"][v] for v in views)
        return {**_finite_or_none(got), "default_preset": "best_f1" if labelled else "mean_3sigma",
                "thresholds_on": "validation split"}
    presets = unlabelled_presets(test)
    q = _rounded(np.quantile(test, metrics.QUANTILE_PROBS))
    results: dict[str, dict[str, Any]] = {"validation": {}, "test": {}}
    for view in views:
        y = splits.labels("test", view)
        if y is not None:
            results["test"][view] = metrics.summary(y, test, presets["mean_3sigma"])
    return {"thresholds": {v: dict(presets) for v in views},
            "validation_quantiles": {v: {"normal": q, "all": q} for v in views},
            "metrics": _finite_or_none(results), "default_preset": "mean_3sigma",
            "thresholds_on": "test scores without their labels (no validation scores were given)"}


def add(name: str, dataset: str, scores_path: Path | str, id_column: str | None = None,
        score_column: str | None = None, invert: bool = False, replace: bool = False,
        shown_name: str | None = None, splits: Any = None) -> tuple[External, list[str]]:
    """Match a score file to dataset ``dataset`` (``kdd`` or a declared dataset) and keep it as external
    detector ``name``; return it and the notes on what was ignored (one sentence each).

    ``shown_name``: what the file is called in what is kept and said (an upload's own name); ``splits``: the
    dataset's splits when the caller has them loaded (the dashboard), else they are read.
    """
    from anodet.datasets import catalog

    check_name(name)
    declaration = catalog.get(dataset)
    root = external_root(declaration.key)
    final = root / name
    if (final / DOC).exists() and not replace:
        raise DatasetError(f"Dataset {dataset} already has external scores {name!r}; add --replace to replace them, "
                           "or choose another name.")
    if final.exists() and not (final / DOC).exists():
        raise DatasetError(f"{final} exists and was not written by anodet; move it away or choose another name.")
    clash = _stored_names(declaration)
    if name in clash:
        raise DatasetError(f"Dataset {dataset}'s model store has a detector named {name!r}; choose another name.")
    splits = splits if splits is not None else declaration.load_splits()
    matched: Matched = match(scores_path, declaration, splits, id_column, score_column, invert, shown_name)
    source = Path(scores_path)
    doc = {"format": FORMAT, "name": name, "dataset": declaration.key, "kind": KIND,
           "display_name": f"{name} · {KIND}", "added": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "source": {"file": shown_name or source.name, "sha256": sha256_file(source), "rows": matched.counts["rows"],
                      "id_column": matched.id_column, "score_column": matched.score_column},
           "inverted": bool(invert), "checksums": dict(splits.checksums), "counts": matched.counts,
           "notes": matched.notes, **_views(splits, declaration.view_keys, matched.test, matched.validation)}
    arrays = {"test_id": np.asarray(splits.test.record_id).astype(str), "test_score": matched.test}
    if matched.validation is not None:
        arrays |= {"validation_id": np.asarray(splits.validation.record_id).astype(str),
                   "validation_score": matched.validation}
    _write(root, name, doc, arrays, final)
    return External(name, declaration.key, final, json.loads((final / DOC).read_text())), matched.notes


def add_upload(name: str, dataset: str, upload_id: str, filename: str, source: BinaryIO,
               principal: Principal | None = None, **options: Any) -> tuple[External, list[str]]:
    """:func:`add` for a file uploaded from the browser: kept under ``data/uploads/`` while it is matched (nowhere
    else), removed after; sentences name the file by the user's own name, never a server path. ``principal`` (the
    command line's operator when None) must be allowed to change the dataset (its owner or an admin; KDD's
    external detectors are every user's, so an admin's) and to upload; the outcome goes to the audit log."""
    from anodet.access import audit
    from anodet.access.permissions import require
    from anodet.datasets import ownership, uploads

    resource = f"dataset:{dataset}"
    owner = None if dataset == KDD else ownership.owner_of(ownership.read_doc(dataset))
    actor = require(principal, "replace", owner, resource=resource)
    path = uploads.save(upload_id, "scores", filename, source, principal=actor)
    try:
        got = add(name, dataset, path, shown_name=filename, **options)
    except DatasetError as exc:
        message = (str(exc).replace(str(path.resolve()), filename).replace(str(path), filename)
                   .replace(path.name, filename))
        audit.record(actor, "replace", audit.FAILED, resource, f"external scores {name}: {message}")
        raise DatasetError(message) from None
    finally:
        uploads.discard([path])
    audit.record(actor, "replace", audit.OK, resource, f"external scores {name} added")
    return got


def _stored_names(declaration: Any) -> list[str]:
    """The detector names the dataset's store lists (its manifest's keys; the store is validated when opened)."""
    from anodet.store.core import MANIFEST

    try:
        return list(json.loads((declaration.store_root / MANIFEST).read_bytes()).get("detectors", {}))
    except (OSError, ValueError, AttributeError):
        return []


def _write(root: Path, name: str, doc: dict[str, Any], arrays: dict[str, np.ndarray], final: Path) -> None:
    """Write the folder beside ``final`` and swap it in: an interrupted add leaves the previous scores as they were."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{name}.new-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    np.savez(tmp / SCORES, **arrays)  # type: ignore[arg-type]  # numpy stubs type **kwds as allow_pickle
    doc["files"] = {SCORES: sha256_file(tmp / SCORES)}
    (tmp / DOC).write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    old = root / f".{name}.old-{os.getpid()}"
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        _remove_folder(old)


def _remove_folder(folder: Path) -> list[Path]:
    """Remove what anodet wrote in ``folder`` (and the folder once empty); anything else stays."""
    removed = []
    for fname in (SCORES, DOC):
        path = folder / fname
        if path.exists():
            path.unlink()
            removed.append(path)
    try:
        folder.rmdir()
    except OSError:
        pass
    return removed


def load(dataset: str, name: str) -> External:
    """External detector ``name`` of ``dataset``, or a DatasetError naming the ones there are."""
    folder = external_root(dataset) / name
    try:
        doc = json.loads((folder / DOC).read_text())
    except FileNotFoundError:
        there = [e.name for e in list_externals(dataset)]
        raise DatasetError(f"Dataset {dataset} has no external detector {name!r}"
                           + (f" (it has {', '.join(there)})" if there else "") + "; add one with `python -m anodet "
                           f"external add {name} --dataset {dataset} --scores FILE`.") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{folder / DOC} cannot be read ({type(exc).__name__}); add the scores again with "
                           "--replace.") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("name") != name:
        raise DatasetError(f"{folder / DOC} is not an anodet external detector ({FORMAT}); add the scores again with "
                           "--replace.")
    return External(name, dataset, folder, doc)


def list_externals(dataset: str) -> list[External]:
    """The external detectors of ``dataset`` that can be read, by name."""
    root = external_root(dataset)
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and _NAME.match(folder.name) and (folder / DOC).is_file():
            try:
                out.append(load(dataset, folder.name))
            except DatasetError:
                continue
    return out


def remove(dataset: str, name: str) -> list[Path]:
    """Remove external detector ``name`` of ``dataset``: the two files anodet wrote (and the folder once empty)."""
    external = load(dataset, name)
    return _remove_folder(external.folder)


def stamp(dataset: str) -> str:
    """Changes whenever an external detector of ``dataset`` is added, replaced or removed (a few stats)."""
    root = external_root(dataset)
    try:
        entries = sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in root.glob(f"*/{DOC}"))
    except OSError:
        return ""
    return hashlib.sha256(repr(entries).encode()).hexdigest()[:16] if entries else ""
