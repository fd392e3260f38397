"""Live monitor helpers: replay a scored data set as a stream, or follow a running stream's alerts
(its JSON-lines alert log, or the Redis Stream its ``--alerts redis://…`` adds them to).

Pure bookkeeping (no Streamlit): the Live monitor page keeps these objects in session state.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anodet import PROJECT_ROOT

ALERTS_DIR_ENV = "ANODET_ALERTS_DIR"
REDIS_HOSTS_ENV = "ANODET_REDIS_HOSTS"
DEFAULT_REDIS_HOSTS = ("127.0.0.1", "localhost", "::1")


def alerts_dir() -> Path:
    """The only folder the Live monitor reads alert logs and stats files from (resolved).

    ``$ANODET_ALERTS_DIR``, else ``<project>/data/alerts``: the dashboard must not become a way
    to read any file the server can read.
    """
    configured = os.environ.get(ALERTS_DIR_ENV)
    return Path(configured).expanduser().resolve() if configured else (PROJECT_ROOT / "data" / "alerts").resolve()


class OutsideAlertsDir(ValueError):
    """A path that is not a file name inside :func:`alerts_dir` (the message never says whether it exists)."""


def resolve_alert_path(name: str, folder: Path | None = None) -> Path:
    """The file ``name`` names inside the alerts folder, or :class:`OutsideAlertsDir`.

    ``name`` may be relative to the folder or absolute; symbolic links are resolved first, so a
    link inside the folder pointing elsewhere is refused too. The refusal is the same sentence
    whether or not the path exists.
    """
    folder = (folder or alerts_dir()).resolve()
    text = str(name).strip()
    refusal = OutsideAlertsDir(f"Only files inside the alerts folder {folder} can be followed: give a file name "
                               "in that folder, such as alerts.jsonl.")
    if not text or "\0" in text:
        raise refusal
    candidate = Path(text).expanduser()
    try:
        resolved = (candidate if candidate.is_absolute() else folder / candidate).resolve()
    except (OSError, RuntimeError):
        raise refusal from None
    if resolved == folder or not resolved.is_relative_to(folder):
        raise refusal
    return resolved


def redis_hosts() -> tuple[str, ...]:
    """Hosts whose Redis alert streams the Live monitor may follow: ``$ANODET_REDIS_HOSTS``
    (comma-separated), else this machine only, so the dashboard cannot be used to reach
    arbitrary hosts of the server's network."""
    configured = os.environ.get(REDIS_HOSTS_ENV)
    if configured is None:
        return DEFAULT_REDIS_HOSTS
    return tuple(h.strip().strip("[]").lower() for h in configured.split(",") if h.strip())


def is_alert_stream(text: str) -> bool:
    from anodet.streaming.sources.urls import is_redis_url

    return is_redis_url(text.strip())


def resolve_alert_stream(text: str) -> Any:
    """The :class:`~anodet.streaming.sources.urls.BrokerURL` of a Redis alert stream the page may
    follow, or :class:`OutsideAlertsDir` with one sentence saying why not."""
    from anodet.streaming.sources.base import SourceError
    from anodet.streaming.sources.urls import parse_broker_url

    try:
        url = parse_broker_url(text)
    except SourceError as exc:
        raise OutsideAlertsDir(str(exc)) from None
    if not url.is_redis:
        raise OutsideAlertsDir("Only Redis alert streams (redis://HOST:PORT/STREAM) can be followed.")
    allowed = redis_hosts()
    if url.host.lower() not in allowed:
        raise OutsideAlertsDir(f"Only Redis servers on {', '.join(allowed) or 'no host'} can be followed; set "
                               f"{REDIS_HOSTS_ENV} (comma-separated host names) to allow others.")
    return url


