"""Engine and stream parameters, validated with messages a user can act on.

Each engine has one frozen dataclass of parameters. Values arrive from the
Python API (``Separator(fs, **params)``), the CLI or a TOML file, and are
checked here once, so the kernels never see a value they cannot handle.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

from .errors import ConfigError

#: Sample rates rtsep accepts (Hz). Outside this range the engines' time
#: constants stop making sense, so files are refused rather than resampled.
MIN_RATE_HZ = 8000
MAX_RATE_HZ = 96000
MAX_CHANNELS = 8


def check_range(name: str, value: Any, lo: float, hi: float, *, kind: type = float,
                lo_open: bool = False) -> Any:
    """Return ``value`` converted to ``kind`` if ``lo <= value <= hi``, else raise.

    Parameters
    ----------
    name : str
        Parameter name, used in the message.
    value : Any
        The value given by the user.
    lo, hi : float
        Allowed closed range (``lo`` open when ``lo_open``).
    kind : type
        ``int`` or ``float``.
    """
    try:
        if kind is int:
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            v: Any = int(float(value))
        else:
            v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a{'n integer' if kind is int else ' number'}, got {value!r}") from None
    if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo):
        left = "(" if lo_open else "["
        raise ConfigError(f"{name}={value!r} is out of range; allowed {left}{lo:g}, {hi:g}]")
    return v


def check_rate(fs: Any) -> float:
    """Validate a sample rate in Hz (8 kHz to 96 kHz)."""
    return check_range("fs (sample rate, Hz)", fs, MIN_RATE_HZ, MAX_RATE_HZ)


def check_channels(channels: Any) -> int:
    """Validate a microphone count: rtsep separates from 2 to 8 microphones."""
    if channels == 1:
        raise ConfigError("channels=1: rtsep needs at least 2 microphones to separate sources; "
                          "record with two mics (or pick two channels of a multichannel input)")
    return check_range("channels", channels, 2, MAX_CHANNELS, kind=int)


@dataclass(frozen=True)
class TdParams:
    """Parameters of the time-domain engine (running PCA + kurtosis ICA).

    Attributes
    ----------
    memory_s : float
        Memory of the running covariance and 4th-order moments (seconds).
        Longer is more accurate in a steady scene, shorter follows changes.
    update_every : int or None
        Whitening and rotation are recomputed every this many samples,
        counted on the absolute sample index (never on block boundaries).
        None: every 2 ms (32 samples at 16 kHz, 96 at 48 kHz).
    highpass_hz : float
        Cut-off of the one-pole DC-removal high-pass (Hz).
    sources : int
        Number of sources Q kept by PCA (2 ≤ Q ≤ channels). With more mics
        than sources the top-Q principal subspace is kept.
    ref_mic : int
        Microphone (0-based) on which the outputs are projected back.
    eps_rel : float
        Whitening regulariser relative to the mean eigenvalue; bounds the
        gain on a rank-deficient (e.g. two identical) channel pair.
    voice : str or int
        ``"auto"``: the more kurtotic (speech-like) output is the voice, with
        hysteresis; an int pins the voice to that ICA output.
    label_margin : float
        Excess-kurtosis lead the other output must have before the label swaps.
    label_hold_s : float
        How long (seconds) that lead must persist before the label swaps.
    crossfade_s : float
        Length of the crossfade (seconds) when the label swaps, so it never clicks.
    global_search_every : int
        Every this many updates the rotation also checks a grid over all
        angles, to escape a wrong local maximum of the contrast.
    warmup_s : float
        For this long (seconds) from the start the reference mic is passed
        through as the voice while the statistics fill up.
    change_memory_s : float
        Memory (seconds) of the short-term statistics the change detector
        compares against; also how much recent audio a restart keeps.
    change_threshold : float
        Rotation (radians, 0 … π/4) that the short-memory cumulants ask for,
        beyond which the mixing is taken to have changed; π/4 or more
        disables the detector.
    change_hold_s : float
        How long (seconds) the rotation must stay above the threshold.
    outlier_sigma : float
        Samples further than this (in whitened standard deviations) from the
        origin enter the statistics shrunk to this radius, so clicks and
        fault bursts cannot dominate the 4th moments; 0 disables.
    change_min_gain : float
        Least rise of the pair contrast (sum of squared excess kurtoses of
        the short-memory outputs) that the rotation must bring before it
        counts towards a change; below it the short-memory cumulants are
        estimation noise (a talker's quiet stretch), not a new mixing.
    stuck_s : float
        A mic repeating exactly the same value for this long (seconds) is
        stuck or dead (zeros): its samples, and the high-pass's ring-out
        after it, are not learnt from; 0 disables.
    dead_mic_db : float
        A mic whose 2 ms power falls this many dB below another mic's is
        dead: its samples are not learnt from; 0 disables.
    """

    memory_s: float = 2.0
    update_every: int | None = None
    highpass_hz: float = 30.0
    sources: int = 2
    ref_mic: int = 0
    eps_rel: float = 1e-6
    voice: str | int = "auto"
    label_margin: float = 1.0
    label_hold_s: float = 0.3
    crossfade_s: float = 0.02
    global_search_every: int = 4
    warmup_s: float = 0.1
    change_memory_s: float = 0.5
    change_threshold: float = 0.2
    change_hold_s: float = 0.15
    outlier_sigma: float = 5.0
    change_min_gain: float = 0.25
    stuck_s: float = 0.0005
    dead_mic_db: float = 40.0

    def validated(self, fs: float, channels: int) -> "TdParams":
        """Return a copy with every value checked against ``fs`` (Hz) and ``channels``."""
        check_range("memory_s", self.memory_s, 0.05, 600.0)
        every = max(1, round(0.002 * fs)) if self.update_every is None else self.update_every
        check_range("update_every", every, 1, 4096, kind=int)
        check_range("highpass_hz", self.highpass_hz, 0.0, min(500.0, fs / 4))
        q = check_range("sources", self.sources, 2, channels, kind=int)
        check_range("ref_mic", self.ref_mic, 0, channels - 1, kind=int)
        check_range("eps_rel", self.eps_rel, 0.0, 1.0)
        check_range("label_margin", self.label_margin, 0.0, 100.0)
        check_range("label_hold_s", self.label_hold_s, 0.0, 60.0)
        check_range("crossfade_s", self.crossfade_s, 0.0, 1.0)
        check_range("global_search_every", self.global_search_every, 1, 1_000_000, kind=int)
        check_range("warmup_s", self.warmup_s, 0.0, 60.0)
        check_range("change_memory_s", self.change_memory_s, 0.02, 60.0)
        check_range("change_threshold", self.change_threshold, 0.0, 1.0)
        check_range("change_hold_s", self.change_hold_s, 0.0, 10.0)
        check_range("outlier_sigma", self.outlier_sigma, 0.0, 1e6)
        check_range("change_min_gain", self.change_min_gain, 0.0, 1e6)
        check_range("stuck_s", self.stuck_s, 0.0, 1.0)
        check_range("dead_mic_db", self.dead_mic_db, 0.0, 300.0)
        if self.voice != "auto":
            check_range("voice", self.voice, 0, q - 1, kind=int)
        return dataclasses.replace(self, update_every=int(every), sources=int(q),
                                   ref_mic=int(self.ref_mic),
                                   global_search_every=int(self.global_search_every),
                                   voice=self.voice if self.voice == "auto" else int(self.voice))


def params_from(cls: type, values: Mapping[str, Any], engine: str) -> Any:
    """Build a parameter dataclass from keyword values, refusing unknown names.

    Parameters
    ----------
    cls : type
        The dataclass (e.g. :class:`TdParams`).
    values : mapping
        User-supplied keyword parameters.
    engine : str
        Engine name for the message.
    """
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown parameter(s) {', '.join(unknown)} for engine {engine!r}; "
                          f"known: {', '.join(sorted(known))}")
    return cls(**values)
