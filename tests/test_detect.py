"""ecg_lightning.detect.detect_beats on synthetic ECG-like signals (and on real records when MITDB_DIR is set)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ecg_lightning.detect import detect_beats

# Beat times (s) and kinds: a regular rhythm at 75 bpm, premature wide inverted "ventricular" beats followed
# by compensatory pauses, an early atrial-like beat, a 2 s pause and a faster stretch.
BEATS = [
    (0.6, "N"),
    (1.4, "N"),
    (2.2, "N"),
    (2.75, "V"),
    (3.8, "N"),
    (4.6, "N"),
    (5.4, "N"),
    (5.85, "N"),
    (6.8, "N"),
    (7.6, "N"),
    (8.1, "V"),
    (9.2, "N"),
    (11.2, "N"),
    (12.0, "N"),
    (12.6, "N"),
    (13.2, "N"),
    (13.75, "V"),
    (14.3, "V"),
    (15.3, "N"),
    (16.1, "N"),
    (16.9, "N"),
    (17.7, "V"),
    (18.8, "N"),
    (19.6, "N"),
]
DURATION_S = 20.5


def gaussian(t: np.ndarray, centre: float, width_s: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - centre) / width_s) ** 2)


def synthetic(fs: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two standardized leads sampled at ``fs`` and the true beat positions (samples).

    Normal beats: narrow (12 ms) upright R with a P wave before and a broad T wave after; "V" beats: wide
    (35 ms), inverted, larger, with an opposite T wave. Plus baseline wander and white noise.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(DURATION_S * fs)) / fs
    lead = np.zeros_like(t)
    for time_s, kind in BEATS:
        if kind == "N":
            lead += 0.15 * gaussian(t, time_s - 0.16, 0.025) + 1.0 * gaussian(t, time_s, 0.012)
            lead += 0.3 * gaussian(t, time_s + 0.28, 0.05)
        else:
            lead += -1.6 * gaussian(t, time_s, 0.035) + 0.4 * gaussian(t, time_s + 0.3, 0.06)
    wander = 0.3 * np.sin(2 * np.pi * 0.25 * t)
    lead0 = lead + wander + rng.normal(0, 0.03, len(t))
    lead1 = -0.6 * lead + 0.5 * wander + rng.normal(0, 0.03, len(t))
    x = np.stack([lead0, lead1])
    x = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    truth = np.round(np.array([b for b, _ in BEATS]) * fs).astype(np.int64)
    return x, truth


def assert_matches(found: np.ndarray, truth: np.ndarray, fs: float) -> None:
    """Exactly one detection per true beat, each within 150 ms of it, and no other detection."""
    assert found.dtype == np.int64
    assert np.all(np.diff(found) > 0), "not sorted and unique"
    assert len(found) == len(truth), f"{len(found)} detections for {len(truth)} beats: {found} vs {truth}"
    assert np.all(np.abs(found - truth) <= 0.15 * fs), np.abs(found - truth).max() / fs


@pytest.mark.parametrize("fs", [360.0, 250.0, 128.0])
def test_one_lead_finds_every_beat_and_nothing_else(fs: float) -> None:
    x, truth = synthetic(fs)
    found = detect_beats(x[0], fs)
    assert_matches(found, truth, fs)
    # the refinement step puts beats on the R peak / main deflection, not just somewhere in the window
    assert np.all(np.abs(found - truth) <= 0.02 * fs + 1)


@pytest.mark.parametrize("fs", [360.0, 257.0])
def test_two_leads(fs: float) -> None:
    x, truth = synthetic(fs, seed=1)
    assert_matches(detect_beats(x, fs), truth, fs)
    assert_matches(detect_beats(x[1], fs), truth, fs)


@pytest.mark.xfail(
    strict=True,
    reason="known limitation: the lead-quality weight (signal level over mean "
    "envelope) does not see a few sparse, large artefacts; they become beats",
)
def test_two_leads_survive_an_artefact_in_one_lead() -> None:
    """Large saturation-like steps in lead 1 between beats should not become beats when lead 0 is clean."""
    fs = 360.0
    x, truth = synthetic(fs, seed=2)
    for start_s in (1.75, 4.2, 7.15, 16.45):  # mid-RR, where lead 0 has no beat
        i = int(start_s * fs)
        x[1, i : i + int(0.08 * fs)] -= 8.0
    assert_matches(detect_beats(x, fs), truth, fs)


def test_noise_only_and_short_input() -> None:
    fs = 360.0
    rng = np.random.default_rng(3)
    assert len(detect_beats(rng.normal(size=int(0.1 * fs)), fs)) == 0
    x, truth = synthetic(fs)
    # a record with a 6 s asystole: the adaptive threshold must not sink into the noise there
    quiet = x[0].copy()
    a, b = int(9.6 * fs), int(15.6 * fs)
    quiet[a:b] = 0.02 * rng.normal(size=b - a)
    keep = (truth < a - 0.1 * fs) | (truth > b + 0.1 * fs)
    assert_matches(detect_beats(quiet, fs), truth[keep], fs)


def test_bad_input() -> None:
    x, _ = synthetic(360.0)
    with pytest.raises(ValueError):
        detect_beats(x[None], 360.0)
    bad = x[0].copy()
    bad[100] = np.nan
    with pytest.raises(ValueError):
        detect_beats(bad, 360.0)
    with pytest.raises(ValueError):
        detect_beats(x[0], 30.0)


MITDB_RECORDS = ("105", "208", "232")  # noise, many multiform V beats, long pauses


@pytest.mark.mitdb
@pytest.mark.skipif(not os.environ.get("MITDB_DIR"), reason="MITDB_DIR not set")
def test_mitdb_records() -> None:
    """Se and +P on three hard records (pooled), both channels. Measured: Se 99.77 %, +P 99.09 %
    (TP 7290, FN 17, FP 67; benchmarks/qrs_detection.py); XQRS on channel 0 gets Se 96.8 %."""
    import wfdb
    import wfdb.processing

    root = Path(os.environ["MITDB_DIR"])
    symbols = list("NLRBAaJSVrFejnE/fQ?")
    tp = fn = fp = 0
    for name in MITDB_RECORDS:
        rec = wfdb.rdrecord(str(root / name))
        ann = wfdb.rdann(str(root / name), "atr")
        ref = np.asarray(ann.sample)[np.isin(ann.symbol, symbols)]
        x = rec.p_signal.T
        x = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
        c = wfdb.processing.compare_annotations(ref, detect_beats(x, rec.fs), int(0.15 * rec.fs))
        tp, fn, fp = tp + c.tp, fn + c.fn, fp + c.fp
    se, ppv = tp / (tp + fn), tp / (tp + fp)
    assert se >= SE_MIN and ppv >= PPV_MIN, (se, ppv)


SE_MIN = 0.995  # measured 0.9977 minus a margin
PPV_MIN = 0.985  # measured 0.9909 minus a margin


def test_chunked_detection_finds_the_same_beats() -> None:
    from ecg_lightning.detect import detect_beats_in_chunks

    fs = 360.0
    x, truth = synthetic(fs)
    whole = detect_beats(x, fs)
    chunked = detect_beats_in_chunks(x, fs, chunk_s=7.0, margin_s=3.0)  # many chunk boundaries in a short signal
    np.testing.assert_array_equal(chunked, whole)
    assert_matches(chunked, truth, fs)
