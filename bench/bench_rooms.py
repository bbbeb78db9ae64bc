"""Simulated rooms (issue 4): rtsep fd vs rtsep td vs pyroomacoustics batch AuxIVA.

Every method separates the same simulated two-microphone recordings (shoebox
rooms, RT60 0.15-0.7 s checked with ``room.measure_rt60()``, mic spacing 2, 5
and 10 cm, a real talker 0.5-1.2 m away and a background source 1-2.5 m
away: another talker, music, pink noise or babble). The batch AuxIVA peer uses
the very STFT of rtsep fd (same frame, hop and sqrt-Hann windows), so the
comparison is about the online algorithm only.

Run (about 25 min on one core; ``--quick``: about 4 min)::

    .venv/bin/python bench/bench_rooms.py [--quick] [--seconds 30] [--out bench]

Writes ``rooms_results.json`` and ``ROOMS_GENERATED.md`` to ``--out`` and prints the tables
(generated music and noise: no quality claim rests on these rooms alone; the real-material
rooms are ``bench/fd_bound.py`` → ``ROOMS.md``).
Needs pyroomacoustics and the real-speech packages (see AUDIO_MATERIAL.md).

Scores (BSS-Eval via :mod:`rtsep.metrics`, improvement over the unprocessed
reference mic, mean of the two outputs):

- *SDRi/SIRi*: each output matched to the source it resembles most, for every
  method alike (batch AuxIVA has no voice label); for rtsep fd the voice is
  pinned to one IVA output for the whole file (the better of the two runs,
  background = the rest as fd delivers it), so that label swaps between two
  talkers do not count against the separation;
- *SDRi labelled*: rtsep's own voice/background labels (voice = the talker);
  *voice = talker*: rooms where the voice output is the talker over the last
  third of the file;
- *2nd half*: the same on the second half of the file only (online converged);
- *converged*: fd only. Each source image is passed through the demixers the
  engine held at each frame (exact, no BSS-Eval), giving the SIR of every 1-s
  window (hop 0.25 s), and the same with the final demixers. Converged is the
  start of the first window from which the running SIR, averaged over 2 s
  (8 windows), comes within 2 dB of the final demixers' on the same windows;
- *RTF*: processing time / audio time on one core, streamed in 256-sample
  blocks, kernels compiled beforehand; *p99 / max block*: 99th percentile and
  maximum of the per-block time (a block lasts 16 ms).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from rtsep.material import signals, speech  # noqa: E402
from rtsep.engines.fd import FrequencyDomainEngine  # noqa: E402
from rtsep.kernels.stft import pr_windows  # noqa: E402
from rtsep.metrics import improvement  # noqa: E402
from rtsep.material.rooms import RoomMix, import_pyroomacoustics, simulate_room  # noqa: E402
from rtsep.separator import Separator  # noqa: E402

FS = 16000
BLOCK = 256
BG_KINDS = ("talker", "music", "pink", "babble")
ROOM_DIMS = ((6.0, 5.0, 3.0), (7.0, 5.5, 3.0), (6.5, 6.0, 2.8), (8.0, 6.0, 3.2))


# ------------------------------------------------------------------ material


def _background(kind: str, n: int, seed: int) -> np.ndarray:
    if kind == "talker":
        return speech.talker("ru", n / FS, seed=seed)
    if kind == "music":
        return signals.music_like(n, FS, seed)
    if kind == "pink":
        return signals.pink_noise(n, seed)
    return signals.babble(n, FS, seed)


def room_set(quick: bool, seconds: float, log: Callable[[str], None] = print) -> list[tuple[str, RoomMix]]:
    """The benchmark rooms: every RT60 × spacing (12), or 4 of them with ``quick``.

    Seeds differ from those the defaults were tuned on (the development set).
    """
    rt60s = (0.15, 0.3, 0.5, 0.7)
    spacings = (0.02, 0.05, 0.10)
    combos = [(rt, sp) for rt in rt60s for sp in spacings]
    if quick:
        combos = [(0.15, 0.05), (0.3, 0.10), (0.5, 0.02), (0.7, 0.05)]
    n = int(seconds * FS)
    out = []
    for i, (rt60, spacing) in enumerate(combos):
        rng = np.random.default_rng(1000 + i)
        kind = BG_KINDS[i % len(BG_KINDS)]
        talker_dist = round(float(rng.uniform(0.5, 1.2)), 2)
        bg_dist = round(float(rng.uniform(1.0, 2.5)), 2)
        t0 = time.perf_counter()
        room = simulate_room(speech.talker("it", seconds, seed=50 + i), _background(kind, n, 200 + i), FS,
                             rt60=rt60, spacing=spacing, talker_dist=talker_dist, background_dist=bg_dist,
                             room_dim=ROOM_DIMS[i % len(ROOM_DIMS)], seed=1000 + i)
        log(f"  room {i}: {kind}, {room.name} ({time.perf_counter() - t0:.1f} s)")
        out.append((kind, room))
    return out


# ------------------------------------------------------------------ methods


def stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Offline STFT framed exactly like the fd engine: (frames, bins, channels)."""
    wa, _ = pr_windows(n_fft, hop)
    xp = np.concatenate([np.zeros((n_fft - hop, x.shape[1])), x, np.zeros((n_fft, x.shape[1]))])
    n_frames = (xp.shape[0] - n_fft) // hop + 1
    idx = np.arange(n_frames)[:, None] * hop + np.arange(n_fft)[None, :]
    return np.fft.rfft(xp[idx] * wa[None, :, None], axis=1)


