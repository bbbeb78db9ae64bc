"""The voice alone in a quiet room: the voice output takes the mic back.

With one source in the room, fd's two outputs split the talker: the demixers
pass the part of the voice's image that is one direction per bin, and the rest
(its reverberation, which is not) goes to the background output, where the
post-filter then takes it for the noise to remove from the voice. A voice 40 dB
over a faint noise (RT60 0.3 s) came out at PESQ-WB 2.45 against the mic's 4.26,
ESTOI 0.89 against 1.0 (bench/VOICECALL.md, "The voice alone in a quiet room").

What tells that room from one with a background is how the background output's
level follows the voice's. Per frame, the log powers ``l_v`` and ``l_b`` of the
two outputs over the bins from ``k_lo`` to ``k_hi``, from frame ``start`` on
(before it the demixers have not separated, and every background follows the
voice):

1. Running estimates of the voice's 20th and 80th percentiles of ``l_v``
   (stochastic quantiles, ``step`` dB a frame).
2. The background's mean ``l_b`` over the frames where the voice is over its
   80th percentile and over those where it is under its 20th (each a running
   mean over its last ``mem`` such frames, corrected for its start).
3. Their difference ``Δ`` (dB). A background source is there whatever the
   voice does: Δ was -0.3 to +5.0 dB over the 22 voice-call rooms (music, pink
   noise, babble, café, a second talker; whole files). What the demixers split
   off the voice rises and falls with it: 10-17 dB with the voice 20-50 dB over
   a faint noise.
4. The correlation ``r`` of ``l_v`` and ``l_b`` over the frames read (running
   moments over the last ``mem`` frames). Δ alone needs seconds of frames of
   each kind to be sure: a second talker's Δ swung to 9.5 dB while its counts
   were short of 2 s, where its ``r`` was under 0.46; where ``r`` passed 0.6
   (a steady noise close to the voice's level), Δ stayed under 6.6 dB. A
   quiet room's ``r`` is 0.75-0.98 from its first seconds.
5. From ``d_lo`` to ``d_hi`` Δ, and from ``r_lo`` to ``r_hi`` ``r``, set the
   target of the blend (the smaller of the two ramps; 0 before ``min_frames``
   frames of each kind), which the blend follows by at most ``ramp`` a frame:
   the voice output becomes ``V + c·B`` and the background output
   ``(1 - c)·B``, so the pair still adds up to the mic.

The owner is :class:`rtsep.engines.fd.FrequencyDomainEngine`; it applies the
blend to the output the voice label names, before the post-filter, whose
background is then what is left of the other output.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .records import new_record

#: The parameters of :func:`quiet_frames`, read by name.
PARAMS = np.dtype([
    ("start", "f8"),        # first frame read
    ("step", "f8"),         # the percentiles' step (dB a frame)
    ("mem", "f8"),          # frames of each kind the background's two means average over
    ("min_frames", "f8"),   # frames of each kind before Δ is read
    ("d_lo", "f8"),         # Δ (dB) up to which the blend is 0
    ("d_hi", "f8"),         # ... and from which it is 1
    ("r_lo", "f8"),         # the levels' correlation up to which the blend is 0
    ("r_hi", "f8"),         # ... and from which it is 1
    ("ramp", "f8"),         # change of the blend per frame
    ("k_lo", "i8"),         # first bin read
    ("k_hi", "i8"),         # first bin not read
])

#: Slots of the state: the voice's 20th and 80th percentiles (dB), the
#: background's mean level (dB) over the loud and the quiet frames and their
#: counts, the blend, the frames seen, the frames read, and the running
#: moments of the two levels (dB, dB²) for their correlation.
Q_LO, Q_HI, MEAN_LOUD, MEAN_QUIET, N_LOUD, N_QUIET, BLEND, SEEN, N_READ, M_V, M_B, M_VV, M_BB, M_VB = range(14)
N_SLOTS = 14


def new_params(**fields: float) -> np.ndarray:
    """The kernel's parameter record (every field of :data:`PARAMS` by name)."""
    return new_record(PARAMS, **fields)


