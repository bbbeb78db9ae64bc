"""fd at the sound cards' rates: the voice-call rooms played at 44.1 and 48 kHz.

Sound cards default to 48 kHz (or 44.1), and ``rtsep live`` runs at the
device's rate; every other bench here runs at 16 kHz. This one takes the rooms
of ``bench/voicecall.py`` (16 kHz: real talkers and real music), resamples the
two mics to the rate under test, streams them through fd (its defaults unless
an option names a frame) in blocks of 16 ms, resamples the voice back to
16 kHz and scores it as ``voicecall.py`` does (labelled voice; SIRi, SDRi,
ΔPESQ-WB, ΔDNSMOS OVRL against mic 0). The rooms hold nothing above 8 kHz, so
this measures the separation and the post-filter at the rate's framing, not
the wider band.

Run (about 10 min per option on one core for both sets)::

    python bench/rates.py [--holdout] [--seconds 25] [--options 16k,48k,48k-4096] [--json F]

Options: ``16k`` (the reference), ``48k`` and ``44k`` (the defaults at that
rate), ``48k-N`` / ``44k-N`` (frame N samples), ``16k-ld`` / ``48k-ld`` / ``44k-ld``
(``--low-delay``).
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys

import numpy as np
from scipy.signal import resample_poly

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import voicecall as vc  # noqa: E402

from rtsep.separator import Separator  # noqa: E402

RATES = {"16k": 16000, "44k": 44100, "48k": 48000}


def parse_option(name: str) -> tuple[int, dict]:
    """``48k`` -> (48000, {}); ``48k-4096`` -> (48000, {"frame": 4096}); ``48k-ld`` -> low_delay."""
    rate, _, rest = name.partition("-")
    if rate not in RATES or not (rest == "" or rest == "ld" or rest.isdigit()):
        raise SystemExit(f"unknown option {name!r}: a rate of {sorted(RATES)}, optionally -FRAME or -ld")
    if rest == "ld":
        return RATES[rate], {"low_delay": True}
    return RATES[rate], ({"frame": int(rest)} if rest else {})


def run_at(mix: np.ndarray, fs: int, params: dict) -> tuple[np.ndarray, int, float]:
    """fd streamed at ``fs`` over a 16 kHz mixture (n, 2); the labelled voice back at 16 kHz.

    Returns
    -------
    voice : ndarray, shape (n,)
        Aligned with the input (fd's latency removed), at 16 kHz.
    latency : int
        fd's latency at ``fs`` (samples).
    rtf : float
        Streaming time / audio time (one core).
    """
    g = math.gcd(fs, vc.FS)
    up, down = fs // g, vc.FS // g
    x = resample_poly(mix, up, down, axis=0) if fs != vc.FS else mix
    sep = Separator(fs, engine="fd", **params).warmup()
    out, seconds = vc.stream(sep, x, round(vc.BLOCK * fs / vc.FS))
    rtf = seconds / (len(x) / fs)
    voice = out[0]
    if fs != vc.FS:
        voice = resample_poly(voice, down, up)
    return voice[:len(mix)], sep.latency_samples, rtf


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--holdout", action="store_true", help="the 12 held-out rooms instead of the 10 dev rooms")
    ap.add_argument("--seconds", type=float, default=25.0)
    ap.add_argument("--options", default="16k,48k,48k-4096,48k-2048,44k,44k-2048")
    ap.add_argument("--json", type=pathlib.Path, default=None, help="write the per-room rows here")
    args = ap.parse_args(argv)
    options = {name: parse_option(name) for name in args.options.split(",")}
    rows = []
    for i, (kind, room) in enumerate(vc.room_set(args.seconds, holdout=args.holdout)):
        base = vc.scores(room.mix[:, 0], room, bss=False)
        for name, (fs, params) in options.items():
            voice, lat, rtf = run_at(room.mix, fs, params)
            r = vc.deltas(vc.scores(voice, room), base)
            rows.append({"room": i, "class": kind, "option": name, "latency_ms": 1e3 * lat / fs, "rtf": rtf, **r})
            print(f"room {i} {kind:7s} {name:9s} SIRi {r['siri']:+5.1f} SDRi {r['sdri']:+5.1f} "
                  f"dPESQ {r['dpesq']:+.2f} dOVRL {r['dovrl']:+.2f} latency {1e3 * lat / fs:5.1f} ms RTF {rtf:.3f}",
                  flush=True)
    print("\n| option | voice SIRi (dB) | SDRi (dB) | ΔPESQ-WB | ΔDNSMOS OVRL | latency (ms) | median RTF |")
    print("|---|---|---|---|---|---|---|")
    for name in options:
        sel = [r for r in rows if r["option"] == name]
        m = {k: float(np.mean([r[k] for r in sel])) for k in ("siri", "sdri", "dpesq", "dovrl", "latency_ms")}
        print(f"| {name} | {m['siri']:+.1f} | {m['sdri']:+.1f} | {m['dpesq']:+.2f} | {m['dovrl']:+.2f} | "
              f"{m['latency_ms']:.1f} | {np.median([r['rtf'] for r in sel]):.3f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