def istft(spec: np.ndarray, n_fft: int, hop: int, n: int) -> np.ndarray:
    """Inverse of :func:`stft` (overlap-add with the synthesis window), (n, channels)."""
    _, ws = pr_windows(n_fft, hop)
    frames = np.fft.irfft(spec, n=n_fft, axis=1) * ws[None, :, None]
    y = np.zeros(((frames.shape[0] - 1) * hop + n_fft, frames.shape[2]))
    for j in range(frames.shape[0]):
        y[j * hop:j * hop + n_fft] += frames[j]
    return y[n_fft - hop:n_fft - hop + n]


@dataclass
class Run:
    """Outputs of one method on one room (aligned with the input) and its costs."""

    outputs: np.ndarray  # (2, n): [voice, background] for rtsep, AuxIVA outputs otherwise
    labelled: bool
    seconds: float
    rtf: float
    p99_block_ms: float | None = None
    latency_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def run_rtsep(room: RoomMix, engine: str, **params: Any) -> Run:
    """Stream the room through a Separator in 256-sample blocks; time every block.

    For fd, the outputs with the voice pinned to IVA output 0 and to output 1
    are kept too (``extra["pinned"]``): they score the separation itself, as
    for the batch peer, apart from the labelling (a coin toss between two
    talkers).
    """
    sep = Separator(FS, engine=engine, **params).warmup()
    x = room.mix
    lat = sep.latency_samples
    xp = np.concatenate([x, np.zeros((lat, 2))])
    vs, bs, times = [], [], []
    for i in range(0, len(xp), BLOCK):
        t0 = time.perf_counter()
        v, b = sep.process(xp[i:i + BLOCK])
        times.append(time.perf_counter() - t0)
        vs.append(v)
        bs.append(b)
    out = np.stack([np.concatenate(vs)[lat:lat + len(x)], np.concatenate(bs)[lat:lat + len(x)]])
    total = float(np.sum(times))
    extra: dict[str, Any] = {"info": sep.info(), "max_block_ms": float(np.max(times) * 1e3)}
    if engine == "fd":
        from rtsep.separator import separate

        extra["pinned"] = [np.stack(separate(x, FS, engine="fd", voice=q, **params)).astype(np.float64)
                           for q in (0, 1)]
    return Run(out.astype(np.float64), True, total, total / (len(xp) / FS),
               float(np.percentile(times, 99) * 1e3), 1e3 * lat / FS, extra)


