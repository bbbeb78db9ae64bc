"""Online auxiliary-function IVA for two microphones and two sources (DESIGN §3).

Per STFT frame, per frequency bin ``k`` a 2×2 complex demixer ``W[k]``
(outputs ``y_q = sum_m conj(W[k, q, m]) x_m``) is re-estimated from two
weighted covariances with forgetting,

    V_q[k] = a V_q[k] + (1 - a) phi(r_q) x x^H,   r_q = ||y_q|| over all bins,

so each source's weight comes from its norm across all bins: that ties the
bins of one source together and there is no per-bin permutation problem.
Two closed-form updates minimise the auxiliary function exactly (no step
size):

- "IP2" (:func:`~rtsep.kernels.iva_pair.gev_pair`): both demixing vectors are the generalised
  eigenvectors of the pencil (V_1, V_2), the one with the smaller ratio
  ``w^H V_1 w / w^H V_2 w`` extracting source 1, each scaled to
  ``w^H V_q w = 1``;
- whitened (:func:`~rtsep.kernels.iva_pair.whitened_pair`, the default): the seed's PCA-then-rotation
  per bin, ``W = U C^-1/2`` with C the bin's covariance, the outputs
  constrained to be uncorrelated and U from the eigenvectors of the
  whitened ``V_1 - V_2``.

With both (``whiten`` and ``ip2_output``, the default) the whitened demixers
drive the source weights and, after the warm-up, the audio goes through IP2's
demixers of the same weighted covariances (:func:`applied_demixers`): IP2's
accuracy without the poor optimum its own weights can lock into.

The first seconds are a warm-up: frames are kept and re-weighted in batch
passes (see :func:`iva_frames`), because the weight a frame gets depends on
the demixer, which is wrong when the first frames arrive. Each output is
projected back onto the reference microphone (``A = W^-1``, image
``A[0, q] y_q``), so the two images sum to the reference microphone's STFT.

State layout (owned by :class:`rtsep.engines.fd.FrequencyDomainEngine`):

- ``w`` (K, 2, 2) complex: demixing vectors, ``w[k, q]`` = w_q of bin k;
- ``v`` (2, K, 2, 2) complex: weighted covariances V_q per bin;
- ``cov`` (K, 2, 2) complex: plain covariance per bin (for the whitening);
- ``buf`` (B, 2, K) complex: the first B non-silent frames (warm-up);
- ``cs`` (K, 2, 2) complex: short-memory covariance per bin (scene check);
- ``lvl`` (L,) float64: log-power of the last L non-silent frames (a ring);
- ``recent`` (R, 2, K) complex: the last R frames learned from (a ring), the
  first frames of a new scene when the scene check restarts the learning;
- ``state`` (1,) record of :data:`COUNTERS`: the counters and running values
  (frames learnt from, running mean norm, total weight, scene-check levels...).

Parameters are one :data:`PARAMS` record; both are read by name
(``p.alpha``, ``st.frames``).

A scene check watches the two outputs over the last half second: separated
outputs stay uncorrelated per bin, a moved talker or degenerate demixers
make them coherent; when the coherence stays well above its steady level
the warm-up starts again on the new scene (counted in ``st.scene_restarts``).
After that warm-up the coherence is judged against the level of the last
steady scene, not against its own first value: a restart that fell in the
middle of a walk learns from frames of a scene still changing, and its
demixers end as coherent as the change itself (measured 0.48 against a
steady 0.18 in the walking-talker spec); they are relearnt on the frames
of the scene that has settled, up to :data:`SCENE_RETRIES` times in a row
before the new level is taken as the steady one.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .iva_pair import gev_pair, hermitian_quad, whitened_pair
from .records import new_record, zeroed_state

#: Scene restarts in a row that are judged against the last steady scene's
#: coherence level; after that many the new scene's level is taken as it is
#: (a room where the separated outputs are simply more coherent).
SCENE_RETRIES = 2


#: Frames whose power (sum of |X|^2 over bins and both mics) is below this
#: carry no information (digital silence, ~ -200 dBFS): the demixer is kept.
_SILENT_POWER = 1e-20
#: Power of the difference between the mics, relative to theirs, below which a
#: frame holds one signal twice (float rounding of a duplicated channel).
_SAME_POWER = 1e-12

#: Parameters of :func:`iva_frames` in the kernel's units (fields of the
#: ``params`` record, built by :class:`rtsep.engines.fd.FrequencyDomainEngine`).
PARAMS = np.dtype([
    ("alpha", "f8"),            # forgetting factor per frame of the weighted covariances
    ("eps_load", "f8"),         # diagonal loading of V_q, relative to its mean eigenvalue
    ("r_floor", "f8"),          # floor of a source norm relative to its running mean
    ("prior_shape", "f8"),      # source prior: 1 Laplacian (phi = 1/r), 0 time-varying Gaussian (1/r^2)
    ("max_gain", "f8"),         # cap on the norm of each bin's gain from the mics to the voice image
    ("scene_beta", "f8"),       # weight of a frame in the scene check's short-memory covariances
    ("scene_ratio", "f8"),      # how many times its steady level the coherence must reach
    ("loud_factor", "f8"),      # a frame this many times the recent median power is shrunk to it; 0: off
    ("balance_gate_db", "f8"),  # a frame whose mic balance is this far (dB) off the mean is not learnt; 0: off
    ("dead_mic_db", "f8"),      # ... or this far (dB) from even, from the first frame on (a dead mic); 0: off
    ("balance_accept", "f8"),   # frames in a row after which such a balance (or clipping) is accepted
    ("scene_floor", "f8"),      # the coherence must also exceed this to count as a scene change
    ("level_beta", "f8"),       # weight of a frame in the coherence's steady level
    ("balance_memory", "f8"),   # frames in the running mean of the mic balance
    ("iterations", "i8"),       # online passes per frame
    ("k_lo", "i8"),             # first bin separated (lower bins go wholly to the background)
    ("whiten", "i8"),           # 1: whitened (outputs uncorrelated per bin) update; 0: unconstrained IP2
    ("ip2_output", "i8"),       # 1 (with whiten): the audio goes through IP2's demixers of the whitened run's covariances
    ("ip2_from", "i8"),         # ... once this many frames are learnt from (at most the warm-up's B)
    ("n_start", "i8"),          # the first update comes at this frame
    ("start_passes", "i8"),     # batch passes then (and at each restart)
    ("every", "i8"),            # during the warm-up (the first B = buf.shape[0] frames) a batch pass every this many frames
    ("every_span", "i8"),       # past this many frames kept, single passes every (every * ceil(n / every_span)) // passes frames
    ("passes", "i8"),           # batch passes each time
    ("restart_last", "i8"),     # restarts from the identity at frames n_start * 2^j up to this one (0: none),
                                # kept when their likelihood is better
    ("overlap", "i8"),          # frames per frame length: a faulty frame taints the outputs of this many
    ("hold", "i8"),             # frames the coherence must stay high before the scene restarts (0: no check)
])

#: The counters and running values of :func:`iva_frames` (float64 fields of the ``state`` record).
COUNTERS = np.dtype([
    ("frames", "f8"),              # frames learnt from
    ("mean_norm", "f8"),           # running mean source norm (sets the floor)
    ("silent_frames", "f8"),       # frames skipped as silent
    ("degenerate_updates", "f8"),  # degenerate bin updates (the bin kept its demixer)
    ("total_weight", "f8"),        # S <- alpha S + 1: the total weight of all frames so far
    ("restarts_adopted", "f8"),    # restarts from the identity whose likelihood was better
    ("coherence", "f8"),           # the outputs' short-memory coherence (scene check)
    ("balance_db", "f8"),          # running mean balance between the mics (dB)
    ("levels_written", "f8"),      # frames written to the level ring ``lvl``
    ("faulty_frames", "f8"),       # frames skipped as faulty (mic balance, clipping)
    ("faulty_run", "f8"),          # such frames in a row
    ("loud_frames", "f8"),         # loud frames shrunk
    ("tainted_left", "f8"),        # frames left whose outputs are not label evidence
    ("scene_restarts", "f8"),      # scene restarts
    ("coherence_level", "f8"),     # the coherence's steady level
    ("coherence_high", "f8"),      # frames the coherence has stayed high
    ("recent_written", "f8"),      # frames written to the ring ``recent``
    ("scene_retries", "f8"),       # scene restarts in a row judged against the last steady scene's level
])


def new_params(**fields: float) -> np.ndarray:
    """The ``params`` record of :func:`iva_frames` from every field of :data:`PARAMS`."""
    return new_record(PARAMS, **fields)


def new_counters() -> np.recarray:
    """Zeroed :data:`COUNTERS` for a new stream (:func:`~rtsep.kernels.records.zeroed_state`)."""
    return zeroed_state(COUNTERS)


@njit(cache=True)
def _frame_norms(x: np.ndarray, w: np.ndarray, k_lo: int, r: np.ndarray) -> None:
    """r[q] = RMS over bins >= k_lo of output q of one frame x (2, K)."""
    n_bins = x.shape[1]
    for q in range(2):
        acc = 0.0
        for k in range(k_lo, n_bins):
            yq = np.conj(w[k, q, 0]) * x[0, k] + np.conj(w[k, q, 1]) * x[1, k]
            acc += yq.real * yq.real + yq.imag * yq.imag
        r[q] = math.sqrt(acc / (n_bins - k_lo))


@njit(cache=True)
def _weights(r: np.ndarray, floor: float, shape: float, phi: np.ndarray) -> None:
    """Source-prior weights phi = G'(r)/r with the norm floored (quiet frames)."""
    for q in range(2):
        rq = r[q] if r[q] > floor else floor
        phi[q] = rq ** (shape - 2.0)


