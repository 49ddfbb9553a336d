"""Signal quality: stretches whose detected "beats" do not resemble each other are flagged as noise, while real
rhythms — ectopic beats among normal ones, a run of wide beats, an irregular rhythm — are not."""

import numpy as np
from conftest import synthetic_signal
from scipy.signal import butter, sosfiltfilt

from ecg_lightning.detect import detect_beats
from ecg_lightning.signal_quality import beat_similarity, signal_quality

FS = 360.0


def test_beats_of_one_shape_are_similar_and_unrelated_windows_are_not():
    beats = np.arange(200, 36000, 300)
    symbols = np.array(["N"] * len(beats))
    ecg = synthetic_signal(36200, FS, beats, symbols, np.random.default_rng(0))[:, 0]
    assert beat_similarity(ecg, beats, FS).min() > 0.9
    noise = np.random.default_rng(1).normal(size=36200)
    assert np.median(beat_similarity(noise, beats, FS)) < 0.5
    # edges and a lone beat: nothing to judge, not flagged
    np.testing.assert_array_equal(beat_similarity(ecg, np.array([5, 36195]), FS), [1.0, 1.0])


def test_real_rhythms_pass_and_noise_is_flagged():
    rng = np.random.default_rng(2)
    n = int(120 * FS)
    # 60 s of N with every third beat V, then 60 s of irregular (AF-like) N with a run of 12 V beats
    first = np.arange(200, n // 2, 290)
    second = n // 2 + np.cumsum(rng.integers(200, 420, 200))
    second = second[second < n - 200]
    beats = np.r_[first, second]
    symbols = np.where(np.arange(len(beats)) % 3 == 2, "V", "N")
    symbols[len(first) :] = "N"
    symbols[len(first) + 20 : len(first) + 32] = "V"
    ecg = synthetic_signal(n, FS, beats, symbols, rng)[:, 0]
    quality = signal_quality(ecg, beats, FS)
    assert not quality.noisy.any() and quality.noisy_share == 0.0
    # the same recording with its second half replaced by band-passed noise (electrodes off): that half is flagged
    sos = butter(2, [0.5, 40], btype="band", fs=FS, output="sos")
    noisy = ecg.copy()
    noisy[n // 2 :] = sosfiltfilt(sos, rng.normal(size=n - n // 2)) * ecg.std() * 3
    found = detect_beats(((noisy - noisy.mean()) / noisy.std())[None], FS)
    quality = signal_quality(noisy, found, FS)
    late = found >= n // 2 + 10 * FS  # stretches wholly in the noise
    early = found < n // 2 - 10 * FS
    assert quality.noisy[late].mean() > 0.9 and not quality.noisy[early].any()
    assert 0.35 < quality.noisy_share < 0.65
