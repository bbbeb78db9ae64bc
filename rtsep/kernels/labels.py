"""Which output is the voice: a decision on speech evidence, held against flapping.

The evidence (:mod:`rtsep.kernels.evidence`) gives each output a syllabic
modulation (dB) and a level at the reference mic (dB), and, where the
detector is installed, a speech probability (:mod:`rtsep.vad`). The rule:

- **speech against music, noise or babble**: the output in which the
  detector hears speech ``p.vad_ratio`` times more often;
- **two talkers** (the detector hears speech in both alike, or without it
  both modulate like speech, ≥ ``p.speech_db``; and they modulate within
  ``p.tie_db`` of each other): the voice is the **near talker**: in a room
  (fd) the one whose path to the mics is most like a single delay (direct
  sound over reverberation, read off the demixers) — only a tie-breaker: an
  output that is louder, more syllabic and heard as speech as often takes
  the first decision, and a settled label does not leave it on the direct
  path alone — else the one louder at the reference mic when it speaks;
- otherwise the output with the stronger 2-8 Hz syllabic modulation (music
  and noise modulate less);
- from ``p.guess_frames`` frames of evidence on the label follows the
  current leader at once (provisional guesses); the first decision is taken
  once, after ``p.first_frames`` frames, one output leads by its margin (the
  evidence of the first second, while the demixer still converges, is often
  a tie), or at the latest after ``p.settle_frames`` frames, outright;
  neither counts as a move; afterwards a challenger must lead by its margin
  for ``p.hold_frames`` frames in a row (seconds: a talker's pause does not
  move the label), and every move is counted.

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
    guess_frames : int
        Evidence frames from which, until the first decision, the label
        follows the current evidence leader at once (provisional guesses,
        not counted as moves).
    first_frames : int
        Evidence frames before the first decision.
    settle_frames : int
        Evidence frames after which the first decision is taken even without a clear lead.
    hold_frames : int
        Frames a challenger's lead must last, unbroken, before the label moves.
    mod_margin : float
        Modulation lead (dB) a challenger needs (speech against non-speech).
    speech_db : float
        Modulation (dB) from which an output counts as a talker.
    tie_db : float
        Two talkers modulate within this (dB) of each other.
    level_margin : float
        Level lead (dB) a challenger talker needs over the current one.
    pinned : int
        ≥ 0: the voice is pinned to that output; -1: automatic.
    use_vad : bool
        Whether the speech probabilities are evidence (the detector runs).
    vad_speech : float
        Mean speech probability from which an output counts as speech.
    vad_ratio : float
        How many times more probable speech must be in one output than in the
        other for the detector to decide between them.
    use_near : bool
        Whether the direct-path regularity tells two talkers apart (fd), not their level.
    near_margin : float
        Direct-path regularity lead a challenger talker needs.
    """

    guess_frames: int
    first_frames: int
    settle_frames: int
    hold_frames: int
    mod_margin: float
    speech_db: float
    tie_db: float
    level_margin: float
    pinned: int
    use_vad: bool
    vad_speech: float
    vad_ratio: float
    use_near: bool
    near_margin: float


@njit(cache=True)
def _by_vad(st, p: LabelParams, c: int, cur: int) -> bool:
    """Whether the detector decides between outputs ``c`` and ``cur``: it hears speech in one far more.

    Each 32 ms chunk is judged alone, so a talker's mean probability is only
    0.1-0.5 (lower in reverberant rooms) while music, noise and babble stay
    at 0.0-0.15: the ratio, not a level, says which one is speech.
    """
    if not p.use_vad:
        return False
    hi = max(st.speech[c], st.speech[cur])
    lo = min(st.speech[c], st.speech[cur])
    return hi >= p.vad_speech and hi >= p.vad_ratio * lo


@njit(cache=True)
def _talkers(st, p: LabelParams, c: int, cur: int) -> bool:
    """Whether outputs ``c`` and ``cur`` are both talkers (babble, music and noise are not).

    Both must modulate alike (within ``p.tie_db``): an output whose syllabic
    modulation has collapsed while its (slower) speech probability still
    remembers a talker has lost that talker to the other output.
    """
    if abs(modulation_db(st, c) - modulation_db(st, cur)) >= p.tie_db:
        return False
    if p.use_vad:
        return min(st.speech[c], st.speech[cur]) >= p.vad_speech and not _by_vad(st, p, c, cur)
    return modulation_db(st, c) >= p.speech_db and modulation_db(st, cur) >= p.speech_db