@njit(cache=True)
def _accumulate(v: np.ndarray, x: np.ndarray, phi: np.ndarray, keep: float, gain: float,
                k_lo: int) -> None:
    """v[q] = keep * v[q] + gain * phi[q] * x x^H for every bin >= k_lo."""
    for k in range(k_lo, x.shape[1]):
        x0 = x[0, k]
        x1 = x[1, k]
        xx00 = x0.real * x0.real + x0.imag * x0.imag
        xx11 = x1.real * x1.real + x1.imag * x1.imag
        xx01 = x0 * np.conj(x1)
        for q in range(2):
            g = gain * phi[q]
            v[q, k, 0, 0] = keep * v[q, k, 0, 0].real + g * xx00
            v[q, k, 1, 1] = keep * v[q, k, 1, 1].real + g * xx11
            v01 = keep * v[q, k, 0, 1] + g * xx01
            v[q, k, 0, 1] = v01
            v[q, k, 1, 0] = np.conj(v01)


@njit(cache=True)
def _load(v: np.ndarray, k: int, eps_load: float, loaded: np.ndarray) -> None:
    """Bin k's weighted covariances with diagonal loading (relative to their mean eigenvalue)."""
    for q in range(2):
        load = eps_load * 0.5 * (v[q, k, 0, 0].real + v[q, k, 1, 1].real) + 1e-300
        loaded[q, 0, 0] = v[q, k, 0, 0] + load
        loaded[q, 1, 1] = v[q, k, 1, 1] + load
        loaded[q, 0, 1] = v[q, k, 0, 1]
        loaded[q, 1, 0] = v[q, k, 1, 0]


