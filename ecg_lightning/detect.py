"""QRS (beat) detection for unannotated records: a vectorized multi-lead energy-envelope detector.

Why this design rather than wfdb's XQRS: XQRS learns one QRS amplitude from the first seconds and matches a
narrow (normal-width) template, so wide or low-amplitude ventricular beats and beats after amplitude changes
are missed (92 % of MIT-BIH V beats found). Here every lead goes through the classic Pan & Tompkins front end
(5-20 Hz band-pass, derivative, squaring, 150 ms moving-window integration), whose 150 ms window sums the
energy of wide QRS complexes as well as narrow ones. The square root of that energy (an amplitude-like
envelope) is judged against *local* levels, all computed with array filters instead of a per-sample loop:

* signal level: running median (8 s) of the running maximum (1.2 s) of the envelope, floored at half its 60 s
  median so that long pauses do not let the threshold sink into the noise; noise level: running median (8 s)
  of the envelope itself;
* several leads are merged after normalising each to (envelope - noise) / (signal - noise), weighted by
  a local quality index (signal level over the 8 s mean envelope, cubed) and clipped at 2, so a noisier
  lead counts less and no lead outvotes the others by its sheer size (sparse large artefacts in one lead can
  still pass: a limitation);
* beats are envelope peaks at least 200 ms apart, above noise + 0.25 (signal - noise), that also stand out
  from their surroundings (prominence at least half their height above noise: this drops P/T-wave shoulders
  merged into a QRS); in RR gaps longer than 1.66 times the local median RR the largest remaining peak above
  a lower (0.15) threshold is added (searchback, as in Pan & Tompkins);
* each beat is finally moved to the largest absolute 1-30 Hz deflection within 60 ms on its best lead, so it
  sits on the R peak (or the main QRS deflection) rather than the envelope's centre.

Every length is given in seconds and every filter is designed for ``fs``, so any sampling rate works.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.ndimage as ndi
import scipy.signal

log = logging.getLogger(__name__)

BAND_HZ = (5.0, 20.0)  # QRS band of the energy envelope
MWI_S = 0.15  # moving-window integration length
REFRACTORY_S = 0.2  # minimum distance between two beats
MAX_WINDOW_S = 1.2  # running-maximum window for the signal level (one beat in it at >= 50 bpm)
LEVEL_WINDOW_S = 8.0  # running-median window of the signal and noise levels
LONG_WINDOW_S = 60.0  # long-term signal level, floor of the local one
FLOOR = 0.5  # local signal level >= FLOOR * long-term signal level
GRID_S = 0.05  # levels are computed on this coarser grid, then interpolated
ALPHA = 0.25  # detection threshold between noise (0) and signal (1) level
ALPHA_SEARCHBACK = 0.15  # lower threshold used in searchback
SEARCHBACK_RR = 1.66  # a gap longer than this times the local median RR triggers searchback
PROMINENCE = 0.5  # peak prominence >= PROMINENCE * (height - noise level)
PROMINENCE_WINDOW_S = 1.0
QUALITY_POWER = 3.0  # sharpness of the lead weighting
CLIP = 2.0  # a lead's normalised envelope is clipped here before merging
REFINE_S = 0.06  # half-width of the R-peak search around the envelope peak
REFINE_BAND_HZ = (1.0, 30.0)


def _envelope(x: np.ndarray, fs: float) -> np.ndarray:
    """Pan-Tompkins front end per lead: band-pass, derivative, square, moving-window integration, sqrt."""
    sos = scipy.signal.butter(2, BAND_HZ, btype="bandpass", fs=fs, output="sos")
    d = np.gradient(scipy.signal.sosfiltfilt(sos, x, axis=-1), axis=-1)
    w = max(1, round(MWI_S * fs))
    return np.sqrt(np.maximum(ndi.uniform_filter1d(d * d, w, axis=-1, mode="nearest"), 0.0))


def _on_grid(values: np.ndarray, step: int, n: int) -> np.ndarray:
    """Interpolate rows sampled every ``step`` samples back to ``n`` samples."""
    grid = np.arange(values.shape[-1]) * step
    t = np.arange(n)
    return np.stack([np.interp(t, grid, row) for row in values])


def _running_median(rows: np.ndarray, size: int) -> np.ndarray:
    """Running median of each row over ``size`` samples. Row by row because SciPy's 1-D median filter is a fast
    running-median algorithm while its 2-D one (even with a (1, size) window) sorts every window: 30-300 times
    slower for these lengths, most of the detector's time on a 24-hour recording."""
    return np.stack([ndi.median_filter(row, size=size, mode="nearest") for row in rows])