@njit(cache=True)
def _order(a: float, b: float) -> int:
    """1 if a > b, -1 if a < b, 0 if equal."""
    # not (a > b) - (a < b): without the JIT numpy scalars give numpy bools, which do not subtract
    if a > b:
        return 1
    return -1 if a < b else 0


@njit(cache=True)
def _other_cues(st, p: LabelParams, c: int, cur: int) -> int:
    """1 if output ``c`` leads ``cur`` on level, modulation and (with the detector) speech; -1 if it trails on all; else 0."""
    votes = _order(level_db(st, c), level_db(st, cur)) + _order(modulation_db(st, c), modulation_db(st, cur))
    n = 2
    if p.use_vad:
        votes += _order(st.speech[c], st.speech[cur])
        n = 3
    if votes == n:
        return 1
    if votes == -n:
        return -1
    return 0


@njit(cache=True)
def _margin(st, p: LabelParams, c: int, cur: int) -> float:
    """The lead output ``c`` needs over ``cur`` (in the units of the rule that applies)."""
    if _by_vad(st, p, c, cur):
        return (p.vad_ratio - 1.0) * st.speech[cur]
    if _talkers(st, p, c, cur):
        return p.near_margin if p.use_near else p.level_margin
    return p.mod_margin


@njit(cache=True)
def _lead(st, p: LabelParams, c: int, cur: int, moving: bool = False) -> float:
    """How far output ``c`` leads output ``cur`` beyond its margin (> 0: it wins).

    ``moving``: a settled label does not move to a "near talker" the detector
    hears as speech far less often (half as often) than the current voice: in
    a room that separates poorly the music's output carries enough of the
    talker to look like a second talker, and music sits where it was mixed,
    often with the cleaner direct path.
    """
    if _by_vad(st, p, c, cur):
        return st.speech[c] - p.vad_ratio * st.speech[cur]
    if _talkers(st, p, c, cur):
        if moving and p.use_vad and st.speech[cur] > 1.5 * st.speech[c]:
            return -1.0
        if p.use_near:
            # The direct path read off the demixers is the noisiest cue: when
            # every other one names the same output (louder at the reference
            # mic, more syllabic, heard as speech as often), that output wins.
            # A far talker's path scored higher from 16 s in a voice-call room
            # at SIR 5 dB (1 against 2 m) and moved a settled label; a pink
            # noise source's (its output heard as speech 0.09 of the time, the
            # voice's leakage) took the first decision in another room.
            agree = _other_cues(st, p, c, cur)
            if agree < 0:
                return -1.0
            if agree > 0 and not moving:
                # (a settled label still needs the direct path to move: moves are costly)
                return 1.0
            return st.near[c] - st.near[cur] - p.near_margin
        return level_db(st, c) - level_db(st, cur) - p.level_margin
    return modulation_db(st, c) - modulation_db(st, cur) - p.mod_margin


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
    if st.frames < min(p.guess_frames, p.first_frames):
        return
    q = st.level.shape[0]
    cur = lab[0]
    if st.decided == 0:
        # which output starts as the voice is arbitrary, so the first decision
        # is not a move: the output that beats every other by the same rule
        # that moves the label later, without its margins
        best = 0
        for k in range(1, q):
            if _lead(st, p, k, best) + _margin(st, p, k, best) > 0.0:
                best = k
        clear = True
        for k in range(q):
            if k != best and _lead(st, p, best, k) <= 0.0:
                clear = False
        if st.frames >= p.first_frames and (clear or st.frames >= p.settle_frames):
            st.decided = 1
        if best != cur:
            _move(lab, best)  # the decision, or a provisional guess before it
        return
    best = -1
    top = 0.0
    for k in range(q):
        if k != cur:
            d = _lead(st, p, k, cur, True)
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
def restart_evidence(st) -> None:
    """Weigh the evidence so far as little after the demixer restarted on a changed scene.

    Its outputs may now hold the sources in the other order, so the new
    outputs must soon outweigh the old evidence; but right after a restart
    (often a false alarm, the outputs in their old order) the demixer is
    still rough, so the old evidence keeps the weight of about half a second
    of frames and two detector readings instead of being forgotten.
    """
    st.frames = min(st.frames, 31.0)
    st.speech_n = min(st.speech_n, 2.0)
    st.lead = 0


@njit(cache=True)
def crossfade_weight(lab: np.ndarray, xfade_samples: int) -> float:
    """Weight of the new voice output (0 → 1 across the crossfade) at the current sample."""
    if xfade_samples <= 0 or lab[3] >= xfade_samples:
        return 1.0
    return (lab[3] + 1.0) / (xfade_samples + 1.0)


