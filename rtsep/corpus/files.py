"""Which files a corpus is: inputs, folders and globs resolved to audio files, and the shards of the list."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..errors import ConfigError

#: Extensions taken from a directory (libsndfile's formats; explicit file arguments are tried whatever their name).
AUDIO_EXTENSIONS = frozenset({
    "wav", "wave", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc", "au", "snd", "caf", "w64",
    "rf64", "voc", "sd2", "mat", "mat4", "mat5", "htk", "sf", "ircam", "pvf", "xi", "nist", "sph", "paf",
    "avr", "wve", "mpc2k"})


_GLOB_CHARS = set("*?[")


class CorpusError(ConfigError):
    """The corpus options or inputs cannot be used as given."""


@dataclass(frozen=True)
class CorpusFile:
    """One input of a corpus.

    Attributes
    ----------
    path : Path
        The input as found (absolute).
    rel : str
        Its path relative to the corpus root, with ``/``; also the name of
        its output folder under ``DIR``.
    """

    path: Path
    rel: str


def is_corpus_request(inputs: Sequence[str]) -> bool:
    """Whether ``rtsep replay`` arguments ask for corpus mode (several inputs, a directory or a glob)."""
    if len(inputs) != 1:
        return True
    one = inputs[0]
    return os.path.isdir(one) or (_has_glob(one) and not os.path.exists(one))


def _has_glob(text: str) -> bool:
    return any(c in _GLOB_CHARS for c in text)


def _is_audio_name(path: Path) -> bool:
    return path.suffix[1:].lower() in AUDIO_EXTENSIONS


def discover(inputs: Sequence[str], exclude: str | os.PathLike | None = None,
             warn: Callable[[str], None] | None = None) -> list[CorpusFile]:
    """Expand files, directories (recursively) and globs into a sorted, de-duplicated list.

    Parameters
    ----------
    inputs : sequence of str
        Command-line inputs. A directory contributes every file below it
        whose extension libsndfile reads (:data:`AUDIO_EXTENSIONS`), hidden
        files and folders excepted; a glob (``*``, ``?``, ``[``; ``**``
        recursive) contributes its matches; anything else is taken as a file,
        even if it does not exist (it then fails as "no such file").
    exclude : path, optional
        A folder whose contents are never inputs (the output folder).
    warn : callable, optional
        Called with a one-line message for a glob matching nothing.

    Returns
    -------
    list of CorpusFile
        Sorted by ``rel``. ``rel`` is relative to the deepest folder holding
        every input (a directory argument counts as itself), so one
        directory argument maps ``IN/a/b.wav`` to ``DIR/a/b.wav/``.

    Raises
    ------
    CorpusError
        Nothing to process, or two inputs would share an output folder.
    """
    excl = Path(exclude).resolve() if exclude is not None else None
    found: list[tuple[Path, Path]] = []  # (file, the folder it was found under)
    for arg in inputs:
        p = Path(arg)
        if p.is_dir():
            root = p.resolve()
            for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    f = Path(dirpath) / name
                    if not name.startswith(".") and _is_audio_name(f):
                        found.append((f, root))
        elif _has_glob(arg) and not p.exists():
            matches = [Path(m) for m in sorted(glob.glob(arg, recursive=True))]
            matches = [m for m in matches if not m.is_dir()]
            if not matches and warn is not None:
                warn(f"warning: {arg} matches no file")
            for m in matches:
                found.append((m.absolute(), m.absolute().parent))
        else:
            f = p.absolute()
            found.append((f, f.parent))
    if excl is not None:
        found = [(f, r) for f, r in found if not _inside(f, excl)]
    if not found:
        raise CorpusError(f"no audio files found in {' '.join(inputs)}; give files, folders or globs "
                          f"(extensions read from folders: .wav .flac .ogg .aiff …)")
    root = Path(os.path.commonpath([str(r) for _, r in found]))
    files: dict[str, CorpusFile] = {}
    for f, _ in found:
        rel = f.relative_to(root).as_posix() if _inside(f, root) else f.name
        other = files.get(rel)
        if other is not None and other.path != f:
            raise CorpusError(f"{other.path} and {f} would both be written to {rel}/; "
                              "replay them in separate runs or rename one")
        files[rel] = CorpusFile(f, rel)
    return [files[k] for k in sorted(files)]


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/5"`` → ``(2, 5)``: this machine does part 2 of 5 (1-based)."""
    if text is None:
        return None
    k_s, sep, n_s = text.partition("/")
    try:
        k, n = int(k_s), int(n_s)
    except ValueError:
        k = n = 0
    if not sep or n < 1 or not 1 <= k <= n:
        raise CorpusError(f"--shard {text!r} should be K/N with 1 ≤ K ≤ N, "
                          "e.g. --shard 2/4 on the second of 4 machines")
    return k, n


def shard(files: Sequence[CorpusFile], k: int, n: int) -> list[CorpusFile]:
    """Part ``k`` of ``n`` (1-based) of a corpus: every n-th file of the sorted list, from the k-th.

    The parts of ``1/n`` … ``n/n`` are disjoint and together hold every
    file, whatever machine computes them, because the list is sorted by
    relative path first. Round-robin keeps the parts' sizes within one file
    and spreads a folder of long recordings over all machines.
    """
    ordered = sorted(files, key=lambda f: f.rel)
    return ordered[k - 1::n]
