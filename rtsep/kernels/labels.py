"""Which output is the voice: a decision on speech evidence, held against flapping.

The evidence (:mod:`rtsep.kernels.evidence`) gives each output a syllabic
modulation (dB) and a level at the reference mic (dB). The rule:

- **speech against anything else**: the output with the stronger 2-8 Hz
  modulation is the voice (music, noise, babble and café modulate far less);
- **two talkers** (both outputs modulate like speech, within ``p.tie_db`` of
  each other): the voice is the **near talker**, the one louder at the
  reference mic;
- the first decision is taken outright after ``p.first_frames`` frames of
  evidence; afterwards a challenger must lead by its margin for
  ``p.hold_frames`` frames in a row (seconds: a talker's pause does not move
  the label), and every move is counted.

The selection state is an int64 array ``lab`` of length 4, shared with the
engines' crossfades:

- ``lab[0]`` voice output index now,
- ``lab[1]`` voice output index before the last move,
- ``lab[2]`` label moves so far (the first decision is not a move),
- ``lab[3]`` samples elapsed in the crossfade from ``lab[1]`` to ``lab[0]``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .evidence import EvidenceParams, evidence_frame, evidence_sample, level_db, modulation_db


class LabelParams(NamedTuple):
    """Parameters of the label decision (built by :func:`rtsep.labeling.label_params`).

    Attributes
    ----------
    first_frames : int
        Evidence frames before the first decision.
    hold_frames : int
        Frames a challenger's lead must last, unbroken, before the label moves.
    mod_margin : float
        Modulation lead (dB) a challenger needs (speech against non-speech).
    speech_db : float
        Modulation (dB) from which an output counts as a talker.
    tie_db : float
        Two talkers' modulations within this (dB) are a tie, decided by level.
    level_margin : float
        Level lead (dB) a challenger talker needs over the current one.
    pinned : int
        ≥ 0: the voice is pinned to that output; -1: automatic.
    """

    first_frames: int
    hold_frames: int
    mod_margin: float
    speech_db: float
    tie_db: float
    level_margin: float
    pinned: int


@njit(cache=True)
def _lead(st, p: LabelParams, c: int, cur: int) -> float:
    """How far output ``c`` leads output ``cur`` beyond its margin (> 0: it wins)."""
    mc = modulation_db(st, c)
    mk = modulation_db(st, cur)
    if mc >= p.speech_db and mk >= p.speech_db and abs(mc - mk) < p.tie_db:
        return level_db(st, c) - level_db(st, cur) - p.level_margin
    return mc - mk - p.mod_margin


@njit(cache=True)
def _move(lab: np.ndarray, best: int) -> None:
    lab[1] = lab[0]
    lab[0] = best
    lab[3] = 0


@njit(cache=True)
def decide_label(st, p: LabelParams, lab: np.ndarray) -> None:
    """Advance the decision by one evidence frame (see the module docstring).

    Parameters
    ----------
    st : record
        Evidence state (:func:`rtsep.kernels.evidence.new_state`), with the
        decision's own fields ``decided`` and ``lead``.
    p : LabelParams
    lab : ndarray, shape (4,), int64
        Selection state, updated in place.
    """
    if p.pinned >= 0:
        if lab[0] != p.pinned:
            _move(lab, p.pinned)
        return
    if st.frames < p.first_frames:
        return
    q = st.level.shape[0]
    cur = lab[0]
    if st.decided == 0:
        # which output starts as the voice is arbitrary: the first decision
        # needs no margin; among the talkers the loudest, else the most modulated
        best = -1
        for k in range(q):
            if modulation_db(st, k) >= p.speech_db and (best < 0 or level_db(st, k) > level_db(st, best)):
                best = k
        if best < 0:
            best = 0
            for k in range(q):
                if modulation_db(st, k) > modulation_db(st, best):
                    best = k
        st.decided = 1
        if best != cur:
            _move(lab, best)
        return
    best = -1
    top = 0.0
    for k in range(q):
        if k != cur:
            d = _lead(st, p, k, cur)
            if d > top:
                top = d
                best = k
    if best < 0:
        # the lead must be unbroken: a challenger that wins now and then
        # (two talkers taking turns) is not sustained evidence
        st.lead = 0
        return
    st.lead += 1
    if st.lead >= p.hold_frames:
        st.lead = 0
        lab[2] += 1
        _move(lab, best)


@njit(cache=True)
def crossfade_weight(lab: np.ndarray, xfade_samples: int) -> float:
    """Weight of the new voice output (0 → 1 across the crossfade) at the current sample."""
    if xfade_samples <= 0 or lab[3] >= xfade_samples:
        return 1.0
    return (lab[3] + 1.0) / (xfade_samples + 1.0)


@njit(cache=True)
def observe(st, ep: EvidenceParams, lp: LabelParams, lab: np.ndarray, y: np.ndarray, evidence: bool) -> None:
    """Feed one sample of every output image to the evidence and, per frame, to the decision.

    Parameters
    ----------
    st : record
        Evidence and decision state.
    ep, lp : EvidenceParams, LabelParams
    lab : ndarray, shape (4,), int64
        Selection state, updated in place.
    y : ndarray, shape (Q,)
        This sample of each output's image at the reference mic.
    evidence : bool
        False when this sample is not evidence (outputs not separated yet, a
        faulty input): the frame holding it counts for nothing.
    """
    if not evidence:
        st.spoiled = 1
    if evidence_sample(st, ep, y):
        good = st.spoiled == 0
        evidence_frame(st, ep, good)
        st.spoiled = 0
        if good or lp.pinned >= 0:
            decide_label(st, lp, lab)


@njit(cache=True, nogil=True)
def label_block(img: np.ndarray, ref: np.ndarray, s0: int, learned: np.ndarray, period: int, lst: np.ndarray,
                ep: EvidenceParams, lp: LabelParams, lab: np.ndarray, xfade: int, voice: np.ndarray,
                background: np.ndarray) -> None:
    """Label a block of output images: evidence, decision, click-free crossfade.

    Parameters
    ----------
    img : ndarray, shape (n, Q), float64
        Each output's image at the reference mic, for the absolute samples
        ``s0 .. s0 + n - 1``.
    ref : ndarray, shape (n,), float64
        The reference microphone at the same samples.
    s0 : int
        Absolute index of the first sample (negative: before the stream).
    learned : ndarray, shape (n // period,), int64
        Per ``period`` samples: 0 the outputs are not separated yet (not
        evidence: an unseparated start's silent second output would look
        like anything); 1 separated; 2 separated, but the input was faulty.
    period : int
        Samples per entry of ``learned``.
    lst : recarray, shape (1,)
        Evidence and decision state (:func:`rtsep.kernels.evidence.new_state`).
    ep, lp : EvidenceParams, LabelParams
    lab : ndarray, shape (4,), int64
        Selection state (module docstring), updated in place.
    xfade : int
        Crossfade length (samples) when the label moves.
    voice, background : ndarray, shape (n,), float64
        Written; zero before the stream starts. ``background`` is the
        reference mic minus ``voice``, so the two always sum to the input.
    """
    st = lst[0]
    for i in range(img.shape[0]):
        if s0 + i < 0:
            voice[i] = 0.0
            background[i] = 0.0
            continue
        observe(st, ep, lp, lab, img[i], learned[i // period] == 1)
        wgt = crossfade_weight(lab, xfade)
        v = wgt * img[i, lab[0]] + (1.0 - wgt) * img[i, lab[1]]
        if lab[3] < xfade:
            lab[3] += 1
        voice[i] = v
        background[i] = ref[i] - v
