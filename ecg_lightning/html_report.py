"""``report.html``: one self-contained page per recording, to look at rather than read (opens offline).

The whole recording at a glance (beats per class and heart rate, minute by minute), the list of abnormal beats and
runs (e.g. V couplets, S runs) with their times, and a click from any of them to a zoomable ECG strip with every
beat marked by its class. A 24-hour Holter stays light: the overview is per minute, and only the strips of the
listed events are embedded (16-bit samples at ``strip_fs``), at most ``max_events`` of them.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.signal
from matplotlib.colors import to_hex

from ecg_lightning.report import CLASS_COLORS, write_atomic


def runs_of(predicted: np.ndarray) -> list[tuple[int, int]]:
    """(first beat, beats) of each run of consecutive abnormal beats of one class (a lone beat is a run of 1)."""
    abnormal = predicted != 0
    change = np.flatnonzero(np.r_[True, predicted[1:] != predicted[:-1]])
    ends = np.r_[change[1:], len(predicted)]
    return [(int(a), int(b - a)) for a, b in zip(change, ends) if abnormal[a]]


def event_name(cls: str, beats: int) -> str:
    if beats == 1:
        return f"{cls} beat"
    if beats == 2:
        return f"{cls} couplet"
    return f"{cls} run of {beats}"


def report_data(
    signal: np.ndarray,
    fs: float,
    time_s: np.ndarray,
    predicted: np.ndarray,
    classes: list[str],
    title: str,
    max_events: int = 2000,
    strip_s: float = 8.0,
    strip_fs: float = 125.0,
) -> dict[str, Any]:
    """What the page draws, as JSON-ready data: per-minute counts and heart rate, events and their strips."""
    duration = len(signal) / fs
    minutes = max(1, int(np.ceil(duration / 60)))
    minute = np.minimum((time_s // 60).astype(np.int64), minutes - 1)
    counts = np.zeros((len(classes), minutes), dtype=np.int64)
    np.add.at(counts, (predicted, minute), 1)
    rr = np.diff(time_s)
    rate = np.full(minutes, np.nan)
    if len(rr):
        bpm = 60.0 / np.maximum(rr, 1e-3)
        bounds = np.searchsorted(minute[1:], np.arange(minutes + 1))  # beats are in time order: minutes ascend
        for m in range(minutes):  # one median per minute (1,440 for a day), not per beat
            if bounds[m + 1] > bounds[m]:
                rate[m] = float(np.median(bpm[bounds[m] : bounds[m + 1]]))
    runs = runs_of(predicted)
    shown = sorted(sorted(runs, key=lambda r: -r[1])[:max_events])  # the longest runs first, then in time order
    step = max(1, int(round(fs / strip_fs)))
    rate_out = fs / step
    # one scale for every strip, from every step-th sample (no copy of a 24-hour lead)
    scale = float(np.percentile(np.abs(signal[::step]), 99.9)) or 1.0
    events = []
    half = int(strip_s / 2 * fs)
    margin = int(fs)  # signal beyond the strip, so the decimation filter's edges fall outside it
    for first, n in shown:
        t0 = float(time_s[first])
        centre = int(t0 * fs)
        lo = max(0, centre - half)
        hi = min(len(signal), centre + half + int((time_s[first + n - 1] - t0) * fs))
        a, b = max(0, lo - margin), min(len(signal), hi + margin)
        piece = scipy.signal.decimate(signal[a:b], step, ftype="fir", zero_phase=True) if step > 1 else signal[a:b]
        piece = piece[(lo - a) // step : (lo - a) // step + (hi - lo) // step]
        samples = np.clip(np.round(piece / scale * 8000), -32767, 32767).astype("<i2")
        near = slice(*np.searchsorted(time_s, [lo / fs, hi / fs]))  # beats are in time order
        events.append(
            {
                "t": round(t0, 3),
                "cls": int(predicted[first]),
                "n": n,
                "name": event_name(classes[predicted[first]], n),
                "start": round(lo / fs, 4),
                "fs": rate_out,
                "x": base64.b64encode(samples.tobytes()).decode(),
                "beats": [[round(float(t), 3), int(c)] for t, c in zip(time_s[near], predicted[near])],
            }
        )
    return {
        "title": title,
        "duration_s": round(duration, 1),
        "classes": classes,
        "colors": [to_hex(CLASS_COLORS[k % len(CLASS_COLORS)]) for k in range(len(classes))],
        "totals": np.bincount(predicted, minlength=len(classes)).tolist(),
        "counts": counts.tolist(),
        "rate": [None if np.isnan(r) else round(r, 1) for r in rate],
        "events_total": len(runs),
        "events": events,
    }


def write_report(data: dict[str, Any], path: Path) -> None:
    """The page, with its data inline (no network, no external script)."""
    page = (
        (Path(__file__).parent / "assets" / "report.html")
        .read_text()
        .replace("__DATA__", json.dumps(data, separators=(",", ":")).replace("</", "<\\/"))
    )
    write_atomic(path, page.replace("__TITLE__", data["title"]))


def index_page(rows: list[dict[str, Any]], path: Path) -> None:
    """For a folder: one line per record, its beat counts and a link to its report."""
    lines = "".join(
        f"<tr><td><a href='{r['record']}/report.html'>{r['record']}</a></td><td>{r['beats']}</td>"
        f"<td>{r['abnormal']}</td><td>{', '.join(f'{k} {v}' for k, v in r['predicted'].items())}</td></tr>"
        for r in rows
    )
    write_atomic(
        path,
        "<!doctype html><meta charset='utf-8'><title>Recordings</title><style>body{font:14px sans-serif;margin:2em}"
        "td,th{padding:4px 12px;text-align:left}</style><h1>Recordings</h1><table><tr><th>record</th><th>beats</th>"
        f"<th>abnormal</th><th>per class</th></tr>{lines}</table>",
    )
