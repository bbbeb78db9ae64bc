"""Guard events: what the separator's protections did, counted and logged.

The engines count what their guards do (a change of scene relearnt, a dead
mic not learnt from, a burst shrunk, weights refused…) in their state
arrays; :class:`GuardLog` turns the counters' increases into log records on
the ``"rtsep"`` logger, at most one per kind every few seconds of stream
time, and keeps a bounded list of them for reports (``timing.json``, the
service's metrics).

Each record carries ``guard`` (the counter's name) and ``source`` (what
:func:`log_source` named: a file, a benchmark method, or None), so a handler
can prefix the source and keep one line per kind per source.
"""

from __future__ import annotations

import logging
from collections import deque
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

LOGGER = logging.getLogger("rtsep")
# a library does not print on its own: without a configured handler the
# records go nowhere (the CLI adds one; so can any application)
LOGGER.addHandler(logging.NullHandler())
#: Faults of the input itself (NaN, clipping) go to this child logger: a
#: replay reports them in its own summary and silences it.
INPUT_LOGGER = logging.getLogger("rtsep.input")
_INPUT_KINDS = frozenset({"nonfinite", "clipped"})
_SOURCE: ContextVar[str | None] = ContextVar("rtsep_log_source", default=None)


@contextmanager
def log_source(name: str | None) -> Iterator[None]:
    """Stamp the guard records logged inside the ``with`` block with ``source=name``.

    Parameters
    ----------
    name : str or None
        What the audio is (a file name, ``"demo"``, a benchmark method).
    """
    token = _SOURCE.set(name)
    try:
        yield
    finally:
        _SOURCE.reset(token)

_CAUSED_BY_NAN = frozenset({"stuck_samples_skipped", "dead_mic_samples_skipped", "faulty_frames_skipped"})

#: counter name (as in the engines' ``info()``) -> (level, what happened and what to do)
GUARDS: dict[str, tuple[int, str]] = {
    "nonfinite": (logging.WARNING, "NaN/Inf input samples replaced by silence; check the audio source"),
    "clipped": (logging.WARNING, "input at full scale (clipping); lower the recording gain"),
    "changes_detected": (logging.INFO, "the mixing changed (a mic or a talker moved): statistics restarted"),
    "scene_restarts": (logging.INFO, "the two outputs became alike (the scene changed, or the demixers "
                                     "degenerated): learning the scene afresh"),
    "refused_updates": (logging.INFO, "implausible separation weights refused (runaway-gain guard)"),
    "stuck_samples_skipped": (logging.WARNING, "a microphone repeats one value (stuck, dead or clipping): "
                                               "not learning from it; check its cable and level"),
    "dead_mic_samples_skipped": (logging.WARNING, "a microphone went silent (40 dB below the other): not "
                                                  "learning from it; check its cable"),
    "faulty_frames_skipped": (logging.WARNING, "a microphone is dead, unbalanced or clipping: not learning "
                                               "from those frames; check its cable and level"),
    "loud_frames_shrunk": (logging.INFO, "a burst far louder than the recent level: its weight is limited"),
    "label_moves": (logging.INFO, "the voice label moved to the other output (sustained speech evidence); "
                                  "pin it with --voice if it should not"),
}


class GuardLog:
    """Turns guard counters into log records and a bounded event list.

    Parameters
    ----------
    fs : float
        Sample rate (Hz), to stamp events with stream time.
    every_s : float
        Least stream time (seconds) between two records of the same kind.
    keep : int
        Most events kept in :attr:`events` (the oldest are dropped).
    """

    def __init__(self, fs: float, every_s: float = 5.0, keep: int = 200) -> None:
        self.fs = float(fs)
        self.every = int(round(every_s * self.fs))
        self.events: deque[dict[str, Any]] = deque(maxlen=keep)
        self.reset()

    def reset(self) -> None:
        """Forget all counts (a new stream)."""
        self._seen: dict[str, int] = {}
        self._last: dict[str, int] = {}
        self._nan_at: int | None = None
        self.events.clear()

    def update(self, counters: dict[str, Any], sample: int) -> None:
        """Record the counters' increases up to stream sample ``sample``.

        Parameters
        ----------
        counters : dict
            Counter name -> total so far (names not in :data:`GUARDS` are ignored).
        sample : int
            Samples of the stream so far (for the time stamp).
        """
        # NaN/Inf are replaced by zeros, which the fault gates then see as a
        # stuck mic: one cause, one message
        if int(counters.get("nonfinite", 0)) > self._seen.get("nonfinite", 0):
            self._nan_at = sample
        nan_now = self._nan_at is not None and sample - self._nan_at <= self.fs
        for name, total in counters.items():
            if name not in GUARDS:
                continue
            total = int(total)
            before = self._seen.get(name, 0)
            if total <= before:
                self._seen[name] = total
                continue
            self._seen[name] = total
            if nan_now and name in _CAUSED_BY_NAN:
                continue
            last = self._last.get(name)
            if last is not None and sample - last < self.every:
                continue
            self._last[name] = sample
            level, text = GUARDS[name]
            t = sample / self.fs
            self.events.append({"t_s": round(t, 3), "kind": name, "total": total})
            logger = INPUT_LOGGER if name in _INPUT_KINDS else LOGGER
            logger.log(level, "at %.2f s: %s (%s: %d so far)", t, text, name.replace("_", " "), total,
                       extra={"guard": name, "source": _SOURCE.get()})

    def prime(self, counters: dict[str, Any]) -> None:
        """Take ``counters`` as already reported (a resumed stream), without logging."""
        for name, total in counters.items():
            if name in GUARDS:
                self._seen[name] = int(total)

    def totals(self) -> dict[str, int]:
        """Each guard counter's total so far (only the ones that fired)."""
        return {k: v for k, v in self._seen.items() if v}
