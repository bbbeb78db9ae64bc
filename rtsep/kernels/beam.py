"""Steady-noise beamformer: in a room whose background is a steady noise, the voice through an MVDR beam.

fd's online IVA separates by independence, and a stationary Gaussian noise
(pink noise, a fan) gives it the least to work with: in the voice-call rooms
with pink noise its demixers left the voice output's SDR under the mic's in
some bands, and DeepFilterNet3 on one mic beat it on PESQ by 0.25. But a
steady noise is exactly what second-order statistics see best: its spatial
covariance, measured wherever the voice pauses, stays valid while the voice
speaks. So, per bin ``k`` and frame, from the two mics' spectra ``x[k]``:

1. Each output's power, smoothed (``a_smooth``), against its floor (a
   running minimum that may rise by ``rise`` a frame, times ``bias``): where
   both outputs are under ``noise_ratio`` times their floors the bin holds
   noise only. The voice dominates where the two mics, whitened by the noise
   covariance of step 2, carry over ``speech_white`` times the noise's power
   per mic (``xᴴ R_n⁻¹ x / 2``; until ``min_noise`` noise frames are in, where
   an output's power is over ``speech_ratio`` floors). The whitened test uses
   the noise covariance, which the floor estimates well, rather than the
   output's own rises, which the noise's fluctuation blurs (engine screen,
   bench/VOICECALL.md). Neither test asks which output holds the voice: the
   voice lifts whichever output the demixers put it on in this bin. Read on
   one output (the voice label's), a bin whose voice the demixers put on the
   other output (a block permutation, or the warm-up's passes undoing one)
   counted the voice's frames as noise, its noise covariance filled with the
   voice and the beam cancelled the voice (held-out pink room 4: 3-5 dB of
   voice SDR lost over the file's second half). Read on the mics, with their
   noise under the voice, a voice frame is told far less well (bench/VOICECALL.md,
   "The beam's frames from both outputs"). Both floors assume what the room
   gate says, a steady background: in a room wrongly told steady, a modulated
   background's loud frames are left out of ``R_n`` (tests/test_fd.py, the
   strict xfail on two modulated white noises).
2. The noise-only frames update the bin's noise covariance ``R_n`` and the
   voice-dominated ones its covariance ``R_s``, each a running mean over its
   last ``noise_mem`` / ``speech_mem`` such frames, from the first frame:
   when the room gate (:func:`rtsep.kernels.align.align_frames`: from the
   outputs' spreads, or before they separate from the reference mic's floor)
   finds the room steady, the beam has the whole past behind it, whichever
   output the owner names (the voice label's).
3. The voice's relative transfer function ``d`` (``d[0] = 1``, the reference
   mic) is the principal eigenvector of ``R_s - R_n``; the MVDR beam
   ``w = R_n⁻¹ d / (dᴴ R_n⁻¹ d)`` passes the voice's image at the reference mic
   undistorted and takes the least noise power with it.
4. The voice output becomes ``(1 - β)·y_voice + β·wᴴx`` and the other output
   the rest of the reference mic, so voice + background stays the mic. ``β``
   rises by ``ramp`` a frame while the room is steady and the bin has
   ``min_noise`` and ``min_speech`` frames behind it, and falls as fast
   otherwise: no click where the beam comes in or goes.
5. A steady floor under a second source that moves (a fan under another
   talker) passes the room gate as well as pink noise does: the gate's
   statistics are dominated by the many bins where the floor is over the
   talker. There the beam is wrong: the talker's loud frames are neither
   noise-only (step 1) nor absent from the voice-dominated ones, so ``R_n``
   misses the talker and ``d`` leans towards it, and the beam lets it
   through (a fan 5 dB under a second talker: voice SIR gain 11 dB without
   the beam, 1.5 with it). Per ready bin, the generalised eigenvalues
   ``mu1 >= mu2`` of ``(R_s, R_n)`` are both 1 where the voice-dominated
   frames hold only the noise, and the voice adds one direction:
   ``mu1 - 1``. A second direction, ``mu2 - 1`` over ``two_count`` times
   ``mu1 - 1``, is a second source in those frames. The share of such bins
   (0.02-0.22 in the four pink voice-call rooms, 0.58-1.0 with a fan under
   a second talker) takes the beam out of every bin as it rises from
   ``frac_lo`` to ``frac_hi`` (the previous frame's share, so one pass over
   the bins does).

Screened on the four pink-noise voice-call rooms (real speech, bench/VOICECALL.md).
The owner is :class:`rtsep.engines.fd.FrequencyDomainEngine`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .records import new_record

#: The parameters of :func:`beam_frames`, read by name.
PARAMS = np.dtype([
    ("a_smooth", "f8"),      # forgetting factor per frame of an output's smoothed power
    ("rise", "f8"),          # factor per frame by which a bin's power floor may rise
    ("bias", "f8"),          # the floor times this is the noise's mean power
    ("noise_ratio", "f8"),   # smoothed power under this many floors: noise only
    ("speech_ratio", "f8"),  # ... over this many: the voice dominates (until the noise covariance is known)
    ("speech_white", "f8"),  # the mics' power whitened by the noise covariance, per mic, over this: the voice
    ("noise_mem", "f8"),     # noise-only frames the noise covariance averages over
    ("speech_mem", "f8"),    # voice-dominated frames the voice covariance averages over
    ("min_noise", "f8"),     # noise-only frames a bin needs before its beam is used
    ("min_speech", "f8"),    # voice-dominated frames ... 
    ("ramp", "f8"),          # change of the blend into the beam per frame
    ("k_lo", "i8"),          # first bin that takes part (lower ones are left as they are)
    ("two_count", "f8"),     # step 5: a bin holds two sources where mu2 - 1 > two_count * (mu1 - 1)
    ("frac_lo", "f8"),       # the share of such bins up to which the beam is wholly in, in every bin
    ("frac_hi", "f8"),       # ... and from which it is wholly out (0: never out)
])

#: Rows of the real state: each output's smoothed power (rows PS, PS + 1) and
#: floor (FL, FL + 1), the counts of noise-only and voice-dominated frames,
#: then (columns 0-3) the blend, the frames seen, the share of ready bins with
#: two sources (step 5) and the weight it left the blend.
PS, FL, N_NOISE, N_SPEECH, MISC = 0, 2, 4, 5, 6


def new_params(**fields: float) -> np.ndarray:
    """The kernel's parameter record (every field of :data:`PARAMS` by name)."""
    return new_record(PARAMS, **fields)


