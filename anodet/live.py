"""Live monitor helpers: replay a scored data set as a stream, or follow a running stream's alert log.

Pure bookkeeping (no Streamlit): the Live monitor page keeps these objects in session state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


class Replay:
    """Replays a scored data set as a stream: records are released at ``speed`` records/s.

    The scores are precomputed (the dashboard has the test split's scores at hand), so a replay
    costs nothing but bookkeeping. :meth:`advance` releases what is due since the last call, but
    never more than ``max_gap`` seconds' worth: when nobody is watching (the user left the page),
    the replay simply resumes where it was.
    """

    def __init__(self, scores: np.ndarray, is_attack: np.ndarray, attack_names: np.ndarray | None = None,
                 speed: float = 200.0, seed: int = 0, max_gap: float = 3.0, history: int = 600) -> None:
        order = np.random.default_rng(seed).permutation(len(scores))
        self.scores = np.asarray(scores, dtype=np.float64)[order]
        self.is_attack = np.asarray(is_attack).astype(bool)[order]
        self.names = None if attack_names is None else np.asarray(attack_names)[order]
        self.order = order
        self.speed, self.max_gap, self.history_len = float(speed), float(max_gap), history
        self.position = 0
        self.flagged = 0
        self.caught = 0
        self.running = False
        self.replay_time = 0.0
        self._last: float | None = None
        self._carry = 0.0
        self.history: list[tuple[float, int, int]] = []  # (replay seconds, records, alerts) per tick

    @property
    def finished(self) -> bool:
        return self.position >= len(self.scores)

    def start(self, now: float) -> None:
        if self.finished:
            self.reset()
        self.running, self._last = True, now

    def pause(self) -> None:
        self.running, self._last = False, None

    def reset(self) -> None:
        self.position = self.flagged = self.caught = 0
        self.replay_time, self._carry = 0.0, 0.0
        self.history.clear()
        self.pause()

    def advance(self, now: float, threshold: float) -> int:
        """Release the records due by ``now`` (seconds, monotonic); return how many."""
        if not self.running or self._last is None:
            return 0
        gap = min(max(now - self._last, 0.0), self.max_gap)
        self._last = now
        due = gap * self.speed + self._carry
        n = min(int(due), len(self.scores) - self.position)
        self._carry = due - int(due)
        new = slice(self.position, self.position + n)
        hits = self.scores[new] >= threshold
        self.flagged += int(hits.sum())
        self.caught += int((hits & self.is_attack[new]).sum())
        self.position += n
        self.replay_time += gap
        self.history.append((self.replay_time, n, int(hits.sum())))
        del self.history[:-self.history_len]
        if self.finished:
            self.pause()
        return n

    def window(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(record numbers, scores, is_attack) of the last ``size`` released records."""
        lo = max(0, self.position - size)
        return np.arange(lo + 1, self.position + 1), self.scores[lo:self.position], self.is_attack[lo:self.position]

    def rate_series(self, seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Anomaly rate (alerts / records) per ``seconds`` of replay time, from the tick history."""
        if not self.history:
            return np.empty(0), np.empty(0)
        t, n, a = (np.array(c, dtype=float) for c in zip(*self.history, strict=True))
        bucket = np.floor(t / seconds)
        keys, inverse = np.unique(bucket, return_inverse=True)
        records = np.bincount(inverse, weights=n)
        alerts = np.bincount(inverse, weights=a)
        ok = records > 0
        return (keys[ok] + 1) * seconds, alerts[ok] / records[ok]

    def latest_alerts(self, threshold: float, limit: int = 20) -> list[dict[str, Any]]:
        """The most recent released records scoring >= ``threshold``, newest first."""
        flagged = np.flatnonzero(self.scores[:self.position] >= threshold)[::-1][:limit]
        return [{"record": int(i) + 1, "score": float(self.scores[i]),
                 "truth": (str(self.names[i]) if self.names is not None else
                           ("attack" if self.is_attack[i] else "normal"))} for i in flagged]


class AlertFollower:
    """Follows the alert log (and optional stats file) of a running ``stream`` command.

    Keeps a byte offset and reads only complete new lines on each :meth:`poll`; starts over
    when the log is truncated or replaced.
    """

    def __init__(self, path: str | Path, stats_path: str | Path | None = None, keep: int = 5000,
                 from_start: bool = False) -> None:
        self.path = Path(path)
        self.stats_path = Path(stats_path) if stats_path else None
        self.keep = keep
        self.alerts: list[dict[str, Any]] = []
        self.total = 0
        self.bad_lines = 0
        self.stats: dict[str, Any] | None = None
        self.stats_history: list[tuple[float, int, int]] = []  # (elapsed s, scored, alerts)
        self._inode: int | None = None
        self._offset = 0
        if not from_start and self.path.exists():
            self._offset = self.path.stat().st_size
            self._inode = self.path.stat().st_ino

    def poll(self) -> int:
        """Read what was appended since the last poll; return the number of new alerts."""
        new = 0
        try:
            st_ = self.path.stat()
        except FileNotFoundError:
            st_ = None
        if st_ is not None:
            if st_.st_ino != self._inode or st_.st_size < self._offset:
                self._inode, self._offset = st_.st_ino, 0
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
            end = data.rfind(b"\n") + 1
            self._offset += end
            for line in data[:end].splitlines():
                try:
                    alert = json.loads(line)
                except ValueError:
                    self.bad_lines += 1
                    continue
                self.alerts.append(alert)
                new += 1
            del self.alerts[:-self.keep]
            self.total += new
        if self.stats_path is not None:
            try:
                self.stats = json.loads(self.stats_path.read_text())
            except (OSError, ValueError):
                pass
            else:
                point = (float(self.stats["elapsed_s"]), int(self.stats["scored"]), int(self.stats["alerts"]))
                if not self.stats_history or point != self.stats_history[-1]:
                    if self.stats_history and point[0] < self.stats_history[-1][0]:
                        self.stats_history.clear()  # a new run
                    self.stats_history.append(point)
                    del self.stats_history[:-600]
        return new

    def rate_series(self) -> tuple[np.ndarray, np.ndarray]:
        """Anomaly rate between consecutive stats snapshots: (elapsed seconds, alerts / scored)."""
        if len(self.stats_history) < 2:
            return np.empty(0), np.empty(0)
        h = np.array(self.stats_history, dtype=float)
        d_scored, d_alerts = np.diff(h[:, 1]), np.diff(h[:, 2])
        ok = d_scored > 0
        return h[1:, 0][ok], d_alerts[ok] / d_scored[ok]
