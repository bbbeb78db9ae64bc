"""The separation figure of ``rtsep demo`` and ``rtsep replay --plot``.

:class:`StreamSummary` follows a stream block by block in bounded memory
(min/max envelopes, spectrogram columns, the voice label's changes), so an
hour-long replay or a stream from stdin can be drawn as well as the 8 s demo;
:func:`separation_figure` draws it: the two mics, the voice and the
background, spectrograms of mic 1 and of the voice, which output is the voice
over time, and (for the demo, which knows the sources) the voice's SIR
improvement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: samples per spectrogram column at the start (32 ms at 16 kHz); doubled as the stream grows
NFFT = 512


class _Buckets:
    """Min/max and one power spectrum per bucket of ``width`` samples; at most ``2 * most`` buckets.

    When full, neighbouring buckets merge (min of mins, max of maxes, mean
    power) and the width doubles, so memory stays bounded whatever the length.
    """

    def __init__(self, signals: int, spectrum_of: int, most: int) -> None:
        self.width = NFFT
        self.most = most
        self._spec_of = spectrum_of
        self._pending: list[np.ndarray] = []  # blocks not yet a whole bucket (joined only when they are)
        self._pending_n = 0
        # preallocated: the first ``n`` rows are filled
        self._lo = np.zeros((2 * most, signals), np.float32)
        self._hi = np.zeros((2 * most, signals), np.float32)
        self._power = np.zeros((2 * most, NFFT // 2 + 1), np.float32)
        self.n = 0
        self._win = np.hanning(NFFT).astype(np.float32)

    def add(self, x: np.ndarray) -> None:
        self._pending.append(np.asarray(x, np.float32))
        self._pending_n += x.shape[0]
        if self._pending_n >= self.width:
            self._drain(final=False)

    def finish(self) -> None:
        if self._pending_n:
            self._drain(final=True)

    def _drain(self, final: bool) -> None:
        x = np.concatenate(self._pending)
        while True:
            room = 2 * self.most - self.n
            k = min(x.shape[0] // self.width, room)
            if k:
                self._buckets(x[:k * self.width].reshape(k, self.width, -1))
                x = x[k * self.width:]
            if self.n >= 2 * self.most:
                self._merge()
                continue
            break
        if final and x.shape[0]:
            if self.n >= 2 * self.most:
                self._merge()
            self._buckets(x[None])
            x = x[:0]
        self._pending, self._pending_n = [x], x.shape[0]

    def _buckets(self, chunk: np.ndarray) -> None:
        seg = chunk[:, -NFFT:, self._spec_of]
        seg = np.pad(seg, ((0, 0), (NFFT - seg.shape[1], 0)))
        power = (np.abs(np.fft.rfft(seg * self._win, axis=1)) ** 2).astype(np.float32)
        k, n = chunk.shape[0], self.n
        self._lo[n:n + k] = chunk.min(axis=1)
        self._hi[n:n + k] = chunk.max(axis=1)
        self._power[n:n + k] = power
        self.n += k

    def _merge(self) -> None:
        h = self.n // 2
        self._lo[:h] = np.minimum(self._lo[0:2 * h:2], self._lo[1:2 * h:2])
        self._hi[:h] = np.maximum(self._hi[0:2 * h:2], self._hi[1:2 * h:2])
        self._power[:h] = (self._power[0:2 * h:2] + self._power[1:2 * h:2]) / 2
        self.n = h
        self.width *= 2

    @property
    def lo(self) -> np.ndarray:
        """Minimum of each bucket, shape (buckets, signals)."""
        return self._lo[:self.n]

    @property
    def hi(self) -> np.ndarray:
        """Maximum of each bucket, shape (buckets, signals)."""
        return self._hi[:self.n]

    @property
    def power(self) -> np.ndarray:
        """Power spectrum of each bucket's last NFFT samples, shape (buckets, NFFT/2 + 1)."""
        return self._power[:self.n]