@njit(cache=True)
def observe(st, z: np.ndarray, e_band: np.ndarray, e_all: np.ndarray, ep: EvidenceParams, lp: LabelParams,
            lab: np.ndarray, y: np.ndarray, evidence: bool, frame_end: bool) -> None:
    """Feed one sample of every output image to the evidence and, at a frame's end, to the decision.

    Parameters
    ----------
    st : record
        Evidence and decision state.
    z, e_band, e_all : ndarray
        Its fields ``st.z``, ``st.e_band``, ``st.e_all`` (see :func:`evidence_sample`).
    ep, lp : EvidenceParams, LabelParams
    lab : ndarray, shape (4,), int64
        Selection state, updated in place.
    y : ndarray, shape (Q,)
        This sample of each output's image at the reference mic.
    evidence : bool
        False when this sample is not evidence (outputs not separated yet, a
        faulty input): the frame holding it counts for nothing.
    frame_end : bool
        Whether this sample ends an evidence frame (absolute index + 1 a
        multiple of ``ep.frame``).
    """
    if not evidence:
        st.spoiled = 1
    evidence_sample(z, e_band, e_all, ep, y)
    if frame_end:
        good = st.spoiled == 0
        evidence_frame(st, ep, good)
        st.spoiled = 0
        if good or lp.pinned >= 0:
            decide_label(st, lp, lab)


@njit(cache=True, nogil=True)
def label_block(img: np.ndarray, raw: np.ndarray, ref: np.ndarray, s0: int, learned: np.ndarray,
                near: np.ndarray, period: int, lst: np.ndarray,
                ep: EvidenceParams, lp: LabelParams, lab: np.ndarray, xfade: int, voice: np.ndarray,
                background: np.ndarray, i0: int, i1: int) -> None:
    """Label rows ``i0 .. i1 - 1`` of a block of output images: evidence, decision, click-free crossfade.

    Parameters
    ----------
    img : ndarray, shape (n, Q), float64
        Each output's image at the reference mic, for the absolute samples
        ``s0 .. s0 + n - 1``, as the user hears it (after a post-filter).
    raw : ndarray, shape (n, Q), float64
        The same images before any post-filter (``img`` itself when there is
        none). The label's evidence and the background come from these: the
        background is the mic minus the raw voice, so what a post-filter
        takes from the voice is dropped, not handed to the background, and
        the post-filter changes nothing but the voice output.
    ref : ndarray, shape (n,), float64
        The reference microphone at the same samples.
    s0 : int
        Absolute index of the first sample (negative: before the stream).
    learned : ndarray, shape (n // period,), int64
        Per ``period`` samples: 0 the outputs are not separated yet (not
        evidence: an unseparated start's silent second output would look
        like anything); 1 separated; 2 separated, but the input was faulty
        or the outputs still overlap-add frames demixed before the demixers
        jumped (the first estimate, a restart): not evidence either.
    near : ndarray, shape (n // period, Q), float64
        Per ``period`` samples: each output's direct-path regularity (see
        :func:`rtsep.kernels.iva.direct_path_regularity`; used when ``lp.use_near``).
    period : int
        Samples per entry of ``learned`` and ``near``.
    lst : recarray, shape (1,)
        Evidence and decision state (:func:`rtsep.kernels.evidence.new_state`).
    ep, lp : EvidenceParams, LabelParams
    lab : ndarray, shape (4,), int64
        Selection state (module docstring), updated in place.
    xfade : int
        Crossfade length (samples) when the label moves.
    voice, background : ndarray, shape (n,), float64
        Written; zero before the stream starts. ``background`` is the
        reference mic minus the raw voice: without a post-filter the two
        sum to the input.
    i0, i1 : int
        The rows to label (the engine cuts a block where the speech detector
        reads a chunk, see :meth:`rtsep.vad.VadEvidence.cuts`).
    """
    st = lst[0]
    st_near = st.near
    z = st.z
    e_band = st.e_band
    e_all = st.e_all
    for i in range(i0, i1):
        if s0 + i < 0:
            voice[i] = 0.0
            background[i] = 0.0
            continue
        f = i // period
        for k in range(near.shape[1]):
            st_near[k] = near[f, k]
        # the evidence is read before any post-filter: the label is the separation's
        observe(st, z, e_band, e_all, ep, lp, lab, raw[i], learned[f] == 1, (s0 + i + 1) % ep.frame == 0)
        wgt = crossfade_weight(lab, xfade)
        voice[i] = wgt * img[i, lab[0]] + (1.0 - wgt) * img[i, lab[1]]
        background[i] = ref[i] - (wgt * raw[i, lab[0]] + (1.0 - wgt) * raw[i, lab[1]])
        if lab[3] < xfade:
            lab[3] += 1