@njit(cache=True)
def _abs2(z: complex) -> float:
    return z.real * z.real + z.imag * z.imag


@njit(cache=True)
def _cos2(a0: complex, a1: complex, b0: complex, b1: complex) -> float:
    """Squared |cosine| between the complex 2-vectors (a0, a1) and (b0, b1) (0 if either is 0)."""
    na = _abs2(a0) + _abs2(a1)
    nb = _abs2(b0) + _abs2(b1)
    if na <= 0.0 or nb <= 0.0:
        return 0.0
    return _abs2(np.conj(a0) * b0 + np.conj(a1) * b1) / (na * nb)


@njit(cache=True)
def _steering_match(w: np.ndarray, g: np.ndarray) -> float:
    """How well the outputs of demixers ``w`` and ``g`` (2×2) match in order, minus crossed.

    Output q's steering direction is column q of ``conj(W)^-1``, ∝ (d11, −d10) and (−d01, d00)
    with D = conj(W); taken here conjugated (the |cosines| are the same): the squared
    |cosines| of the matched pairs minus those of the crossed pairs.
    """
    same = (_cos2(w[1, 1], -w[1, 0], g[1, 1], -g[1, 0])
            + _cos2(-w[0, 1], w[0, 0], -g[0, 1], g[0, 0]))
    crossed = (_cos2(w[1, 1], -w[1, 0], -g[0, 1], g[0, 0])
               + _cos2(-w[0, 1], w[0, 0], g[1, 1], -g[1, 0]))
    return same - crossed


@njit(cache=True)
def applied_demixers(v: np.ndarray, eps_load: float, k_lo: int, w: np.ndarray, out: np.ndarray) -> None:
    """IP2's demixers of the weighted covariances ``v``, in the outputs' order of ``w``.

    The whitened update keeps each bin's outputs uncorrelated, which keeps the
    source weights from collapsing onto one source but settles on less
    accurate demixers; IP2's closed form on the *same* weighted covariances
    is the unconstrained optimum of the auxiliary function for those weights
    (bench/ROOMS.md, 2026-11-30). The whitened demixers ``w`` go on driving
    the weights; these are what the audio goes through once the warm-up is
    over (:func:`iva_frames`). Bins below ``k_lo`` and bins whose pencil is
    degenerate keep ``w``.

    Parameters
    ----------
    v : ndarray, shape (2, K, 2, 2), complex128
        Weighted covariances V_q per bin.
    eps_load : float
        Diagonal loading, relative to each V_q's mean eigenvalue.
    k_lo : int
        First bin separated.
    w : ndarray, shape (K, 2, 2), complex128
        The whitened demixers (their output order is kept).
    out : ndarray, shape (K, 2, 2), complex128
        Written: the demixers applied to the audio.
    """
    loaded = np.empty((2, 2, 2), dtype=np.complex128)
    g = np.empty((2, 2), dtype=np.complex128)
    for k in range(w.shape[0]):
        for q in range(2):
            for m in range(2):
                out[k, q, m] = w[k, q, m]
        if k < k_lo:
            continue
        _load(v, k, eps_load, loaded)
        if not gev_pair(loaded[0], loaded[1], g):
            continue
        swap = 1 if _steering_match(w[k], g) < 0.0 else 0
        for q in range(2):
            for m in range(2):
                out[k, q, m] = g[q ^ swap, m]


@njit(cache=True)
def _update_demixers(v: np.ndarray, cov: np.ndarray, eps_load: float, whiten: int, k_lo: int,
                     w: np.ndarray, st: np.void, count_degenerate: bool) -> None:
    """Closed-form update of every bin's demixer from the weighted covariances."""
    loaded = np.empty((2, 2, 2), dtype=np.complex128)
    wnew = np.empty((2, 2), dtype=np.complex128)
    for k in range(k_lo, w.shape[0]):
        _load(v, k, eps_load, loaded)
        if whiten == 1:
            ok = whitened_pair(loaded[0], loaded[1], cov[k], wnew)
        else:
            ok = gev_pair(loaded[0], loaded[1], wnew)
        if ok:
            for q in range(2):
                w[k, q, 0] = wnew[q, 0]
                w[k, q, 1] = wnew[q, 1]
        elif count_degenerate:
            st.degenerate_updates += 1.0


