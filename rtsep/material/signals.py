"""Seeded backgrounds and mixing helpers for the demo, tests and benchmarks.

Every generator returns float32 mono at RMS 0.1 and is deterministic in its seed.
The kinds differ in what the separator's kurtosis labelling must tell apart:

=============  ===================================  =================
generator      what it is                           excess kurtosis
=============  ===================================  =================
pink_noise     Gaussian 1/f noise                   ≈ 0
music_like     chords of harmonic tones + a beat    ≈ -0.1 .. 0
babble         6 real talkers, both voices          ≈ 0.3 .. 0.4
cafe           babble + music + pink + clicks       ≈ 0.4 .. 0.5
=============  ===================================  =================

Real speech from :mod:`rtsep.material.speech` sits at about 1.6-2.2: the prompt voices are
studio-compressed (crest factor ≈ 13 dB), so natural conversational speech is usually
more super-Gaussian than this material. ``babble`` and ``cafe`` need the speech
packages; the others are numpy/scipy only.
"""

from __future__ import annotations

import math

import numpy as np

from . import speech
from ..errors import ConfigError, InputFormatError

TARGET_RMS = 0.1


def _check_n(n: int) -> int:
    if int(n) != n or n <= 0:
        raise ConfigError(f"signal length must be a positive whole number of samples, got {n!r}")
    return int(n)


def _check_fs(fs: int) -> int:
    if int(fs) != fs or fs < 8000:
        raise ConfigError(f"sample rate must be a whole number of Hz, at least 8000, got {fs!r}")
    return int(fs)


def _rng(seed: int, stream: int) -> np.random.Generator:
    if int(seed) != seed or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    # One independent stream per generator kind, so cafe's parts do not share noise.
    return np.random.default_rng([int(seed), stream])


def _to_rms(x: np.ndarray, rms: float = TARGET_RMS) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return (x * (rms / np.sqrt(np.mean(x**2)))).astype(np.float32)