class Replay:
    """Replays a scored data set as a stream: records are released at ``speed`` records/s.

    The scores are precomputed (the dashboard has the test split's scores at hand), so a replay
    costs nothing but bookkeeping. :meth:`advance` releases what is due since the last call. A page
    run after a gap longer than ``max_gap`` means nobody was watching (the user left the page): that
    time is skipped and the replay resumes where it was. The page's own ticks (``watching=True``)
    replay the whole gap, up to ``max_catch_up`` seconds: on a loaded server a slow tick is not absence.
    """

    def __init__(self, scores: np.ndarray, is_attack: np.ndarray, attack_names: np.ndarray | None = None,
                 speed: float = 200.0, seed: int = 0, max_gap: float = 3.0, history: int = 600,
                 clock: Callable[[], float] = time.monotonic, max_catch_up: float = 60.0) -> None:
        order = np.random.default_rng(seed).permutation(len(scores))
        self.scores = np.asarray(scores, dtype=np.float64)[order]
        self.is_attack = np.asarray(is_attack).astype(bool)[order]
        self.names = None if attack_names is None else np.asarray(attack_names)[order]
        self.order = order
        self.speed, self.max_gap, self.history_len = float(speed), float(max_gap), history
        self.max_catch_up = float(max_catch_up)
        self.position = 0
        self.flagged = 0
        self.caught = 0
        self.running = False
        self.replay_time = 0.0
        self._last: float | None = None
        self._carry = 0.0
        self.history: list[tuple[float, int, int]] = []  # (replay seconds, records, alerts) per tick
        self.clock = clock
        self.away_seconds = 0.0  # wall-clock time skipped because nobody was watching

    @property
    def finished(self) -> bool:
        return self.position >= len(self.scores)

    def start(self, now: float | None = None) -> None:
        if self.finished:
            self.reset()
        self.running, self._last = True, self.clock() if now is None else now

    def pause(self) -> None:
        self.running, self._last = False, None

    def reset(self) -> None:
        self.position = self.flagged = self.caught = 0
        self.replay_time, self._carry = 0.0, 0.0
        self.history.clear()
        self.pause()

    def advance(self, now: float | None, threshold: float, watching: bool = False) -> int:
        """Release the records due by ``now`` (seconds of :attr:`clock`; None: read it); return how many.

        Not ``watching`` (the page was run anew): a gap longer than ``max_gap`` since the last call
        means nobody was watching (the page was left, the browser slept), and that time is skipped, not
        replayed. ``watching`` (the page's own tick, the tab open and polling): the gap is replayed,
        however slow the tick was, up to ``max_catch_up`` seconds.
        """
        if not self.running or self._last is None:
            return 0
        now = self.clock() if now is None else now
        gap = max(now - self._last, 0.0)
        if gap > (self.max_catch_up if watching else self.max_gap):
            self.away_seconds += gap
            gap = 0.0
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

    def relabel(self, is_attack: np.ndarray, threshold: float) -> None:
        """Switch to other labels (another label view) without restarting.

        The released records keep their place; the counters are recounted under the new labels
        and ``threshold`` (that view's threshold), as if the replay had run with them.
        """
        self.is_attack = np.asarray(is_attack).astype(bool)[self.order]
        released = self.scores[:self.position] >= threshold
        self.flagged = int(released.sum())
        self.caught = int((released & self.is_attack[:self.position]).sum())

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
        return [{"record": int(i) + 1, "position": int(self.order[i]), "score": float(self.scores[i]),
                 "truth": (str(self.names[i]) if self.names is not None else
                           ("attack" if self.is_attack[i] else "normal"))} for i in flagged]


STATS_FIELDS = ("read", "rejected", "records_per_s", "latency_p99_ms")
"""Fields of the ``stream`` command's stats file the Live monitor shows."""

NORMAL_LABELS = ("normal.", "normal", "0")


