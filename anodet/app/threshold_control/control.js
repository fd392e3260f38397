// anodet threshold control (Streamlit Components v2): a threshold handle whose histogram line,
// ROC/PR operating points, metric tiles and confusion matrix follow it in the same frame.
//
// Python sends, once per detector and label view, every distinct test score with the records
// and attacks flagged at it (an Arrow table), the histogram bins and the two curves. A move of
// the handle is then a lookup and a few divisions here: no server round trip while dragging.
// On release (or when a keyboard change settles) the threshold goes back with setStateValue.

const SVG = "http://www.w3.org/2000/svg";
const KEY_SETTLE_MS = 350;
const TIMING_KEEP = 2000;
const instances = new WeakMap();
// Static parts (scores grid, histogram, curves) by payload version: Python sends them once per
// session and version, and this module outlives a component's remount (a page switch).
const staticParts = new Map();
const logScale = new Map(); // the log-count choice per payload version, kept while the tab lives
const STATIC_KEYS = ["grid", "hist", "roc", "pr", "tiles", "colours", "n", "n_attacks", "label", "positive"];

function timingStore() {
  // Read by bench/bench_ui.py and the browser tests: the browser's own redraw cost per move.
  if (!window.__anodetThresholdTiming) {
    window.__anodetThresholdTiming = { redraw: [], frame: [], shown: [] };
  }
  return window.__anodetThresholdTiming;
}

function keep(list, value) {
  list.push(value);
  if (list.length > TIMING_KEEP) list.splice(0, list.length - TIMING_KEEP);
}

function el(tag, attrs, parent, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function column(table, name) {
  if (table && typeof table.getChild === "function") {
    const child = table.getChild(name);
    return child ? child.toArray() : [];
  }
  return (table && table[name]) || [];
}

function capital(word) {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function fmt(value, digits) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs >= 1e-4 && abs < 10 ** digits) return String(Number(value.toPrecision(digits)));
  return value.toExponential(digits - 1).replace(/\.?0+e/, "e");
}

const count = (n) => Math.round(n).toLocaleString("en-US");
const pct = (share) => `${(100 * share).toFixed(1)}%`;
const ratio = (a, b) => (b ? a / b : 0);

function metrics(tp, fp, fn, tn) {
  // The same formulas as anodet.evaluate.metrics_from_counts.
  const precision = ratio(tp, tp + fp);
  const recall = ratio(tp, tp + fn);
  return {
    precision, recall,
    f1: ratio(2 * precision * recall, precision + recall),
    f2: ratio(5 * precision * recall, 4 * precision + recall),
    accuracy: ratio(tp + tn, tp + fp + fn + tn),
    fpr: ratio(fp, fp + tn),
  };
}

function niceTicks(lo, hi, wanted) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / wanted;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

class ThresholdControl {
  constructor(parent) {
    this.parent = parent;
    this.version = null;
    this.pos = 0;
    this.shown = null; // the threshold the handle shows (a grid score, or the server's own value)
    this.serverThreshold = null;
    this.committed = null;
    this.dragging = false;
    this.keyboard = false;
    this.settleTimer = null;
    this.root = el("div", { class: "adt" }, parent);
    this.resize = new ResizeObserver(() => this.layoutIfResized());
    this.resize.observe(this.root);
  }

  // ---- data from Python -------------------------------------------------------------------
  update(data, setStateValue, setTriggerValue) {
    this.setStateValue = setStateValue;
    if (data.grid !== undefined) {
      staticParts.delete(data.version);
      staticParts.set(data.version, Object.fromEntries(STATIC_KEYS.map((k) => [k, data[k]])));
      if (staticParts.size > 24) staticParts.delete(staticParts.keys().next().value); // oldest first
    } else if (staticParts.has(data.version)) {
      data = { ...staticParts.get(data.version), ...data };
    } else {
      setTriggerValue("missing", data.version); // ask Python for the full payload again
      return;
    }
    if (data.version !== this.version) {
      this.data = { ...data, log_count: logScale.get(data.version) ?? Boolean(data.log_count) };
      this.version = data.version;
      this.scores = column(data.grid, "score");
      this.flaggedAt = column(data.grid, "flagged");
      this.attacksAt = column(data.grid, "attacks");
      this.build();
      this.serverThreshold = null;
    }
    if (JSON.stringify(data.presets || []) !== JSON.stringify(this.data.presets || [])) {
      this.data = { ...this.data, presets: data.presets };
      this.build();
      this.slider.value = String(this.pos);
      this.redraw();
    }
    const threshold = data.threshold;
    if (threshold !== this.serverThreshold) {
      this.serverThreshold = threshold;
      // A value we sent coming back, or a move while the handle is held: leave the handle be.
      if (threshold !== this.committed && !this.dragging) this.moveTo(threshold);
    }
  }

