"""The streaming invariants of DESIGN §6, for the time-domain engine."""

from __future__ import annotations

import numpy as np
import pytest

from rtsep import Separator, separate

from rtsep.material import signals
from rtsep.engines.td import TimeDomainEngine

from . import naive
from .conftest import FS, stream


@pytest.fixture(scope="module")
def mixture() -> np.ndarray:
    n = 3 * FS
    s = np.stack([signals.music_like(n, FS, 1), signals.pink_noise(n, 2)], 1).astype(np.float64)
    s[:, 0] += np.random.default_rng(0).laplace(size=n) * 0.05  # something super-Gaussian
    return signals.mix(s, signals.mixing_matrix(4.0, 3)) + 0.01  # plus a DC offset


@pytest.mark.parametrize("sizes", [[1], [7], [256], [4096], "random"], ids=["1", "7", "256", "4096", "random"])
def test_output_does_not_depend_on_how_the_stream_is_cut_into_blocks(mixture, sizes):
    whole_v, whole_b = Separator(FS).process(mixture)
    if sizes == "random":
        sizes = list(np.random.default_rng(5).integers(0, 700, 200))  # zero-length blocks included
        sizes = [s for s in sizes] + [1]
    v, b = stream(Separator(FS), mixture, sizes)
    np.testing.assert_array_equal(v, whole_v)
    np.testing.assert_array_equal(b, whole_b)


def test_every_input_sample_yields_exactly_one_output_sample_per_channel(mixture):
    sep = Separator(FS)
    for n in (0, 1, 2, 31, 32, 33, 1000, 0):
        v, b = sep.process(mixture[:n])
        assert v.shape == (n,) and b.shape == (n,)
        assert v.dtype == np.float32 and b.dtype == np.float32
    assert sep.stats.samples == 0 + 1 + 2 + 31 + 32 + 33 + 1000


def test_reported_latency_is_the_measured_delay_of_an_impulse():
    sep = Separator(FS, warmup_s=0.0)
    assert sep.latency_samples == 0
    x = np.zeros((400, 2))
    x[100] = [1.0, 0.3]
    v, b = sep.process(x)
    y = v + b  # the whole reference-mic path
    assert int(np.argmax(np.abs(y))) - 100 == sep.latency_samples


def test_reported_latency_is_the_measured_delay_by_cross_correlation(mixture):
    sep = Separator(FS)
    v, b = sep.process(mixture)
    y = (v + b).astype(np.float64)
    ref = mixture[:, 0] - mixture[:, 0].mean()
    n = 1 << (2 * len(y)).bit_length()
    c = np.fft.irfft(np.fft.rfft(y, n) * np.conj(np.fft.rfft(ref, n)), n)
    lag = int(np.argmax(c))
    lag = lag if lag < n // 2 else lag - n
    assert lag == sep.latency_samples == 0


def test_voice_plus_background_is_the_dc_free_reference_mic_sample_by_sample(mixture):
    for ref in (0, 1):
        v, b = TimeDomainEngine(FS, 2, ref_mic=ref).process(mixture)
        np.testing.assert_allclose(v + b, naive.highpass(mixture, 30.0, FS)[:, ref], atol=1e-12)


def test_separate_on_a_whole_array_equals_streaming(mixture):
    v1, b1 = separate(mixture, FS)
    v2, b2 = stream(Separator(FS), mixture, [333])
    np.testing.assert_array_equal(v1, v2)
    np.testing.assert_array_equal(b1, b2)


def test_whitened_signals_have_identity_covariance_after_convergence():
    # stationary sources, so that a 1 s sample covariance measures the whitening, not the scene
    rng = np.random.default_rng(11)
    n = 6 * FS
    s = np.stack([rng.laplace(size=n), rng.uniform(-1, 1, n)], 1) * 0.1
    x = signals.mix(s, signals.mixing_matrix(20.0, 4))
    eng = TimeDomainEngine(FS, 2, memory_s=2.0)
    z = np.empty((n, 2))
    eng.process(x, whitened=z)
    tail = z[-FS:]
    cz = tail.T @ tail / tail.shape[0]
    assert np.abs(cz - np.eye(2)).max() < 0.05


def test_reset_makes_the_stream_start_afresh(mixture):
    sep = Separator(FS)
    first = sep.process(mixture[:5000])
    sep.process(mixture[5000:9000])
    sep.reset()
    again = sep.process(mixture[:5000])
    np.testing.assert_array_equal(first[0], again[0])
    assert sep.stats.samples == 5000


def test_warmup_compiles_without_changing_the_stream(mixture):
    a = Separator(FS).process(mixture[:4000])
    sep = Separator(FS).warmup()
    np.testing.assert_array_equal(sep.process(mixture[:4000])[0], a[0])


@pytest.mark.parametrize("case", ["silence", "dc", "clipping", "nan_burst", "level_jump_60db",
                                  "identical_channels", "dead_channel", "tiny_level"])