@njit(cache=True)
def _batch_pass(buf: np.ndarray, n: int, alpha: float, s_total: float, w: np.ndarray,
                p: np.void, k_lo: int, st: np.void, v: np.ndarray) -> None:
    """Weighted covariances rebuilt from the n buffered frames with the current demixers.

    Frame ``j`` (0 = oldest) is weighted ``alpha^(n-1-j) / s_total``, as the
    online recursion would, but its source-model weight phi comes from the
    current demixers instead of the ones it met on arrival.
    """
    shape = p.prior_shape
    phi = np.empty(2)
    r_all = np.empty((n, 2))
    mean_r = 0.0
    for j in range(n):
        _frame_norms(buf[j], w, k_lo, r_all[j])
        mean_r += 0.5 * (r_all[j, 0] + r_all[j, 1])
    st.mean_norm = mean_r / n
    floor = p.r_floor * st.mean_norm + 1e-150
    for q in range(2):
        for k in range(k_lo, v.shape[1]):
            for i in range(2):
                for j in range(2):
                    v[q, k, i, j] = 0.0
    wgt = 1.0 / s_total
    for j in range(n - 1, -1, -1):
        _weights(r_all[j], floor, shape, phi)
        _accumulate(v, buf[j], phi, 1.0, wgt, k_lo)
        wgt *= alpha


@njit(cache=True)
def _keep_output_order(buf: np.ndarray, n: int, w_old: np.ndarray, w: np.ndarray, k_lo: int) -> None:
    """Swap all rows of ``w`` if its outputs follow the old demixers' in crossed order.

    A restart from the identity may come out with the two outputs the other
    way round; a pinned voice output (and the label) must not jump to the
    other source for that, so the order whose source norms correlate best
    over the buffered frames with the old ones is kept.
    """
    r_old = np.empty((n, 2))
    r_new = np.empty((n, 2))
    for j in range(n):
        _frame_norms(buf[j], w_old, k_lo, r_old[j])
        _frame_norms(buf[j], w, k_lo, r_new[j])
    c = np.zeros((2, 2))
    for a in range(2):
        for b in range(2):
            ma = 0.0
            mb = 0.0
            for j in range(n):
                ma += r_old[j, a] / n
                mb += r_new[j, b] / n
            sab = 0.0
            saa = 0.0
            sbb = 0.0
            for j in range(n):
                da = r_old[j, a] - ma
                db = r_new[j, b] - mb
                sab += da * db
                saa += da * da
                sbb += db * db
            c[a, b] = sab / math.sqrt(saa * sbb + 1e-300)
    if c[0, 1] + c[1, 0] > c[0, 0] + c[1, 1]:
        for k in range(w.shape[0]):
            for m in range(2):
                t0 = w[k, 0, m]
                w[k, 0, m] = w[k, 1, m]
                w[k, 1, m] = t0


@njit(cache=True)
def _contrast(buf: np.ndarray, n: int, w: np.ndarray, p: np.void, k_lo: int) -> float:
    """IVA negative log-likelihood of the n buffered frames (time-varying Gaussian model).

    ``sum_t sum_q K log r_qt^2 - 2 n sum_k log|det W_k|`` (K bins from
    ``k_lo``): lower is better; invariant to a common scale of the demixers.
    """
    n_bins = w.shape[0]
    r_all = np.empty((n, 2))
    mean_r = 0.0
    for j in range(n):
        _frame_norms(buf[j], w, k_lo, r_all[j])
        mean_r += 0.5 * (r_all[j, 0] + r_all[j, 1])
    floor = p.r_floor * mean_r / n + 1e-150
    acc = 0.0
    for j in range(n):
        for q in range(2):
            rq = r_all[j, q] if r_all[j, q] > floor else floor
            acc += 2.0 * math.log(rq)
    acc *= n_bins - k_lo
    logdet = 0.0
    for k in range(k_lo, n_bins):
        det = w[k, 0, 0] * w[k, 1, 1] - w[k, 0, 1] * w[k, 1, 0]
        logdet += math.log(abs(det) + 1e-300)
    return acc - 2.0 * n * logdet


@njit(cache=True)
def _blend_cov(c: np.ndarray, x: np.ndarray, keep: float, gain: float, k_lo: int) -> None:
    """c[k] = keep * c[k] + gain * x[:, k] x[:, k]^H for every bin k >= k_lo (Hermitian 2x2)."""
    for k in range(k_lo, x.shape[1]):
        x0 = x[0, k]
        x1 = x[1, k]
        c[k, 0, 0] = keep * c[k, 0, 0].real + gain * (x0.real * x0.real + x0.imag * x0.imag)
        c[k, 1, 1] = keep * c[k, 1, 1].real + gain * (x1.real * x1.real + x1.imag * x1.imag)
        c[k, 0, 1] = keep * c[k, 0, 1] + gain * x0 * np.conj(x1)
        c[k, 1, 0] = np.conj(c[k, 0, 1])