def alerts_frame(alerts: list[dict[str, Any]]) -> pd.DataFrame:
    """Alert-log entries as a frame the page can draw: time, record, score, threshold, label, attack.

    Values are coerced (the log is someone else's file); an entry without a valid time, score
    or threshold is kept and marked ``unusable`` so the page can say how many it left out.
    ``attack`` is True unless the record carried a normal label (then the alert was a false alarm).
    """
    frame = pd.DataFrame([a if isinstance(a, dict) else {} for a in alerts])
    for column in ("time", "record", "score", "threshold", "label"):
        if column not in frame:
            frame[column] = None
    out = pd.DataFrame({
        "time": pd.to_datetime(frame["time"], errors="coerce", utc=True),
        "record": pd.to_numeric(frame["record"], errors="coerce"),
        "score": pd.to_numeric(frame["score"], errors="coerce"),
        "threshold": pd.to_numeric(frame["threshold"], errors="coerce"),
        "label": frame["label"].map(lambda v: "" if v is None or v != v else str(v)),
    })
    out["attack"] = ~out["label"].isin(NORMAL_LABELS)
    out["unusable"] = out[["time", "score", "threshold"]].isna().any(axis=1).to_numpy()
    return out


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

    @property
    def found(self) -> bool:
        """Whether the alert log exists (the page says so when it does not)."""
        return self.path.is_file()

    @property
    def missing(self) -> str:
        """What to tell the user when the alerts are not there (yet)."""
        return (f"No alert log named {self.path.name} in the alerts folder yet. Start the stream command with its "
                "--alerts option naming that file, or correct the name.")

    def _new_lines(self) -> list[bytes] | None:
        """Complete lines appended since the last poll (None: no log to read)."""
        try:
            st_ = self.path.stat()
            if st_.st_ino != self._inode or st_.st_size < self._offset:
                self._inode, self._offset = st_.st_ino, 0
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except OSError:  # not there (yet), or not a readable file
            return None
        end = data.rfind(b"\n") + 1
        self._offset += end
        return data[:end].splitlines()

    def poll(self) -> int:
        """Read what was appended since the last poll; return the number of new alerts."""
        new = 0
        lines = self._new_lines()
        if lines is not None:
            for line in lines:
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
                raw = json.loads(self.stats_path.read_text())
                point = (float(raw["elapsed_s"]), int(raw["scored"]), int(raw["alerts"]))
                self.stats = {field: float(raw[field]) for field in STATS_FIELDS}
                self.stats.update(read=int(self.stats["read"]), rejected=int(self.stats["rejected"]))
            except (OSError, ValueError, KeyError, TypeError):
                self.stats = None  # not (yet) a complete stats file: the counters stay hidden
            else:
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


class RedisAlertFollower(AlertFollower):
    """Follows the Redis Stream a ``stream --alerts redis://…`` adds its alerts to (field ``alert``,
    one JSON alert), as :class:`AlertFollower` follows the alert log.

    It starts with the stream's last ``keep`` alerts (``from_start``; otherwise only new ones), then
    reads what was added after the last entry seen. A server that cannot be reached is a sentence
    in :attr:`missing`, never an exception.
    """

    def __init__(self, url: Any, stats_path: str | Path | None = None, keep: int = 5000,
                 from_start: bool = True, client: Any = None) -> None:
        super().__init__(Path(str(url.name)), stats_path, keep, from_start=True)
        from anodet.streaming.sources.redis import redis_client

        self.url = url
        self.client = client or redis_client(url, timeout=2.0)
        self._last: str | None = None if from_start else "$"
        self._exists = False
        self.error: str | None = None

    @property
    def found(self) -> bool:
        return self._exists and self.error is None

    @property
    def missing(self) -> str:
        if self.error:
            return self.error
        return (f"No alert stream named {self.url.name} on {self.url.host}:{self.url.port} yet. Start the stream "
                f"command with --alerts {self.url}, or correct the name.")

    def _new_lines(self) -> list[bytes] | None:
        import redis

        name = self.url.name
        try:
            self._exists = bool(self.client.exists(name))
            if self._last is None:  # first poll: the latest alerts, and how many there were
                newest = self.client.xrevrange(name, count=self.keep)
                self.total += max(int(self.client.xlen(name)) - len(newest), 0)
                entries = newest[::-1]
                self._last = entries[-1][0].decode() if entries else "0-0"
            else:
                if self._last == "$":
                    last = self.client.xrevrange(name, count=1)
                    self._last = last[0][0].decode() if last else "0-0"
                reply = self.client.xread({name: self._last}, count=50_000)
                entries = reply[0][1] if reply else []
                if entries:
                    self._last = entries[-1][0].decode()
        except redis.RedisError as exc:
            self.error = (f"Cannot read the alert stream at {self.url.host}:{self.url.port} ({exc}). Check that "
                          "redis-server runs there and the address is right.")
            return None
        self.error = None
        return [(fields or {}).get(b"alert", b"") for _, fields in entries]
