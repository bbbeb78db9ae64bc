"""Band alignment in steady noise: per bin, the voice goes to the output whose level moves.

fd's online IVA ties the bins of a source together through their common
activity. A voice has one; a stationary Gaussian noise (pink noise, a fan)
has none, since its bins rise and fall independently. In a room with such a
background, bands where the voice is weak can settle on the wrong output and
stay there: in three of the four voice-call rooms with pink noise, 2-8 kHz,
3-8 kHz or 0.5-3 kHz of the voice came out on the background output
(``bench/band_permutations.py``, ``bench/VOICECALL.md``).

Per frame and bin ``k``, from the two outputs' images ``y_q[k]`` as the
demixers give them:

1. The log power ``L_q[k] = ln |y_q[k]|²`` (at most 60 dB under the pair's) less its short-memory mean
   (``a_short``), squared and averaged (``a_var``): ``s_q[k]``, the spread of
   the output's level around its recent course. A stationary Gaussian noise
   gives π/√6 ≈ 1.28 nepers (5.6 dB) whatever its level or spectrum; a voice,
   or music, babble and a second talker, more.
2. The room is *steady* while, in at least ``steady_frac`` of the bins from
   ``k_lo`` on, the smaller of the two spreads is under ``s_steady``: one output
   there is a steady noise. (Median over the bins of that smaller spread, the
   voice-call rooms: 1.31-1.34 with pink noise, 1.77-2.49 with music, babble,
   café or a second talker.)
3. In a steady room, bin ``k`` votes for the output whose spread is larger
   by ``margin``; the votes, weighted by that output's power (``a_var``), name
   the output that holds the voice overall; a bin voting for the other one
   is to be swapped, a bin that does not vote keeps what it has. Out of a
   steady room, no bin is to be swapped.
4. A bin's swap follows what it is to be only after ``hold`` frames in a row
   of wanting it, and not before frame ``start`` (the demixers of the first
   seconds are still moving, and both outputs' levels with them).

The swap exchanges the two outputs' images in the bin, so voice + background
stays the mic, and the demixers themselves are left as they are: the IVA goes
on from its own state, and if it leaves the wrong optimum, the spreads turn
and the swap is undone. The same statistics, with a shorter memory
(``a_room``) and corrected for their start from zero, tell the steady-noise
beam (:mod:`rtsep.kernels.beam`) per frame whether the room is steady, and
their vote which output holds the voice, from ``room_start`` on; ``swap=0``
only tells. (The engine gives the beam the output its voice label names
instead of the vote's: early on the vote named the output the label does not
use, and in one pink room it changed its mind at 5 s.)

5. Those statistics need the demixers to have separated, which in steady
   noise takes them 2.5-5 s. Until frame ``early_until`` the room is also
   told steady from the reference mic alone: its power per bin (``a_early``),
   the least of it in each sub-window of ``early_sub`` frames, and the
   spread of those floors' logs over the last :data:`EARLY_SUBS`
   sub-windows (the stream's first sub-window left out). A steady noise
   keeps its floor: the median spread over the bins from ``k_lo`` to
   ``early_top`` was 1.8-1.9 dB at the first reading (1.8 s) in the four
   pink voice-call rooms and at most 2.1 dB before 8 s; music, babble, café
   and a second talker move theirs (at least 2.35 dB before 8 s in the 18
   others). The room is steady under ``early_spread`` and, once told, stays
   so under ``early_keep``. The mic does not say which output holds the
   voice: the owner gives the beam the one its label names.

The owner is :class:`rtsep.engines.fd.FrequencyDomainEngine`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .records import new_record

#: The parameters of :func:`align_frames`, read by name.
PARAMS = np.dtype([
    ("a_short", "f8"),      # forgetting factor per frame of the log power's short-memory mean
    ("a_var", "f8"),        # ... of the spread (mean square of the log power about that mean) and the powers
    ("s_steady", "f8"),     # spread (nepers) under which an output is a steady noise
    ("steady_frac", "f8"),  # least fraction of the bins with one steady output for the room to be steady
    ("margin", "f8"),       # a bin votes for an output whose spread is larger by this (nepers)
    ("hold", "i8"),         # frames in a row a bin must want a change before it is made
    ("start", "i8"),        # first frame at which a swap may change
    ("k_lo", "i8"),         # first bin that takes part (lower ones are never swapped)
    ("swap", "i8"),         # 1: swap bins (steps 3-4); 0: only tell the room (the steady-noise beam's gate)
    ("room_start", "i8"),   # first frame the room is told (0: never)
    ("a_room", "f8"),       # forgetting factor per frame of the spreads the room is told from
    ("early_until", "i8"),  # the early room (step 5) is told until this frame (0: never)
    ("early_sub", "i8"),    # frames per sub-window of the reference mic's floor
    ("early_spread", "f8"), # the floor's spread (dB, median over the bins) under which the room is steady early
    ("early_keep", "f8"),   # ... and under which it stays so once it is (dB, >= early_spread)
    ("early_top", "i8"),    # bins from k_lo up to this one (excluded) take part in the early room
    ("a_early", "f8"),      # forgetting factor per frame of the reference mic's power
])

#: Sub-windows whose floors the early room's spread is taken over (step 5).
EARLY_SUBS = 6


def new_params(**fields: float) -> np.ndarray:
    """The kernel's parameter record (every field of :data:`PARAMS` by name)."""
    return new_record(PARAMS, **fields)


