"""fd's demixers against batch AuxIVA on the same past, on the real-material dev rooms.

For each of the 16 dev-set rooms (:mod:`devset`: real talkers against real
produced music, pink noise, babble, café or a second real talker; RT60
0.15-0.7 s, 2-10 cm) this bench streams the mixture through rtsep's fd engine
and takes a copy of its per-bin demixers at a few times ``t``. Each copy is
then applied, frozen, to the file (its own projection back onto mic 1, bins
below ``min_hz`` to the background as the engine does) and scored with
BSS-Eval (fast_bss_eval) as the mean SDR improvement of the two outputs over
the unprocessed mic 1, outputs in their best order (the voice label is not
under test here: ``bench/labels_bench.py`` measures it).

Three questions, three tables (``bench/ROOMS.md``):

1. **Causal bound**: fd's demixers at t = 2, 4, 8, 16 s against batch AuxIVA
   (pyroomacoustics, time-varying Gaussian model, 100 iterations) fitted on
   the frames of [0, t] only; both scored on the REST of the file [t, 30 s].
   An online method with the whole past should not be below it.
2. **Whole file**: the stream's own outputs (demixers changing as they learn,
   the output order pinned with ``voice=0``, scored in its better order) against batch AuxIVA fitted on the
   whole file (100 iterations) and applied to it.
3. **The first seconds**: the demixers at t = 0.5 ... 30 s scored on the
   whole file; the first t from which they stay within 1 dB of the final ones.

Run (about 5 min on 2 cores)::

    .venv/bin/python bench/fd_bound.py [--jobs 2] [--param whiten=false ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import devset  # noqa: E402

from rtsep.material.causal_bound import (Snapshots, batch_auxiva, causal_batch_stream,  # noqa: E402
                                         frozen_images, sdr_improvement, stream_with_snapshots)
from rtsep.options import engine_params  # noqa: E402

FS = devset.FS
FRAME, HOP = 1024, 256
CAUSAL_T = (2.0, 4.0, 8.0, 16.0)
"""Times (s) of the causal-bound table."""
SNAP_T = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 12.0, 16.0, 24.0, 30.0)
"""Times (s) at which fd's demixers are copied for the first-seconds table."""
BLOCK = 256
"""Samples per block fed to the engine (any block size gives the same output)."""
ORACLE_T = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0, 24.0, 30.0)
"""Refit times (s) of the causal batch stream (``--oracle-stream``)."""


def apply_demixers(mix: np.ndarray, w: np.ndarray, k_lo: int) -> np.ndarray:
    """Images (2, n) at mic 1 of demixers ``w`` held fixed (:func:`rtsep.material.causal_bound.frozen_images`)."""
    return frozen_images(mix, w, FS, k_lo)


def auxiva_demixers(mix: np.ndarray, seconds: float | None, n_iter: int = 100) -> np.ndarray:
    """Batch AuxIVA fitted on [0, seconds] (:func:`rtsep.material.causal_bound.batch_auxiva`)."""
    return batch_auxiva(mix, FS, seconds, FRAME, HOP, n_iter)


def sdri(out: np.ndarray, images: np.ndarray, mic0: np.ndarray, start_s: float = 0.0) -> float:
    """Mean SDR improvement (dB) of both outputs on [start_s, end], best order."""
    return sdr_improvement(out, images, mic0, FS, start_s)


def stream_fd(mix: np.ndarray, times: tuple[float, ...], **params: Any) -> Snapshots:
    """The fd engine at frame FRAME over ``mix``, demixers copied at ``times`` (:func:`stream_with_snapshots`)."""
    return stream_with_snapshots(mix, FS, times, BLOCK, frame=FRAME, **params)


def score_room(name: str, params: dict[str, Any], with_peer: bool = True,
               snap_t: tuple[float, ...] = SNAP_T, oracle: bool = False) -> dict[str, Any]:
    """Every figure of the three tables for one dev room (``snap_t``: times of the first-seconds table)."""
    case = devset.by_name(name)
    mix, images = devset.load(case)
    mic0 = mix[:, 0]
    times = tuple(sorted(set(CAUSAL_T) | set(snap_t)))
    snaps, outs, k_lo, wall, info = stream_fd(mix, times, **params)
    row: dict[str, Any] = {"room": name, "kind": case.kind, "rt60": case.rt60, "spacing_cm": case.spacing * 100,
                           "tbr_db": case.tbr_db, "rtf": wall / (mix.shape[0] / FS),
                           "restarts": info["restarts_adopted"], "scene_restarts": info["scene_restarts"]}
    row["fd_stream"] = sdri(outs, images, mic0)
    row["fd_snap_whole"] = {str(t): sdri(apply_demixers(mix, snaps[t], k_lo), images, mic0) for t in snap_t}
    row["fd_causal"] = {str(t): sdri(apply_demixers(mix, snaps[t], k_lo), images, mic0, t) for t in CAUSAL_T}
    if with_peer:
        row["aux_causal"] = {str(t): sdri(apply_demixers(mix, auxiva_demixers(mix, t), k_lo), images, mic0, t)
                             for t in CAUSAL_T}
        row["aux_whole"] = sdri(apply_demixers(mix, auxiva_demixers(mix, None), k_lo), images, mic0)
    row["within_1db_s"] = _within_1db(row["fd_snap_whole"], snap_t)
    if oracle:
        cb = causal_batch_stream(mix, images, FS, ORACLE_T, k_lo, FRAME)
        row["aux_stream"] = sdri(cb.outputs, images, mic0)
        row["aux_fit_whole"] = {str(t): sdri(apply_demixers(mix, w, k_lo), images, mic0)
                                for t, w in cb.demixers.items()}
        row["aux_within_1db_s"] = _within_1db(row["aux_fit_whole"], ORACLE_T)
    return row


