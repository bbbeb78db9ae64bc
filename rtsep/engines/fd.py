"""Frequency-domain engine: streaming STFT + online AuxIVA, for real rooms (DESIGN §3).

In a room each source reaches the microphones with delays and echoes, a
convolution that no single 2×2 matrix undoes. Per STFT bin it is (nearly) a
2×2 complex mixture, so the engine learns one demixer per bin online with
independent vector analysis (:mod:`rtsep.kernels.iva`), projects each output
back onto the reference microphone and resynthesises by overlap-add.

Framing is keyed to the absolute sample index (frame ``k`` covers samples
``[k*hop - frame, k*hop)``), so any cutting of the stream into blocks gives
identical samples; the output lags the input by ``frame - 1`` samples, the
least a frame-based method with symmetric windows can. With ``low_delay``
the windows are asymmetric (a long rising analysis side, synthesis over the
last two hops) and the lag is ``2 * hop - 1``, at the same frequency resolution.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..config import FdParams, params_from, prior_shape
from ..kernels.align import align_frames, new_state as new_align_state
from ..kernels.align import new_params as new_align_params
from ..kernels.beam import MISC as BEAM_MISC, beam_frames, new_params as new_beam_params, new_state as new_beam_state
from ..kernels.iva import iva_frames, new_counters, new_params
from ..kernels.labels import label_block
from ..kernels.quiet import BLEND as QUIET_BLEND, new_params as new_quiet_params, new_state as new_quiet_state
from ..kernels.quiet import quiet_frames
from ..kernels.records import kernel_record
from ..kernels.stft import gather_frames, low_delay_windows, overlap_add, pr_windows
from ..labeling import VoicePin, as_label_state, initial_pin, initial_selection, label_evidence, label_info, new_label_state
from ..postfilter import PostFilter
from .base import check_saved_state

#: Frames handed to the kernels at once: bounds memory on whole-file calls.
_FRAMES_PER_CHUNK = 256
#: Window (seconds) of the median frame power that loud frames are judged against.
_LEVEL_WINDOW_S = 3.0
#: Input samples at or beyond this magnitude count as clipped (as in the Separator's stats).
_CLIP_LEVEL = 0.999
#: Memory (seconds) of the coherence's steady level in the scene check.
_SCENE_LEVEL_S = 4.0
#: The audio goes through IP2's demixers (``ip2_output``) once this much audio
#: (seconds) is learnt from, or at the warm-up's end if that comes first: on
#: fewer seconds IP2 is the worse of the two, and the voice label decides there.
_IP2_FROM_S = 4.0
#: A warm-up's batch pass costs in proportion to the frames kept: past this
#: much audio (seconds) the passes come that much less often, so that the
#: cost per frame of a longer warm-up stays what it is at this time.
_WARMUP_SPAN_S = 4.0
#: Band alignment in steady noise (:mod:`rtsep.kernels.align`): the log power's
#: short mean and its spread's memory (s), the spread of a steady noise and the
#: share of bins that makes a room steady, a bin's vote margin (nepers), how long
#: a change must be wanted and the first time one is made (s). Screened offline on
#: the 22 voice-call rooms (bench/VOICECALL.md): a margin of 0.15 or changes
#: from 8 s swapped bands of a pink room that was right; 0.25 and 10 s did not.
_ALIGN_SHORT_S, _ALIGN_MEMORY_S = 0.5, 4.0
_ALIGN_STEADY, _ALIGN_STEADY_FRAC = 1.5, 0.5
_ALIGN_MARGIN, _ALIGN_HOLD_S, _ALIGN_START_S = 0.25, 2.0, 10.0
#: The steady-noise beam (:mod:`rtsep.kernels.beam`): the room gate's first
#: reading and its spreads' memory (s: with the alignment's 4 s the gate opened
#: at 5-12 s in the pink rooms, with 1.5 s at 2.5-5 s, and never in the 18
#: others), the presence tracker's smoothing and floor rise (s, dB/s) of each
#: output's power, its noise-only and voice-dominated thresholds (times the floor;
#: then whitened power per mic), the frames each covariance averages over and
#: needs, and the blend's ramp (s). Screened on the four pink-noise voice-call
#: rooms (bench/VOICECALL.md, "A beam in steady noise"): in an offline prototype a
#: floor rising 20 dB/s beat 3 and 6 dB/s (PESQ +0.44 against +0.32 and +0.36);
#: through the engine 12, 20 or 30 dB/s, a speech ratio of 5, 10 or 20, a ramp of
#: 0.1 or 0.5 s and more smoothing were within 0.03 of each other or worse.
#: With the noise-only frames told by both outputs' floors (bench/VOICECALL.md,
#: "The beam's frames from both outputs"): a noise ratio of 1.5 or 3 and a
#: whitened ratio of 3 or 8 were within 0.04 PESQ of these.
_BEAM_ROOM_START_S, _BEAM_ROOM_MEMORY_S = 1.0, 1.5
_BEAM_SMOOTH_S, _BEAM_RISE_DB_S, _BEAM_BIAS = 0.045, 20.0, 1.5
_BEAM_NOISE_RATIO, _BEAM_SPEECH_RATIO, _BEAM_SPEECH_WHITE = 2.0, 10.0, 5.0
_BEAM_NOISE_MEM, _BEAM_SPEECH_MEM, _BEAM_MIN_NOISE, _BEAM_MIN_SPEECH = 300.0, 200.0, 50.0, 20.0
_BEAM_RAMP_S = 0.5
#: The beam out where its voice-dominated frames hold a second source (step 5 of
#: :mod:`rtsep.kernels.beam`): a bin's second direction counts over this share of
#: the first, and the share of such bins takes the beam out from the first value
#: to the second. Share at 4-16 s: 0.02-0.22 in the four pink voice-call rooms
#: (whose scores are the same to the digit), 0.58-1.0 with pink noise 0-10 dB under
#: a second real talker (bench/VOICECALL.md, "A second talker over a steady noise").
_BEAM_TWO_COUNT, _BEAM_TWO_SHARE = 0.2, (0.3, 0.5)
#: The voice alone in a quiet room (:mod:`rtsep.kernels.quiet`): the first
#: frame read (s: the demixers' first seconds are read as they separate, when
#: every background still follows the voice), the percentiles' step (dB a
#: frame), the frames of each kind the background's means average over and
#: need (s), the difference of those means (dB) and the correlation of the
#: two outputs' levels from which the voice output takes the mic back, the
#: blend's ramp (s) and the band read (Hz). Half a second of each kind was
#: enough once the correlation is asked too: over 36 rooms with a background
#: (the 22 voice-call rooms, a steady noise under a second talker, three
#: sources, pink noise) Δ stayed under 6.6 dB wherever the correlation passed
#: 0.6, and 11 quiet rooms came in at 7.7 s (median) against 15.2 with 2 s
#: and no correlation (bench/VOICECALL.md, "The voice alone in a quiet room").
_QUIET_START_S, _QUIET_STEP_DB = 4.0, 0.2
_QUIET_MEMORY_S, _QUIET_MIN_S = 4.0, 0.5
_QUIET_DB = (10.0, 12.0)
_QUIET_CORR = (0.6, 0.7)
_QUIET_RAMP_S = 0.5
_QUIET_HZ = (100.0, 4000.0)
#: The room told steady early (:mod:`rtsep.kernels.align`, step 5): until this
#: time (s), the reference mic's floor taken in sub-windows of this length (s)
#: over a band up to this frequency (Hz), its power smoothed over this (s), the
#: spread (dB) under which it is steady and the one under which it stays so.
#: Screened on the 22 voice-call rooms (bench/VOICECALL.md, "The beam from the
#: first seconds"): it told the four pink rooms at 1.8 s and none of the 18
#: others; at 2.2 dB it let a café room in for 1.3 s, and without the wider
#: spread to stay, a pink room's beam came and went (OVRL -0.11).
_BEAM_EARLY_UNTIL_S, _BEAM_EARLY_SUB_S, _BEAM_EARLY_TOP_HZ = 8.0, 0.256, 6250.0
_BEAM_EARLY_SMOOTH_S, _BEAM_EARLY_SPREAD_DB, _BEAM_EARLY_KEEP_DB = 0.048, 2.0, 3.0
#: The beam serves the output the voice label names, as the label stood at the
#: last multiple of this time (s): cut on a fixed grid of frames, so that how the
#: input is cut into blocks does not change it.
_BEAM_VOICE_GRID_S = 0.256


def _lag_window(n: int, half: int) -> np.ndarray:
    """A circular Hann lag window of length ``n``: 1 at lag 0, 0 from lag ``half`` on, both ways."""
    w = np.zeros(n)
    side = np.hanning(2 * half + 1)[half:]
    w[:half + 1] = side
    w[n - half:] = side[1:][::-1]
    return w


class FrequencyDomainEngine(VoicePin):
    """Streaming separator for convolutive (room) mixtures (DESIGN §3).

    Parameters
    ----------
    fs : float
        Sample rate (Hz).
    channels : int
        Microphones M (2 to 8); two of them are used (``ref_mic``, ``second_mic``).
    **params
        Fields of :class:`FdParams`.

    Attributes
    ----------
    latency_samples : int
        ``frame - 1``: an output sample is complete when the last frame
        covering it has been analysed, i.e. when its last input sample arrived;
        with ``low_delay``, ``2 * hop - 1`` (the synthesis window's span less one).
    frame, hop : int
        STFT frame length and advance (samples).
    """

    def __init__(self, fs: float, channels: int = 2, **params: Any) -> None:
        self.fs = float(fs)
        self.channels = int(channels)
        self.params: FdParams = params_from(FdParams, params, "fd").validated(self.fs, self.channels)
        p = self.params
        self.frame = p.frame
        self.hop = p.frame // p.overlap
        self.n_bins = self.frame // 2 + 1
        self._mics = np.array([p.ref_mic, p.second_mic])
        self._win_a, self._win_s = (low_delay_windows if p.low_delay else pr_windows)(self.frame, self.hop)
        # the synthesis covers the last len(win_s) samples of each frame: the latency less one
        self._syn = self._win_s.shape[0]
        self.latency_samples = self._syn - 1
        frames_per_s = self.fs / self.hop
        alpha = math.exp(-1.0 / (p.memory_s * frames_per_s))
        self._n_lvl = max(8, round(_LEVEL_WINDOW_S * frames_per_s))
        # the scene check needs about its memory plus its hold to see a change:
        # that much of the new scene is kept to learn it from at once
        self._n_recent = max(1, round((p.scene_memory_s + p.scene_hold_s) * frames_per_s)) if p.scene_ratio > 0 else 1
        k_lo = min(int(math.ceil(p.min_hz * self.frame / self.fs)), self.n_bins - 1)
        self._n_warm = int(round(p.warmup_s * frames_per_s))
        # the near-talker measure reads the demixers up to 2 kHz (above, a few cm of
        # spacing alias the phase)
        self._k_near = max(k_lo + 2, min(self.n_bins, int(round(2000.0 * self.frame / self.fs))))
        n_start = int(round(p.start_s * frames_per_s)) if self._n_warm else 0
        restart_last = int(round(p.restart_s * frames_per_s)) if self._n_warm else 0
        #: first separated bin (lower bins go wholly to the background)
        self.k_lo = k_lo
        self._kernel_params = new_params(
            alpha=alpha, eps_load=p.eps_load, r_floor=p.r_floor, prior_shape=prior_shape(p.prior),
            max_gain=10.0 ** (p.max_gain_db / 20.0),
            scene_beta=1.0 - math.exp(-1.0 / (p.scene_memory_s * frames_per_s)), scene_ratio=p.scene_ratio,
            loud_factor=p.loud_factor, balance_gate_db=p.balance_gate_db, dead_mic_db=p.dead_mic_db,
            balance_accept=max(1.0, round(p.balance_accept_s * frames_per_s)), scene_floor=p.scene_floor,
            level_beta=1.0 - math.exp(-1.0 / (_SCENE_LEVEL_S * frames_per_s)),
            balance_memory=p.memory_s * frames_per_s,
            iterations=p.iterations, k_lo=k_lo, whiten=int(p.whiten), ip2_output=int(p.ip2_output),
            ip2_from=min(self._n_warm, int(round(_IP2_FROM_S * frames_per_s))), n_start=n_start,
            start_passes=p.start_passes, every=p.warmup_every if self._n_warm else 0,
            every_span=max(1, int(round(_WARMUP_SPAN_S * frames_per_s))),
            passes=p.warmup_passes, restart_last=min(restart_last, self._n_warm), overlap=p.overlap,
            hold=max(1, round(p.scene_hold_s * frames_per_s)) if p.scene_ratio > 0 else 0)
        self._ep, self._lp, self._vad = label_evidence(p, self.fs, 2, use_near=True)
        self._xfade = int(round(p.crossfade_s * self.fs))
        # one post-filter per output, each with the other output as its background
        self._pf = ([PostFilter(self.fs, self.frame, self.hop, p.suppress_db, valleys=p.comb_valleys,
                                pause_gate_db=p.pause_gate_db, pause_gate_steady_db=p.pause_gate_steady_db)
                     for _ in range(2)]
                    if p.suppress_db > 0 else [])
        # Through the low-delay synthesis (the last two hops of each frame) a
        # gain's impulse response wraps around the frame and smears the voice;
        # limited to ±hop (a Hann lag window) the post-filter kept its benefit
        # (10 voice-call rooms, voice SDRi with the better output: 2.51 dB
        # unlimited, 2.65 at ±hop/2, 2.75 at ±hop, 2.72 at ±1.5 hop; symmetric
        # windows 2.81)
        self._gain_win = _lag_window(self.frame, self.hop) if p.low_delay and self._pf else None
        self._align = (new_align_params(a_short=math.exp(-1.0 / (_ALIGN_SHORT_S * frames_per_s)),
                                        a_var=math.exp(-1.0 / (_ALIGN_MEMORY_S * frames_per_s)),
                                        s_steady=_ALIGN_STEADY, steady_frac=_ALIGN_STEADY_FRAC,
                                        margin=_ALIGN_MARGIN, hold=round(_ALIGN_HOLD_S * frames_per_s),
                                        start=round(_ALIGN_START_S * frames_per_s), k_lo=k_lo,
                                        swap=int(p.band_align),
                                        room_start=max(1, round(_BEAM_ROOM_START_S * frames_per_s))
                                        if p.steady_beam else 0,
                                        a_room=math.exp(-1.0 / (_BEAM_ROOM_MEMORY_S * frames_per_s)),
                                        early_until=round(_BEAM_EARLY_UNTIL_S * frames_per_s)
                                        if p.steady_beam else 0,
                                        early_sub=max(1, round(_BEAM_EARLY_SUB_S * frames_per_s)),
                                        early_spread=_BEAM_EARLY_SPREAD_DB, early_keep=_BEAM_EARLY_KEEP_DB,
                                        early_top=int(math.ceil(_BEAM_EARLY_TOP_HZ * self.frame / self.fs)),
                                        a_early=math.exp(-1.0 / (_BEAM_EARLY_SMOOTH_S * frames_per_s)))
                       if p.band_align or p.steady_beam else None)
        self._voice_grid = max(1, round(_BEAM_VOICE_GRID_S * frames_per_s))
        self._align_out = np.zeros(2, dtype=np.int64)
        self._beam = (new_beam_params(a_smooth=math.exp(-1.0 / (_BEAM_SMOOTH_S * frames_per_s)),
                                      rise=10.0 ** (_BEAM_RISE_DB_S / 10.0 / frames_per_s), bias=_BEAM_BIAS,
                                      noise_ratio=_BEAM_NOISE_RATIO, speech_ratio=_BEAM_SPEECH_RATIO,
                                      speech_white=_BEAM_SPEECH_WHITE,
                                      noise_mem=_BEAM_NOISE_MEM, speech_mem=_BEAM_SPEECH_MEM,
                                      min_noise=_BEAM_MIN_NOISE, min_speech=_BEAM_MIN_SPEECH,
                                      ramp=1.0 / max(1.0, _BEAM_RAMP_S * frames_per_s), k_lo=k_lo,
                                      two_count=_BEAM_TWO_COUNT, frac_lo=_BEAM_TWO_SHARE[0],
                                      frac_hi=_BEAM_TWO_SHARE[1])
                      if p.steady_beam else None)
        self._quiet = (new_quiet_params(start=round(_QUIET_START_S * frames_per_s), step=_QUIET_STEP_DB,
                                        mem=_QUIET_MEMORY_S * frames_per_s, min_frames=_QUIET_MIN_S * frames_per_s,
                                        d_lo=_QUIET_DB[0], d_hi=_QUIET_DB[1], r_lo=_QUIET_CORR[0], r_hi=_QUIET_CORR[1],
                                        ramp=1.0 / max(1.0, _QUIET_RAMP_S * frames_per_s),
                                        k_lo=int(math.ceil(_QUIET_HZ[0] * self.frame / self.fs)),
                                        k_hi=int(math.ceil(_QUIET_HZ[1] * self.frame / self.fs)))
                       if p.quiet_room else None)
        # per bin: the bins under min_hz, which go wholly to the background, are not blended
        self._blend = (np.where(np.arange(self.n_bins) >= k_lo, p.mic_blend, 0.0)
                       if p.mic_blend > 0 and self._pf else None)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: demixers, covariances, label and sample count start afresh."""
        k = self.n_bins
        self.w = np.zeros((k, 2, 2), dtype=np.complex128)
        self.w[:, 0, 0] = 1.0
        self.w[:, 1, 1] = 1.0
        self.v = np.zeros((2, k, 2, 2), dtype=np.complex128)
        # the demixers the audio went through after the last frame (derived from
        # v and w at every frame, so not part of the saved state)
        self.w_out = self.w.copy()
        self.cov = np.zeros((k, 2, 2), dtype=np.complex128)
        self.counters = new_counters()
        self._counters_arg = kernel_record(self.counters)  # the same memory, as the kernel takes it
        self.cs = np.zeros((k, 2, 2), dtype=np.complex128)
        self.lvl = np.zeros(self._n_lvl)
        self.recent = np.zeros((self._n_recent, 2, k), dtype=np.complex128)
        self.buf = np.zeros((max(self._n_warm, 1), 2, k), dtype=np.complex128)
        for pf in self._pf:
            pf.reset()
        self.lst = new_label_state(2)
        self._vad.buf[...] = 0.0
        self.lab = initial_selection(self.params)
        self.pin = initial_pin(self.params)
        self._sync_pin()
        self.tail = np.zeros((self.frame - 1, 2))
        self.acc = np.zeros((2, self._syn))
        # the overlap-add of the images before the post-filter (the background's)
        self.acc_raw = np.zeros((2, self._syn))
        # outputs decided but not yet emitted; the first frame-1 are the
        # zeros that stand for "before the stream"
        self.fifo = np.zeros((2, self.latency_samples))
        self.count = np.zeros(1, dtype=np.int64)
        self.align_st = new_align_state(self.n_bins)
        self.beam_st, self.beam_cov = new_beam_state(self.n_bins)
        # the output the beam and the quiet-room blend serve: the voice label's, as of the last grid frame
        self.beam_voice = np.array([int(self.lab[0])], dtype=np.int64)
        self.quiet_st = new_quiet_state()

    def _frames(self, ext: np.ndarray, first: int, n_frames: int) -> np.ndarray:
        """Learn from ``n_frames`` frames starting at row ``first`` of ``ext``; return (voice, background)."""
        n, h = self.frame, self.hop
        frames = np.empty((n_frames, 2, n))
        gather_frames(ext, first, n_frames, h, self._win_a, frames)
        spec = np.fft.rfft(frames, axis=-1)
        # clipped samples per frame, from a running count over the raw rows
        hot = np.concatenate(([0], np.cumsum(np.abs(ext[first:first + (n_frames - 1) * h + n]).max(axis=1)
                                             >= _CLIP_LEVEL)))
        starts = np.arange(n_frames) * h
        clip = (hot[starts + n] - hot[starts]).astype(np.int64)
        img = np.empty_like(spec)
        learned = np.empty(n_frames, dtype=np.int64)
        near = np.empty((n_frames, 2))
        iva_frames(spec, clip, self.w, self.v, self.cov, self.buf, self.cs, self.lvl, self.recent,
                   self._counters_arg, self._kernel_params, img, learned, near, self._k_near, self.w_out)
        if self._align is not None:
            room = np.zeros(n_frames, dtype=np.int64)
            align_frames(img, self.align_st, self._align_out, room, self._align)
            if self._beam is not None:
                # the room gate says whether the room is steady; which output holds
                # the voice is the label's word, so the beam never takes the
                # output the user hears as the background
                room[room != 0] = self.beam_voice[0] + 1
                beam_frames(spec, img, room, self.beam_st, self.beam_cov, self._beam)
        quiet = None
        if self._quiet is not None:
            quiet = np.empty(n_frames)
            quiet_frames(img, int(self.beam_voice[0]), self.quiet_st, self._quiet, quiet)
            if not quiet.any():
                quiet = None
        out = np.empty((n_frames * h, 2))
        raw = out
        syn = self._syn

        def synthesis(spectra: np.ndarray) -> np.ndarray:
            frames_out = np.fft.irfft(spectra, n=n, axis=-1)
            return frames_out if syn == n else np.ascontiguousarray(frames_out[..., n - syn:])

        if self._pf:
            # the background is the mic minus the voice as separated, and the
            # label reads the separated outputs: what the post-filter takes from
            # the voice is residual background and voice alike, and is dropped
            # rather than handed to the background
            raw = np.empty_like(out)
            overlap_add(synthesis(img), self._win_s, self.acc_raw, h, raw)
            if self._blend is not None:
                # each output takes back c of the mic (V + c·B) for the voice the
                # demixer cancelled into the other; its post-filter's background
                # is then what is left of the other output, (1 - c)·B
                v0, v1 = img[:, 0].copy(), img[:, 1].copy()
                bg0, bg1 = (1.0 - self._blend) * v1, (1.0 - self._blend) * v0
                img[:, 0] += self._blend * v1
                img[:, 1] += self._blend * v0
            else:
                bg0, bg1 = img[:, 1], img[:, 0]
            g0 = self._pf[0].process_frames(img[:, 0], bg0)
            g1 = self._pf[1].process_frames(img[:, 1], bg1)
            if quiet is not None:
                # in a quiet room the voice's post-filter has nothing to take: its gains go to 1 with the blend
                c = quiet[:, None]
                if self.beam_voice[0] == 0:
                    g0 = c + (1.0 - c) * g0
                else:
                    g1 = c + (1.0 - c) * g1
            if self._gain_win is not None:
                g0, g1 = (np.fft.rfft(np.fft.irfft(g, n=n, axis=-1) * self._gain_win, axis=-1).real for g in (g0, g1))
            img[:, 0] *= g0
            img[:, 1] *= g1
        overlap_add(synthesis(img), self._win_s, self.acc, h, out)
        res = np.empty((2, n_frames * h))
        # the first sample these frames complete: the first of the synthesis span of the first frame
        ref = np.ascontiguousarray(ext[first + n - syn:first + n - syn + n_frames * h, 0])
        s0 = int(self.count[0]) + first + 1 - syn
        for a, b, ends in self._vad.cuts(s0, out.shape[0]):
            label_block(out, raw, ref, s0, learned, near, h, self.lst, self._ep, self._lp, self.lab, self._xfade,
                        res[0], res[1], a, b)
            self._vad.feed(raw[a:b], ends, self.lst)
        return res[:, max(0, -s0):]

    def process(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Separate one block.

        Parameters
        ----------
        x : ndarray, shape (n, M), float64, finite
            Microphone samples (full scale ±1); ``n`` may be 0.

        Returns
        -------
        voice, background : ndarray, shape (n,), float64
            Images at the reference mic, delayed by :attr:`latency_samples`;
            ``background`` is the reference mic minus the voice as separated,
            so with the post-filter off ``voice + background`` is the
            reference mic, delayed; the post-filter changes only ``voice``.
        """
        n = x.shape[0]
        if n == 0:
            return np.zeros(0), np.zeros(0)
        h = self.hop
        ext = np.concatenate((self.tail, x[:, self._mics]))
        c0 = int(self.count[0])
        k_first = c0 // h + 1
        k_last = (c0 + n) // h
        parts = [self.fifo]
        k = k_first
        while k <= k_last:
            nf = min(_FRAMES_PER_CHUNK, k_last - k + 1)
            if self._beam is not None or self._quiet is not None:
                nf = min(nf, self._voice_grid - (k - 1) % self._voice_grid)
            # frame k ends at sample k*h (exclusive); ext row 0 is sample c0 - frame + 1
            parts.append(self._frames(ext, k * h - c0 - 1, nf))
            k += nf
            if (self._beam is not None or self._quiet is not None) and (k - 1) % self._voice_grid == 0:
                self.beam_voice[0] = int(self.lab[0])
        self.count[0] = c0 + n
        self.tail = np.ascontiguousarray(ext[ext.shape[0] - (self.frame - 1):])
        ready = np.concatenate(parts, axis=1) if len(parts) > 1 else self.fifo
        self.fifo = np.ascontiguousarray(ready[:, n:])
        return ready[0, :n].copy(), ready[1, :n].copy()

    def warmup(self) -> None:
        """Compile every kernel on a little noise, then restore the state."""
        saved = self.state_arrays()
        rng = np.random.default_rng(0)
        self.process(rng.standard_normal((self.frame + 2 * self.hop, self.channels)) * 0.1)
        self.load_state_arrays(saved)

    _STATE = ("w", "v", "cov", "buf", "cs", "lvl", "recent", "counters", "lst", "lab", "pin", "tail", "acc", "acc_raw", "fifo",
              "count", "align_st", "beam_st", "beam_cov", "beam_voice", "quiet_st")

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Copies of every state array (enough to resume the stream exactly)."""
        out = {**{k: getattr(self, k).copy() for k in self._STATE}, "vad": self._vad.state()}
        for q, pf in enumerate(self._pf):
            out.update({f"pf{q}_{k}": v for k, v in pf.state_arrays().items()})
        return out

    def load_state_arrays(self, state: dict[str, np.ndarray]) -> None:
        """Restore state saved by :meth:`state_arrays`."""
        # the FIFO holds the outputs decided but not yet emitted: its length depends on the block
        check_saved_state(self.state_arrays(), state, any_length=("fifo",))
        for q, pf in enumerate(self._pf):
            pf.load_state_arrays({k[4:]: v for k, v in state.items() if k.startswith(f"pf{q}_")})
        for k, val in state.items():
            if k.startswith("pf") and k[2:3].isdigit():
                continue
            if k == "vad":
                self._vad.load(val)
            else:
                setattr(self, k, as_label_state(val) if k == "lst" else val.copy())
        self.counters = np.asarray(self.counters).view(np.recarray)
        self._counters_arg = kernel_record(self.counters)
        self._sync_pin()

    def info(self) -> dict[str, Any]:
        """Voice output index, label evidence and moves, frame counters."""
        st = self.counters[0]
        return {
            **label_info(self.lst, self.lab, self._vad.name),
            "frames": int(st.frames),
            "silent_frames": int(st.silent_frames),
            "degenerate_bin_updates": int(st.degenerate_updates),
            "restarts_adopted": int(st.restarts_adopted),
            "scene_restarts": int(st.scene_restarts),
            "faulty_frames_skipped": int(st.faulty_frames),
            "loud_frames_shrunk": int(st.loud_frames),
            "frame": self.frame,
            "hop": self.hop,
            "samples_seen": int(self.count[0]),
            "bins_aligned": int(np.sum(self.align_st[6] == 1.0)),
            # the blend applied: the gate's ramp times what the second-source check leaves
            "steady_beam": float(self.beam_st[BEAM_MISC, 0] * self.beam_st[BEAM_MISC, 3]),
            "beam_two_source_share": float(self.beam_st[BEAM_MISC, 2]),
            "quiet_room": float(self.quiet_st[QUIET_BLEND]),
        }