def new_state(n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """A fresh stream's state for :func:`beam_frames`.

    Returns
    -------
    st : ndarray, shape (7, n_bins), float64
        Rows 0-1 each output's smoothed power, 2-3 its floor, 4 the count of
        noise-only frames, 5 of voice-dominated ones, 6 the blend (column 0),
        the frames seen (column 1), the share of the ready bins that hold two
        sources (column 2, step 5) and the weight it leaves the blend
        (column 3; the blend applied is column 0 times column 3).
    cov : ndarray, shape (2, n_bins, 2, 2), complex128
        The noise and the voice-dominated covariances of the two mics, per bin.
    """
    return np.zeros((7, n_bins)), np.zeros((2, n_bins, 2, 2), dtype=np.complex128)


@njit(cache=True)
def _noise_loaded(cov: np.ndarray, k: int) -> tuple[float, float, complex]:
    """Bin ``k``'s noise covariance ``(R00, R11, R01)``, its diagonal loaded by 1e-6 of its
    trace: bounded inverse for bins it cannot tell apart."""
    n00, n11 = cov[0, k, 0, 0].real, cov[0, k, 1, 1].real
    load = 1e-6 * (n00 + n11) + 1e-30
    return n00 + load, n11 + load, cov[0, k, 0, 1]


@njit(cache=True)
def beam_frames(spec: np.ndarray, img: np.ndarray, room: np.ndarray, st: np.ndarray, cov: np.ndarray,
                params: np.ndarray) -> None:
    """Steps 1-4 on ``n`` frames, in place on ``img``.

    Parameters
    ----------
    spec : ndarray, shape (n, 2, n_bins), complex128
        The two mics' spectra (reference mic first).
    img : ndarray, shape (n, 2, n_bins), complex128
        The two outputs' images at the reference mic (after the band
        alignment); where the beam acts, the voice's output takes its output
        and the other output the rest of the mic.
    room : ndarray, shape (n,), int64
        Per frame, from the room gate: 0 not steady, 1 steady with the voice on
        output 0, 2 steady with the voice on output 1.
    st, cov : ndarray
        The state (:func:`new_state`).
    params : ndarray
        :data:`PARAMS` record.
    """
    p = params[0]
    n_frames, _, n_bins = img.shape
    for t in range(n_frames):
        first = st[MISC, 1] == 0.0
        st[MISC, 1] += 1.0
        q = room[t] - 1
        beta = st[MISC, 0]
        beta = min(1.0, beta + p.ramp) if q >= 0 else max(0.0, beta - p.ramp)
        st[MISC, 0] = beta
        # 5. the share of two-source bins as of the previous frame
        w_room = 1.0
        if p.frac_hi > 0.0:
            w_room = min(max((p.frac_hi - st[MISC, 2]) / max(p.frac_hi - p.frac_lo, 1e-9), 0.0), 1.0)
        st[MISC, 3] = w_room
        n_ready = 0
        n_two = 0
        for k in range(p.k_lo, n_bins):
            # 1. the outputs' smoothed powers against their floors
            for o in range(2):
                y = img[t, o, k]
                pw = y.real * y.real + y.imag * y.imag
                if first:
                    st[PS + o, k] = pw
                ps = p.a_smooth * st[PS + o, k] + (1.0 - p.a_smooth) * pw
                st[PS + o, k] = ps
                # a floor still at zero (an output silent in the demixers' first
                # frames) would take seconds to rise: it starts at the first power
                fl = st[FL + o, k]
                st[FL + o, k] = ps if fl <= 0.0 else min(ps, fl * p.rise)
            x0, x1 = spec[t, 0, k], spec[t, 1, k]
            # 2. the noise and voice covariances
            # the output that rises most over its floor: the voice's in this bin, whichever it is
            g = max(st[PS, k] / (p.bias * st[FL, k] + 1e-30), st[PS + 1, k] / (p.bias * st[FL + 1, k] + 1e-30))
            noise = g < p.noise_ratio
            speech = False
            if not noise:
                if st[N_NOISE, k] >= p.min_noise:
                    # the mics whitened by the noise's covariance: about 1 per mic where the
                    # noise explains the frame; far more where the voice adds to it
                    n00, n11, n01 = _noise_loaded(cov, k)
                    det = n00 * n11 - (n01.real * n01.real + n01.imag * n01.imag)
                    quad = (n11 * (x0.real * x0.real + x0.imag * x0.imag)
                            + n00 * (x1.real * x1.real + x1.imag * x1.imag)
                            - 2.0 * (x0.conjugate() * n01 * x1).real)
                    speech = quad > 2.0 * p.speech_white * det
                else:
                    speech = g > p.speech_ratio
            if noise or speech:
                s = 0 if noise else 1
                row = N_NOISE if s == 0 else N_SPEECH
                st[row, k] += 1.0
                b = 1.0 / min(st[row, k], p.noise_mem if s == 0 else p.speech_mem)
                cov[s, k, 0, 0] += b * (x0.real * x0.real + x0.imag * x0.imag - cov[s, k, 0, 0])
                cov[s, k, 1, 1] += b * (x1.real * x1.real + x1.imag * x1.imag - cov[s, k, 1, 1])
                cov[s, k, 0, 1] += b * (x0 * x1.conjugate() - cov[s, k, 0, 1])
                cov[s, k, 1, 0] = cov[s, k, 0, 1].conjugate()
            if q < 0:
                continue
            if beta == 0.0 or st[N_NOISE, k] < p.min_noise or st[N_SPEECH, k] < p.min_speech:
                continue
            n00, n11, n01 = _noise_loaded(cov, k)
            if p.frac_hi > 0.0:
                # 5. the voice frames' covariance against the noise's: generalised
                # eigenvalues mu1 >= mu2, each 1 where those frames hold the noise alone
                s00, s11, s01 = cov[1, k, 0, 0].real, cov[1, k, 1, 1].real, cov[1, k, 0, 1]
                det_n = n00 * n11 - (n01.real * n01.real + n01.imag * n01.imag)
                det_s = s00 * s11 - (s01.real * s01.real + s01.imag * s01.imag)
                tr = n11 * s00 + n00 * s11 - 2.0 * (n01 * s01.conjugate()).real
                disc = math.sqrt(max(tr * tr - 4.0 * det_n * det_s, 0.0))
                mu1 = (tr + disc) / (2.0 * det_n)
                mu2 = (tr - disc) / (2.0 * det_n)
                if mu1 > 1.0:
                    n_ready += 1
                    if mu2 - 1.0 > p.two_count * (mu1 - 1.0):
                        n_two += 1
                if w_room == 0.0:
                    continue
            # 3. the voice's transfer function: the principal eigenvector of R_s - R_n, d = [1, r]
            a = (cov[1, k, 0, 0] - cov[0, k, 0, 0]).real
            c = (cov[1, k, 1, 1] - cov[0, k, 1, 1]).real
            bb = cov[1, k, 0, 1] - cov[0, k, 0, 1]
            lam = 0.5 * (a + c) + math.sqrt(0.25 * (a - c) * (a - c) + bb.real * bb.real + bb.imag * bb.imag)
            d0 = lam - c
            if not d0 > 0.0:
                continue
            r = bb.conjugate() / d0
            # the MVDR beam
            u0 = n11 - n01 * r
            u1 = n00 * r - n01.conjugate()
            den = (u0 + r.conjugate() * u1).real
            if not den > 0.0:
                continue
            beam = (u0.conjugate() * x0 + u1.conjugate() * x1) / den
            # 4. blended in; the other output is the rest of the mic
            total = img[t, 0, k] + img[t, 1, k]
            bk = beta * w_room
            v = (1.0 - bk) * img[t, q, k] + bk * beam
            img[t, q, k] = v
            img[t, 1 - q, k] = total - v
        if n_ready > 0:
            st[MISC, 2] = n_two / n_ready
