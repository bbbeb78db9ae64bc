"""Streaming rational resampling in fixed chunks, exact and with a known integer delay.

A neural post-filter runs at its model's rate (48 kHz) on 10 ms hops while
the stream runs at its own rate. :class:`ChunkResampler` converts one fixed
chunk at a time: when ``chunk_in / fs_in == chunk_out / fs_out`` the
polyphase pattern repeats every chunk, so one matrix ``A`` (outputs × (past
inputs + chunk)) holds the whole low-pass FIR and a chunk costs one matrix
product. The output depends only on the stream, never on how it was cut.

The FIR is a Kaiser-windowed sinc of ``2 * half + 1`` taps at the common rate
``fs_in * up``, like :func:`scipy.signal.resample_poly`'s; its group delay
``half`` is chosen as a multiple of ``down``, so that the delay is a whole
number of output samples.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError

#: Kaiser window β and taps per side per unit of max(up, down): resample_poly's
#: defaults (about 80 dB stop-band), enough below a model's own noise floor.
_BETA = 5.0
_HALF_PER_RATIO = 10


class ChunkResampler:
    """Resample a stream from ``fs_in`` to ``fs_out`` Hz, one fixed chunk at a time.

    Parameters
    ----------
    fs_in, fs_out : int
        Sample rates (Hz).
    chunk_in : int
        Input samples per call; ``chunk_in * fs_out / fs_in`` must be a whole
        number (the output chunk).

    Attributes
    ----------
    up, down : int
        The rational factor ``fs_out / fs_in = up / down`` in lowest terms.
    chunk_out : int
        Output samples per call.
    delay_out : int
        Group delay of the filter in output samples: output sample ``m``
        answers input time ``m - delay_out`` (in output samples).
    """

    def __init__(self, fs_in: int, fs_out: int, chunk_in: int) -> None:
        g = math.gcd(int(fs_in), int(fs_out))
        self.up, self.down = int(fs_out) // g, int(fs_in) // g
        if (chunk_in * self.up) % self.down:
            raise ConfigError(f"a chunk of {chunk_in} samples at {fs_in} Hz is not a whole number of samples at "
                              f"{fs_out} Hz; use a sample rate that is a multiple of 100 Hz")
        self.chunk_in = int(chunk_in)
        self.chunk_out = self.chunk_in * self.up // self.down
        up, down = self.up, self.down
        r = max(up, down)
        self._a = None
        self._past = 0
        self.delay_out = 0
        if r > 1:
            # imported here, not at the top: scipy.signal costs every `import rtsep` 0.75 s,
            # and only a neural post-filter resamples
            from scipy.signal import firwin

            # half a multiple of down: the delay half/down is whole in output samples
            half = -(-_HALF_PER_RATIO * r // down) * down
            self.delay_out = half // down
            h = firwin(2 * half + 1, 1.0 / r, window=("kaiser", _BETA)) * up
            # output m (this chunk) = sum_j x[j] h[m*down - j*up], j from -past to chunk_in - 1
            self._past = -(-(2 * half + 1) // up)
            m = np.arange(self.chunk_out)[:, None]
            j = np.arange(-self._past, self.chunk_in)[None, :]
            k = m * down - j * up
            ok = (k >= 0) & (k <= 2 * half)
            self._a = np.where(ok, h[np.clip(k, 0, 2 * half)], 0.0)
        self.reset()

    def reset(self) -> None:
        """Forget the stream (the past is zeros)."""
        self._hist = np.zeros(self._past)

    def process(self, x: np.ndarray) -> np.ndarray:
        """Resample one chunk.

        Parameters
        ----------
        x : ndarray, shape (chunk_in,)
            The next input samples.

        Returns
        -------
        ndarray, shape (chunk_out,), float64
        """
        if self._a is None:
            return np.asarray(x, dtype=np.float64).copy()
        ext = np.concatenate((self._hist, x))
        self._hist = ext[ext.shape[0] - self._past:]
        return self._a @ ext
