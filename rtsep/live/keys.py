"""Single key presses from the terminal, for the live dashboard (swap voice, quit).

On a TTY the terminal is put in cbreak mode (keys arrive without Enter, Ctrl-C
still interrupts) for the duration of the ``with`` block and restored after,
even on an error. Without a TTY (pipes, CI, services) nothing is read.
"""

from __future__ import annotations

import os
import select
import sys
import time
from typing import Any, TextIO


class KeyReader:
    """Context manager that yields key presses without blocking the caller.

    Parameters
    ----------
    stream : file, optional
        The terminal to read (default ``sys.stdin``).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = sys.stdin if stream is None else stream
        self._saved: Any = None
        self._fd = -1

    def __enter__(self) -> "KeyReader":
        try:
            if self.stream is not None and self.stream.isatty():
                import termios
                import tty

                self._fd = self.stream.fileno()
                self._saved = termios.tcgetattr(self._fd)
                tty.setcbreak(self._fd)
        except (ImportError, OSError, ValueError):
            self._fd, self._saved = -1, None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    @property
    def active(self) -> bool:
        """Whether key presses are read (a terminal in cbreak mode)."""
        return self._saved is not None

    def read(self, timeout: float) -> str | None:
        """Wait up to ``timeout`` seconds for a key; the key, or None."""
        if not self.active:
            time.sleep(timeout)
            return None
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return None
        data = os.read(self._fd, 1)
        return data.decode(errors="ignore") or None
