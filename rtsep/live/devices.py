"""Audio devices through PortAudio: the lazy :mod:`sounddevice` import, listing, resolving, errors.

The only place :mod:`sounddevice` is imported, and only inside functions:
``import rtsep`` and every non-live command work on machines without
PortAudio; ``rtsep live`` and ``rtsep devices`` say what to install.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import AudioDeviceError, DependencyError

#: A device latency PortAudio reports above this (s) is treated as unknown:
#: some host APIs (JACK with ports that declare no latency) report ~2^32 frames.
MAX_PLAUSIBLE_LATENCY_S = 10.0

HINT = "run `rtsep devices` to see the audio devices"
#: Streams open in this process: PortAudio must not be rescanned under them.
_open_streams = 0


def count_stream(delta: int) -> None:
    """Count a stream opened (+1) or closed (-1) in this process (:func:`resolve_device` rescans only with none)."""
    global _open_streams
    _open_streams += delta


def import_sounddevice() -> Any:
    """Import :mod:`sounddevice`, turning a missing PortAudio into :class:`DependencyError`."""
    try:
        import sounddevice
    except OSError as exc:  # the wheel does not bundle PortAudio on Linux
        raise DependencyError(f"live audio needs the PortAudio library, which is missing ({short_error(exc)}): "
                              "apt-get install libportaudio2; other rtsep commands work without it") from None
    except ImportError as exc:
        raise DependencyError(f"live audio needs the Python package sounddevice ({short_error(exc)}): "
                              "pip install sounddevice") from None
    return sounddevice


def rescan_devices() -> None:
    """Make PortAudio list the devices again.

    PortAudio scans devices once, when it is initialised; a device that
    appeared later (a USB microphone plugged in, a JACK client started) is
    missing until it scans again. Only safe while no stream is open.
    """
    sd = import_sounddevice()
    sd._terminate()
    sd._initialize()


@dataclass(frozen=True)
class DeviceInfo:
    """One audio device as PortAudio lists it.

    Attributes
    ----------
    index : int
        PortAudio device index (what ``--input``/``--output`` accept).
    name : str
        Device name (a unique part of it also works as ``--input``).
    hostapi : str
        Host API (ALSA, JACK Audio Connection Kit, Core Audio, WASAPI…).
    max_input_channels, max_output_channels : int
        Channel counts.
    default_samplerate : float
        The device's default sample rate (Hz).
    default_input, default_output : bool
        Whether it is the default input / output device.
    """

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    default_input: bool
    default_output: bool


def list_devices(rescan: bool = False) -> list[DeviceInfo]:
    """All audio devices PortAudio knows, in index order.

    Parameters
    ----------
    rescan : bool
        Scan again first (see :func:`rescan_devices`).
    """
    sd = import_sounddevice()
    if rescan:
        rescan_devices()
    apis = sd.query_hostapis()
    din, dout = _default_indices(sd)
    out = []
    for d in sd.query_devices():
        out.append(DeviceInfo(index=int(d["index"]), name=str(d["name"]),
                              hostapi=str(apis[d["hostapi"]]["name"]),
                              max_input_channels=int(d["max_input_channels"]),
                              max_output_channels=int(d["max_output_channels"]),
                              default_samplerate=float(d["default_samplerate"]),
                              default_input=int(d["index"]) == din,
                              default_output=int(d["index"]) == dout))
    return out


def _default_indices(sd: Any) -> tuple[int, int]:
    try:
        din, dout = sd.default.device
    except Exception:  # noqa: BLE001 - a broken default is simply "no default"
        return -1, -1
    return (int(din) if din is not None else -1), (int(dout) if dout is not None else -1)


def _device_spec(spec: str | int | None) -> str | int | None:
    if spec is None or isinstance(spec, int):
        return spec
    s = str(spec).strip()
    if s == "" or s.lower() == "default":
        return None
    return int(s) if s.isdigit() else s


def resolve_device(spec: str | int | None, kind: str) -> DeviceInfo:
    """Find the input or output device a user means.

    Parameters
    ----------
    spec : str, int or None
        Index, a unique part of the name, or None / "default" for the default device.
    kind : {"input", "output"}
        Which direction is needed.

    Raises
    ------
    AudioDeviceError
        No such device, several match, or it has no channels in that direction.
    """
    sd = import_sounddevice()
    spec = _device_spec(spec)
    for attempt in range(2):
        try:
            idx = _query_index(sd, spec, kind)
            break
        except AudioDeviceError:
            # A device started after PortAudio's start-up scan (USB mic, JACK client)
            # is invisible until a rescan; one rescan, then give up. Rescanning
            # re-initialises PortAudio, which would kill streams already open here.
            if attempt or _open_streams:
                raise
            rescan_devices()
    for d in list_devices():
        if d.index == idx:
            return d
    raise AudioDeviceError(f"{kind} device {spec!r} vanished while it was being opened; {HINT}")


def _query_index(sd: Any, spec: str | int | None, kind: str) -> int:
    if spec is None:
        din, dout = _default_indices(sd)
        idx = din if kind == "input" else dout
        if idx < 0:
            raise AudioDeviceError(f"there is no default {kind} device (no sound card, or the audio server "
                                   f"is not running); give one with --{kind}; {HINT}")
        return idx
    try:
        info = sd.query_devices(spec, kind)
    except ValueError as exc:
        msg = str(exc)
        if msg.startswith("Multiple"):
            raise AudioDeviceError(f"several {kind} devices match {spec!r}; give its index or a longer "
                                   f"part of its name; {HINT}") from None
        raise AudioDeviceError(f"no {kind} device matches {spec!r}; {HINT}") from None
    except sd.PortAudioError:
        raise AudioDeviceError(f"there is no audio device with index {spec}; {HINT}") from None
    return int(info["index"])


def device_error(exc: BaseException, what: str, rate: float | None = None,
                 default_rate: float | None = None) -> AudioDeviceError:
    """Turn a PortAudio failure into one line saying what is wrong and what to do.

    Parameters
    ----------
    exc : BaseException
        The exception from sounddevice / PortAudio.
    what : str
        The device(s) concerned, e.g. ``"input device 'USB mic' (ALSA)"``.
    rate : float, optional
        The sample rate asked for (Hz).
    default_rate : float, optional
        The device's default rate (Hz), suggested when the rate is refused.
    """
    args = getattr(exc, "args", ())
    code = args[1] if len(args) > 1 and isinstance(args[1], int) else None
    text = short_error(exc)
    low = text.lower()
    if code == -9997 or "sample rate" in low:
        alt = f"; its default is {default_rate:g} Hz (--rate {default_rate:g})" if default_rate else ""
        return AudioDeviceError(f"{what} does not support {rate:g} Hz{alt}; {HINT}" if rate else
                                f"{what} refuses the sample rate{alt}; {HINT}")
    if code == -9985 or "unavailable" in low or "busy" in low:
        return AudioDeviceError(f"{what} is busy or unavailable (another program may be using it); "
                                f"close that program or choose another device; {HINT}")
    if code == -9998 or "number of channels" in low:
        return AudioDeviceError(f"{what} does not offer that many channels; {HINT}")
    if code == -9993 or "illegal combination" in low:
        return AudioDeviceError(f"{what}: input and output must be on the same host API (both ALSA, both "
                                f"JACK…), or use --play none; {HINT}")
    if code == -9996 or "invalid device" in low or "querying device" in low:
        return AudioDeviceError(f"{what} is not a valid device (unplugged?); {HINT}")
    return AudioDeviceError(f"{what} could not be opened ({text}); {HINT}")


def plausible_latency(lat: Any) -> float | None:
    try:
        v = float(lat)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and 0.0 <= v < MAX_PLAUSIBLE_LATENCY_S else None


def short_error(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
