"""Streaming STFT of the fd engine: perfect reconstruction, delay, chunking."""

from __future__ import annotations

import numpy as np
import pytest

from rtsep.kernels.stft import gather_frames, overlap_add, pr_windows


@pytest.mark.parametrize("n_fft", [64, 512, 1024, 2048])
@pytest.mark.parametrize("overlap", [2, 4, 8])
def test_windows_sum_to_one(n_fft: int, overlap: int) -> None:
    hop = n_fft // overlap
    wa, ws = pr_windows(n_fft, hop)
    total = (wa * ws).reshape(overlap, hop).sum(axis=0)
    np.testing.assert_allclose(total, 1.0, rtol=0, atol=1e-15)
    # sqrt-Hann: both windows vanish at the frame edge, so a change of the
    # demixer from one frame to the next never makes a step
    assert wa[0] == 0.0 and ws[0] == 0.0
    np.testing.assert_allclose(ws / ws.max(), wa / wa.max(), atol=1e-15)


class StreamingStft:
    """Analysis + synthesis only (no demixing), framed like the fd engine."""

    def __init__(self, n_fft: int, hop: int, channels: int) -> None:
        self.n, self.h = n_fft, hop
        self.wa, self.ws = pr_windows(n_fft, hop)
        self.tail = np.zeros((n_fft - 1, channels))
        self.acc = np.zeros((channels, n_fft))
        self.fifo = np.zeros((n_fft - 1, channels))
        self.count = 0

    def process(self, x: np.ndarray) -> np.ndarray:
        n, h = self.n, self.h
        ext = np.concatenate((self.tail, x))
        k_first, k_last = self.count // h + 1, (self.count + len(x)) // h
        out = [self.fifo]
        if k_last >= k_first:
            nf = k_last - k_first + 1
            frames = np.empty((nf, x.shape[1], n))
            first = k_first * h - self.count - 1
            gather_frames(ext, first, nf, h, self.wa, frames)
            spec = np.fft.rfft(frames, axis=-1)
            done = np.empty((nf * h, x.shape[1]))
            overlap_add(np.fft.irfft(spec, n=n, axis=-1), self.ws, self.acc, h, done)
            s0 = self.count + first + 1 - n  # absolute index of done[0]
            out.append(done[max(0, -s0):])
        self.count += len(x)
        self.tail = ext[len(ext) - (n - 1):]
        ready = np.concatenate(out)
        self.fifo = ready[len(x):]
        return ready[:len(x)]


@pytest.mark.parametrize("n_fft,overlap", [(512, 4), (1024, 4), (1024, 2), (2048, 8)])
def test_round_trip_is_the_input_delayed_by_the_latency(n_fft: int, overlap: int) -> None:
    rng = np.random.default_rng(n_fft + overlap)
    x = rng.standard_normal((3 * n_fft + 123, 2))
    stft = StreamingStft(n_fft, n_fft // overlap, 2)
    y = stft.process(x)
    lat = n_fft - 1
    assert y.shape == x.shape
    np.testing.assert_array_equal(y[:lat], 0.0)
    np.testing.assert_allclose(y[lat:], x[:-lat], rtol=0, atol=1e-13)


def test_round_trip_is_independent_of_chunking() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4000, 2))
    whole = StreamingStft(256, 64, 2).process(x)
    for sizes in ([1], [7], [63, 64, 65], list(rng.integers(0, 700, 40))):
        stft = StreamingStft(256, 64, 2)
        parts, i, j = [], 0, 0
        while i < len(x):
            b = max(int(sizes[j % len(sizes)]), 0)
            parts.append(stft.process(x[i:i + b]))
            i += b
            j += 1
        np.testing.assert_array_equal(np.concatenate(parts)[:len(x)], whole)


def test_batched_fft_equals_frame_by_frame_fft() -> None:
    # the engine transforms all frames of a block at once; chunking changes how
    # many, so numpy's FFT must not depend on the batch it is computed in
    rng = np.random.default_rng(2)
    frames = rng.standard_normal((37, 2, 1024))
    batched = np.fft.rfft(frames, axis=-1)
    for j in (0, 17, 36):
        np.testing.assert_array_equal(np.fft.rfft(frames[j:j + 1], axis=-1)[0], batched[j])
    back = np.fft.irfft(batched, n=1024, axis=-1)
    np.testing.assert_array_equal(np.fft.irfft(batched[5:6], n=1024, axis=-1)[0], back[5])
