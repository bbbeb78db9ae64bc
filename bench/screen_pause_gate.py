"""Screening (offline, not in rtsep): a blind pause gate after fd's default voice output.

DNSMOS OVRL is where the blind defaults lose to DeepFilterNet3 (``bench/VOICECALL.md``),
and splicing the network's pauses into fd's voice showed it hears the level left
between words. This screens the simplest blind handle before anything is built into
the post-filter kernel: per STFT frame (1024 / 256, like fd's) the voice output's
energy, smoothed (one pole, 0.3 per frame), against its running floor (the least
smoothed energy of the last ``floor_s``); a frame within ``near_db`` of the floor
is a pause, a speech frame holds "speech" for ``hang_s``; the gate goes up at
once and down by a one-pole (0.8 per frame, about 50 ms) to ``depth_db`` below.
Causal, but applied offline to the defaults' labelled voice with their own gate off
(``pause_gate_db=0``). The gate it led to is step 8 of ``rtsep/kernels/postfilter.py``,
on by default since (20 dB, 40 in steady noise; near 6 dB); this script keeps the offline
screen of the variants around it.

Run (about 5 min per set on one core)::

    python bench/screen_pause_gate.py [--holdout] [--seconds 25]

Prints, per room and as means, voice SIRi / SDRi / ΔPESQ-WB / ΔDNSMOS OVRL for the
defaults and the gate variants (``near_db`` / ``depth_db``), with the fraction of
frames gated.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
from scipy.signal import istft, stft

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import voicecall as vc  # noqa: E402

N_FFT, HOP = 1024, 256
VARIANTS = ((6.0, 20.0), (9.0, 20.0), (12.0, 20.0), (9.0, 10.0))


def pause_gate(y: np.ndarray, near_db: float, depth_db: float, hang_s: float = 0.15,
               floor_s: float = 1.5, fs: int = vc.FS) -> tuple[np.ndarray, float]:
    """The voice ``y`` (n,) with its pauses ``depth_db`` down; and the fraction of frames gated."""
    _, _, spec = stft(y, nperseg=N_FFT, noverlap=N_FFT - HOP)
    e = 10 * np.log10(np.sum(np.abs(spec) ** 2, axis=0) + 1e-12)
    frames_per_s = fs / HOP
    window, hang = int(floor_s * frames_per_s), int(hang_s * frames_per_s)
    gain = np.ones(e.size)
    held, level, smooth = 0, 0.0, e[0]
    for t in range(e.size):
        smooth = 0.7 * smooth + 0.3 * e[t]
        floor = np.min(e[max(0, t - window):t + 1])
        held = hang if smooth > floor + near_db else max(held - 1, 0)
        target = 0.0 if held > 0 else -depth_db
        level = target if target > level else 0.8 * level + 0.2 * target
        gain[t] = 10 ** (level / 20)
    out = istft(spec * gain[None], nperseg=N_FFT, noverlap=N_FFT - HOP)[1][:len(y)]
    return out, float(np.mean(gain < 0.5))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--holdout", action="store_true")
    ap.add_argument("--seconds", type=float, default=25.0)
    args = ap.parse_args(argv)
    acc: dict[str, list[list[float]]] = {}
    for i, (kind, room) in enumerate(vc.room_set(args.seconds, holdout=args.holdout)):
        base = vc.scores(room.mix[:, 0], room, bss=False)
        # the defaults without their own gate (on since rtsep 4256c20): the screen's gates replace it
        voice = vc.run_rtsep(room, pinned=False, pause_gate_db=0.0)["labelled"][0]
        line = f"room {i} {kind:7s}"
        runs = [("defaults", voice, 0.0)] + [(f"gate {a:g}/{b:g}", *pause_gate(voice, a, b)) for a, b in VARIANTS]
        for name, y, gated in runs:
            r = vc.deltas(vc.scores(y, room), base)
            acc.setdefault(name, []).append([r["siri"], r["sdri"], r["dpesq"], r["dovrl"]])
            line += f" | {name} {r['siri']:+.1f}/{r['sdri']:+.1f}/{r['dpesq']:+.2f}/{r['dovrl']:+.2f} ({gated:.2f})"
        print(line, flush=True)
    for name, rows in acc.items():
        m = np.mean(rows, axis=0)
        print(f"{name:12s} SIRi {m[0]:+.2f} SDRi {m[1]:+.2f} dPESQ {m[2]:+.3f} dOVRL {m[3]:+.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