def new_state(n_bins: int) -> np.ndarray:
    """A fresh stream's state for :func:`align_frames`, shape (13 + EARLY_SUBS, n_bins), float64, zeroed."""
    return np.zeros((13 + EARLY_SUBS, n_bins))


@njit(cache=True)
def _steady(st: np.ndarray, row: int, k_lo: int, n_bins: int, s2: float, frac: float) -> bool:
    """Whether one output is steady (spread², rows ``row`` and ``row + 1``, under ``s2``) in at least
    ``frac`` of the bins from ``k_lo``."""
    m = n_bins - k_lo
    n_one = 0
    for k in range(k_lo, n_bins):
        if min(st[row, k], st[row + 1, k]) < s2:
            n_one += 1
    return m > 0 and n_one >= frac * m


@njit(cache=True)
def _vote(st: np.ndarray, row: int, k_lo: int, n_bins: int, margin: float) -> float:
    """The bins' power-weighted votes from the spreads² in rows ``row``, ``row + 1``: > 0 names
    output 1 as the one that moves, < 0 output 0."""
    vote = 0.0
    for k in range(k_lo, n_bins):
        d = math.sqrt(st[row + 1, k]) - math.sqrt(st[row, k])
        if d > margin:
            vote += st[5, k]
        elif d < -margin:
            vote -= st[4, k]
    return vote


@njit(cache=True)
def _early_floor(img: np.ndarray, t: int, st: np.ndarray, p: np.void) -> None:
    """Step 5 on frame ``t``: the reference mic's floor per sub-window, and whether it held still."""
    n = st[8, 0]  # frames seen, this one included
    top = min(p.early_top, img.shape[2])
    first = (n - 1.0) % p.early_sub == 0.0
    for k in range(p.k_lo, top):
        # the two images add up to the reference mic (swaps exchange them, never change the sum)
        x = img[t, 0, k] + img[t, 1, k]
        pw = x.real * x.real + x.imag * x.imag
        st[11, k] = pw if n == 1.0 else p.a_early * st[11, k] + (1.0 - p.a_early) * pw
        if first or st[11, k] < st[12, k]:
            st[12, k] = st[11, k]
    if n % p.early_sub != 0.0:
        return
    n_ring = st.shape[0] - 13
    slot = int(st[8, 2]) % n_ring
    for k in range(p.k_lo, top):
        st[13 + slot, k] = math.log(st[12, k] + 1e-30)
    st[8, 2] += 1.0
    was = st[8, 1] == 1.0
    st[8, 1] = 0.0
    # the first sub-window is left out: the smoothed power starts at one frame's
    if st[8, 2] <= n_ring or top <= p.k_lo:
        return
    spreads = np.empty(top - p.k_lo)
    for k in range(p.k_lo, top):
        mean = 0.0
        for u in range(n_ring):
            mean += st[13 + u, k]
        mean /= n_ring
        var = 0.0
        for u in range(n_ring):
            var += (st[13 + u, k] - mean) ** 2
        spreads[k - p.k_lo] = math.sqrt(var / n_ring)
    # a room told steady stays so under a wider spread: a beam that comes and goes costs more than it gives
    if 10.0 / math.log(10.0) * np.median(spreads) < (p.early_keep if was else p.early_spread):
        st[8, 1] = 1.0


