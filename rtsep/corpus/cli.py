"""The corpus options of ``rtsep replay`` and the command that runs them."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from .files import is_corpus_request, parse_shard
from .progress import Progress
from .runner import default_jobs, failures_exit_code, run_corpus

def add_corpus_arguments(p: Any) -> None:
    """Corpus options of ``rtsep replay`` (any of them, several inputs, a folder or a glob → corpus mode)."""
    g = p.add_argument_group("corpus (several inputs, a folder or a glob)")
    g.add_argument("--jobs", type=int, metavar="N",
                   help=f"files separated in parallel processes (default: the number of cores, {default_jobs()})")
    g.add_argument("--force", action="store_true", help="redo files a previous run already finished")
    g.add_argument("--shard", metavar="K/N", help="only part K of N of the sorted file list (one per machine)")
    g.add_argument("--dask", metavar="ADDRESS",
                   help="run on a Dask cluster: tcp://HOST:8786, or 'local' (needs pip install 'rtsep[dask]')")


def wants_corpus(args: Any) -> bool:
    """Whether parsed ``rtsep replay`` arguments ask for corpus mode."""
    return (is_corpus_request(args.input) or args.jobs is not None or args.force
            or args.shard is not None or args.dask is not None)


def cmd_corpus(args: Any) -> int:
    """``rtsep replay IN... --out DIR`` over a corpus; exit 1 if some files failed."""
    from ..options import engine_params, parse_channels
    from ..report import write_report

    # guard events and input notes go to each file's timing.json; as log lines they would name no file
    logging.getLogger("rtsep").setLevel(logging.ERROR)  # main() restores the level
    prog = Progress(tty=sys.stderr.isatty(), quiet=args.quiet)
    res = run_corpus(args.input, args.out, engine=args.engine, block=args.block,
                     channels=parse_channels(args.channels), params=engine_params(args),
                     jobs=args.jobs, force=args.force, shard_kn=parse_shard(args.shard), dask=args.dask,
                     progress=prog, warn=lambda msg: print(f"rtsep: {msg}", file=sys.stderr))
    _, summary = write_report(args.out)
    if not args.quiet:
        rate = res.audio_s / res.wall_s if res.wall_s > 0 else 0.0
        print(f"rtsep: {res.done} separated, {res.failed} failed, {res.skipped} already finished; "
              f"{res.audio_s / 3600:.3f} h of audio in {res.wall_s:.1f} s ({rate:.1f} h of audio per hour); "
              f"wrote {res.manifest_path} and {Path(args.out) / 'summary.md'}")
    if res.failed:
        print(f"rtsep: error: {res.failed} of {res.done + res.failed} file(s) failed (listed above and in "
              f"{res.manifest_path}); fix them and run the same command again to do only those", file=sys.stderr)
    return failures_exit_code(res)
