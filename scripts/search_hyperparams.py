"""Choose each detector's hyperparameters per feature set on the validation split only.

Each candidate in a small grid per kind (:data:`anodet.training.selection.GRIDS`) is fitted on the training normals
(the seed and parameters ``python -m anodet train`` uses) and judged on the validation split; the test split is
never looked at. Two criteria (:class:`anodet.training.selection.Criterion`):

- ``--criterion roc_auc`` (default): the best mean validation ROC AUC over the two label views. Writes
  ``anodet/training/hyperparams.json`` (what training reads) and ``bench/results/hyperparams.md``.
- ``--criterion pauc``: the best validation partial ROC AUC up to ``--max-fpr`` in ``--views``, among candidates
  within ``--roc-tolerance`` of the best validation ROC AUC in every view; with ``ensemble`` among the kinds, also
  the ensemble's members, weights and combination (over the kinds searched on that feature set). Writes the
  operating-point choices training reads on top of the first file (``anodet/training/operating_point.json``, or
  ``--out``) and ``bench/results/hyperparams_pauc.md``.

``--train-rows N`` fits candidates on N training normals (a quicker search; training then uses all of them).
``--keep NAMES`` (stored names, e.g. ``bigan@kdd41,ocsvm@kdd41``) leaves those detectors as ``hyperparams.json`` has
them: the pAUC choices do not name them (an ensemble searched over them uses them as they are). Keep the store's best
detectors by full ROC AUC so that figure cannot drop.

    python scripts/search_hyperparams.py [--sets kdd18,kdd41] [--kinds pca,ocsvm] [--seed 0]
    python scripts/search_hyperparams.py --criterion pauc --max-fpr 0.001 --views true --roc-tolerance 0.02 \\
        --keep bigan@kdd41,ocsvm@kdd41 \\
        --kinds pca,zscore,mahalanobis,kmeans,knn,ecod,iforest,lof,ocsvm,bigan,autoencoder,vae,ensemble
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from anodet.datasets.kdd import load_splits  # noqa: E402
from anodet.datasets.kdd_schema import LABEL_VIEWS  # noqa: E402
from anodet.features.sets import BUILTIN, kind_of, qualified, set_of_name  # noqa: E402
from anodet.training.hyperparams import CHOICES_FILE, OPERATING_POINT_FILE, choices  # noqa: E402
from anodet.training.selection import GRIDS, Criterion, Search, search  # noqa: E402
from anodet.training.train import prepare  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sets", default=",".join(BUILTIN))
    parser.add_argument("--kinds", default=",".join(GRIDS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--criterion", choices=("roc_auc", "pauc"), default="roc_auc")
    parser.add_argument("--max-fpr", type=float, default=1e-3, help="with --criterion pauc: the partial AUC's range")
    parser.add_argument("--views", default=",".join(LABEL_VIEWS), help="label views the criterion averages over")
    parser.add_argument("--roc-tolerance", type=float, default=None,
                        help="with --criterion pauc: only candidates within this of the best validation ROC AUC")
    parser.add_argument("--train-rows", type=int, default=None, help="fit candidates on this many training normals")
    parser.add_argument("--keep", default="", help="stored names left as hyperparams.json has them (see above)")
    parser.add_argument("--out", type=Path, default=None, help="the choices file to write (default: see above)")
    return parser.parse_args(argv)


def criterion_of(args: argparse.Namespace) -> Criterion:
    return Criterion(args.criterion, args.max_fpr, tuple(v for v in args.views.split(",") if v), args.roc_tolerance)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    criterion = criterion_of(args)
    sets = [s for s in args.sets.split(",") if s]
    kinds = [k for k in args.kinds.split(",") if k]
    splits = load_splits()
    data = prepare(splits, sets, args.train_rows, args.seed, labelled="supervised" in kinds)
    labels = {view: y for view in LABEL_VIEWS if (y := splits.labels("validation", view)) is not None}
    found = search(data, labels, kinds, criterion, args.seed, log=lambda m: print(m, flush=True),
                   fixed=kept(args.keep.split(",")) if criterion.name == "pauc" else None)
    out = args.out or (CHOICES_FILE if criterion.name == "roc_auc" else OPERATING_POINT_FILE)
    write_choices(out, found, args.seed, args.train_rows)
    table = ROOT / "bench" / "results" / ("hyperparams.md" if criterion.name == "roc_auc" else "hyperparams_pauc.md")
    table.write_text(validation_table(found, args.seed, args.train_rows))
    print(f"wrote {out} and {table}")
    return 0


def kept(names: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """{feature set: {kind: parameters in hyperparams.json}} of the stored ``names`` left as they are."""
    today = choices(CHOICES_FILE).get("chosen", {})
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name in (n.strip() for n in names if n.strip()):
        kind, fs = kind_of(name), set_of_name(name)
        out.setdefault(fs, {})[kind] = dict(today.get(fs, {}).get(kind, {}))
    return out


def write_choices(path: Path, found: Search, seed: int, train_rows: int | None) -> dict[str, Any]:
    """Merge the search's choices into the choices file at ``path`` (kinds not searched keep theirs, kept ones are
    left out); the document."""
    previous = json.loads(path.read_text()) if path.exists() else {}
    chosen: dict[str, dict[str, dict[str, Any]]] = previous.get("chosen", {})
    for fs, kinds in found.chosen(with_fixed=False).items():
        chosen.setdefault(fs, {}).update(kinds)
    for fs, kinds in found.fixed.items():
        for kind in kinds:
            chosen.get(fs, {}).pop(kind, None)
    doc = {"written_by": "scripts/search_hyperparams.py", "criterion": found.criterion.to_json(), "seed": seed,
           "train_rows": train_rows, "date": dt.date.today().isoformat(),
           "kept": sorted(qualified(k, fs) for fs, kinds in found.fixed.items() for k in kinds), "chosen": chosen}
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def validation_table(found: Search, seed: int, train_rows: int | None) -> str:
    """Every candidate's validation figures as Markdown, the chosen ones in bold."""
    crit = found.criterion
    rows = "all training normals" if not train_rows else f"{train_rows:,} training normals"
    flags = f"--criterion {crit.name}"
    if crit.name == "pauc":
        flags += f" --max-fpr {crit.max_fpr:g} --views {','.join(crit.views)}"
        flags += f" --roc-tolerance {crit.roc_tolerance:g}" if crit.roc_tolerance is not None else ""
        kept_names = [qualified(k, fs) for fs, kinds in found.fixed.items() for k in kinds]
        flags += f" --keep {','.join(kept_names)}" if kept_names else ""
    lines = [
        "# Hyperparameters chosen on the validation split",
        "",
        f"`python scripts/search_hyperparams.py {flags}` (seed {seed}, candidates fitted on {rows}),",
        f"{dt.date.today().isoformat()}. Chosen by {crit.describe()}. Each candidate is fitted on the training",
        "normals and scored on the validation split (62,205 records: the reference prototype's 20% of KDD's test",
        "file); the test split is not used. Chosen rows are in **bold**.",
        "",
        f"| detector | parameters | val. ROC AUC (reference) | val. ROC AUC (true) | val. pAUC@{crit.max_fpr:g} "
        f"(reference) | val. pAUC@{crit.max_fpr:g} (true) | fit seconds |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for fs, kinds in found.candidates.items():
        for kind, candidates in kinds.items():
            best = found.best(fs, kind)
            for c in candidates:
                mark = "**" if c is best else ""
                held = " (kept)" if c is best and kind in found.fixed.get(fs, {}) else ""
                lines.append(f"| {mark}{qualified(kind, fs)}{mark}{held} | `{json.dumps(c.params)}` | "
                             f"{c.roc_auc['reference']:.4f} | {c.roc_auc['true']:.4f} | {c.pauc['reference']:.4f} | "
                             f"{c.pauc['true']:.4f} | {c.seconds:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