  positionOf(threshold) {
    let lo = 0;
    let hi = this.scores.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.scores[mid] < threshold) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  moveTo(threshold) {
    this.pos = this.positionOf(threshold);
    this.shown = threshold;
    this.slider.value = String(this.pos);
    this.redraw();
  }

  // ---- static drawing (once per detector/view, and on resize) -----------------------------
  build() {
    const d = this.data;
    this.root.replaceChildren();
    this.root.setAttribute("role", "group");
    this.root.setAttribute("aria-label", `Threshold control for ${d.label}`);
    this.root.dataset.detector = d.name;

    const head = el("div", { class: "adt-head" }, this.root);
    this.readout = el("div", { class: "adt-readout", "aria-live": "off" }, head);

    this.slider = el("input", {
      type: "range", class: "adt-slider", min: "0", max: String(this.scores.length - 1), step: "1",
      "aria-label": `Threshold for ${d.label}`,
    }, this.root);
    this.slider.addEventListener("pointerdown", () => { this.dragging = true; this.keyboard = false; });
    this.slider.addEventListener("keydown", () => { this.keyboard = true; });
    this.slider.addEventListener("input", (event) => this.onInput(event));
    this.slider.addEventListener("change", () => this.onChange());
    for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
      this.slider.addEventListener(type, () => { this.dragging = false; });
    }
    const scale = el("div", { class: "adt-scale" }, this.root);
    el("span", {}, scale, `lowest score: flags all ${count(d.n)}`);
    el("span", {}, scale, "drag, or use ← → PgUp PgDn Home End");
    el("span", {}, scale, "above the highest: flags none");

    this.presetButtons = [];
    if (d.presets && d.presets.length) {
      const row = el("div", { class: "adt-presets", role: "group", "aria-label": "Threshold presets" }, this.root);
      for (const preset of d.presets) {
        const button = el("button", { type: "button", class: "adt-preset", title: preset.help, "aria-pressed": "false" },
          row, preset.label);
        button.addEventListener("click", () => {
          this.moveTo(preset.value);
          this.commit(preset.value);
        });
        this.presetButtons.push([button, preset.value]);
      }
    }

    this.tiles = {};
    const tiles = el("div", { class: "adt-tiles" }, this.root);
    for (const tile of [...d.tiles, { key: "flagged", label: "Flagged", help: "Test records scoring at or above the threshold, and their share." }]) {
      const box = el("div", { class: "adt-tile", title: tile.help, "data-metric": tile.key }, tiles);
      el("div", { class: "adt-tile-label" }, box, tile.label);
      this.tiles[tile.key] = el("div", { class: "adt-tile-value" }, box, "–");
      if (tile.key === "flagged") this.flaggedShare = el("div", { class: "adt-tile-sub" }, box, "");
    }