def run_auxiva(room: RoomMix, model: str, n_iter: int, n_fft: int = 1024) -> Run:
    """pyroomacoustics batch AuxIVA (IP updates, projection back to mic 0) on rtsep's STFT."""
    pra = import_pyroomacoustics()
    hop = n_fft // 4
    t0 = time.perf_counter()
    spec = stft(room.mix, n_fft, hop)
    y = pra.bss.auxiva(spec, n_iter=n_iter, proj_back=True, model=model)
    out = istft(y, n_fft, hop, room.mix.shape[0]).T
    dt = time.perf_counter() - t0
    return Run(out, False, dt, dt / (room.mix.shape[0] / FS))


def fd_convergence(room: RoomMix, tol_db: float = 2.0, **params: Any) -> tuple[float, np.ndarray, np.ndarray]:
    """Convergence time of the fd engine from its demixers, frame by frame.

    Returns
    -------
    t_conv : float
        Seconds (inf if never).
    t_end : ndarray
        End time of each 1-s window.
    sir_running : ndarray
        SIR (dB, oracle assignment) of each window with the demixers held then.
    """
    eng = FrequencyDomainEngine(FS, 2, **params)
    n_fft, hop = eng.frame, eng.hop
    k_lo = eng.k_lo
    imgs = [stft(room.images[s], n_fft, hop) for s in range(2)]  # (frames, bins, 2)
    n_frames = room.mix.shape[0] // hop
    running = np.zeros((n_frames, 2, 2))  # [frame, output, source] energy

    def energies(w: np.ndarray, t: int) -> np.ndarray:
        d = np.conj(w[k_lo:])  # (bins, q, m)
        det = d[:, 0, 0] * d[:, 1, 1] - d[:, 0, 1] * d[:, 1, 0]
        a0 = np.stack([d[:, 1, 1] / det, -d[:, 0, 1] / det], axis=1)  # A[0, q]
        e = np.empty((2, 2))
        for s in range(2):
            y = np.einsum("kqm,km->kq", d, imgs[s][t, k_lo:]) * a0
            e[:, s] = np.sum(np.abs(y) ** 2, axis=0)
        return e

    for t in range(n_frames):
        eng.process(room.mix[t * hop:(t + 1) * hop])
        running[t] = energies(eng.w_out, t)
    final = np.stack([energies(eng.w_out, t) for t in range(n_frames)])
    win, step = int(round(FS / hop)), int(round(0.25 * FS / hop))

    def sir(e: np.ndarray) -> float:
        straight = e[0, 0] * e[1, 1]
        crossed = e[0, 1] * e[1, 0]
        num, den = (straight, crossed) if straight >= crossed else (crossed, straight)
        return 5.0 * math.log10(max(num, 1e-300) / max(den, 1e-300))

    starts = range(0, n_frames - win + 1, step)
    t_end = np.array([(s + win) * hop / FS for s in starts])
    s_run = np.array([sir(running[s:s + win].sum(0)) for s in starts])
    s_fin = np.array([sir(final[s:s + win].sum(0)) for s in starts])
    # single 1-s windows swing by several dB with the content even for fixed
    # demixers, so the gap to the final demixers is averaged over 2 s first
    gap = s_run - s_fin
    smooth = np.convolve(gap, np.ones(8) / 8, mode="valid")  # windows i .. i+7
    ok = np.flatnonzero(smooth >= -tol_db)
    if ok.size == 0:
        return math.inf, t_end, s_run
    return float(list(starts)[ok[0]] * hop / FS), t_end, s_run


# ------------------------------------------------------------------ scoring


def _oracle(est: np.ndarray, refs: np.ndarray, mix: np.ndarray):
    straight = improvement(est, refs, mix)
    crossed = improvement(est[::-1], refs, mix)
    if np.mean(crossed.sir_improvement) > np.mean(straight.sir_improvement):
        return crossed, True
    return straight, False


