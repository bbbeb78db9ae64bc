"""What every engine provides to :class:`rtsep.Separator`.

An engine turns blocks of M microphone channels into (voice, background)
at the reference microphone. It owns all of its state explicitly, so that
``process`` on any chunking of a stream gives the same samples.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import numpy as np

#: engine name -> "module:Class", imported lazily so that an engine's kernels
#: are only compiled when that engine is used.
ENGINES: dict[str, str] = {
    "td": "rtsep.engines.td:TimeDomainEngine",
    "fd": "rtsep.engines.fd:FrequencyDomainEngine",
}


class Engine(Protocol):
    """Interface of a separation engine.

    Attributes
    ----------
    fs : float
        Sample rate (Hz).
    channels : int
        Number of microphones M.
    latency_samples : int
        Algorithmic delay (samples) between an input sample and the output
        sample that answers it.
    """

    fs: float
    channels: int
    latency_samples: int

    def process(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Separate one block.

        Parameters
        ----------
        x : ndarray, shape (n, M), float64, C-contiguous, finite
            Microphone samples (full scale ±1). ``n`` may be 0.

        Returns
        -------
        voice, background : ndarray, shape (n,), float64
            Images at the reference microphone, delayed by ``latency_samples``.
        """
        ...

    def reset(self) -> None:
        """Forget everything: the next sample is treated as the first."""
        ...

    def warmup(self) -> None:
        """Compile every kernel (before an audio stream opens)."""
        ...

    def info(self) -> dict[str, Any]:
        """Current diagnostic values (voice output index, kurtoses, counters)."""
        ...


def engine_class(name: str) -> type:
    """Return the engine class registered under ``name`` ("td" or "fd")."""
    from ..errors import ConfigError

    try:
        target = ENGINES[name]
    except KeyError:
        raise ConfigError(f"engine={name!r} is unknown; choose one of {', '.join(ENGINES)}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def check_saved_state(expected: dict[str, np.ndarray], state: dict[str, Any],
                      any_length: tuple[str, ...] = ()) -> None:
    """Refuse, in one line, saved state arrays that this engine could not continue from.

    Parameters
    ----------
    expected : dict of str to ndarray
        The engine's own :meth:`state_arrays` (names, shapes, dtypes to match).
    state : dict of str to ndarray
        The arrays to load.
    any_length : tuple of str
        Arrays whose last axis depends on where the stream stopped (a FIFO
        of outputs not yet emitted): only their other axes must match.

    Raises
    ------
    ConfigError
        A name missing, or a shape or layout that differs (other channels or
        parameters, another rtsep version).
    """
    from ..errors import ConfigError

    for k, mine in expected.items():
        if k not in state:
            raise ConfigError(f"saved state lacks {k!r} (saved by another rtsep version?); "
                              "resume with the same channels and parameters and rtsep version")
        val = np.asarray(state[k])
        if (val.shape[:-1] != mine.shape[:-1] if k in any_length and val.ndim == mine.ndim
                else val.shape != mine.shape):
            raise ConfigError(f"saved state {k!r} has shape {val.shape}, this engine needs {mine.shape}; "
                              "resume with the same channels and parameters")
        if val.dtype != mine.dtype:
            raise ConfigError(f"saved state {k!r} has the layout {val.dtype}, this engine needs {mine.dtype}; "
                              "resume with the same rtsep version")