@njit(cache=True)
def _scene_check(x: np.ndarray, w: np.ndarray, cs: np.ndarray, beta: float, k_lo: int) -> float:
    """Blend frame x into the short-memory covariances; return how alike the two outputs are.

    Separated outputs are independent at every time scale, so over the last
    fraction of a second each bin's two outputs should stay uncorrelated.
    When the scene changes (a talker moves, the mics are moved) the
    long-memory demixers mix the new scene and the outputs become coherent;
    degenerate demixers (both outputs one source) look the same. Returns the
    mean over bins of the outputs' coherence |c01| / sqrt(c00 c11), each bin
    weighted by sqrt(c00 c11) (quiet bins are mostly estimation noise).
    """
    _blend_cov(cs, x, 1.0 - beta, beta, k_lo)
    num = 0.0
    den = 0.0
    for k in range(k_lo, x.shape[1]):
        c = cs[k]
        a0 = w[k, 0, 0]
        a1 = w[k, 0, 1]
        b0 = w[k, 1, 0]
        b1 = w[k, 1, 1]
        p0 = hermitian_quad(c, a0, a1)
        p1 = hermitian_quad(c, b0, b1)
        # c01 = w_0^H C w_1
        c01 = (np.conj(a0) * (c[0, 0] * b0 + c[0, 1] * b1) + np.conj(a1) * (c[1, 0] * b0 + c[1, 1] * b1))
        num += abs(c01)
        den += math.sqrt(max(p0, 0.0) * max(p1, 0.0))
    return num / den if den > 0.0 else 0.0


@njit(cache=True)
def _classify_frame(p0: float, p1: float, clipped: bool, same: bool, st: np.void, lvl: np.ndarray,
                    p: np.void, settled: bool) -> float:
    """Judge one non-silent frame against the recent input; return its weight in the covariance.

    - A frame whose power balance between the two mics is ``p.balance_gate_db`` dB off
      its running mean (a dead or unplugged mic, one channel stuck), or from
      the first frame on ``p.dead_mic_db`` dB from even (a dead mic) or with
      the same signal on both mics (``same``: a mono feed), or that holds
      clipped samples says nothing about the room: weight 0, it is not
      learned from. Such frames lasting ``p.balance_accept`` frames in a row are
      accepted as the new normal (the mics really changed; a hot input that
      clips all the time must still be separated).
    - A frame more than ``p.loud_factor`` times the median power of the last few
      seconds (a bump, a gain glitch; speech is measured at most 33 times
      its median, at 20 dB over quiet noise) enters the covariance shrunk to
      the median power: half a second 20 dB up would otherwise set the
      whitening for many seconds.
    Either kind sets st.tainted_left so that its outputs are not label evidence.
    ``lvl`` holds the log-power of the last frames (a ring; st.levels_written counts
    them); st.balance_db is the running mean balance (dB).
    """
    bal = 10.0 * math.log10((p1 + 1e-300) / (p0 + 1e-300))
    power = p0 + p1
    gate_db = p.balance_gate_db
    # a dead mic (or one signal on both) before the first estimate would give
    # demixers from rank-one frames, whose gains blow the outputs up once the
    # mics differ again
    dead = (p.dead_mic_db > 0.0 and abs(bal) > p.dead_mic_db) or same
    if dead or (settled and ((gate_db > 0.0 and abs(bal - st.balance_db) > gate_db) or clipped)):
        st.faulty_frames += 1.0
        st.faulty_run += 1.0
        if st.faulty_run < p.balance_accept:
            return 0.0
        st.balance_db = bal
    else:
        st.faulty_run = 0.0
    st.balance_db += (bal - st.balance_db) / min(st.frames + 1.0, p.balance_memory)
    # median power of the last len(lvl) frames, this one included
    size = lvl.shape[0]
    count = int(st.levels_written)
    lvl[count % size] = math.log(power)
    st.levels_written += 1.0
    g = 1.0
    if settled and p.loud_factor > 0.0:
        med = math.exp(np.median(lvl[:min(count + 1, size)]))
        if power > p.loud_factor * med:
            # an outlier counts like a typical frame, no more
            g = med / power
            st.loud_frames += 1.0
    return g


@njit(cache=True)
def _demixers_jumped(st: np.void, overlap: int) -> None:
    """The demixers were just replaced (first estimate, adopted restart, scene relearn).

    The outputs of the next ``overlap - 1`` hops still overlap-add frames
    demixed the old way, a ramp between two demixers (20-30 dB when the old
    one is the identity and its second output silent) that is no syllable:
    they are not label evidence.
    """
    st.tainted_left = max(st.tainted_left, overlap - 1.0)


