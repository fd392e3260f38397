"""The decision report (issue 27): every number it shows recomputed from the store and the split, independently
(numpy, scipy and scikit-learn straight on the scores and labels, not anodet's helpers), and the command's files,
errors and thresholds file."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from statistics import NormalDist

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

from anodet.cli import main
from anodet.evaluation import report, report_render
from anodet.evaluation.operating import OperatingPoint, percent
from anodet.scoring import cache
from anodet.scoring.core import score_frame
from anodet.textsafe import markdown_text
from tests.conftest import ROOT

Z = NormalDist().inv_cdf(0.975)
RESAMPLES = 200  # the report's bootstrap resamples here (an input it records); replicated below
ANY = object()  # a leaf that carries no number: a sentence, a path, a time, a version


# ---------------------------------------------------------------------------------------- independent statistics

def wilson(k: int, n: int) -> list[float]:
    p = k / n
    denominator = 1 + Z * Z / n
    centre = (p + Z * Z / (2 * n)) / denominator
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / denominator
    return [0.0 if k == 0 else centre - half, 1.0 if k == n else centre + half]


def placements(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's placement values by direct comparison of every attack with every normal record."""
    attacks, normals = s[y == 1], s[y != 1]
    v10 = np.array([np.mean(a > normals) + 0.5 * np.mean(a == normals) for a in attacks])
    v01 = np.array([np.mean(attacks > b) + 0.5 * np.mean(attacks == b) for b in normals])
    return v10, v01


def delong_interval(y: np.ndarray, s: np.ndarray) -> list[float]:
    v10, v01 = placements(y, s)
    auc = v10.mean()
    se = math.sqrt(v10.var(ddof=1) / len(v10) + v01.var(ddof=1) / len(v01))
    logit, half = math.log(auc / (1 - auc)), Z * se / (auc * (1 - auc))
    return [1 / (1 + math.exp(half - logit)), 1 / (1 + math.exp(-logit - half))]


def delong_difference(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> list[float]:
    """AUC(a) − AUC(b), its 95 % interval and two-sided p-value (paired DeLong)."""
    (a10, a01), (b10, b01) = placements(y, a), placements(y, b)
    d10, d01 = a10 - b10, a01 - b01
    diff = d10.mean()
    se = math.sqrt(d10.var(ddof=1) / len(d10) + d01.var(ddof=1) / len(d01))
    return [diff, diff - Z * se, diff + Z * se, math.erfc(abs(diff / se) / math.sqrt(2))]


def pauc_interval(y: np.ndarray, s: np.ndarray, max_fpr: float, seed: int) -> list[float]:
    """Stratified bootstrap percentile interval of scikit-learn's partial AUC, on the draws the report documents:
    one generator seeded ``seed``; per block of up to 500 resamples the attacks' draws, then the normals'."""
    rng = np.random.default_rng(seed)
    attacks, normals = np.flatnonzero(y == 1), np.flatnonzero(y != 1)
    values = []
    for start in range(0, RESAMPLES, 500):
        block = min(500, RESAMPLES - start)
        ia = rng.integers(0, len(attacks), (block, len(attacks)), dtype=np.int64)
        ib = rng.integers(0, len(normals), (block, len(normals)), dtype=np.int64)
        for r in range(block):
            rows = np.r_[attacks[ia[r]], normals[ib[r]]]
            values.append(roc_auc_score(y[rows] == 1, s[rows], max_fpr=max_fpr))
    return [float(v) for v in np.quantile(values, [0.025, 0.975])]


def holm(p: list[float]) -> list[float]:
    order = np.argsort(p, kind="stable")
    out, running = [0.0] * len(p), 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (len(p) - i) * p[j]))
        out[j] = running
    return out


def threshold_for(point: OperatingPoint, validation: np.ndarray, y_val: np.ndarray) -> float:
    """The lowest threshold (a distinct validation score, or just above the highest) whose validation false
    positives fit the point's FPR; for a cost ratio the one of least expected cost (the highest of equals)."""
    candidates = np.unique(np.r_[validation, np.nextafter(validation.max(), np.inf)])
    normals, attacks = np.sort(validation[y_val != 1]), np.sort(validation[y_val == 1])
    fp = len(normals) - np.searchsorted(normals, candidates, side="left")
    if point.kind == "cost":
        fn = np.searchsorted(attacks, candidates, side="left")
        cost = point.cost_ratio * fn + fp
        return float(candidates[np.flatnonzero(cost == cost.min())[-1]])
    assert point.target_fpr is not None
    return float(candidates[np.argmax(fp <= point.target_fpr * len(normals) * (1 + 1e-12))])


