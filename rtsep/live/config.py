"""What a live session opens: :class:`LiveConfig` (devices, rate, block, engine, output, recording)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import MAX_CHANNELS, check_rate
from ..errors import ConfigError

#: What ``--play`` accepts: which separated signal goes to the output device.
PLAY_MODES = ("voice", "background", "both", "none")
#: Default block (frames per callback): 16 ms at 16 kHz, 5.3 ms at 48 kHz.
DEFAULT_BLOCK = 256


@dataclass(frozen=True)
class LiveConfig:
    """What a live session opens and how.

    Attributes
    ----------
    input, output : str, int or None
        Device index, unique part of the name, or None for the default.
    channels : tuple of int
        1-based input channels used as microphones (≥ 2 distinct, default 1, 2).
    rate : float or None
        Sample rate (Hz); None takes the input device's default rate.
    block : int
        Frames per callback (and per :meth:`Separator.process` call).
    engine : str
        Separation engine name ("td", "fd").
    play : {"voice", "background", "both", "none"}
        What goes to the output device: one signal on every output channel
        (at most 2), voice on channel 1 and background on channel 2, or no
        output stream at all.
    record : Path or None
        Folder for ``input.wav``, ``voice.wav``, ``background.wav`` and
        ``session.json``; None records nothing.
    latency : str or float
        PortAudio suggested latency: "low", "high" or seconds.
    params : dict
        Engine parameters passed to :class:`rtsep.Separator`.
    """

    input: str | int | None = None
    output: str | int | None = None
    channels: tuple[int, ...] = (1, 2)
    rate: float | None = None
    block: int = DEFAULT_BLOCK
    engine: str = "td"
    play: str = "voice"
    record: Path | None = None
    latency: str | float = "high"
    params: dict[str, Any] = field(default_factory=dict)

    def validated(self) -> "LiveConfig":
        """Check the values that do not need a device; returns self."""
        ch = tuple(int(c) for c in self.channels)
        if len(ch) < 2 or len(set(ch)) != len(ch) or min(ch) < 1:
            raise ConfigError(f"--channels {','.join(map(str, ch))}: give at least 2 distinct 1-based "
                              "input channel numbers, e.g. --channels 1,2")
        if len(ch) > MAX_CHANNELS:
            raise ConfigError(f"--channels: at most {MAX_CHANNELS} microphones, got {len(ch)}")
        if not 16 <= int(self.block) <= 16384:
            raise ConfigError(f"--block {self.block}: frames per block must be from 16 to 16384 (default {DEFAULT_BLOCK})")
        if self.play not in PLAY_MODES:
            raise ConfigError(f"--play {self.play!r}: choose one of {', '.join(PLAY_MODES)}")
        if self.rate is not None:
            check_rate(self.rate)
        if isinstance(self.latency, str) and self.latency not in ("low", "high"):
            raise ConfigError(f"--latency {self.latency!r}: give low, high or a number of seconds")
        if not isinstance(self.latency, str) and not 0 < float(self.latency) <= 2:
            raise ConfigError(f"--latency {self.latency}: seconds must be in (0, 2]")
        return self