def _within_1db(scores: dict[str, float], times: tuple[float, ...]) -> float:
    """The first time from which every score stays within 1 dB of the last one."""
    final = scores[str(times[-1])]
    return min(t for t in times if all(scores[str(u)] >= final - 1.0 for u in times if u >= t))


def rooms() -> list[str]:
    """Names of the dev set's rooms (the fd cases)."""
    return [c.name for c in devset.cases() if c.mixing == "room"]


def markdown(rows: list[dict[str, Any]], params: dict[str, Any], command: str, wall_s: float) -> str:
    """The three tables as markdown."""
    med = lambda xs: float(np.median(xs))  # noqa: E731
    lines = [f"Command: `{command}`; fd parameters: {params or 'defaults'}; {len(rows)} rooms; "
             f"wall {wall_s / 60:.1f} min.", ""]
    lines += ["### Causal bound: demixers fitted on [0, t], scored on [t, 30 s] (mean SDRi of both outputs, dB)", "",
              "| room | " + " | ".join(f"fd {t:g} s / AuxIVA [0,{t:g}]" for t in CAUSAL_T) + " | worst fd − AuxIVA |",
              "|---|" + "---|" * (len(CAUSAL_T) + 1)]
    for r in rows:
        gaps = [r["fd_causal"][str(t)] - r["aux_causal"][str(t)] for t in CAUSAL_T if t >= 4]
        lines.append(f"| {r['room']} | " + " | ".join(f"{r['fd_causal'][str(t)]:.1f} / {r['aux_causal'][str(t)]:.1f}"
                                                     for t in CAUSAL_T) + f" | {min(gaps):+.1f} |")
    lines.append("| **median** | " + " | ".join(
        f"{med([r['fd_causal'][str(t)] for r in rows]):.1f} / {med([r['aux_causal'][str(t)] for r in rows]):.1f}"
        for t in CAUSAL_T) + f" | {med([min(r['fd_causal'][str(t)] - r['aux_causal'][str(t)] for t in CAUSAL_T if t >= 4) for r in rows]):+.1f} |")
    lines += ["", "### Whole file (mean SDRi of both outputs, dB) and the first seconds", "",
              "| room | kind | RT60 (s) | spacing (cm) | fd stream | batch AuxIVA (whole file) | fd demixers at 1 / 2 / 3 / 4 s, whole file | final | within 1 dB of final from (s) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["fd_snap_whole"]
        lines.append(f"| {r['room']} | {r['kind']} | {r['rt60']:.2f} | {r['spacing_cm']:.0f} | {r['fd_stream']:.1f} | "
                     f"{r['aux_whole']:.1f} | {s['1.0']:.1f} / {s['2.0']:.1f} / {s['3.0']:.1f} / {s['4.0']:.1f} | "
                     f"{s['30.0']:.1f} | {r['within_1db_s']:g} |")
    fast = sum(r["within_1db_s"] <= 3.0 for r in rows)
    lines.append(f"| **median** | | | | {med([r['fd_stream'] for r in rows]):.1f} | "
                 f"{med([r['aux_whole'] for r in rows]):.1f} | "
                 + " / ".join(f"{med([r['fd_snap_whole'][k] for r in rows]):.1f}" for k in ('1.0', '2.0', '3.0', '4.0'))
                 + f" | {med([r['fd_snap_whole']['30.0'] for r in rows]):.1f} | {fast}/{len(rows)} by 3 s |")
    if all("aux_stream" in r for r in rows):
        lines += ["", "### What a causal separator with this source model could stream (`--oracle-stream`)", "",
                  "Batch AuxIVA refitted on [0, t] at t = " + ", ".join(f"{t:g}" for t in ORACLE_T)
                  + " s, each fit applied until the next, output order by oracle; whole-file mean SDRi of "
                  "both outputs (dB). Its fits on [0, t] scored on the whole file, and the first t from which "
                  "they stay within 1 dB of the fit on the whole file.", "",
                  "| room | fd stream | causal batch stream | batch AuxIVA (whole file) | batch fits on [0, 1 / 2 / 3 / 4 s], "
                  "whole file | batch within 1 dB of its whole-file fit from (s) | fd within 1 dB of its final from (s) |",
                  "|---|---|---|---|---|---|---|"]
        for r in rows:
            a = r["aux_fit_whole"]
            lines.append(f"| {r['room']} | {r['fd_stream']:.1f} | {r['aux_stream']:.1f} | {r['aux_whole']:.1f} | "
                         + " / ".join(f"{a[k]:.1f}" for k in ("1.0", "2.0", "3.0", "4.0"))
                         + f" | {r['aux_within_1db_s']:g} | {r['within_1db_s']:g} |")
        lines.append(f"| **median** | {med([r['fd_stream'] for r in rows]):.1f} | "
                     f"{med([r['aux_stream'] for r in rows]):.1f} | {med([r['aux_whole'] for r in rows]):.1f} | "
                     + " / ".join(f"{med([r['aux_fit_whole'][k] for r in rows]):.1f}" for k in ("1.0", "2.0", "3.0", "4.0"))
                     + f" | {sum(r['aux_within_1db_s'] <= 3.0 for r in rows)}/{len(rows)} by 3 s | "
                     f"{sum(r['within_1db_s'] <= 3.0 for r in rows)}/{len(rows)} by 3 s |")
    neg = [r["room"] for r in rows if r["fd_stream"] < 0 and r["aux_whole"] >= 3]
    lines += ["", f"Rooms below 0 dB where batch AuxIVA reaches 3 dB: {', '.join(neg) or 'none'}. "
              f"Stream real-time factor (engine alone, 2-core shared machine): median "
              f"{med([r['rtf'] for r in rows]):.4f}, max {max(r['rtf'] for r in rows):.4f}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--param", action="append", metavar="NAME=VALUE", default=[],
                    help="an fd engine parameter, as rtsep's own --param (repeatable)")
    ap.add_argument("--rooms", default="", help="comma-separated substrings: only rooms whose names hold one")
    ap.add_argument("--no-peer", action="store_true", help="skip batch AuxIVA (faster, fd figures only)")
    ap.add_argument("--oracle-stream", action="store_true",
                    help="also stream batch AuxIVA refitted on the past at 16 times (about 15 more fits per room)")
    ap.add_argument("--screen", action="store_true",
                    help="quick screening: the first-seconds table at 2 and 30 s only")
    ap.add_argument("--json", default="", help="write the rows here")
    ap.add_argument("--markdown", default="", help="write the tables here")
    args = ap.parse_args(argv)
    params = engine_params(argparse.Namespace(engine="fd", param=args.param))
    names = [n for n in rooms() if any(part in n for part in args.rooms.split(","))]
    t0 = time.time()
    rows = []
    with ProcessPoolExecutor(args.jobs) as ex:
        snap_t = (2.0, 30.0) if args.screen else SNAP_T
        oracle = args.oracle_stream and not args.no_peer
        for r in ex.map(score_room, names, [params] * len(names), [not args.no_peer] * len(names),
                        [snap_t] * len(names), [oracle] * len(names)):
            rows.append(r)
            s = r["fd_snap_whole"]
            peer = (" causal aux " + " ".join(f"{r['aux_causal'][str(t)]:.1f}" for t in CAUSAL_T)
                    + f" whole aux {r['aux_whole']:.1f}") if "aux_whole" in r else ""
            if "aux_stream" in r:
                peer += f" | causal batch stream {r['aux_stream']:.1f} (1dB@{r['aux_within_1db_s']:g}s)"
            print(f"{r['room']:32s} stream {r['fd_stream']:5.1f} | causal fd "
                  + " ".join(f"{r['fd_causal'][str(t)]:.1f}" for t in CAUSAL_T) + peer
                  + " | snaps " + " ".join(f"{s[str(t)]:.1f}" for t in snap_t)
                  + f" | 1dB@{r['within_1db_s']:g}s r{r['restarts']} s{r['scene_restarts']}", flush=True)
    print(f"median stream {np.median([r['fd_stream'] for r in rows]):.2f} dB; mean {np.mean([r['fd_stream'] for r in rows]):.2f}; "
          f"within 1 dB by 3 s: {sum(r['within_1db_s'] <= 3 for r in rows)}/{len(rows)}; wall {time.time() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"params": params, "rows": rows}, f, indent=1)
    if args.markdown and not args.no_peer:
        with open(args.markdown, "w") as f:
            f.write(markdown(rows, params, "python bench/fd_bound.py " + " ".join(argv or sys.argv[1:]),
                             time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
