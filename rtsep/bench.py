"""``rtsep bench``: rtsep against published separators, on the same mixtures, in one run.

Every method sees the same two-microphone mixtures of real speech (the Italian
talker of :mod:`rtsep.speech`) with a music-like or babble background:
instantaneous 2×2 mixing at condition numbers 2 and 20 and, when
pyroomacoustics works, simulated rooms (:mod:`rtsep.rooms`). Scores are
BSS-Eval improvements over the unprocessed reference mic (:mod:`rtsep.metrics`).

Peers (each optional; a missing one is reported as "not installed"):

===============  =======================================  ==========================
method           what it is                                output scale / assignment
===============  =======================================  ==========================
rtsep td / fd    this package, streamed in 256-sample      its own projection back
                 blocks through :class:`rtsep.Separator`   and its own voice label
FastICA          scikit-learn, batch, instantaneous        least squares onto mic 1,
                                                           best-SIR assignment
Picard           python-picard (extended), batch           same as FastICA
AuxIVA, ILRMA    pyroomacoustics, batch STFT-domain        pra projection back,
                                                           best-SIR assignment
===============  =======================================  ==========================

The only online peer found on PyPI is pyroomacoustics' TRINICON (block-wise,
second-order statistics, pure Python); ssspy 0.2.0 ships batch IVA variants
only, no online one.

Each method is timed in the same process on one pinned core, so real-time
factors are comparable; peers that use BLAS are limited to one thread.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from .errors import ConfigError
from .events import log_source
from .io_files import prepare_out_dir

FS = 16000
TALKER_SEED_OFFSET = 1
#: Sliding-window SIR improvement (dB) that counts as converged.
CONVERGED_DB = {"inst": 20.0, "room": 10.0}
#: rtsep is fed in blocks of this many samples, as in a live stream.
STREAM_BLOCK = 256
#: STFT of the pyroomacoustics batch methods: 128 ms frames, hop 1/4; the
#: usual choice for batch IVA in rooms (the pra examples use 2048 at 16 kHz).
STFT_FRAME = 2048
BATCH_ITER = 30
#: Demixing filter length of TRINICON (samples); 64 was worse and 4x slower per second.
TRINICON_TAPS = 256


# --------------------------------------------------------------------------- mixtures


@dataclass
class Mixture:
    """A two-microphone test recording and its truth.

    Attributes
    ----------
    name : str
        Short label used in tables and file names.
    kind : {"inst", "room"}
        Instantaneous mixing or simulated room.
    x : ndarray, shape (n, 2), float64
        Microphone signals; mic 0 is the reference.
    images : ndarray, shape (2, n), float64
        Talker (row 0) and background (row 1) as heard at mic 0.
    fs : int
        Sample rate (Hz).
    """

    name: str
    kind: str
    x: np.ndarray
    images: np.ndarray
    fs: int = FS

    @property
    def seconds(self) -> float:
        """Duration (s)."""
        return self.x.shape[0] / self.fs


def _background(kind: str, n: int, seed: int) -> np.ndarray:
    from rtsep import signals

    if kind == "music":
        return signals.music_like(n, FS, seed)
    if kind == "babble":
        return signals.babble(n, FS, seed)
    raise ValueError(f"unknown background {kind!r}")


def instantaneous(bg: str, cond: float, seconds: float, seed: int) -> Mixture:
    """Real talker + background through a random 2×2 matrix of condition ``cond``.

    Parameters
    ----------
    bg : {"music", "babble"}
        Background kind.
    cond : float
        Condition number of the mixing matrix.
    seconds : float
        Duration (s).
    seed : int
        Seed of the talker's prompt order, the background and the matrix.
    """
    from rtsep import signals, speech

    n = int(round(seconds * FS))
    s = np.stack([speech.talker("it", seconds, seed=seed)[:n], _background(bg, n, seed)], axis=1)
    a = signals.mixing_matrix(cond, seed)
    x = signals.mix(s.astype(np.float64), a)
    images = (s.astype(np.float64) * a[0][None, :]).T
    return Mixture(f"inst {bg} cond{cond:g}", "inst", np.asarray(x, dtype=np.float64), images)


def room(bg: str, rt60: float, seconds: float, seed: int, spacing: float = 0.05) -> Mixture:
    """Real talker + background in a simulated shoebox room (:func:`rtsep.rooms.simulate_room`).

    Parameters
    ----------
    bg : {"music", "babble"}
        Background kind.
    rt60 : float
        Target reverberation time (s).
    seconds : float
        Duration (s).
    seed : int
        Seed of the sources and the geometry.
    spacing : float
        Microphone spacing (m).
    """
    from rtsep import rooms, speech

    n = int(round(seconds * FS))
    r = rooms.simulate_room(speech.talker("it", seconds, seed=seed)[:n], _background(bg, n, seed), FS,
                            rt60=rt60, spacing=spacing, seed=seed)
    return Mixture(f"room {bg} rt60={rt60:g}s d={spacing * 100:g}cm", "room", r.mix, r.images[:, :, 0].copy())


def mixtures(quick: bool, log: Callable[[str], None] = print) -> list[Mixture]:
    """The benchmark's mixtures: 4 instantaneous + 2 rooms (full) or 2 + 1 shorter ones (quick)."""
    seconds = 6.0 if quick else 10.0
    specs: list[tuple[str, tuple]] = (
        [("inst", ("music", 2, seconds, 3)), ("inst", ("babble", 20, seconds, 21)), ("room", ("music", 0.3, seconds, 5))]
        if quick else
        [("inst", ("music", 2, seconds, 3)), ("inst", ("music", 20, seconds, 21)),
         ("inst", ("babble", 2, seconds, 3)), ("inst", ("babble", 20, seconds, 21)),
         ("room", ("music", 0.3, seconds, 5)), ("room", ("babble", 0.6, seconds, 7))])
    out = []
    for kind, a in specs:
        try:
            out.append(instantaneous(*a) if kind == "inst" else room(*a))
        except Exception as e:  # rooms are optional (pyroomacoustics, another module's state)
            if kind == "inst":
                raise
            log(f"  room mixture {a} skipped: {type(e).__name__}: {e}")
    return out


