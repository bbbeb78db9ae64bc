"""A development set of real material for the voice label: who is the talker?

32 two-microphone mixtures of 30 s at 16 kHz, built from real recordings only:
a talker (:func:`rtsep.material.speech.talker`, Italian male or Russian female prompts)
against real produced music (Debian ``drascula-music`` and ``asc-music``), pink
noise, babble and café of real prompts, or a second real talker. Half are
instantaneous (2×2 gains, condition number 2-50; meant for the ``td`` engine),
half are simulated rooms (RT60 0.15-0.7 s, mic spacing 2-10 cm, talker 0.4-1.2 m,
background 1-2.5 m; meant for the ``fd`` engine).

The **voice** is always source 0, the talker. In talker-vs-talker cases it is the
NEAR talker: in rooms the one closer to the array, in instantaneous mixtures the
one louder at the reference mic 0 (talker-to-background ratio > 0 dB). The
talker-to-background ratio (TBR) at mic 0 ranges from -6 dB (background 6 dB
louder) to +6 dB.

Use::

    from bench import devset            # or: sys.path.insert(0, "bench"); import devset
    for case in devset.cases():         # cheap: metadata only
        mix, images = devset.load(case) # built on first use, then read from the cache

``mix`` has shape (n, 2): the two microphones; ``images`` has shape (2, n): the
voice and the background as heard at mic 0, so ``mix[:, 0] == images.sum(0)``
(to rounding). Mixtures are cached as ``.npz`` under ``bench/.cache/devset/``
(git-ignored; ``RTSEP_DEVSET_CACHE`` overrides the folder) and rebuilt when a
case's definition or :data:`VERSION` changes. Everything is seeded: a rebuild
gives the same arrays.

Needs (tests/bench material, not rtsep runtime dependencies): the Debian
packages ``asterisk-core-sounds-it-g722``, ``asterisk-core-sounds-ru-g722``,
``drascula-music``, ``asc-music``; the Python packages ``G722``,
``pyroomacoustics`` (rooms) and ``soundfile``. :func:`missing` lists what a case
lacks; :func:`load` raises :class:`rtsep.errors.DependencyError` with the install
hints instead of a traceback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import pathlib
from dataclasses import dataclass

import numpy as np

from rtsep.material import music, signals, speech
from rtsep.errors import ConfigError, DependencyError
from rtsep.material.rooms import import_pyroomacoustics, simulate_room

FS = 16000
"""Sample rate of every mixture (Hz)."""
SECONDS = 30.0
"""Length of every mixture (s)."""
VERSION = 1
"""Bumped when the way mixtures are built changes: every cached file is rebuilt."""

CACHE_DIR = pathlib.Path(os.environ.get("RTSEP_DEVSET_CACHE",
                                        pathlib.Path(__file__).resolve().parent / ".cache" / "devset"))

VOICE, BACKGROUND = 0, 1
"""Row indices of ``images`` (and of a separator's outputs): the talker, the rest."""

KINDS = ("music", "noise", "babble", "cafe", "talker")
"""Background kinds; ``"talker"`` is the talker-vs-talker group, the others are non-speech
(babble and café hold speech, but no single talker competing for the label)."""

_PEAK = 0.5  # common peak of the mixture, as rtsep.material.rooms gives its rooms (-6 dBFS)


@dataclass(frozen=True)
class Case:
    """One mixture of the dev set: what it is made of and how it is mixed (metadata only).

    Attributes
    ----------
    name : str
        Unique id, ``"<engine>-<kind>-<detail>"``, e.g. ``"td-music-drascula-track6"``.
    kind : {"music", "noise", "babble", "cafe", "talker"}
        Background kind.
    mixing : {"inst", "room"}
        Instantaneous 2×2 gains or a simulated room.
    engine : {"td", "fd"}
        The rtsep engine this mixing is meant for (inst -> td, room -> fd).
    voice_lang : {"it", "ru"}
        The talker's voice (source 0): Italian male or Russian female.
    voice_seed : int
        Seed of :func:`rtsep.material.speech.talker` for the talker.
    background : str
        ``"drascula/track6"`` / ``"asc/machine_wars"`` (music), ``"pink"``, ``"babble"``,
        ``"cafe"``, or ``"it"`` / ``"ru"`` (a second talker).
    background_seed : int
        Seed of the background generator or second talker (unused for music).
    tbr_db : float
        Talker-to-background power ratio at mic 0 (dB); negative: background louder.
    music_offset_s : float
        Where the music excerpt starts in its track (s), past a silent intro.
    cond : float or None
        Condition number of the mixing matrix (inst only).
    mix_seed : int
        Seed of the mixing matrix (inst) or of the array and source placement (room).
    rt60 : float or None
        Target reverberation time (s), rooms only.
    spacing : float or None
        Microphone spacing (m), rooms only.
    talker_dist, background_dist : float or None
        Source distances from the array centre (m), rooms only; the talker is nearer.
    room_dim : tuple of 3 floats or None
        Shoebox size (m), rooms only.
    seconds : float
        Length (s).
    """

    name: str
    kind: str
    mixing: str
    engine: str
    voice_lang: str
    voice_seed: int
    background: str
    background_seed: int
    tbr_db: float
    music_offset_s: float = 0.0
    cond: float | None = None
    mix_seed: int = 0
    rt60: float | None = None
    spacing: float | None = None
    talker_dist: float | None = None
    background_dist: float | None = None
    room_dim: tuple[float, float, float] | None = None
    seconds: float = SECONDS

    @property
    def speech_background(self) -> bool:
        """True for talker-vs-talker cases (a second single talker competes for the label)."""
        return self.kind == "talker"

    @property
    def n(self) -> int:
        """Length in samples."""
        return int(round(self.seconds * FS))

    def params(self) -> dict[str, object]:
        """All fields as plain data (for reports and the cache key), unused ones left out."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def describe(self) -> str:
        """One line for tables, e.g. ``"it vs drascula/track6@5s, TBR -6 dB, cond 20"``."""
        bg = f"{self.background}@{self.music_offset_s:g}s" if self.kind == "music" else self.background
        if self.mixing == "inst":
            how = f"cond {self.cond:g}"
        else:
            how = (f"RT60 {self.rt60:g} s, {100 * self.spacing:g} cm, "
                   f"{self.talker_dist:g}/{self.background_dist:g} m")
        return f"{self.voice_lang} vs {bg}, TBR {self.tbr_db:+g} dB, {how}"

    def key(self) -> str:
        """Hash of the definition and :data:`VERSION`: a cached file is valid only for its key."""
        text = json.dumps({"version": VERSION, "fs": FS, **self.params()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------ the cases

# Music excerpts, picked from a level/onset survey of every track (16 kHz mono):
#   drascula track6  busy percussion (most onsets of the set)        from 5 s
#   drascula track5  very impulsive (excess kurtosis 12.5)           from 10 s
#   drascula track14 20 s quiet (-26 dB) then loud (-16 dB) passage  from 20 s
#   drascula track7  sustained, melodic (kurtosis 0.8, few onsets)   from 10 s
#   drascula track22 impulsive, dynamic (kurtosis 9.7)               from 5 s
#   drascula track1  steady band with a beat (the repro's track)     from 20 s
#   drascula track26 quiet intro (-30 dB) up to a loud tutti at 30 s from 10 s
#   drascula track11 melodic, almost no onsets                       from 10 s
#   drascula track24 drums, with a -33 dB break at 55-60 s           from 40 s
#   asc machine_wars drums, rock (silent first 5 s skipped)          from 10 s
#   asc time_to_strike steady beat, melodic lead                     from 15 s
_INST = [
    # (kind, voice, voice seed, background, bg seed, TBR dB, music offset, cond)
    ("music", "it", 1, "drascula/track6", 0, -6.0, 5.0, 20.0),
    ("music", "ru", 2, "drascula/track5", 0, 0.0, 10.0, 5.0),
    ("music", "it", 3, "drascula/track14", 0, 3.0, 20.0, 2.0),
    ("music", "ru", 4, "drascula/track7", 0, -3.0, 10.0, 50.0),
    ("music", "it", 5, "drascula/track22", 0, 6.0, 5.0, 10.0),
    ("music", "ru", 6, "asc/machine_wars", 0, -1.5, 10.0, 8.0),
    ("noise", "it", 7, "pink", 11, -6.0, 0.0, 10.0),
    ("noise", "ru", 8, "pink", 12, 3.0, 0.0, 2.5),
    ("babble", "it", 9, "babble", 13, 0.0, 0.0, 3.0),
    ("babble", "ru", 10, "babble", 14, -6.0, 0.0, 25.0),
    ("cafe", "it", 11, "cafe", 15, 3.0, 0.0, 30.0),
    ("cafe", "ru", 12, "cafe", 16, -3.0, 0.0, 4.0),
    ("talker", "it", 13, "ru", 21, 3.0, 0.0, 8.0),
    ("talker", "ru", 14, "it", 22, 2.0, 0.0, 15.0),
    ("talker", "it", 15, "it", 23, 4.0, 0.0, 4.0),
    ("talker", "ru", 16, "ru", 24, 6.0, 0.0, 40.0),
]
_ROOM = [
    # (kind, voice, voice seed, background, bg seed, TBR dB, music offset,
    #  RT60 s, spacing m, talker m, background m, room dims m)
    ("music", "it", 31, "drascula/track1", 0, 0.0, 20.0, 0.3, 0.05, 0.8, 1.8, (6.0, 5.0, 3.0)),
    ("music", "ru", 32, "drascula/track26", 0, -6.0, 10.0, 0.5, 0.02, 1.0, 2.2, (7.0, 5.5, 3.0)),
    ("music", "it", 33, "drascula/track11", 0, 6.0, 10.0, 0.15, 0.10, 0.5, 1.2, (6.5, 6.0, 2.8)),
    ("music", "ru", 34, "drascula/track24", 0, 3.0, 40.0, 0.7, 0.05, 0.6, 1.5, (8.0, 6.0, 3.2)),
    ("music", "it", 35, "asc/time_to_strike", 0, -3.0, 15.0, 0.4, 0.07, 1.2, 2.5, (8.0, 6.0, 3.2)),
    ("music", "ru", 36, "drascula/track14", 0, 0.0, 20.0, 0.25, 0.03, 0.7, 2.0, (6.0, 5.0, 3.0)),
    ("noise", "it", 37, "pink", 41, -6.0, 0.0, 0.6, 0.03, 0.9, 2.0, (7.0, 5.5, 3.0)),
    ("noise", "ru", 38, "pink", 42, 3.0, 0.0, 0.2, 0.08, 0.4, 1.0, (6.0, 5.0, 3.0)),
    ("babble", "it", 39, "babble", 43, 0.0, 0.0, 0.25, 0.08, 0.8, 1.6, (6.5, 6.0, 2.8)),
    ("babble", "ru", 40, "babble", 44, -6.0, 0.0, 0.7, 0.10, 1.1, 2.4, (8.0, 6.0, 3.2)),
    ("cafe", "it", 41, "cafe", 45, 3.0, 0.0, 0.45, 0.04, 0.6, 2.2, (7.0, 5.5, 3.0)),
    ("cafe", "ru", 42, "cafe", 46, -3.0, 0.0, 0.3, 0.06, 1.0, 1.8, (6.0, 5.0, 3.0)),
    ("talker", "it", 43, "ru", 51, 3.0, 0.0, 0.3, 0.05, 0.6, 1.5, (6.0, 5.0, 3.0)),
    ("talker", "ru", 44, "it", 52, 0.0, 0.0, 0.5, 0.10, 0.5, 2.0, (7.0, 5.5, 3.0)),
    ("talker", "it", 45, "it", 53, 2.0, 0.0, 0.2, 0.04, 0.7, 1.4, (6.5, 6.0, 2.8)),
    ("talker", "ru", 46, "ru", 54, 0.0, 0.0, 0.6, 0.02, 0.4, 1.2, (8.0, 6.0, 3.2)),
]


def _detail(kind: str, voice: str, background: str) -> str:
    if kind == "music":
        return background.replace("/", "-")
    if kind == "talker":
        return f"{voice}-vs-{background}"
    return f"{voice}-{background}"


def cases() -> list[Case]:
    """The dev set's cases, instantaneous (td) first, then rooms (fd). Cheap: nothing is built.

    Returns
    -------
    list of Case
        32 cases with unique names; 16 per engine, 4 of them talker vs talker.
    """
    out: list[Case] = []
    for i, (kind, lang, vseed, bg, bseed, tbr, off, cond) in enumerate(_INST):
        out.append(Case(name=f"td-{kind}-{_detail(kind, lang, bg)}", kind=kind, mixing="inst", engine="td",
                        voice_lang=lang, voice_seed=vseed, background=bg, background_seed=bseed, tbr_db=tbr,
                        music_offset_s=off, cond=cond, mix_seed=100 + i))
    for i, (kind, lang, vseed, bg, bseed, tbr, off, rt60, sp, dt, db, dim) in enumerate(_ROOM):
        out.append(Case(name=f"fd-{kind}-{_detail(kind, lang, bg)}", kind=kind, mixing="room", engine="fd",
                        voice_lang=lang, voice_seed=vseed, background=bg, background_seed=bseed, tbr_db=tbr,
                        music_offset_s=off, mix_seed=200 + i, rt60=rt60, spacing=sp, talker_dist=dt,
                        background_dist=db, room_dim=dim))
    names = [c.name for c in out]
    if len(set(names)) != len(names):  # a definition error, not a user error
        raise AssertionError(f"duplicate case names: {sorted(n for n in names if names.count(n) > 1)}")
    return out


def by_name(name: str) -> Case:
    """The case called ``name`` (see :func:`cases`); ConfigError if there is none."""
    for c in cases():
        if c.name == name:
            return c
    raise ConfigError(f"no dev-set case called {name!r}; see devset.cases()")


# ------------------------------------------------------------------ material


def missing(case: Case) -> list[str]:
    """What this machine lacks to build ``case``, as install hints (empty: it can be built).

    Parameters
    ----------
    case : Case

    Returns
    -------
    list of str
        E.g. ``["the Debian package drascula-music (apt-get install drascula-music)"]``.
    """
    hints: list[str] = []
    langs = {case.voice_lang}
    if case.kind == "talker":
        langs.add(case.background)
    if case.kind in ("babble", "cafe"):
        langs |= set(speech.PACKAGES)
    for lang in sorted(langs):
        if not speech.available(lang):
            hints.append(f"real speech '{lang}': the Debian package {speech.PACKAGES[lang]} "
                         f"and the Python package G722")
    if case.kind == "music":
        package = music.LIBRARIES[case.background.partition("/")[0]][2]
        if not music.available(case.background):
            hints.append(f"the Debian package {package} (apt-get install {package})")
        try:
            import soundfile  # noqa: F401
        except ImportError:
            hints.append("the Python package soundfile (pip install soundfile)")
    if case.mixing == "room":
        try:
            import_pyroomacoustics()
        except DependencyError:
            hints.append("the Python package pyroomacoustics (pip install pyroomacoustics)")
    return hints


def background(case: Case) -> np.ndarray:
    """The dry background source of ``case``, shape (n,), float64 (level set later by the TBR)."""
    n = case.n
    if case.kind == "music":
        return music.load(case.background, case.music_offset_s, n)
    if case.kind == "noise":
        return signals.pink_noise(n, case.background_seed).astype(np.float64)
    if case.kind == "babble":
        return signals.babble(n, FS, case.background_seed).astype(np.float64)
    if case.kind == "cafe":
        return signals.cafe(n, FS, case.background_seed).astype(np.float64)
    if case.kind == "talker":
        return speech.talker(case.background, case.seconds, seed=case.background_seed).astype(np.float64)
    raise ConfigError(f"unknown background kind {case.kind!r}; one of {KINDS}")


def _instantaneous(case: Case, voice: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mix with :func:`rtsep.material.signals.mixing_matrix` (``A[mic, source]``), TBR set at mic 0."""
    A = signals.mixing_matrix(case.cond, case.mix_seed)
    p_v = np.mean((A[0, 0] * voice) ** 2)
    p_b = np.mean((A[0, 1] * bg) ** 2)
    bg = bg * math.sqrt(p_v / p_b * 10 ** (-case.tbr_db / 10))
    mix = signals.mix(np.stack([voice, bg], axis=1), A)
    images = np.stack([A[0, 0] * voice, A[0, 1] * bg])
    scale = _PEAK / np.abs(mix).max()
    return mix * scale, images * scale


def _room(case: Case, voice: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    room = simulate_room(voice, bg, FS, rt60=case.rt60, spacing=case.spacing, talker_dist=case.talker_dist,
                         background_dist=case.background_dist, room_dim=case.room_dim, sir_db=case.tbr_db,
                         seed=case.mix_seed)
    return room.mix, np.ascontiguousarray(room.images[:, :, 0])


def build(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """Build ``case`` from its sources (no cache). See :func:`load` for the arrays."""
    hints = missing(case)
    if hints:
        raise DependencyError(f"dev-set case {case.name} needs " + "; ".join(hints))
    voice = speech.talker(case.voice_lang, case.seconds, seed=case.voice_seed).astype(np.float64)
    bg = background(case)
    if case.mixing == "inst":
        return _instantaneous(case, voice, bg)
    if case.mixing == "room":
        return _room(case, voice, bg)
    raise ConfigError(f"unknown mixing {case.mixing!r}; 'inst' or 'room'")


def cache_path(case: Case) -> pathlib.Path:
    """Where ``case`` is cached: ``CACHE_DIR / "<name>.npz"``."""
    return CACHE_DIR / f"{case.name}.npz"


def load(case: Case | str) -> tuple[np.ndarray, np.ndarray]:
    """The mixture of ``case`` and its ground truth, from the cache or built (and cached) now.

    Parameters
    ----------
    case : Case or str
        A case of :func:`cases`, or its name.

    Returns
    -------
    mix : numpy.ndarray, shape (n, 2), float64
        The two microphone signals (mic 0 is the reference), peak 0.5, n = 30 s × 16 kHz.
    images : numpy.ndarray, shape (2, n), float64
        ``[voice, background]`` as heard at mic 0; ``images.sum(0) == mix[:, 0]`` to rounding.

    Raises
    ------
    DependencyError
        If the material or a package needed to build the case is missing (the message
        says what to install); a cached case loads without them.
    """
    if isinstance(case, str):
        case = by_name(case)
    path = cache_path(case)
    key = case.key()
    try:
        with np.load(path) as f:
            if str(f["key"]) == key:
                return f["mix"], f["images"]
    except (OSError, KeyError, ValueError):
        pass  # absent, stale or damaged: build it
    mix, images = build(case)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")  # atomic: parallel readers never see half a file
    np.savez(tmp, mix=mix, images=images, key=np.array(key), params=np.array(json.dumps(case.params())))
    os.replace(tmp, path)
    return mix, images


def main() -> int:
    """Build (or check) every case and print one line each: ``python bench/devset.py``."""
    import time

    for c in cases():
        hints = missing(c)
        if hints and not cache_path(c).is_file():
            print(f"{c.name:32s} SKIPPED: needs {'; '.join(hints)}")
            continue
        t0 = time.perf_counter()
        mix, images = load(c)
        p = np.mean(images ** 2, axis=1)
        print(f"{c.name:32s} {time.perf_counter() - t0:5.1f} s  TBR at mic 0 {10 * np.log10(p[0] / p[1]):+5.1f} dB"
              f"  peak {np.abs(mix).max():.2f}  {c.describe()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