@njit(cache=True)
def _relearn_scene(recent: np.ndarray, buf: np.ndarray, n_warm: int, n_start: int, start_passes: int,
                   alpha: float, whiten: int, k_lo: int, p: np.void, w: np.ndarray,
                   w_save: np.ndarray, v: np.ndarray, cov: np.ndarray, st: np.void) -> None:
    """Learn a new scene afresh from the last frames (the scene check saw it change).

    The warm-up (batch passes, restarts from the identity) starts again from
    today's demixers on the frames kept in ``recent``, which already belong
    to the new scene (the check needed them to see it), and the long memories
    restart short. The outputs keep their order (the one whose envelope
    follows the old output stays in its place): the background seldom moves,
    the old demixer's voice row still nulls it, so the label's evidence stays
    meaningful across the restart.
    """
    n_recent = recent.shape[0]
    written = int(st.recent_written)
    n_seed = min(written, n_recent, n_warm)
    for j in range(n_seed):
        buf[j] = recent[(written - n_seed + j) % n_recent]
    st.frames = float(n_seed)
    # S = 0: the first seeded frame's weight is 1, so the covariance is rebuilt
    st.total_weight = 0.0
    for j in range(n_seed):
        st.total_weight = alpha * st.total_weight + 1.0
        a = 1.0 - 1.0 / st.total_weight
        _blend_cov(cov, buf[j], a, 1.0 - a, k_lo)
    if n_seed >= n_start and n_seed > 0:
        w_save[:] = w
        for it in range(start_passes):
            _batch_pass(buf, n_seed, alpha, st.total_weight, w, p, k_lo, st, v)
            _update_demixers(v, cov, p.eps_load, whiten, k_lo, w, st, False)
        _keep_output_order(buf, n_seed, w_save, w, k_lo)
    st.scene_restarts += 1.0
    st.scene_retries += 1.0
    if st.scene_retries > SCENE_RETRIES:
        # the new level is learnt afresh after the warm-up
        st.coherence_level = 0.0
        st.scene_retries = 0.0
    st.coherence_high = 0.0
    st.recent_written = 0.0


@njit(cache=True)
def direct_path_regularity(w: np.ndarray, k_lo: int, k_hi: int, out: np.ndarray) -> None:
    """How much each output's inter-mic transfer function looks like a single delay (0 … 1).

    The mixing estimate per bin is ``A = D⁻¹`` with ``D = conj(w)``; output
    q reaches mic 2 relative to mic 1 by ``h_q = A[1, q] / A[0, q]``. A source
    near the array is dominated by its direct path, so the phase of ``h_q``
    turns by the same step from bin to bin (a delay); the reverberant field of
    a far source makes it wander. ``out[q]`` is the length of the mean unit
    phase step over bins ``k_lo .. k_hi`` (1: a pure delay): the near talker's
    output scores higher (measured 0.95-1.0 against 0.65-0.97 in the dev rooms).
    """
    acc0 = 0.0 + 0.0j
    acc1 = 0.0 + 0.0j
    prev0 = 0.0 + 0.0j
    prev1 = 0.0 + 0.0j
    n = 0
    for k in range(k_lo, k_hi):
        d00 = np.conj(w[k, 0, 0])
        d01 = np.conj(w[k, 0, 1])
        d10 = np.conj(w[k, 1, 0])
        d11 = np.conj(w[k, 1, 1])
        # columns of D⁻¹ ∝ (d11, −d10) and (−d01, d00): h_0 = −d10/d11, h_1 = −d00/d01
        h0 = -d10 * np.conj(d11)
        h1 = -d00 * np.conj(d01)
        a0 = abs(h0)
        a1 = abs(h1)
        u0 = h0 / a0 if a0 > 1e-300 else 0.0 + 0.0j
        u1 = h1 / a1 if a1 > 1e-300 else 0.0 + 0.0j
        if k > k_lo:
            acc0 += u0 * np.conj(prev0)
            acc1 += u1 * np.conj(prev1)
            n += 1
        prev0 = u0
        prev1 = u1
    out[0] = abs(acc0) / n if n else 0.0
    out[1] = abs(acc1) / n if n else 0.0


