"""Real produced music for tests and benchmarks (Debian packages, read with soundfile).

Generated chords (:func:`rtsep.material.signals.music_like`) are far easier than real
music: a voice label tuned on them was measured to fail on produced music,
which has dynamics, quiet passages, drums and reverb in the mix. Tracks come
from Debian's ``drascula-music`` (31 game soundtrack pieces, OGG) and
``asc-music`` (3 tracks, MP3); ``tools/dev.sh`` installs both when run as
root. They are never shipped in the package.
"""

from __future__ import annotations

import math
import pathlib

import numpy as np

from ..errors import ConfigError, DependencyError

#: Library name -> (folder, file suffix, Debian package).
LIBRARIES = {
    "drascula": ("/usr/share/scummvm/drascula/audio", ".ogg", "drascula-music"),
    "asc": ("/usr/share/games/asc/music", ".mp3", "asc-music"),
}


def track_path(spec: str) -> pathlib.Path:
    """File of a track named ``"<library>/<track>"``, e.g. ``"drascula/track6"``."""
    lib, _, track = spec.partition("/")
    if lib not in LIBRARIES or not track:
        raise ConfigError(f"music must be one of {sorted(LIBRARIES)} as 'library/track', got {spec!r}")
    folder, suffix, _ = LIBRARIES[lib]
    return pathlib.Path(folder) / f"{track}{suffix}"


def available(spec: str) -> bool:
    """Whether the track ``spec`` is installed."""
    return track_path(spec).is_file()


def load(spec: str, offset_s: float, n: int | None, fs: int = 16000) -> np.ndarray:
    """An excerpt of a real music track, mono, at ``fs``.

    Parameters
    ----------
    spec : str
        ``"<library>/<track>"`` (see :data:`LIBRARIES`).
    offset_s : float
        Start of the excerpt in the track (seconds).
    n : int or None
        Length (samples at ``fs``); None: to the end of the track.
    fs : int
        Output sample rate (Hz).

    Returns
    -------
    numpy.ndarray, shape (n,), float64
        The mean of the track's channels, resampled with
        :func:`scipy.signal.resample_poly`, at its own level (full scale ±1).

    Raises
    ------
    DependencyError
        If the track's Debian package is not installed.
    ConfigError
        If the track is shorter than ``offset_s + n / fs``.
    """
    import soundfile
    from scipy.signal import resample_poly

    path = track_path(spec)
    if not path.is_file():
        package = LIBRARIES[spec.partition("/")[0]][2]
        raise DependencyError(f"real music {spec} needs the Debian package {package} (apt-get install {package})")
    x, sr = soundfile.read(str(path), dtype="float64", always_2d=True)
    g = math.gcd(int(fs), int(sr))
    y = resample_poly(x.mean(axis=1), fs // g, sr // g)
    start = int(round(offset_s * fs))
    if n is None:
        return y[start:]
    if start + n > y.size:
        raise ConfigError(f"{spec} lasts {y.size / fs:.1f} s: too short for {n / fs:g} s from {offset_s:g} s")
    return y[start:start + n]
