"""Blind post-filter: a per-bin gain that removes what is left of the background in the voice.

After separation the voice output ``V`` still holds some of the background
(reverberant tails a per-bin 2×2 demixer cannot cancel, bins where the
demixer has not converged); the background output ``B`` is a running
reference of that background. Per STFT bin ``k`` and frame:

1. Short-memory background power ``P_B[k]`` (recursive average of ``|B[k]|²``,
   time constant ``noise_tau_s``, a few frames: music and babble change fast).
2. Leakage of the background into the voice, ``L[k] = β₀ + w·min(|Φ_VB|²/Φ_BB², 1)``:
   a calibrated fraction ``β₀`` plus the coherent part, the squared
   magnitude of the least-squares coefficient predicting ``V`` from ``B``
   (long-memory cross- and auto-power, ``leak_tau_s``).
3. The voice's own noise floor ``P_min[k]``: the minimum of its smoothed
   power ``P_V[k]`` over the last ``U × sub_len`` frames (minimum statistics,
   kept as U sub-window minima; about 1.5 s, longer than a talker holds a
   sound in one bin), for what stays in the voice whatever the background
   output does (stationary noise the demixer leaves). Weighted by
   ``floor_weight``: 0 in fd since the tracker of step 3c replaced it, 2 in
   td's filter bank.
3b. Comb valleys (optional; fine STFTs only): the harmonic comb (spacing
   ``comb_lo_hz`` to ``comb_hi_hz`` in 1 Hz steps) whose teeth stand highest
   above the midpoints between them, on the log magnitude of ``V`` up to
   ``comb_top_hz``, is fitted to each frame; when its contrast (nepers, mean per
   tooth) reaches ``comb_min``, the power of ``V`` in the bins at least
   ``valley_bins`` from every tooth, interpolated geometrically across the
   teeth, is the frame's valley estimate below ``valley_top_hz`` (smoothed over
   the frames that have one, ``a_valley``). The comb is the talker's harmonics
   where the voice is voiced and clean, but it is not a pitch tracker: it fits
   nearly every frame, mostly at 150–400 Hz whatever the talker's pitch, and
   what it measures is the voice output's own lower envelope between its
   strongest partials, instant by instant. Why: in the voice-call rooms with
   real music ``0.25·P_B`` under-estimates the music left in the voice by 2–5 dB
   (the output powers say little where the voice covers 88–94 % of the bins),
   and this bound lifts it (bench/VOICECALL.md). It also takes some of a clean
   voice (its own power between its partials): so it weighs in only as the
   background output's broadband power nears the voice's (``scene_lo_db`` to
   ``scene_hi_db``, long-memory powers ``a_scene``), and a voice alone in a quiet
   room is left as it was without it; and only as the background output
   fluctuates (``fluct_lo_db`` to ``fluct_hi_db``: the mean absolute distance in
   dB of its short-memory power ``P_B`` from its long-memory one ``Φ_BB`` over
   the valleys' bins, about their mean distance so that a broadband level step
   does not count, averaged like the scene powers): a steady noise is what
   the tracker of step 3c follows, and there the valleys only took voice
   (voice-call rooms with pink noise, offline: SDRi 2.9 -> 2.0 dB with them ungated).
3c. The voice's own noise tracked by speech presence ``N_V[k]`` (Gerkmann &
   Hendriks 2012, "unbiased MMSE-based noise power estimation with low
   complexity and low tracking delay"): with an a-priori SNR ``ξ_H1`` assumed
   where speech is present, the posterior presence probability
   ``P₁ = 1 / (1 + (1+ξ_H1)·exp(−|V|²/N_V · ξ_H1/(1+ξ_H1)))``; the noise power's
   expectation ``(1−P₁)|V|² + P₁·N_V`` is averaged (``a_track``); a ``P₁`` that
   stays above ``track_p_max`` (averaged, ``a_track_p``) is capped there, so an
   estimate far below a risen noise still climbs. It starts as the least power
   of the first ``track_init`` frames heard (their mean, 0.2-0.3 dB more voice
   SIRi in the voice-call rooms, takes a voice at the start for noise: a talker
   from the first sample lost 1.6 dB of speech against 1.2). A frame is heard
   when it holds no silence: the voice is not digital silence (under
   ``silence``), nor was it in the ``lead`` frames before it, which overlap it
   (the zeros that stand for "before the stream" count as silence): this
   floor, the minimum statistics of step 3 and the pause gate's of step 8
   learn only from frames heard and hold through silence.
   Why: taken from the padded frames the start sat 20 dB under the noise, and
   climbing back at the capped rate took 2 s, in which the filter left the
   noise above 4 kHz as it was (voice-call rooms: voice SIRi +14.8 → +15.3 dB,
   OVRL +1.07 → +1.11; bench/VOICECALL.md); a muted mic would have sunk it the
   same way mid-stream, and the frames where the sound comes back, partly
   silence, as low as the padded ones. Why the tracker, over the minimum statistics of step 3: it
   sits within about a dB of the noise with no bias factor to guess (the
   minimum statistics sit 5-6 dB under it before theirs), and it follows a
   rising noise within a second instead of holding the quieter one for a
   whole minimum window (1.5 s). In fd on the voice-call rooms it raised voice
   SIRi from +11.7 to +12.4 dB for 0.1 dB of SDR, PESQ and OVRL unchanged,
   and on 12 held-out rooms too (bench/VOICECALL.md).
   Not in td's filter bank: at a 2 ms hop its frames are far from the
   independent periodograms the estimator assumes (it cost td SDR and OVRL).
4. Residual-noise PSD in the voice
   ``λ[k] = max(L[k]·P_B[k], s·H[k]) + w_f·P_min[k] + w_t·N_V[k]``
   (``H`` the valley estimate in the frames that have one, ``s`` = ``valley_scale``), a-posteriori SNR
   ``γ = |V|²/λ``, decision-directed a-priori SNR
   ``ξ = α·Ŝ²_prev/λ + (1−α)·max(γ−1, 0)`` (``Ŝ²_prev = (G|V|)²`` of the previous frame).
5. Gain: Wiener ``ξ/(1+ξ)`` or MMSE log-spectral amplitude
   ``G = ξ/(1+ξ)·exp(½E₁(ν))``, ``ν = γξ/(1+ξ)``, floored at ``g_speech``.
6. Speech presence (optional, Cohen's optimally-modified LSA): the a-priori
   SNR smoothed in time (``ζ``, 45 ms) and then over a few bins
   (local, Hann weights) and a few hundred Hz (global, plain average) gives the a-priori probability that
   speech is absent, ``q = 1 − P(ζ_local)·P(ζ_global)`` (``P`` rising from 0 to 1
   between ``zeta_lo`` and ``zeta_hi`` on a log scale, ``q ≤ q_max``); the
   presence probability is ``p = 1 / (1 + q/(1−q)·(1+ξ)·e^(−ν))`` and the gain
   ``G^p · g_absent^(1−p)``: the full LSA gain where speech is, the deeper floor
   ``g_absent`` where it is not. Why: a single floor is either shallow enough to
   keep weak speech, and leaves the background audible between words, or deep
   enough to silence it, and distorts the speech (bench/VOICECALL.md).
7. The gains are smoothed over a few bins (a Hann window, ``n_smooth`` bins):
   isolated bins that flip between floor and one are what is heard as musical
   noise. Clipped to ``[min(g_speech, g_absent), 1]``; ``g_speech = 1`` (suppress
   0) gives every gain exactly 1.
8. Pause gate (optional, ``gate_db`` > 0): the energy of the gained voice in
   each frame, smoothed (``a_gate``), against its floor (the least frame
   energy over the minimum statistics' window, kept as sub-window minima); a
   frame within ``gate_near_db`` of the floor is a pause unless speech was
   seen in the last ``gate_hang`` frames (and once ``gate_wait`` frames have
   been heard: over the first fraction of a second of speech the floor is the
   talker's quietest syllable, not a pause), and there every gain goes down by
   up to ``gate_db`` (at once back up when speech returns, falling with
   ``a_gate_release``). Why: DNSMOS hears the level left between words
   (DeepFilterNet3's pauses spliced into fd's voice raised OVRL where the
   same level from a steady attenuation did as much: bench/VOICECALL.md).
   While the background output is steady (its fluctuation of step 3b from
   ``fluct_hi_db`` down to ``fluct_lo_db``) the depth goes to ``gate_steady_db``:
   in steady noise the floor is the noise's and a pause is a pause, and the
   hiss left there is what DNSMOS penalises most (voice-call rooms with pink
   noise: OVRL +0.25 at 40 dB against 20), while in babble, café and music a
   deeper gate also takes quiet speech (OVRL −0.03 to −0.07).

Parameters travel in one :data:`PARAMS` record read by name (``p.g_min``); the
owner object is :class:`rtsep.postfilter.PostFilter`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .records import new_record

#: The parameters of :func:`postfilter_frame` (one record, read by field).
PARAMS = np.dtype([
    ("a_noise", "f8"),       # forgetting factor per frame of the short-memory background power
    ("a_leak", "f8"),        # ... of the long-memory cross- and auto-powers (leakage)
    ("beta0", "f8"),         # calibrated leakage floor (power fraction)
    ("leak_weight", "f8"),   # weight of the measured coherent leakage
    ("alpha_dd", "f8"),      # decision-directed smoothing of the a-priori SNR
    ("g_min", "f8"),         # gain floor where speech is present (linear); 1: the filter is off
    ("lsa", "i8"),           # 1: MMSE log-spectral amplitude gain, 0: Wiener
    ("lam_floor", "f8"),     # noise PSD floor (absolute power): keeps silence finite
    ("a_voice", "f8"),       # forgetting factor of the smoothed voice power
    ("sub_len", "i8"),       # frames per sub-window of the voice's minimum statistics
    ("floor_weight", "f8"),  # weight of the voice's own noise floor (0: not tracked)
    ("spp", "i8"),           # 1: speech-presence weighting of the gain (step 6), 0: off
    ("a_zeta", "f8"),        # forgetting factor per frame of the smoothed a-priori SNR ζ
    ("n_local", "i8"),       # bins of the local ζ average (odd)
    ("n_global", "i8"),      # bins of the global ζ average (odd)
    ("zeta_lo", "f8"),       # ζ at and below which speech is taken as absent (linear)
    ("zeta_hi", "f8"),       # ζ at and above which speech is taken as present (linear)
    ("q_max", "f8"),         # largest a-priori speech-absence probability
    ("g_absent", "f8"),      # gain floor where speech is absent (linear)
    ("n_smooth", "i8"),      # bins of the gain's smoothing over frequency (odd; 1: none)
    ("comb", "i8"),          # 1: the comb valleys bound the noise estimate from below (step 3b)
    ("bin_hz", "f8"),        # width of a bin (Hz)
    ("comb_lo_hz", "f8"),    # narrowest comb spacing tried (Hz)
    ("comb_hi_hz", "f8"),    # widest comb spacing tried (Hz, excluded)
    ("comb_top_hz", "f8"),   # teeth above this are not scored (Hz)
    ("comb_min", "f8"),      # least mean log-contrast of the teeth over the midpoints (nepers)
    ("valley_bins", "f8"),   # least distance of a valley bin from every tooth (bins)
    ("valley_top_hz", "f8"), # the valley estimate covers the bins below this (Hz)
    ("valley_scale", "f8"),  # weight of the valley estimate in λ
    ("a_valley", "f8"),      # forgetting factor of the valley estimate, per frame that has one
    ("a_scene", "f8"),       # forgetting factor per frame of the outputs' broadband powers
    ("scene_lo_db", "f8"),   # background-to-voice power ratio (dB) at and below which the valleys are off
    ("scene_hi_db", "f8"),   # ... at and above which they weigh fully
    ("fluct_lo_db", "f8"),   # background output's fluctuation (dB) at and below which the valleys are off
    ("fluct_hi_db", "f8"),   # ... at and above which they weigh fully
    ("track_weight", "f8"),  # weight of the voice's own noise tracked by speech presence (step 3c; 0: off)
    ("a_track", "f8"),       # forgetting factor per frame of that noise estimate
    ("a_track_p", "f8"),     # ... of the averaged presence probability that detects a stuck estimate
    ("track_xi", "f8"),      # a-priori SNR assumed where speech is present (linear)
    ("track_p_max", "f8"),   # presence probability above which the estimate is taken as stuck
    ("track_init", "i8"),    # heard frames whose least power is the estimate's start
    ("lead", "i8"),          # frames of sound after silence that still hold some of it (the framing's overlap)
    ("silence", "f8"),       # a frame whose voice power (sum over bins) is at or under this is silence
    ("gate_db", "f8"),       # pause gate: depth (dB) of the whole frame's extra attenuation in pauses (0: off)
    ("gate_steady_db", "f8"),  # ... its depth (dB) while the background output is steady (fluct_lo_db or under)
    ("gate_near_db", "f8"),  # ... a frame within this of the gained voice's energy floor is a pause (dB)
    ("gate_hang", "i8"),     # ... frames a speech frame keeps the gate open
    ("a_gate", "f8"),        # ... forgetting factor per frame of the smoothed frame energy
    ("a_gate_release", "f8"),  # ... per frame of the gate's fall (it rises at once)
    ("gate_wait", "i8"),     # ... frames heard before it may close (its floor needs them)
])


def new_params(**fields: float) -> np.ndarray:
    """The ``params`` record of :func:`postfilter_frame` from every field of :data:`PARAMS`."""
    return new_record(PARAMS, **fields)


@njit(cache=True)
def expint_e1(x: float) -> float:
    """Exponential integral E₁(x) for x > 0 (Abramowitz & Stegun 5.1.53 / 5.1.56, relative error < 1e-4).

    Parameters
    ----------
    x : float
        Argument, > 0 (smaller values are taken as 1e-12).

    Returns
    -------
    float
    """
    if x < 1e-12:
        x = 1e-12
    if x <= 1.0:
        return (-math.log(x) - 0.57721566 + x * (0.99999193 + x * (-0.24991055 + x * (0.05519968
                + x * (-0.00976004 + x * 0.00107857)))))
    if x > 700.0:
        return 0.0
    num = x * x + 2.334733 * x + 0.250621
    den = x * x + 3.330657 * x + 1.681534
    return math.exp(-x) / x * num / den


@njit(cache=True)
def _hann_weights(n: int, out: np.ndarray) -> None:
    """The n weights (summing to one) of a Hann window without its zero ends, into ``out[:n]``."""
    total = 0.0
    for i in range(n):
        w = 0.5 - 0.5 * math.cos(2.0 * math.pi * (i + 1) / (n + 1))
        out[i] = w
        total += w
    for i in range(n):
        out[i] /= total


@njit(cache=True)
def _smoothed(x: np.ndarray, k: int, weights: np.ndarray, n: int) -> float:
    """Weighted average of ``x`` over the n bins centred on k, the edge bins repeated."""
    last = x.shape[0] - 1
    acc = 0.0
    for i in range(n):
        j = k + i - n // 2
        if j < 0:
            j = 0
        elif j > last:
            j = last
        acc += weights[i] * x[j]
    return acc


@njit(cache=True)
def _box_average(x: np.ndarray, n: int, out: np.ndarray) -> None:
    """Plain average of ``x`` over the n bins centred on each bin (edge bins repeated), into ``out``.

    A running sum: the global average spans tens of bins, and a weighted one
    cost more than the rest of the filter.
    """
    last = x.shape[0] - 1
    h = n // 2
    acc = 0.0
    for j in range(-h, h + 1):
        acc += x[min(max(j, 0), last)]
    for k in range(last + 1):
        out[k] = acc / n
        acc += x[min(k + 1 + h, last)] - x[max(k - h, 0)]


@njit(cache=True)
def _presence_curve(z: float, lo: float, hi: float) -> float:
    """0 at and below ``lo``, 1 at and above ``hi``, linear in log(z) between."""
    if z <= lo:
        return 0.0
    if z >= hi:
        return 1.0
    return math.log(z / lo) / math.log(hi / lo)


@njit(cache=True)
def _interp_bins(x: np.ndarray, pos: float) -> float:
    """``x`` linearly interpolated at fractional bin ``pos`` (0 beyond the last bin)."""
    k0 = int(pos)
    if k0 + 1 >= x.shape[0]:
        return 0.0
    fr = pos - k0
    return (1.0 - fr) * x[k0] + fr * x[k0 + 1]


@njit(cache=True)
def comb_fit(log_mag: np.ndarray, p: np.void) -> tuple[float, float]:
    """The harmonic comb that best fits a frame: (spacing in Hz, contrast in nepers).

    Parameters
    ----------
    log_mag : ndarray, shape (K,), float64
        Natural log of the frame's magnitude spectrum.
    p : record of :data:`PARAMS`
        Reads ``comb_lo_hz``, ``comb_hi_hz``, ``comb_top_hz``, ``bin_hz``.

    Returns
    -------
    (float, float)
        The spacing (1 Hz steps) whose teeth, up to ``comb_top_hz``, stand
        highest above the midpoints between them, and that height averaged over
        its teeth.
    """
    best, best_f = -1e300, 0.0
    f = p.comb_lo_hz
    while f < p.comb_hi_hz:
        n_t = int(p.comb_top_hz // f)
        step = f / p.bin_hz
        acc = 0.0
        for h in range(1, n_t + 1):
            acc += _interp_bins(log_mag, h * step) - _interp_bins(log_mag, (h + 0.5) * step)
        score = acc / max(n_t, 1)
        if score > best:
            best, best_f = score, f
        f += 1.0
    return best_f, best


@njit(cache=True)
def valley_estimate(pv: np.ndarray, spacing_hz: float, p: np.void, out: np.ndarray) -> int:
    """Power between a comb's teeth, interpolated across them (geometrically), into ``out[:top]``.

    Parameters
    ----------
    pv : ndarray, shape (K,), float64
        The frame's power spectrum ``|V|²``.
    spacing_hz : float
        The comb's spacing (Hz).
    p : record of :data:`PARAMS`
        Reads ``bin_hz``, ``valley_bins``, ``valley_top_hz``.
    out : ndarray, shape (≥ top,), float64
        Output: the estimate in bins ``0 … top-1`` (held flat outside the outer valleys).

    Returns
    -------
    int
        ``top``, the bins written, or 0 when fewer than four bins lie between the teeth.
    """
    top = min(pv.shape[0], int(math.ceil(p.valley_top_hz / p.bin_hz)))
    spacing = spacing_hz / p.bin_hz
    prev = -1
    n_valley = 0
    for k in range(3, top):
        r = k / spacing
        if abs(r - math.floor(r + 0.5)) * spacing < p.valley_bins:
            continue
        lv = math.log(pv[k] + 1e-30)
        if prev < 0:
            for j in range(0, k + 1):
                out[j] = lv
        else:
            lp = out[prev]
            for j in range(prev + 1, k + 1):
                out[j] = lp + (lv - lp) * (j - prev) / (k - prev)
        prev = k
        n_valley += 1
    if n_valley < 4:
        return 0
    for j in range(prev + 1, top):
        out[j] = out[prev]
    for j in range(top):
        out[j] = math.exp(out[j])
    return top


@njit(cache=True)
def postfilter_frame(v: np.ndarray, b: np.ndarray, p_b: np.ndarray, phi_bb: np.ndarray,
                     phi_vb: np.ndarray, s2_prev: np.ndarray, p_v: np.ndarray, p_min: np.ndarray,
                     zeta: np.ndarray, h_psd: np.ndarray, scene: np.ndarray, lam_v: np.ndarray,
                     p_bar: np.ndarray, gate: np.ndarray, count: np.ndarray, params: np.ndarray,
                     work: np.ndarray, gain: np.ndarray) -> None:
    """Gains of one frame; updates the state arrays in place.

    Parameters
    ----------
    v, b : ndarray, shape (K,), complex128
        This frame's spectra of the separated voice and background (K bins).
    p_b : ndarray, shape (K,), float64
        Short-memory background power ``|B|²`` (state, updated).
    phi_bb : ndarray, shape (K,), float64
        Long-memory background power (state, updated).
    phi_vb : ndarray, shape (K,), complex128
        Long-memory cross-power ``V·B*`` (state, updated).
    s2_prev : ndarray, shape (K,), float64
        ``(G·|V|)²`` of the previous frame: the decision-directed memory (state, updated).
    p_v : ndarray, shape (K,), float64
        Smoothed voice power ``|V|²`` (state, updated).
    p_min : ndarray, shape (U + 1, K), float64
        Minima of ``p_v`` over the last U complete sub-windows (rows 0..U-1,
        +inf before they exist) and over the current one (row U) (state, updated).
    zeta : ndarray, shape (K,), float64
        Time-smoothed a-priori SNR of the speech-presence estimate (state, updated).
    h_psd : ndarray, shape (K,), float64
        The comb-valley estimate, smoothed over the frames that have one (state, updated).
    scene : ndarray, shape (3,), float64
        Long-memory broadband powers of the voice and the background, and the
        background's smoothed fluctuation (dB) (state, updated).
    lam_v : ndarray, shape (K,), float64
        The voice's own noise tracked by speech presence (state, updated).
    p_bar : ndarray, shape (K,), float64
        Averaged speech-presence probability of that tracker (state, updated).
    gate : ndarray, shape (U + 4,), float64
        The pause gate's smoothed frame energy (dB), frames of speech hold left,
        gate level (dB), and the frame-energy minima of the last U sub-windows
        and of the current one (dB, +inf before they exist) (state, updated).
    count : ndarray, shape (4,), int64
        Frames seen, frames with a valley estimate, frames heard, and the
        frames of sound in a row (state, updated); the averages grow their
        window until it reaches their time constant, so the first frames are
        not biased to zero.
    params : ndarray, shape (1,), :data:`PARAMS`
        The filter's parameters (:func:`new_params`).
    work : ndarray, shape (7, max(K, n_global, n_local, n_smooth)), float64
        Scratch (overwritten).
    gain : ndarray, shape (K,), float64
        Output: real gain per bin in ``[min(g_min, g_absent), 1]``.
    """
    p = params[0]
    a_n = p.a_noise
    a_l = p.a_leak
    beta0 = p.beta0
    w_leak = p.leak_weight
    a_dd = p.alpha_dd
    g_min = p.g_min
    lsa = p.lsa == 1
    lam_floor = p.lam_floor
    a_v = p.a_voice
    sub_len = max(1, p.sub_len)
    w_f = p.floor_weight
    spp = p.spp == 1
    a_z = p.a_zeta
    n_sub = p_min.shape[0] - 1
    w_t = p.track_weight
    a_t = p.a_track
    a_tp = p.a_track_p
    xi_h1 = p.track_xi
    xi_share = xi_h1 / (1.0 + xi_h1)  # the posterior's exponent factor, once per frame
    odds_h1 = 1.0 + xi_h1
    p_stuck = p.track_p_max
    n = count[0] + 1
    count[0] = n
    n_bins = v.shape[0]
    if g_min >= 1.0:  # suppress_db = 0: identity, bit for bit
        for k in range(n_bins):
            gain[k] = 1.0
        return
    # The floors (the tracker's start, the minimum statistics, the gate's) learn
    # only from frames heard: the framing's first frames are mostly the zeros
    # that stand for "before the stream", and a floor taken from them sat 20 dB
    # under the noise and took 2 s to climb back (pink rooms: no suppression
    # above 4 kHz until then); digital silence (a muted mic) and the frames
    # that overlap its end would do the same mid-stream, so the floors hold.
    e_v = 0.0
    for k in range(n_bins):
        pv = v[k].real * v[k].real + v[k].imag * v[k].imag
        work[2, k] = pv
        e_v += pv
    # a frame is heard once it holds no silence: past the first ``lead`` frames of
    # sound after silence, the zero padding before the stream included
    run = count[3] + 1 if e_v > p.silence else 0
    count[3] = run
    heard = run > p.lead
    m_heard = count[2] + 1 if heard else count[2]
    count[2] = m_heard
    first_heard = heard and m_heard == 1
    learn = heard or m_heard == 0  # before anything is heard the floors follow the frames as they come
    warming = m_heard <= p.track_init  # the tracker's start: the least power of the first frames heard
    g_low = min(g_min, p.g_absent) if spp else g_min
    xi_k = work[0]
    nu_k = work[1]
    pv_k = work[2]
    g_k = work[3]
    weights = work[4]
    # a sub-window ends with this frame: its minimum replaces the oldest one
    opens = (n - 1) % sub_len == 0  # this frame starts a sub-window (the first frame too)
    close = n % sub_len == 0
    slot = (n // sub_len - 1) % n_sub if close else 0
    # growing window first, then exponential forgetting
    a_long = min(a_l, 1.0 - 1.0 / n)
    a_short = min(a_n, 1.0 - 1.0 / n)
    a_short_v = min(a_v, 1.0 - 1.0 / n)
    a_zeta = min(a_z, 1.0 - 1.0 / n)
    h_top = 0
    h_scale = 0.0
    # the background's fluctuation also sets the pause gate's depth
    if p.comb == 1 or p.gate_db > 0.0:
        log_mag = work[5]
        peak = 0.0
        e_b = 0.0
        for k in range(n_bins):
            peak = max(peak, pv_k[k])
            e_b += b[k].real * b[k].real + b[k].imag * b[k].imag
        # the background output's fluctuation: mean |log| distance of its short-memory
        # power from its long-memory one (dB; both as of the previous frame), about the
        # bins' mean distance, so that a broadband step in a steady noise is not taken
        # for the spectral changes of music or talkers
        top_f = min(n_bins, int(math.ceil(p.valley_top_hz / p.bin_hz)))
        dist = work[5]  # the log distances, kept for the second pass (log_mag overwrites them below)
        shift = 0.0
        n_f = 0
        for k in range(top_f):
            if p_b[k] > 0.0 and phi_bb[k] > 0.0:
                dist[k] = math.log(p_b[k] / phi_bb[k])
                shift += dist[k]
                n_f += 1
        shift /= max(n_f, 1)
        fluct = 0.0
        for k in range(top_f):
            if p_b[k] > 0.0 and phi_bb[k] > 0.0:
                fluct += abs(dist[k] - shift)
        fluct = 10.0 / math.log(10.0) * fluct / max(n_f, 1)
        a_sc = min(p.a_scene, 1.0 - 1.0 / n)
        scene[0] = a_sc * scene[0] + (1.0 - a_sc) * e_v
        scene[1] = a_sc * scene[1] + (1.0 - a_sc) * e_b
        scene[2] = a_sc * scene[2] + (1.0 - a_sc) * fluct
        if p.comb == 1 and scene[0] > 0.0 and scene[1] > 0.0:
            ratio_db = 10.0 * math.log10(scene[1] / scene[0])
            w = (ratio_db - p.scene_lo_db) / (p.scene_hi_db - p.scene_lo_db)
            w_fl = (scene[2] - p.fluct_lo_db) / max(p.fluct_hi_db - p.fluct_lo_db, 1e-9)
            h_scale = p.valley_scale * min(max(w, 0.0), 1.0) * min(max(w_fl, 0.0), 1.0)
        if peak > 0.0 and h_scale > 0.0:
            # a floor 180 dB under the frame's peak: empty bins must not decide the fit
            offset = 1e-9 * math.sqrt(peak) + 1e-30
            for k in range(n_bins):
                log_mag[k] = math.log(math.sqrt(pv_k[k]) + offset)
            spacing, contrast = comb_fit(log_mag, p)
            if contrast >= p.comb_min:
                h_top = valley_estimate(pv_k, spacing, p, work[6])
        if h_top > 0:
            m = count[1] + 1
            count[1] = m
            a_h = min(p.a_valley, 1.0 - 1.0 / m)
            for k in range(h_top):
                h_psd[k] = a_h * h_psd[k] + (1.0 - a_h) * work[6, k]
    for k in range(n_bins):
        br, bi = b[k].real, b[k].imag
        pv = pv_k[k]
        pb = br * br + bi * bi
        p_b[k] = a_short * p_b[k] + (1.0 - a_short) * pb
        phi_bb[k] = a_long * phi_bb[k] + (1.0 - a_long) * pb
        phi_vb[k] = a_long * phi_vb[k] + (1.0 - a_long) * (v[k] * np.conj(b[k]))
        leak = 0.0
        if phi_bb[k] > 0.0:
            c = phi_vb[k]
            leak = (c.real * c.real + c.imag * c.imag) / (phi_bb[k] * phi_bb[k])
            if leak > 1.0:
                leak = 1.0
        lam = (beta0 + w_leak * leak) * p_b[k]
        if k < h_top and h_scale * h_psd[k] > lam:
            lam = h_scale * h_psd[k]
        if w_f > 0.0:
            p_v[k] = a_short_v * p_v[k] + (1.0 - a_short_v) * pv
            floor = _window_floor(p_min[:, k], p_v[k], opens, learn, first_heard, close, slot)
            if floor == np.inf:
                floor = 0.0  # a whole window of silence: nothing to go by
            lam += w_f * floor
        if w_t > 0.0:
            if not learn:
                pass  # silence: the estimate holds
            elif warming:
                if n == 1 or first_heard or pv < lam_v[k]:
                    lam_v[k] = pv
            else:
                ratio = pv / max(lam_v[k], lam_floor) * xi_share
                p_h1 = 1.0 / (1.0 + odds_h1 * math.exp(-min(ratio, 700.0)))
                p_bar[k] = a_tp * p_bar[k] + (1.0 - a_tp) * p_h1
                if p_bar[k] > p_stuck and p_h1 > p_stuck:
                    p_h1 = p_stuck
                lam_v[k] = a_t * lam_v[k] + (1.0 - a_t) * ((1.0 - p_h1) * pv + p_h1 * lam_v[k])
            lam += w_t * lam_v[k]
        if lam < lam_floor:
            lam = lam_floor
        gamma = pv / lam
        xi = a_dd * s2_prev[k] / lam + (1.0 - a_dd) * max(gamma - 1.0, 0.0)
        g = xi / (1.0 + xi)
        nu = g * gamma
        if lsa and g > 0.0:
            e = 0.5 * expint_e1(nu)
            g = g * math.exp(e) if e < 50.0 else 1.0
        if not g <= 1.0:  # also catches NaN
            g = 1.0
        if g < g_min:
            g = g_min
        g_k[k] = g
        if spp:
            xi_k[k] = xi
            nu_k[k] = nu
            zeta[k] = a_zeta * zeta[k] + (1.0 - a_zeta) * xi
    if spp:
        n_loc, n_glob = p.n_local, p.n_global
        lo, hi = p.zeta_lo, p.zeta_hi
        q_max = p.q_max
        log_abs = math.log(p.g_absent)
        _hann_weights(n_loc, weights)
        for k in range(n_bins):
            # P_local waits in the output row: the two averages need different windows
            gain[k] = _presence_curve(_smoothed(zeta, k, weights, n_loc), lo, hi)
        _box_average(zeta, n_glob, weights)
        for k in range(n_bins):
            p_glob = _presence_curve(weights[k], lo, hi)
            q = 1.0 - gain[k] * p_glob
            if q > q_max:
                q = q_max
            if q <= 0.0:
                presence = 1.0
            else:
                odds = q / (1.0 - q) * (1.0 + xi_k[k]) * math.exp(-min(nu_k[k], 700.0))
                presence = 1.0 / (1.0 + odds)
            # G^p · g_absent^(1-p), in logs (G >= g_min > 0)
            g_k[k] = math.exp(presence * math.log(g_k[k]) + (1.0 - presence) * log_abs)
    n_sm = p.n_smooth
    if n_sm > 1:
        _hann_weights(n_sm, weights)
    for k in range(n_bins):
        g = _smoothed(g_k, k, weights, n_sm) if n_sm > 1 else g_k[k]
        if not g <= 1.0:
            g = 1.0
        if g < g_low:
            g = g_low
        gain[k] = g
        s2_prev[k] = g * g * pv_k[k]
    if p.gate_db > 0.0:
        _pause_gate(gain, pv_k, gate, scene[2], n, opens, close, slot, learn, first_heard, m_heard, p)


@njit(cache=True)
def _window_floor(mins: np.ndarray, value: float, opens: bool, learn: bool, first_heard: bool, close: bool,
                  slot: int) -> float:
    """The least ``value`` over the last U complete sub-windows and the current one.

    The floor of the minimum statistics (step 3) and of the pause gate (step 8).

    Parameters
    ----------
    mins : ndarray, shape (U + 1,), float64
        The minima of the U complete sub-windows (+inf before they exist) and,
        last, of the current one (state, updated; a view of the owner's rows).
    value : float
        This frame's value.
    opens : bool
        This frame starts a sub-window.
    learn : bool
        The frame may move the floor; silence may not: a sub-window that
        opens in it has no minimum yet (+inf).
    first_heard : bool
        The first frame heard: the floor forgets the frames before.
    close : bool
        This frame ends the sub-window, whose minimum replaces row ``slot``.

    Returns
    -------
    float
        The floor; +inf while only silence has been seen in the window.
    """
    n_sub = mins.shape[0] - 1
    if first_heard:
        for u in range(n_sub):
            mins[u] = np.inf
    if learn and (opens or first_heard or value < mins[n_sub]):
        mins[n_sub] = value
    elif not learn and opens:
        mins[n_sub] = np.inf
    floor = mins[n_sub]
    for u in range(n_sub):
        if mins[u] < floor:
            floor = mins[u]
    if close:
        mins[slot] = mins[n_sub]
    return floor


@njit(cache=True)
def _pause_gate(gain: np.ndarray, pv: np.ndarray, gate: np.ndarray, fluct: float, n: int, opens: bool,
                close: bool, slot: int, learn: bool, first_heard: bool, m_heard: int, p: np.void) -> None:
    """Step 8 on this frame's final gains (the decision-directed memory keeps the ungated ones).

    ``fluct``: the background output's smoothed fluctuation (dB, step 3b);
    ``opens``, ``close``, ``slot``, ``learn``, ``first_heard``: as in
    :func:`_window_floor` (``learn`` also lets the frame move the smoothed
    energy); ``m_heard``: frames heard so far.
    """
    energy = 0.0
    for k in range(gain.shape[0]):
        energy += gain[k] * gain[k] * pv[k]
    level = 10.0 * math.log10(energy + 1e-30)
    if learn:
        gate[0] = level if n == 1 or first_heard else p.a_gate * gate[0] + (1.0 - p.a_gate) * level
    floor = _window_floor(gate[3:], level, opens, learn, first_heard, close, slot)
    if gate[0] > floor + p.gate_near_db:
        gate[1] = p.gate_hang
    elif gate[1] > 0.0:
        gate[1] -= 1.0
    # steady from fluct_hi_db down to fluct_lo_db; not before the fluctuation's
    # average has filled its time constant (it starts at 0, which reads as steady)
    steady = min(max((p.fluct_hi_db - fluct) / max(p.fluct_hi_db - p.fluct_lo_db, 1e-9), 0.0), 1.0)
    steady *= min(n * (1.0 - p.a_scene), 1.0)
    depth = p.gate_db + (p.gate_steady_db - p.gate_db) * steady
    target = 0.0 if gate[1] > 0.0 or m_heard < p.gate_wait else -depth
    if target >= gate[2]:
        gate[2] = target
    else:
        gate[2] = p.a_gate_release * gate[2] + (1.0 - p.a_gate_release) * target
    factor = 10.0 ** (gate[2] / 20.0)
    for k in range(gain.shape[0]):
        gain[k] *= factor


@njit(cache=True)
def postfilter_frames(v: np.ndarray, b: np.ndarray, p_b: np.ndarray, phi_bb: np.ndarray,
                      phi_vb: np.ndarray, s2_prev: np.ndarray, p_v: np.ndarray, p_min: np.ndarray,
                      zeta: np.ndarray, h_psd: np.ndarray, scene: np.ndarray, lam_v: np.ndarray,
                      p_bar: np.ndarray, gate: np.ndarray, count: np.ndarray, params: np.ndarray,
                      work: np.ndarray, gains: np.ndarray) -> None:
    """:func:`postfilter_frame` over F consecutive frames: ``v``, ``b`` and ``gains`` are (F, K)."""
    for t in range(v.shape[0]):
        postfilter_frame(v[t], b[t], p_b, phi_bb, phi_vb, s2_prev, p_v, p_min, zeta, h_psd, scene, lam_v,
                         p_bar, gate, count, params, work, gains[t])
