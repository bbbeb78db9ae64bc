"""``rtsep report DIR``: what a corpus run did, from its manifest(s).

Writes ``DIR/summary.md`` (counts, hours of audio, throughput, failures) and
``DIR/summary.png`` (histograms of the per-file voice level and real-time
factor), and returns the text. Shards sharing one folder each keep a
``manifest.shard-K-of-N.json``; the report merges them all.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .corpus import CorpusError, iter_manifests, load_manifest


@dataclass
class CorpusSummary:
    """Figures of a corpus folder.

    Attributes
    ----------
    files, done, failed : int
        Inputs in the manifest(s), separated, failed.
    audio_s : float
        Seconds of audio separated (done files).
    run_wall_s, run_audio_s : float
        Wall-clock seconds of all runs and the audio they separated
        (throughput = run_audio_s / run_wall_s).
    rtf : list of float
        Per-file real-time factor (processing / audio, one core).
    voice_dbfs : list of float
        Per-file RMS level of ``voice.wav`` (dB full scale).
    failures : list of (str, str)
        (relative path, one-line error).
    """

    files: int = 0
    done: int = 0
    failed: int = 0
    audio_s: float = 0.0
    run_wall_s: float = 0.0
    run_audio_s: float = 0.0
    run_files: int = 0
    rtf: list[float] = field(default_factory=list)
    voice_dbfs: list[float] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Hours of audio separated per hour of wall-clock time (nan before any run)."""
        return self.run_audio_s / self.run_wall_s if self.run_wall_s > 0 else float("nan")

    @property
    def files_per_s(self) -> float:
        """Files (done or failed) per wall-clock second over all runs."""
        return self.run_files / self.run_wall_s if self.run_wall_s > 0 else float("nan")


def summarize(out_dir: str | os.PathLike) -> CorpusSummary:
    """Merge every manifest of a corpus folder into a :class:`CorpusSummary`."""
    out = Path(out_dir)
    paths = list(iter_manifests(out))
    if not paths:
        raise CorpusError(f"{out} holds no manifest.json; give the --out folder of an `rtsep replay` corpus run")
    s = CorpusSummary()
    for path in paths:
        m = load_manifest(path)
        for rel, e in sorted(m["files"].items()):
            s.files += 1
            if e.get("status") == "done":
                s.done += 1
                s.audio_s += e.get("duration_s") or 0.0
                if e.get("rtf") is not None:
                    s.rtf.append(float(e["rtf"]))
                if e.get("voice_dbfs") is not None:
                    s.voice_dbfs.append(float(e["voice_dbfs"]))
            else:
                s.failed += 1
                s.failures.append((rel, e.get("error") or "unknown error"))
        for run in m.get("runs", []):
            s.run_wall_s += run.get("wall_s") or 0.0
            s.run_audio_s += run.get("audio_s") or 0.0
            s.run_files += (run.get("done") or 0) + (run.get("failed") or 0)
    return s


def render_markdown(s: CorpusSummary, png_name: str | None = "summary.png") -> str:
    """The summary as Markdown."""
    def pct(values: list[float], q: float) -> str:
        if not values:
            return "–"
        v = sorted(values)
        return f"{v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]:.4g}"

    lines = ["# rtsep corpus summary", "",
             "| | |", "|---|---|",
             f"| files | {s.files} ({s.done} separated, {s.failed} failed) |",
             f"| audio separated | {s.audio_s / 3600:.3f} h ({s.audio_s:.1f} s) |",
             f"| throughput, all runs | {_num(s.throughput)} h of audio per hour, {_num(s.files_per_s)} files/s "
             f"({s.run_audio_s:.1f} s of audio in {s.run_wall_s:.1f} s) |",
             f"| real-time factor per file (one core) | median {pct(s.rtf, 0.5)}, p90 {pct(s.rtf, 0.9)}, "
             f"max {pct(s.rtf, 1.0)} |",
             f"| voice level (dBFS RMS) | median {pct(s.voice_dbfs, 0.5)}, min {pct(s.voice_dbfs, 0.0)}, "
             f"max {pct(s.voice_dbfs, 1.0)} |", ""]
    if png_name:
        lines += [f"![voice level and real-time factor per file]({png_name})", ""]
    if s.failures:
        lines += [f"## Failures ({s.failed})", "", "| file | error |", "|---|---|"]
        lines += [f"| `{rel}` | {_cell(err)} |" for rel, err in s.failures]
        lines.append("")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.2f} h"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _num(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{x:.3g}"


def plot_histograms(s: CorpusSummary, path: Path) -> None:
    """Histograms of voice level and RTF per file, as a PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, values, label in ((axes[0], s.voice_dbfs, "voice level (dBFS RMS)"),
                              (axes[1], s.rtf, "real-time factor (processing / audio)")):
        if values:
            ax.hist(values, bins=min(30, max(5, len(values) // 3)), color="tab:blue", edgecolor="white")
        else:
            ax.text(0.5, 0.5, "no separated file", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(label)
        ax.set_ylabel("files")
    fig.suptitle(f"{s.done} files, {_duration(s.audio_s)} of audio")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.part")
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    os.replace(tmp, path)


def write_report(out_dir: str | os.PathLike, plot: bool = True) -> tuple[str, CorpusSummary]:
    """Write ``summary.md`` (and ``summary.png``) in a corpus folder; returns (Markdown, summary)."""
    out = Path(out_dir)
    s = summarize(out)
    if plot:
        plot_histograms(s, out / "summary.png")
    text = render_markdown(s, "summary.png" if plot else None)
    tmp = out / ".summary.md.part"
    tmp.write_text(text)
    os.replace(tmp, out / "summary.md")
    return text, s


def add_report_arguments(p: Any) -> None:
    """Options of ``rtsep report``."""
    p.add_argument("dir", help="the --out folder of an `rtsep replay` corpus run")
    p.add_argument("--no-plot", action="store_true", help="no summary.png")


def cmd_report(args: Any) -> int:
    """Print the corpus summary and write summary.md / summary.png."""
    text, _ = write_report(args.dir, plot=not args.no_plot)
    print(text)
    return 0
