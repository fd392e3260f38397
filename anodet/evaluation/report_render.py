"""The decision report's two renderings, from :func:`anodet.evaluation.report.facts` only: a self-contained HTML
file (plotly's JavaScript embedded once, so it opens offline) and Markdown. Both end with the facts as JSON.

Every number shown is formatted from the facts, never recomputed here; figures reuse the dashboard's pure
plotly builders (:mod:`anodet.app.figures`, which import no Streamlit).
"""

from __future__ import annotations

import base64
import html as html_module
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from anodet.datasets.model import Splits
from anodet.evaluation.boards import Scored
from anodet.evaluation.metrics import ThresholdCurve, downsample_curve
from anodet.evaluation.operating import percent
from anodet.textsafe import markdown_text

FACTS_ID = "anodet-report-facts"
GENERATOR = "anodet report"
"""The ``<meta name="generator">`` of every HTML report (and the first line of every Markdown one): how the
command knows a file it may replace is a report it wrote."""
MARKDOWN_MARK = "<!-- generator: anodet report -->"
CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;
border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;
padding:.25em .6em;text-align:right}td:first-child,th:first-child{text-align:left}.lead{font-size:1.08em;
background:#f6f8fa;padding:.8em 1em;border-left:4px solid #d62728}pre{background:#f6f8fa;padding:.8em;
overflow-x:auto}.note{color:#555}table.kv td{text-align:left;font-family:monospace}"""


def pct(value: float | None) -> str:
    return "–" if value is None else percent(value)


def interval(ci: list[float | None] | None, fmt: Any = pct) -> str:
    """``95 % CI 7.0 %–9.4 %`` (or nothing without an interval)."""
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    return f"95 % CI {fmt(ci[0])}–{fmt(ci[1])}"


def auc(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def alerts(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def threshold_text(value: float) -> str:
    return f"{value:.6g}"


def _with(text: str, ci: str) -> str:
    return f"{text} ({ci})" if ci else text


def _inline(text: str, ci: str) -> str:  # inside parentheses already
    return f"{text}, {ci}" if ci else text


# ------------------------------------------------------------------------------------------------ sentences

def _n(count: int, singular: str, plural: str | None = None) -> str:
    """``1 false positive``, ``3 false positives``."""
    return f"{count:,} {singular if count == 1 else plural or singular + 's'}"


def ordinal(n: int) -> str:
    return {1: "first", 2: "second", 3: "third"}.get(n, f"{n}th" if 10 <= n % 100 <= 20 else
                                                   f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}")


def summary(facts: Mapping[str, Any]) -> list[str]:
    """The report's opening sentences: what the detector catches at the point, the alerts, its rank, the alternative."""
    d, at, test, words = facts["detector"], facts["at_point"], facts["test"], facts["dataset"]
    point = facts["point"]
    out = [f"At {point['description']}, in label view {words['label_view']}, {d['display']} at threshold "
           f"{threshold_text(d['threshold'])} catches {at['tp']:,} of {test['attacks']:,} test {words['positives']} "
           f"(recall {_inline(pct(at['recall']), interval(at['recall_ci']))}) with "
           f"{_n(at['fp'], 'false positive')} among {test['normals']:,} {words['negatives']} (false-positive rate "
           f"{_inline(pct(at['fpr']), interval(at['fpr_ci']))})."]
    if point["attack_share"]:
        out.append(f"For {point['records_per_day']:,.0f} records a day, {pct(point['attack_share'])} of them "
                   f"{words['positives']}, that is about "
                   f"{_with(alerts(at['alerts_per_day']), interval(at['alerts_per_day_ci'], alerts))} alerts a day: "
                   f"{alerts(at['false_alerts_per_day'])} false alarms on normal traffic and "
                   f"{alerts(at['attack_alerts_per_day'])} {words['positives']} caught.")
    else:
        out.append(f"For {point['records_per_day']:,.0f} records a day of normal traffic that is about "
                   f"{_with(alerts(at['alerts_per_day']), interval(at['alerts_per_day_ci'], alerts))} false alarms a "
                   "day.")
    if d["uses_labels"]:
        out.append(f"{d['display']} is the supervised ceiling (trained on labels): a reference, not ranked among the "
                   f"{d['ranked']} detectors.")
    elif d["rank"] == 1:
        out.append(f"It ranks first of the {d['ranked']} detectors at this point (the supervised ceiling not counted).")
    else:
        out.append(f"It ranks {ordinal(d['rank'])} of the {d['ranked']} detectors at this point; the best there is "
                   f"{d['best_display']}.")
    alt = facts["alternative"]
    if alt:
        verdict = ("not a significant difference: the two tie here" if alt["tied"]
                   else "a significant difference")
        out.append(f"The best alternative, {alt['display']}, catches {alt['tp']:,} with "
                   f"{_n(alt['fp'], 'false positive')}: {alt['caught_only_by_detector']:,} of the {words['positives']} "
                   f"only {d['display']} catches and {alt['caught_only_by_alternative']:,} only {alt['display']} does "
                   f"(exact McNemar p = {alt['mcnemar_p']:.3g}: {verdict}).")
    return out


def _how_chosen(facts: Mapping[str, Any]) -> str:
    d, v, point = facts["detector"], facts["validation"], facts["point"]
    if d["threshold_source"] != "the operating point":
        return f"The threshold comes from {d['threshold_source']} (in place of the operating point's)."
    how = {"fpr": "the lowest one that flags at most that share of the validation split's normal records",
           "budget": "the lowest one that flags at most that share of the validation split's normal records",
           "cost": "the threshold of least expected cost on the validation split",
           "preset": "the store's validation-chosen preset"}[point["kind"]]
    if v is None:
        return f"The threshold is {how}."
    return (f"The threshold is {how}: there it flags {v['normals_flagged']:,} of {v['normals']:,} normal records "
            f"({pct(v['fpr'])}) and {v['attacks_flagged']:,} of {v['attacks']:,} {facts['dataset']['positives']}.")


def _rows(facts: Mapping[str, Any]) -> dict[str, list[list[str]]]:
    """Every table of the report as rows of text cells (first row: the header), for HTML and Markdown alike."""
    at, words = facts["at_point"], facts["dataset"]
    test, alt = facts["test"], facts["alternative"]
    tables: dict[str, list[list[str]]] = {}
    tables["categories"] = [["category", words["positives"], "caught", "missed", "recall", "95 % CI"]] + [
        [c["category"], f"{c['records']:,}", f"{c['caught']:,}", f"{c['missed']:,}", pct(c["recall"]),
         interval(c["recall_ci"]).removeprefix("95 % CI ")] for c in facts["categories"]]
    tables["missed"] = [["label", "category", "missed", f"of the test {words['positives']} with it"]] + [
        [m["value"], m["category"], f"{m['missed']:,}", f"{m['records']:,}"] for m in facts["missed_values"]]
    tables["false_positives"] = [["label", "category", "flagged", "of the records with it"]] + [
        [m["value"], m["category"], f"{m['flagged']:,}", f"{m['records']:,}"] for m in facts["false_positive_values"]]
    side = [at] + ([alt] if alt else [])
    tables["compare"] = [["", *(s["display"] for s in side)],
                         ["threshold", *(threshold_text(s["threshold"]) for s in side)],
                         [f"{words['positives']} caught", *(f"{s['tp']:,} of {test['attacks']:,}" for s in side)],
                         ["recall", *(_with(pct(s["recall"]), interval(s["recall_ci"])) for s in side)],
                         ["false positives", *(f"{s['fp']:,} of {test['normals']:,}" for s in side)],
                         ["false-positive rate", *(_with(pct(s["fpr"]), interval(s["fpr_ci"])) for s in side)],
                         ["precision", *(_with(pct(s["precision"]), interval(s["precision_ci"])) for s in side)],
                         ["alerts a day", *(_with(alerts(s["alerts_per_day"]), interval(s["alerts_per_day_ci"], alerts))
                                            for s in side)],
                         [f"partial ROC AUC to {pct(at['pauc_max_fpr'])}" if at["pauc_max_fpr"] else "partial ROC AUC",
                          *(_with(auc(s["pauc"]), interval(s["pauc_ci"], auc)) for s in side)],
                         ["ROC AUC", *(_with(auc(s["roc_auc"]), interval(s["roc_auc_ci"], auc)) for s in side)]]
    if "expected_cost" in at:
        tables["compare"].append(["expected cost on the test split", alerts(at["expected_cost"]),
                                  *(["–"] if alt else [])])
    inputs = facts["inputs"]
    tables["inputs"] = [["input", "value"], ["model store", inputs["store_root"]],
                        ["store manifest sha256", inputs["store_manifest_sha256"]],
                        ["store created", inputs["store_created"]],
                        *([f"split checksum: {k}", v] for k, v in inputs["split_checksums"].items()),
                        *([f"{k} records", f"{v:,}"] for k, v in inputs["split_records"].items()),
                        ["bootstrap seed", str(inputs["seed"])], ["bootstrap resamples", f"{inputs['resamples']:,}"],
                        ["interval level", pct(inputs["level"])],
                        ["scoring code sha256", inputs["scoring_code_sha256"]],
                        ["versions", ", ".join(f"{k} {v}" for k, v in inputs["versions"].items())],
                        ["written", inputs["created"]]]
    return tables


def _counted_normal(facts: Mapping[str, Any], escape: Any = str) -> list[str]:
    view = facts["dataset"]["label_view"]
    return [f"{escape(c['category'])}: {c['flagged']:,} of its {c['records']:,} records "
            f"{'is' if c['flagged'] == 1 else 'are'} flagged; the {view} view counts them as normal, so those flagged "
            "are false positives here." for c in facts["counted_normal"]]


def _missed_sentence(facts: Mapping[str, Any]) -> str:
    at, words = facts["at_point"], facts["dataset"]
    missed = [c for c in facts["categories"] if c["missed"]]
    whole = [c["category"] for c in missed if c["caught"] == 0]
    text = f"It misses {at['fn']:,} of {facts['test']['attacks']:,} test {words['positives']}"
    if whole:
        text += f"; every one in {', '.join(whole)}"
    return text + "."


def _deploy(facts: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(the thresholds file's text, the commands that use it)."""
    document = json.dumps(facts["thresholds_file"], indent=2) + "\n"
    d, view = facts["detector"]["name"], facts["dataset"]["label_view"]
    dataset = facts["dataset"]["key"]
    where = "" if dataset == "kdd" else f" --dataset {dataset}"
    return document, [
        f"python -m anodet score INPUT.csv -o scored.csv{where} --detectors {d} --thresholds thresholds.json "
        f"--label-view {view}",
        f"python -m anodet stream{where} --detector {d} --thresholds thresholds.json --label-view {view} "
        "--input FILE|tcp://127.0.0.1:9000 --alerts alerts.jsonl"]


# ------------------------------------------------------------------------------------------------ figures

def figures(facts: Mapping[str, Any], splits: Splits, scores: Scored) -> dict[str, Any]:
    """The charts behind the decision: ROC curves on a log false-positive-rate axis down to the split's resolution,
    the detector and its best alternative marked at their thresholds; the detector's score histogram with the
    threshold (records scored +inf, outside the training range, are left out of the histogram)."""
    from anodet.app import figures as builders

    view, d, at = facts["dataset"]["label_view"], facts["detector"], facts["at_point"]
    y = splits.test.label(view)
    assert y is not None
    step = facts["resolution"]["step"] or 1e-4
    floor = step / 2
    side = [at] + ([facts["alternative"]] if facts["alternative"] else [])
    curves, points = {}, {}
    for s in side:
        fpr, tpr = ThresholdCurve.from_scores(y, np.asarray(scores.test[s["name"]])).roc()
        curves[s["display"]] = downsample_curve(np.maximum(fpr, floor), tpr, 2000)
        points[s["display"]] = (max(s["fpr"] or 0.0, floor), s["recall"] or 0.0)
    roc = builders.roc_figure(curves, {s["display"]: s["roc_auc"] for s in side}, points,
                              title=f"ROC curves, false-positive rate on a log axis ({view} view; × at the threshold)",
                              log_fpr=True, min_fpr=step)
    powers = [10.0**p for p in range(math.floor(math.log10(step)) + 1, 1) if 10.0**p > 2 * step]
    roc.update_layout(xaxis={"range": [math.log10(floor) - 0.1, 0], "tickvals": [floor, step, *powers],
                             "ticktext": ["0", percent(step), *(percent(p) for p in powers)]}, height=480)
    target = facts["point"]["target_fpr"]
    if target:
        roc.add_shape(type="line", x0=max(target, floor), x1=max(target, floor), y0=0, y1=1, yref="paper",
                      line={"color": "#888", "dash": "dash"})
        roc.add_annotation(x=math.log10(max(target, floor)), y=0.02, yref="paper", showarrow=False,
                           xanchor="left", text=f"target {percent(target)}")
    s = np.asarray(scores.test[d["name"]], dtype=np.float64)
    finite = np.isfinite(s)
    bins = builders.histogram_bins(s[finite], y[finite])
    histogram = builders.score_histogram(bins, d["threshold"], log_count=True,
                                         title=f"{d['display']}: test scores ({view} view) and the threshold")
    annotations = histogram.layout.annotations
    if annotations and len(bins.edges) and d["threshold"] > float(np.median(bins.edges)):
        annotations[0].xanchor = "right"  # keep the label inside the plot near its right edge
    return {"roc": roc, "histogram": histogram}


# ------------------------------------------------------------------------------------------------ renderings

def _e(text: Any) -> str:
    return html_module.escape(str(text))


def _html_table(rows: list[list[str]], css: str = "") -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _facts_json(facts: Mapping[str, Any]) -> str:
    return json.dumps(facts, indent=1, ensure_ascii=False, allow_nan=False)


def html(facts: Mapping[str, Any], charts: Mapping[str, Any]) -> str:
    """The report as one self-contained HTML page."""
    from plotly.offline import get_plotlyjs

    d, words, point = facts["detector"], facts["dataset"], facts["point"]
    tables = _rows(facts)
    document, commands = _deploy(facts)
    title = f"Decision report: {d['display']} on {words['title']} at {point['description']}"
    parts = [f"<h1>{_e(title)}</h1>", '<div class="lead">' + "".join(f"<p>{_e(s)}</p>" for s in summary(facts))
             + "</div>", "<h2>What was compared</h2>",
             f"<p>Dataset: {_e(words['title'])}; label view <b>{_e(words['label_view'])}</b>"
             + (f" ({_e(words['view_help'])})" if words["view_help"] else "") + ". Test split: "
             f"{facts['test']['records']:,} records, {facts['test']['attacks']:,} {_e(words['positives'])} and "
             f"{facts['test']['normals']:,} {_e(words['negatives'])}. Operating point: {_e(point['description'])}. "
             f"{_e(_how_chosen(facts))}</p>",
             *(f'<p class="note">{_e(n)}</p>' for n in facts["notes"]),
             f"<h2>What it catches, per category</h2>{_html_table(tables['categories'])}",
             *(f"<p>{_e(s)}</p>" for s in [*_counted_normal(facts), facts["elsewhere"]] if s),
             f"<h2>What it misses</h2><p>{_e(_missed_sentence(facts))}</p>",
             _html_table(tables["missed"]) if facts["missed_values"] else "",
             "<h2>What its false positives are</h2>",
             _html_table(tables["false_positives"]) if facts["false_positive_values"] else "<p>None.</p>",
             f"<h2>Against the best alternative at this point</h2>{_html_table(tables['compare'])}"]
    alt = facts["alternative"]
    if alt and alt["roc_auc_difference"][0] is not None:
        diff = alt["roc_auc_difference"]
        parts.append(f"<p>ROC AUC difference ({_e(d['display'])} − {_e(alt['display'])}): {diff[0]:+.4f} (95 % CI "
                     f"{diff[1]:+.4f} to {diff[2]:+.4f}, paired DeLong p = {diff[3]:.3g}).</p>")
    parts.append("<h2>Charts</h2>")
    for chart in charts.values():
        parts.append(chart.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False}))
    if d["infinite_test_scores"]:
        parts.append(f'<p class="note">{d["infinite_test_scores"]:,} test records scored +inf (far outside the '
                     "training range) are flagged at any threshold and not drawn in the histogram.</p>")
    encoded = base64.b64encode(document.encode()).decode()
    embedded = _facts_json(facts).replace("</", "<\\/")  # no "</script>" inside the script element
    parts += ["<h2>The thresholds file to deploy</h2>",
              f'<p><a download="thresholds.json" href="data:application/json;base64,{encoded}">Download '
              "thresholds.json</a> (the same text as below). Use it with:</p>",
              "<pre>" + _e("\n".join(commands)) + "</pre>", f"<pre>{_e(document)}</pre>",
              "<h2>Reproduce every number</h2><p>From the model store and the splits named here (their hashes), "
              "with this command:</p>", f"<pre>{_e(facts['inputs']['command'])}</pre>",
              _html_table(tables["inputs"], "kv"),
              "<details><summary>Every number of this report as JSON</summary>"
              f'<script type="application/json" id="{FACTS_ID}">{embedded}</script>'
              f"<pre>{_e(_facts_json(facts))}</pre></details>"]
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta name="generator" content="{GENERATOR}"><title>{_e(title)}</title><style>{CSS}</style>'
            f"<script>{get_plotlyjs()}</script></head><body>\n" + "\n".join(p for p in parts if p)
            + "\n</body></html>\n")


def _md_table(rows: list[list[str]], escape: tuple[int, ...] = ()) -> str:
    def cell(text: str, i: int) -> str:
        return markdown_text(text) if i in escape else text.replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c, i) for i, c in enumerate(rows[0])) + " |",
             "| --- |" + " ---: |" * (len(rows[0]) - 1)]
    lines += ["| " + " | ".join(cell(c, i) for i, c in enumerate(r)) + " |" for r in rows[1:]]
    return "\n".join(lines)