@njit(cache=True)
def align_frames(img: np.ndarray, st: np.ndarray, frames: np.ndarray, room: np.ndarray, params: np.ndarray) -> None:
    """Steps 1-5 on ``n`` frames of the two outputs' images, in place.

    Parameters
    ----------
    img : ndarray, shape (n, 2, n_bins), complex128
        Per frame, the two outputs' images at the reference mic, as the
        demixers give them; swapped bins are exchanged in place.
    st : ndarray, shape (13 + EARLY_SUBS, n_bins), float64
        The state: rows 0-1 the short-memory mean of each output's log power,
        2-3 its spread², 4-5 its power, 6 the swap (0 or 1), 7 the frames in a
        row the bin has wanted a change, 8 the frames seen (column 0), whether
        the early room is steady (column 1) and the sub-windows closed (column
        2), 9-10 the
        spread² with the room's memory (``a_room``); step 5: 11 the reference
        mic's smoothed power, 12 its least in the current sub-window, 13 on the
        logs of the last sub-windows' floors.
    frames : ndarray, shape (2,), int64
        Out: ``[frames of this call in a steady room, bins swapped after the last frame]``.
    room : ndarray, shape (n,), int64
        Out, per frame: 0 the room is not steady (or not yet ``room_start``
        frames in), 1 it is and the votes put the voice on output 0, 2 on
        output 1 (the swaps' ``start`` does not hold it back), 3 the reference
        mic's floor says it is (step 5) and the outputs do not yet.
    params : ndarray
        :data:`PARAMS` record.
    """
    p = params[0]
    n_frames, _, n_bins = img.shape
    n_steady = 0
    for t in range(n_frames):
        n = st[8, 0]
        total = 0.0
        for k in range(p.k_lo, n_bins):
            for q in range(2):
                total += img[t, q, k].real ** 2 + img[t, q, k].imag ** 2
        # 1. spreads and powers from the demixers' own outputs (before any swap);
        # digital silence has no level to spread and is not counted
        for k in range(p.k_lo, n_bins if total > 0.0 else p.k_lo):
            # an output's level counts down to 60 dB under the pair's: an output
            # still at zero (the demixers' first frames) has no level to spread
            y0, y1 = img[t, 0, k], img[t, 1, k]
            pw0 = y0.real * y0.real + y0.imag * y0.imag
            pw1 = y1.real * y1.real + y1.imag * y1.imag
            floor = 1e-6 * (pw0 + pw1) + 1e-30
            for q in range(2):
                pw = pw0 if q == 0 else pw1
                lv = math.log(pw + floor)
                if n == 0.0:
                    st[q, k] = lv
                st[q, k] = p.a_short * st[q, k] + (1.0 - p.a_short) * lv
                d = lv - st[q, k]
                st[2 + q, k] = p.a_var * st[2 + q, k] + (1.0 - p.a_var) * d * d
                st[4 + q, k] = p.a_var * st[4 + q, k] + (1.0 - p.a_var) * pw
                st[9 + q, k] = p.a_room * st[9 + q, k] + (1.0 - p.a_room) * d * d
        if total > 0.0:
            st[8, 0] = n + 1.0
            # past early_until the early room is never read: its floors need not be kept
            if st[8, 0] < p.early_until:
                _early_floor(img, t, st, p)
        # 2. a steady room: one output steady in most bins
        steady = _steady(st, 2, p.k_lo, n_bins, p.s_steady * p.s_steady, p.steady_frac) and st[8, 0] >= p.start
        # the room as the beam reads it, from room_start frames on: spreads of
        # a shorter memory, corrected for their start from zero (uncorrected,
        # every room reads steady for its first seconds; the swaps' start hides
        # that), so that the room is told as soon as the demixers separate
        room[t] = 0
        if p.room_start > 0 and st[8, 0] >= p.room_start:
            corr = 1.0 - p.a_room ** st[8, 0]
            if _steady(st, 9, p.k_lo, n_bins, p.s_steady * p.s_steady * corr, p.steady_frac):
                v = _vote(st, 9, p.k_lo, n_bins, p.margin * math.sqrt(corr))
                room[t] = 2 if v > 0.0 else (1 if v < 0.0 else 0)
        # 5. before the demixers separate, the reference mic's floor alone
        if room[t] == 0 and st[8, 1] == 1.0 and st[8, 0] < p.early_until:
            room[t] = 3
        # 3. each bin votes for the output that moves; the votes, weighted by power, name the voice's
        vote = 0.0
        if steady:
            n_steady += 1
            vote = _vote(st, 2, p.k_lo, n_bins, p.margin)
        if p.swap == 0:
            continue
        for k in range(p.k_lo, n_bins):
            want = st[6, k]
            if steady:
                d = math.sqrt(st[3, k]) - math.sqrt(st[2, k])
                if d > p.margin or d < -p.margin:
                    on_1 = d > 0.0  # this bin's moving output is output 1
                    want = 1.0 if on_1 != (vote > 0.0) else 0.0
            else:
                want = 0.0
            # 4. a change only after it has been wanted for hold frames
            if want != st[6, k]:
                st[7, k] += 1.0
                if st[7, k] >= p.hold:
                    st[6, k] = want
                    st[7, k] = 0.0
            else:
                st[7, k] = 0.0
            if st[6, k] == 1.0:
                y0 = img[t, 0, k]
                img[t, 0, k] = img[t, 1, k]
                img[t, 1, k] = y0
    n_sw = 0
    for k in range(n_bins):
        if st[6, k] == 1.0:
            n_sw += 1
    frames[0] = n_steady
    frames[1] = n_sw