# ---------------------------------------------------------------------------------------- the expected report

@pytest.fixture(scope="module")
def kdd(store, splits):
    """Every detector's cached scores (to rank the alternatives), and the directly scored ones checked against them."""
    test, _ = cache.split_scores(store, splits, "test", lambda f: score_frame(store, f))
    validation, _ = cache.split_scores(store, splits, "validation", lambda f: score_frame(store, f))
    return {"test": test, "validation": validation}


def expected_facts(store, splits, kdd, name: str, view: str, point: OperatingPoint):
    """The report's facts, every number computed here from the scores and labels."""
    test = splits.test
    y, y_val = test.label(view), splits.validation.label(view)
    direct = score_frame(store, test.rows, [name])[name]
    np.testing.assert_array_equal(direct, kdd["test"][name])  # the cache holds the store's own scores
    records, share = point.records_per_day, point.attack_share if point.kind == "budget" else 0.0

    def at(n: str, threshold: float) -> dict:
        s = kdd["test"][n]
        flagged = s >= threshold
        tp, fp = int((flagged & (y == 1)).sum()), int((flagged & (y != 1)).sum())
        m, k = int((y == 1).sum()), int((y != 1).sum())
        recall, fpr = tp / m, fp / k
        limit = point.target_fpr if point.target_fpr is not None else fpr
        r_ci, f_ci = wilson(tp, m), wilson(fp, k)
        return {"name": n, "display": store.entry(n)["display_name"], "threshold": threshold, "tp": tp, "fp": fp,
                "fn": m - tp, "tn": k - fp, "recall": recall, "recall_ci": r_ci, "fpr": fpr, "fpr_ci": f_ci,
                "precision": tp / (tp + fp) if tp + fp else None,
                "precision_ci": wilson(tp, tp + fp) if tp + fp else None,
                "alerts_per_day": records * ((1 - share) * fpr + share * recall),
                "false_alerts_per_day": records * (1 - share) * fpr, "attack_alerts_per_day": records * share * recall,
                "alerts_per_day_ci": [records * ((1 - share) * f_ci[i] + share * r_ci[i]) for i in (0, 1)],
                "pauc": roc_auc_score(y, s, max_fpr=limit) if limit else None,
                "pauc_ci": pauc_interval(y, s, limit, 0) if point.target_fpr else None,
                "roc_auc": roc_auc_score(y, s), "roc_auc_ci": delong_interval(y, s)}

    detectors = [n for n in store.names if not store.uses_labels(n)]
    chosen = {n: threshold_for(point, kdd["validation"][n], y_val) for n in detectors}
    caught = {n: kdd["test"][n][y == 1] >= chosen[n] for n in detectors}
    false = {n: int((kdd["test"][n][y != 1] >= chosen[n]).sum()) for n in detectors}
    auc = {n: roc_auc_score(y, kdd["test"][n]) for n in detectors}
    m = int((y == 1).sum())
    if point.kind == "cost":  # the least expected cost on the test split first
        order = sorted(detectors, key=lambda n: (point.cost_ratio * (m - int(caught[n].sum())) + false[n], -auc[n]))
    else:  # the most attacks caught, then the fewest false positives
        order = sorted(detectors, key=lambda n: (-int(caught[n].sum()), false[n], -auc[n]))
    alt = next(n for n in order if n != name)
    mine = at(name, chosen[name])
    best_recall = max(detectors, key=lambda n: (int(caught[n].sum()), -false[n], auc[n]))
    others = [n for n in detectors if n != best_recall]
    adjusted = dict(zip(others, holm([mcnemar(caught[best_recall], caught[n]) for n in others]), strict=True))
    mine["pauc_max_fpr"] = point.target_fpr if point.target_fpr is not None else mine["fpr"]
    mine["tied_with_best"] = name == best_recall or adjusted.get(name, 0) > 0.05
    if point.kind == "cost":
        mine["expected_cost"] = point.cost_ratio * mine["fn"] + mine["fp"]
    other = at(alt, chosen[alt])
    a, b = caught[name], caught[alt]
    other.update({"caught_by_both": int((a & b).sum()), "caught_only_by_detector": int((a & ~b).sum()),
                  "caught_only_by_alternative": int((b & ~a).sum()), "mcnemar_p": mcnemar(a, b),
                  "tied": mcnemar(a, b) > 0.05,
                  "roc_auc_difference": delong_difference(y, kdd["test"][name], kdd["test"][alt])})
    flagged = kdd["test"][name] >= chosen[name]
    text, category = test.label_text.astype(str), test.category.astype(str)
    categories, counted_normal = [], []
    for c in ("dos", "probe", "r2l", "u2r", "novel"):
        attacks, normal_here = (category == c) & (y == 1), (category == c) & (y != 1)
        if attacks.any():
            k, n = int((flagged & attacks).sum()), int(attacks.sum())
            categories.append({"category": c, "records": n, "caught": k, "missed": n - k, "recall": k / n,
                               "recall_ci": wilson(k, n)})
        if normal_here.any():
            counted_normal.append({"category": c, "records": int(normal_here.sum()),
                                   "flagged": int((flagged & normal_here).sum())})

    def top(mask, among, key):
        counts, totals = Counter(text[mask]), Counter(text[among])
        first = {v: category[np.flatnonzero(text == v)[0]] for v in counts}
        return [{"value": v, "category": first[v], key: k, "records": totals[v]}
                for v, k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]]

    val_flagged = kdd["validation"][name] >= chosen[name]
    manifest = (ROOT / "models_store" / "manifest.json").read_bytes()
    n_normals = int((y != 1).sum())
    return {
        "format": "anodet-report/1",
        "dataset": {"key": "kdd", "title": "KDD Cup 99", "label_view": view, "view_help": ANY, "positive": "attack",
                    "positives": "attacks", "negatives": "normal connections"},
        "point": {"kind": point.kind, "description": ANY, "params": point.to_params(), "target_fpr": point.target_fpr,
                  "records_per_day": records, "attack_share": share,
                  **({"alerts_per_day": point.alerts_per_day} if point.kind == "budget" else {}),
                  **({"cost_ratio": point.cost_ratio} if point.kind == "cost" else {})},
        "detector": {"name": name, "display": mine["display"], "feature_set": store.entry(name)["feature_set"],
                     "uses_labels": False, "threshold": chosen[name],
                     "threshold_source": ANY, "infinite_test_scores": int(np.isinf(direct).sum()),
                     "rank": order.index(name) + 1, "ranked": len(detectors), "best": order[0],
                     "best_display": store.entry(order[0])["display_name"]},
        "test": {"records": len(test), "attacks": int((y == 1).sum()), "normals": n_normals},
        "resolution": {"normals": n_normals, "step": 1 / n_normals, "zero_upper": 1 - 0.05 ** (1 / n_normals),
                       "finer": point.target_fpr is not None and point.target_fpr < 1 / n_normals},
        "validation": {"records": len(y_val), "attacks": int((y_val == 1).sum()), "normals": int((y_val != 1).sum()),
                       "normals_flagged": int((val_flagged & (y_val != 1)).sum()),
                       "attacks_flagged": int((val_flagged & (y_val == 1)).sum()),
                       "fpr": (val_flagged & (y_val != 1)).sum() / (y_val != 1).sum()},
        "at_point": mine, "categories": categories, "counted_normal": counted_normal, "elsewhere": ANY,
        "missed_values": top((y == 1) & ~flagged, y == 1, "missed"),
        "false_positive_values": top((y != 1) & flagged, y != 1, "flagged"),
        "alternative": other, "notes": ANY,
        "thresholds_file": {"format": "anodet-thresholds/1", "label_view": view, "thresholds": {name: chosen[name]},
                            "store": hashlib.sha256(manifest).hexdigest(), "dataset": "kdd",
                            "operating_point": point.to_params()},
        "inputs": {"store_root": ANY, "store_manifest_sha256": hashlib.sha256(manifest).hexdigest(),
                   "store_created": ANY, "split_checksums": json.loads(manifest)["data"]["checksums"],
                   "split_records": {"train": len(splits.train), "validation": len(y_val), "test": len(test)},
                   "seed": 0, "resamples": RESAMPLES, "level": 0.95, "scoring_code_sha256": ANY, "versions": ANY,
                   "command": ANY, "created": ANY},
    }


