"""The time-domain engine's per-sample loop (DESIGN §2), fused into one kernel.

Per sample: DC-removal high-pass → output with the current (interpolated)
projection-back weights → running covariance and 4th moments. Every K
samples of the *absolute* sample count: whitening by PCA → 4th cumulants of
the demixed outputs → Jacobi/Newton rotation update → projection back to the
reference mic → voice label. Everything the loop remembers is in the arrays
passed in, so any cutting of the stream into blocks gives the same samples.

State (owned by :class:`rtsep.engines.td.TimeDomainEngine`):

- ``hp`` (M, 2): high-pass memory, previous input and output per mic;
- ``cov`` (M, M): running covariance (upper triangle); ``m4`` (P,): running
  distinct 4th moments; ``cov_f``, ``m4_f``: the same with a short memory,
  for the change detector;
- ``v`` (Q, M) whitening, ``rot`` (Q, Q) rotation, ``w`` (Q, M) per-output
  projection-back weights (output k = ``w[k] @ x``);
- ``wv``, ``dv`` (M,): voice weights now and their per-sample increment;
- ``kurt`` (Q,): excess kurtosis of each output; ``lab`` (4,): label state
  (see :mod:`rtsep.kernels.labels`);
- ``state`` (1,) record of :data:`COUNTERS` (read as ``st = state[0]``,
  ``st.window_samples``): the loop's counters and schedules;
- ``repeats`` (M,) int64: per mic, how many times in a row its raw value
  repeated (capped: the stuck-mic test); ``pw`` (M,): short-term power of
  each DC-free mic (the dead-mic test).

Parameters are one :data:`PARAMS` record and the scratch space one
flat buffer seen as a :class:`TdScratch` tuple of views: both read by name.
The voice label's own state and parameters are named records too
(:mod:`rtsep.kernels.labels`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .ica import (best_pair_angle, jacobi_sweep, mode_product4, orthonormalise_rows, pair_kurtoses,
                  subtract_gaussian_part)
from .evidence import EvidenceParams
from .labels import LabelParams, observe, restart_evidence
from .moments import accumulate_moments, expand_quartic, forgetting_weight, symmetric_from_upper
from .records import new_record, zeroed_state
from .whitening import small_inverse, whitening_matrix

#: Below this covariance trace (power ~ −1000 dBFS) the moments are reset to
#: exact zeros: long digital silence would otherwise decay them into
#: denormal numbers, which are ~100× slower to compute with.
_UNDERFLOW_TRACE = 1e-100
#: Below this trace there is too little signal to estimate anything: keep
#: the previous separation (−200 dBFS).
_SILENT_TRACE = 1e-20
#: A separated image may not be more than this many times (6 dB) as powerful
#: as the reference mic it is an image at.
_MAX_IMAGE_POWER = 4.0
#: Largest gain of any mic in an output (40 dB). Projection-back weights of a
#: mixing of condition number c are at most about c, so this admits mixings
#: up to c ≈ 100 and stops a degenerate (rank-deficient) estimate.
_MAX_WEIGHT = 100.0


#: Parameters of the td loop in the kernel's units (fields of the ``params``
#: record, built by :class:`rtsep.engines.td.TimeDomainEngine`). A record, not
#: a NamedTuple like the label's: numba types a record array's argument in C on
#: every call, a NamedTuple of twenty fields in Python (~1.5 µs a block).
PARAMS = np.dtype([
    ("beta", "f8"),                  # 1 − λ of the long memory (covariance and 4th moments)
    ("highpass", "f8"),              # coefficient of the one-pole DC-removal high-pass
    ("eps_rel", "f8"),               # whitening regularisation, relative to the largest eigenvalue
    ("beta_short", "f8"),            # 1 − λ of the short memory the change detector reads
    ("change_threshold", "f8"),      # rotation (radians) of the short-memory optimum that means a change
    ("outlier_sigma", "f8"),         # radius (σ, whitened) beyond which a sample is shrunk; 0: off
    ("change_min_gain", "f8"),       # least absolute contrast gain of a change
    ("beta_power", "f8"),            # 1 − λ of each mic's short-term power (the dead-mic test)
    ("dead_ratio", "f8"),            # a mic below this times another's power is dead; 0: off
    ("update_every", "i8"),          # K: samples between updates (on the absolute sample count)
    ("ref_mic", "i8"),               # the mic the outputs are images at
    ("crossfade", "i8"),             # samples a move of the voice label is crossfaded over
    ("global_search_every", "i8"),   # updates between searches of the whole circle of angles
    ("warmup", "i8"),                # samples learnt from before the outputs are used
    ("change_hold", "i8"),           # samples a change must be seen for before the memory restarts
    ("short_memory", "i8"),          # length of the short memory (samples); the detector waits for 2x
    ("change_detector", "?"),        # whether the change detector runs
    ("stuck_run", "i8"),             # repeats of one raw value that make a mic stuck; 0: off
    ("fault_hang", "i8"),            # samples not learnt from after a fault (the high-pass's ring-out)
    ("label_guess", "i8"),           # samples learnt from before the kurtosis guess of the voice
])


def new_params(**fields: float) -> np.ndarray:
    """The ``params`` record from every field of :data:`PARAMS`, for :func:`td_process`."""
    return new_record(PARAMS, **fields)


#: The td loop's counters and schedules (int64 fields of the ``state`` record).
COUNTERS = np.dtype([
    ("samples", "i8"),           # samples seen (the absolute index the schedules run on)
    ("updates", "i8"),           # updates done
    ("silent_updates", "i8"),    # updates skipped: too little signal
    ("global_searches", "i8"),   # updates that searched the whole circle of angles
    ("refused_updates", "i8"),   # projection-back weights refused by the runaway-gain guard
    ("window_samples", "i8"),    # samples learnt from in the long memory's (growing) window
    ("change_seen", "i8"),       # samples the change detector has seen a change for
    ("changes", "i8"),           # changes of mixing detected
    ("forced_searches", "i8"),   # global angle searches still due after a change
    ("outliers_shrunk", "i8"),   # samples whose weight in the statistics was shrunk
    ("stuck_skipped", "i8"),     # samples not learnt from: a mic stuck on one value (and the hang-over)
    ("dead_skipped", "i8"),      # samples not learnt from: a dead mic
    ("hang_left", "i8"),         # samples of fault hang-over still to skip
    ("voice_guessed", "i8"),     # 1 once the kurtosis guess of the voice is taken
])


def new_counters() -> np.recarray:
    """Zeroed :data:`COUNTERS` for a new stream (:func:`~rtsep.kernels.records.zeroed_state`)."""
    return zeroed_state(COUNTERS)


class TdScratch(NamedTuple):
    """Scratch arrays of the td loop, views into one flat buffer (:func:`scratch_views`); M mics, Q outputs."""

    x_dc: np.ndarray          # (M,) one DC-free sample
    cov_full: np.ndarray      # (M, M) the running covariance, both triangles
    cov_f_full: np.ndarray    # (M, M) the short-memory covariance, both triangles
    v_new: np.ndarray         # (Q, M) the whitening being computed
    evals: np.ndarray         # (M,) eigenvalues of the covariance
    evecs: np.ndarray         # (M, M) its eigenvectors
    work_mm: np.ndarray       # (M, M) whitening scratch
    work_qq: np.ndarray       # (Q, Q) whitening scratch, then the inverse of ``cov_y``
    work_qq2: np.ndarray      # (Q, Q) scratch
    work_qq3: np.ndarray      # (Q, Q) scratch
    demix: np.ndarray         # (Q, M) total demixer D = R V
    weights: np.ndarray       # (Q, M) projection-back weights being computed (and D C scratch)
    m4_full: np.ndarray       # (M, M, M, M) the 4th moments as a full tensor
    cum: np.ndarray           # (Q, Q, Q, Q) 4th cumulants of the outputs
    mode1: np.ndarray         # (Q, M, M, M) the mode products on the way to ``cum``
    mode2: np.ndarray         # (Q, Q, M, M)
    mode3: np.ndarray         # (Q, Q, Q, M)
    cov_y: np.ndarray         # (Q, Q) covariance of the outputs
    cov_yf: np.ndarray        # (Q, Q) short-memory covariance of the outputs
    mixing: np.ndarray        # (M, Q) the mixing estimate C Dᵀ
    coef: np.ndarray          # (5,) the pair contrast's polynomial


def scratch_size(m: int, q: int) -> int:
    """Floats in the flat scratch buffer of M mics and Q outputs (the sizes of :class:`TdScratch`)."""
    return (2 * m + 5 + 4 * m * m + 3 * q * m + 5 * q * q + m * q + m ** 4 + q ** 4 + q * m ** 3
            + q * q * m * m + q ** 3 * m)


def new_scratch(m: int, q: int) -> np.ndarray:
    """The zeroed flat scratch buffer, shape (:func:`scratch_size`,), float64."""
    return np.zeros(scratch_size(m, q))


@njit(cache=True)
def _take(buf: np.ndarray, start: int, shape: tuple) -> tuple:
    n = 1
    for k in shape:
        n *= k
    return buf[start:start + n].reshape(shape), start + n


@njit(cache=True)
def scratch_views(buf: np.ndarray, m: int, q: int) -> TdScratch:
    """The named scratch arrays as views into ``buf`` (from :func:`new_scratch`).

    One flat array crosses into the kernel, not a tuple of twenty: numba
    types a tuple's arrays one by one on every call, a few µs a block.
    """
    x_dc, o = _take(buf, 0, (m,))
    cov_full, o = _take(buf, o, (m, m))
    cov_f_full, o = _take(buf, o, (m, m))
    v_new, o = _take(buf, o, (q, m))
    evals, o = _take(buf, o, (m,))
    evecs, o = _take(buf, o, (m, m))
    work_mm, o = _take(buf, o, (m, m))
    work_qq, o = _take(buf, o, (q, q))
    work_qq2, o = _take(buf, o, (q, q))
    work_qq3, o = _take(buf, o, (q, q))
    demix, o = _take(buf, o, (q, m))
    weights, o = _take(buf, o, (q, m))
    m4_full, o = _take(buf, o, (m, m, m, m))
    cum, o = _take(buf, o, (q, q, q, q))
    mode1, o = _take(buf, o, (q, m, m, m))
    mode2, o = _take(buf, o, (q, q, m, m))
    mode3, o = _take(buf, o, (q, q, q, m))
    cov_y, o = _take(buf, o, (q, q))
    cov_yf, o = _take(buf, o, (q, q))
    mixing, o = _take(buf, o, (m, q))
    coef, o = _take(buf, o, (5,))
    if o != buf.shape[0]:
        raise ValueError("td scratch buffer of the wrong size (see scratch_size)")
    return TdScratch(x_dc, cov_full, cov_f_full, v_new, evals, evecs, work_mm, work_qq, work_qq2, work_qq3,
                     demix, weights, m4_full, cum, mode1, mode2, mode3, cov_y, cov_yf, mixing, coef)


@njit(cache=True)
def _matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            acc = 0.0
            for k in range(a.shape[1]):
                acc += a[i, k] * b[k, j]
            out[i, j] = acc


@njit(cache=True)
def _sandwich(d: np.ndarray, c: np.ndarray, tmp: np.ndarray, out: np.ndarray) -> None:
    """out = d @ c @ d.T (tmp has the shape of d)."""
    _matmul(d, c, tmp)
    q = d.shape[0]
    m = d.shape[1]
    for a in range(q):
        for b in range(q):
            acc = 0.0
            for k in range(m):
                acc += tmp[a, k] * d[b, k]
            out[a, b] = acc


@njit(cache=True)
def _detect_change(cov: np.ndarray, m4: np.ndarray, cov_f: np.ndarray, m4_f: np.ndarray,
                   full_map: np.ndarray, st, p, ws: TdScratch) -> None:
    """Restart the long-memory statistics when the mixing has changed.

    Second-order statistics cannot tell (whitening re-decorrelates any
    mixture within its memory), so the test is 4th-order: on the
    short-memory cumulants of the current outputs (demixer ``ws.demix``),
    the best pair rotation should be ~0 when the demixer is right. If it is
    more than ``p.change_threshold`` radians (and raises the contrast by a
    fifth and by at least ``p.change_min_gain``), for the hold time, the
    long-memory moments are replaced by the short-memory ones and the
    growing window restarts there, so the old scene is forgotten at once.
    """
    if not p.change_detector or st.window_samples < 2 * p.short_memory:
        return
    m = cov.shape[0]
    d = ws.demix
    q = d.shape[0]
    cyf = ws.cov_yf
    cum = ws.cum
    symmetric_from_upper(cov_f, ws.cov_f_full)
    _sandwich(d, ws.cov_f_full, ws.weights, cyf)
    expand_quartic(m4_f, full_map, ws.m4_full)
    mode_product4(ws.m4_full, d, cum, ws.mode1, ws.mode2, ws.mode3)
    subtract_gaussian_part(cum, cyf)
    worst = 0.0
    for a in range(q - 1):
        for r in range(a + 1, q):
            sp = cyf[a, a]
            sr = cyf[r, r]
            if sp <= 0.0 or sr <= 0.0:
                continue
            k0 = cum[a, a, a, a] / (sp * sp)
            k1 = cum[a, a, a, r] / (sp * np.sqrt(sp * sr))
            k2 = cum[a, a, r, r] / (sp * sr)
            k3 = cum[a, r, r, r] / (sr * np.sqrt(sp * sr))
            k4 = cum[r, r, r, r] / (sr * sr)
            phi = best_pair_angle(k0, k1, k2, k3, k4, True, ws.coef)
            j0 = k0 * k0 + k4 * k4
            ka, kr = pair_kurtoses(k0, k1, k2, k3, k4, phi)
            # the gain must be both relative (a fifth) and absolute: when the
            # short window holds little non-Gaussianity (a talker's quiet
            # stretch over music) its cumulants are mostly estimation noise,
            # whose best angle is anything; a real change of mixing raises
            # the contrast by ≥ 1 there (measured), noise by < 0.05
            if ka * ka + kr * kr > 1.2 * j0 + p.change_min_gain:
                worst = max(worst, abs(phi))
    if worst > p.change_threshold:
        st.change_seen += p.update_every
        if st.change_seen >= p.change_hold:
            for i in range(m):
                for j in range(m):
                    cov[i, j] = cov_f[i, j]
            for i in range(m4.shape[0]):
                m4[i] = m4_f[i]
            st.window_samples = p.short_memory
            st.change_seen = 0
            st.changes += 1
            st.forced_searches = 16  # search the whole circle of angles for the next updates
    else:
        st.change_seen = max(0, st.change_seen - p.update_every)


@njit(cache=True)
def td_update(cov: np.ndarray, m4: np.ndarray, cov_f: np.ndarray, m4_f: np.ndarray,
              full_map: np.ndarray, v: np.ndarray, rot: np.ndarray, w: np.ndarray,
              wv: np.ndarray, dv: np.ndarray, kurt: np.ndarray, lab: np.ndarray,
              st, p, ws: TdScratch, pinned: int, decided: int) -> None:
    """Recompute whitening, rotation, projection-back weights and the voice weights.

    Called by :func:`td_process` every ``p.update_every`` samples; the
    arrays are the state described in the module docstring, ``st`` its
    :data:`COUNTERS` record, ``p`` the :data:`PARAMS` record, ``ws`` the
    scratch space; ``pinned`` the output the
    voice is pinned to (-1: none) and ``decided`` 1 once the speech evidence
    has taken its first decision.
    """
    m = cov.shape[0]
    q = v.shape[0]
    k_upd = p.update_every
    ref = p.ref_mic
    cfull = ws.cov_full
    d = ws.demix
    cy = ws.cov_y
    cum = ws.cum
    cy_inv = ws.work_qq
    a = ws.mixing
    wk = ws.weights
    symmetric_from_upper(cov, cfull)
    tr = 0.0
    for i in range(m):
        tr += cfull[i, i]
    if tr < _SILENT_TRACE:
        if tr < _UNDERFLOW_TRACE:
            cov[:, :] = 0.0
            m4[:] = 0.0
        st.silent_updates += 1
        for i in range(m):
            dv[i] = 0.0
        return
    st.updates += 1
    whitening_matrix(cfull, p.eps_rel, v, ws.v_new, ws.evals, ws.evecs, ws.work_mm, ws.work_qq, ws.work_qq2,
                     ws.work_qq3)
    v[:, :] = ws.v_new
    _matmul(rot, v, d)
    expand_quartic(m4, full_map, ws.m4_full)
    mode_product4(ws.m4_full, d, cum, ws.mode1, ws.mode2, ws.mode3)
    _sandwich(d, cfull, wk, cy)
    subtract_gaussian_part(cum, cy)
    do_global = (st.updates % p.global_search_every) == 1 or p.global_search_every == 1 or st.forced_searches > 0
    if st.forced_searches > 0:
        st.forced_searches -= 1
    if do_global:
        st.global_searches += 1
    jacobi_sweep(cum, cy, rot, do_global, ws.coef)
    orthonormalise_rows(rot)
    _matmul(rot, v, d)
    _sandwich(d, cfull, wk, cy)
    for k in range(q):
        kurt[k] = cum[k, k, k, k] / (cy[k, k] * cy[k, k] + 1e-300)
    # projection back: A = C Dᵀ (D C Dᵀ)⁻¹, the least-squares mixing estimate
    # (= D⁻¹ when Q = M); output k is source k's image at the reference mic.
    if small_inverse(cy, cy_inv, ws.work_qq2):
        for i in range(m):
            for j in range(q):
                acc = 0.0
                for k in range(m):
                    acc += cfull[i, k] * d[j, k]
                a[i, j] = acc
        # runaway-gain guard: no source image can carry much more power than
        # the reference mic itself; an estimate that claims so is a
        # degenerate rotation (few samples, near-rank-1 covariance) and is
        # not used.
        plausible = True
        for k in range(q):
            gain = 0.0
            for j in range(q):
                gain += a[ref, j] * cy_inv[j, k]
            for i in range(m):
                wk[k, i] = gain * d[k, i]
            pk = 0.0
            for i in range(m):
                for j in range(m):
                    pk += wk[k, i] * cfull[i, j] * wk[k, j]
            if not pk <= _MAX_IMAGE_POWER * cfull[ref, ref] + 1e-300:
                plausible = False
            for i in range(m):
                # a direction the covariance has no energy in (two identical
                # mics, a dead one) can get any gain without showing in pk;
                # it explodes when that direction comes alive again
                if not abs(wk[k, i]) <= _MAX_WEIGHT:
                    plausible = False
        if plausible:
            w[:, :] = wk
        else:
            st.refused_updates += 1
    _detect_change(cov, m4, cov_f, m4_f, full_map, st, p, ws)
    if st.voice_guessed == 0 and st.window_samples >= p.label_guess:
        # a first guess, until the speech evidence decides (label_first_s):
        # which output starts as the voice is arbitrary, so the more
        # kurtotic one takes it (starting from output 0 kept the background
        # as the voice for 0.3-2 s on the bench's mixtures: −7 dB whole-file)
        st.voice_guessed = 1
        if pinned < 0 and decided == 0:
            best = 0
            for k in range(q):
                if kurt[k] > kurt[best]:
                    best = k
            if best != lab[0]:
                lab[1] = lab[0]
                lab[0] = best
                lab[3] = 0
    xfade = p.crossfade
    if xfade > 0:
        alpha = min(1.0, (lab[3] + k_upd) / xfade)
    else:
        alpha = 1.0
    if lab[3] < 1 << 40:
        lab[3] += k_upd
    warming = st.window_samples < p.warmup  # samples learnt from: leading silence does not count
    for i in range(m):
        target = (1.0 - alpha) * w[lab[1], i] + alpha * w[lab[0], i]
        if warming:
            # the first estimates come from a few ms of audio, often of one
            # source only: pass the mic through until they mean something
            target = 1.0 if i == ref else 0.0
        dv[i] = (target - wv[i]) / k_upd


@njit(cache=True, nogil=True)
def td_process(x: np.ndarray, voice: np.ndarray, background: np.ndarray, z: np.ndarray,
               write_z: bool, hp: np.ndarray, cov: np.ndarray, m4: np.ndarray,
               cov_f: np.ndarray, m4_f: np.ndarray, idx4: np.ndarray, full_map: np.ndarray, v: np.ndarray,
               rot: np.ndarray, w: np.ndarray, wv: np.ndarray, dv: np.ndarray, kurt: np.ndarray,
               lab: np.ndarray, state: np.ndarray, repeats: np.ndarray, pw: np.ndarray,
               params: np.ndarray, scratch: np.ndarray, lst: np.ndarray,
               ep: EvidenceParams, lp: LabelParams, img: np.ndarray) -> None:
    """Separate a block sample by sample, carrying all state across calls.

    Parameters
    ----------
    x : ndarray, shape (n, M), float64
        Finite microphone samples.
    voice, background : ndarray, shape (n,), float64
        Out: voice and background at the reference mic; their sum is the
        DC-free reference mic, sample for sample.
    z : ndarray, shape (n, Q) (or (0, Q) when not wanted)
        Out: the whitened signals, if ``write_z``.
    write_z : bool
        Whether to fill ``z`` (diagnostics and tests).
    hp … pw
        State, see the module docstring (``state``: the :data:`COUNTERS`
        record, ``repeats`` and ``pw``: the fault gate's).
    params : ndarray, shape (1,)
        The :data:`PARAMS` record (from :func:`new_params`).
    scratch : ndarray, float64
        The flat scratch buffer (:func:`new_scratch`).
    lst, ep, lp : recarray (1,), EvidenceParams, LabelParams
        The voice label's state and parameters (:mod:`rtsep.kernels.labels`).
    img : ndarray, shape (n, Q)
        Out: every output's image at the reference mic (the label's evidence).
    """
    st = state[0]
    p = params[0]
    label = lst[0]
    label_z = label.z
    label_e_band = label.e_band
    label_e_all = label.e_all
    n = x.shape[0]
    m = x.shape[1]
    q = v.shape[0]
    ws = scratch_views(scratch, m, q)
    xf = ws.x_dc
    beta_min = p.beta
    a_hp = p.highpass
    k_upd = p.update_every
    ref = p.ref_mic
    beta_fast = p.beta_short
    clip2 = p.outlier_sigma * p.outlier_sigma
    detect = p.change_detector
    stuck_run = p.stuck_run
    fault_hang = p.fault_hang
    b_pw = p.beta_power
    dead_ratio = p.dead_ratio
    short_memory = p.short_memory
    warmup = p.warmup
    # the counters read every sample live in locals through the block and go
    # back to the record around each update and at the end: compiled, a
    # record field costs what a local does, but in the NUMBA_DISABLE_JIT
    # coverage pass reading one is ~20x slower than an array element
    samples = st.samples
    learnt = st.window_samples
    hang = st.hang_left
    for t in range(n):
        n_stuck = 0
        n_zero = 0
        pmax = 0.0
        pmin = np.inf
        for i in range(m):
            raw = x[t, i]
            # a mic repeating the exact same value (a dead or unplugged
            # channel's zeros, a stuck or clipped converter) is a fault
            if raw == hp[i, 0]:
                if repeats[i] < stuck_run:
                    repeats[i] += 1
            else:
                repeats[i] = 0
            if stuck_run > 0 and repeats[i] >= stuck_run:
                n_stuck += 1
                if raw == 0.0:
                    n_zero += 1
            y = a_hp * (hp[i, 1] + raw - hp[i, 0])
            hp[i, 0] = raw
            hp[i, 1] = y
            xf[i] = y
            pw[i] += b_pw * (y * y - pw[i])
            if pw[i] < 1e-250:
                pw[i] = 0.0  # no denormals in long digital silence
            pmax = max(pmax, pw[i])
            pmin = min(pmin, pw[i])
        # a mic whose short-term power has collapsed far below another's is
        # dead (no instantaneous mixing of two mics near each other does that)
        dead = pmin < dead_ratio * pmax
        acc = 0.0
        for i in range(m):
            wv[i] += dv[i]
            acc += wv[i] * xf[i]
        voice[t] = acc
        background[t] = xf[ref] - acc
        for k in range(q):
            s = 0.0
            for i in range(m):
                s += w[k, i] * xf[i]
            img[t, k] = s
        if write_z:
            for k in range(q):
                s = 0.0
                for i in range(m):
                    s += v[k, i] * xf[i]
                z[t, k] = s
        samples += 1
        # Faulty samples are not learnt from at all (like silence), so the
        # statistics are untouched when the fault ends; the hang-over covers
        # the high-pass's step response after a stuck block.
        if n_zero == m:
            # every mic at exactly zero is digital silence, not a fault:
            # nothing to learn, nothing to report (the hang-over still
            # covers the high-pass settling after it)
            hang = fault_hang
            learn = False
        elif n_stuck > 0 or dead:
            hang = fault_hang
            if n_stuck > 0:
                st.stuck_skipped += 1
            else:
                st.dead_skipped += 1
            learn = False
        elif hang > 0:
            hang -= 1
            st.stuck_skipped += 1
            learn = False
        else:
            learn = True
        if learn:
            learnt += 1
        if learn and clip2 > 0.0 and learnt > short_memory:
            # (from 0.5 s on: before, the whitening is too rough to judge and
            # shrinking there slowed the demo's convergence, 27 → 16 dB whole-file)
            # a click, a stuck block or a fault burst would dominate the 4th
            # moments for many memory lengths (its 4th power is 10⁴ times a
            # normal sample's); beyond clip σ in whitened units its
            # contribution to the statistics is shrunk to that radius
            r2 = 0.0
            for k in range(q):
                s = 0.0
                for i in range(m):
                    s += v[k, i] * xf[i]
                r2 += s * s
            if r2 > clip2:
                g = np.sqrt(clip2 / r2)
                for i in range(m):
                    xf[i] *= g
                st.outliers_shrunk += 1
        if learn:
            accumulate_moments(xf, forgetting_weight(learnt, beta_min), cov, m4, idx4)
            if detect:
                accumulate_moments(xf, forgetting_weight(learnt, beta_fast), cov_f, m4_f, idx4)
        # the label's evidence: every output's image, once the outputs are
        # separated and only from sound input
        observe(label, label_z, label_e_band, label_e_all, ep, lp, lab, img[t], learn and learnt >= warmup,
                samples % ep.frame == 0)
        if samples % k_upd == 0:
            st.samples = samples
            st.window_samples = learnt
            changes = st.changes
            td_update(cov, m4, cov_f, m4_f, full_map, v, rot, w, wv, dv, kurt, lab, st, p, ws, lp.pinned,
                      label.decided)
            learnt = st.window_samples  # a detected change restarts the window
            if st.changes != changes:
                restart_evidence(label)
    st.samples = samples
    st.window_samples = learnt
    st.hang_left = hang
