"""Saying so when Numba compiles: the first run on a machine is silent for half a minute otherwise.

The kernels are compiled on first use and cached on disk (``cache=True``),
so only the first run on a machine (or after an upgrade) waits. Whether a
compile will happen is not worth predicting from cache files (their names
and validity are Numba's business): :func:`compile_notice` waits a moment
and speaks only if the warm-up is still running then. Loading the cached
kernels takes 1.3–1.5 s (td) on a 2-core machine, compiling about a minute,
so 3 s tells them apart with room for a busy machine.
"""

from __future__ import annotations

import itertools
import threading
import time
from contextlib import contextmanager
from typing import Iterator, TextIO

#: rough compile time of each engine, for the message (measured 57–60 s each on a busy 2-core machine)
COMPILE_S = {"td": "about a minute", "fd": "about a minute"}
_SPINNER = "|/-\\"


@contextmanager
def compile_notice(engine: str, stream: TextIO | None, after_s: float = 3.0) -> Iterator[None]:
    """Announce a slow warm-up on ``stream``, with a spinner if it is a terminal.

    Parameters
    ----------
    engine : str
        Engine name, for the message.
    stream : text stream or None
        Where to say it (``sys.stderr``); None says nothing.
    after_s : float
        Seconds the block may take before it is announced: a cached warm-up
        is well under that, a compile takes tens of seconds.
    """
    if stream is None:
        yield
        return
    text = f"compiling the {engine} engine, once per machine ({COMPILE_S.get(engine, 'about a minute')})…"
    tty = bool(getattr(stream, "isatty", lambda: False)())
    done = threading.Event()
    said = threading.Event()
    t0 = time.perf_counter()

    def speak() -> None:
        if done.wait(after_s):
            return
        said.set()
        if not tty:
            print(f"rtsep: {text}", file=stream, flush=True)
            return
        for ch in itertools.cycle(_SPINNER):
            stream.write(f"\rrtsep: {text} {ch}")
            stream.flush()
            if done.wait(0.2):
                break

    thread = threading.Thread(target=speak, name="rtsep-compile-notice", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        if said.is_set() and tty:
            stream.write(f"\rrtsep: {text} done in {time.perf_counter() - t0:.0f} s\n")
            stream.flush()