def excess_kurtosis(x: np.ndarray) -> float:
    """Excess (Fisher) kurtosis of a signal: 0 for Gaussian, -1.5 for a sine.

    Parameters
    ----------
    x : array_like, shape (n,)
        Samples, any unit.

    Returns
    -------
    float
        ``E[(x - mean)^4] / var^2 - 3`` (biased moments); NaN if ``x`` is constant.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    d = x - x.mean()
    var = np.mean(d**2)
    if var == 0:
        return math.nan
    return float(np.mean(d**4) / var**2 - 3.0)


def pink_noise(n: int, seed: int) -> np.ndarray:
    """Gaussian pink (1/f power) noise.

    Parameters
    ----------
    n : int
        Length in samples.
    seed : int
        Non-negative seed.

    Returns
    -------
    numpy.ndarray, shape (n,), float32
        Zero-mean noise whose power falls 3 dB per octave, at RMS 0.1.
    """
    n = _check_n(n)
    rng = _rng(seed, 1)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    k = np.arange(spectrum.size, dtype=np.float64)
    k[0] = np.inf  # no DC
    x = np.fft.irfft(spectrum / np.sqrt(k), n)
    return _to_rms(x)


# Diatonic chords as semitone offsets from the key's tonic: I, ii, IV, V, vi.
_CHORDS = ((0, 4, 7), (2, 5, 9), (5, 9, 12), (7, 11, 14), (9, 12, 16))
_HARMONICS = np.arange(1, 7)


def _note_env(m: int, fs: int, attack: float, release: float) -> np.ndarray:
    t = np.arange(m) / fs
    env = np.minimum(1.0, t / attack) * np.minimum(1.0, (m / fs - t) / release)
    return env * (0.75 + 0.25 * np.exp(-t / 0.4))  # a gentle decay after the attack


def syllables(n: int, fs: int, seed: int) -> np.ndarray:
    """Synthetic talker for mechanics tests: Laplacian noise in syllables and pauses.

    Syllables of 80-250 ms (raised-cosine envelopes, levels spread over
    ±6 dB) follow each other at about 4 per second, with pauses of 0.1-0.5 s
    after one syllable in four: the 2-8 Hz envelope modulation and the dips
    by which rtsep's voice label recognises a talker, in a signal that is
    not speech. Never a quality figure's only talker: use
    :func:`rtsep.material.speech.talker` for those.

    Returns
    -------
    numpy.ndarray, shape (n,), float32
        RMS 0.1.
    """
    n = _check_n(n)
    fs = _check_fs(fs)
    rng = _rng(seed, 4)
    env = np.zeros(n)
    t = 0
    while t < n:
        m = int(rng.uniform(0.08, 0.25) * fs)
        seg = np.sin(np.pi * np.arange(m) / m) ** 2 * 10 ** (rng.uniform(-6, 6) / 20)
        env[t:t + m] = seg[:max(0, min(m, n - t))]
        t += m + int(rng.uniform(0.02, 0.06) * fs)
        if rng.random() < 0.25:
            t += int(rng.uniform(0.1, 0.5) * fs)
    return _to_rms(rng.laplace(size=n) * env)


def music_like(n: int, fs: int, seed: int) -> np.ndarray:
    """Synthetic music: chords of harmonic tones with note envelopes and a beat.

    One chord per bar (4 beats at 90-130 bpm) from a random sequence of diatonic chords,
    voiced as bass + triad; each note has 6 harmonics, an attack/decay/release
    envelope and a slight detune. A soft kick on every beat and a hi-hat on the
    off-beats give the rhythm. Sustained tones dominate, so the signal is
    sub-Gaussian to near-Gaussian, unlike speech.

    Parameters
    ----------
    n : int
        Length in samples.
    fs : int
        Sample rate in Hz (>= 8000).
    seed : int
        Non-negative seed.

    Returns
    -------
    numpy.ndarray, shape (n,), float32
        The music at RMS 0.1.
    """
    n, fs = _check_n(n), _check_fs(fs)
    rng = _rng(seed, 2)
    beat = 60.0 / rng.uniform(90, 130)
    bar = int(round(4 * beat * fs))
    tonic = rng.integers(45, 53)  # MIDI A2..E3: bass roots from 55 Hz, triads from 220 Hz
    x = np.zeros(n + bar)
    for start in range(0, n, bar):
        chord = _CHORDS[rng.integers(len(_CHORDS))]
        notes = [tonic + chord[0] - 12] + [tonic + 12 + c for c in chord]
        t = np.arange(bar) / fs
        env = _note_env(bar, fs, attack=0.03, release=0.08)
        for midi in notes:
            f0 = 440.0 * 2 ** ((midi - 69) / 12) * (1 + rng.normal(0, 0.002))
            k = _HARMONICS[_HARMONICS * f0 < 0.45 * fs]
            amps = rng.uniform(0.5, 1.0, k.size) / k
            phases = rng.uniform(0, 2 * np.pi, k.size)
            tone = amps @ np.sin(2 * np.pi * f0 * np.outer(k, t) + phases[:, None])
            x[start : start + bar] += rng.uniform(0.6, 1.0) * env * tone
    x = x[:n]

    # The beat is kept soft: loud percussion would make the music impulsive (super-Gaussian).
    level = np.sqrt(np.mean(x**2))
    step = beat * fs
    kick_t = np.arange(int(0.12 * fs)) / fs
    kick = np.sin(2 * np.pi * (50 * kick_t + 40 * 0.03 * (1 - np.exp(-kick_t / 0.03))))
    kick *= np.exp(-kick_t / 0.05) * 0.8 * level
    hat_len = int(0.03 * fs)
    for i in range(int(n / step) + 1):
        b = int(i * step)
        seg = x[b : b + kick.size]
        seg += kick[: seg.size]
        h = int(b + step / 2)
        if h < n:
            hat = np.diff(rng.standard_normal(hat_len + 1))  # differenced: bright noise
            hat *= np.exp(-np.arange(hat_len) / (0.006 * fs))
            seg = x[h : h + hat_len]
            seg += 0.3 * level * hat[: seg.size]
    return _to_rms(x)


def babble(n: int, fs: int, seed: int, talkers: int = 6) -> np.ndarray:
    """Crowd babble: several real talkers of both voices, summed.

    Talkers alternate between the Italian male and the Russian female voice of
    :mod:`rtsep.material.speech`, each with its own prompt order, a random start offset
    (0-3 s into its stream) and a random gain within ±3 dB.

    Parameters
    ----------
    n : int
        Length in samples.
    fs : int
        Sample rate in Hz (>= 8000).
    seed : int
        Non-negative seed.
    talkers : int
        Number of talkers (>= 2).

    Returns
    -------
    numpy.ndarray, shape (n,), float32
        The babble at RMS 0.1.

    Raises
    ------
    DependencyError
        If the speech packages (both voices) or the ``G722`` package are missing.
    """
    n, fs = _check_n(n), _check_fs(fs)
    if int(talkers) != talkers or talkers < 2:
        raise ConfigError(f"babble needs at least 2 talkers, got {talkers!r}")
    talkers = int(talkers)
    rng = _rng(seed, 3)
    x = np.zeros(n)
    for i in range(talkers):
        lang = ("it", "ru")[i % 2]
        offset = int(rng.uniform(0, 3) * fs)
        # Distinct talker seeds per voice, so no two talkers open on the same prompt.
        voice = speech.talker(lang, (n + offset) / fs, seed=int(seed) * talkers + i, fs=fs)
        x += 10 ** (rng.uniform(-3, 3) / 20) * voice[offset : offset + n]
    return _to_rms(x)


def _clicks(n: int, fs: int, rng: np.random.Generator, level: float) -> np.ndarray:
    """Cup-and-cutlery clinks: short damped high tones at random times, ~0.5 per second."""
    x = np.zeros(n)
    count = max(1, rng.poisson(0.5 * n / fs))
    length = int(0.04 * fs)
    t = np.arange(length) / fs
    for start in rng.integers(0, n, count):
        f = rng.uniform(2000, min(6000, 0.4 * fs))
        click = np.sin(2 * np.pi * f * t) * np.exp(-t / rng.uniform(0.003, 0.01))
        seg = x[start : start + length]
        seg += rng.uniform(0.5, 1.0) * level * click[: seg.size]
    return x


def cafe(n: int, fs: int, seed: int) -> np.ndarray:
    """Café-like background: babble + music at -10 dB + pink noise + a few clicks.

    Levels relative to the babble: music -10 dB, pink noise -20 dB, clinks with
    peaks about 3-6 times the babble RMS, about one every two seconds.

    Parameters
    ----------
    n : int
        Length in samples.
    fs : int
        Sample rate in Hz (>= 8000).
    seed : int
        Non-negative seed.

    Returns
    -------
    numpy.ndarray, shape (n,), float32
        The background at RMS 0.1.

    Raises
    ------
    DependencyError
        If the speech packages (both voices) or the ``G722`` package are missing.
    """
    n, fs = _check_n(n), _check_fs(fs)
    rng = _rng(seed, 4)
    x = babble(n, fs, seed).astype(np.float64)
    x += 10 ** (-10 / 20) * music_like(n, fs, seed)
    x += 10 ** (-20 / 20) * pink_noise(n, seed)
    x += _clicks(n, fs, rng, level=0.6)
    return _to_rms(x)


def mixing_matrix(cond: float, seed: int) -> np.ndarray:
    """A random 2×2 instantaneous mixing matrix with an exact condition number.

    Built as ``U diag(1, 1/cond) V^T`` from two rotations whose angles lie within
    ±17° of 45°, so no source is weak (every column's norm is at least 0.46 of the
    largest singular value), and the two angles are drawn close enough together
    that all four gains are non-negative, strictly positive when ``cond > 1``.
    Near ``cond == 1`` the cross gains shrink towards 0, and ``cond == 1`` gives
    the identity, the only orthogonal mixing with non-negative gains.

    Parameters
    ----------
    cond : float
        The 2-norm condition number, ``>= 1``.
    seed : int
        Non-negative seed.

    Returns
    -------
    numpy.ndarray, shape (2, 2), float64
        ``A[m, k]`` is the gain from source ``k`` to microphone ``m``; the largest
        singular value is 1.
    """
    if not (math.isfinite(cond) and cond >= 1):
        raise ConfigError(f"condition number must be a finite number >= 1, got {cond!r}")
    rng = _rng(seed, 5)
    spread = 0.3  # radians around 45°
    alpha = rng.uniform(np.pi / 4 - spread, np.pi / 4 + spread)
    # Off-diagonal gains stay positive while tan(beta)/tan(alpha) is within (1/cond, cond).
    lo, hi = np.log(np.tan(np.pi / 4 - spread)), np.log(np.tan(np.pi / 4 + spread))
    log_tb = np.log(np.tan(alpha)) + rng.uniform(-1, 1) * 0.8 * np.log(cond)
    beta = np.arctan(np.exp(np.clip(log_tb, lo, hi)))

    def rot(a: float) -> np.ndarray:
        return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])

    return rot(alpha) @ np.diag([1.0, 1.0 / cond]) @ rot(beta).T


def mix(sources: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Instantaneous mixing: each microphone hears a weighted sum of the sources.

    Parameters
    ----------
    sources : numpy.ndarray, shape (n, K)
        ``K`` source signals, ``n`` samples each.
    A : numpy.ndarray, shape (M, K)
        Gains from each source to each of ``M`` microphones.

    Returns
    -------
    numpy.ndarray, shape (n, M), float64
        ``sources @ A.T``.
    """
    s = np.asarray(sources, dtype=np.float64)
    a = np.asarray(A, dtype=np.float64)
    if s.ndim != 2 or a.ndim != 2 or a.shape[1] != s.shape[1]:
        raise InputFormatError(
            f"mix needs sources of shape (n, K) and A of shape (M, K), got {s.shape} and {a.shape}"
        )
    return s @ a.T
