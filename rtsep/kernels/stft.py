"""Streaming STFT pieces: perfect-reconstruction windows, framing and overlap-add.

The FFTs themselves run in numpy (Numba has no FFT); these kernels do the
per-frame bookkeeping around them. Frames are keyed to the absolute sample
index: frame ``k`` (k ≥ 1) covers samples ``[k*hop - n_fft, k*hop)``, with
zeros before the stream starts, so the framing never depends on how the
stream was cut into blocks.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def pr_windows(n_fft: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Analysis and synthesis windows with perfect reconstruction.

    Parameters
    ----------
    n_fft : int
        Frame length (samples), even.
    hop : int
        Frame advance (samples); ``n_fft / hop`` must be an even integer ≥ 2.

    Returns
    -------
    analysis, synthesis : ndarray, shape (n_fft,), float64
        Periodic sqrt-Hann windows. ``synthesis`` is scaled so that the
        shifted products ``analysis * synthesis`` sum to exactly 1 at every
        sample (sqrt-Hann on both sides keeps each side smooth, so a
        per-frame change of the demixer never makes a step at a frame edge).
    """
    n = np.arange(n_fft)
    # Periodic Hann (denominator n_fft, not n_fft - 1): its shifts by n_fft/2k sum
    # to a constant, which is what perfect reconstruction needs.
    win = np.sqrt(0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft))
    overlap_sum = np.zeros(hop)
    for k in range(n_fft // hop):
        overlap_sum += (win * win)[k * hop:(k + 1) * hop]
    # Constant (n_fft / 2 hop) in exact arithmetic; dividing by the computed sum
    # per position removes the last rounding.
    syn = win / np.tile(overlap_sum, n_fft // hop)
    return win, syn


def low_delay_windows(n_fft: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric analysis and synthesis windows: long frames, a delay of two hops.

    The analysis window rises over ``n_fft - hop`` samples (the rising half
    of a long sqrt-Hann) and falls over the last ``hop`` (the falling half
    of a short one), so the spectrum resolves ``fs / n_fft``; the synthesis
    window is non-zero on the last ``2 * hop`` samples only, where the
    product of the two is a Hann of length ``2 * hop`` (its shifts by
    ``hop`` sum to 1). A frame's samples are complete ``2 * hop - 1``
    samples after its last one: that is the whole algorithmic delay (the
    low-delay filter bank of Mauler & Martin, 2011).

    Parameters
    ----------
    n_fft : int
        Frame length (samples), at least ``4 * hop``.
    hop : int
        Frame advance (samples).

    Returns
    -------
    analysis : ndarray, shape (n_fft,), float64
    synthesis : ndarray, shape (2 * hop,), float64
        For the last ``2 * hop`` samples of each inverse-transformed frame.
    """
    if n_fft < 4 * hop:
        raise ValueError(f"low_delay_windows needs n_fft >= 4 * hop, got {n_fft} and {hop}")
    rise = n_fft - hop

    def hann(n: np.ndarray, length: int) -> np.ndarray:
        return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)

    ana = np.empty(n_fft)
    ana[:rise] = np.sqrt(hann(np.arange(rise), 2 * rise))
    ana[rise:] = np.sqrt(hann(np.arange(hop, 2 * hop), 2 * hop))
    short = hann(np.arange(2 * hop), 2 * hop)
    syn = np.empty(2 * hop)
    syn[:hop] = short[:hop] / ana[n_fft - 2 * hop:rise]
    syn[hop:] = np.sqrt(short[hop:])
    return ana, syn


@njit(cache=True)
def gather_frames(ext: np.ndarray, first: int, n_frames: int, hop: int, win: np.ndarray,
                  out: np.ndarray) -> None:
    """Cut windowed frames out of a contiguous sample buffer.

    Parameters
    ----------
    ext : ndarray, shape (m, C), float64
        Samples (C channels); frame ``j`` starts at row ``first + j*hop``.
    first : int
        Row of ``ext`` where the first frame starts.
    n_frames : int
        Number of frames F.
    hop : int
        Frame advance (samples).
    win : ndarray, shape (N,)
        Analysis window.
    out : ndarray, shape (F, C, N), float64
        Windowed frames, written.
    """
    n_fft = win.shape[0]
    n_ch = ext.shape[1]
    for j in range(n_frames):
        s0 = first + j * hop
        for c in range(n_ch):
            for i in range(n_fft):
                out[j, c, i] = ext[s0 + i, c] * win[i]


@njit(cache=True)
def overlap_add(frames: np.ndarray, syn: np.ndarray, acc: np.ndarray, hop: int,
                out: np.ndarray) -> None:
    """Overlap-add synthesised frames and emit the samples they complete.

    Parameters
    ----------
    frames : ndarray, shape (F, C, N), float64
        Inverse-FFT output of F consecutive frames (not yet windowed).
    syn : ndarray, shape (N,)
        Synthesis window.
    acc : ndarray, shape (C, N), float64
        Overlap-add accumulator, updated in place: ``acc[:, i]`` is the
        partial sum of the sample ``i`` positions after the first sample
        the next frame completes.
    hop : int
        Frame advance (samples).
    out : ndarray, shape (F * hop, C), float64
        Completed samples, written: frame ``j`` completes rows
        ``[j*hop, (j+1)*hop)``, i.e. the first ``hop`` samples it covers.
    """
    n_fft = syn.shape[0]
    n_ch = frames.shape[1]
    for j in range(frames.shape[0]):
        for c in range(n_ch):
            # Each sample receives its frames in stream order, starting from 0.0,
            # so the sums are bit-identical however the stream was chunked.
            for i in range(n_fft):
                acc[c, i] += frames[j, c, i] * syn[i]
            for i in range(hop):
                out[j * hop + i, c] = acc[c, i]
            for i in range(n_fft - hop):
                acc[c, i] = acc[c, i + hop]
            for i in range(n_fft - hop, n_fft):
                acc[c, i] = 0.0
