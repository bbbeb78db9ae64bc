"""What a corpus run shows while it works: one progress bar (or plain lines) and the failures."""

from __future__ import annotations

import math
import sys
import time
from typing import Any


class Progress:
    """Progress over files and audio seconds: a rich bar on a terminal, plain lines otherwise.

    Parameters
    ----------
    tty : bool
        Draw a bar (stderr is a terminal).
    quiet : bool
        Only failures.
    stream : file, optional
        Where lines go (default stderr).
    """

    def __init__(self, tty: bool, quiet: bool = False, stream: Any = None) -> None:
        self.tty, self.quiet = tty and not quiet, quiet
        self.stream = stream if stream is not None else sys.stderr
        self._bar: Any = None

    def start(self, total: int, skipped: int, audio_total_s: float, backend: str) -> None:
        """A run begins: ``total`` files, ``skipped`` already finished, ``audio_total_s`` to do."""
        self.total, self.n = total, skipped
        self.audio_total, self.audio_done = audio_total_s, 0.0
        self.t0 = time.perf_counter()
        if not self.quiet:
            self._line(f"{total} file(s), {skipped} already finished, {audio_total_s / 3600:.2f} h of audio "
                       f"to separate ({backend})")
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, Progress as RichProgress, ProgressColumn, TextColumn
            from rich.text import Text

            owner = self

            class _Live(ProgressColumn):
                """Files, audio, RTF and ETA recomputed at every refresh (a long file moves the clock)."""

                def render(self, task: Any) -> Text:
                    f = owner._fields()
                    return Text(f"{f['files']}  {f['audio']}  {f['speed']}")

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(bar_width=16), _Live(),
                                     transient=True, console=Console(stderr=True), refresh_per_second=2)
            self._task = self._bar.add_task("rtsep", total=max(audio_total_s, 1e-9))
            self._bar.start()

    def _fields(self) -> dict[str, str]:
        wall = time.perf_counter() - self.t0
        rtf = wall / self.audio_done if self.audio_done else float("nan")  # wall clock per audio second
        left = self.audio_total - self.audio_done
        eta = left * rtf if self.audio_done else float("nan")
        return {"files": f"{self.n}/{self.total} files",
                "audio": f"{self.audio_done / 60:.1f}/{self.audio_total / 60:.1f} min audio",
                "speed": f"RTF {rtf:.3f} ETA {_hms(eta)}"}

    def file_done(self, entry: dict[str, Any]) -> None:
        """One file finished (or failed)."""
        self.n += 1
        ok = entry["status"] == "done"
        if ok:
            self.audio_done += entry.get("duration_s") or 0.0
        if not ok:
            self._line(f"error: {failure_line(entry)}", always=True)
        elif not self.quiet and not self.tty:
            f = self._fields()
            self._line(f"[{self.n}/{self.total}] {entry['rel']}: {entry['duration_s']:.1f} s, "
                       f"RTF {entry['rtf']:.4f}, voice = output {entry['voice_output']}; "
                       f"{f['audio']}, {f['speed']}")
        if ok and entry.get("warning"):
            self._line(f"{entry['rel']}: {entry['warning']}", always=True)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.audio_done)

    def _line(self, text: str, always: bool = False) -> None:
        if self.quiet and not always:
            return
        if self._bar is not None:
            self._bar.console.print(f"rtsep: {text}", markup=False, highlight=False, soft_wrap=True)
        else:
            print(f"rtsep: {text}", file=self.stream, flush=True)

    def stop(self) -> None:
        """The run ended (normally or not)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def failure_line(entry: dict[str, Any]) -> str:
    """A failed file's error, led by its name unless the message already names it."""
    err = entry.get("error") or "unknown error"
    named = (entry.get("input") and entry["input"] in err) or err.startswith(entry["rel"])
    return err if named else f"{entry['rel']}: {err}"


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