def mcnemar(a: np.ndarray, b: np.ndarray) -> float:
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    return 1.0 if only_a + only_b == 0 else float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def assert_same(got, expected, path="facts"):
    """Every leaf of ``got`` equals the independently computed one (every key present in both: no number of the
    report goes unchecked)."""
    if expected is ANY:
        return
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), (path, set(got) ^ set(expected))
        for key in expected:
            assert_same(got[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), (path, got, expected)
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert_same(g, e, f"{path}[{i}]")
    elif isinstance(expected, (bool, np.bool_)) or expected is None or isinstance(expected, str):
        assert got == expected, (path, got, expected)
    else:
        tolerance = 1e-7 if "pauc_ci" in path else 1e-12  # the bootstrap counts resampled records in float32
        assert got == pytest.approx(float(expected), rel=1e-9, abs=tolerance), (path, got, expected)


CASES = [
    ("pca", "reference", OperatingPoint("fpr", fpr=0.0001)),
    ("bigan@kdd41", "true", OperatingPoint.parse_budget("50/500000", attack_share=0.2)),
    ("iforest@kdd41", "true", OperatingPoint("cost", cost_ratio=30, records_per_day=100_000)),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "view", "point"), CASES, ids=["fpr", "budget-share", "cost"])
def test_every_number_in_the_report_is_recomputed_from_the_store_and_the_split(store, splits, kdd, name, view, point):
    html, md = report.build("kdd", view, name, point, store=store, splits=splits, resamples=RESAMPLES)
    facts = json.loads(re.search(r'<script type="application/json" id="anodet-report-facts">(.*?)</script>', html,
                                 re.S).group(1))
    assert json.loads(md.split("```json\n")[-1].split("\n```")[0]) == facts  # the Markdown carries the same facts
    assert_same(facts, expected_facts(store, splits, kdd, name, view, point))
    # what a reader sees is formatted from those facts, in both renderings
    at, alt = facts["at_point"], facts["alternative"]
    shown = [f"{at['tp']:,} of {facts['test']['attacks']:,}", f"{at['fp']:,} of {facts['test']['normals']:,}",
             percent(at["recall"]), f"{percent(at['recall_ci'][0])}–{percent(at['recall_ci'][1])}",
             f"{at['alerts_per_day']:,.1f}", f"{at['roc_auc']:.4f}", f"{alt['tp']:,} of", f"{alt['mcnemar_p']:.3g}",
             report_render.threshold_text(at["threshold"]), facts["inputs"]["store_manifest_sha256"],
             *facts["inputs"]["split_checksums"].values(), f"--seed 0 --resamples {RESAMPLES}"]
    for row in facts["categories"]:
        shown += [f"{row['records']:,}", f"{row['missed']:,}", percent(row["recall"])]
    for row in facts["missed_values"]:
        shown += [f"{row['missed']:,}"]
    for text in shown:
        assert text in md, text
        assert text.replace("&", "&amp;") in html, text
    for row in facts["missed_values"]:
        assert markdown_text(row["value"]) in md and row["value"] in html
    if facts["resolution"]["finer"]:
        assert "is finer than the" in md


