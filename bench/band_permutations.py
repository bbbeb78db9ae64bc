"""Which output holds the voice, band by band: fd's online IVA and inter-band permutations.

For each voice-call room (``bench/voicecall.py``'s rooms: real speech against real
music, pink noise, babble, café or a second talker), fd streams the mixture with its
post-filter off, and both of its outputs (voice as labelled, background) are scored
per band against the talker's image at mic 0: a least-squares complex gain per STFT
bin (1024 points, hop 256), then signal-to-error power ratio over the band's bins (dB).
A band where the *background* output scores more than ``--margin`` dB over the voice
output is marked ``P``: there the demixers put the voice on the other output (an
inter-band permutation, which IVA's joint source model is meant to prevent). Mic 0's
own scores are printed for scale.

Run::

    python bench/band_permutations.py [--holdout] [--seconds 25] [--low-delay] [--no-align] [--from S] [--json FILE]

Findings (2026-11-30) are in ``bench/VOICECALL.md``, "Band permutations in steady noise".
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import Any

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import voicecall as vc  # noqa: E402

from rtsep.metrics import BAND_EDGES_HZ, band_sdr  # noqa: E402


def scan(seconds: float, holdout: bool, margin: float, start_s: float = 0.0, **params: Any) -> list[dict[str, Any]]:
    """Per room: class, per-band SDR of mic 0, voice and background outputs from ``start_s`` on, and the bands marked permuted."""
    rows = []
    for i, (kind, room) in enumerate(vc.room_set(seconds, log=lambda s: None, holdout=holdout)):
        part = slice(int(start_s * vc.FS), None)
        ref = room.images[0, part, 0]
        voice, bg = vc.run_rtsep(room, pinned=False, suppress_db=0, **params)["labelled"]
        sv, sb, sm = (band_sdr(y[part], ref, vc.FS) for y in (voice, bg, room.mix[:, 0]))
        rows.append({"room": i, "class": kind, "mic0": sm.round(2).tolist(), "voice": sv.round(2).tolist(),
                     "background": sb.round(2).tolist(), "permuted": (sb > sv + margin).tolist()})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--holdout", action="store_true", help="the 12 held-out rooms instead of the 10 dev rooms")
    p.add_argument("--seconds", type=float, default=25.0, help="length of each room (s)")
    p.add_argument("--low-delay", action="store_true", help="fd's low-delay setting")
    p.add_argument("--no-align", action="store_true",
                   help="fd's band alignment in steady noise off (band_align=False): the demixers' own bands")
    p.add_argument("--margin", type=float, default=3.0, help="dB by which the background must win a band")
    p.add_argument("--from", dest="start_s", type=float, default=0.0,
                   help="score from this time on (s): the band alignment acts from 10 s")
    p.add_argument("--json", type=pathlib.Path, default=None, help="write the rows here")
    a = p.parse_args(argv)
    params = {**({"low_delay": True} if a.low_delay else {}), **({"band_align": False} if a.no_align else {})}
    rows = scan(a.seconds, a.holdout, a.margin, a.start_s, **params)
    bands = " ".join(f"{lo:g}-{hi:g}" for lo, hi in zip(BAND_EDGES_HZ[:-1], BAND_EDGES_HZ[1:]))
    print(f"bands (Hz): {bands}")
    for r in rows:
        flag = "".join("P" if x else "." for x in r["permuted"])
        fmt = lambda v: " ".join(f"{x:+6.1f}" for x in v)  # noqa: E731
        print(f"room {r['room']:2d} {r['class']:7s} {flag}  mic0 {fmt(r['mic0'])}\n"
              f"{'':20s}voice {fmt(r['voice'])}\n{'':20s}bg    {fmt(r['background'])}")
    n = sum(any(r["permuted"]) for r in rows)
    print(f"{n} of {len(rows)} rooms have a band whose voice is on the background output")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
