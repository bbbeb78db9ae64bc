"""What a live session reports: :class:`LiveStats`, one snapshot of levels, xruns, latency and load."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class LiveStats:
    """A snapshot of a live session, for the dashboard, the summary and tests.

    Times are in seconds, levels in dBFS, loads as fractions (1.0 = 100 %).

    Attributes
    ----------
    state : str
        "idle", "running", "stopped" or "failed".
    elapsed_s : float
        Wall-clock time since the stream started.
    fs : float
        Sample rate (Hz).
    block : int
        Frames per callback.
    frames : int
        Frames processed (per channel).
    callbacks : int
        Callbacks run.
    xruns : int
        Callbacks PortAudio flagged with an input overflow or output underflow
        (audio was lost or a gap was played).
    input_overflows, input_underflows, output_underflows, output_overflows : int
        Each PortAudio status flag, counted separately.
    dropped_record_blocks : int
        Blocks the recorder could not take because the disk lagged (written as silence).
    recorded_frames : int
        Frames written to the recording files so far.
    peak_dbfs, rms_dbfs : list of float
        Input level per microphone since the previous snapshot (-inf for silence).
    clipped : int
        Input samples at or beyond full scale so far.
    voice_index : int or None
        Which separated output the engine currently labels as the voice.
    label_moves : int
        How often the automatic label moved the voice to the other output.
    user_swaps : int
        How often the user swapped voice and background (the swap key).
    play : str
        What the output device plays.
    output_map : str
        Human description of the output channels, e.g. "out 1 = voice, out 2 = background".
    device_latency_in_s, device_latency_out_s : float or None
        PortAudio's stream latencies (buffering included); None if the driver
        reported nothing plausible.
    engine_latency_s : float
        The separator's algorithmic delay.
    total_latency_s : float or None
        Input-to-output delay: device in + out + engine (None if unknown).
    cpu_load : float
        PortAudio's callback CPU load (fraction of the callback period).
    rtf_mean, rtf_max, rtf_p99 : float
        Time spent in the callback per second of audio (mean, worst block,
        99th percentile of recent blocks).
    process_cpu : float
        CPU time of the whole process (all threads) per wall-clock second.
    input_name, output_name, hostapi : str
        Devices in use.
    record_dir : str or None
        Recording folder.
    stop_reason : str
        Why the session ended ("duration", "Ctrl-C", "error", "stopped").
    """

    state: str = "idle"
    elapsed_s: float = 0.0
    fs: float = 0.0
    block: int = 0
    frames: int = 0
    callbacks: int = 0
    xruns: int = 0
    input_overflows: int = 0
    input_underflows: int = 0
    output_underflows: int = 0
    output_overflows: int = 0
    dropped_record_blocks: int = 0
    recorded_frames: int = 0
    peak_dbfs: list[float] = field(default_factory=list)
    rms_dbfs: list[float] = field(default_factory=list)
    clipped: int = 0
    voice_index: int | None = None
    label_moves: int = 0
    user_swaps: int = 0
    play: str = "voice"
    output_map: str = ""
    device_latency_in_s: float | None = None
    device_latency_out_s: float | None = None
    engine_latency_s: float = 0.0
    total_latency_s: float | None = None
    cpu_load: float = 0.0
    rtf_mean: float = 0.0
    rtf_max: float = 0.0
    rtf_p99: float = 0.0
    process_cpu: float = 0.0
    input_name: str = ""
    output_name: str = ""
    hostapi: str = ""
    record_dir: str | None = None
    stop_reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite levels become None)."""
        d = asdict(self)
        for k in ("peak_dbfs", "rms_dbfs"):
            d[k] = [v if math.isfinite(v) else None for v in d[k]]
        return d
