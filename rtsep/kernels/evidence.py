"""Speech evidence for the voice label, per output, per short frame (Numba).

Which separated output is the voice cannot be read off its kurtosis: produced
music with dynamics and speech with pauses are both super-Gaussian. What sets
speech apart is its **syllabic envelope**: 2-8 Hz modulation of the level in
each frequency band, with deep dips between syllables and words, where music
holds notes and beats, noise is flat and babble fills its own gaps.

Per sample, each output image runs through a few band-pass filters (biquads,
time domain: the same code for both engines). Every ``p.frame`` samples of the
absolute sample index the band energies become log levels (dB), and per band
the level trajectory is band-passed at about 2-8 Hz; the running mean square
of that is the **modulation** (dB²). Beside it the running **level** of each
output (dB) serves the rule between two talkers (the near one is louder at the
reference mic). All running means start as true averages (weight 1/n) and
then forget with ``p.memory_s``.

State is one record (``numpy.recarray`` of length 1, see :func:`new_state`);
parameters one :class:`EvidenceParams` tuple; every kernel reads both by name.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

#: Band-pass centres (Hz) of the modulation bands: low voiced energy, first
#: and second formant regions, fricatives. Clamped to 0.4·fs.
BAND_HZ = (300.0, 800.0, 1800.0, 3600.0)
#: Level floor (dB re full-scale power): dips below it are not deeper dips.
FLOOR_DB = -100.0


class EvidenceParams(NamedTuple):
    """Parameters of the evidence kernels (built by :func:`evidence_params`).

    Attributes
    ----------
    frame : int
        Samples per evidence frame (≈ 16 ms).
    bq_b, bq_a : ndarray, shape (B, 3), float64
        Band-pass biquad coefficients (``bq_a[:, 0]`` is 1).
    fast, slow : float
        One-pole smoothing coefficients (per frame) of the level trajectory;
        their difference is the 2-8 Hz band-pass.
    keep : float
        Forgetting factor per frame of the running means (``memory_s``).
    level_attack, level_release : float
        Per-frame smoothing of the level's upper envelope when a frame is
        louder / quieter than it: a talker's level is the level it speaks
        at, not lowered by its pauses.
    depth_db : float
        Deepest dip counted (dB below the loudest output in the same band and
        frame): a nearly silent output's level is mostly estimation noise and
        the demixers' adaptation, which would look like deep modulation.
    swing_db : float
        Largest swing of one frame's band-passed level counted (dB): a
        syllable swings by 5-10 dB, while a demixer that is still being
        learnt makes an output's level jump by 20-30 dB at once.
    """

    frame: int
    bq_b: np.ndarray
    bq_a: np.ndarray
    fast: float
    slow: float
    keep: float
    depth_db: float
    swing_db: float
    level_attack: float
    level_release: float


def evidence_params(fs: float, memory_s: float, frame_s: float = 0.016, depth_db: float = 30.0,
                    swing_db: float = 12.0, level_memory_s: float = 10.0) -> EvidenceParams:
    """Evidence parameters for sample rate ``fs`` (Hz) and a memory of ``memory_s`` seconds."""
    frame = max(16, int(round(frame_s * fs)))
    rate = fs / frame
    b = np.zeros((len(BAND_HZ), 3))
    a = np.zeros((len(BAND_HZ), 3))
    for i, f0 in enumerate(BAND_HZ):
        w0 = 2.0 * math.pi * min(f0, 0.4 * fs) / fs
        alpha = math.sin(w0) / (2.0 * 1.0)  # Q = 1: about an octave wide
        a0 = 1.0 + alpha
        b[i] = (alpha / a0, 0.0, -alpha / a0)
        a[i] = (1.0, -2.0 * math.cos(w0) / a0, (1.0 - alpha) / a0)
    return EvidenceParams(frame=frame, bq_b=b, bq_a=a,
                          fast=math.exp(-2.0 * math.pi * 8.0 / rate),
                          slow=math.exp(-2.0 * math.pi * 2.0 / rate),
                          keep=math.exp(-1.0 / (memory_s * rate)), depth_db=depth_db, swing_db=swing_db,
                          level_attack=1.0 - math.exp(-1.0 / (0.15 * rate)),
                          level_release=1.0 - math.exp(-1.0 / (level_memory_s * rate)))


def state_dtype(q: int, bands: int = len(BAND_HZ)) -> np.dtype:
    """Record layout of the evidence state for ``q`` outputs and ``bands`` bands."""
    return np.dtype([
        ("frames", "f8"),            # frames counted as evidence (growing-window length)
        ("z", "f8", (q, bands, 2)),  # biquad memories
        ("e_band", "f8", (q, bands)),  # band energies summed over the frame so far
        ("e_all", "f8", (q,)),       # broadband energy summed over the frame so far
        ("lp_fast", "f8", (q, bands)),  # smoothed band levels (dB)
        ("lp_slow", "f8", (q, bands)),
        ("mod", "f8", (q, bands)),   # running mean square of the 2-8 Hz level trajectory (dB²)
        ("level", "f8", (q,)),       # upper envelope of each output's frame level (dB): its level when active
        ("primed", "i8"),            # 1 once the level smoothers hold a level
        ("spoiled", "i8"),           # 1 if a sample of this frame is not evidence
        ("decided", "i8"),           # 1 once the first voice decision is taken
        ("lead", "i8"),              # frames a challenger has led the voice, unbroken
        ("speech", "f8", (q,)),      # running mean of each output's speech probability (rtsep.vad)
        ("speech_n", "f8"),          # detector readings so far (growing-window length)
        ("near", "f8", (q,)),        # each output's direct-path regularity (rooms; the near talker's is higher)
    ])


def new_state(q: int) -> np.recarray:
    """A zeroed evidence state for ``q`` outputs (a recarray of length 1)."""
    return np.zeros(1, dtype=state_dtype(q)).view(np.recarray)


@njit(cache=True)
def evidence_sample(z: np.ndarray, e_band: np.ndarray, e_all: np.ndarray, p: EvidenceParams,
                    y: np.ndarray) -> None:
    """Feed one sample of every output to the band filters and the frame's energies.

    The arrays are the state record's fields (``st.z``, ``st.e_band``,
    ``st.e_all``), taken out once per block by the caller: reading a record's
    field per sample is cheap compiled but slow in the NUMBA_DISABLE_JIT
    coverage pass. Frames end where the absolute sample index says (the
    caller calls :func:`evidence_frame` then).

    Parameters
    ----------
    z : ndarray, shape (Q, B, 2)
        Biquad memories.
    e_band : ndarray, shape (Q, B)
        Band energies of the frame so far.
    e_all : ndarray, shape (Q,)
        Broadband energies of the frame so far.
    p : EvidenceParams
    y : ndarray, shape (Q,)
        This sample of each output image.
    """
    nb = p.bq_b.shape[0]
    bq_b = p.bq_b
    bq_a = p.bq_a
    for k in range(y.shape[0]):
        x = y[k]
        e_all[k] += x * x
        for b in range(nb):
            # transposed direct form II
            out = bq_b[b, 0] * x + z[k, b, 0]
            z[k, b, 0] = bq_b[b, 1] * x - bq_a[b, 1] * out + z[k, b, 1]
            z[k, b, 1] = bq_b[b, 2] * x - bq_a[b, 2] * out
            e_band[k, b] += out * out


@njit(cache=True)
def evidence_frame(st, p: EvidenceParams, learn: bool) -> None:
    """Close an evidence frame: update the modulation and level of every output.

    ``learn`` False (the outputs are not separated yet, or the frame was
    faulty) still advances the level smoothers, so a later frame's modulation
    is not a step from stale levels, but counts nothing as evidence.
    """
    q = st.e_all.shape[0]
    nb = p.bq_b.shape[0]
    inv = 1.0 / p.frame
    if learn:
        if st.frames == 0.0:
            # the first frame of evidence: until now the outputs were not
            # separated (fd's second output is silent before its first
            # demixer), and the step from those levels to the separated ones
            # would count as a 20-30 dB syllable in the first second's
            # growing-window mean (7 dB of modulation on pink noise at 0.5 s in
            # a voice-call room, which named it the voice for 5 s)
            st.primed = 0
        st.frames += 1.0
        # growing window first (true averages), then exponential forgetting
        g = max(1.0 / st.frames, 1.0 - p.keep)
    else:
        g = 0.0
    for b in range(nb):
        top = 0.0
        for k in range(q):
            top = max(top, st.e_band[k, b])
        floor = max(FLOOR_DB, 10.0 * math.log10(top * inv + 1e-30) - p.depth_db)
        for k in range(q):
            # the band energy becomes the band level (dB) in place
            st.e_band[k, b] = max(floor, 10.0 * math.log10(st.e_band[k, b] * inv + 1e-30))
    for k in range(q):
        for b in range(nb):
            lev = st.e_band[k, b]
            if st.primed == 0:
                st.lp_fast[k, b] = lev
                st.lp_slow[k, b] = lev
            st.lp_fast[k, b] = p.fast * st.lp_fast[k, b] + (1.0 - p.fast) * lev
            st.lp_slow[k, b] = p.slow * st.lp_slow[k, b] + (1.0 - p.slow) * lev
            m = min(p.swing_db, abs(st.lp_fast[k, b] - st.lp_slow[k, b]))
            st.mod[k, b] += g * (m * m - st.mod[k, b])
            st.e_band[k, b] = 0.0
        if learn:
            lev = max(FLOOR_DB, 10.0 * math.log10(st.e_all[k] * inv + 1e-30))
            if st.frames <= 1.0:
                st.level[k] = lev
            rate = p.level_attack if lev > st.level[k] else p.level_release
            st.level[k] += rate * (lev - st.level[k])
        st.e_all[k] = 0.0
    st.primed = 1


@njit(cache=True)
def modulation_db(st, k: int) -> float:
    """Output ``k``'s syllabic modulation: RMS over bands of the 2-8 Hz level swing (dB)."""
    nb = st.mod.shape[1]
    acc = 0.0
    for b in range(nb):
        acc += math.sqrt(st.mod[k, b])
    return acc / nb


@njit(cache=True)
def level_db(st, k: int) -> float:
    """Output ``k``'s level at the reference mic when active (dB re full scale)."""
    return st.level[k]