def score(room: RoomMix, run: Run) -> dict[str, Any]:
    """BSS-Eval improvements of one run (see the module docstring)."""
    refs = room.images[:, :, 0]
    mix = room.mix[:, 0]
    h = mix.shape[0] // 2
    if "pinned" in run.extra:
        # the voice pinned to either IVA output, the background the remainder
        # (as fd delivers them): the better of the two is the oracle label
        cands = [improvement(p, refs, mix) for p in run.extra["pinned"]]
        best = int(np.argmax([np.mean(c.sir_improvement) for c in cands]))
        whole = cands[best]
        p = run.extra["pinned"][best]
        half = improvement(p[:, h:], refs[:, h:], mix[h:])
    else:
        whole, _ = _oracle(run.outputs, refs, mix)
        half, _ = _oracle(run.outputs[:, h:], refs[:, h:], mix[h:])
    res = {
        "sdri": float(np.mean(whole.sdr_improvement)),
        "siri": float(np.mean(whole.sir_improvement)),
        "sdri_2nd_half": float(np.mean(half.sdr_improvement)),
        "siri_2nd_half": float(np.mean(half.sir_improvement)),
    }
    if run.labelled:
        lab = improvement(run.outputs, refs, mix)
        res["sdri_labelled"] = float(np.mean(lab.sdr_improvement))
        # judged on the last third, once the label has had time to settle
        t = 2 * mix.shape[0] // 3
        _, crossed = _oracle(run.outputs[:, t:], refs[:, t:], mix[t:])
        res["voice_is_talker"] = not crossed
    return res


# ------------------------------------------------------------------ report


def machine() -> str:
    import numba
    import scipy

    from rtsep.bench import cpu_name

    pra = import_pyroomacoustics()
    return (f"{cpu_name()}, pinned to 1 core, python {platform.python_version()}, numpy {np.__version__}, "
            f"numba {numba.__version__}, scipy {scipy.__version__}, pyroomacoustics {pra.__version__}")


def _f(v: Any, fmt: str = "{:.1f}") -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float) and math.isinf(v):
        return "never"
    return fmt.format(v)