    this.compact = Boolean(d.compact);
    if (this.compact) { // handle, read-out and tiles only (the Live monitor)
      this.widths = new Map();
      this.redraw();
      return;
    }
    const charts = el("div", { class: "adt-charts" }, this.root);
    const histBox = el("div", { class: "adt-box adt-hist" }, charts);
    const positive = d.positive || "attack";
    el("div", { class: "adt-title" }, histBox, `${d.label}: test scores, normal vs ${positive}`);
    this.histSvg = el("svg:svg", { class: "adt-svg", role: "img", "aria-label": `Score histogram of ${d.label} with the threshold` }, histBox);
    const legend = el("div", { class: "adt-legend" }, histBox);
    el("span", { class: "adt-key adt-key-normal" }, legend, "normal");
    el("span", { class: "adt-key adt-key-attack" }, legend, positive);
    el("span", { class: "adt-key adt-key-threshold" }, legend, "threshold");
    const logLabel = el("label", { class: "adt-log" }, legend);
    const logBox = el("input", { type: "checkbox" }, logLabel);
    logBox.checked = Boolean(d.log_count);
    logLabel.append(" log count axis");
    logLabel.title = `${capital(positive)}s can be rare at some scores; a log count axis shows small bars too.`;
    logBox.addEventListener("change", () => {
      this.data = { ...this.data, log_count: logBox.checked };
      logScale.set(this.version, logBox.checked);
      this.drawHistogram();
    });

    const cmBox = el("div", { class: "adt-box adt-cm" }, charts);
    el("div", { class: "adt-title" }, cmBox, "Confusion matrix (test records; share of each true class)");
    const table = el("table", { class: "adt-cm-table" }, cmBox);
    const headRow = el("tr", {}, el("thead", {}, table));
    el("th", {}, headRow, "");
    el("th", { scope: "col" }, headRow, "Flagged");
    el("th", { scope: "col" }, headRow, "Passed");
    const body = el("tbody", {}, table);
    this.cells = {};
    for (const [rowLabel, keys] of [[capital(positive), ["tp", "fn"]], ["Normal", ["fp", "tn"]]]) {
      const row = el("tr", {}, body);
      el("th", { scope: "row" }, row, rowLabel);
      for (const key of keys) this.cells[key] = el("td", { "data-cell": key }, row, "–");
    }
    el("div", { class: "adt-note" }, cmBox, `Flagged normal records are false positives; passed ${positive === "anomaly" ? "anomalies" : positive + "s"} are missed.`);

    const rocBox = el("div", { class: "adt-box adt-roc" }, charts);
    this.rocTitle = el("div", { class: "adt-title" }, rocBox, `ROC, AUC ${fmt(d.roc.auc, 3)} (× = threshold)`);
    this.rocSvg = el("svg:svg", { class: "adt-svg", role: "img", "aria-label": `ROC curve of ${d.label} with the operating point` }, rocBox);
    const prBox = el("div", { class: "adt-box adt-pr" }, charts);
    el("div", { class: "adt-title" }, prBox,
      `Precision-recall, AP ${fmt(d.pr.auc, 3)} (dotted: ${pct(d.pr.base_rate)} ${positive === "anomaly" ? "anomalies" : positive + "s"})`);
    this.prSvg = el("svg:svg", { class: "adt-svg", role: "img", "aria-label": `Precision-recall curve of ${d.label} with the operating point` }, prBox);