def test_hostile_input_never_produces_nan_inf_or_blows_up(case):
    rng = np.random.default_rng(1)
    n = 2 * FS
    s = np.stack([rng.laplace(size=n), rng.uniform(-1, 1, n)], 1) * 0.1
    x = signals.mix(s, np.array([[1, 0.6], [0.5, 1]]))
    if case == "silence":
        x[:] = 0
    elif case == "dc":
        x = x * 0 + 0.5
    elif case == "clipping":
        x = np.clip(x * 30, -1, 1)
    elif case == "nan_burst":
        x[FS // 2:FS // 2 + 100] = np.nan
        x[FS, 1] = np.inf
    elif case == "level_jump_60db":
        x[FS:] *= 1000
        x[: FS // 2] *= 1e-3
    elif case == "identical_channels":
        x[:, 1] = x[:, 0]
    elif case == "dead_channel":
        x[:, 1] = 0
    elif case == "tiny_level":
        x *= 1e-6  # −120 dBFS-ish
    sep = Separator(FS)
    v, b = stream(sep, x, [256])
    assert np.isfinite(v).all() and np.isfinite(b).all()
    xin = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    peak_in = np.abs(xin[:, 0]).max() + 1e-12
    assert np.abs(v).max() <= 4 * peak_in + 1e-9
    if case == "nan_burst":
        assert sep.stats.nonfinite == 201 and sep.stats.first_nonfinite == FS // 2


@pytest.mark.parametrize("fault", ["stuck", "dead"])
def test_a_stuck_or_dead_mic_is_counted_and_not_learnt_from(fault):
    """Short enough for the NUMBA_DISABLE_JIT pass (the longer recovery specs are in test_robustness)."""
    rng = np.random.default_rng(6)
    n, f0 = FS // 2, FS // 4
    s = np.stack([rng.laplace(size=n), rng.uniform(-1, 1, n)], 1) * 0.1
    x = signals.mix(s, np.array([[1, 0.6], [0.5, 1]]))
    if fault == "stuck":
        x[f0:, 0] = 0.3  # caught on the 9th repeat of the value (stuck_s = 0.5 ms = 8 samples)
        noticed = 9
    else:
        x[f0:, 1] = 1e-6 * rng.standard_normal(n - f0)  # a -100 dB floor: caught by the 2 ms power
        noticed = FS // 25
    eng = TimeDomainEngine(FS, 2)
    eng.process(x[:f0 + noticed])
    cov, m4, window = eng.cov.copy(), eng.m4.copy(), eng.counters[0].window_samples
    eng.process(x[f0 + noticed:])
    np.testing.assert_array_equal(eng.cov, cov)
    np.testing.assert_array_equal(eng.m4, m4)
    assert eng.counters[0].window_samples == window  # the long-memory window did not grow either
    info = eng.info()
    if fault == "stuck":
        assert info["stuck_samples_skipped"] == n - f0 - 8 and info["dead_mic_samples_skipped"] == 0
    else:
        assert n - f0 - noticed <= info["dead_mic_samples_skipped"] < n - f0
    assert info["samples_seen"] == n


def test_the_first_voice_guess_is_taken_outright_at_label_guess_s():
    """Which output starts as the voice is arbitrary: at label_guess_s the more kurtotic one takes it,
    until the speech evidence decides (label_first_s)."""
    rng = np.random.default_rng(11)
    n = FS
    # the Laplacian (speech-like) source arrives mostly on mic 2, so output 0 is not it by luck
    s = np.stack([rng.uniform(-1, 1, n), rng.laplace(size=n)], 1) * 0.05
    x = s @ np.array([[1.0, 0.3], [0.4, 1.0]]).T
    for first_s in (0.1, 0.3):
        sep = Separator(FS, label_guess_s=first_s)
        sep.process(x[:int((first_s - 0.01) * FS)])
        before = sep.info()
        sep.process(x[int((first_s - 0.01) * FS):int((first_s + 0.01) * FS)])
        after = sep.info()
        k = after["kurtosis"]
        assert after["voice"] == int(np.argmax(k)) == 1  # the Laplacian output, at once
        assert before["voice"] == 0  # nothing decided before
    assert Separator(FS, label_guess_s=0.1).process(x)[0].shape == (n,)


def test_digital_silence_on_every_mic_is_not_a_fault_but_one_frozen_mic_among_silent_ones_is():
    """Three mics: all at zero is silence; zeros on two and a frozen non-zero value on the third is a stuck mic."""
    silent = np.zeros((FS // 10, 3))
    sep = Separator(FS, channels=3)
    sep.process(silent)
    assert sep.info()["stuck_samples_skipped"] == 0
    frozen = silent.copy()
    frozen[:, 1] = 0.25
    sep = Separator(FS, channels=3)
    sep.process(frozen)
    assert sep.info()["stuck_samples_skipped"] > FS // 20
