"""The one object every use of rtsep pushes blocks through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import check_channels, check_rate
from .engines.base import engine_class
from .errors import ConfigError, InputFormatError, RtsepError
from .events import GuardLog
from .neural import NeuralPostFilter, check_postfilter


@dataclass
class StreamStats:
    """Counters a stream keeps about its input.

    Attributes
    ----------
    samples : int
        Frames processed so far (per channel).
    nonfinite : int
        NaN/Inf input values replaced by 0.
    first_nonfinite : int
        Frame index of the first NaN/Inf (-1 if none).
    clipped : int
        Input values at or beyond ±0.999 full scale.
    peak : float
        Largest absolute finite input value.
    """

    samples: int = 0
    nonfinite: int = 0
    first_nonfinite: int = -1
    clipped: int = 0
    peak: float = 0.0


_INT_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0, np.dtype(np.int8): 128.0}


class Separator:
    """Blind two-source separation of a live multi-microphone stream.

    Parameters
    ----------
    fs : float
        Sample rate (Hz), 8000 to 96000.
    channels : int
        Number of microphones M (2 to 8).
    engine : {"td", "fd"}
        ``"td"`` (default): time-domain running PCA + kurtosis ICA, zero
        algorithmic latency, exact for instantaneous mixtures. ``"fd"``:
        frequency-domain online IVA for real rooms (recordings made with two
        real microphones: the command line's default), latency of one STFT frame.
    postfilter : {"none", "dfn3", "rnnoise"}
        An optional neural speech enhancer run on the voice after the engine
        (:mod:`rtsep.neural`; the extra ``rtsep[neural]``): DeepFilterNet3 or
        RNNoise. It adds its delay (41 ms and 31 ms at 16 kHz) to both outputs,
        and switches the engine's own post-filter off unless ``suppress_db``
        is given (measured better without it: bench/VOICECALL.md).
    **params
        Engine parameters (see :class:`rtsep.config.TdParams` and
        :class:`rtsep.config.FdParams`). Unknown names are refused.

    Notes
    -----
    ``process`` accepts blocks of any length (0 and 1 included) and returns
    exactly as many samples as it was given; the output never depends on how
    the stream was cut into blocks. NaN/Inf inputs are replaced by 0 and
    counted in :attr:`stats`. What the guards do (faults skipped, scene
    changes relearnt, …) is logged on the ``"rtsep"`` logger and listed in
    :attr:`events` (see :mod:`rtsep.events`).
    """

    #: Stream time (seconds) between two looks at the guards' counters.
    GUARD_CHECK_S = 0.25

    def __init__(self, fs: float, channels: int = 2, engine: str = "td", postfilter: str = "none",
                 **params: Any) -> None:
        self.fs = check_rate(fs)
        self.channels = check_channels(channels)
        self.engine_name = engine
        self.postfilter = check_postfilter(postfilter)
        if self.postfilter != "none":
            # the network does the blind post-filter's job better on what
            # separation leaves (bench/VOICECALL.md): it is off unless asked for
            params.setdefault("suppress_db", 0.0)
        self._params = dict(params)
        self._engine = engine_class(engine)(self.fs, self.channels, **params)
        self._neural = NeuralPostFilter(self.fs, self.postfilter) if self.postfilter != "none" else None
        self.stats = StreamStats()
        self._guards = GuardLog(self.fs)
        self._guard_every = max(1, int(self.GUARD_CHECK_S * self.fs))
        self._guard_next = self._guard_every

    @property
    def latency_samples(self) -> int:
        """Algorithmic delay (samples) from an input sample to its output sample."""
        extra = self._neural.latency_samples if self._neural is not None else 0
        return int(self._engine.latency_samples) + extra

    @property
    def latency_s(self) -> float:
        """Algorithmic delay in seconds."""
        return self.latency_samples / self.fs

    @property
    def engine(self) -> Any:
        """The engine object (its ``info()`` holds diagnostics)."""
        return self._engine

    def warmup(self) -> "Separator":
        """Compile every kernel now, so no compilation happens inside an audio callback."""
        self._engine.warmup()
        if self._neural is not None:
            self._neural.warmup()
        return self

    def reset(self) -> None:
        """Forget the stream: the next sample is treated as the first one."""
        self._engine.reset()
        if self._neural is not None:
            self._neural.reset()
        self.stats = StreamStats()
        self._guards.reset()
        self._guard_next = self._guard_every

    def state(self) -> dict[str, Any]:
        """Everything needed to resume this stream elsewhere, as plain data.

        Returns
        -------
        dict
            ``fs``, ``channels``, ``engine``, ``params`` and the engine's state
            arrays (numpy arrays; picklable, or savable with ``np.savez``).
            :meth:`from_state` on it continues the stream exactly as if it
            had never stopped.
        """
        eng = self._engine
        if not hasattr(eng, "state_arrays"):
            raise ConfigError(f"the {self.engine_name!r} engine cannot save its state yet")
        if self._neural is not None:
            raise ConfigError(f"a stream with postfilter={self.postfilter!r} cannot be saved (the network's "
                              "state is not readable); save it with postfilter='none'")
        return {"fs": self.fs, "channels": self.channels, "engine": self.engine_name,
                "params": dict(self._params), "arrays": eng.state_arrays(),
                "stats": dict(vars(self.stats))}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Separator":
        """Rebuild a separator from :meth:`state` and continue the stream where it stopped."""
        try:
            sep = cls(state["fs"], channels=state["channels"], engine=state["engine"], **state["params"])
            sep._engine.load_state_arrays(state["arrays"])
            sep.stats = StreamStats(**state.get("stats", {}))
            sep._guards.prime(sep._guard_counters())
            sep._guard_next = sep.stats.samples + sep._guard_every
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, RtsepError):
                raise
            raise ConfigError(f"not a saved rtsep state ({type(exc).__name__}: {exc}); "
                              "save it with Separator.state()") from None
        return sep

    def pin_voice(self, output: int | None) -> None:
        """Pin the voice to ``output`` (0-based) from now on, crossfaded; None: automatic again."""
        self._engine.pin_voice(output)

    def swap_voice(self) -> int:
        """Call the other output the voice from now on (pins it); returns the new voice index (0-based)."""
        return self._engine.swap_voice()

    @property
    def events(self) -> list[dict[str, Any]]:
        """Guard events so far (the latest 200): ``t_s`` stream time (s), ``kind``, ``total`` count."""
        self._check_guards()
        return list(self._guards.events)

    def _guard_counters(self) -> dict[str, Any]:
        counters = self._engine.info()
        counters.update(nonfinite=self.stats.nonfinite, clipped=self.stats.clipped)
        return counters

    def _check_guards(self) -> None:
        self._guards.update(self._guard_counters(), self.stats.samples)

    def info(self) -> dict[str, Any]:
        """Diagnostics: engine values (voice index, kurtoses) and input counters."""
        out = dict(self._engine.info())
        out.update(engine=self.engine_name, postfilter=self.postfilter, latency_samples=self.latency_samples,
                   samples=self.stats.samples, nonfinite=self.stats.nonfinite,
                   clipped=self.stats.clipped)
        return out

    def _coerce(self, block: Any) -> np.ndarray:
        x = np.asarray(block)
        if x.ndim != 2 or x.shape[1] != self.channels:
            got = f"shape {x.shape}" if x.ndim else "a scalar"
            hint = ("a mono signal cannot be separated: record with two microphones"
                    if (x.ndim == 1 or (x.ndim == 2 and x.shape[1] == 1)) else
                    f"pass an array of shape (frames, {self.channels})")
            raise InputFormatError(f"expected a block of shape (frames, {self.channels}), got {got}; {hint}")
        if x.dtype.kind in "iu":
            scale = _INT_SCALE.get(x.dtype)
            if scale is None:
                raise InputFormatError(f"integer samples of type {x.dtype} are not supported; use float32 or int16")
            return np.ascontiguousarray(x, dtype=np.float64) / scale
        if x.dtype.kind != "f":
            raise InputFormatError(f"expected float or int16 samples, got dtype {x.dtype}")
        return np.ascontiguousarray(x, dtype=np.float64)

    def process(self, block: Any) -> tuple[np.ndarray, np.ndarray]:
        """Separate one block of the stream.

        Parameters
        ----------
        block : array_like, shape (n, channels)
            Microphone samples, float (full scale ±1) or int16. ``n`` ≥ 0.

        Returns
        -------
        voice, background : ndarray, shape (n,), float32
            The talker and everything else as heard at the reference mic,
            delayed by :attr:`latency_samples`. ``background`` is the
            (DC-removed) reference mic minus the voice as separated: with the
            post-filters off (``suppress_db=0``, ``postfilter="none"``)
            ``voice + background`` equals the reference mic; the post-filters
            change only ``voice``.
        """
        x = self._coerce(block)
        n = x.shape[0]
        if n:
            finite = np.isfinite(x)
            if not finite.all():
                bad_rows = np.flatnonzero(~finite.all(axis=1))
                if self.stats.first_nonfinite < 0:
                    self.stats.first_nonfinite = self.stats.samples + int(bad_rows[0])
                self.stats.nonfinite += int(x.size - np.count_nonzero(finite))
                x = np.where(finite, x, 0.0)
            ax = np.abs(x)
            self.stats.clipped += int(np.count_nonzero(ax >= 0.999))
            self.stats.peak = max(self.stats.peak, float(ax.max()))
        self.stats.samples += n
        voice, background = self._engine.process(x)
        if self._neural is not None:
            voice, background = self._neural.process(voice, background)
        if self.stats.samples >= self._guard_next:
            self._guard_next = self.stats.samples + self._guard_every
            self._check_guards()
        return voice.astype(np.float32), background.astype(np.float32)


def separate(x: Any, fs: float, engine: str = "td", **params: Any) -> tuple[np.ndarray, np.ndarray]:
    """Separate a whole recording at once (the same path as streaming).

    Parameters
    ----------
    x : array_like, shape (n, M)
        Microphone signals, M ≥ 2.
    fs : float
        Sample rate (Hz).
    engine : {"td", "fd"}
        Engine name. The default is td, like :class:`Separator`'s: the Python
        API serves synthetic and coincident-mic (instantaneous) mixtures in
        tests and notebooks, where td is exact and has no latency; for a
        recording made with two real microphones (a room) pass ``engine="fd"``,
        the command line's default (td was measured to make rooms worse).
    **params
        Engine parameters.

    Returns
    -------
    voice, background : ndarray, shape (n,), float32
        Aligned with ``x``: the engine latency is removed and the tail flushed
        with zeros, so ``voice[i]`` answers ``x[i]``.
    """
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise InputFormatError(f"expected an array of shape (frames, channels), got shape {arr.shape}")
    sep = Separator(fs, channels=arr.shape[1], engine=engine, **params)
    lat = sep.latency_samples
    v, b = sep.process(arr)
    if lat:
        v2, b2 = sep.process(np.zeros((lat, arr.shape[1]), dtype=np.float64))
        v = np.concatenate([v, v2])[lat:]
        b = np.concatenate([b, b2])[lat:]
    return v, b
