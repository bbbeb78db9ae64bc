"""Live separation: microphones in, voice and background out, through PortAudio.

Only :mod:`rtsep.live.devices` imports :mod:`sounddevice`, and only inside
functions: ``import rtsep`` and every non-live command work on machines
without PortAudio; ``rtsep live`` and ``rtsep devices`` say what to install.

Data path (one full-duplex PortAudio stream, :mod:`rtsep.live.session`)::

    PortAudio callback ─▶ copy selected mics into a preallocated block
                       ─▶ Separator.process ─▶ output channels (voice / background)
                       ─▶ record slot (preallocated) ─▶ queue ─▶ writer thread ─▶ WAVs

The modules, one concern each:

- :mod:`~rtsep.live.devices`: the lazy sounddevice import, listing and resolving devices, device errors;
- :mod:`~rtsep.live.config`: :class:`LiveConfig`, what a session opens;
- :mod:`~rtsep.live.stats`: :class:`LiveStats`, what a session reports;
- :mod:`~rtsep.live.recorder`: the WAV writer thread the callback feeds without waiting;
- :mod:`~rtsep.live.session`: :class:`LiveSession`, the stream and its callback; :func:`run_live`;
- :mod:`~rtsep.live.signals`: SIGTERM and a second Ctrl-C while stopping;
- :mod:`~rtsep.live.cli`: ``rtsep devices`` and ``rtsep live``;
- :mod:`~rtsep.live.dashboard`, :mod:`~rtsep.live.keys`: what the terminal shows, the keys it reads.
"""

from __future__ import annotations

from .cli import add_devices_arguments, add_live_arguments, cmd_devices, cmd_live, config_from_args
from .config import DEFAULT_BLOCK, PLAY_MODES, LiveConfig
from .devices import DeviceInfo, device_error, list_devices, rescan_devices, resolve_device
from .session import LiveCallbackError, LiveSession, run_live
from .stats import LiveStats

__all__ = ["LiveConfig", "LiveSession", "LiveStats", "LiveCallbackError", "DeviceInfo", "PLAY_MODES",
           "DEFAULT_BLOCK", "list_devices", "resolve_device", "rescan_devices", "device_error",
           "add_devices_arguments", "cmd_devices", "add_live_arguments", "cmd_live", "config_from_args",
           "run_live"]
