"""What ``rtsep live`` and ``rtsep devices`` show in the terminal.

A live dashboard (rich) on an interactive terminal; plain lines, one every few
seconds, when stdout is a pipe or a file (logs, CI), so nothing depends on
cursor control. This module only formats: it never touches audio devices.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from .devices import DeviceInfo
    from .session import LiveSession
    from .stats import LiveStats

#: Seconds between plain status lines when there is no dashboard.
PLAIN_EVERY_S = 5.0
#: Meter range (dBFS): the bar is empty at the floor and full at 0 dBFS.
METER_FLOOR_DB = -60.0


def _ms(s: float | None) -> str:
    return "?" if s is None else f"{1000 * s:.1f} ms"


def _db(v: float) -> str:
    return "  -inf" if not math.isfinite(v) else f"{v:6.1f}"


def latency_text(st: "LiveStats") -> str:
    """Input→output latency as "total (device in + out + engine)", in ms."""
    eng = _ms(st.engine_latency_s)
    if st.play == "none":
        if st.device_latency_in_s is None:
            return f"input: not reported by the driver + engine {eng}"
        return f"{_ms(st.total_latency_s)} (device in {_ms(st.device_latency_in_s)} + engine {eng})"
    if st.total_latency_s is None:
        return f"device: not reported by the driver; block {_ms(st.block / st.fs if st.fs else None)} + engine {eng}"
    return (f"{_ms(st.total_latency_s)} (device in {_ms(st.device_latency_in_s)} + out "
            f"{_ms(st.device_latency_out_s)} + engine {eng})")


def voice_text(st: "LiveStats") -> str:
    """Which separated output is the voice, and where it is played."""
    v = "?" if st.voice_index is None else str(st.voice_index + 1)
    how = "pinned by your swap key" if st.user_swaps else f"label moves {st.label_moves}"
    return f"separated output {v} is the voice ({how}); {st.output_map}"


def xrun_text(st: "LiveStats") -> str:
    """Dropout counters."""
    s = (f"{st.xruns} xruns (input overflow {st.input_overflows}, output underflow "
         f"{st.output_underflows})")
    if st.dropped_record_blocks:
        s += f", {st.dropped_record_blocks} blocks not recorded (disk too slow)"
    return s


def load_text(st: "LiveStats") -> str:
    """CPU use: PortAudio's callback load, the callback's real-time factor, the process."""
    return (f"callback load {100 * st.cpu_load:.1f} %, RTF mean {st.rtf_mean:.4f} / p99 {st.rtf_p99:.4f} / "
            f"max {st.rtf_max:.3f}, process CPU {100 * st.process_cpu:.0f} %")


def start_line(session: "LiveSession") -> str:
    """One line saying what is about to run."""
    cfg = session.config
    ind, outd = session.input_device, session.output_device
    ch = ",".join(map(str, cfg.channels))
    out = "no output" if outd is None else f"out {outd.name!r} play {cfg.play}"
    lin, lout = session.device_latency
    eng = session.separator.latency_samples / session.fs
    if lin is None or (outd is not None and lout is None):
        lat = f"device latency not reported by the driver, engine {_ms(eng)}"
    else:
        dev = lin + (lout or 0.0)
        lat = f"latency {_ms(dev + eng)} (device {_ms(dev)} + engine {_ms(eng)})"
    warn = ""
    if session.preflight_rtf > 0.5:
        warn = (f"; warning: the engine needs {100 * session.preflight_rtf:.0f} % of each block's time, "
                "expect dropouts: try a larger --block")
    return (f"rtsep live: in {ind.name!r} ({ind.hostapi}) channels {ch} at {session.fs:g} Hz, block {cfg.block} "
            f"({_ms(cfg.block / session.fs)}), engine {cfg.engine}; {out}; {lat}"
            + (f"; recording to {cfg.record}" if cfg.record else "") + warn
            + "; s swaps voice and background, q or Ctrl-C stops")


def plain_line(st: "LiveStats") -> str:
    """One status line (for logs and pipes)."""
    lv = " ".join(f"mic{i + 1} {_db(p).strip()} dBFS" for i, p in enumerate(st.peak_dbfs))
    return (f"rtsep live: {st.elapsed_s:6.1f} s  {lv}  {voice_text(st)}  {xrun_text(st)}  "
            f"{load_text(st)}")


def summary_line(st: "LiveStats") -> str:
    """The one line printed when a session ends."""
    why = {"Ctrl-C": "stopped by Ctrl-C", "q": "stopped by q", "duration": "duration reached",
           "error": "stopped by an error"}.get(st.stop_reason, st.stop_reason or "stopped")
    rec = ""
    if st.record_dir:
        rec = f"; recorded {st.recorded_frames / st.fs if st.fs else 0:.1f} s to {st.record_dir}"
    return (f"rtsep live: {why} after {st.elapsed_s:.1f} s ({st.frames} frames, {st.callbacks} blocks); "
            f"{xrun_text(st)}; latency {latency_text(st)}; {load_text(st)}{rec}")


def _meter(db: float, width: int = 30) -> Any:
    from rich.text import Text

    frac = 0.0 if not math.isfinite(db) else min(1.0, max(0.0, (db - METER_FLOOR_DB) / -METER_FLOOR_DB))
    n = int(round(frac * width))
    style = "green" if db < -12 else ("yellow" if db < -1 else "bold red")
    t = Text("█" * n, style=style)
    t.append("·" * (width - n), style="dim")
    return t


def render(st: "LiveStats") -> Any:
    """A rich renderable of the session: meters, voice, xruns, latency, load."""
    from rich.panel import Panel
    from rich.table import Table

    tab = Table.grid(padding=(0, 1))
    tab.add_column(justify="right", style="bold")
    tab.add_column()
    for i, (pk, rms) in enumerate(zip(st.peak_dbfs, st.rms_dbfs)):
        m = _meter(pk)
        m.append(f" peak {_db(pk)} dBFS  rms {_db(rms)} dBFS")
        tab.add_row(f"mic {i + 1}", m)
    tab.add_row("voice", voice_text(st))
    xr = xrun_text(st)
    tab.add_row("xruns", f"[red]{xr}[/red]" if st.xruns or st.dropped_record_blocks else xr)
    tab.add_row("latency", latency_text(st))
    tab.add_row("CPU", load_text(st))
    if st.record_dir:
        tab.add_row("record", f"{st.recorded_frames / st.fs if st.fs else 0:.1f} s → {st.record_dir}")
    title = (f"rtsep live — {st.input_name} → {st.output_name or 'no output'} · {st.fs:g} Hz · "
             f"block {st.block} · {st.elapsed_s:.1f} s")
    return Panel(tab, title=title, subtitle="s: swap voice/background · q or Ctrl-C: stop", border_style="cyan")


class Display:
    """Shows session snapshots: a rich live panel, or a plain line every few seconds.

    Parameters
    ----------
    fancy : bool
        Use the live dashboard (only for an interactive terminal).
    every_s : float
        Seconds between plain lines when not fancy (0 prints none).
    """

    def __init__(self, fancy: bool, every_s: float = PLAIN_EVERY_S) -> None:
        self.fancy = fancy
        self.every_s = every_s
        self._live: Any = None
        self._next = time.monotonic() + every_s

    def __enter__(self) -> "Display":
        if self.fancy:
            from rich.live import Live

            self._live = Live(refresh_per_second=8, transient=True, redirect_stdout=False)
            self._live.__enter__()
        return self

    def update(self, st: "LiveStats") -> None:
        """Show a snapshot (rate-limited)."""
        if self._live is not None:
            self._live.update(render(st))
        elif self.every_s > 0 and time.monotonic() >= self._next:
            self._next += self.every_s
            print(plain_line(st), flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None


def print_devices(devs: Sequence["DeviceInfo"], rich_output: bool) -> None:
    """Print the device table (rich on a terminal, aligned text otherwise)."""
    if not devs:
        print("no audio devices found: PortAudio sees no sound card and no running audio server "
              "(on Linux without a sound card, a JACK server works: see tools/va-jack.sh)")
        return

    def mark(d: "DeviceInfo") -> str:
        return "/".join(k for k, on in (("in", d.default_input), ("out", d.default_output)) if on)

    header = ("#", "name", "host API", "in", "out", "rate (Hz)", "default")
    rows = [(str(d.index), d.name, d.hostapi, str(d.max_input_channels), str(d.max_output_channels),
             f"{d.default_samplerate:g}", mark(d)) for d in devs]
    if rich_output:
        from rich.console import Console
        from rich.table import Table

        t = Table(title="audio devices (use # or part of the name with --input / --output)")
        for h in header:
            t.add_column(h, justify="right" if h in ("#", "in", "out", "rate (Hz)") else "left")
        for d, r in zip(devs, rows):
            t.add_row(*r, style="bold" if (d.default_input or d.default_output) else None)
        Console().print(t)
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    right = {0, 3, 4, 5}

    def fmt(r: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    print(fmt(header))
    for r in rows:
        print(fmt(r))
    sys.stdout.flush()
