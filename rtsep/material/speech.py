"""Real recorded speech: Debian's Asterisk prompt packages, and the shipped demo clip.

A separator tuned on synthetic sources can look fine and fail on people, so tests
and benchmarks draw on two professional voices recorded at 16 kHz (G.722):

========  ==================================  =============================
``lang``  Debian package                      voice
========  ==================================  =============================
``it``    ``asterisk-core-sounds-it-g722``    Italian, male (Carlo Flora)
``ru``    ``asterisk-core-sounds-ru-g722``    Russian, female
========  ==================================  =============================

Those packages and the PyPI package ``G722`` are test/bench material, not runtime
dependencies: :func:`available` says whether they are there and every loader raises
:class:`~rtsep.errors.DependencyError` naming what to install. :func:`demo_clip`
needs neither; it reads the short clip shipped in ``rtsep/data``.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import pathlib
from importlib import resources

import numpy as np
from scipy.signal import resample_poly

from ..errors import AudioFileError, ConfigError, DependencyError

SOUNDS_ROOT = pathlib.Path("/usr/share/asterisk/sounds")
FS = 16000
"""Sample rate of the prompt recordings and of the demo clip, in Hz."""

PACKAGES = {"it": "asterisk-core-sounds-it-g722", "ru": "asterisk-core-sounds-ru-g722"}

TARGET_RMS = 0.1
MIN_PROMPT_S = 2.0
DEMO_CLIP = "talker_it.flac"

# The recordings' own noise floor is about -80 dBFS; gaps between prompts are filled
# with noise at that level so a talker never holds long runs of digital zeros.
_ROOM_TONE_RMS = 1e-4
_FRAME = 160  # 10 ms at 16 kHz
_MARGIN = 800  # 50 ms kept around the speech so onsets and tails stay natural
_REL_THRESHOLD_DB = -40.0
_ABS_THRESHOLD = 10 ** (-60.0 / 20)


def _check_lang(lang: str) -> None:
    if lang not in PACKAGES:
        raise ConfigError(f"speech language must be one of {sorted(PACKAGES)}, got {lang!r}")


def _voice_dir(lang: str) -> pathlib.Path | None:
    dirs = sorted(p for p in SOUNDS_ROOT.glob(f"{lang}_*") if p.is_dir())
    return dirs[0] if dirs else None


def _g722_importable() -> bool:
    return importlib.util.find_spec("G722") is not None


def _missing(langs: tuple[str, ...]) -> list[str]:
    """What is missing for real speech in ``langs``, as install hints."""
    hints = [
        f"the Debian package {PACKAGES[lang]} (apt-get install {PACKAGES[lang]})"
        for lang in langs
        if _voice_dir(lang) is None
    ]
    if not _g722_importable():
        hints.append("the Python package G722 (pip install G722)")
    return hints


def _require(*langs: str) -> None:
    for lang in langs:
        _check_lang(lang)
    hints = _missing(langs)
    if hints:
        raise DependencyError("real speech needs " + " and ".join(hints))


def available(lang: str | None = None) -> bool:
    """Whether real recorded speech can be loaded.

    Parameters
    ----------
    lang : {"it", "ru"} or None
        The voice to check; ``None`` checks both (as :func:`rtsep.material.signals.babble` needs).

    Returns
    -------
    bool
        True when the Debian prompt package(s) and the ``G722`` Python package are
        installed.
    """
    langs = tuple(PACKAGES) if lang is None else (lang,)
    for one in langs:
        _check_lang(one)
    return not _missing(langs)


@functools.lru_cache(maxsize=None)
def _prompt_files(lang: str) -> tuple[pathlib.Path, ...]:
    _require(lang)
    root = _voice_dir(lang)
    assert root is not None
    # silence/ holds noise-floor fillers (1-10 s), not speech.
    return tuple(
        sorted(p for p in root.rglob("*.g722") if "silence" not in p.relative_to(root).parts)
    )


def prompt_files(lang: str = "it") -> list[pathlib.Path]:
    """All spoken prompt files of one voice, sorted by path.

    Parameters
    ----------
    lang : {"it", "ru"}
        Italian male or Russian female voice.

    Returns
    -------
    list of pathlib.Path
        The ``*.g722`` files under ``/usr/share/asterisk/sounds/<lang>_*/``, recursively,
        without the ``silence/`` fillers. Deterministic order.

    Raises
    ------
    DependencyError
        If the Debian package for ``lang`` or the ``G722`` Python package is missing.
    """
    return list(_prompt_files(lang))


def _trim(x: np.ndarray) -> np.ndarray:
    """Drop leading/trailing silence, keeping a 50 ms margin."""
    n_frames = len(x) // _FRAME
    if n_frames == 0:
        return x[:0]
    frames = x[: n_frames * _FRAME].reshape(n_frames, _FRAME).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    # Relative to the loudest frame so quiet and loud prompts trim alike; the absolute
    # floor keeps a prompt that is all noise floor from surviving as "speech".
    threshold = max(rms.max() * 10 ** (_REL_THRESHOLD_DB / 20), _ABS_THRESHOLD)
    active = np.flatnonzero(rms > threshold)
    if active.size == 0:
        return x[:0]
    start = max(active[0] * _FRAME - _MARGIN, 0)
    stop = min((active[-1] + 1) * _FRAME + _MARGIN, len(x))
    return x[start:stop]


def _decode_file(path: str) -> np.ndarray:
    _require_g722()
    import G722  # noqa: N813 - the PyPI module's own name

    try:
        data = pathlib.Path(path).read_bytes()
    except OSError as exc:
        raise AudioFileError(f"cannot read speech prompt {path}: {exc.strerror}") from exc
    # A decoder keeps state between calls, so each file gets a fresh one.
    pcm = G722.G722(FS, 64000).decode(data)
    return _trim(np.asarray(pcm, dtype=np.float32) / np.float32(32768.0))


# Bounded: a talker uses a few prompts, while scanning a whole voice would hold ~70 MB.
@functools.lru_cache(maxsize=128)
def _decoded(path: str) -> np.ndarray:
    x = _decode_file(path)
    x.setflags(write=False)  # shared by every caller through the cache
    return x


def _require_g722() -> None:
    if not _g722_importable():
        raise DependencyError(
            "decoding the speech prompts needs the Python package G722 (pip install G722)"
        )


def load_prompt(path: str | pathlib.Path) -> np.ndarray:
    """Decode one G.722 prompt file and trim its leading/trailing silence.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.g722`` file, e.g. one of :func:`prompt_files`.

    Returns
    -------
    numpy.ndarray, shape (n,), float32
        Mono speech at 16 kHz in ±1, from 50 ms before the first to 50 ms after the
        last frame within 40 dB of the loudest 10 ms frame. Empty if the file holds
        no speech. Decoded files are cached; the returned array is a fresh copy.

    Raises
    ------
    DependencyError
        If the ``G722`` Python package is missing.
    AudioFileError
        If the file cannot be read.
    """
    return _decoded(str(path)).copy()


@functools.lru_cache(maxsize=None)
def _long_prompts(lang: str) -> tuple[str, ...]:
    # G.722 at 64 kbit/s is 8000 bytes/s: the size rules out short files before decoding.
    min_bytes = int(MIN_PROMPT_S * 8000)
    return tuple(
        str(p)
        for p in _prompt_files(lang)
        if p.stat().st_size >= min_bytes and len(_decode_file(str(p))) >= MIN_PROMPT_S * FS
    )


def _order(lang: str, seed: int) -> np.ndarray:
    """Prompt indices for a talker: a seeded shuffle whose first prompt depends on the seed.

    The first prompt comes from a fixed per-language permutation indexed by the seed,
    so seeds 0 .. N-1 (N ≈ 200 prompts) are guaranteed to open with different
    prompts and two talkers of one voice never start on the same utterance.
    """
    n = len(_long_prompts(lang))
    lang_id = sorted(PACKAGES).index(lang)
    first = np.random.default_rng([lang_id, 0x5EED]).permutation(n)[seed % n]
    rest = np.random.default_rng([seed, lang_id]).permutation(n)
    return np.concatenate(([first], rest[rest != first]))


def talker(lang: str, seconds: float, seed: int = 0, fs: int = FS) -> np.ndarray:
    """One voice speaking continuously: seeded random prompts with short pauses.

    Parameters
    ----------
    lang : {"it", "ru"}
        Italian male or Russian female voice.
    seconds : float
        Duration in seconds (> 0).
    seed : int
        Non-negative seed. The same seed gives the same signal; different seeds of
        one voice give different prompt orders (a speech-on-speech pair).
    fs : int
        Output sample rate in Hz; resampled from 16 kHz when different.

    Returns
    -------
    numpy.ndarray, shape (round(seconds * fs),), float32
        Prompts of at least 2 s each, separated by 100-300 ms pauses of -80 dBFS
        noise, cut to length and scaled to RMS 0.1. Peaks are typically 0.5-1.
        Longer requests than the whole voice (about 18 min) repeat prompts.

    Raises
    ------
    ConfigError
        If ``lang``, ``seconds``, ``seed`` or ``fs`` is out of range.
    DependencyError
        If the Debian package for ``lang`` or the ``G722`` Python package is missing.
    """
    _check_lang(lang)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"talker duration must be a positive number of seconds, got {seconds!r}")
    if int(seed) != seed or seed < 0:
        raise ConfigError(f"talker seed must be a non-negative integer, got {seed!r}")
    if int(fs) != fs or fs <= 0:
        raise ConfigError(f"talker sample rate must be a positive integer in Hz, got {fs!r}")
    seed, fs = int(seed), int(fs)
    _require(lang)

    n_out = round(seconds * fs)
    if n_out == 0:
        raise ConfigError(f"talker duration {seconds} s is shorter than one sample at {fs} Hz")
    n16 = math.ceil(n_out * FS / fs) + 1  # resampling then yields at least n_out samples

    prompts = _long_prompts(lang)
    order = _order(lang, seed)
    rng = np.random.default_rng([seed, sorted(PACKAGES).index(lang), 1])
    parts: list[np.ndarray] = []
    total = 0
    i = 0
    while total < n16:
        speech = _decoded(prompts[order[i % len(order)]])
        pause = rng.standard_normal(int(rng.uniform(0.1, 0.3) * FS)) * _ROOM_TONE_RMS
        parts += [speech, pause.astype(np.float32)]
        total += len(speech) + len(pause)
        i += 1
    x = np.concatenate(parts)[:n16].astype(np.float64)

    if fs != FS:
        g = math.gcd(fs, FS)
        x = resample_poly(x, fs // g, FS // g)
    x = x[:n_out]
    return (x * (TARGET_RMS / np.sqrt(np.mean(x**2)))).astype(np.float32)


def demo_clip() -> tuple[np.ndarray, int]:
    """The short real-speech clip shipped with rtsep (Italian male voice).

    Works without the Debian packages. Origin and licence: ``rtsep/data/LICENSE-audio.txt``.

    Returns
    -------
    x : numpy.ndarray, shape (n,), float32
        About 8 s of mono speech in ±1.
    fs : int
        Its sample rate in Hz (16000).

    Raises
    ------
    AudioFileError
        If the clip is missing from the installation.
    """
    import soundfile

    ref = resources.files("rtsep") / "data" / DEMO_CLIP
    try:
        with resources.as_file(ref) as path:
            x, fs = soundfile.read(str(path), dtype="float32", always_2d=False)
    except (OSError, RuntimeError) as exc:  # soundfile raises LibsndfileError(RuntimeError)
        raise AudioFileError(
            f"the demo clip rtsep/data/{DEMO_CLIP} is missing or unreadable ({exc}); "
            "reinstall rtsep"
        ) from exc
    return x, int(fs)
