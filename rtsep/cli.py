"""Command line: ``rtsep devices | live | replay | report | demo | bench | serve | client``.

Every failure a user can fix is an :class:`RtsepError`, printed as one line
``rtsep: error: …`` with a non-zero exit status; no traceback is shown unless
``RTSEP_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .errors import RtsepError
from .io_files import OUTPUT_SUBTYPES
from .options import add_engine_options, add_verbose, engine_params, parse_channels


def cmd_replay(args: argparse.Namespace) -> int:
    """Stream a file through the separator and write voice/background WAVs."""
    from .corpus import cmd_corpus, wants_corpus
    from .replay import clipping_warning, output_clipping_warning, replay

    if wants_corpus(args):
        return cmd_corpus(args)
    args.input = args.input[0]

    progress = None
    bar = None
    if not args.quiet and sys.stderr.isatty() and args.input != "-":  # stdin has no known length
        from rich.progress import Progress

        bar = Progress(transient=True)
        task = bar.add_task("separating", total=1.0)
        bar.start()

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done / max(total, 1))
    # NaN and clipping are summed up below and in the error message, not logged as they happen
    input_log = logging.getLogger("rtsep.input")
    input_log.setLevel(logging.ERROR)
    try:
        res = replay(args.input, args.out, engine=args.engine, block=args.block,
                     channels=parse_channels(args.channels), params=engine_params(args),
                     progress=progress, subtype=args.subtype, stereo=args.stereo,
                     notice=None if args.quiet else sys.stderr, plot=args.plot)
    finally:
        input_log.setLevel(logging.NOTSET)
        if bar is not None:
            bar.stop()
    t = res.timing
    for warn in (clipping_warning(res), output_clipping_warning(res)):
        if warn:
            print(f"rtsep: {Path(res.timing['input']).name}: {warn}", file=sys.stderr)
    if not args.quiet:
        print(f"rtsep: {summary_line(t, res.outputs)}")
    return 0


def summary_line(t: dict[str, Any], outputs: dict[str, Path]) -> str:
    """What a replay did, in one line: length, engine, speed, latency, which output is the voice, files."""
    voice = t.get("voice_output")
    # the engines count outputs from 0; people count from 1
    which = f"voice = output {voice + 1} of 2" if isinstance(voice, int) else "voice output undecided"
    files = [str(p) for k, p in outputs.items() if k not in ("timing", "plot")]
    plot = f", {outputs['plot']}" if "plot" in outputs else ""
    return (f"separated {t['audio_s']:.2f} s at {t['fs']} Hz with {t['engine']} in {t['processing_s']:.3f} s "
            f"(real-time factor {t['rtf']:.4f}, latency {t['latency_samples']} samples = "
            f"{1000 * t['latency_s']:.1f} ms); {which}; wrote {', '.join(files)} ({t['output_subtype']}){plot} "
            f"and {outputs['timing']}")


def cmd_demo(args: argparse.Namespace) -> int:
    """Separate the built-in example and print its measured quality."""
    from .demo import BACKGROUND_NAMES, TALKER_SHARE_YES, run_demo

    res = run_demo(args.out, background=args.background, cond=args.cond, seed=args.seed,
                   block=args.block, engine=args.engine, plot=not args.no_plot,
                   params=engine_params(args), notice=sys.stderr)
    print(f"rtsep demo: real talker + {BACKGROUND_NAMES[args.background]}, 2 virtual mics "
          f"(mixing condition number {args.cond:g}), engine {args.engine}")
    print(f"  voice SIR improvement: {res.sir_improvement:.1f} dB (whole file), "
          f"{res.sir_improvement_second_half:.1f} dB (second half)")
    print(f"  voice SDR improvement: {res.sdr_improvement:.1f} dB")
    verdict = "yes" if res.voice_share >= TALKER_SHARE_YES else "partly" if res.voice_share >= 0.5 else "NO"
    print(f"  voice output is the talker: {verdict} "
          f"(in {100 * res.voice_share:.0f}% of the 1 s windows where the talker speaks)")
    print(f"  real-time factor: {res.rtf:.4f}")
    print("  wrote " + ", ".join(str(p) for p in res.files.values()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``rtsep`` argument parser."""
    from . import corpus, report
    p = argparse.ArgumentParser(prog="rtsep", description="Real-time two-microphone voice/background separation.")
    p.add_argument("--version", action="version", version=f"rtsep {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("replay", help="separate a recording, streamed block by block as if live")
    r.add_argument("input", nargs="+", help="two-channel recording (WAV, FLAC, OGG…); - reads WAV or FLAC from "
                   "stdin; several, folders or globs: a corpus, mirrored under --out with a manifest.json")
    r.add_argument("-o", "--out", required=True, help="output folder for voice.wav, background.wav, timing.json")
    r.add_argument("--subtype", type=str.upper, choices=OUTPUT_SUBTYPES, default=None,
                   help="sample format of the outputs (default: the input's own; FLOAT never clips)")
    r.add_argument("--plot", action="store_true",
                   help="also write replay.png: waveforms, spectrograms of mic 1 and the voice, which output is "
                        "the voice over time")
    r.add_argument("--stereo", action="store_true",
                   help="write one stereo separated.wav (voice left, background right) instead of two mono files")
    r.add_argument("--block", type=int, default=256, help="block length in samples (default 256)")
    r.add_argument("--channels", help="1-based channels to use from a multichannel file, e.g. 1,2")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    add_verbose(r)
    add_engine_options(r)
    corpus.add_corpus_arguments(r)
    r.set_defaults(func=cmd_replay)

    d = sub.add_parser("demo", help="separate a built-in example (no microphone needed)")
    d.add_argument("-o", "--out", default="rtsep-demo", help="output folder (default ./rtsep-demo)")
    d.add_argument("--background", choices=("music", "noise", "cafe"), default="music",
                   help="what the talker is mixed with: generated music, pink noise, or a cafe of other "
                        "voices (needs the real-speech packages) (default music)")
    d.add_argument("--cond", type=float, default=5.0,
                   help="condition number of the 2x2 mixing matrix, >= 1: larger means the two mics hear more "
                        "alike and separation is harder (default 5)")
    d.add_argument("--seed", type=int, default=1, help="seed of the mixing matrix and background (default 1)")
    d.add_argument("--block", type=int, default=256, help="block length in samples (default 256)")
    d.add_argument("--no-plot", action="store_true", help="do not write demo.png")
    add_engine_options(d, default="td", why="default: td, because the demo's mixture is instantaneous by "
                                             "construction, where td separates best and adds no delay")
    add_verbose(d)
    d.set_defaults(func=cmd_demo)

    # none of these modules imports sounddevice, websockets or a peer at import time
    from . import bench, client, live, service

    for name, help_text, add_arguments, command in (
            ("devices", "list audio devices (needs PortAudio)", live.add_devices_arguments, live.cmd_devices),
            ("live", "separate microphones live (needs PortAudio)", live.add_live_arguments, live.cmd_live),
            ("bench", "speed, latency and quality, side by side with other separators",
             bench.add_bench_arguments, bench.cmd_bench),
            ("serve", "separate streams sent over WebSocket (ws://host:port)",
             service.add_serve_arguments, service.cmd_serve),
            ("client", "stream a recording through `rtsep serve` and write voice/background WAVs",
             client.add_client_arguments, client.cmd_client),
            ("report", "summarize a corpus run: counts, hours, throughput, failures, level/RTF histograms",
             report.add_report_arguments, report.cmd_report)):
        sp = sub.add_parser(name, help=help_text)
        add_arguments(sp)
        add_verbose(sp)
        sp.set_defaults(func=command)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "block", 1) is not None and getattr(args, "block", 1) < 1:
        print(f"rtsep: error: --block {args.block} must be a positive number of samples", file=sys.stderr)
        return 2
    handler = _StderrHandler()
    logger = logging.getLogger("rtsep")
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    # routine guard actions are INFO: shown with -v; WARNING is for what the user should act on
    # a server's sessions (INFO) are its log, so `serve` shows them without -v
    logger.setLevel(logging.ERROR if getattr(args, "quiet", False)
                    else logging.INFO if getattr(args, "verbose", False) or args.command == "serve"
                    else logging.WARNING)
    logger.propagate = False
    try:
        return int(args.func(args) or 0)
    except RtsepError as exc:
        print(f"rtsep: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rtsep: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence for the user
        if os.environ.get("RTSEP_DEBUG"):
            raise
        print(f"rtsep: internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]} "
              "(please report it; RTSEP_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 70
    finally:
        logger.removeHandler(handler)
        logger.level, logger.propagate = saved


class _StderrHandler(logging.Handler):
    """Log records as ``rtsep: SOURCE: message`` lines on whatever ``sys.stderr`` is now.

    A guard event (:mod:`rtsep.events`) with a source (a file, a benchmark
    method) is printed once per kind and source: the totals are in
    ``timing.json``, repeating the line says nothing new.
    """

    def __init__(self) -> None:
        super().__init__()
        self._said: set[tuple[str, str]] = set()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            source, guard = getattr(record, "source", None), getattr(record, "guard", None)
            if source and guard:
                if (source, guard) in self._said:
                    return
                self._said.add((source, guard))
            prefix = f"rtsep: {source}: " if source else "rtsep: "
            print(prefix + record.getMessage(), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never break the audio path
            self.handleError(record)
