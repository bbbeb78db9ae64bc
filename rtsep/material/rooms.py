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

from ..errors import ConfigError, DependencyError


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


def _place(rng: np.random.Generator, dim: np.ndarray, talker_dist: float, background_dist: float,
           room_dim, sweep: float = 0.0) -> tuple:
    """Array centre, array axis angle, talker and background directions and positions.

    ``sweep`` (radians): the talker will also turn this far away from the
    background, so its whole path must fit in the room.
    """
    margin = 0.4
    for _ in range(1000):
        centre = np.array([rng.uniform(margin + background_dist, dim[0] - margin - background_dist)
                           if dim[0] > 2 * (margin + background_dist) else dim[0] / 2,
                           rng.uniform(margin, dim[1] - margin), rng.uniform(1.0, 1.5)])
        centre[1] = np.clip(centre[1], margin, dim[1] - margin)
        axis = rng.uniform(0, 2 * np.pi)
        th_t = axis + rng.uniform(-70, 70) * np.pi / 180
        th_b = th_t + np.deg2rad(rng.uniform(35, 110)) * rng.choice([-1, 1])
        z_t = rng.uniform(0.1, 0.4)
        p_t = centre + np.array([talker_dist * math.cos(th_t), talker_dist * math.sin(th_t), z_t])
        p_b = centre + np.array([background_dist * math.cos(th_b), background_dist * math.sin(th_b),
                                 rng.uniform(-0.3, 0.4)])
        turn = -sweep if th_b > th_t else sweep
        path = [centre + np.array([talker_dist * math.cos(th_t + turn * f), talker_dist * math.sin(th_t + turn * f),
                                   z_t]) for f in np.linspace(0.0, 1.0, 9)]
        if all(_inside(p, dim, margin) for p in path) and _inside(p_b, dim, margin):
            return centre, axis, th_t, th_b, p_t, p_b
    raise ConfigError(f"sources at {talker_dist} m and {background_dist} m do not fit in a room of {room_dim} m")


def _inside(p: np.ndarray, dim: np.ndarray, margin: float) -> bool:
    return bool(np.all(p[:2] > margin) and np.all(p[:2] < dim[:2] - margin) and margin < p[2] < dim[2] - margin)


def _calibrated_room(pra, dim: np.ndarray, fs: int, target: float, mics: list, srcs: list, tol: float):
    """A shoebox whose measured RT60 (mean over all responses) is within ``tol`` of ``target``."""
    rt_in = target
    room = measured = None
    for _ in range(5):
        room = _build(pra, dim, fs, rt_in, mics, srcs)
        measured = float(np.mean(room.measure_rt60()))
        if abs(measured - target) <= tol * target:
            break
        rt_in = float(np.clip(rt_in * target / measured, 0.05, 3.0))
    return room, measured


def _finish(images: np.ndarray, sir_db: float) -> np.ndarray:
    """Set the talker-to-background ratio at mic 0 and a common peak of -6 dBFS."""
    p_t0 = np.mean(images[0, :, 0] ** 2)
    p_b0 = np.mean(images[1, :, 0] ** 2)
    if p_b0 > 0 and p_t0 > 0:
        images[1] *= math.sqrt(p_t0 / p_b0 * 10 ** (-sir_db / 10))
    peak = np.abs(images.sum(axis=0)).max()
    if peak > 0:
        images *= 0.5 / peak
    return images


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
    return simulate_moving_talker(talker, background, fs, rt60, spacing=spacing, talker_dist=talker_dist,
                                  background_dist=background_dist, room_dim=room_dim, sir_db=sir_db,
                                  seed=seed, rt60_tol=rt60_tol, sweep_deg=0.0)


