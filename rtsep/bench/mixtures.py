"""The benchmark's mixtures: the shipped talker over music or babble, instantaneous (2x2) or in simulated rooms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


FS = 16000
TALKER_SEED_OFFSET = 1


@dataclass
class Mixture:
    """A two-microphone test recording and its truth.

    Attributes
    ----------
    name : str
        Short label used in tables and file names.
    kind : {"inst", "room"}
        Instantaneous mixing or simulated room.
    x : ndarray, shape (n, 2), float64
        Microphone signals; mic 0 is the reference.
    images : ndarray, shape (2, n), float64
        Talker (row 0) and background (row 1) as heard at mic 0.
    fs : int
        Sample rate (Hz).
    """

    name: str
    kind: str
    x: np.ndarray
    images: np.ndarray
    fs: int = FS

    @property
    def seconds(self) -> float:
        """Duration (s)."""
        return self.x.shape[0] / self.fs


def _background(kind: str, n: int, seed: int) -> np.ndarray:
    from rtsep.material import signals

    if kind == "music":
        return signals.music_like(n, FS, seed)
    if kind == "babble":
        return signals.babble(n, FS, seed)
    raise ValueError(f"unknown background {kind!r}")


def instantaneous(bg: str, cond: float, seconds: float, seed: int) -> Mixture:
    """Real talker + background through a random 2×2 matrix of condition ``cond``.

    Parameters
    ----------
    bg : {"music", "babble"}
        Background kind.
    cond : float
        Condition number of the mixing matrix.
    seconds : float
        Duration (s).
    seed : int
        Seed of the talker's prompt order, the background and the matrix.
    """
    from rtsep.material import signals, speech

    n = int(round(seconds * FS))
    s = np.stack([speech.talker("it", seconds, seed=seed)[:n], _background(bg, n, seed)], axis=1)
    a = signals.mixing_matrix(cond, seed)
    x = signals.mix(s.astype(np.float64), a)
    images = (s.astype(np.float64) * a[0][None, :]).T
    return Mixture(f"inst {bg} cond{cond:g}", "inst", np.asarray(x, dtype=np.float64), images)


def room(bg: str, rt60: float, seconds: float, seed: int, spacing: float = 0.05) -> Mixture:
    """Real talker + background in a simulated shoebox room (:func:`rtsep.material.rooms.simulate_room`).

    Parameters
    ----------
    bg : {"music", "babble"}
        Background kind.
    rt60 : float
        Target reverberation time (s).
    seconds : float
        Duration (s).
    seed : int
        Seed of the sources and the geometry.
    spacing : float
        Microphone spacing (m).
    """
    from rtsep.material import rooms, speech

    n = int(round(seconds * FS))
    r = rooms.simulate_room(speech.talker("it", seconds, seed=seed)[:n], _background(bg, n, seed), FS,
                            rt60=rt60, spacing=spacing, seed=seed)
    return Mixture(f"room {bg} rt60={rt60:g}s d={spacing * 100:g}cm", "room", r.mix, r.images[:, :, 0].copy())


def mixtures(quick: bool, log: Callable[[str], None] = print) -> list[Mixture]:
    """The benchmark's mixtures: 4 instantaneous + 2 rooms (full) or 2 + 1 shorter ones (quick)."""
    seconds = 6.0 if quick else 10.0
    specs: list[tuple[str, tuple]] = (
        [("inst", ("music", 2, seconds, 3)), ("inst", ("babble", 20, seconds, 21)), ("room", ("music", 0.3, seconds, 5))]
        if quick else
        [("inst", ("music", 2, seconds, 3)), ("inst", ("music", 20, seconds, 21)),
         ("inst", ("babble", 2, seconds, 3)), ("inst", ("babble", 20, seconds, 21)),
         ("room", ("music", 0.3, seconds, 5)), ("room", ("babble", 0.6, seconds, 7))])
    out = []
    for kind, a in specs:
        try:
            out.append(instantaneous(*a) if kind == "inst" else room(*a))
        except Exception as e:  # rooms are optional (pyroomacoustics, another module's state)
            if kind == "inst":
                raise
            log(f"  room mixture {a} skipped: {type(e).__name__}: {e}")
    return out
