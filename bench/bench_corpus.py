"""Corpus replay throughput (issue 20): serial vs ``--jobs N`` vs ``--dask local``.

Generates ``--files`` two-microphone recordings of ``--seconds`` each (real
speech from :func:`rtsep.material.speech.talker`, Italian and Russian voices in turn,
mixed with :func:`rtsep.material.signals.pink_noise` through a 2×2 matrix of condition
number 3; 16 kHz 16-bit WAV) into a temporary folder, then times::

    rtsep replay IN --out OUT --jobs 1
    rtsep replay IN --out OUT --jobs N
    rtsep replay IN --out OUT --jobs N --dask local

each as a fresh process (pool or cluster start-up included; the Numba cache is
warmed by one throw-away file first, so compilation is not). Checks that the
parallel outputs equal the serial ones sample for sample, and writes
``CORPUS.md`` (files per second, hours of audio per hour, machine, date).

Run (about 5 min with the defaults on 2 cores)::

    .venv/bin/python bench/bench_corpus.py [--files 100] [--seconds 30] [--engine fd] [--jobs 2] [--out bench]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from rtsep.material import signals, speech

FS = 16000


def make_corpus(folder: Path, files: int, seconds: float) -> float:
    """Write the recordings; returns the seconds it took."""
    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    n = int(seconds * FS)
    for i in range(files):
        voice = speech.talker(("it", "ru")[i % 2], seconds, seed=i)
        noise = signals.pink_noise(n, seed=1000 + i)
        x = signals.mix(np.stack([voice, noise], 1).astype(np.float64), signals.mixing_matrix(3.0, i))
        x *= 0.9 / max(1e-9, float(np.abs(x).max()))
        sf.write(folder / f"take{i:03d}.wav", x.astype(np.float32), FS, subtype="PCM_16")
    return time.perf_counter() - t0


def timed_run(inp: Path, out: Path, extra: list[str], engine: str) -> dict:
    """One ``rtsep replay`` corpus run as its own process; wall-clock seconds and manifest totals."""
    cmd = [sys.executable, "-m", "rtsep", "replay", str(inp), "--out", str(out), "--engine", engine, "-q", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    files = json.loads((out / "manifest.json").read_text())["files"]
    audio = sum(e["duration_s"] for e in files.values() if e["status"] == "done")
    rtf = [e["rtf"] for e in files.values() if e["status"] == "done"]
    return {"wall_s": wall, "files": len(files), "audio_s": audio, "files_per_s": len(files) / wall,
            "audio_h_per_h": audio / wall, "median_file_rtf": float(np.median(rtf))}


def same_samples(a: Path, b: Path) -> bool:
    """Whether two corpus output folders hold the same voice/background samples, bit for bit."""
    for p in sorted(q for q in a.rglob("*.wav") if q.is_file()):
        q = b / p.relative_to(a)
        x, _ = sf.read(p, dtype="float32")
        y, _ = sf.read(q, dtype="float32")
        if not np.array_equal(x.view(np.uint32), y.view(np.uint32)):
            return False
    return True


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores ({model}), Python {platform.python_version()}, {platform.system()} {platform.release()}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--engine", choices=("fd", "td"), default="fd")
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent))
    args = ap.parse_args(argv)

    load0 = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="rtsep-corpus-bench-"))
    try:
        inp = tmp / "in"
        gen_s = make_corpus(inp, args.files, args.seconds)
        print(f"generated {args.files} x {args.seconds:g} s in {gen_s:.1f} s", flush=True)
        warm = tmp / "warm"
        make_corpus(warm, 1, 2.0)
        timed_run(warm, tmp / "warm-out", ["--jobs", "1"], args.engine)  # numba cache filled, not timed

        modes = [("serial", ["--jobs", "1"]), (f"--jobs {args.jobs}", ["--jobs", str(args.jobs)])]
        if not args.no_dask:
            try:
                import distributed  # noqa: F401
                modes.append((f"--dask local ({args.jobs} workers)", ["--jobs", str(args.jobs), "--dask", "local"]))
            except ImportError:
                print("distributed not installed: no --dask row", file=sys.stderr)
        rows = []
        for i, (name, extra) in enumerate(modes):
            out = tmp / f"out{i}"
            r = timed_run(inp, out, extra, args.engine)
            r["mode"] = name
            r["identical_to_serial"] = True if i == 0 else same_samples(tmp / "out0", out)
            rows.append(r)
            print(f"{name:28s} {r['wall_s']:7.1f} s  {r['files_per_s']:6.3f} files/s  "
                  f"{r['audio_h_per_h']:7.1f} h audio per h  median file RTF {r['median_file_rtf']:.4f}  "
                  f"same samples as serial: {r['identical_to_serial']}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()
    lines = [
        "# Corpus replay throughput (`rtsep replay FOLDER --out DIR`)", "",
        f"{args.files} files of {args.seconds:g} s ({args.files * args.seconds / 3600:.2f} h): real speech "
        "(rtsep.material.speech.talker, it/ru) + pink noise through a 2×2 mixing matrix (condition 3), "
        f"16 kHz 16-bit WAV; engine `{args.engine}`, block 256. Each row is one fresh `rtsep replay` process "
        "(pool / cluster start-up, reading, separating, writing, manifest and summary included; Numba cache warm).", "",
        f"Machine: {machine()}, shared with other developers. Date: {date}. Script: "
        f"`bench/bench_corpus.py --files {args.files} --seconds {args.seconds:g} --engine {args.engine} "
        f"--jobs {args.jobs}`.", "",
        f"Load average (1 min) at the start: {load0:.1f}, at the end: {load[0]:.1f} on "
        f"{len(os.sched_getaffinity(0))} cores: other "
        "developers' jobs were running, so every number here is a lower bound for an idle machine.", "",
        "| mode | wall (s) | files/s | hours of audio per hour | median per-file RTF (one core) "
        "| outputs = serial, bit for bit |",
        "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['wall_s']:.1f} | {r['files_per_s']:.3f} | {r['audio_h_per_h']:.1f} | "
                     f"{r['median_file_rtf']:.4f} | {'yes' if r['identical_to_serial'] else 'NO'} |")
    lines.append("")
    Path(args.out, "CORPUS.md").write_text("\n".join(lines))
    Path(args.out, "corpus_results.json").write_text(json.dumps({"date": date, "machine": machine(),
                                                                  "args": vars(args), "rows": rows}, indent=2) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
