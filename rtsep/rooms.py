"""Simulated rooms (pyroomacoustics image-source method) for tests and benchmarks.

A talker 0.5-1.2 m from a two-microphone array and a background source
1-2.5 m away in a shoebox room with a target reverberation time. The RT60
that the image-source simulation really gives differs from Sabine's formula
(by -20 % to +30 % over 0.15-0.7 s in a 6×5×3 m room), so the absorption is
calibrated until ``room.measure_rt60()`` agrees with the target.

pyroomacoustics is a test/bench dependency, imported only inside these functions.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError, DependencyError


@dataclass(frozen=True)
class RoomMix:
    """A simulated two-microphone recording and its ground truth.

    Attributes
    ----------
    mix : ndarray, shape (n, 2), float64
        Microphone signals (mic 0 is the reference).
    images : ndarray, shape (2, n, 2), float64
        ``images[s, :, m]``: source ``s`` (0 talker, 1 background) as heard at mic ``m``;
        ``mix == images.sum(axis=0)``.
    fs : int
        Sample rate (Hz).
    rt60_target, rt60_measured : float
        Reverberation time asked for and measured on the simulated responses (s).
    spacing : float
        Microphone spacing (m).
    talker_dist, background_dist : float
        Source distances from the array centre (m).
    name : str
        Short description for reports.
    """

    mix: np.ndarray
    images: np.ndarray
    fs: int
    rt60_target: float
    rt60_measured: float
    spacing: float
    talker_dist: float
    background_dist: float
    name: str = field(default="")


def import_pyroomacoustics():
    """Import pyroomacoustics without letting it open the sound system.

    Returns
    -------
    module
        ``pyroomacoustics``.

    Notes
    -----
    pyroomacoustics imports ``sounddevice`` (for playback, which rtsep never
    uses); that initialises PortAudio, and with a JACK server running the
    process can abort at exit. The import is hidden while pyroomacoustics
    loads and restored after, so :mod:`rtsep.live` can still import it.
    """
    if "pyroomacoustics" not in sys.modules and "sounddevice" not in sys.modules:
        sys.modules["sounddevice"] = None  # type: ignore[assignment]  # import -> ImportError
        try:
            return _import_pra()
        finally:
            del sys.modules["sounddevice"]
    return _import_pra()


def _import_pra():
    try:
        import pyroomacoustics as pra
    except ImportError:
        raise DependencyError("room simulation needs the package pyroomacoustics (pip install pyroomacoustics)") from None
    return pra


def _build(pra, dim, fs, rt60_sabine, mics, srcs):
    e_abs, max_order = pra.inverse_sabine(rt60_sabine, dim)
    room = pra.ShoeBox(dim, fs=fs, materials=pra.Material(e_abs), max_order=max_order)
    for s in srcs:
        room.add_source(s)
    room.add_microphone_array(np.asarray(mics, dtype=float).T)
    room.compute_rir()
    return room


def simulate_room(talker: np.ndarray, background: np.ndarray, fs: int, rt60: float,
                  spacing: float = 0.05, talker_dist: float = 0.8, background_dist: float = 1.8,
                  room_dim: tuple[float, float, float] = (6.0, 5.0, 3.0), sir_db: float = 0.0,
                  seed: int = 0, rt60_tol: float = 0.05) -> RoomMix:
    """Simulate a talker and a background source recorded by two microphones.

    Parameters
    ----------
    talker, background : ndarray, shape (n,)
        Dry source signals (any level).
    fs : int
        Sample rate (Hz).
    rt60 : float
        Target reverberation time (s), 0.1 to 1.5.
    spacing : float
        Microphone spacing (m).
    talker_dist, background_dist : float
        Distance (m) of each source from the array centre, horizontal.
    room_dim : tuple of 3 floats
        Room size (m).
    sir_db : float
        Talker-to-background power ratio at the reference mic (dB).
    seed : int
        Chooses the array position and orientation and the source directions
        (at least 35° apart, seen from the array).
    rt60_tol : float
        Relative tolerance of the measured RT60; the absorption is
        recalibrated (up to 4 times) until the measurement is within it.

    Returns
    -------
    RoomMix
    """
    pra = import_pyroomacoustics()
    if not 0.1 <= rt60 <= 1.5:
        raise ConfigError(f"rt60={rt60!r} is out of range; allowed [0.1, 1.5] s")
    talker = np.asarray(talker, dtype=np.float64)
    background = np.asarray(background, dtype=np.float64)
    n = min(talker.size, background.size)
    dim = np.asarray(room_dim, dtype=float)
    rng = np.random.default_rng(seed)
    margin = 0.4
    for _ in range(1000):
        centre = np.array([rng.uniform(margin + background_dist, dim[0] - margin - background_dist)
                           if dim[0] > 2 * (margin + background_dist) else dim[0] / 2,
                           rng.uniform(margin, dim[1] - margin), rng.uniform(1.0, 1.5)])
        centre[1] = np.clip(centre[1], margin, dim[1] - margin)
        axis = rng.uniform(0, 2 * np.pi)
        th_t = axis + rng.uniform(-70, 70) * np.pi / 180
        th_b = th_t + np.deg2rad(rng.uniform(35, 110)) * rng.choice([-1, 1])
        p_t = centre + np.array([talker_dist * math.cos(th_t), talker_dist * math.sin(th_t),
                                 rng.uniform(0.1, 0.4)])
        p_b = centre + np.array([background_dist * math.cos(th_b), background_dist * math.sin(th_b),
                                 rng.uniform(-0.3, 0.4)])
        ok = all(np.all(p[:2] > margin) and np.all(p[:2] < dim[:2] - margin) and margin < p[2] < dim[2] - margin
                 for p in (p_t, p_b))
        if ok:
            break
    else:
        raise ConfigError(f"sources at {talker_dist} m and {background_dist} m do not fit in a room of {room_dim} m")
    # broadside pair: the array axis is perpendicular to its look direction
    u = np.array([math.cos(axis + np.pi / 2), math.sin(axis + np.pi / 2), 0.0])
    mics = [centre - u * spacing / 2, centre + u * spacing / 2]

    target = float(rt60)
    rt_in = target
    room = measured = None
    for _ in range(5):
        room = _build(pra, dim, fs, rt_in, mics, [p_t, p_b])
        measured = float(np.mean(room.measure_rt60()))
        if abs(measured - target) <= rt60_tol * target:
            break
        rt_in = float(np.clip(rt_in * target / measured, 0.05, 3.0))

    images = np.zeros((2, n, 2))
    for s, sig in enumerate((talker[:n], background[:n])):
        for m in range(2):
            h = np.asarray(room.rir[m][s], dtype=np.float64)
            images[s, :, m] = np.convolve(sig, h)[:n]
    p_t0 = np.mean(images[0, :, 0] ** 2)
    p_b0 = np.mean(images[1, :, 0] ** 2)
    if p_b0 > 0 and p_t0 > 0:
        images[1] *= math.sqrt(p_t0 / p_b0 * 10 ** (-sir_db / 10))
    # a common scale so the louder mic peaks at -6 dBFS
    peak = np.abs(images.sum(axis=0)).max()
    if peak > 0:
        images *= 0.5 / peak
    name = f"rt60={target:.2f}s(meas {measured:.2f}) d={spacing * 100:.0f}cm talker {talker_dist}m bg {background_dist}m"
    return RoomMix(mix=images.sum(axis=0), images=images, fs=int(fs), rt60_target=target,
                   rt60_measured=measured, spacing=float(spacing), talker_dist=float(talker_dist),
                   background_dist=float(background_dist), name=name)
