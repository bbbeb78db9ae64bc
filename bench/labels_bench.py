"""Label bench: does the output rtsep calls "voice" hold the talker, on real material?

Streams every case of :mod:`devset` (real speech against real music, noise, babble,
café or a second talker; instantaneous mixtures through ``td``, rooms through
``fd``) through :class:`rtsep.Separator` in 256-sample blocks, latency compensated,
and scores per case:

- *voice share*: over 1 s windows (hop 0.5 s) ending at t ≥ 2 s, the fraction in
  which the voice output's SIR improvement over the raw mic 0 is > 0 dB
  (:func:`rtsep.metrics.sliding_sir_improvement`; the voice output is estimate 0,
  the background output estimate 1, the references the images at mic 0);
- *voice SDRi / SIRi*: whole-file BSS-Eval improvement of the voice output as labelled;
- *best pinned*: the same with the voice pinned to each demixer output
  (``voice=0`` and ``voice=1``), the better one: what the demixer achieves,
  whatever the label does; with its voice share;
- *moves*: the engine's own count of label moves (``info()["label_moves"]``: after the
  first decision; provisional guesses and the first decision are not moves), else
  changes of ``sep.info()["voice"]`` sampled after each block, after the first second;
  ``moves_total`` counts all;
- *first decision*: if the engine's ``info()`` exposes ``voice_decided`` (bool) or
  ``voice_decided_s`` (seconds), the stream time of the first voice decision.

Run::

    python bench/labels_bench.py [--engine td|fd|both] [--cases PATTERN] [--jobs 2]
                                 [--param k=v ...] [--out bench/LABELS.md]

Importable::

    from labels_bench import score_case     # with bench/ on sys.path
    row = score_case(devset.by_name("fd-talker-it-vs-ru"), label_margin=0.5)
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # set before numpy/numba load, inherited by the worker processes

import argparse  # noqa: E402
import datetime  # noqa: E402
import fnmatch  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, Callable, Sequence  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import devset  # noqa: E402

from rtsep import Separator  # noqa: E402
from rtsep.bench import cpu_name  # noqa: E402
from rtsep.options import engine_params  # noqa: E402
from rtsep.errors import DependencyError  # noqa: E402
from rtsep.metrics import improvement, sliding_sir_improvement  # noqa: E402

FS = devset.FS
BLOCK = 256
WINDOW_S, HOP_S = 1.0, 0.5
SHARE_FROM_S = 2.0
"""Voice share counts windows ending at or after this time (s): after the first second of decisions."""
MOVES_FROM_S = 1.0
"""Label changes before this time (s) are the first decision, not moves."""
TARGETS = {"share_nonspeech": 0.95, "share_talker": 0.90, "moves_per_min": 1.0}
"""What the issue asks for: voice share ≥ 95 % (non-speech backgrounds), ≥ 90 % (talker vs talker),
at most 1 label move per minute."""
REPO = pathlib.Path(__file__).resolve().parent.parent


@dataclass
class Stream:
    """What a separator made of one mixture.

    Attributes
    ----------
    outputs : numpy.ndarray, shape (2, n), float64
        ``[voice, background]``, aligned with the input (latency removed).
    labels : numpy.ndarray, shape (B,), int
        ``info()["voice"]`` after each block.
    block_end_s : numpy.ndarray, shape (B,), float
        Input time (s) at the end of each block.
    first_decision_s : float or None
        Time of the first voice decision, if the engine's info exposes it.
    seconds : float
        Wall time of the streaming (s).
    engine_moves : int or None
        The engine's own count of label moves (``info()["label_moves"]``), if it keeps one.
    """

    outputs: np.ndarray
    labels: np.ndarray
    block_end_s: np.ndarray
    first_decision_s: float | None
    seconds: float
    engine_moves: int | None = None


def stream(mix: np.ndarray, engine: str, **params: Any) -> Stream:
    """Stream ``mix`` through a fresh Separator in 256-sample blocks, latency compensated.

    Like ``rtsep_fd`` in ``/work/shared/repro/real_music_rooms.py``: ``latency_samples``
    zeros are fed after the mixture and the first ``latency_samples`` outputs dropped.

    Parameters
    ----------
    mix : numpy.ndarray, shape (n, 2)
        Microphone signals.
    engine : {"td", "fd"}
    **params
        Separator parameters (e.g. ``voice=0``).

    Returns
    -------
    Stream
    """
    sep = Separator(FS, engine=engine, **params)
    lat = sep.latency_samples
    n = mix.shape[0]
    x = np.concatenate([mix, np.zeros((lat, mix.shape[1]))])
    voice, bg, labels, ends = [], [], [], []
    decided: float | None = None
    t0 = time.perf_counter()
    for i in range(0, x.shape[0], BLOCK):
        v, b = sep.process(x[i:i + BLOCK])
        voice.append(v)
        bg.append(b)
        info = sep.info()
        end = min(i + BLOCK, x.shape[0]) / FS
        labels.append(int(info["voice"]))
        ends.append(end)
        if decided is None:
            if info.get("voice_decided_s") is not None and info["voice_decided_s"] >= 0:
                decided = float(info["voice_decided_s"])
            elif info.get("voice_decided"):
                decided = end
    seconds = time.perf_counter() - t0
    outputs = np.stack([np.concatenate(voice)[lat:lat + n], np.concatenate(bg)[lat:lat + n]]).astype(np.float64)
    moves = sep.info().get("label_moves")
    return Stream(outputs, np.asarray(labels), np.asarray(ends), decided, seconds,
                  None if moves is None else int(moves))


def voice_share(outputs: np.ndarray, images: np.ndarray, mic0: np.ndarray) -> tuple[float, int]:
    """Fraction of 1 s windows (hop 0.5 s, ending ≥ 2 s) where the voice output beats mic 0 on SIR.

    Parameters
    ----------
    outputs : numpy.ndarray, shape (2, n)
        ``[voice, background]`` estimates.
    images : numpy.ndarray, shape (2, n)
        ``[voice, background]`` references at mic 0.
    mic0 : numpy.ndarray, shape (n,)
        The raw reference mic.

    Returns
    -------
    share : float
        In [0, 1]; a window whose SIR improvement is NaN counts as a miss.
    windows : int
        Number of windows counted.
    """
    t_end, sir_imp = sliding_sir_improvement(outputs, images, mic0, FS, window_s=WINDOW_S, hop_s=HOP_S)
    keep = t_end >= SHARE_FROM_S - 1e-9
    return float(np.mean(sir_imp[devset.VOICE, keep] > 0)), int(keep.sum())


def count_moves(labels: np.ndarray, block_end_s: np.ndarray, from_s: float = MOVES_FROM_S) -> int:
    """Changes of the voice label between consecutive blocks that end after ``from_s`` seconds."""
    changed = np.flatnonzero(np.diff(labels) != 0) + 1
    return int(np.sum(block_end_s[changed] > from_s))


def score_case(case: devset.Case, **separator_params: Any) -> dict[str, Any]:
    """Score the voice label of ``case.engine`` on one dev-set case.

    Parameters
    ----------
    case : devset.Case
        The mixture (built or read from the cache by :func:`devset.load`).
    **separator_params
        Passed to :class:`rtsep.Separator` (engine parameters, e.g. ``label_margin=0.5``).
        For the pinned runs ``voice`` is overridden with 0 and 1.

    Returns
    -------
    dict
        ``name``, ``engine``, ``kind``, ``mixing``, ``group`` ("non-speech" or "talker"),
        ``tbr_db``, ``describe``; ``voice_share`` (0-1), ``windows``; ``moves``,
        ``moves_total``, ``moves_per_min`` (moves per minute after the first second), ``minutes``
        (the stretch moves are counted over);
        ``first_decision_s`` (None if the engine does not expose it); ``voice_sdri``,
        ``voice_siri`` (dB, as labelled); ``pinned_voice`` (the better output index),
        ``pinned_sdri``, ``pinned_siri`` (dB), ``pinned_share``; ``rtf`` (labelled run)
        and ``wall_s`` (the whole scoring, s).
    """
    t0 = time.perf_counter()
    mix, images = devset.load(case)
    mic0 = mix[:, 0]
    run = stream(mix, case.engine, **separator_params)
    share, windows = voice_share(run.outputs, images, mic0)
    imp = improvement(run.outputs, images, mic0)
    pinned = []
    for k in (0, 1):
        out = stream(mix, case.engine, **{**separator_params, "voice": k}).outputs
        pinned.append((improvement(out, images, mic0), out, k))
    best_imp, best_out, best_k = max(pinned, key=lambda p: p[0].sdr_improvement[devset.VOICE])
    moves = run.engine_moves if run.engine_moves is not None else count_moves(run.labels, run.block_end_s)
    minutes = (mix.shape[0] / FS - MOVES_FROM_S) / 60
    return {
        "name": case.name, "engine": case.engine, "kind": case.kind, "mixing": case.mixing,
        "group": "talker" if case.speech_background else "non-speech", "tbr_db": case.tbr_db,
        "describe": case.describe(),
        "voice_share": share, "windows": windows,
        "moves": moves, "moves_total": int(np.count_nonzero(np.diff(run.labels))),
        "moves_per_min": moves / minutes, "minutes": minutes, "first_decision_s": run.first_decision_s,
        "voice_sdri": float(imp.sdr_improvement[devset.VOICE]), "voice_siri": float(imp.sir_improvement[devset.VOICE]),
        "pinned_voice": best_k, "pinned_sdri": float(best_imp.sdr_improvement[devset.VOICE]),
        "pinned_siri": float(best_imp.sir_improvement[devset.VOICE]),
        "pinned_share": voice_share(best_out, images, mic0)[0],
        "rtf": run.seconds / (mix.shape[0] / FS), "wall_s": time.perf_counter() - t0,
    }


# ------------------------------------------------------------------ running the set


def select(engine: str = "both", pattern: str | None = None) -> list[devset.Case]:
    """Cases for ``engine`` ("td", "fd" or "both") whose name matches ``pattern``.

    ``pattern`` is a shell glob (``"*talker*"``) or, without wildcards, a substring.
    """
    chosen = [c for c in devset.cases() if engine == "both" or c.engine == engine]
    if pattern:
        if any(ch in pattern for ch in "*?["):
            chosen = [c for c in chosen if fnmatch.fnmatch(c.name, pattern)]
        else:
            chosen = [c for c in chosen if pattern in c.name]
    return chosen


def _score_or_skip(case: devset.Case, params: dict[str, Any]) -> dict[str, Any]:
    try:
        return score_case(case, **params)
    except DependencyError as exc:
        return {"name": case.name, "engine": case.engine, "skipped": str(exc)}


def run_cases(cases: Sequence[devset.Case], params: dict[str, Any] | None = None, jobs: int = 2,
              log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Score ``cases`` in ``jobs`` worker processes; rows in the order of ``cases``.

    A case whose material is missing gives a row with a ``skipped`` reason instead of scores.
    """
    params = dict(params or {})
    rows: dict[str, dict[str, Any]] = {}
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(_score_or_skip, c, params): c for c in cases}
        for fut in as_completed(futures):
            row = fut.result()
            rows[row["name"]] = row
            if "skipped" in row:
                log(f"  {row['name']}: SKIPPED ({row['skipped']})")
            else:
                log(f"  {row['name']:32s} share {row['voice_share']:6.1%}  moves {row['moves']}  "
                    f"SDRi {row['voice_sdri']:6.1f} (pinned {row['pinned_sdri']:5.1f})  {row['wall_s']:.0f} s")
    return [rows[c.name] for c in cases]


def summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per engine and group ("non-speech", "talker"): n, mean/min voice share, moves/min, mean SDRi.

    Moves per minute are pooled: all moves over all minutes of the group.
    """
    out = []
    scored = [r for r in rows if "skipped" not in r]
    for engine in ("td", "fd"):
        for group in ("non-speech", "talker"):
            rs = [r for r in scored if r["engine"] == engine and r["group"] == group]
            if not rs:
                continue
            target = TARGETS["share_talker" if group == "talker" else "share_nonspeech"]
            shares = np.array([r["voice_share"] for r in rs])
            per_min = sum(r["moves"] for r in rs) / sum(r["minutes"] for r in rs)
            out.append({"engine": engine, "group": group, "n": len(rs), "share_mean": float(shares.mean()),
                        "share_min": float(shares.min()), "share_target": target,
                        "cases_at_target": int(np.sum(shares >= target)), "moves_per_min": per_min,
                        "voice_sdri_mean": float(np.mean([r["voice_sdri"] for r in rs])),
                        "pinned_sdri_mean": float(np.mean([r["pinned_sdri"] for r in rs]))})
    return out


def git_commit() -> str:
    """Short commit of the working tree, ``+dirty`` when tracked files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def markdown(rows: Sequence[dict[str, Any]], params: dict[str, Any], command: str, wall_s: float) -> str:
    """The LABELS.md report: per-case table, then the summary per engine and group with the targets."""
    pct = "{:.0%}".format
    lines = [
        "# Voice label on real material",
        "",
        f"Generated by `{command}` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"commit `{git_commit()}`, machine: {cpu_name()} ({os.cpu_count()} cores visible, shared), "
        f"{wall_s / 60:.1f} min. Separator parameters: "
        f"{', '.join(f'{k}={v}' for k, v in params.items()) if params else 'defaults'}.",
        "",
        "Material: `bench/devset.py` (30 s, 16 kHz, real speech prompts against real music / pink noise / "
        "babble / café / a second talker; td on instantaneous mixtures, fd on simulated rooms). "
        "Definitions: docstring of `bench/labels_bench.py`. *Voice share*: 1 s windows (hop 0.5 s) ending at "
        "≥ 2 s in which the voice output's SIR beats mic 0's; *moves*: label changes after the first second; "
        "*best pinned*: the voice pinned to the better demixer output (what the demixer achieves).",
        "",
        "## Summary",
        "",
        "| engine | group | cases | voice share mean | min | target | cases at target | moves / min (target ≤ "
        f"{TARGETS['moves_per_min']:g}) | voice SDRi labelled | best pinned SDRi |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary(rows):
        lines.append(f"| {s['engine']} | {s['group']} | {s['n']} | {pct(s['share_mean'])} | {pct(s['share_min'])} | "
                     f"≥ {pct(s['share_target'])} | {s['cases_at_target']}/{s['n']} | {s['moves_per_min']:.2f} | "
                     f"{s['voice_sdri_mean']:.1f} | {s['pinned_sdri_mean']:.1f} |")
    lines += ["", "## Per case", "",
              "| case | engine | background | voice share | moves | first decision (s) | voice SDRi labelled | "
              "best pinned SDRi (output) | pinned share | material |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['name']} | {r['engine']} | – | skipped: {r['skipped']} | | | | | | |")
            continue
        target = TARGETS["share_talker" if r["group"] == "talker" else "share_nonspeech"]
        share = pct(r["voice_share"]) if r["voice_share"] >= target else f"**{pct(r['voice_share'])}**"
        first = "n/a" if r["first_decision_s"] is None else f"{r['first_decision_s']:.2f}"
        lines.append(f"| {r['name']} | {r['engine']} | {r['kind']} | {share} | {r['moves']} | {first} | "
                     f"{r['voice_sdri']:.1f} | {r['pinned_sdri']:.1f} ({r['pinned_voice']}) | "
                     f"{pct(r['pinned_share'])} | {r['describe']} |")
    lines += ["", "Bold: voice share below its target. *first decision*: n/a when the engine's info() does not "
              "expose `voice_decided` / `voice_decided_s`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--engine", choices=("td", "fd", "both"), default="both",
                   help="which engine's cases (td: instantaneous mixtures, fd: rooms); default both")
    p.add_argument("--cases", metavar="PATTERN", default=None,
                   help="only cases whose name matches (glob like '*talker*', else a substring)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--param", action="append", metavar="K=V", default=[],
                   help="Separator parameter, repeatable (e.g. --param label_margin=0.5)")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent / "LABELS.md",
                   help="markdown report (default bench/LABELS.md); the rows also go to the same name .json")
    args = p.parse_args(argv)
    params = engine_params(args)
    cases = select(args.engine, args.cases)
    if not cases:
        print(f"no case matches --engine {args.engine} --cases {args.cases!r}", file=sys.stderr)
        return 2
    print(f"{len(cases)} cases, {args.jobs} jobs, params {params or 'defaults'}", flush=True)
    t0 = time.perf_counter()
    rows = run_cases(cases, params, args.jobs, log=lambda s: print(s, flush=True))
    wall = time.perf_counter() - t0
    command = "python bench/labels_bench.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = markdown(rows, params, command.strip(), wall)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps({"params": params, "commit": git_commit(),
                                                          "rows": rows, "summary": summary(rows)}, indent=1))
    print("\n" + "\n".join(text.split("\n## Per case")[0].split("\n")[8:]))
    print(f"wrote {args.out} ({wall / 60:.1f} min)")
    return 0 if any("skipped" not in r for r in rows) else 2


if __name__ == "__main__":
    sys.exit(main())
