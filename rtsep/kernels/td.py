"""The time-domain engine's per-sample loop (DESIGN §2), fused into one kernel.

Per sample: DC-removal high-pass → output with the current (interpolated)
projection-back weights → running covariance and 4th moments. Every K
samples of the *absolute* sample count: whitening by PCA → 4th cumulants of
the demixed outputs → Jacobi/Newton rotation update → projection back to the
reference mic → voice label. Everything the loop remembers is in the arrays
passed in, so any cutting of the stream into blocks gives the same samples.

State layout (owned by :class:`rtsep.engines.td.TimeDomainEngine`):

- ``hp`` (M, 2): high-pass memory, previous input and output per mic;
- ``cov`` (M, M): running covariance (upper triangle); ``m4`` (P,): running
  distinct 4th moments; ``cov_f``, ``m4_f``: the same with a short memory,
  for the change detector;
- ``v`` (Q, M) whitening, ``rot`` (Q, Q) rotation, ``w`` (Q, M) per-output
  projection-back weights (output k = ``w[k] @ x``);
- ``wv``, ``dv`` (M,): voice weights now and their per-sample increment;
- ``kurt`` (Q,): excess kurtosis of each output; ``lab`` (4,): label state
  (see :mod:`rtsep.kernels.labels`);
- ``cnt`` (14,) int64: samples seen, updates, updates skipped for silence,
  global angle searches, weight updates refused by the runaway-gain guard,
  samples in the long-memory window, change-detector hold, changes
  detected, forced global searches left, outlier samples shrunk, samples
  not learnt from because a mic was stuck (repeating one value, plus the
  hang-over), samples not learnt from because a mic was dead, (unused),
  1 once the first kurtosis guess of the voice is taken;
- ``pw`` (M,): short-term power of each DC-free mic (the dead-mic test);
  ``flt`` (M+1,) int64: per mic, how many times in a row its raw value
  repeated (capped), then the fault hang-over samples left.

Parameters: ``prm`` float64 = (1−λ, high-pass coefficient, eps_rel, (unused), 1−λ of the short memory, change threshold, outlier radius in σ,
least contrast gain of a change, 1−λ of the short-term power, dead-mic power
ratio); ``iprm`` int64 = (K, reference mic, (unused), crossfade samples, (unused), global-search period in updates, warm-up samples,
change hold samples, short-memory length in samples, change detector
on/off, repeats that make a mic stuck (0: off), fault hang-over samples,
(unused), samples learnt from before the kurtosis guess of the voice).
The voice label's own state and parameters are named records
(:mod:`rtsep.kernels.labels`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .ica import (best_pair_angle, jacobi_sweep, mode_product4, orthonormalise_rows, pair_kurtoses,
                  subtract_gaussian_part)
from .evidence import EvidenceParams
from .labels import LabelParams, observe, restart_evidence
from .moments import accumulate_moments, expand_quartic, forgetting_weight, symmetric_from_upper
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
                   full_map: np.ndarray, d: np.ndarray, cnt: np.ndarray, prm: np.ndarray,
                   iprm: np.ndarray, ws: tuple) -> None:
    """Restart the long-memory statistics when the mixing has changed.

    Second-order statistics cannot tell (whitening re-decorrelates any
    mixture within its memory), so the test is 4th-order: on the
    short-memory cumulants of the current outputs, the best pair rotation
    should be ~0 when the demixer is right. If it is more than
    ``prm[5]`` radians (and raises the contrast by a fifth and by at least
    ``prm[7]``), for the hold time,
    the long-memory moments are replaced by the short-memory ones and the
    growing window restarts there, so the old scene is forgotten at once.
    """
    if iprm[9] == 0 or cnt[5] < 2 * iprm[8]:
        return
    (cfull, v_new, evals, evecs, wmm, wqq, wqq2, wqq3, _d, dtmp, m4full, cum, w1, w2, w3,
     cy, a, coef, cf_full, cyf) = ws
    m = cov.shape[0]
    q = d.shape[0]
    symmetric_from_upper(cov_f, cf_full)
    _sandwich(d, cf_full, dtmp, cyf)
    expand_quartic(m4_f, full_map, m4full)
    mode_product4(m4full, d, cum, w1, w2, w3)
    subtract_gaussian_part(cum, cyf)
    worst = 0.0
    for p in range(q - 1):
        for r in range(p + 1, q):
            sp = cyf[p, p]
            sr = cyf[r, r]
            if sp <= 0.0 or sr <= 0.0:
                continue
            k0 = cum[p, p, p, p] / (sp * sp)
            k1 = cum[p, p, p, r] / (sp * np.sqrt(sp * sr))
            k2 = cum[p, p, r, r] / (sp * sr)
            k3 = cum[p, r, r, r] / (sr * np.sqrt(sp * sr))
            k4 = cum[r, r, r, r] / (sr * sr)
            phi = best_pair_angle(k0, k1, k2, k3, k4, True, coef)
            j0 = k0 * k0 + k4 * k4
            kp, kr = pair_kurtoses(k0, k1, k2, k3, k4, phi)
            # the gain must be both relative (a fifth) and absolute: when the
            # short window holds little non-Gaussianity (a talker's quiet
            # stretch over music) its cumulants are mostly estimation noise,
            # whose best angle is anything; a real change of mixing raises
            # the contrast by ≥ 1 there (measured), noise by < 0.05
            if kp * kp + kr * kr > 1.2 * j0 + prm[7]:
                worst = max(worst, abs(phi))
    if worst > prm[5]:
        cnt[6] += iprm[0]
        if cnt[6] >= iprm[7]:
            for i in range(m):
                for j in range(m):
                    cov[i, j] = cov_f[i, j]
            for i in range(m4.shape[0]):
                m4[i] = m4_f[i]
            cnt[5] = iprm[8]
            cnt[6] = 0
            cnt[7] += 1
            cnt[8] = 16  # search the whole circle of angles for the next updates
    else:
        cnt[6] = max(0, cnt[6] - iprm[0])


@njit(cache=True)
def td_update(cov: np.ndarray, m4: np.ndarray, cov_f: np.ndarray, m4_f: np.ndarray,
              full_map: np.ndarray, v: np.ndarray, rot: np.ndarray, w: np.ndarray,
              wv: np.ndarray, dv: np.ndarray, kurt: np.ndarray, lab: np.ndarray,
              cnt: np.ndarray, prm: np.ndarray, iprm: np.ndarray, ws: tuple, pinned: int,
              decided: int) -> None:
    """Recompute whitening, rotation, projection-back weights and the voice weights.

    Called by :func:`td_process` every ``iprm[0]`` samples; the arguments are
    the state arrays described in the module docstring, ``ws`` a tuple of
    scratch arrays (see :func:`rtsep.engines.td.make_workspace`); ``pinned``
    the output the voice is pinned to (-1: none) and ``decided`` 1 once the
    speech evidence has taken its first decision.
    """
    (cfull, v_new, evals, evecs, wmm, wqq, wqq2, wqq3, d, dtmp, m4full, cum, w1, w2, w3,
     cy, a, coef, cf_full, cyf) = ws
    m = cov.shape[0]
    q = v.shape[0]
    k_upd = iprm[0]
    ref = iprm[1]
    symmetric_from_upper(cov, cfull)
    tr = 0.0
    for i in range(m):
        tr += cfull[i, i]
    if tr < _SILENT_TRACE:
        if tr < _UNDERFLOW_TRACE:
            cov[:, :] = 0.0
            m4[:] = 0.0
        cnt[2] += 1
        for i in range(m):
            dv[i] = 0.0
        return
    cnt[1] += 1
    whitening_matrix(cfull, prm[2], v, v_new, evals, evecs, wmm, wqq, wqq2, wqq3)
    v[:, :] = v_new
    _matmul(rot, v, d)
    expand_quartic(m4, full_map, m4full)
    mode_product4(m4full, d, cum, w1, w2, w3)
    _sandwich(d, cfull, dtmp, cy)
    subtract_gaussian_part(cum, cy)
    do_global = (cnt[1] % iprm[5]) == 1 or iprm[5] == 1 or cnt[8] > 0
    if cnt[8] > 0:
        cnt[8] -= 1
    if do_global:
        cnt[3] += 1
    jacobi_sweep(cum, cy, rot, do_global, coef)
    orthonormalise_rows(rot)
    _matmul(rot, v, d)
    _sandwich(d, cfull, dtmp, cy)
    for k in range(q):
        kurt[k] = cum[k, k, k, k] / (cy[k, k] * cy[k, k] + 1e-300)
    # projection back: A = C Dᵀ (D C Dᵀ)⁻¹, the least-squares mixing estimate
    # (= D⁻¹ when Q = M); output k is source k's image at the reference mic.
    if small_inverse(cy, wqq, wqq2):
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
                gain += a[ref, j] * wqq[j, k]
            for i in range(m):
                dtmp[k, i] = gain * d[k, i]
            pk = 0.0
            for i in range(m):
                for j in range(m):
                    pk += dtmp[k, i] * cfull[i, j] * dtmp[k, j]
            if not pk <= _MAX_IMAGE_POWER * cfull[ref, ref] + 1e-300:
                plausible = False
            for i in range(m):
                # a direction the covariance has no energy in (two identical
                # mics, a dead one) can get any gain without showing in pk;
                # it explodes when that direction comes alive again
                if not abs(dtmp[k, i]) <= _MAX_WEIGHT:
                    plausible = False
        if plausible:
            w[:, :] = dtmp
        else:
            cnt[4] += 1
    _detect_change(cov, m4, cov_f, m4_f, full_map, d, cnt, prm, iprm, ws)
    if cnt[13] == 0 and cnt[5] >= iprm[13]:
        # a first guess, until the speech evidence decides (label_first_s):
        # which output starts as the voice is arbitrary, so the more
        # kurtotic one takes it (starting from output 0 kept the background
        # as the voice for 0.3-2 s on the bench's mixtures: −7 dB whole-file)
        cnt[13] = 1
        if pinned < 0 and decided == 0:
            best = 0
            for k in range(q):
                if kurt[k] > kurt[best]:
                    best = k
            if best != lab[0]:
                lab[1] = lab[0]
                lab[0] = best
                lab[3] = 0
    xfade = iprm[3]
    if xfade > 0:
        alpha = min(1.0, (lab[3] + k_upd) / xfade)
    else:
        alpha = 1.0
    if lab[3] < 1 << 40:
        lab[3] += k_upd
    warming = cnt[5] < iprm[6]  # samples learnt from: leading silence does not count
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
               cov_f: np.ndarray, m4_f: np.ndarray, idx4: np.ndarray, full_map: np.ndarray, v: np.ndarray, rot: np.ndarray,
               w: np.ndarray, wv: np.ndarray, dv: np.ndarray, kurt: np.ndarray,
               lab: np.ndarray, cnt: np.ndarray, pw: np.ndarray, flt: np.ndarray,
               prm: np.ndarray, iprm: np.ndarray, xf: np.ndarray, ws: tuple, lst: np.ndarray,
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
    hp … iprm
        State and parameters, see the module docstring (``pw``, ``flt``:
        the fault gate's state).
    xf : ndarray, shape (M,)
        Scratch for one DC-free sample.
    ws : tuple
        Scratch arrays for :func:`td_update`.
    lst, ep, lp : recarray (1,), EvidenceParams, LabelParams
        The voice label's state and parameters (:mod:`rtsep.kernels.labels`).
    img : ndarray, shape (n, Q)
        Out: every output's image at the reference mic (the label's evidence).
    """
    st = lst[0]
    st_z = st.z
    st_e_band = st.e_band
    st_e_all = st.e_all
    n = x.shape[0]
    m = x.shape[1]
    q = v.shape[0]
    beta_min = prm[0]
    a_hp = prm[1]
    k_upd = iprm[0]
    ref = iprm[1]
    beta_fast = prm[4]
    clip2 = prm[6] * prm[6]
    detect = iprm[9] != 0
    stuck_run = iprm[10]
    fault_hang = iprm[11]
    b_pw = prm[8]
    dead_ratio = prm[9]
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
                if flt[i] < stuck_run:
                    flt[i] += 1
            else:
                flt[i] = 0
            if stuck_run > 0 and flt[i] >= stuck_run:
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
        cnt[0] += 1
        # Faulty samples are not learnt from at all (like silence), so the
        # statistics are untouched when the fault ends; the hang-over covers
        # the high-pass's step response after a stuck block.
        if n_zero == m:
            # every mic at exactly zero is digital silence, not a fault:
            # nothing to learn, nothing to report (the hang-over still
            # covers the high-pass settling after it)
            flt[m] = fault_hang
            learn = False
        elif n_stuck > 0 or dead:
            flt[m] = fault_hang
            if n_stuck > 0:
                cnt[10] += 1
            else:
                cnt[11] += 1
            learn = False
        elif flt[m] > 0:
            flt[m] -= 1
            cnt[10] += 1
            learn = False
        else:
            learn = True
        if learn:
            cnt[5] += 1
        if learn and clip2 > 0.0 and cnt[5] > iprm[8]:
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
                cnt[9] += 1
        if learn:
            accumulate_moments(xf, forgetting_weight(cnt[5], beta_min), cov, m4, idx4)
            if detect:
                accumulate_moments(xf, forgetting_weight(cnt[5], beta_fast), cov_f, m4_f, idx4)
        # the label's evidence: every output's image, once the outputs are
        # separated and only from sound input
        observe(st, st_z, st_e_band, st_e_all, ep, lp, lab, img[t], learn and cnt[5] >= iprm[6],
                cnt[0] % ep.frame == 0)
        if cnt[0] % k_upd == 0:
            changes = cnt[7]
            td_update(cov, m4, cov_f, m4_f, full_map, v, rot, w, wv, dv, kurt, lab, cnt, prm,
                      iprm, ws, lp.pinned, st.decided)
            if cnt[7] != changes:
                restart_evidence(st)