def tables(rows: list[dict[str, Any]], methods: list[str]) -> str:
    lines = ["| method | median SDRi | mean SDRi | mean SIRi | mean SDRi 2nd half | mean SDRi labelled | "
             "voice = talker | median converged (s) | max converged (s) | RTF | p99 / max block (ms) | latency (ms) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in methods:
        rs = [r for r in rows if r["method"] == m]
        if not rs:
            continue
        lab = [r["sdri_labelled"] for r in rs if "sdri_labelled" in r]
        talk = [r["voice_is_talker"] for r in rs if "voice_is_talker" in r]
        conv = [r["converged_s"] for r in rs if "converged_s" in r]
        p99 = [r["p99_block_ms"] for r in rs if r.get("p99_block_ms") is not None]
        mx = [r["max_block_ms"] for r in rs if r.get("max_block_ms") is not None]
        lat = [r["latency_ms"] for r in rs if r.get("latency_ms") is not None]
        lines.append("| " + " | ".join([
            m, _f(float(np.median([r["sdri"] for r in rs]))), _f(float(np.mean([r["sdri"] for r in rs]))),
            _f(float(np.mean([r["siri"] for r in rs]))), _f(float(np.mean([r["sdri_2nd_half"] for r in rs]))),
            _f(float(np.mean(lab)) if lab else None), f"{sum(talk)}/{len(talk)}" if talk else "oracle",
            _f(float(np.median(conv)) if conv else None, "{:.2f}"), _f(float(np.max(conv)) if conv else None, "{:.2f}"),
            _f(float(np.median([r["rtf"] for r in rs])), "{:.4f}"),
            (_f(float(np.max(p99)), "{:.2f}") + " / " + _f(float(np.max(mx)), "{:.1f}")) if p99 else "–",
            _f(lat[0] if lat else None),
        ]) + " |")
    lines += ["", "| room | background | RT60 target / measured (s) | spacing (cm) | talker / bg (m) | " +
              " | ".join(f"{m} SDRi" for m in methods) + " |",
              "|---|---|---|---|---|" + "---|" * len(methods)]
    for name in dict.fromkeys(r["room"] for r in rows):
        rs = {r["method"]: r for r in rows if r["room"] == name}
        r0 = next(iter(rs.values()))
        lines.append(f"| {name} | {r0['background']} | {r0['rt60_target']:.2f} / {r0['rt60_measured']:.2f} | "
                     f"{r0['spacing_cm']:.0f} | {r0['talker_m']:.2f} / {r0['background_m']:.2f} | " +
                     " | ".join(_f(rs[m]["sdri"]) if m in rs else "–" for m in methods) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------ main


def run(quick: bool, seconds: float, out: pathlib.Path, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    n_iter = 50 if quick else 100
    methods: dict[str, Callable[[RoomMix], Run]] = {
        "rtsep fd (1024)": lambda r: run_rtsep(r, "fd"),
        "rtsep fd (512)": lambda r: run_rtsep(r, "fd", frame=512),
        "rtsep fd (2048)": lambda r: run_rtsep(r, "fd", frame=2048),
        "rtsep td": lambda r: run_rtsep(r, "td"),
        f"AuxIVA batch gauss, {n_iter} it (pra, 1024)": lambda r: run_auxiva(r, "gauss", n_iter),
        f"AuxIVA batch laplace, {n_iter} it (pra, 1024)": lambda r: run_auxiva(r, "laplace", n_iter),
    }
    log(f"simulating rooms ({seconds:g} s each)")
    rooms = room_set(quick, seconds, log)
    rows: list[dict[str, Any]] = []
    for i, (kind, room) in enumerate(rooms):
        name = f"room {i}"
        for m, fn in methods.items():
            try:
                result = fn(room)
            except Exception as exc:  # a peer failing must not hide the others
                log(f"  {name} {m}: failed ({exc})")
                continue
            row = {"room": name, "method": m, "background": kind, "rt60_target": room.rt60_target,
                   "rt60_measured": room.rt60_measured, "spacing_cm": 100 * room.spacing,
                   "talker_m": room.talker_dist, "background_m": room.background_dist,
                   "rtf": result.rtf, "p99_block_ms": result.p99_block_ms, "latency_ms": result.latency_ms,
                   "max_block_ms": result.extra.get("max_block_ms")}
            row.update(score(room, result))
            if m.startswith("rtsep fd"):
                frame = int(m.split("(")[1].rstrip(")"))
                row["converged_s"] = fd_convergence(room, frame=frame)[0]
            rows.append(row)
            log(f"  {name} {m}: SDRi {row['sdri']:.1f} (2nd half {row['sdri_2nd_half']:.1f}) "
                f"SIRi {row['siri']:.1f} RTF {row['rtf']:.4f}"
                + (f" converged {row['converged_s']:.2f} s" if "converged_s" in row else ""))
    out.mkdir(parents=True, exist_ok=True)
    (out / "rooms_results.json").write_text(json.dumps({"machine": machine(), "seconds": seconds,
                                                         "quick": quick, "rows": rows}, indent=1))
    md = (f"# rtsep in simulated rooms\n\nGenerated by `bench/bench_rooms.py{' --quick' if quick else ''}`: "
          f"{len(rooms)} rooms, {seconds:g} s each. Machine: {machine()}.\n\n"
          "Definitions: see the docstring of bench/bench_rooms.py.\n\n" + tables(rows, list(methods)) + "\n")
    (out / "ROOMS_GENERATED.md").write_text(md)
    log("\n" + tables(rows, list(methods)))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="4 rooms, 15 s each, 50 batch iterations")
    p.add_argument("--seconds", type=float, default=None, help="length of each recording (default 30, quick 15)")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent)
    args = p.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    if not speech.available():
        print("real speech needs the Debian packages asterisk-core-sounds-{it,ru}-g722 and G722", file=sys.stderr)
        return 2
    seconds = args.seconds or (15.0 if args.quick else 30.0)
    run(args.quick, seconds, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
