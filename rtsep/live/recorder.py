"""The live recorder: a writer thread fed from preallocated slots, so the audio callback never waits for the disk."""

from __future__ import annotations

import collections
import math
import queue
import threading
from pathlib import Path

import numpy as np

#: Seconds of audio the recorder can hold when the disk is slow.
RECORD_BUFFER_S = 4.0


class Recorder:
    """Writes input, voice and background WAVs from a thread fed by the callback.

    The callback copies a block into a free slot of a preallocated pool and
    queues the slot's number; the writer thread writes it and frees the slot.
    When no slot is free the block is dropped and counted, and the writer
    later writes that many frames of silence, so the files keep time.
    """

    def __init__(self, folder: Path, fs: int, mics: int, block: int) -> None:
        from ..io_files import AtomicWavWriter

        self.folder = folder
        slots = max(16, math.ceil(RECORD_BUFFER_S * fs / block))
        self._pool = np.zeros((slots, block, mics + 2), dtype=np.float32)  # touched now, not in the callback
        self._free: collections.deque[int] = collections.deque(range(slots))
        self._full: queue.SimpleQueue = queue.SimpleQueue()
        self._mics = mics
        self._gap = 0
        self.dropped = 0
        self.frames = 0
        self.error: BaseException | None = None
        self._writers = {}
        try:
            for name, ch in (("input", mics), ("voice", 1), ("background", 1)):
                self._writers[name] = AtomicWavWriter(folder / f"{name}.wav", fs, ch)
        except BaseException:
            self._close_writers()
            raise
        self._thread = threading.Thread(target=self._run, name="rtsep-recorder", daemon=True)
        self._thread.start()

    def push(self, x: np.ndarray, v: np.ndarray, b: np.ndarray) -> None:
        """Queue one block (callback thread; never blocks)."""
        n = x.shape[0]
        try:
            k = self._free.popleft()
        except IndexError:
            self.dropped += 1
            self._gap += n
            return
        slot = self._pool[k]
        if n > slot.shape[0]:  # a host that overshoots the block size: keep what fits
            n = slot.shape[0]
        m = self._mics
        slot[:n, :m] = x[:n]
        slot[:n, m] = v[:n]
        slot[:n, m + 1] = b[:n]
        gap, self._gap = self._gap, 0
        self._full.put((k, n, gap))

    def _run(self) -> None:
        m = self._mics
        zeros = np.zeros((self._pool.shape[1], m + 2), dtype=np.float32)
        while True:
            item = self._full.get()
            if item is None:
                return
            k, n, gap = item
            try:
                if self.error is None:
                    while gap > 0:
                        g = min(gap, zeros.shape[0])
                        self._write(zeros[:g], m)
                        gap -= g
                    if n:
                        self._write(self._pool[k, :n], m)
            except BaseException as exc:  # noqa: BLE001 - reported by poll(), audio goes on
                self.error = exc
            finally:
                if k >= 0:
                    self._free.append(k)

    def _write(self, blk: np.ndarray, m: int) -> None:
        self._writers["input"].write(blk[:, :m])
        self._writers["voice"].write(blk[:, m])
        self._writers["background"].write(blk[:, m + 1])
        self.frames += blk.shape[0]

    def close(self, timeout: float = 10.0) -> dict[str, Path]:
        """Write what is queued, finish the files and give them their final names."""
        if self._gap:  # blocks dropped at the very end still count as time
            self._full.put((-1, 0, self._gap))
            self._gap = 0
        self._full.put(None)
        self._thread.join(timeout)
        return self._close_writers()

    def _close_writers(self) -> dict[str, Path]:
        out = {}
        for name, w in self._writers.items():
            try:
                out[name] = w.close()
            except BaseException as exc:  # noqa: BLE001
                self.error = self.error or exc
        return out
