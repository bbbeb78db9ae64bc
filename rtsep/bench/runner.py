"""``rtsep bench``: its options and the run that ties mixtures, peers, measurement and report together."""

from __future__ import annotations

import argparse
import os
import pathlib
import time
from typing import Any, Callable


from ..errors import ConfigError
from ..events import log_source
from ..io_files import prepare_out_dir
from .measure import Score, cold_start, measure_latency, score, td_speed
from .mixtures import mixtures
from .peers import METHODS, NotInstalled, SHORT_NAMES, resolve_methods
from .report import machine, plot_convergence, plot_speed, quality_table, speed_table, summary_table, write_report

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
    """Stand-alone entry point (``python -m rtsep.bench``); ``rtsep bench`` is the same."""
    p = argparse.ArgumentParser(prog="rtsep bench", description=__doc__.splitlines()[0])
    add_bench_arguments(p)
    return cmd_bench(p.parse_args(argv))
