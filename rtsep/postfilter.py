"""The post-filter's state owner: per-bin gains for a separated voice, frame by frame.

Meant to run inside an STFT that already exists (the fd engine's: frame 1024,
hop 256, sqrt-Hann), on the voice and background spectra of each frame, so it
adds no latency: multiply the voice spectrum by the returned gains before the
inverse FFT. The recursion itself is :func:`rtsep.kernels.postfilter.postfilter_frame`.

Example
-------
>>> pf = PostFilter(16000, frame=1024, hop=256, suppress_db=16.0)
>>> g = pf.process_frame(V, B)          # V, B: complex (513,) spectra of one frame
>>> V_clean = g * V
"""

from __future__ import annotations

import math

import numpy as np

from .config import check_range
from .errors import ConfigError, InputFormatError
from .kernels.postfilter import new_params, postfilter_frame, postfilter_frames
from .kernels.stft import pr_windows

#: Default maximum attenuation (dB), reached where speech is absent; chosen from bench/VOICECALL.md.
DEFAULT_SUPPRESS_DB = 16.0
#: Default floor (dB) where speech is present: deeper costs the voice (PESQ, ESTOI).
DEFAULT_SPEECH_FLOOR_DB = 12.0
#: Widths (Hz) of the speech-presence estimate's local and global averages of the
#: a-priori SNR, and of the gains' smoothing; 3, 31 and 3 bins at 1024 / 16 kHz.
_LOCAL_HZ, _GLOBAL_HZ, _SMOOTH_HZ = 50.0, 480.0, 50.0
#: Time constant (s) of the a-priori SNR's smoothing in the presence estimate.
_ZETA_TAU_S = 0.045
#: Minimum statistics of the voice's power: the floor is the least smoothed power
#: over this many seconds, kept as _N_SUB sub-window minima.
_FLOOR_WINDOW_S = 1.5
_N_SUB = 8
#: The comb valleys (kernel step 3b): comb spacings tried (Hz), the band the comb
#: is fitted in and the one the estimate covers (Hz), the least distance of a valley
#: bin from every tooth (bins: the analysis window's main lobe), the least contrast
#: of a fit (nepers), the estimate's weight and its time constant (s). Chosen on the
#: voice-call rooms' cached fd outputs and checked on 12 other rooms (other voices,
#: music, seeds) before the bench (bench/VOICECALL.md).
_COMB_HZ = (70.0, 400.0)
_COMB_TOP_HZ, _VALLEY_TOP_HZ = 2500.0, 4000.0
_VALLEY_BINS = 4.0
_COMB_MIN = 0.5
_VALLEY_SCALE, _VALLEY_TAU_S = 0.3, 0.1
#: The comb valleys weigh in as the background output's broadband power rises from
#: _SCENE_DB[0] to _SCENE_DB[1] against the voice's (both over _SCENE_TAU_S): a
#: voice alone in a quiet room keeps what the valleys would take from it.
_SCENE_DB = (-20.0, -10.0)
_SCENE_TAU_S = 2.0
#: The voice's own noise tracked by speech presence (kernel step 3c, Gerkmann &
#: Hendriks 2012): time constants (s) of the estimate and of the averaged
#: probability (their 0.8 and 0.9 per 16 ms frame), the a-priori SNR assumed
#: under speech (dB; theirs), the probability taken as a stuck estimate and the
#: start (s) whose least power is the first estimate.
_TRACK_TAU_S, _TRACK_P_TAU_S = 0.0717, 0.152
_TRACK_XI_DB = 15.0
_TRACK_P_MAX = 0.99
_TRACK_INIT_S = 0.08
#: A frame whose voice is quieter than white noise at this level (dBFS, through
#: a Hann window of the frame) is silence: the noise floors hold through it.
_SILENCE_DBFS = -100.0
#: Bins wider than this (Hz) blur a comb's teeth into its valleys (fd at frame 512,
#: td's 32 ms filter bank): the comb valleys are off there.
_VALLEY_MAX_BIN_HZ = 20.0
#: Pause gate (kernel step 8): a frame within this of the floor is a pause (dB), speech
#: keeps the gate open this long (s), the frame energy is smoothed and the gate falls
#: with these time constants (s) -- the values screened by bench/screen_pause_gate.py
#: (0.7 and 0.8 per 16 ms frame).
_GATE_NEAR_DB = 6.0
_GATE_HANG_S = 0.15
#: The gate stays open until this much audio has been heard (s): its floor is the
#: least level over a window, and over the first fraction of a second of speech that
#: is the talker's quietest syllable, not a pause.
_GATE_WAIT_S = 0.5
_GATE_SMOOTH_S, _GATE_RELEASE_S = 0.0449, 0.0717