def new_state() -> np.ndarray:
    """A fresh stream's state for :func:`quiet_frames`: shape (14,), float64, zeroed (slots above)."""
    return np.zeros(N_SLOTS)


@njit(cache=True)
def quiet_frames(img: np.ndarray, q: int, st: np.ndarray, params: np.ndarray, blend: np.ndarray) -> None:
    """Steps 1-5 on ``n`` frames, in place on ``img``.

    Parameters
    ----------
    img : ndarray, shape (n, 2, n_bins), complex128
        The two outputs' images at the reference mic; output ``q`` is the
        voice's. Where the blend is over 0 the voice output takes ``c`` of the
        other and the other keeps ``1 - c``.
    q : int
        The voice's output (0 or 1).
    st : ndarray, shape (14,), float64
        The state (:func:`new_state`).
    params : ndarray
        :data:`PARAMS` record.
    blend : ndarray, shape (n,), float64
        Out: the blend of each frame (the owner lets the voice's post-filter
        take that much less: in a quiet room there is nothing for it to take).
    """
    p = params[0]
    n_frames, _, n_bins = img.shape
    hi = min(p.k_hi, n_bins)
    o = 1 - q
    for t in range(n_frames):
        st[SEEN] += 1.0
        e_v = 0.0
        e_b = 0.0
        for k in range(p.k_lo, hi):
            y = img[t, q, k]
            e_v += y.real * y.real + y.imag * y.imag
            y = img[t, o, k]
            e_b += y.real * y.real + y.imag * y.imag
        # digital silence (the stream's first frames, a muted input) says nothing about the room
        if st[SEEN] >= p.start and e_v > 0.0 and e_b > 0.0:
            l_v = 10.0 * math.log10(e_v)
            l_b = 10.0 * math.log10(e_b)
            if st[N_READ] == 0.0:
                st[Q_LO] = l_v
                st[Q_HI] = l_v
            st[N_READ] += 1.0
            a = 1.0 / min(st[N_READ], p.mem)
            st[M_V] += a * (l_v - st[M_V])
            st[M_B] += a * (l_b - st[M_B])
            st[M_VV] += a * (l_v * l_v - st[M_VV])
            st[M_BB] += a * (l_b * l_b - st[M_BB])
            st[M_VB] += a * (l_v * l_b - st[M_VB])
            st[Q_LO] += p.step * (0.2 - (1.0 if l_v < st[Q_LO] else 0.0))
            st[Q_HI] += p.step * (0.8 - (1.0 if l_v < st[Q_HI] else 0.0))
            if l_v >= st[Q_HI]:
                st[N_LOUD] += 1.0
                a = 1.0 / min(st[N_LOUD], p.mem)
                st[MEAN_LOUD] += a * (l_b - st[MEAN_LOUD])
            elif l_v <= st[Q_LO]:
                st[N_QUIET] += 1.0
                a = 1.0 / min(st[N_QUIET], p.mem)
                st[MEAN_QUIET] += a * (l_b - st[MEAN_QUIET])
        target = 0.0
        if st[N_LOUD] >= p.min_frames and st[N_QUIET] >= p.min_frames:
            d = st[MEAN_LOUD] - st[MEAN_QUIET]
            target = min(max((d - p.d_lo) / (p.d_hi - p.d_lo), 0.0), 1.0)
            var = (st[M_VV] - st[M_V] * st[M_V]) * (st[M_BB] - st[M_B] * st[M_B])
            r = (st[M_VB] - st[M_V] * st[M_B]) / math.sqrt(var) if var > 0.0 else 0.0
            target = min(target, min(max((r - p.r_lo) / (p.r_hi - p.r_lo), 0.0), 1.0))
        c = st[BLEND]
        c = min(target, c + p.ramp) if target > c else max(target, c - p.ramp)
        st[BLEND] = c
        blend[t] = c
        if c > 0.0:
            for k in range(n_bins):
                b = img[t, o, k]
                img[t, q, k] += c * b
                img[t, o, k] = (1.0 - c) * b
