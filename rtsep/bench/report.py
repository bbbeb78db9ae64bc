"""The benchmark's report: machine description, tables, RESULTS.md and the figures."""

from __future__ import annotations

import json
import math
import os
import pathlib
import platform
from dataclasses import asdict
from typing import Any

import numpy as np

from .measure import CONVERGED_DB, Score
from .peers import STREAM_BLOCK

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