@pytest.mark.slow
def test_the_html_opens_offline_with_plotly_embedded_once_and_charts_mark_the_threshold(store, splits, kdd):
    from plotly.offline import get_plotlyjs

    point = OperatingPoint("fpr", fpr=0.0001)
    facts = report.facts("kdd", "reference", "pca", point, store=store, splits=splits, resamples=50)
    html = report_render.html(facts, charts := report_render.figures(facts, splits, report.boards.Scored(
        kdd["test"], kdd["validation"])))
    assert html.count(get_plotlyjs()[:2000]) == 1 and "<script src" not in html  # nothing to fetch: opens offline
    assert html.count('class="plotly-graph-div"') == 2
    roc = charts["roc"]
    marked = next(t for t in roc.data if t.mode == "markers" and t.legendgroup == "PCA · kdd18")
    floor = facts["resolution"]["step"] / 2
    assert marked.x[0] == max(facts["at_point"]["fpr"], floor) and marked.y[0] == facts["at_point"]["recall"]
    assert roc.layout.xaxis.type == "log" and roc.layout.xaxis.range[0] < math.log10(facts["resolution"]["step"])
    line = charts["histogram"].layout.shapes[0]
    assert line.x0 == pytest.approx(math.log10(facts["detector"]["threshold"]))