class PostFilter:
    """Blind residual-background suppressor for the voice output of a separator.

    Parameters
    ----------
    fs : float
        Sample rate (Hz).
    frame : int
        STFT frame length (samples); the spectra have ``frame // 2 + 1`` bins.
    hop : int
        STFT frame advance (samples): sets the per-frame forgetting factors.
    suppress_db : float
        Maximum attenuation (dB, 0 to 60): the gain floor where speech is
        absent (everywhere when ``spp`` is off) is ``10^(-suppress_db/20)``.
        0 switches the filter off (every gain exactly 1).
    speech_floor_db : float
        Attenuation floor (dB) where speech is present, used with ``spp``;
        capped at ``suppress_db``.
    spp : bool
        Weight the gain by the probability that speech is present in the bin
        (Cohen's optimally-modified LSA): the full gain where it is, the
        ``suppress_db`` floor where it is not; and smooth the gains over 50 Hz.
        Off: one floor, no smoothing (the filter before bench/VOICECALL.md's
        third run).
    rule : {"wiener", "lsa"}
        Gain rule: Wiener or MMSE log-spectral amplitude.
    beta0 : float
        Calibrated leakage floor: the fraction of the background output's
        power assumed to remain in the voice (0 to 4).
    leak_weight : float
        Weight of the measured coherent leakage ``|Φ_VB|²/Φ_BB²`` (0 to 4). Off by
        default: fd's outputs are decorrelated per bin by construction (IVA), so
        this term is near zero there and measured to add nothing (bench/VOICECALL.md).
    noise_tau_s : float
        Time constant of the background power tracked as the noise (s).
    leak_tau_s : float
        Time constant of the leakage estimate (s).
    alpha_dd : float
        Decision-directed smoothing of the a-priori SNR (0 to 0.999).
    floor_weight : float
        Weight of the voice's own tracked noise floor in the noise estimate
        (0 to 10): its minimum statistics over 1.5 s, times this bias factor.
        Off by default since the tracker of ``track_weight`` replaced it (fd's
        voice-call rooms: voice SIRi +11.7 -> +12.4 dB, SDRi 3.0 -> 2.9, PESQ
        and OVRL unchanged, bench/VOICECALL.md); td's filter bank keeps it (2.0).
    track_weight : float
        Weight of the voice's own noise tracked by speech presence (0 to 10;
        Gerkmann & Hendriks' unbiased MMSE estimator, kernel step 3c): what
        stays in the voice whatever the background output does (stationary
        noise the demixer leaves).
    voice_tau_s : float
        Time constant of the voice power whose minimum is tracked (s).
    valleys : bool
        Let the voice's power between the teeth of the harmonic comb that best
        fits each frame bound the noise estimate from below (kernel step 3b):
        music left in the voice that the background output's power misses.
        Only where a bin is at most 20 Hz wide (fd's default frame; not frame
        512 at 16 kHz, nor td's filter bank). Off by default in this object
        (fd turns it on, :attr:`rtsep.config.FdParams.comb_valleys`): it also
        takes some of a voice that is already well separated (bench/VOICECALL.md).
    valley_fluct_db : (float, float)
        The comb valleys weigh in as the background output's fluctuation (the
        mean distance, in dB, of its 50 ms power from its 2 s power per bin
        below 4 kHz, about the bins' mean distance so that a broadband level
        step does not count, averaged over 2 s) rises from the first value to
        the second. Steady noise (pink: 2.5-2.9 dB in the 22 voice-call rooms)
        is the speech-presence tracker's; music (3.1-4.4), babble (3.2-3.9),
        café (3.3-3.7) and a second talker (4.7-5.4) are where the background
        output's power misses what is left in the voice. (-1, 0): whatever the
        background does.
    pause_gate_db : float
        Depth (dB, 0 to 60) of the pause gate (kernel step 8): the whole frame
        goes down by up to this much where the gained voice's energy sits
        within 6 dB of its 1.5 s floor and no speech was seen in the last
        0.15 s. 0 (the default) switches it off, bit for bit.
    pause_gate_steady_db : float or None
        The gate's depth (dB, 0 to 60) while the background output is steady
        (its fluctuation at or under ``valley_fluct_db[0]``, rising back to
        ``pause_gate_db`` at ``valley_fluct_db[1]``); None: ``pause_gate_db``.
        Only with the gate on (``pause_gate_db`` > 0).

    Attributes
    ----------
    valleys : bool
        Whether the comb valleys run (asked for and the bins are fine enough).
    """

    def __init__(self, fs: float, frame: int = 1024, hop: int = 256, suppress_db: float = DEFAULT_SUPPRESS_DB,
                 rule: str = "lsa", beta0: float = 0.25, leak_weight: float = 0.0, noise_tau_s: float = 0.05,
                 leak_tau_s: float = 2.0, alpha_dd: float = 0.95, floor_weight: float = 0.0,
                 voice_tau_s: float = 0.05, speech_floor_db: float = DEFAULT_SPEECH_FLOOR_DB,
                 spp: bool = True, valleys: bool = False, track_weight: float = 1.0,
                 valley_fluct_db: tuple[float, float] = (3.0, 3.5), pause_gate_db: float = 0.0,
                 pause_gate_steady_db: float | None = None) -> None:
        self.fs = check_range("fs (sample rate, Hz)", fs, 1000, 192000)
        self.frame = check_range("frame", frame, 8, 1 << 16, kind=int)
        self.hop = check_range("hop", hop, 1, self.frame, kind=int)
        self.suppress_db = check_range("suppress_db", suppress_db, 0.0, 60.0)
        if rule not in ("wiener", "lsa"):
            raise ConfigError(f"rule must be 'wiener' or 'lsa', got {rule!r}")
        self.rule = rule
        beta0 = check_range("beta0", beta0, 0.0, 4.0)
        leak_weight = check_range("leak_weight", leak_weight, 0.0, 4.0)
        noise_tau_s = check_range("noise_tau_s", noise_tau_s, 0.0, 10.0)
        leak_tau_s = check_range("leak_tau_s", leak_tau_s, 0.0, 60.0)
        alpha_dd = check_range("alpha_dd", alpha_dd, 0.0, 0.999)
        floor_weight = check_range("floor_weight", floor_weight, 0.0, 10.0)
        voice_tau_s = check_range("voice_tau_s", voice_tau_s, 0.0, 10.0)
        track_weight = check_range("track_weight", track_weight, 0.0, 10.0)
        pause_gate_db = check_range("pause_gate_db", pause_gate_db, 0.0, 60.0)
        pause_gate_steady_db = (pause_gate_db if pause_gate_steady_db is None
                                else check_range("pause_gate_steady_db", pause_gate_steady_db, 0.0, 60.0))
        speech_floor_db = check_range("speech_floor_db", speech_floor_db, 0.0, 60.0)
        fluct_lo = check_range("valley_fluct_db[0]", valley_fluct_db[0], -1.0, 60.0)
        fluct_hi = check_range("valley_fluct_db[1]", valley_fluct_db[1], -1.0, 60.0)
        if not fluct_lo < fluct_hi:
            raise ConfigError(f"valley_fluct_db must rise (low, high) in dB, got {tuple(valley_fluct_db)}")
        self.spp = bool(spp)
        frames_per_s = self.fs / self.hop
        self.n_bins = self.frame // 2 + 1
        bin_hz = self.fs / self.frame

        def forget(tau: float) -> float:
            return math.exp(-1.0 / (tau * frames_per_s)) if tau > 0 else 0.0

        def odd_bins(hz: float) -> int:
            return max(1, 2 * round((hz / bin_hz - 1.0) / 2.0) + 1)

        self.valleys = bool(valleys) and bin_hz <= _VALLEY_MAX_BIN_HZ
        floor_db = min(speech_floor_db, self.suppress_db) if self.spp else self.suppress_db
        widths = (odd_bins(_LOCAL_HZ), odd_bins(_GLOBAL_HZ), odd_bins(_SMOOTH_HZ) if self.spp else 1)
        self.params = new_params(a_noise=forget(noise_tau_s), a_leak=forget(leak_tau_s), beta0=beta0,
                                 leak_weight=leak_weight, alpha_dd=alpha_dd,
                                 g_min=10.0 ** (-floor_db / 20.0), lsa=int(rule == "lsa"),
                                 lam_floor=1e-20, a_voice=forget(voice_tau_s),
                                 sub_len=max(1, round(_FLOOR_WINDOW_S * frames_per_s / _N_SUB)),
                                 floor_weight=floor_weight, spp=int(self.spp), a_zeta=forget(_ZETA_TAU_S),
                                 n_local=widths[0], n_global=widths[1], zeta_lo=0.1, zeta_hi=10 ** 0.5,
                                 q_max=0.95, g_absent=10.0 ** (-self.suppress_db / 20.0), n_smooth=widths[2],
                                 comb=int(self.valleys), bin_hz=bin_hz, comb_lo_hz=_COMB_HZ[0],
                                 comb_hi_hz=_COMB_HZ[1], comb_top_hz=_COMB_TOP_HZ, comb_min=_COMB_MIN,
                                 valley_bins=_VALLEY_BINS, valley_top_hz=_VALLEY_TOP_HZ,
                                 valley_scale=_VALLEY_SCALE, a_valley=forget(_VALLEY_TAU_S),
                                 a_scene=forget(_SCENE_TAU_S), scene_lo_db=_SCENE_DB[0], scene_hi_db=_SCENE_DB[1],
                                 fluct_lo_db=fluct_lo, fluct_hi_db=fluct_hi,
                                 track_weight=track_weight, a_track=forget(_TRACK_TAU_S),
                                 a_track_p=forget(_TRACK_P_TAU_S), track_xi=10.0 ** (_TRACK_XI_DB / 10.0),
                                 track_p_max=_TRACK_P_MAX, track_init=max(1, round(_TRACK_INIT_S * frames_per_s)),
                                 # a frame overlaps the frame/hop - 1 before it; every owner's framing
                                 # starts with frame - hop or more zeros (fd, the low-delay bank,
                                 # filter_signal), which count as silence
                                 lead=max(0, -(-self.frame // self.hop) - 1),
                                 silence=self.n_bins * 0.375 * self.frame * 10.0 ** (_SILENCE_DBFS / 10.0),
                                 gate_db=pause_gate_db, gate_steady_db=pause_gate_steady_db,
                                 gate_near_db=_GATE_NEAR_DB,
                                 gate_hang=max(1, round(_GATE_HANG_S * frames_per_s)),
                                 a_gate=forget(_GATE_SMOOTH_S), a_gate_release=forget(_GATE_RELEASE_S),
                                 gate_wait=round(_GATE_WAIT_S * frames_per_s))
        self.gain = np.ones(self.n_bins)
        self._work = np.zeros((7, max(self.n_bins, *widths)))
        self.reset()

    @property
    def g_min(self) -> float:
        """Lowest gain (linear): where speech is absent (everywhere without ``spp``)."""
        p = self.params[0]
        # without spp both floors are suppress_db's
        return float(min(p["g_min"], p["g_absent"]))

    def reset(self) -> None:
        """Forget the stream: powers, leakage and the decision-directed memory start afresh."""
        k = self.n_bins
        self.p_b = np.zeros(k)
        self.phi_bb = np.zeros(k)
        self.phi_vb = np.zeros(k, dtype=np.complex128)
        self.s2_prev = np.zeros(k)
        self.p_v = np.zeros(k)
        self.p_min = np.full((_N_SUB + 1, k), np.inf)
        self.zeta = np.zeros(k)
        self.h_psd = np.zeros(k)
        self.scene = np.zeros(3)
        self.lam_v = np.zeros(k)
        self.p_bar = np.zeros(k)
        self.gate = np.concatenate([np.zeros(3), np.full(_N_SUB + 1, np.inf)])
        self.count = np.zeros(4, dtype=np.int64)

    _STATE = ("p_b", "phi_bb", "phi_vb", "s2_prev", "p_v", "p_min", "zeta", "h_psd", "scene", "lam_v", "p_bar",
              "gate", "count")

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Copies of the state arrays (enough to resume exactly)."""
        return {k: getattr(self, k).copy() for k in self._STATE}

    def load_state_arrays(self, state: dict[str, np.ndarray]) -> None:
        """Restore state saved by :meth:`state_arrays`."""
        for k in self._STATE:
            getattr(self, k)[...] = state[k]

    def process_frame(self, v: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Gains for one frame.

        Parameters
        ----------
        v, b : ndarray, shape (frame // 2 + 1,), complex
            Spectra of this frame of the separated voice and background.

        Returns
        -------
        ndarray, shape (frame // 2 + 1,), float64
            Gain per bin in ``[10^(-suppress_db/20), 1]``; a view of an internal
            buffer, overwritten by the next call (copy it to keep it).
        """
        v = np.ascontiguousarray(v, dtype=np.complex128)
        b = np.ascontiguousarray(b, dtype=np.complex128)
        if v.shape != (self.n_bins,) or b.shape != (self.n_bins,):
            raise InputFormatError(f"process_frame needs two spectra of shape ({self.n_bins},), "
                                   f"got {v.shape} and {b.shape}")
        postfilter_frame(v, b, self.p_b, self.phi_bb, self.phi_vb, self.s2_prev, self.p_v, self.p_min,
                         self.zeta, self.h_psd, self.scene, self.lam_v, self.p_bar, self.gate, self.count,
                         self.params, self._work, self.gain)
        return self.gain

    def process_frames(self, v: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Gains for F consecutive frames, in one kernel call.

        Parameters
        ----------
        v, b : ndarray, shape (F, frame // 2 + 1), complex128, C-contiguous
            Spectra of F frames of the separated voice and background.

        Returns
        -------
        ndarray, shape (F, frame // 2 + 1), float64
            Gain per frame and bin in ``[10^(-suppress_db/20), 1]`` (a new array).
        """
        if v.ndim != 2 or v.shape[1] != self.n_bins or b.shape != v.shape:
            raise InputFormatError(f"process_frames needs two arrays of shape (F, {self.n_bins}), "
                                   f"got {v.shape} and {b.shape}")
        gains = np.empty(v.shape)
        postfilter_frames(np.ascontiguousarray(v, dtype=np.complex128), np.ascontiguousarray(b, dtype=np.complex128),
                          self.p_b, self.phi_bb, self.phi_vb, self.s2_prev, self.p_v, self.p_min, self.zeta,
                          self.h_psd, self.scene, self.lam_v, self.p_bar, self.gate, self.count, self.params,
                          self._work, gains)
        return gains


def filter_signal(voice: np.ndarray, background: np.ndarray, pf: PostFilter) -> np.ndarray:
    """Run a post-filter over whole signals with its own sqrt-Hann STFT (offline, causal per frame).

    The framing is the fd engine's (``pf.frame``, ``pf.hop``), aligned so
    that the output lines up with the input: applied inside the engine's own
    STFT, the same gains would add no latency.

    Parameters
    ----------
    voice, background : ndarray, shape (n,), float
        Separated voice and background, aligned with each other.
    pf : PostFilter
        The filter (its state is used and advanced; call ``reset()`` first for a fresh stream).

    Returns
    -------
    ndarray, shape (n,), float64
        The filtered voice.
    """
    n_fft, hop = pf.frame, pf.hop
    x = np.stack([np.asarray(voice, dtype=np.float64), np.asarray(background, dtype=np.float64)], axis=1)
    n = x.shape[0]
    wa, ws = pr_windows(n_fft, hop)
    xp = np.concatenate([np.zeros((n_fft - hop, 2)), x, np.zeros((n_fft, 2))])
    n_frames = (xp.shape[0] - n_fft) // hop + 1
    idx = np.arange(n_frames)[:, None] * hop + np.arange(n_fft)[None, :]
    spec = np.fft.rfft(xp[idx] * wa[None, :, None], axis=1)  # (frames, bins, 2)
    out = np.empty((n_frames, pf.n_bins), dtype=np.complex128)
    for j in range(n_frames):
        out[j] = pf.process_frame(spec[j, :, 0], spec[j, :, 1]) * spec[j, :, 0]
    frames = np.fft.irfft(out, n=n_fft, axis=1) * ws[None, :]
    y = np.zeros((n_frames - 1) * hop + n_fft)
    for j in range(n_frames):
        y[j * hop:j * hop + n_fft] += frames[j]
    return y[n_fft - hop:n_fft - hop + n]