def _levels(e: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local signal (QRS) level, long-term signal level and noise level of envelopes ``e`` (leads, samples)."""
    n = e.shape[-1]
    step = max(1, round(GRID_S * fs))
    size = max(1, round(LEVEL_WINDOW_S / GRID_S)) | 1
    peaks = ndi.maximum_filter1d(e, max(1, round(MAX_WINDOW_S * fs)), axis=-1, mode="nearest")[:, ::step]
    sig = _running_median(peaks, size)
    long = _running_median(sig, max(1, round(LONG_WINDOW_S / GRID_S)) | 1)
    noise = _running_median(e[:, ::step], size)
    sig, long, noise = (_on_grid(a, step, n) for a in (sig, long, noise))
    return np.maximum(sig, FLOOR * long), long, noise


def _merge_leads(env: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """One envelope from all leads: each normalised to its local noise (0) / signal (1) levels and weighted
    by its local quality (signal level over mean envelope) ** QUALITY_POWER. Returns (envelope, weights)."""
    sig, _, noise = _levels(env, fs)
    span = np.maximum(sig - noise, 1e-12)
    if len(env) == 1:
        return (env[0] - noise[0]) / span[0], np.ones_like(env)
    mean = ndi.uniform_filter1d(env, max(1, round(LEVEL_WINDOW_S * fs)), axis=-1, mode="nearest")
    weight = (span / np.maximum(mean, 1e-12)) ** QUALITY_POWER
    weight /= np.maximum(weight.sum(axis=0, keepdims=True), 1e-300)
    return (weight * np.minimum((env - noise) / span, CLIP)).sum(axis=0), weight


def _searchback(beats: np.ndarray, low: np.ndarray, e: np.ndarray, refr: int) -> np.ndarray:
    """Add, in every RR gap longer than SEARCHBACK_RR local median RRs, the highest of the ``low`` peaks."""
    for _ in range(3):  # a gap may need more than one missed beat
        if len(beats) < 3 or len(low) == 0:
            break
        rr = np.diff(beats)
        long_gap = rr > SEARCHBACK_RR * ndi.median_filter(rr, size=9, mode="nearest")
        gap = np.searchsorted(beats, low) - 1  # gap i lies between beats[i] and beats[i + 1]
        inside = (gap >= 0) & (gap < len(rr))
        gap_c = np.clip(gap, 0, len(rr) - 1)
        ok = (
            inside
            & long_gap[gap_c]
            & (low - beats[gap_c] >= refr)
            & (beats[np.minimum(gap_c + 1, len(beats) - 1)] - low >= refr)
        )
        if not ok.any():
            break
        cand, cgap = low[ok], gap[ok]
        order = np.lexsort((-e[cand], cgap))  # by gap, highest first
        _, first = np.unique(cgap[order], return_index=True)
        added = cand[order][first]
        beats = np.union1d(beats, added)
        low = np.setdiff1d(low, added)
    return beats


def detect_beats_in_chunks(signal: np.ndarray, fs: float, chunk_s: float = 600.0, margin_s: float = 60.0) -> np.ndarray:
    """``detect_beats`` over ``chunk_s``-second pieces, each seen with ``margin_s`` of context on both sides and
    owning the beats that fall inside it: the same beats on long recordings (a 24-hour Holter) in bounded memory."""
    x = np.asarray(signal)
    n, chunk, margin = x.shape[-1], int(chunk_s * fs), int(margin_s * fs)
    if n <= chunk + 2 * margin:
        return detect_beats(x, fs)
    found = []
    for start in range(0, n, chunk):
        lo, hi = max(0, start - margin), min(n, start + chunk + margin)
        beats = detect_beats(x[..., lo:hi], fs) + lo
        found.append(beats[(beats >= start) & (beats < start + chunk)])
    return np.unique(np.concatenate(found))


def detect_beats(signal: np.ndarray, fs: float) -> np.ndarray:
    """QRS positions (sorted, unique int64 sample indices) in ``signal``: 1-D (samples) or 2-D (leads,
    samples), each lead standardized or in physical units (its levels adapt: the same beats on MIT-BIH 100, 208 and
    232 either way) and possibly band-passed, sampled at ``fs`` Hz."""
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"signal must be 1-D or 2-D (leads, samples), got shape {x.shape}")
    if fs <= 2 * BAND_HZ[1]:
        raise ValueError(f"fs={fs} Hz is too low for a {BAND_HZ[1]:g} Hz QRS band")
    if not np.isfinite(x).all():
        raise ValueError("signal has NaN or infinite samples")
    n = x.shape[-1]
    if n < int(3 * fs * MWI_S) + 1:  # too short for the filters
        return np.empty(0, dtype=np.int64)
    env, weight = _merge_leads(_envelope(x, fs), fs)
    s_lvl, s_long, n_lvl = (a[0] for a in _levels(env[None], fs))
    thr = n_lvl + ALPHA * (s_lvl - n_lvl)
    thr_low = n_lvl + ALPHA_SEARCHBACK * (np.maximum(s_lvl, s_long) - n_lvl)

    refr = max(1, round(REFRACTORY_S * fs))
    cand, props = scipy.signal.find_peaks(
        env, distance=refr, prominence=0, wlen=max(3, round(PROMINENCE_WINDOW_S * fs)) | 1
    )
    h = env[cand]
    distinct = props["prominences"] > PROMINENCE * (h - n_lvl[cand])
    beats = cand[distinct & (h > thr[cand])]
    low = cand[distinct & (h > thr_low[cand]) & (h <= thr[cand])]
    n_main = len(beats)
    beats = _searchback(beats, low, env, refr)
    log.debug(
        "%d candidate peaks, %d beats above threshold, %d added by searchback", len(cand), n_main, len(beats) - n_main
    )

    if len(beats) and REFINE_S > 0:  # move onto the largest QRS deflection of the best lead
        sos = scipy.signal.butter(2, REFINE_BAND_HZ, btype="bandpass", fs=fs, output="sos")
        wide = np.abs(scipy.signal.sosfiltfilt(sos, x, axis=-1))
        r = max(1, round(REFINE_S * fs))
        idx = np.clip(beats[:, None] + np.arange(-r, r + 1), 0, n - 1)
        lead = np.argmax(weight[:, beats], axis=0)
        beats = np.unique(idx[np.arange(len(beats)), np.argmax(wide[lead[:, None], idx], axis=1)])
    return beats.astype(np.int64)
