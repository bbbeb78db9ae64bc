"""``rtsep devices`` and ``rtsep live``: their arguments and commands."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

from ..errors import ConfigError, RtsepError
from ..options import add_engine_options, engine_params
from .config import DEFAULT_BLOCK, PLAY_MODES, LiveConfig
from .devices import list_devices
from .keys import KeyReader
from .session import LiveSession
from .signals import ignore_sigint, restore_sigint, stop_on_sigterm


def add_devices_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``rtsep devices``."""
    p.add_argument("--json", action="store_true", help="print the list as JSON (for scripts)")


def cmd_devices(args: argparse.Namespace) -> int:
    """``rtsep devices``: a table of the audio devices, defaults marked.

    Returns
    -------
    int
        0 (a machine without devices is not an error; it says so).
    """
    devs = list_devices()
    if getattr(args, "json", False):
        print(json.dumps([asdict(d) for d in devs], indent=2))
        return 0
    from . import dashboard

    dashboard.print_devices(devs, rich_output=sys.stdout.isatty())
    return 0


def add_live_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``rtsep live``."""
    p.add_argument("--input", "-i", metavar="DEV", default=None,
                   help="input device: index or part of the name from `rtsep devices` (default: the default input)")
    p.add_argument("--output-device", "--output", dest="output", metavar="DEV", default=None,
                   help="output device: index or part of the name (default: the default output)")
    # -o names an output folder in every other command; here it once named the device
    p.add_argument("-o", dest="output_o", metavar="DEV", default=None, help=argparse.SUPPRESS)
    p.add_argument("--channels", metavar="A,B", default="1,2",
                   help="input channels used as the microphones, 1-based (default 1,2)")
    p.add_argument("--rate", type=float, default=None, metavar="HZ",
                   help="sample rate in Hz (default: the input device's default rate)")
    p.add_argument("--block", type=int, default=DEFAULT_BLOCK, metavar="FRAMES",
                   help=f"frames per audio callback (default {DEFAULT_BLOCK}); larger is safer, smaller is faster")
    add_engine_options(p, voice_help="; the s key swaps them live")
    p.add_argument("--play", choices=PLAY_MODES, default="voice",
                   help="what the output plays: voice, background, both (voice left, background right) or none")
    p.add_argument("--record", metavar="DIR", default=None,
                   help="write DIR/input.wav, voice.wav, background.wav and session.json")
    p.add_argument("--latency", default="high", metavar="low|high|SECONDS",
                   help="PortAudio suggested latency (default high: fewest dropouts)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop by itself after this many seconds (default: run until Ctrl-C)")
    p.add_argument("--no-dashboard", action="store_true",
                   help="print plain status lines instead of the live dashboard")


def config_from_args(args: argparse.Namespace) -> LiveConfig:
    """Build a :class:`LiveConfig` from ``rtsep live`` arguments."""
    try:
        channels = tuple(int(c) for c in str(args.channels).replace(" ", "").split(",") if c)
    except ValueError:
        raise ConfigError(f"--channels {args.channels!r}: give 1-based channel numbers like 1,2") from None
    lat: str | float = getattr(args, "latency", "high")
    if isinstance(lat, str) and lat not in ("low", "high"):
        try:
            lat = float(lat)
        except ValueError:
            raise ConfigError(f"--latency {lat!r}: give low, high or a number of seconds") from None
    dur = getattr(args, "duration", None)
    if dur is not None and not (math.isfinite(dur) and dur > 0):
        raise ConfigError(f"--duration {dur}: give a positive number of seconds")
    output = args.output
    if getattr(args, "output_o", None) is not None:
        logging.getLogger("rtsep").warning("-o for the output device is deprecated (elsewhere -o names an output folder): "
                    "use --output-device %s", args.output_o)
        output = args.output if args.output is not None else args.output_o
    return LiveConfig(input=args.input, output=output, channels=channels, rate=args.rate,
                      block=args.block, engine=args.engine, play=args.play,
                      record=Path(args.record) if args.record else None, latency=lat,
                      params=engine_params(args)).validated()


def cmd_live(args: argparse.Namespace) -> int:
    """``rtsep live``: separate the microphones in real time until Ctrl-C or ``--duration``.

    Returns
    -------
    int
        0 after a clean stop (Ctrl-C, SIGTERM or the duration). Problems raise
        :class:`~rtsep.errors.RtsepError` subclasses with one-line messages,
        after the recording has been finished and the summary printed.
    """
    from . import dashboard

    cfg = config_from_args(args)
    duration = getattr(args, "duration", None)
    fancy = sys.stdout.isatty() and not getattr(args, "no_dashboard", False)
    session = LiveSession(cfg, notice=sys.stderr)
    error: BaseException | None = None
    reason = "duration"
    restore = stop_on_sigterm()
    try:
        session.open()
        print(dashboard.start_line(session), flush=True)
        session.start()
        with dashboard.Display(fancy=fancy) as display, KeyReader() as keys:
            t_end = None if duration is None else time.monotonic() + duration
            while True:
                now = time.monotonic()
                if t_end is not None and now >= t_end:
                    break
                key = keys.read(0.1 if t_end is None else max(0.0, min(0.1, t_end - now)))
                if key in ("s", "S"):
                    session.swap_voice()
                elif key in ("q", "Q"):
                    reason = "q"
                    break
                display.update(session.poll())
    except KeyboardInterrupt:
        reason = "Ctrl-C"
    except RtsepError as exc:
        error, reason = exc, "error"
    finally:
        # A second Ctrl-C must not cut the files short; stopping is bounded anyway.
        old = ignore_sigint()
        try:
            final = session.stop(reason)
        finally:
            restore_sigint(old)
            restore()
    # An error before the stream started (no such device…) is just its one line.
    if session.started or reason == "Ctrl-C":
        print(dashboard.summary_line(final), flush=True)
    if error is not None:
        raise error
    return 0