@dataclass
class StreamSummary:
    """What the figure needs from a stream, gathered block by block in bounded memory.

    Parameters
    ----------
    fs : float
        Sample rate (Hz).
    most : int
        Least number of columns kept (between ``most`` and ``2 * most``).

    Notes
    -----
    Feed the microphones with :meth:`add_input`, the aligned outputs (engine
    latency already removed) with :meth:`add_output`, and the voice label
    (0-based output index, as ``Separator.info()["voice"]``) with
    :meth:`label` after each block.
    """

    fs: float
    most: int = 1500
    _in: _Buckets = field(init=False)
    _out: _Buckets = field(init=False)
    _label_t: list[float] = field(default_factory=list, init=False)
    _label: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._in = _Buckets(2, 0, self.most)
        self._out = _Buckets(2, 0, self.most)

    def add_input(self, mics: np.ndarray) -> None:
        """Microphone block, shape (n, ≥2); the first two channels are kept."""
        self._in.add(np.asarray(mics)[:, :2])

    def add_output(self, voice: np.ndarray, background: np.ndarray) -> None:
        """Output block, shape (n,) each, aligned with the input."""
        self._out.add(np.column_stack([voice, background]))

    def label(self, t_s: float, voice: int | None) -> None:
        """Which output (0-based) is the voice at stream time ``t_s``; only changes are kept."""
        if voice is None:
            return
        if not self._label or self._label[-1] != int(voice):
            self._label_t.append(float(t_s))
            self._label.append(int(voice))

    def finish(self) -> None:
        """Flush the last partial columns."""
        self._in.finish()
        self._out.finish()


def separation_figure(path: str | Path, summary: StreamSummary, title: str,
                      sir: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """Draw the separation figure to a PNG (written under a temporary name, then renamed).

    Parameters
    ----------
    path : path
        The PNG to write.
    summary : StreamSummary
        The stream (finished).
    title : str
        Figure title.
    sir : (ndarray, ndarray), optional
        ``(t_end_s, sir_improvement_db)`` of the voice output on sliding 1 s
        windows, when the sources are known (the demo).

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary.finish()
    path = Path(path)
    fs = summary.fs
    ins, outs = summary._in, summary._out
    rows = 7 + (sir is not None)
    heights = [1, 1, 1, 1, 1.6, 1.6, 0.6] + ([1.4] if sir is not None else [])
    fig, ax = plt.subplots(rows, 1, figsize=(11, 2.0 * sum(heights) / 1.2), sharex=True,
                           gridspec_kw={"height_ratios": heights})
    end_s = 0.0
    for k, (b, ch, name, color) in enumerate(((ins, 0, "mic 1", "0.3"), (ins, 1, "mic 2", "0.5"),
                                              (outs, 0, "voice", "tab:blue"),
                                              (outs, 1, "background", "tab:orange"))):
        lo, hi = b.lo[:, ch], b.hi[:, ch]
        t = np.arange(lo.shape[0]) * b.width / fs
        ax[k].fill_between(t, lo, hi, color=color, lw=0.3, step="post")
        ax[k].set_ylabel(name)
        end_s = max(end_s, lo.shape[0] * b.width / fs)
    for k, (b, name) in ((4, (ins, "mic 1 (Hz)")), (5, (outs, "voice (Hz)"))):
        p = 10 * np.log10(b.power.T + 1e-12)
        top = p.max()
        ax[k].imshow(p, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                     extent=(0, p.shape[1] * b.width / fs, 0, fs / 2), interpolation="nearest")
        ax[k].set_ylabel(name)
    # the label as people count outputs: 1 and 2
    lt = summary._label_t + [end_s]
    lv = [v + 1 for v in summary._label] + ([summary._label[-1] + 1] if summary._label else [])
    if summary._label:
        ax[6].step(lt, lv, where="post", color="tab:purple", label="output that is the voice")
    ax[6].set_yticks([1, 2])
    ax[6].set_ylim(0.5, 2.5)
    ax[6].set_ylabel("voice =\noutput")
    if sir is not None:
        t_end, imp = sir
        ax[7].plot(t_end, imp, marker=".", color="tab:green", label="voice output")
        ax[7].axhline(20, color="0.5", ls="--", lw=0.8, label="20 dB: the background is 100× weaker in power")
        ax[7].set_ylabel("SIR\nimprovement (dB)")
        ax[7].legend(loc="lower right", fontsize=8)
        ax[7].set_title("SIR improvement: how much more the voice output favours the talker over the background "
                        "than mic 1 does (1 s windows, plotted at their end)", fontsize=8, loc="left")
    ax[-1].set_xlabel("time (s)")
    ax[-1].set_xlim(0, end_s)
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.part.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path