def simulate_moving_talker(talker: np.ndarray, background: np.ndarray, fs: int, rt60: float,
                           sweep_deg: float, move_start_s: float = 0.0, move_end_s: float = 0.0,
                           spacing: float = 0.05, talker_dist: float = 0.8, background_dist: float = 1.8,
                           room_dim: tuple[float, float, float] = (6.0, 5.0, 3.0), sir_db: float = 0.0,
                           seed: int = 0, rt60_tol: float = 0.05, segment_s: float = 0.05) -> RoomMix:
    """Like :func:`simulate_room`, with the talker walking along a circle around the array.

    The talker's direction turns by ``sweep_deg`` (away from the background)
    between ``move_start_s`` and ``move_end_s``, at constant speed and
    distance; with ``move_start_s == move_end_s`` it jumps there at once (an
    abrupt change of the acoustic mixing). A walk is rendered in segments of
    ``segment_s``: each is convolved with the responses of the position the
    talker has at its centre, the segments crossfaded with periodic Hann
    windows of twice that length (they sum to one); reverberation tails ring
    on past each segment, as in the room.

    Parameters
    ----------
    sweep_deg : float
        Turn of the talker's direction (degrees, -180 to 180; 0: still).
    move_start_s, move_end_s : float
        Start and end of the walk (seconds).
    segment_s : float
        Rendering segment (seconds, 0.01 to 1).
    Others
        As :func:`simulate_room`.

    Returns
    -------
    RoomMix
        ``images[0]`` is the moving talker as heard at each mic.
    """
    pra = import_pyroomacoustics()
    if not 0.1 <= rt60 <= 1.5:
        raise ConfigError(f"rt60={rt60!r} is out of range; allowed [0.1, 1.5] s")
    if not -180.0 <= sweep_deg <= 180.0:
        raise ConfigError(f"sweep_deg={sweep_deg!r} is out of range; allowed [-180, 180] degrees")
    if not (0.0 <= move_start_s <= move_end_s and 0.01 <= segment_s <= 1.0):
        raise ConfigError("need 0 <= move_start_s <= move_end_s and 0.01 <= segment_s <= 1 (seconds)")
    talker = np.asarray(talker, dtype=np.float64)
    background = np.asarray(background, dtype=np.float64)
    n = min(talker.size, background.size)
    dim = np.asarray(room_dim, dtype=float)
    rng = np.random.default_rng(seed)
    sweep = math.radians(abs(sweep_deg))
    centre, axis, th_t, th_b, p_t, p_b = _place(rng, dim, talker_dist, background_dist, room_dim, sweep)
    # broadside pair: the array axis is perpendicular to its look direction
    u = np.array([math.cos(axis + np.pi / 2), math.sin(axis + np.pi / 2), 0.0])
    mics = [centre - u * spacing / 2, centre + u * spacing / 2]

    hop = max(1, int(round(segment_s * fs)))
    if th_b > th_t:  # walk away from the background
        sweep = -sweep

    def position(t: float) -> np.ndarray:
        if move_end_s > move_start_s:
            frac = min(1.0, max(0.0, (t - move_start_s) / (move_end_s - move_start_s)))
        else:
            frac = 1.0 if t >= move_start_s else 0.0
        th = th_t + sweep * frac
        p = centre + np.array([talker_dist * math.cos(th), talker_dist * math.sin(th), p_t[2] - centre[2]])
        return p

    # one window per position: rectangular for a jump, Hann-crossfaded segments for a walk
    weights: list[np.ndarray] = []
    positions: list[np.ndarray] = []
    t_idx = np.arange(n)
    if sweep == 0.0:
        positions.append(position(0.0))
        weights.append(np.ones(n))
    elif move_end_s == move_start_s:
        jump = min(n, int(round(move_start_s * fs)))
        positions += [position(0.0), position(move_start_s)]
        weights += [(t_idx < jump).astype(float), (t_idx >= jump).astype(float)]
    else:
        win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(2 * hop) / (2 * hop))  # periodic Hann, 2 hops
        total = np.zeros(n)
        for k in range(-1, n // hop + 1):
            a, b = k * hop, k * hop + 2 * hop
            lo, hi = max(a, 0), min(b, n)
            if lo >= hi:
                continue
            p = position((a + hop) / fs)
            if positions and np.allclose(p, positions[-1]):
                w = weights[-1]
            else:
                positions.append(p)
                w = np.zeros(n)
                weights.append(w)
            w[lo:hi] += win[lo - a:hi - a]
            total[lo:hi] += win[lo - a:hi - a]
        for w in weights:  # exact partition of unity at the ends of the file too
            np.divide(w, total, out=w, where=total > 0)

    room, measured = _calibrated_room(pra, dim, fs, float(rt60), mics, positions + [p_b], rt60_tol)
    from scipy.signal import oaconvolve

    images = np.zeros((2, n, 2))
    for m in range(2):
        for j, w in enumerate(weights):
            seg = talker[:n] * w
            if np.any(seg):
                images[0, :, m] += oaconvolve(seg, np.asarray(room.rir[m][j], dtype=np.float64))[:n]
        h_b = np.asarray(room.rir[m][len(positions)], dtype=np.float64)
        images[1, :, m] = oaconvolve(background[:n], h_b)[:n]
    images = _finish(images, sir_db)
    moving = "" if sweep == 0.0 else f" talker turns {sweep_deg:g}° at {move_start_s:g}-{move_end_s:g}s"
    name = (f"rt60={rt60:.2f}s(meas {measured:.2f}) d={spacing * 100:.0f}cm talker {talker_dist}m "
            f"bg {background_dist}m{moving}")
    return RoomMix(mix=images.sum(axis=0), images=images, fs=int(fs), rt60_target=float(rt60),
                   rt60_measured=measured, spacing=float(spacing), talker_dist=float(talker_dist),
                   background_dist=float(background_dist), name=name)
