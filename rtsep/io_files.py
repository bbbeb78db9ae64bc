"""Streamed audio file reading and crash-safe writing (libsndfile via soundfile).

Files are read block by block so memory stays flat however long they are,
and written under a temporary name that is renamed only when complete: an
interrupted run never leaves a half-written file under the final name, and
what was written before an error is still a valid file.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import sys
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Sequence

import numpy as np

from .config import MAX_RATE_HZ, MIN_RATE_HZ
from .errors import AudioFileError, ConfigError, DependencyError, OutputPathError

LOG = logging.getLogger("rtsep")
#: what ``AudioReader`` calls the standard input in messages
STDIN_NAME = "stdin"
#: sample formats the outputs can be written in (libsndfile subtype names)
OUTPUT_SUBTYPES = ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")
_INT_LIMITS = {"PCM_U8": 127 / 128, "PCM_16": 32767 / 32768, "PCM_24": (2**23 - 1) / 2**23,
               "PCM_32": (2**31 - 1) / 2**31}


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
        #: read from the standard input, forward only: the length in its header may be a placeholder
        self.streamed = str(path) == "-"
        self.path = Path(STDIN_NAME if self.streamed else path)
        if not self.streamed and not self.path.exists():
            raise AudioFileError(f"{self.path}: no such file; give the path of a two-channel recording")
        if self.path.is_dir() and not self.streamed:
            raise AudioFileError(f"{self.path} is a directory; give the path of a two-channel audio file")
        try:
            self._f = sf.SoundFile(_StdinStream(sys.stdin.buffer) if self.streamed else str(self.path))
        except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
            raise AudioFileError(f"{self.path}: not an audio file libsndfile can read ({_short(exc)}); "
                                 "convert it to WAV or FLAC") from None
        self.fs = int(self._f.samplerate)
        self.frames = int(self._f.frames)
        self.subtype = str(self._f.subtype)
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
        if self.frames == 0 and not self.streamed:
            self.close()
            raise AudioFileError(f"{self.path} holds no samples (zero length); nothing to separate")
        self.channels = n_file if self._select is None else len(self._select)
        if not self.streamed:
            self._warn_if_truncated()

    def _warn_if_truncated(self) -> None:
        # libsndfile quietly reads a cut WAV up to its end; only its header dump tells
        m = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", self._f.extra_info, re.M)
        if m and int(m.group(2)) < int(m.group(1)) and self.frames:
            announced = self.frames * int(m.group(1)) / max(int(m.group(2)), 1)
            LOG.warning("%s: the file is truncated (it holds %.2f s of the %.2f s its header announces); "
                        "separating what is there", self.path.name, self.frames / self.fs, announced / self.fs)

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


def output_subtype(input_subtype: str) -> str:
    """The WAV sample format that keeps an input's resolution: its own when WAV has it.

    Parameters
    ----------
    input_subtype : str
        libsndfile subtype of the input (``"PCM_16"``, ``"FLOAT"``, ``"VORBIS"``…).

    Returns
    -------
    str
        One of :data:`OUTPUT_SUBTYPES`: the same for WAV/FLAC PCM and float,
        PCM_16 for A-law/µ-law, FLOAT for decoded lossy formats (Vorbis, Opus, MP3…).
    """
    s = input_subtype.upper()
    if s in OUTPUT_SUBTYPES:
        return s
    if s == "PCM_S8":
        return "PCM_U8"
    if s in ("ULAW", "ALAW"):
        return "PCM_16"
    return "FLOAT"


def check_subtype(subtype: str) -> str:
    """``subtype`` in upper case if the outputs can be written in it, else :class:`ConfigError`."""
    s = str(subtype).upper()
    if s not in OUTPUT_SUBTYPES:
        raise ConfigError(f"--subtype {subtype}: choose one of {', '.join(OUTPUT_SUBTYPES)}")
    return s


class _FloatWav:
    """A float WAV with the 18-byte fmt chunk (cbSize = 0) and a fact chunk the spec asks for.

    libsndfile writes float WAVs with a 16-byte fmt chunk (and WAVEX ones
    that sox also flags), so sox warns "wave header missing extended part
    of fmt chunk"; this header reads cleanly in sox, ffmpeg and libsndfile.
    Sizes are patched in on :meth:`close`.
    """

    _HEADER = struct.Struct("<4sI4s4sIHHIIHHH4sII4sI")

    def __init__(self, path: str, fs: int, channels: int, bits: int) -> None:
        self._fh: BinaryIO = open(path, "wb")
        self._fs, self._ch, self._bits = int(fs), int(channels), int(bits)
        self._dtype = np.dtype("<f4" if bits == 32 else "<f8")
        self.frames = 0
        self.closed = False
        self._fh.write(self._header())

    def _header(self) -> bytes:
        align = self._ch * self._bits // 8
        data = self.frames * align
        return self._HEADER.pack(b"RIFF", 4 + 26 + 12 + 8 + data, b"WAVE",
                                 b"fmt ", 18, 3, self._ch, self._fs, self._fs * align, align, self._bits, 0,
                                 b"fact", 4, self.frames, b"data", data)

    def write(self, block: np.ndarray) -> None:
        a = np.asarray(block, dtype=self._dtype).reshape(-1, self._ch)
        self._fh.write(a.tobytes())
        self.frames += a.shape[0]

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._fh.seek(0)
        self._fh.write(self._header())
        self._fh.close()


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
        One of :data:`OUTPUT_SUBTYPES`; ``"FLOAT"`` (default) never clips.
        Integer formats clip samples beyond full scale and count them in
        :attr:`clipped`.

    Notes
    -----
    ``close()`` (also on ``with`` exit, even after an exception) finalises the
    header and renames, so whatever was written is a valid file. The
    temporary file lives in the same directory so the rename is atomic.
    Float files get a header of their own (see :class:`_FloatWav`); integer
    ones are plain WAV (PCM) from libsndfile.
    """

    def __init__(self, path: str | os.PathLike, fs: int, channels: int, subtype: str = "FLOAT") -> None:
        sf = _soundfile()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.part")
        self.subtype = check_subtype(subtype)
        self._limit = _INT_LIMITS.get(self.subtype)
        try:
            if self._limit is None:
                self._f = _FloatWav(str(self._tmp), fs, channels, 32 if self.subtype == "FLOAT" else 64)
            else:
                self._f = sf.SoundFile(str(self._tmp), "w", samplerate=int(fs), channels=int(channels),
                                       subtype=self.subtype, format="WAV")
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioFileError(f"cannot write {self.path}: {_short(exc)}; check the folder exists and is writable") from None
        self.frames = 0
        #: samples beyond full scale clipped to fit an integer format
        self.clipped = 0

    def write(self, block: np.ndarray) -> None:
        """Append a block of shape (n,) or (n, channels)."""
        if self._limit is not None:
            # integer formats reach -1 exactly but stop one step short of +1
            over = (block > self._limit) | (block < -1.0)
            if over.any():
                self.clipped += int(over.sum())
                block = np.clip(block, -1.0, self._limit)
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
    """``voice.wav`` and ``background.wav`` (or one stereo ``separated.wav``) aligned with the input.

    Parameters
    ----------
    out_dir : str or Path
        Folder for the files (written with :class:`AtomicWavWriter`).
    fs : int
        Sample rate (Hz).
    skip : int
        Engine latency (samples): the first ``skip`` output samples answer no
        input sample and are dropped, so ``voice[i]`` answers input ``i``.
    subtype : str
        Sample format, one of :data:`OUTPUT_SUBTYPES`.
    stereo : bool
        Write one two-channel ``separated.wav`` (voice left, background
        right) instead of two mono files.
    tap : callable, optional
        Also called as ``tap(voice, background)`` with each aligned block
        (e.g. to gather a figure).

    Attributes
    ----------
    paths : dict of str to Path
        ``{"voice": …, "background": …}`` or ``{"separated": …}``.
    """

    def __init__(self, out_dir: str | os.PathLike, fs: int, skip: int, subtype: str = "FLOAT",
                 stereo: bool = False, tap: Callable[[np.ndarray, np.ndarray], None] | None = None) -> None:
        out = Path(out_dir)
        self.stereo = bool(stereo)
        self._tap = tap
        names = ("separated",) if self.stereo else ("voice", "background")
        self.paths = {name: out / f"{name}.wav" for name in names}
        self._writers: list[AtomicWavWriter] = []
        try:
            for name in names:
                self._writers.append(AtomicWavWriter(self.paths[name], fs, 2 if self.stereo else 1, subtype))
        except BaseException:
            self.close()
            raise
        self._skip = int(skip)

    @property
    def voice_path(self) -> Path:
        """Where the voice goes (the stereo file's left channel with ``stereo``)."""
        return self.paths.get("voice", self.paths.get("separated"))

    @property
    def background_path(self) -> Path:
        """Where the background goes (the stereo file's right channel with ``stereo``)."""
        return self.paths.get("background", self.paths.get("separated"))

    @property
    def clipped(self) -> int:
        """Output samples clipped to fit an integer sample format."""
        return sum(w.clipped for w in self._writers)

    def write(self, voice: np.ndarray, background: np.ndarray) -> None:
        """Append one block of outputs, shape (n,) each."""
        if self._skip:
            k = min(self._skip, voice.shape[0])
            voice, background, self._skip = voice[k:], background[k:], self._skip - k
        if not voice.shape[0]:
            return
        if self._tap is not None:
            self._tap(voice, background)
        if self.stereo:
            self._writers[0].write(np.column_stack([voice, background]))
        else:
            self._writers[0].write(voice)
            self._writers[1].write(background)

    def close(self) -> None:
        """Finish the files under their final names."""
        errors = []
        for w in self._writers:
            try:
                w.close()
            except BaseException as exc:  # finish the others first
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> "AlignedOutputWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _StdinStream:
    """The standard input as the seekable file libsndfile asks for, read forward only.

    A pipe cannot seek, but libsndfile (FLAC especially) re-reads the start
    of a file while parsing its header: the first :attr:`HEAD` bytes are
    kept for that; later the stream is read forward once and not kept, so
    memory stays flat. The length is unknown, reported as huge.
    """

    HEAD = 1 << 20

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._head = bytearray()
        self._got = 0  # bytes taken from the pipe
        self._pos = 0

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 2:
            self._pos = (1 << 62) + offset
        else:
            self._pos = offset if whence == 0 else self._pos + offset
        return self._pos

    def _take(self, n: int) -> bytes:
        chunk = self._raw.read(n) or b""
        if self._got < self.HEAD:
            self._head += chunk[:self.HEAD - self._got]
        self._got += len(chunk)
        return chunk

    def read(self, n: int = -1) -> bytes:
        n = (1 << 16) if n is None or n < 0 else n
        out = b""
        if self._pos < len(self._head):
            out = bytes(self._head[self._pos:self._pos + n])
            self._pos += len(out)
            n -= len(out)
        if n <= 0 or self._pos < self._got:  # the second case: behind the pipe, past the kept head
            return out
        while self._got < self._pos:  # a forward seek: skip
            if not self._take(min(self._pos - self._got, 1 << 16)):
                return out
        chunk = self._take(n)
        self._pos += len(chunk)
        return out + chunk

    def readinto(self, buf) -> int:  # noqa: ANN001 - a cffi buffer
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