@njit(cache=True, nogil=True)
def iva_frames(xf: np.ndarray, clip: np.ndarray, w: np.ndarray, v: np.ndarray, cov: np.ndarray,
               buf: np.ndarray, cs: np.ndarray, lvl: np.ndarray, recent: np.ndarray, state: np.ndarray,
               params: np.ndarray, img: np.ndarray, learned: np.ndarray,
               near: np.ndarray, k_near: int, w_out: np.ndarray) -> None:
    """Learn from F consecutive STFT frames and write each source's image at mic 0.

    Parameters
    ----------
    xf : ndarray, shape (F, 2, K), complex128
        Spectra of the two microphones (reference first).
    clip : ndarray, shape (F,), int64
        Clipped input samples in each frame (either mic).
    w, v, cov, buf, cs, lvl, recent : ndarray
        State arrays (module docstring), updated in place.
    state : ndarray, shape (1,), :data:`COUNTERS`
        The counters and running values, read as ``st = state[0]``, updated in place.
    params : ndarray, shape (1,), :data:`PARAMS`
        The parameters, read as ``p = params[0]`` (see :data:`PARAMS` for each field).
    img : ndarray, shape (F, 2, K), complex128
        Written: image of each output at the reference microphone.
    learned : ndarray, shape (F,), int64
        Written: 0 while the outputs are still the unseparated reference
        mic (before frame ``n_start``), 1 once the demixers are estimated,
        2 for the outputs of a faulty frame (see :func:`rtsep.kernels.labels.label_block`).
    near : ndarray, shape (F, 2), float64
        Written: each output's direct-path regularity after the frame
        (:func:`direct_path_regularity`), the label's near-talker evidence.
    k_near : int
        Upper bin (exclusive) of that measure (2 kHz: above, spatial aliasing).
    w_out : ndarray, shape (K, 2, 2), complex128
        Written: the demixers the images were made with after the last frame
        (:func:`applied_demixers` with ``ip2_output`` once ``ip2_from``
        frames are in, else a copy of ``w``).
    """
    st = state[0]
    p = params[0]
    n_frames = xf.shape[0]
    n_bins = xf.shape[2]
    alpha = p.alpha
    r_floor_rel = p.r_floor
    shape = p.prior_shape
    n_iter = p.iterations
    k_lo = p.k_lo
    whiten = p.whiten
    n_start = p.n_start
    start_passes = p.start_passes
    every = p.every
    passes = p.passes
    restart_last = p.restart_last
    max_gain2 = p.max_gain * p.max_gain
    overlap = p.overlap
    hold = p.hold
    n_recent = recent.shape[0]
    n_warm = buf.shape[0] if every > 0 else 0
    w_save = np.empty_like(w)
    v_old = np.empty((2, n_bins, 2, 2), dtype=np.complex128)
    r = np.empty(2)
    phi = np.empty(2)
    for t in range(n_frames):
        x = xf[t]
        p0 = 0.0
        p1 = 0.0
        pd = 0.0
        for k in range(k_lo, n_bins):
            z0 = x[0, k]
            z1 = x[1, k]
            p0 += z0.real * z0.real + z0.imag * z0.imag
            p1 += z1.real * z1.real + z1.imag * z1.imag
            d = z0 - z1
            pd += d.real * d.real + d.imag * d.imag
        power = p0 + p1
        gain = 0.0
        if power > _SILENT_POWER:
            # one signal on both channels (a mono feed): no spatial information
            same = pd <= _SAME_POWER * power
            gain = _classify_frame(p0, p1, clip[t] > 0, same, st, lvl, p, st.frames >= n_start and n_start > 0)
            if gain < 1.0 or st.faulty_run > 0.0:
                # the outputs of a faulty frame (and of the frames overlapping
                # it) must not feed the voice label's kurtosis either
                st.tainted_left = overlap
        if gain > 0.0:
            st.frames += 1.0
            n = int(st.frames)
            # total weight of the frames so far: a = 1 - 1/S averages the first
            # frames exactly, a memory that starts short and grows
            st.total_weight = alpha * st.total_weight + 1.0
            a = 1.0 - 1.0 / st.total_weight
            _blend_cov(cov, x, a, gain * (1.0 - a), k_lo)
            n_pass = 0
            restart = False
            if n == n_start:
                # the first demixer (the identity's second output was silent)
                _demixers_jumped(st, overlap)
            if n <= n_warm:
                for m in range(2):
                    for k in range(n_bins):
                        buf[n - 1, m, k] = x[m, k]
                if n == n_start:
                    n_pass = start_passes
                elif n == n_warm:
                    n_pass = passes
                elif n > n_start:
                    # a pass costs in proportion to the n frames kept: past the
                    # first span, single passes m times sparser, so that neither
                    # the cost per frame nor a block's peak grows with n
                    m = (n + p.every_span - 1) // p.every_span
                    if m == 1:
                        if (n - n_start) % every == 0:
                            n_pass = passes
                    elif (n - n_start) % max(1, (every * m) // passes) == 0:
                        n_pass = 1
                if n_start > 0 and n > n_start and n <= restart_last and n % n_start == 0:
                    q2 = n // n_start
                    restart = (q2 & (q2 - 1)) == 0
            if restart:
                # demixers grown from little data can sit in a local optimum where
                # bands of bins hold the sources in opposite order; a fresh batch
                # estimate from the identity on all the data so far, kept only if
                # its likelihood is better, gets out of it
                for k in range(n_bins):
                    for q in range(2):
                        for m in range(2):
                            w_save[k, q, m] = w[k, q, m]
                            w[k, q, m] = 1.0 if q == m else 0.0
                for it in range(start_passes):
                    _batch_pass(buf, n, alpha, st.total_weight, w, p, k_lo, st, v)
                    _update_demixers(v, cov, p.eps_load, whiten, k_lo, w, st, False)
                if _contrast(buf, n, w, p, k_lo) < _contrast(buf, n, w_save, p, k_lo):
                    st.restarts_adopted += 1.0
                    _keep_output_order(buf, n, w_save, w, k_lo)
                    _demixers_jumped(st, overlap)
                else:
                    for k in range(n_bins):
                        for q in range(2):
                            for m in range(2):
                                w[k, q, m] = w_save[k, q, m]
                n_pass = max(n_pass, 1)
            if n < n_start:
                # too few frames to say anything: demixers decided on a handful
                # of frames lock bands of bins into opposite permutations that
                # later data does not undo, so they stay as they are
                pass
            elif n_pass > 0:
                # warm-up: every buffered frame's weight is recomputed with the
                # current demixers (as batch AuxIVA does); the online recursion
                # could only give each frame the weight it met on arrival
                for it in range(n_pass):
                    _batch_pass(buf, n, alpha, st.total_weight, w, p, k_lo, st, v)
                    _update_demixers(v, cov, p.eps_load, whiten, k_lo, w, st, it == 0)
            else:
                for q in range(2):
                    for k in range(k_lo, n_bins):
                        for i in range(2):
                            for j in range(2):
                                v_old[q, k, i, j] = v[q, k, i, j]
                for it in range(n_iter):
                    _frame_norms(x, w, k_lo, r)
                    if it == 0:
                        # running mean norm sets the floor that keeps quiet
                        # frames from dominating the weighted covariances
                        st.mean_norm = a * st.mean_norm + (1.0 - a) * 0.5 * (r[0] + r[1])
                    _weights(r, r_floor_rel * st.mean_norm + 1e-150, shape, phi)
                    for q in range(2):
                        for k in range(k_lo, n_bins):
                            for i in range(2):
                                for j in range(2):
                                    v[q, k, i, j] = v_old[q, k, i, j]
                    _accumulate(v, x, phi, a, 1.0 - a, k_lo)
                    _update_demixers(v, cov, p.eps_load, whiten, k_lo, w, st, it == 0)
            if hold > 0 and gain == 1.0:
                # (a loud frame is not the scene: half a second of a bump
                # would look like a new one and restart the learning)
                coh = _scene_check(x, w, cs, p.scene_beta, k_lo)
                st.coherence = coh
                # the last frames, in case the scene changes: they are its first
                recent[int(st.recent_written) % n_recent] = x
                st.recent_written += 1.0
                if n > n_warm + hold:
                    # after the warm-up the outputs' short-term coherence has a
                    # steady level (leakage, reverberation); a scene change
                    # lifts it well above that level
                    if st.coherence_level <= 0.0:
                        st.coherence_level = coh
                    if coh > p.scene_ratio * st.coherence_level and coh > p.scene_floor:
                        st.coherence_high += 1.0
                    else:
                        st.coherence_high = 0.0
                        st.coherence_level += p.level_beta * (coh - st.coherence_level)
                        # the scene has settled at the steady level
                        st.scene_retries = 0.0
                    if st.coherence_high >= hold:
                        _relearn_scene(recent, buf, n_warm, n_start, start_passes, alpha, whiten, k_lo,
                                       p, w, w_save, v, cov, st)
                        _demixers_jumped(st, overlap)
        elif power <= _SILENT_POWER:
            st.silent_frames += 1.0
        code = 1 if st.frames >= n_start and st.frames > 0 else 0
        if code == 1 and st.tainted_left > 0.0:
            code = 2
        if st.tainted_left > 0.0:
            st.tainted_left -= 1.0
        learned[t] = code
        direct_path_regularity(w, k_lo, k_near, near[t])
        # not in the first seconds: IP2 on a few seconds of frames is worse than
        # the whitened demixers, and the voice label decides on those first
        # seconds (two voice-call rooms labelled the wrong output for 8-10 s)
        if p.ip2_output == 1 and whiten == 1 and st.frames >= p.ip2_from:
            applied_demixers(v, p.eps_load, k_lo, w, w_out)
        else:
            for k in range(n_bins):
                for q in range(2):
                    for m in range(2):
                        w_out[k, q, m] = w[k, q, m]
        # projection back: with D[q, m] = conj(w_out[k, q, m]) and A = D^-1, the image
        # of output q at mic 0 is A[0, q] y_q = D[1, 1] y_0 / det(D), and the two
        # images sum to x_0
        for k in range(n_bins):
            x0 = x[0, k]
            if k < k_lo:
                img[t, 0, k] = 0.0
                img[t, 1, k] = 0.0
                continue
            d00 = np.conj(w_out[k, 0, 0])
            d01 = np.conj(w_out[k, 0, 1])
            d10 = np.conj(w_out[k, 1, 0])
            d11 = np.conj(w_out[k, 1, 1])
            det = d00 * d11 - d01 * d10
            if det.real * det.real + det.imag * det.imag > 1e-300:
                c = d11 / det
                # gain from the mics to the image: past max_gain the demixer is
                # ill-conditioned (two nearly parallel rows, e.g. estimated from
                # a handful of frames) and the two images would be huge and
                # cancel; the cap keeps the voice bounded, the images still sum
                # to x_0 because the second is computed as the remainder
                g2 = (c.real * c.real + c.imag * c.imag) * (
                    d00.real * d00.real + d00.imag * d00.imag + d01.real * d01.real + d01.imag * d01.imag)
                if g2 > max_gain2:
                    c *= math.sqrt(max_gain2 / g2)
                im0 = c * (d00 * x0 + d01 * x[1, k])
            else:
                im0 = 0.0
            img[t, 0, k] = im0
            img[t, 1, k] = x0 - im0