# --------------------------------------------------------------------------- methods


class NotInstalled(Exception):
    """The peer's package cannot be imported."""


@dataclass
class Run:
    """What one method produced on one mixture.

    Attributes
    ----------
    est : ndarray, shape (2, n)
        Output signals at the reference mic, aligned with the input.
    seconds : float
        Wall-clock processing time (s), compilation excluded.
    online : bool
        Whether output sample i depends only on input up to i (+ latency).
    labelled : bool
        Whether ``est[0]`` is the method's own choice of the voice.
    latency_samples : int
        Algorithmic latency (samples); the whole file for batch methods.
    """

    est: np.ndarray
    seconds: float
    online: bool
    labelled: bool
    latency_samples: int


def _proj_back_ls(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Scale each output (rows of y) by its least-squares fit onto the reference mic."""
    den = np.sum(y * y, axis=1)
    return y * (y @ ref / np.where(den > 0, den, 1.0))[:, None]


def run_rtsep(m: Mixture, engine: str) -> Run:
    """Stream the mixture through a warmed-up :class:`rtsep.Separator` in 256-sample blocks."""
    from rtsep import Separator

    sep = Separator(m.fs, engine=engine).warmup()
    lat = sep.latency_samples
    x = np.vstack([m.x, np.zeros((lat, 2))])  # flush the engine's delay
    vs, bs = [], []
    t0 = time.perf_counter()
    for s in range(0, x.shape[0], STREAM_BLOCK):
        v, b = sep.process(x[s:s + STREAM_BLOCK])
        vs.append(v)
        bs.append(b)
    dt = time.perf_counter() - t0
    est = np.stack([np.concatenate(vs), np.concatenate(bs)]).astype(np.float64)[:, lat:]
    return Run(est, dt, True, True, lat)


def run_fastica(m: Mixture) -> Run:
    """scikit-learn FastICA on the time samples (instantaneous model)."""
    try:
        from sklearn.decomposition import FastICA
    except ImportError:
        raise NotInstalled("scikit-learn") from None
    t0 = time.perf_counter()
    y = FastICA(n_components=2, whiten="unit-variance", max_iter=1000, random_state=0).fit_transform(m.x).T
    est = _proj_back_ls(y, m.x[:, 0])
    return Run(est, time.perf_counter() - t0, False, False, m.x.shape[0])


def run_picard(m: Mixture) -> Run:
    """python-picard, Picard-O (orthogonal constraint, extended: sub- and super-Gaussian sources)."""
    try:
        from picard import picard
    except ImportError:
        raise NotInstalled("python-picard") from None
    t0 = time.perf_counter()
    _k, _w, y = picard(m.x.T.copy(), n_components=2, ortho=True, extended=True, max_iter=1000, random_state=0)
    est = _proj_back_ls(y, m.x[:, 0])
    return Run(est, time.perf_counter() - t0, False, False, m.x.shape[0])


def _run_pra(m: Mixture, algo: str) -> Run:
    try:
        from rtsep.rooms import import_pyroomacoustics

        pra = import_pyroomacoustics()
    except Exception:
        raise NotInstalled("pyroomacoustics") from None
    L, hop = STFT_FRAME, STFT_FRAME // 4
    win_a = pra.hann(L)
    win_s = pra.transform.stft.compute_synthesis_window(win_a, hop)
    n = m.x.shape[0]
    t0 = time.perf_counter()
    # zero-pad so the synthesis covers the whole input after removing its L - hop delay
    xp = np.vstack([m.x, np.zeros((L, 2))])
    X = pra.transform.stft.analysis(xp, L, hop, win=win_a)
    fn = pra.bss.auxiva if algo == "auxiva" else pra.bss.ilrma
    np.random.seed(0)  # ILRMA draws its NMF start from the global generator: same run, same score
    Y = fn(X, n_iter=BATCH_ITER, proj_back=True)  # projection back onto mic 0
    y = pra.transform.stft.synthesis(Y, L, hop, win=win_s)
    dt = time.perf_counter() - t0
    est = np.real(y[L - hop:L - hop + n].T).astype(np.float64)
    if est.shape[1] < n:
        est = np.pad(est, ((0, 0), (0, n - est.shape[1])))
    return Run(est, dt, False, False, n)


def run_trinicon(m: Mixture) -> Run:
    """pyroomacoustics TRINICON: online block-wise second-order BSS with 256-tap demixing filters.

    Its outputs are not scaled to a microphone; a least-squares gain onto mic 1
    is fitted afterwards (a scalar, so in rooms it is an approximation of a
    projection back). Each block of 256 samples is output with the filters
    learnt up to it, so its algorithmic latency is one block.
    """
    try:
        from rtsep.rooms import import_pyroomacoustics

        pra = import_pyroomacoustics()
    except Exception:
        raise NotInstalled("pyroomacoustics") from None
    n = m.x.shape[0]
    t0 = time.perf_counter()
    y = pra.bss.trinicon(m.x.T.copy(), filter_length=TRINICON_TAPS)[:, :n]
    est = _proj_back_ls(y, m.x[:, 0])
    return Run(est, time.perf_counter() - t0, True, False, TRINICON_TAPS)


def run_auxiva(m: Mixture) -> Run:
    """pyroomacoustics AuxIVA (Laplace model), batch, STFT 2048/512, projection back."""
    return _run_pra(m, "auxiva")


def run_ilrma(m: Mixture) -> Run:
    """pyroomacoustics ILRMA (2 NMF bases), batch, STFT 2048/512, projection back."""
    return _run_pra(m, "ilrma")


METHODS: dict[str, Callable[[Mixture], Run]] = {
    "rtsep td": lambda m: run_rtsep(m, "td"),
    "rtsep fd": lambda m: run_rtsep(m, "fd"),
    "FastICA (sklearn)": run_fastica,
    "Picard": run_picard,
    "AuxIVA (pra)": run_auxiva,
    "ILRMA (pra)": run_ilrma,
    "TRINICON (pra, online)": run_trinicon,
}

#: what ``--methods`` accepts besides the full names (case does not matter)
SHORT_NAMES: dict[str, str] = {
    "td": "rtsep td", "fd": "rtsep fd", "fastica": "FastICA (sklearn)", "picard": "Picard",
    "auxiva": "AuxIVA (pra)", "ilrma": "ILRMA (pra)", "trinicon": "TRINICON (pra, online)",
}


def resolve_methods(text: str | None) -> list[str] | None:
    """``"td,fastica"`` → the :data:`METHODS` names; None (all) for None or "".

    Raises
    ------
    ConfigError
        A name that is neither a short nor a full method name.
    """
    if not text:
        return None
    full = {k.lower(): k for k in METHODS}
    names = []
    for raw in (s.strip() for s in text.split(",")):
        if not raw:
            continue
        key = raw.lower()
        name = SHORT_NAMES.get(key) or full.get(key)
        if name is None:
            raise ConfigError(f"--methods: unknown method {raw!r}; choose from {', '.join(SHORT_NAMES)}")
        names.append(name)
    return names


# --------------------------------------------------------------------------- scoring


def _best_assignment(est: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Permutation of the outputs with the best SIR (the BSS-Eval convention)."""
    import fast_bss_eval

    _sdr, _sir, _sar, perm = fast_bss_eval.bss_eval_sources(refs, est, compute_permutation=True)
    return np.asarray(perm)


def measure_latency(engine: str, fs: int = FS) -> int:
    """Delay (samples) of an impulse through a fresh Separator: where ``voice + background`` peaks.

    ``voice + background`` is the reference mic delayed by the engine, so its
    peak sits at the impulse position plus the algorithmic latency.
    """
    from rtsep import Separator

    sep = Separator(fs, engine=engine)
    n = fs
    k = fs // 2
    x = np.random.default_rng(0).standard_normal((n, 2)) * 1e-4  # a floor, so no engine sees digital silence
    x[k] += (0.5, 0.3)
    out = [sum(sep.process(x[s:s + STREAM_BLOCK])) for s in range(0, n, STREAM_BLOCK)]
    return int(np.argmax(np.abs(np.concatenate(out)))) - k


@dataclass
class Score:
    """One method on one mixture (dB, s); ``status`` is "ok", "not installed" or an error."""

    method: str
    mixture: str
    status: str = "ok"
    sdr_imp_voice: float = math.nan
    sir_imp_voice: float = math.nan
    sir_imp_bg: float = math.nan
    sir_imp_voice_2nd_half: float = math.nan
    t_converge_s: float | None = None
    rtf: float = math.nan
    latency_s: float = math.nan
    voice_is_talker: bool | None = None
    sliding: dict[str, list[float]] = field(default_factory=dict)


def score(name: str, m: Mixture, run: Run, sliding: bool) -> Score:
    """BSS-Eval the run; for rtsep keep its own voice label, for peers take the best-SIR assignment."""
    from rtsep.metrics import improvement, sliding_sir_improvement, time_to_reach

    n = m.x.shape[0]
    est = run.est
    perm = _best_assignment(est, m.images)
    voice_ok = None
    if run.labelled:
        voice_ok = bool(perm[0] == 0)
    else:
        est = est[perm]
    imp = improvement(est, m.images, m.x[:, 0])
    h = n // 2
    imp2 = improvement(est[:, h:], m.images[:, h:], m.x[h:, 0])
    sc = Score(name, m.name, sdr_imp_voice=float(imp.sdr_improvement[0]), sir_imp_voice=float(imp.sir_improvement[0]),
               sir_imp_bg=float(imp.sir_improvement[1]), sir_imp_voice_2nd_half=float(imp2.sir_improvement[0]),
               rtf=run.seconds / m.seconds, latency_s=run.latency_samples / m.fs, voice_is_talker=voice_ok)
    sc.t_converge_s = 0.0  # a batch method's output already uses the whole file
    if run.online or sliding:
        t, s = sliding_sir_improvement(est, m.images, m.x[:, 0], m.fs, window_s=1.0, hop_s=0.25)
        sc.sliding = {"t_end": t.tolist(), "sir_imp_voice": s[0].tolist()}
        if run.online:
            # converged: from then on the voice output stays above the threshold (both outputs
            # would punish rtsep for a background that is itself speech-like in babble)
            sc.t_converge_s = time_to_reach(t, s[0], CONVERGED_DB[m.kind])
    return sc


# --------------------------------------------------------------------------- speed


def _time_blocks(engine: str, fs: int, block: int, channels: int, blocks_n: int) -> dict[str, Any]:
    from rtsep import Separator

    rng = np.random.default_rng(0)
    x = rng.standard_normal((block * blocks_n + fs, channels)) * 0.1
    x[:, 1:] += 0.5 * x[:, :1]
    try:
        sep = Separator(fs, channels=channels, engine=engine).warmup()
    except Exception as e:  # an engine that cannot run here must not lose the other rows
        return dict(engine=engine, fs=fs, block=block, channels=channels, error=f"{type(e).__name__}: {e}")
    sep.process(x[:fs])  # the steady state is what a live stream sees
    ts = np.empty(blocks_n)
    for i in range(blocks_n):
        s = fs + i * block
        t0 = time.perf_counter()
        sep.process(x[s:s + block])
        ts[i] = time.perf_counter() - t0
    dur = block / fs
    return dict(engine=engine, fs=fs, block=block, channels=channels, block_ms=1e3 * dur,
                p50_ms=1e3 * float(np.percentile(ts, 50)), p99_ms=1e3 * float(np.percentile(ts, 99)),
                max_ms=1e3 * float(ts.max()), rtf=float(ts.sum() / (blocks_n * dur)))


def td_speed(quick: bool) -> list[dict[str, Any]]:
    """Per-block time of each engine over block sizes, sample rates and mic counts (one core).

    td: blocks 32 … 4096 at 16 and 48 kHz with 2 mics, and 2/4/8 mics at
    16 kHz, block 256 (PCA keeps the top 2 components). fd: blocks 256 …
    4096 at 16 kHz.

    Returns
    -------
    list of dict
        ``engine``, ``fs`` (Hz), ``block`` (samples), ``channels``, ``p50_ms``,
        ``p99_ms``, ``max_ms``, ``block_ms`` and ``rtf`` (total time / audio time).
    """
    audio_s = 4.0 if quick else 20.0
    rows = []
    blocks = (32, 64, 256, 1024, 4096) if quick else (32, 64, 128, 256, 512, 1024, 2048, 4096)
    for fs in (16000, 48000):
        for block in blocks:
            rows.append(_time_blocks("td", fs, block, 2, max(50, int(audio_s * fs / block))))
    for ch in (4, 8):
        rows.append(_time_blocks("td", 16000, 256, ch, int(audio_s * 16000 / 256)))
    for block in ((256, 1024) if quick else (256, 1024, 4096)):
        rows.append(_time_blocks("fd", 16000, block, 2, max(20, int(audio_s * 16000 / block))))
    return rows


def cold_start() -> list[dict[str, Any]]:
    """Seconds from a fresh interpreter to a warmed-up Separator, with and without Numba's disk cache.

    Each row is a separate ``python -c`` process: ``import rtsep`` then
    ``Separator(...).warmup()``; "no cache" points ``NUMBA_CACHE_DIR`` at an
    empty folder, "cache" runs the same command a second time on that folder.
    """
    import subprocess
    import sys
    import tempfile

    rows = []
    code = ("import time; t=time.perf_counter(); import rtsep; "
            "rtsep.Separator(16000, engine='{e}').warmup(); print(time.perf_counter()-t)")
    for engine in ("td", "fd"):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            for label in ("no cache (JIT compile)", "cache (second start)"):
                try:
                    out = subprocess.run([sys.executable, "-c", code.format(e=engine)], env=env,
                                         capture_output=True, text=True, timeout=600, check=True)
                    rows.append(dict(engine=engine, case=label, seconds=float(out.stdout.strip().splitlines()[-1])))
                except (subprocess.SubprocessError, ValueError, IndexError) as e:
                    rows.append(dict(engine=engine, case=label, seconds=float("nan"), error=str(e)[:80]))
    return rows


def plot_speed(rows: list[dict[str, Any]], path_rtf: pathlib.Path, path_p99: pathlib.Path) -> None:
    """RTF against block size, and p99 block time against block duration with the deadline drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "error" not in r and r.get("channels", 2) == 2]
    series = sorted({(r["engine"], r["fs"]) for r in ok})

    def loglog(x: str, y: str, suffix: str, xlabel: str, ylabel: str, path: pathlib.Path,
               deadline: bool = False) -> None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for eng, fs in series:
            rr = sorted((r for r in ok if (r["engine"], r["fs"]) == (eng, fs)), key=lambda r: r["block"])
            ax.loglog([r[x] for r in rr], [r[y] for r in rr], marker="o", label=f"{eng} {fs // 1000} kHz{suffix}")
        if deadline:
            lim = [min(r[x] for r in ok), max(r[x] for r in ok)]
            ax.loglog(lim, lim, "k--", lw=1, label="deadline (block duration)")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)

    loglog("block", "rtf", "", "block (samples)", "real-time factor (one core)", path_rtf)
    loglog("block_ms", "p99_ms", " p99", "block duration (ms)", "per-block processing time, p99 (ms)", path_p99,
           deadline=True)


# --------------------------------------------------------------------------- report


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo where there is one)."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    """CPU, core count and library versions of this run."""
    info = {"cpu": cpu_name(), "cores_visible": str(os.cpu_count()), "pinned_to": "1 core",
            "python": platform.python_version(), "os": platform.platform()}
    from importlib import metadata

    for pkg in ("numpy", "numba", "scipy", "scikit-learn", "python-picard", "pyroomacoustics", "fast_bss_eval"):
        try:
            info[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            info[pkg] = "not installed"
    if hasattr(os, "getloadavg"):
        # other work on a shared machine inflates every RTF: say how busy it was
        info["load_avg_1min_at_end"] = f"{os.getloadavg()[0]:.2f}"
    return info


def _f(v: Any, fmt: str = "{:.1f}") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float) and math.isnan(v):
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "never"
    return fmt.format(v)


def quality_table(scores: list[Score]) -> str:
    """Markdown table of the quality scores, one row per method and mixture."""
    head = ("| mixture | method | SDRi voice | SIRi voice | SIRi bg | SIRi voice 2nd half | converged (s) "
            "| RTF | latency | voice = talker |\n|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for s in scores:
        if s.status != "ok":
            rows.append(f"| {s.mixture} | {s.method} | {s.status} | | | | | | | |")
            continue
        conv = "batch" if s.t_converge_s == 0.0 else _f(s.t_converge_s, "{:.2f}")
        lat = (f"{1e3 * s.latency_s:.1f} ms" if s.t_converge_s != 0.0 else f"whole file ({s.latency_s:.0f} s)")
        rows.append(f"| {s.mixture} | {s.method} | {_f(s.sdr_imp_voice)} | {_f(s.sir_imp_voice)} | {_f(s.sir_imp_bg)} "
                    f"| {_f(s.sir_imp_voice_2nd_half)} | {conv} | {_f(s.rtf, '{:.4f}')} | {lat} "
                    f"| {_f(s.voice_is_talker) if s.voice_is_talker is not None else 'oracle'} |")
    return "\n".join([head, *rows])


def summary_table(scores: list[Score]) -> str:
    """Markdown table of medians per method over the instantaneous and the room mixtures."""
    head = ("| method | kind | median SDRi voice | median SIRi voice | median SIRi voice 2nd half "
            "| median converged (s) | median RTF | voice = talker |\n|---|---|---|---|---|---|---|---|")
    rows = []
    for method in dict.fromkeys(s.method for s in scores):
        for kind in ("inst", "room"):
            ss = [s for s in scores if s.method == method and s.mixture.startswith(kind) and s.status == "ok"]
            if not ss:
                continue
            vt = [s.voice_is_talker for s in ss if s.voice_is_talker is not None]
            tc = [s.t_converge_s for s in ss if s.t_converge_s is not None]
            conv = "batch" if all(t == 0.0 for t in tc) else _f(float(np.median(tc)), "{:.2f}")
            rows.append(f"| {method} | {kind} | {np.median([s.sdr_imp_voice for s in ss]):.1f} "
                        f"| {np.median([s.sir_imp_voice for s in ss]):.1f} "
                        f"| {np.median([s.sir_imp_voice_2nd_half for s in ss]):.1f} "
                        f"| {conv} | {np.median([s.rtf for s in ss]):.4f} "
                        f"| {f'{sum(vt)}/{len(vt)}' if vt else 'oracle'} |")
    return "\n".join([head, *rows])


def speed_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the per-block timings."""
    head = ("| engine | fs (Hz) | mics | block | block (ms) | p50 (ms) | p99 (ms) | max (ms) | RTF |\n"
            "|---|---|---|---|---|---|---|---|---|")
    out = [head]
    for r in rows:
        ch = r.get("channels", 2)
        if "error" in r:
            out.append(f"| {r['engine']} | {r['fs']} | {ch} | {r['block']} | {r['error']} | | | | |")
        else:
            out.append(f"| {r['engine']} | {r['fs']} | {ch} | {r['block']} | {r['block_ms']:.1f} | {r['p50_ms']:.3f} "
                       f"| {r['p99_ms']:.3f} | {r['max_ms']:.3f} | {r['rtf']:.4f} |")
    return "\n".join(out)


def cold_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the cold-start times."""
    out = ["| engine | start | import + warmup (s) |", "|---|---|---|"]
    out += [f"| {r['engine']} | {r['case']} | {r['seconds']:.2f} |" for r in rows]
    return "\n".join(out)


def plot_convergence(scores: list[Score], mixture: str, path: pathlib.Path) -> None:
    """SIR improvement of the voice output over time (1 s windows) per method, for one mixture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for s in scores:
        if s.mixture == mixture and s.sliding:
            ls = "-" if s.t_converge_s != 0.0 else "--"
            ax.plot(s.sliding["t_end"], s.sliding["sir_imp_voice"], ls, label=s.method)
    ax.set_xlabel("end of the 1 s window (s)")
    ax.set_ylabel("SIR improvement, voice output (dB)")
    ax.set_title(f"Convergence on '{mixture}' (dashed: batch, sees the whole file)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out: pathlib.Path, scores: list[Score], speed: list[dict[str, Any]], info: dict[str, str],
                 quick: bool, elapsed: float, plot_name: str | None, plot_mix: str | None,
                 cold: list[dict[str, Any]] | None = None) -> str:
    """Write results.json and RESULTS.md into ``out``; return the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        {"quick": quick, "machine": info, "elapsed_s": elapsed, "quality": [asdict(s) for s in scores],
         "speed": speed, "cold_start": cold}, indent=1, default=str))
    lines = [
        f"# rtsep benchmark{' (--quick)' if quick else ''}",
        "",
        f"Generated by `rtsep bench{' --quick' if quick else ''}` in {elapsed:.0f} s.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()) + ".",
        "",
        "## Quality (BSS-Eval improvement over the unprocessed reference mic, dB)",
        "",
        "SDRi/SIRi on the whole file; *2nd half* scores the second half only (online methods converged). "
        "rtsep is scored with its own voice label; peers with the best-SIR output assignment (*oracle*) "
        "and projection back to mic 1 (least squares for FastICA/Picard, pyroomacoustics' projection back "
        "for AuxIVA/ILRMA). *converged*: end of the first 1 s window (hop 0.25 s) from which the voice "
        f"output's SIR improvement stays ≥ {CONVERGED_DB['inst']:.0f} dB (instantaneous) / "
        f"≥ {CONVERGED_DB['room']:.0f} dB (rooms). RTF: processing time / audio time, one core, "
        f"rtsep streamed in {STREAM_BLOCK}-sample blocks (kernel compilation excluded). Latency of rtsep: "
        "measured with an impulse through a fresh Separator.",
        "",
        summary_table(scores),
        "",
        quality_table(scores),
        "",
    ]
    if plot_name:
        lines += [f"![convergence]({plot_name})", "", f"Convergence on *{plot_mix}*.", ""]
    lines += ["## Speed (per block, steady state, one core)", "", speed_table(speed), "",
              "![rtf](speed_rtf.png) ![p99](speed_p99.png)", ""]
    if cold:
        lines += ["## Cold start (fresh interpreter: import + kernel compilation or cache load)", "",
                  cold_table(cold), ""]
    md = "\n".join(lines)
    (out / "RESULTS.md").write_text(md)
    return md


# --------------------------------------------------------------------------- CLI


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``rtsep bench`` to a parser."""
    p.add_argument("--quick", action="store_true",
                   help="fewer and shorter mixtures, fewer timing blocks (< 5 min on 2 cores)")
    p.add_argument("--out", default="rtsep-bench", help="directory for results.json, RESULTS.md and plots")
    p.add_argument("--methods", default=None,
                   help="comma-separated subset of: " + ", ".join(SHORT_NAMES) + " (default: all)")


def _limit_threads() -> None:
    # One core for every method, so the real-time factors compare like with like and
    # the run does not fight other work on a shared machine.
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        except OSError:
            pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


def run(quick: bool, out: pathlib.Path, methods: list[str] | None = None,
        log: Callable[[str], None] = print) -> tuple[list[Score], list[dict[str, Any]], str]:
    """Run the whole comparison and write the report.

    Parameters
    ----------
    quick : bool
        Short run (3 mixtures of 6 s, 500 timing blocks).
    out : pathlib.Path
        Output directory.
    methods : list of str, optional
        Names from :data:`METHODS`; all by default.
    log : callable
        Progress messages.

    Returns
    -------
    scores, speed, markdown
    """
    import warnings

    t_start = time.perf_counter()
    _limit_threads()
    # fast_bss_eval takes log10(0) on the all-zero warm-up stretch of a window: harmless, noisy
    warnings.filterwarnings("ignore", message="divide by zero encountered in log10")
    names = methods or list(METHODS)
    for nm in names:
        if nm not in METHODS:
            raise ConfigError(f"unknown method {nm!r}; choose from {', '.join(METHODS)}")
    log("building mixtures ...")
    mixes = mixtures(quick, log)
    # the plot: a hard instantaneous case, all methods' sliding SIR
    plot_mix = next((m.name for m in mixes if m.kind == "inst" and "cond20" in m.name), mixes[0].name)
    latency: dict[str, int] = {}
    scores: list[Score] = []
    for m in mixes:
        for nm in names:
            t0 = time.perf_counter()
            try:
                with log_source(f"{nm} on {m.name}"):
                    r = METHODS[nm](m)
                sc = score(nm, m, r, sliding=(m.name == plot_mix))
                if nm.startswith("rtsep"):
                    eng = nm.split()[1]
                    if eng not in latency:
                        latency[eng] = measure_latency(eng, m.fs)
                    sc.latency_s = latency[eng] / m.fs
            except NotInstalled as e:
                sc = Score(nm, m.name, status=f"not installed ({e})")
            except Exception as e:  # one broken peer must not lose the others' results
                sc = Score(nm, m.name, status=f"error: {type(e).__name__}: {str(e)[:80]}")
            scores.append(sc)
            log(f"  {m.name:32s} {nm:18s} SIRi {sc.sir_imp_voice:6.1f} dB  SDRi {sc.sdr_imp_voice:6.1f} dB  "
                f"RTF {sc.rtf:.4f}  ({time.perf_counter() - t0:.1f} s) {'' if sc.status == 'ok' else sc.status}")
    log("timing blocks ...")
    speed = td_speed(quick)
    log("cold start ...")
    cold = cold_start()
    out.mkdir(parents=True, exist_ok=True)
    try:
        plot_speed(speed, out / "speed_rtf.png", out / "speed_p99.png")
    except Exception as e:  # matplotlib is optional for the numbers
        log(f"  speed plots skipped: {type(e).__name__}: {e}")
    plot_name = "convergence.png"
    try:
        plot_convergence(scores, plot_mix, out / plot_name)
    except Exception as e:  # matplotlib is optional for the numbers
        log(f"  plot skipped: {type(e).__name__}: {e}")
        plot_name = None
    md = write_report(out, scores, speed, machine(), quick, time.perf_counter() - t_start, plot_name, plot_mix,
                      cold)
    return scores, speed, md


def cmd_bench(args: argparse.Namespace) -> int:
    """``rtsep bench``: run the comparison, write DIR/results.json, RESULTS.md, convergence.png, print the tables."""
    methods = resolve_methods(getattr(args, "methods", None))
    out = prepare_out_dir(args.out)
    scores, speed, _md = run(bool(args.quick), out, methods)
    print()
    print(summary_table(scores))
    print()
    print(quality_table(scores))
    print()
    print(speed_table(speed))
    print(f"\nwritten: {out / 'results.json'}, {out / 'RESULTS.md'}, {out / 'convergence.png'}, "
          f"{out / 'speed_rtf.png'}, {out / 'speed_p99.png'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m rtsep.bench``) until the CLI wires ``rtsep bench``."""
    p = argparse.ArgumentParser(prog="rtsep bench", description=__doc__.splitlines()[0])
    add_bench_arguments(p)
    return cmd_bench(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
