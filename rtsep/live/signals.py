"""How ``rtsep live`` stops: SIGTERM like Ctrl-C, and a second Ctrl-C ignored while the files are finished."""

from __future__ import annotations

import signal
import threading
from typing import Any, Callable


def stop_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM stop like Ctrl-C (service managers, `timeout`); returns an undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def _handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, _handler)
    return lambda: signal.signal(signal.SIGTERM, old)


def ignore_sigint() -> Any:
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, signal.SIG_IGN)


def restore_sigint(old: Any) -> None:
    if old is not None:
        signal.signal(signal.SIGINT, old)