def markdown(facts: Mapping[str, Any]) -> str:
    """The report as Markdown (the charts are in the HTML version)."""
    d, words, point = facts["detector"], facts["dataset"], facts["point"]
    tables = _rows(facts)
    document, commands = _deploy(facts)
    out = [MARKDOWN_MARK, f"# Decision report: {d['display']} on {markdown_text(words['title'])} at "
                          f"{point['description']}", "", *(f"> {s}" for s in summary(facts)), "",
           "## What was compared", "",
           f"Dataset: {markdown_text(words['title'])}; label view **{words['label_view']}**"
           + (f" ({words['view_help']})" if words["view_help"] else "") + ". Test split: "
           f"{facts['test']['records']:,} records, {facts['test']['attacks']:,} {words['positives']} and "
           f"{facts['test']['normals']:,} {words['negatives']}. Operating point: {point['description']}. "
           f"{_how_chosen(facts)}", "", *(f"{n}\n" for n in facts["notes"]),
           "## What it catches, per category", "", _md_table(tables["categories"], (0,)), "",
           *(f"{s}\n" for s in [*_counted_normal(facts, markdown_text), facts["elsewhere"]] if s),
           "## What it misses", "", _missed_sentence(facts), "",
           _md_table(tables["missed"], (0, 1)) if facts["missed_values"] else "", "",
           "## What its false positives are", "",
           _md_table(tables["false_positives"], (0, 1)) if facts["false_positive_values"] else "None.", "",
           "## Against the best alternative at this point", "", _md_table(tables["compare"]), ""]
    alt = facts["alternative"]
    if alt and alt["roc_auc_difference"][0] is not None:
        diff = alt["roc_auc_difference"]
        out += [f"ROC AUC difference ({d['display']} − {alt['display']}): {diff[0]:+.4f} (95 % CI {diff[1]:+.4f} to "
                f"{diff[2]:+.4f}, paired DeLong p = {diff[3]:.3g}).", ""]
    out += ["The charts (ROC curves on a log false-positive-rate axis, the score histogram with the threshold) are in "
            "the HTML version of this report.", "", "## The thresholds file to deploy", "",
            "Save this as `thresholds.json` and use it with:", "", "```", *commands, "```", "", "```json",
            document.rstrip(), "```", "", "## Reproduce every number", "",
            "From the model store and the splits named here (their hashes), with this command:", "", "```",
            facts["inputs"]["command"], "```", "", _md_table(tables["inputs"]), "",
            "<details><summary>Every number of this report as JSON</summary>", "", "```json", _facts_json(facts),
            "```", "", "</details>", ""]
    return "\n".join(out)
