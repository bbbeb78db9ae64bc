"""Streamed audio file reading and crash-safe writing (libsndfile via soundfile).

Files are read block by block so memory stays flat however long they are,
and written under a temporary name that is renamed only when complete: an
interrupted run never leaves a half-written file under the final name, and
what was written before an error is still a valid file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .config import MAX_RATE_HZ, MIN_RATE_HZ
from .errors import AudioFileError, DependencyError, OutputPathError


def _soundfile():
    try:
        import soundfile
    except (ImportError, OSError) as exc:  # OSError: libsndfile itself is missing
        raise DependencyError(f"reading audio files needs libsndfile and the soundfile package "
                              f"(pip install soundfile; apt-get install libsndfile1): {exc}") from None
    return soundfile


class AudioReader:
    """Reads an audio file in blocks, checking it is something rtsep can separate.

    Parameters
    ----------
    path : str or Path
        Any format libsndfile reads (WAV, FLAC, OGG, AIFF…).
    channels : sequence of int, optional
        1-based channel numbers to use (exactly two, or the microphone count).
        Needed for files with more than two channels.

    Attributes
    ----------
    fs : int
        Sample rate (Hz).
    frames : int
        Length (samples per channel).
    channels : int
        Channels delivered (after selection).
    """

    def __init__(self, path: str | os.PathLike, channels: Sequence[int] | None = None) -> None:
        sf = _soundfile()
        self.path = Path(path)
        if not self.path.exists():
            raise AudioFileError(f"{self.path}: no such file; give the path of a two-channel recording")
        if self.path.is_dir():
            raise AudioFileError(f"{self.path} is a directory; give the path of a two-channel audio file")
        try:
            self._f = sf.SoundFile(str(self.path))
        except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
            raise AudioFileError(f"{self.path}: not an audio file libsndfile can read ({_short(exc)}); "
                                 "convert it to WAV or FLAC") from None
        self.fs = int(self._f.samplerate)
        self.frames = int(self._f.frames)
        self.format_info = f"{self._f.format}/{self._f.subtype}"
        n_file = int(self._f.channels)
        if not MIN_RATE_HZ <= self.fs <= MAX_RATE_HZ:
            self.close()
            raise AudioFileError(f"{self.path}: sample rate {self.fs} Hz is outside the supported "
                                 f"{MIN_RATE_HZ}–{MAX_RATE_HZ} Hz; resample it first (e.g. sox in.wav -r 16000 out.wav)")
        if channels is None:
            if n_file == 1:
                self.close()
                raise AudioFileError(f"{self.path} has 1 channel, but separation needs 2 microphone channels; "
                                     "record with two mics (a stereo file)")
            if n_file > 2:
                self.close()
                raise AudioFileError(f"{self.path} has {n_file} channels; choose the two microphones "
                                     f"with --channels (e.g. --channels 1,2)")
            self._select: np.ndarray | None = None
        else:
            sel = [int(c) for c in channels]
            if len(sel) < 2 or len(set(sel)) != len(sel) or min(sel) < 1 or max(sel) > n_file:
                self.close()
                raise AudioFileError(f"--channels {','.join(map(str, sel))} does not fit {self.path}, "
                                     f"which has {n_file} channel(s); give 2 distinct numbers from 1 to {n_file}")
            self._select = np.asarray(sel) - 1
        if self.frames == 0:
            self.close()
            raise AudioFileError(f"{self.path} holds no samples (zero length); nothing to separate")
        self.channels = n_file if self._select is None else len(self._select)

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.frames / self.fs

    def blocks(self, blocksize: int) -> Iterator[np.ndarray]:
        """Yield float32 blocks of shape (≤ blocksize, channels) until the end of the file.

        A file that turns out shorter than its header says (truncated) ends
        early with an :class:`AudioFileError` after its readable blocks.
        """
        sf = _soundfile()
        done = 0
        while True:
            try:
                b = self._f.read(blocksize, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioFileError(f"{self.path}: read failed after {done} samples ({_short(exc)}); "
                                     "the file is damaged: re-export it") from None
            if b.shape[0] == 0:
                break
            done += b.shape[0]
            yield b if self._select is None else np.ascontiguousarray(b[:, self._select])
            if b.shape[0] < blocksize:
                break

    def close(self) -> None:
        """Close the file."""
        f = getattr(self, "_f", None)
        if f is not None and not f.closed:
            f.close()

    def __enter__(self) -> "AudioReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prepare_out_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Create the output folder if needed and check files can be written in it.

    Called before any audio is processed, so a bad output place costs nothing.

    Parameters
    ----------
    path : str or Path
        The folder (created with its parents if missing).
    option : str
        The command-line option that named it, for the message.

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    OutputPathError
        ``path`` is a file, lies under a file, or is not writable.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"{option} {out} is a file, not a folder; give a folder name "
                              "(it is created if missing)")
    blocker = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise OutputPathError(f"{option} {out}: {blocker} is a file, so no folder can be made under it; "
                              "give another folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        # os.access says yes to root on a read-only mount: only a real file tells
        probe = out / f".rtsep-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or _short(exc)
        raise OutputPathError(f"{option} {out}: cannot write there ({reason.lower()}); "
                              "choose a folder you can write to") from None
    return out


class AtomicWavWriter:
    """Writes a WAV file under a temporary name and renames it when closed.

    Parameters
    ----------
    path : str or Path
        Final file name.
    fs : int
        Sample rate (Hz).
    channels : int
        Channel count.
    subtype : str
        libsndfile subtype; ``"FLOAT"`` (default) never clips.

    Notes
    -----
    ``close()`` (also on ``with`` exit, even after an exception) finalises the
    header and renames, so whatever was written is a valid file. The
    temporary file lives in the same directory so the rename is atomic.
    """

    def __init__(self, path: str | os.PathLike, fs: int, channels: int, subtype: str = "FLOAT") -> None:
        sf = _soundfile()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.part")
        try:
            self._f = sf.SoundFile(str(self._tmp), "w", samplerate=int(fs), channels=int(channels),
                                   subtype=subtype, format="WAV")
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioFileError(f"cannot write {self.path}: {_short(exc)}; check the folder exists and is writable") from None
        self.frames = 0

    def write(self, block: np.ndarray) -> None:
        """Append a block of shape (n,) or (n, channels)."""
        self._f.write(block)
        self.frames += int(np.shape(block)[0])

    def close(self) -> Path:
        """Finish the file and give it its final name; returns that path."""
        if not self._f.closed:
            self._f.close()
            os.replace(self._tmp, self.path)
        return self.path

    def __enter__(self) -> "AtomicWavWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AlignedOutputWriter:
    """``voice.wav`` and ``background.wav`` aligned with the input: the engine latency is dropped.

    Parameters
    ----------
    out_dir : str or Path
        Folder for the two files (written with :class:`AtomicWavWriter`).
    fs : int
        Sample rate (Hz).
    skip : int
        Engine latency (samples): the first ``skip`` output samples answer no
        input sample and are dropped, so ``voice[i]`` answers input ``i``.
    """

    def __init__(self, out_dir: str | os.PathLike, fs: int, skip: int) -> None:
        out = Path(out_dir)
        self.voice_path, self.background_path = out / "voice.wav", out / "background.wav"
        self._voice = AtomicWavWriter(self.voice_path, fs, 1)
        try:
            self._background = AtomicWavWriter(self.background_path, fs, 1)
        except BaseException:
            self._voice.close()
            raise
        self._skip = int(skip)

    def write(self, voice: np.ndarray, background: np.ndarray) -> None:
        """Append one block of outputs, shape (n,) each."""
        if self._skip:
            k = min(self._skip, voice.shape[0])
            voice, background, self._skip = voice[k:], background[k:], self._skip - k
        if voice.shape[0]:
            self._voice.write(voice)
            self._background.write(background)

    def close(self) -> None:
        """Finish both files under their final names."""
        try:
            self._voice.close()
        finally:
            self._background.close()

    def __enter__(self) -> "AlignedOutputWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
