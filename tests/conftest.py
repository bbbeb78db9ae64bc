"""Shared fixtures: real-speech mixtures and a helper to stream through a Separator."""

from __future__ import annotations

import os

# BSS-Eval solves many small systems: BLAS threads only fight each other (and
# the numba kernels) for the 2 cores; one thread each is several times faster.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import signal  # noqa: E402

# The Ctrl-C specs send SIGINT to an rtsep child as a terminal would. A shell
# that starts the suite in the background (`bash tools/dev.sh test &`) hands it
# SIGINT ignored, and an ignored signal stays ignored across exec: the children
# would never see the key. A handler (not SIG_IGN) is reset to the default at
# exec, so the children start as they would under a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import numpy as np  # noqa: E402
import pytest
from hypothesis import settings  # noqa: E402

# The suite is a gate: the same examples on every run (what CI sees is what a
# developer sees). HYPOTHESIS_PROFILE=explore draws new random examples.
settings.register_profile("gate", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "gate"))

from rtsep.material import signals, speech  # noqa: E402

FS = 16000
NO_JIT = os.environ.get("NUMBA_DISABLE_JIT") == "1"


def stream(sep, x: np.ndarray, sizes) -> tuple[np.ndarray, np.ndarray]:
    """Push x through sep.process in blocks of the given sizes (cycled), concatenate outputs."""
    vs, bs = [], []
    pos, i = 0, 0
    sizes = list(sizes)
    while pos < x.shape[0]:
        n = sizes[i % len(sizes)]
        v, b = sep.process(x[pos:pos + n])
        assert v.shape == (min(n, x.shape[0] - pos),) and b.shape == v.shape
        vs.append(v)
        bs.append(b)
        pos += n
        i += 1
    return np.concatenate(vs), np.concatenate(bs)


@pytest.fixture(scope="session")
def real_speech_available() -> bool:
    return speech.available("it")


def require_speech() -> None:
    """Skip (with the reason) when the Debian real-speech packages are not installed."""
    if not speech.available():
        pytest.skip("real speech needs the Debian packages asterisk-core-sounds-it-g722 and "
                    "asterisk-core-sounds-ru-g722 and the Python package G722 (bash tools/dev.sh setup as root)")


def require_room_audio(too_slow: str) -> None:
    """Skip (with the reason) a spec on seconds of simulated-room audio with real speech: without the
    JIT (``too_slow`` says why), without pyroomacoustics, or without the real-speech packages."""
    import importlib.util

    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        pytest.skip(too_slow)
    if importlib.util.find_spec("pyroomacoustics") is None:
        pytest.skip("needs pyroomacoustics (test extra)")
    if not speech.available():
        pytest.skip("needs the Debian speech prompt packages and G722")


def instantaneous_mix(voice: np.ndarray, background: np.ndarray, cond: float, seed: int):
    """Two-mic instantaneous mixture; returns (x (n,2), images at mic 1 (2, n))."""
    a = signals.mixing_matrix(cond, seed)
    s = np.stack([voice, background], axis=1).astype(np.float64)
    x = signals.mix(s, a)
    images = (s * a[0][None, :]).T
    return x, images
