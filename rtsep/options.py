"""The command-line options several commands share, written once.

``rtsep replay``, ``demo``, ``live``, ``client`` (and the corpus runner) take
the same engine options and read them the same way; they import them from
here, so :mod:`rtsep.cli` stays the only top of the import graph (it imports
the commands' modules, none of them imports it back).
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .neural import POSTFILTERS


def _parse_value(text: str) -> Any:
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


#: the top-level tables of a ``--config`` file, one per engine
ENGINE_TABLES = ("td", "fd")


def engine_params(args: argparse.Namespace) -> dict[str, Any]:
    """Engine parameters from ``--config FILE.toml`` (table ``[td]``/``[fd]``) and ``--param k=v``."""
    params: dict[str, Any] = {}
    if getattr(args, "config", None):
        path = Path(args.config)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"--config {path}: no such file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"--config {path} is not valid TOML: {exc}") from None
        unknown = sorted(set(data) - set(ENGINE_TABLES))
        if unknown:
            raise ConfigError(f"--config {path}: unknown table or key {', '.join(map(repr, unknown))}; "
                              f"known: {', '.join(ENGINE_TABLES)}")
        params.update(data.get(args.engine, {}))
    for item in getattr(args, "param", None) or []:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {item!r} should look like name=value, e.g. --param memory_s=3")
        params[key.strip()] = _parse_value(val.strip())
    suppress = getattr(args, "suppress", None)
    if suppress is not None:
        params["suppress_db"] = float(suppress)
    if getattr(args, "low_delay", False):
        if getattr(args, "engine", "fd") != "fd":
            raise ConfigError("--low-delay is the fd engine's low-latency setting; td has no delay of its own "
                              "(add --engine fd, or drop --low-delay)")
        params["low_delay"] = True
    postfilter = getattr(args, "postfilter", None)
    if postfilter is not None:
        params["postfilter"] = postfilter
    voice = getattr(args, "voice", "auto")
    if voice not in (None, "auto"):
        params["voice"] = int(voice) - 1  # people count outputs from 1, the API from 0
    return params


def parse_channels(text: str | None) -> list[int] | None:
    """``"1,2"`` → ``[1, 2]`` (1-based channel numbers)."""
    if text is None:
        return None
    try:
        chans = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise ConfigError(f"--channels {text!r} should be channel numbers like 1,2") from None
    if len(chans) < 2:
        raise ConfigError(f"--channels {text!r} names {len(chans)} channel(s); separation needs 2, e.g. 1,2")
    return chans


#: Engine for recordings and microphones. Every real two-mic recording is a
#: convolutive (room) mixture, where td measured −3.5 dB SDR improvement (it
#: makes things worse) and fd about +5 dB (bench/RESULTS.md); td stays one
#: flag away for zero-latency use on instantaneous mixtures.
DEFAULT_ENGINE = "fd"
ENGINE_HELP = ("fd: frequency-domain online IVA for real rooms, one frame (64 ms: 1023 samples at 16 kHz, 3071 at 48 kHz) "
               "of delay; td: time-domain PCA + kurtosis ICA, no added delay, for instantaneous mixtures "
               "(coincident mics, synthetic mixes)")
#: why the commands that take recordings or microphones default to fd (the Python API defaults to td)
DEFAULT_ENGINE_WHY = ("default: fd, because every real two-mic recording is a room mixture, where td was "
                      "measured to make things worse")


#: what ``--voice`` means, in every command that takes it
VOICE_HELP = ("which separated output is the voice: auto (the talker; between two talkers the near one) or "
              "pinned to output 1 or 2")


#: what ``--suppress`` means, in every command that takes engine options
SUPPRESS_HELP = ("post-filter: the most (dB) it attenuates what is left of the background in the voice, "
                 "reached where speech is absent (under speech at most 12 dB); fd's default 16, 0 to switch it "
                 "off (the background output is never filtered). fd: inside its STFT, no added "
                 "delay; td: a low-delay filter bank, 63 samples (3.9 ms at 16 kHz) of delay. Same as "
                 "--param suppress_db=DB")


#: what ``--low-delay`` means, in every command that takes engine options
LOW_DELAY_HELP = ("fd only: low-delay windows, half the latency (511 samples = 31.9 ms at 16 kHz instead of 63.9) at "
                  "the same frequency resolution, for about 0.3-0.6 dB less voice SDR. Same as --param low_delay=true")


#: what ``--postfilter`` means, in every command that takes engine options
POSTFILTER_HELP = ("a neural speech enhancer on the voice after separation (optional extra: pip install "
                   "'rtsep[neural]'): dfn3 (DeepFilterNet3, +41 ms at 16 kHz) or rnnoise (RNNoise, +31 ms); "
                   "none (default): rtsep's own post-filter only (--suppress). With a network, rtsep's own "
                   "post-filter is off unless --suppress is given; the background is only delayed")


def add_engine_options(p: argparse.ArgumentParser, default: str = DEFAULT_ENGINE, why: str = DEFAULT_ENGINE_WHY,
                       engine_help: str = "", voice_help: str = "", config: bool = True) -> None:
    """Add ``--engine``, ``--param``, ``--config``, ``--voice``, ``--suppress``, ``--postfilter`` and ``--low-delay`` (read back by :func:`engine_params`).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The command's parser.
    default : {"td", "fd"}
        The command's default engine; ``why`` says why, in the help.
    why : str
        The reason for ``default``, shown in ``--engine``'s help.
    engine_help : str
        Said before the engines' description (e.g. who runs the engine).
    voice_help : str
        Added to ``--voice``'s help (e.g. a live key).
    config : bool
        Whether the command takes ``--config FILE.toml``.
    """
    p.add_argument("--engine", choices=("td", "fd"), default=default, help=f"{engine_help}{ENGINE_HELP} ({why})")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="engine parameter, repeatable (e.g. --param memory_s=3)")
    if config:
        p.add_argument("--config", metavar="FILE.toml",
                       help="engine parameters from a TOML file ([td] / [fd] tables)")
    p.add_argument("--voice", choices=("auto", "1", "2"), default="auto", help=VOICE_HELP + voice_help)
    p.add_argument("--suppress", type=float, metavar="DB", default=None, help=SUPPRESS_HELP)
    p.add_argument("--postfilter", choices=POSTFILTERS, default=None, help=POSTFILTER_HELP)
    p.add_argument("--low-delay", action="store_true", help=LOW_DELAY_HELP)


def add_verbose(p: argparse.ArgumentParser) -> None:
    """Add ``-v/--verbose``."""
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also print routine guard actions (statistics restarted, weights refused…)")
