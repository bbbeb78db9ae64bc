"""Tune the post-filter on the rooms and fd outputs saved by ``bench/voicecall.py --cache DIR``.

Each variant of :class:`rtsep.postfilter.PostFilter` is run offline, with fd's
framing, over the outputs of fd with its in-engine post-filter switched off
(``suppress_db=0``; the cache's ``labelled`` / ``best`` arrays) of every cached room
and scored like the voice-call bench (improvement over mic 0, mean per background
class). The in-engine filter is close to, not identical with, this offline one
(``rtsep fd off + offline post-filter`` vs ``rtsep fd default (labelled)`` in
``bench/VOICECALL.md``)::

    python bench/tune_postfilter.py DIR [--variants "suppress_db=16" "suppress_db=12,spp=0" "speech_floor_db=9" ...]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import voicecall as vc  # noqa: E402
from rtsep.material.rooms import RoomMix  # noqa: E402

DEFAULT_VARIANTS = ("suppress_db=16", "suppress_db=12,spp=0", "suppress_db=20")


def parse(variant: str) -> dict[str, Any]:
    """``"a=1,rule=lsa"`` -> ``{"a": 1.0, "rule": "lsa"}``."""
    out: dict[str, Any] = {}
    for part in filter(None, variant.split(",")):
        k, v = part.split("=")
        try:
            out[k] = float(v)
        except ValueError:
            out[k] = v
    return out


def load(cache: pathlib.Path, which: list[int] | None = None,
         output: str = "labelled") -> list[tuple[str, RoomMix, np.ndarray]]:
    """(class, room, fd outputs (2, n)) of the cached rooms (all, or those numbered in ``which``).

    ``output``: ``"labelled"`` (fd's own label) or ``"best"`` (the better pinned output), both
    of fd with its post-filter off.
    """
    out = []
    for f in sorted(cache.glob("room*.npz"), key=lambda p: int(p.stem[4:])):
        if which is not None and int(f.stem[4:]) not in which:
            continue
        d = np.load(f)
        room = RoomMix(mix=d["mix"], images=d["images"], fs=vc.FS, rt60_target=0.0, rt60_measured=0.0,
                       spacing=0.0, talker_dist=0.0, background_dist=0.0, name=f.stem)
        out.append((str(d["kind"]), room, d[output]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("cache", type=pathlib.Path)
    p.add_argument("--variants", nargs="*", default=list(DEFAULT_VARIANTS))
    p.add_argument("--rooms", type=int, nargs="*", default=None, help="room numbers (default: all cached)")
    p.add_argument("--json", type=pathlib.Path, default=None, help="write the rows here")
    p.add_argument("--output", choices=("labelled", "best"), default="labelled",
                   help="fd's labelled voice or the better pinned output")
    args = p.parse_args(argv)
    rooms = load(args.cache, args.rooms, args.output)
    bases = [vc.scores(r.mix[:, 0], r, bss=False) for _, r, _ in rooms]
    rows = []
    for var in args.variants:
        kw = parse(var)
        for (kind, room, lab), base in zip(rooms, bases):
            y = vc.post_filter(lab[0], lab[1], **kw)
            row = {"room": int(room.name[4:]), "class": kind,
                   "option": var if args.output == "labelled" else f"best:{var}"}
            row.update(vc.deltas(vc.scores(y, room), base))
            rows.append(row)
        rs = [r for r in rows if r["option"].endswith(var)]
        print(f"{var:40s} " + " ".join(f"{c} {np.mean([r[c] for r in rs]):+.2f}" for c, _ in vc.COLS), flush=True)
    print(vc.table(rows, list(dict.fromkeys(r["option"] for r in rows)), sorted({r["class"] for r in rows})))
    if args.json is not None:
        import json

        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