# ---------------------------------------------------------------------------------------- the command

def cli(*args: str) -> int:
    return main(list(args))


@pytest.mark.slow
def test_the_command_writes_both_files_and_a_thresholds_file_that_score_reads(tmp_path, capsys):
    html, md = tmp_path / "r.html", tmp_path / "r.md"
    assert cli("report", "--detector", "pca", "--fpr", "0.01%", "-o", str(html), "-o", str(md),
               "--resamples", "50") == 0
    assert capsys.readouterr().out.splitlines() == [f"wrote {html}", f"wrote {md}"]
    facts = json.loads(md.read_text().split("```json\n")[-1].split("\n```")[0])
    thresholds = tmp_path / "thresholds.json"
    thresholds.write_text(json.dumps(facts["thresholds_file"]))
    from anodet.evaluation.thresholds import read_thresholds_file

    assert read_thresholds_file(thresholds, ["pca"]) == ("reference", {"pca": facts["detector"]["threshold"]})
    # the file as a --thresholds input: its threshold replaces the operating point's
    moved = facts["detector"]["threshold"] * 2
    thresholds.write_text(json.dumps({**facts["thresholds_file"], "thresholds": {"pca": moved}}))
    assert cli("report", "--detector", "pca", "--fpr", "0.0001", "--thresholds", str(thresholds), "-o", str(md),
               "--resamples", "50") == 0  # our own earlier report: replaced
    again = json.loads(md.read_text().split("```json\n")[-1].split("\n```")[0])
    assert again["detector"]["threshold"] == moved and str(thresholds) in again["detector"]["threshold_source"]
    assert f"--thresholds {thresholds}" in again["inputs"]["command"]


@pytest.mark.parametrize(("args", "sentence"), [
    (["--fpr", "abc"], "--fpr 'abc' is not a rate"),
    (["--fpr", "5"], "must be from 0 to 1 (0 % to 100 %), not 5 (for a percentage write 5%)"),
    (["--budget", "50"], "is not an alert budget"),
    (["--budget", "50/0"], "records a day must be a positive number"),
    (["--fpr", "0.001", "--attack-share", "0.1"], "--attack-share goes with --budget"),
    (["--cost", "-3"], "--cost must be a positive number"),
])
def test_a_bad_operating_point_is_one_sentence(tmp_path, capsys, args, sentence):
    assert cli("report", "--detector", "pca", *args, "-o", str(tmp_path / "r.html")) == 2
    err = capsys.readouterr().err
    assert sentence in err and err.count("\n") == 1 and err.startswith("error: ")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(("detector", "output", "sentence"), [
    ("bogus", "r.html", "Detector 'bogus' is not in the store"),
    ("pca", "r.txt", "does not end in .html or .md"),
    ("pca@kdd99", "r.html", "is not in the store"),
])
def test_a_bad_detector_or_output_is_one_sentence(tmp_path, capsys, detector, output, sentence):
    assert cli("report", "--detector", detector, "--fpr", "0.0001", "-o", str(tmp_path / output)) == 2
    err = capsys.readouterr().err
    assert sentence in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_file_anodet_did_not_write_is_never_replaced(tmp_path, capsys):
    theirs = tmp_path / "notes.html"
    theirs.write_text("<html>my notes</html>")
    assert cli("report", "--detector", "pca", "--fpr", "0.0001", "-o", str(theirs)) == 2
    assert "is not a report anodet wrote" in capsys.readouterr().err
    assert theirs.read_text() == "<html>my notes</html>"


@pytest.mark.slow
def test_a_thresholds_file_of_another_view_or_detector_is_one_sentence(tmp_path, capsys):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"format": "anodet-thresholds/1", "label_view": "true", "thresholds": {"pca": 1.0}}))
    assert cli("report", "--detector", "pca", "--fpr", "0.0001", "--label-view", "reference", "--thresholds",
               str(path), "-o", str(tmp_path / "r.html")) == 2
    assert "holds thresholds for label view 'true'" in capsys.readouterr().err
    assert cli("report", "--detector", "zscore", "--fpr", "0.0001", "--thresholds", str(path),
               "-o", str(tmp_path / "r.html")) == 2
    assert "holds no threshold for zscore" in capsys.readouterr().err
