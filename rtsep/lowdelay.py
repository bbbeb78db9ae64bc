"""The post-filter in a low-delay filter bank, for an engine without an STFT of its own (td).

fd runs its post-filter inside the STFT it separates in, so it adds nothing
to fd's one frame of latency. td has zero latency and no STFT; this stage
gives its voice the same per-bin suppression (:class:`rtsep.postfilter.PostFilter`,
the background output as the noise reference) through asymmetric windows
(:func:`rtsep.kernels.stft.low_delay_windows`): 32 ms analysis frames for the
frequency resolution, a 2 ms hop, and 2 hops minus one sample of delay —
63 samples (3.9 ms) at 16 kHz. The background is only delayed, not filtered:
what the filter takes from the voice is dropped, not handed to it.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InputFormatError
from .kernels.stft import gather_frames, low_delay_windows, overlap_add
from .postfilter import PostFilter

#: Analysis frame aimed at (s): the post-filter's frequency resolution.
FRAME_S = 0.032
#: The longest hop (s): the delay is two hops minus a sample, within 4 ms.
HOP_S = 0.002


class LowDelayPostFilter:
    """Post-filter a voice against its background in a filter bank of 2 hops' delay.

    Parameters
    ----------
    fs : float
        Sample rate (Hz).
    suppress_db : float
        Maximum attenuation (dB, > 0); see :class:`rtsep.postfilter.PostFilter`.

    Attributes
    ----------
    frame, hop : int
        Analysis frame (the power of two nearest 32 ms) and hop (the largest
        power of two within 2 ms), in samples.
    latency_samples : int
        ``2 * hop - 1``: the outputs of :meth:`process` are the inputs this
        many samples ago.
    """

    def __init__(self, fs: float, suppress_db: float) -> None:
        self.fs = float(fs)
        self.hop = 1 << max(2, math.floor(math.log2(HOP_S * self.fs)))
        self.frame = max(4 * self.hop, 1 << round(math.log2(FRAME_S * self.fs)))
        self.latency_samples = 2 * self.hop - 1
        self._win_a, self._win_s = low_delay_windows(self.frame, self.hop)
        # The voice's own noise from minimum statistics, not the speech-presence
        # tracker fd uses: that one treats frames as independent periodograms, and at
        # a 2 ms hop over 32 ms frames they are not (with it, td's voice-call SDRi
        # went +0.4 -> -0.1 dB and OVRL with pink noise +0.89 -> +0.71, bench/VOICECALL.md)
        self._pf = PostFilter(self.fs, self.frame, self.hop, suppress_db, floor_weight=2.0, track_weight=0.0)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the filter's statistics, the frame history and the voice not yet emitted."""
        self._pf.reset()
        # the samples "before the stream" are zeros
        self.tail = np.zeros((self.frame - 1, 2))
        self.acc = np.zeros((1, 2 * self.hop))
        # the filtered voice completed but not yet emitted (the background's
        # delay needs no line of its own: it is read from the frame history)
        self.fifo_v = np.zeros(self.latency_samples)
        self.count = np.zeros(1, dtype=np.int64)

    _STATE = ("tail", "acc", "fifo_v", "count")

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Copies of every state array (enough to resume exactly)."""
        out = {k: getattr(self, k).copy() for k in self._STATE}
        out.update({f"pf_{k}": v for k, v in self._pf.state_arrays().items()})
        return out

    def load_state_arrays(self, state: dict[str, np.ndarray]) -> None:
        """Restore state saved by :meth:`state_arrays` (the caller checked its layout)."""
        for k in self._STATE:
            setattr(self, k, np.array(state[k], copy=True))
        self._pf.load_state_arrays({k[3:]: v for k, v in state.items() if k.startswith("pf_")})

    def process(self, voice: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Filter one block of a separated voice against its background.

        Parameters
        ----------
        voice, background : ndarray, shape (n,), float64
            The separator's outputs, sample-aligned; ``n`` may be 0.

        Returns
        -------
        voice, background : ndarray, shape (n,), float64
            The filtered voice and the background, both delayed by
            :attr:`latency_samples`.
        """
        n = voice.shape[0]
        if background.shape != (n,):
            raise InputFormatError(f"voice and background must be two (n,) blocks, got {voice.shape} "
                                   f"and {background.shape}")
        h, size = self.hop, self.frame
        ext = np.concatenate((self.tail, np.stack((voice, background), axis=1)))
        c0 = int(self.count[0])
        # frame k covers the samples up to k*h (exclusive); ext row 0 is sample c0 - frame + 1
        k_first, k_last = c0 // h + 1, (c0 + n) // h
        parts = [self.fifo_v]
        if k_last >= k_first:
            nf = k_last - k_first + 1
            frames = np.empty((nf, 2, size))
            gather_frames(ext, k_first * h - c0 - 1, nf, h, self._win_a, frames)
            spec = np.fft.rfft(frames, axis=-1)
            gains = self._pf.process_frames(spec[:, 0], spec[:, 1])
            y = np.fft.irfft(spec[:, 0] * gains, n=size, axis=-1)[:, None, size - 2 * h:]
            done = np.empty((nf * h, 1))
            overlap_add(np.ascontiguousarray(y), self._win_s, self.acc, h, done)
            # frame k completes the samples k*h - 2h .. k*h - h - 1: none before the stream
            parts.append(done[max(0, 2 * h - k_first * h):, 0])
        v_all = np.concatenate(parts)
        self.fifo_v = v_all[n:]
        # ext row r is sample c0 - (size - 1) + r: the background latency samples ago
        lag = size - 1 - self.latency_samples
        b_out = ext[lag:lag + n, 1].copy()
        self.count[0] = c0 + n
        self.tail = np.ascontiguousarray(ext[ext.shape[0] - (size - 1):])
        return v_all[:n], b_out