    this.tip = el("div", { class: "adt-tip", hidden: "" }, this.root);
    this.widths = new Map();
    this.layoutAll();
  }

  layoutIfResized() {
    if (!this.data || this.compact) return;
    const changed = [this.histSvg, this.rocSvg, this.prSvg].some((svg) => this.widths.get(svg) !== svg.clientWidth);
    if (changed) this.layoutAll();
  }

  layoutAll() {
    this.drawHistogram();
    this.drawCurve(this.rocSvg, "roc", "false-positive rate", "detection rate (recall)", null);
    this.drawCurve(this.prSvg, "pr", "recall", "precision", this.data.pr.base_rate);
    this.redraw();
  }

  frame(svg, height) {
    const width = Math.max(svg.clientWidth || svg.parentNode.clientWidth || 320, 200);
    this.widths.set(svg, svg.clientWidth);
    svg.replaceChildren();
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("height", String(height));
    return { width, height, left: 58, right: 14, top: 16, bottom: 42 };
  }

  axis(svg, f, xTicks, yTicks, xLabel, yLabel) {
    const g = el("svg:g", { class: "adt-axis" }, svg);
    const bottom = f.height - f.bottom;
    el("svg:line", { x1: f.left, x2: f.width - f.right, y1: bottom, y2: bottom }, g);
    el("svg:line", { x1: f.left, x2: f.left, y1: f.top, y2: bottom }, g);
    for (const [x, text] of xTicks) {
      el("svg:line", { class: "adt-grid", x1: x, x2: x, y1: f.top, y2: bottom }, g);
      el("svg:text", { x, y: bottom + 15, "text-anchor": "middle" }, g, text);
    }
    for (const [y, text] of yTicks) {
      el("svg:line", { class: "adt-grid", x1: f.left, x2: f.width - f.right, y1: y, y2: y }, g);
      el("svg:text", { x: f.left - 6, y: y + 4, "text-anchor": "end" }, g, text);
    }
    el("svg:text", { class: "adt-axis-title", x: (f.left + f.width - f.right) / 2, y: f.height - 4, "text-anchor": "middle" }, g, xLabel);
    el("svg:text", {
      class: "adt-axis-title", x: 0, y: 0, "text-anchor": "middle",
      transform: `translate(13 ${(f.top + bottom) / 2}) rotate(-90)`,
    }, g, yLabel);
  }

  drawHistogram() {
    const d = this.data;
    const h = d.hist;
    const svg = this.histSvg;
    const f = this.frame(svg, 250);
    const logX = h.log_x;
    const tx = (v) => (logX ? Math.log10(v) : v);
    const x0 = tx(h.edges[0]);
    const x1 = tx(h.edges[h.edges.length - 1]);
    const plotW = f.width - f.left - f.right;
    const plotH = f.height - f.top - f.bottom;
    this.histX = (v) => f.left + ((tx(v) - x0) / (x1 - x0 || 1)) * plotW;
    const maxCount = Math.max(1, ...h.normal, ...h.attack);
    const logY = d.log_count;
    const ty = (c) => (logY ? Math.log10(Math.max(c, 1)) : c);
    const yTop = logY ? Math.log10(maxCount) * 1.05 || 1 : maxCount * 1.05;
    const y = (c) => f.top + plotH * (1 - ty(c) / yTop);

    let xTicks;
    if (logX) {
      xTicks = [];
      for (let p = Math.ceil(x0); p <= Math.floor(x1); p++) xTicks.push([this.histX(10 ** p), fmt(10 ** p, 3)]);
    } else {
      xTicks = niceTicks(x0, x1, Math.max(3, Math.floor(plotW / 90))).map((v) => [this.histX(v), fmt(v, 3)]);
    }
    const yTicks = logY
      ? Array.from({ length: Math.floor(Math.log10(maxCount)) + 1 }, (_, p) => [y(10 ** p), count(10 ** p)])
      : niceTicks(0, maxCount, 4).map((v) => [y(v), count(v)]);
    this.axis(svg, f, xTicks, yTicks, `anomaly score${logX ? " (log scale)" : ""}`, `records${logY ? " (log scale)" : ""}`);

    const bars = el("svg:g", {}, svg);
    for (const [kind, counts] of [["normal", h.normal], ["attack", h.attack]]) {
      for (let i = 0; i < counts.length; i++) {
        if (!counts[i]) continue;
        const left = this.histX(h.edges[i]);
        const right = this.histX(h.edges[i + 1]);
        const top = y(counts[i]);
        el("svg:rect", {
          class: `adt-bar adt-bar-${kind}`, x: left, y: top, width: Math.max(right - left, 1),
          height: Math.max(f.height - f.bottom - top, 0), fill: d.colours[kind],
        }, bars);
      }
    }
    this.histLine = el("svg:line", { class: "adt-threshold-line", y1: f.top - 4, y2: f.height - f.bottom, stroke: d.colours.threshold }, svg);
    this.histLabel = el("svg:text", { class: "adt-threshold-label", y: f.top + 8 }, svg);
    const hit = el("svg:rect", { class: "adt-hit", x: f.left, y: f.top, width: plotW, height: plotH }, svg);
    hit.addEventListener("pointermove", (event) => {
      const box = svg.getBoundingClientRect();
      const px = event.clientX - box.left;
      let i = h.edges.findIndex((e, k) => k > 0 && px < this.histX(e)) - 1;
      if (i < 0) i = h.normal.length - 1;
      this.showTip(event, `score ${fmt(h.edges[i], 4)} – ${fmt(h.edges[i + 1], 4)}<br>`
        + `normal <b>${count(h.normal[i])}</b> · ${this.data.positive || "attack"} <b>${count(h.attack[i])}</b> records`);
    });
    hit.addEventListener("pointerleave", () => this.hideTip());
    this.histFrame = f;
    if (this.rocScale && this.prScale) this.redraw();
  }

  drawCurve(svg, which, xLabel, yLabel, baseRate) {
    const d = this.data;
    const curve = d[which];
    const f = this.frame(svg, 250);
    const plotW = f.width - f.left - f.right;
    const plotH = f.height - f.top - f.bottom;
    const sx = (v) => f.left + v * plotW;
    const sy = (v) => f.top + (1 - v / 1.02) * plotH;
    const ticks = [0, 0.25, 0.5, 0.75, 1];
    this.axis(svg, f, ticks.map((v) => [sx(v), String(v)]), ticks.map((v) => [sy(v), String(v)]), xLabel, yLabel);
    const chance = which === "roc" ? [[0, 0], [1, 1]] : [[0, baseRate], [1, baseRate]];
    el("svg:polyline", { class: "adt-chance", points: chance.map(([a, b]) => `${sx(a)},${sy(b)}`).join(" ") }, svg);
    const points = curve.x.map((v, i) => `${sx(v).toFixed(1)},${sy(curve.y[i]).toFixed(1)}`).join(" ");
    el("svg:polyline", { class: "adt-curve", points, stroke: d.colours.attack }, svg);
    const marker = el("svg:g", { class: "adt-marker", "data-curve": which }, svg);
    el("svg:path", { d: "M-6,-6L6,6M-6,6L6,-6", stroke: d.colours.threshold }, marker);
    const hit = el("svg:rect", { class: "adt-hit", x: f.left, y: f.top, width: plotW, height: plotH }, svg);
    hit.addEventListener("pointermove", (event) => {
      const box = svg.getBoundingClientRect();
      const v = (event.clientX - box.left - f.left) / plotW;
      let best = 0;
      for (let i = 1; i < curve.x.length; i++) if (Math.abs(curve.x[i] - v) < Math.abs(curve.x[best] - v)) best = i;
      this.showTip(event, `${xLabel} <b>${fmt(curve.x[best], 3)}</b><br>${yLabel} <b>${fmt(curve.y[best], 3)}</b>`);
    });
    hit.addEventListener("pointerleave", () => this.hideTip());
    if (which === "roc") { this.rocMarker = marker; this.rocScale = [sx, sy]; }
    else { this.prMarker = marker; this.prScale = [sx, sy]; }
  }

  showTip(event, html) {
    const box = this.root.getBoundingClientRect();
    this.tip.innerHTML = html;
    this.tip.hidden = false;
    const x = Math.min(event.clientX - box.left + 12, box.width - this.tip.offsetWidth - 4);
    this.tip.style.left = `${Math.max(x, 0)}px`;
    this.tip.style.top = `${event.clientY - box.top + 12}px`;
  }

  hideTip() { this.tip.hidden = true; }

  // ---- per move ---------------------------------------------------------------------------
  onInput(event) {
    const start = performance.now();
    this.pos = Number(this.slider.value);
    this.shown = this.scores[this.pos];
    this.redraw();
    const timing = timingStore();
    keep(timing.redraw, performance.now() - start);
    keep(timing.shown, this.shown);
    const dispatched = event.timeStamp;
    requestAnimationFrame(() => keep(timing.frame, performance.now() - dispatched));
  }

  onChange() {
    clearTimeout(this.settleTimer);
    if (this.keyboard) this.settleTimer = setTimeout(() => this.commit(), KEY_SETTLE_MS);
    else this.commit();
  }

  commit(value = this.scores[this.pos]) {
    this.dragging = false;
    if (value === this.serverThreshold) return;
    this.committed = value;
    // A timestamp makes every release a change, even back to a value sent before a preset.
    this.setStateValue("threshold", { value, at: Date.now() });
  }

  redraw() {
    const d = this.data;
    const i = this.pos;
    const flagged = this.flaggedAt[i];
    const tp = this.attacksAt[i];
    const fp = flagged - tp;
    const fn = d.n_attacks - tp;
    const tn = d.n - d.n_attacks - fp;
    const m = metrics(tp, fp, fn, tn);
    const threshold = this.shown ?? this.scores[i];
    const share = ratio(flagged, d.n);
    const percentile = 100 * (1 - share);
    const top = i === this.scores.length - 1;

    this.readout.innerHTML = `Threshold <b>${fmt(threshold, 6)}</b> (raw score${top ? ", above the highest test score" : ""})`
      + ` · percentile <b>${percentile.toFixed(2)}</b> · flags <b>${count(flagged)}</b> of ${count(d.n)} test records`
      + ` (<b>${pct(share)}</b>)`;
    this.slider.setAttribute("aria-valuetext",
      `threshold ${fmt(threshold, 6)}, percentile ${percentile.toFixed(2)}, flags ${count(flagged)} records (${pct(share)})`);
    for (const tile of d.tiles) this.tiles[tile.key].textContent = m[tile.key].toFixed(3);
    this.tiles.flagged.textContent = count(flagged);
    this.flaggedShare.textContent = `${pct(share)} of the test records`;
    const attacks = d.n_attacks;
    const normals = d.n - d.n_attacks;
    const cell = (key, value, total) => { this.cells[key].textContent = `${count(value)} (${pct(ratio(value, total))})`; };
    this.root.dataset.threshold = String(threshold);
    this.root.dataset.flagged = String(flagged);
    this.root.dataset.position = String(i);
    for (const [button, value] of this.presetButtons) {
      const on = Math.abs(value - threshold) <= 1e-9 * Math.max(Math.abs(value), Math.abs(threshold));
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.classList.toggle("adt-preset-on", on);
    }
    if (this.compact) return;
    cell("tp", tp, attacks); cell("fn", fn, attacks); cell("fp", fp, normals); cell("tn", tn, normals);

    // Histogram line: clamped to the plotted range; on a log axis a threshold <= 0 sits at the left.
    const h = d.hist;
    const lo = h.edges[0];
    const hi = h.edges[h.edges.length - 1];
    const inside = h.log_x && threshold <= 0 ? lo : Math.min(Math.max(threshold, lo), hi);
    const x = this.histX(inside);
    this.histLine.setAttribute("x1", x);
    this.histLine.setAttribute("x2", x);
    const f = this.histFrame;
    const rightSide = x < (f.left + f.width - f.right) * 0.62;
    this.histLabel.setAttribute("x", rightSide ? x + 5 : x - 5);
    this.histLabel.setAttribute("text-anchor", rightSide ? "start" : "end");
    this.histLabel.textContent = `threshold ${fmt(threshold, 4)}${threshold > hi ? " →" : threshold < lo ? " ←" : ""}`;

    const [rx, ry] = this.rocScale;
    this.rocMarker.setAttribute("transform", `translate(${rx(m.fpr)} ${ry(m.recall)})`);
    this.rocMarker.dataset.x = m.fpr; this.rocMarker.dataset.y = m.recall;
    const [px, py] = this.prScale;
    this.prMarker.style.display = flagged ? "" : "none";
    this.prMarker.setAttribute("transform", `translate(${px(m.recall)} ${py(m.precision)})`);
    this.prMarker.dataset.x = m.recall; this.prMarker.dataset.y = m.precision;
  }
}

export default function (component) {
  const { data, parentElement, setStateValue, setTriggerValue } = component;
  let control = instances.get(parentElement);
  if (!control) {
    control = new ThresholdControl(parentElement);
    instances.set(parentElement, control);
  }
  control.update(data, setStateValue, setTriggerValue);
}
