"""Replay a whole corpus: many files, resumable, in parallel processes or on a Dask cluster.

``rtsep replay IN... --out DIR`` with several inputs, a directory or a glob
lands here. Each file goes through :func:`rtsep.replay.replay` unchanged, so
its outputs are bit-identical to replaying that file alone; this module only
finds the files, farms them out, and keeps ``DIR/manifest.json``.

Layout of ``DIR``::

    DIR/<relative path of the input>/voice.wav, background.wav, timing.json
    DIR/manifest.json      one entry per input (see :func:`run_one`)
    DIR/summary.md, DIR/summary.png   (rtsep.report)

Crash safety: a file is replayed into a hidden sibling folder
``.<name>.part`` and its three outputs are moved into place one by one,
``timing.json`` last, so a folder with ``timing.json`` holds complete
outputs. The manifest is rewritten atomically (temp + rename) after each
file. A file counts as finished on a re-run only if its manifest entry says
``done`` with the same settings, its input has the same size and mtime, and
its three outputs exist.
"""

from __future__ import annotations

import glob
import json
import logging
import math
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .errors import ConfigError, DependencyError, RtsepError

MANIFEST_VERSION = 1
OUTPUT_NAMES = ("voice", "background", "timing")
_OUTPUT_FILES = {"voice": "voice.wav", "background": "background.wav", "timing": "timing.json"}
#: Extensions taken from a directory (libsndfile's formats; explicit file arguments are tried whatever their name).
AUDIO_EXTENSIONS = frozenset({
    "wav", "wave", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc", "au", "snd", "caf", "w64",
    "rf64", "voc", "sd2", "mat", "mat4", "mat5", "htk", "sf", "ircam", "pvf", "xi", "nist", "sph", "paf",
    "avr", "wve", "mpc2k"})
#: Environment of every worker: one thread each, the pool is the parallelism.
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}
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


# ---------------------------------------------------------------- finding the files

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


# ---------------------------------------------------------------- the manifest

def manifest_name(shard_kn: tuple[int, int] | None) -> str:
    """``manifest.json``, or ``manifest.shard-K-of-N.json`` so shards can share one output folder."""
    return "manifest.json" if shard_kn is None else f"manifest.shard-{shard_kn[0]}-of-{shard_kn[1]}.json"


def load_manifest(path: Path) -> dict[str, Any]:
    """Read a manifest; a missing one is empty, an unreadable one is an error (not silently redone)."""
    if not path.exists():
        return {"version": MANIFEST_VERSION, "files": {}, "runs": []}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CorpusError(f"{path} is not a readable manifest ({' '.join(str(exc).split())[:120]}); "
                          "move it away to start afresh (finished files are then redone)") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise CorpusError(f"{path} is not an rtsep manifest; move it away or choose another --out folder")
    data.setdefault("runs", [])
    return data


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON under a temporary name in the same folder, then rename over ``path``."""
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "w") as fh:
        fh.write(json.dumps(data, indent=2) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def input_signature(path: Path) -> dict[str, int] | None:
    """Size (bytes) and mtime (ns) of an input, or None if it cannot be stat'ed."""
    try:
        st = path.stat()
    except OSError:
        return None
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def is_finished(entry: dict[str, Any] | None, f: CorpusFile, out_dir: Path, settings: dict[str, Any]) -> bool:
    """Whether a previous run already produced this file's outputs with these settings."""
    if not entry or entry.get("status") != "done" or entry.get("settings") != settings:
        return False
    sig = input_signature(f.path)
    if sig is None or sig["size"] != entry.get("size") or sig["mtime_ns"] != entry.get("mtime_ns"):
        return False
    folder = out_dir / f.rel
    return all((folder / name).is_file() for name in _OUTPUT_FILES.values())


# ---------------------------------------------------------------- one file (runs in a worker)

#: The staging folder of the file this process is replaying (for the SIGTERM handler).
_CURRENT_PART: Path | None = None


def worker_init(engine: str | None = None) -> None:
    """Process-pool initializer: one thread, Ctrl-C left to the parent, kernels compiled once.

    The parent stops workers with SIGTERM (after Ctrl-C); the handler removes
    the staging folder of the file in progress, so only complete outputs remain.
    """
    os.environ.update(WORKER_ENV)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    if engine is not None:
        warm(engine)


def _dask_init(engine: str) -> None:
    """Per Dask worker: compile the kernels once (its environment is the worker's own)."""
    warm(engine)


def _on_sigterm(signum: int, frame: Any) -> None:
    if _CURRENT_PART is not None:
        shutil.rmtree(_CURRENT_PART, ignore_errors=True)
    os._exit(128 + signum)


def warm(engine: str) -> None:
    """Compile the engine's kernels in this process (numba also caches them on disk)."""
    from .separator import Separator

    Separator(16000, channels=2, engine=engine).warmup()


def run_one(task: dict[str, Any]) -> dict[str, Any]:
    """Replay one file of a corpus; never raises for a bad file.

    Parameters
    ----------
    task : dict
        ``input`` (path), ``rel``, ``out_dir`` (the corpus folder) and
        ``settings`` (``engine``, ``block``, ``channels``, ``params``).
        Plain data, so it travels to a process pool or a Dask worker.

    Returns
    -------
    dict
        The manifest entry: ``input``, ``rel``, ``size`` (bytes),
        ``mtime_ns``, ``duration_s``, ``fs`` (Hz), ``channels``, ``status``
        (``"done"`` or ``"failed"``), ``error`` (one line or None),
        ``error_kind``, ``outputs`` (paths relative to the corpus folder),
        ``voice_output`` (which ICA output is the voice), ``rtf``,
        ``processing_s``, ``wall_s``, ``voice_dbfs`` (RMS level of
        ``voice.wav``, dB full scale), ``settings``, ``host``, ``finished_at``.
    """
    global _CURRENT_PART
    from .replay import clipping_warning, replay

    src = Path(task["input"])
    out_dir = Path(task["out_dir"])
    rel = task["rel"]
    settings = task["settings"]
    final = out_dir / rel
    part = staging_folder(out_dir, rel)
    entry: dict[str, Any] = {"input": str(src), "rel": rel, "status": "failed", "error": None,
                             "error_kind": None, "outputs": {}, "voice_output": None, "rtf": None,
                             "processing_s": None, "wall_s": None, "duration_s": None, "fs": None,
                             "channels": None, "voice_dbfs": None, "warning": None, "settings": settings,
                             "host": os.uname().nodename}
    entry.update(input_signature(src) or {"size": None, "mtime_ns": None})
    _probe(src, entry)
    t0 = time.perf_counter()
    error: RtsepError | None = None
    try:
        if part.exists():
            shutil.rmtree(part)  # left by an interrupted run
        _CURRENT_PART = part
        try:
            res = replay(src, part, engine=settings["engine"], block=settings["block"],
                         channels=settings.get("channels"), params=settings.get("params") or {})
            timing = res.timing
            entry["warning"] = clipping_warning(res)
        except RtsepError as exc:  # BadAudioError still leaves complete outputs (NaN → 0, silence)
            error = exc
            timing = _read_timing(part)
        if timing is not None:
            _publish(part, final)
            entry["outputs"] = {k: f"{rel}/{v}" for k, v in _OUTPUT_FILES.items()}
            entry.update(voice_output=timing.get("voice_output"), rtf=timing.get("rtf"),
                         processing_s=timing.get("processing_s"), duration_s=timing.get("audio_s"),
                         fs=timing.get("fs"))
            entry["voice_dbfs"] = rms_dbfs(final / _OUTPUT_FILES["voice"])
        if error is None:
            entry["status"] = "done"
        else:
            entry["error"] = str(error).replace(str(part), str(final))
            entry["error_kind"] = type(error).__name__
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop a corpus
        entry["error"] = f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        entry["error_kind"] = type(exc).__name__
    finally:
        _CURRENT_PART = None
        if part.exists():
            shutil.rmtree(part, ignore_errors=True)
    entry["wall_s"] = time.perf_counter() - t0
    entry["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return entry


def staging_folder(out_dir: Path, rel: str) -> Path:
    """Where a file is replayed before its outputs move to ``out_dir / rel``: hidden, beside it."""
    final = Path(out_dir) / rel
    return final.with_name(f".{final.name}.part")


def _probe(src: Path, entry: dict[str, Any]) -> None:
    """Header facts (duration, rate, channels) even for files the replay will refuse."""
    try:
        import soundfile as sf

        info = sf.info(str(src))
    except Exception:  # noqa: BLE001 - missing or not audio: the replay says why
        return
    entry.update(fs=int(info.samplerate), channels=int(info.channels),
                 duration_s=(info.frames / info.samplerate) if info.samplerate else None)


def _read_timing(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / _OUTPUT_FILES["timing"]).read_text())
    except (OSError, ValueError):
        return None


def _publish(part: Path, final: Path) -> None:
    """Move the three outputs into ``final``, ``timing.json`` last (it marks the folder complete)."""
    final.mkdir(parents=True, exist_ok=True)
    # a SIGTERM waits until the three moves are done (no-op where there are no signals to block)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}) if hasattr(signal, "pthread_sigmask") else None
    try:
        (final / _OUTPUT_FILES["timing"]).unlink(missing_ok=True)
        for key in ("voice", "background", "timing"):
            os.replace(part / _OUTPUT_FILES[key], final / _OUTPUT_FILES[key])
    finally:
        if blocked is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def rms_dbfs(path: Path, block: int = 1 << 16) -> float | None:
    """RMS level of a mono WAV in dB full scale (None if silent or unreadable), read in blocks."""
    try:
        import numpy as np
        import soundfile as sf

        total, n = 0.0, 0
        with sf.SoundFile(str(path)) as fh:
            for b in fh.blocks(blocksize=block, dtype="float64", always_2d=True):
                total += float(np.square(b).sum())
                n += b.size
    except Exception:  # noqa: BLE001 - a level is a nicety, not a reason to fail the file
        return None
    if n == 0 or total <= 0.0:
        return None
    return 10.0 * math.log10(total / n)


# ---------------------------------------------------------------- running a corpus

@dataclass
class CorpusResult:
    """What a corpus run did.

    Attributes
    ----------
    manifest_path : Path
    done, failed, skipped : int
        Files finished now, failed now, skipped as already finished.
    audio_s : float
        Seconds of audio separated in this run.
    wall_s : float
        Wall-clock seconds of the run.
    failures : list of dict
        Manifest entries of the files that failed.
    """

    manifest_path: Path
    done: int
    failed: int
    skipped: int
    audio_s: float
    wall_s: float
    failures: list[dict[str, Any]]


def run_corpus(inputs: Sequence[str], out_dir: str | os.PathLike, *, engine: str = "fd", block: int = 256,
               channels: Sequence[int] | None = None, params: dict[str, Any] | None = None,
               jobs: int | None = None, force: bool = False, shard_kn: tuple[int, int] | None = None,
               dask: str | None = None, progress: "Progress | None" = None,
               after_file: Callable[[dict[str, Any]], None] | None = None,
               warn: Callable[[str], None] | None = None) -> CorpusResult:
    """Separate every file of a corpus into ``out_dir``, resumably.

    Parameters
    ----------
    inputs : sequence of str
        Files, directories and globs (see :func:`discover`).
    out_dir : path
        Corpus output folder (created).
    engine, block, channels, params
        As for :func:`rtsep.replay.replay`, the same for every file.
    jobs : int, optional
        Worker processes (default: the number of cores). 1 runs in this
        process, with no pool.
    force : bool
        Redo files a previous run finished.
    shard_kn : (int, int), optional
        Only part K of N of the sorted list (:func:`shard`); the manifest is
        then ``manifest.shard-K-of-N.json``.
    dask : str, optional
        ``"local"`` (a ``LocalCluster`` of ``jobs`` single-threaded
        workers) or a scheduler address ``tcp://host:8786``.
    progress : Progress, optional
        Told about the corpus and each finished file.
    after_file : callable, optional
        Called with each new manifest entry after the manifest is written
        (tests use it to inject a crash).
    warn : callable, optional
        One-line warnings (a glob matching nothing).

    Returns
    -------
    CorpusResult
    """
    out = Path(out_dir)
    files = discover(inputs, exclude=out, warn=warn)
    if shard_kn is not None:
        files = shard(files, *shard_kn)
    jobs = default_jobs() if jobs is None else int(jobs)
    if jobs < 1:
        raise CorpusError(f"--jobs {jobs} must be at least 1")
    settings = {"engine": engine, "block": int(block),
                "channels": list(channels) if channels is not None else None,
                "params": dict(params or {})}
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CorpusError(f"cannot create the output folder {out} ({exc.strerror or exc}); "
                          "give a writable folder with --out") from None
    manifest_path = out / manifest_name(shard_kn)
    with _ManifestLock(manifest_path):
        return _run_locked(files, out, manifest_path, settings, jobs=jobs, force=force, shard_kn=shard_kn,
                           dask=dask, engine=engine, progress=progress, after_file=after_file)


class _ManifestLock:
    """An exclusive lock on a manifest, so two runs never interleave their writes to it.

    ``flock`` on a hidden ``.NAME.lock`` beside it; where the file system has
    no locks (some network mounts) the run goes ahead unlocked.
    """

    def __init__(self, manifest_path: Path) -> None:
        self.path = manifest_path.with_name(f".{manifest_path.name}.lock")
        self.manifest_path = manifest_path
        self._fh: Any = None

    def __enter__(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX
            return
        self._fh = open(self.path, "a")
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            self._fh = None
            raise CorpusError(f"another rtsep replay is writing {self.manifest_path}; wait for it to finish, "
                              "or give each machine its own --shard K/N") from None
        except OSError:
            pass  # no locking on this file system

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()


def _run_locked(files: list[CorpusFile], out: Path, manifest_path: Path, settings: dict[str, Any], *,
                jobs: int, force: bool, shard_kn: tuple[int, int] | None, dask: str | None, engine: str,
                progress: "Progress | None",
                after_file: Callable[[dict[str, Any]], None] | None) -> CorpusResult:
    manifest = load_manifest(manifest_path)
    manifest["version"] = MANIFEST_VERSION
    entries: dict[str, Any] = manifest["files"]
    todo = [f for f in files if force or not is_finished(entries.get(f.rel), f, out, settings)]
    skipped = len(files) - len(todo)
    tasks = [{"input": str(f.path), "rel": f.rel, "out_dir": str(out), "settings": settings} for f in todo]
    durations = [_duration(f.path) for f in todo]
    if progress is not None:
        progress.start(len(files), skipped, sum(durations), backend=_backend_name(jobs, dask))
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    done = failed = 0
    audio = 0.0
    failures: list[dict[str, Any]] = []

    recorded: set[str] = set()

    def record(entry: dict[str, Any]) -> None:
        nonlocal done, failed, audio
        entries[entry["rel"]] = entry
        recorded.add(entry["rel"])
        write_json_atomic(manifest_path, manifest)
        if entry["status"] == "done":
            done += 1
            audio += entry.get("duration_s") or 0.0
        else:
            failed += 1
            failures.append(entry)
        if progress is not None:
            progress.file_done(entry)
        if after_file is not None:
            after_file(entry)

    try:
        if not tasks:
            pass
        elif dask is not None:
            _run_dask(tasks, dask, jobs, engine, record)
        elif jobs == 1 or len(tasks) == 1:
            for task in tasks:
                record(run_one(task))
        else:
            _run_pool(tasks, min(jobs, len(tasks)), engine, record)
    except BaseException:
        if dask is None or dask == "local":  # every worker is stopped: nothing of theirs is unfinished but this
            for t in tasks:
                if t["rel"] not in recorded:
                    shutil.rmtree(staging_folder(out, t["rel"]), ignore_errors=True)
        raise
    finally:
        wall = time.perf_counter() - t0
        manifest["runs"].append({"started": started, "wall_s": wall, "backend": _backend_name(jobs, dask),
                                 "jobs": jobs, "done": done, "failed": failed, "skipped": skipped,
                                 "audio_s": audio, "shard": list(shard_kn) if shard_kn else None,
                                 "complete": done + failed == len(tasks)})
        write_json_atomic(manifest_path, manifest)
        if progress is not None:
            progress.stop()
    return CorpusResult(manifest_path, done, failed, skipped, audio, wall, failures)


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _backend_name(jobs: int, dask: str | None) -> str:
    if dask is not None:
        return f"dask {dask}"
    return "serial" if jobs == 1 else f"{jobs} processes"


def _duration(path: Path) -> float:
    try:
        import soundfile as sf

        info = sf.info(str(path))
        return info.frames / info.samplerate if info.samplerate else 0.0
    except Exception:  # noqa: BLE001 - it fails properly later, in its worker
        return 0.0


class _WorkerEnv:
    """Sets :data:`WORKER_ENV` while workers are spawned (they inherit it before importing numba)."""

    def __enter__(self) -> None:
        self._saved = {k: os.environ.get(k) for k in WORKER_ENV}
        os.environ.update(WORKER_ENV)

    def __exit__(self, *exc: object) -> None:
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_pool(tasks: list[dict[str, Any]], jobs: int, engine: str,
              record: Callable[[dict[str, Any]], None]) -> None:
    import concurrent.futures as cf
    import multiprocessing as mp

    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    with _WorkerEnv():
        pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context(method),
                                      initializer=worker_init, initargs=(engine,))
    try:
        with _WorkerEnv():  # workers are started lazily, on submit
            futures = {pool.submit(run_one, t): t for t in tasks}
        for fut in cf.as_completed(futures):
            try:
                entry = fut.result()
            except Exception as exc:  # noqa: BLE001 - a worker died (killed, out of memory)
                entry = _crashed(futures[fut], exc)
            record(entry)
    except BaseException:  # Ctrl-C: stop the workers now; each removes its unfinished staging folder
        _terminate_workers(pool)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _terminate_workers(pool: Any) -> None:
    """SIGTERM every worker and wait for it (before ``shutdown``, which forgets them)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # no public API before 3.14
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=10)


def _crashed(task: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    entry = {"input": task["input"], "rel": task["rel"], "status": "failed", "outputs": {},
             "error": f"a worker process died (killed, out of memory?) before this file was done "
                      f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]}); run again to retry it",
             "error_kind": type(exc).__name__, "settings": task["settings"], "rtf": None, "duration_s": None,
             "voice_dbfs": None, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    entry.update(input_signature(Path(task["input"])) or {"size": None, "mtime_ns": None})
    return entry


def _run_dask(tasks: list[dict[str, Any]], address: str, jobs: int, engine: str,
              record: Callable[[dict[str, Any]], None]) -> None:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise DependencyError("--dask needs the 'distributed' package: pip install 'rtsep[dask]' "
                              "(or pip install distributed)") from None
    cluster = None
    with _WorkerEnv():
        if address == "local":
            # workers started with Ctrl-C ignored (inherited): this process stops them and tidies up
            main = threading.current_thread() is threading.main_thread()
            saved = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
            try:
                cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.CRITICAL)
            finally:
                if main:
                    signal.signal(signal.SIGINT, saved)
            client = Client(cluster)
        else:
            try:
                client = Client(address, timeout="20s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise CorpusError(f"--dask {address}: cannot reach the scheduler ({' '.join(str(exc).split())[:120]}); "
                                  "start one with `dask scheduler` and workers with `dask worker ADDRESS`, "
                                  "or use --dask local") from None
    try:
        client.run(_dask_init, engine)  # each worker compiles once, before any file
        futures = [client.submit(run_one, t, pure=False, key=f"rtsep-{i}-{t['rel']}")
                   for i, t in enumerate(tasks)]
        by_key = {f.key: t for f, t in zip(futures, tasks)}
        for fut in as_completed(futures):
            try:
                entry = fut.result()
            except Exception as exc:  # noqa: BLE001 - the worker died
                entry = _crashed(by_key[fut.key], exc)
            record(entry)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ---------------------------------------------------------------- progress

class Progress:
    """Progress over files and audio seconds: a rich bar on a terminal, plain lines otherwise.

    Parameters
    ----------
    tty : bool
        Draw a bar (stderr is a terminal).
    quiet : bool
        Only failures.
    stream : file, optional
        Where lines go (default stderr).
    """

    def __init__(self, tty: bool, quiet: bool = False, stream: Any = None) -> None:
        self.tty, self.quiet = tty and not quiet, quiet
        self.stream = stream if stream is not None else sys.stderr
        self._bar: Any = None

    def start(self, total: int, skipped: int, audio_total_s: float, backend: str) -> None:
        """A run begins: ``total`` files, ``skipped`` already finished, ``audio_total_s`` to do."""
        self.total, self.n = total, skipped
        self.audio_total, self.audio_done = audio_total_s, 0.0
        self.t0 = time.perf_counter()
        if not self.quiet:
            self._line(f"{total} file(s), {skipped} already finished, {audio_total_s / 3600:.2f} h of audio "
                       f"to separate ({backend})")
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, Progress as RichProgress, ProgressColumn, TextColumn
            from rich.text import Text

            owner = self

            class _Live(ProgressColumn):
                """Files, audio, RTF and ETA recomputed at every refresh (a long file moves the clock)."""

                def render(self, task: Any) -> Text:
                    f = owner._fields()
                    return Text(f"{f['files']}  {f['audio']}  {f['speed']}")

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(bar_width=16), _Live(),
                                     transient=True, console=Console(stderr=True), refresh_per_second=2)
            self._task = self._bar.add_task("rtsep", total=max(audio_total_s, 1e-9))
            self._bar.start()

    def _fields(self) -> dict[str, str]:
        wall = time.perf_counter() - self.t0
        rtf = wall / self.audio_done if self.audio_done else float("nan")  # wall clock per audio second
        left = self.audio_total - self.audio_done
        eta = left * rtf if self.audio_done else float("nan")
        return {"files": f"{self.n}/{self.total} files",
                "audio": f"{self.audio_done / 60:.1f}/{self.audio_total / 60:.1f} min audio",
                "speed": f"RTF {rtf:.3f} ETA {_hms(eta)}"}

    def file_done(self, entry: dict[str, Any]) -> None:
        """One file finished (or failed)."""
        self.n += 1
        ok = entry["status"] == "done"
        if ok:
            self.audio_done += entry.get("duration_s") or 0.0
        if not ok:
            self._line(f"error: {failure_line(entry)}", always=True)
        elif not self.quiet and not self.tty:
            f = self._fields()
            self._line(f"[{self.n}/{self.total}] {entry['rel']}: {entry['duration_s']:.1f} s, "
                       f"RTF {entry['rtf']:.4f}, voice = output {entry['voice_output']}; "
                       f"{f['audio']}, {f['speed']}")
        if ok and entry.get("warning"):
            self._line(f"{entry['rel']}: {entry['warning']}", always=True)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.audio_done)

    def _line(self, text: str, always: bool = False) -> None:
        if self.quiet and not always:
            return
        if self._bar is not None:
            self._bar.console.print(f"rtsep: {text}", markup=False, highlight=False, soft_wrap=True)
        else:
            print(f"rtsep: {text}", file=self.stream, flush=True)

    def stop(self) -> None:
        """The run ended (normally or not)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def failure_line(entry: dict[str, Any]) -> str:
    """A failed file's error, led by its name unless the message already names it."""
    err = entry.get("error") or "unknown error"
    named = (entry.get("input") and entry["input"] in err) or err.startswith(entry["rel"])
    return err if named else f"{entry['rel']}: {err}"


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def failures_exit_code(result: CorpusResult) -> int:
    """0 when every file was separated, 1 when some failed (each already reported in one line)."""
    return 1 if result.failed else 0


def iter_manifests(out_dir: Path) -> Iterable[Path]:
    """``manifest.json`` and the shards' ``manifest.shard-K-of-N.json`` in a corpus folder."""
    return sorted(p for p in out_dir.glob("manifest*.json") if p.is_file())


# ---------------------------------------------------------------- command line

def add_corpus_arguments(p: Any) -> None:
    """Corpus options of ``rtsep replay`` (any of them, several inputs, a folder or a glob → corpus mode)."""
    g = p.add_argument_group("corpus (several inputs, a folder or a glob)")
    g.add_argument("--jobs", type=int, metavar="N",
                   help=f"files separated in parallel processes (default: the number of cores, {default_jobs()})")
    g.add_argument("--force", action="store_true", help="redo files a previous run already finished")
    g.add_argument("--shard", metavar="K/N", help="only part K of N of the sorted file list (one per machine)")
    g.add_argument("--dask", metavar="ADDRESS",
                   help="run on a Dask cluster: tcp://HOST:8786, or 'local' (needs pip install 'rtsep[dask]')")


def wants_corpus(args: Any) -> bool:
    """Whether parsed ``rtsep replay`` arguments ask for corpus mode."""
    return (is_corpus_request(args.input) or args.jobs is not None or args.force
            or args.shard is not None or args.dask is not None)


def cmd_corpus(args: Any) -> int:
    """``rtsep replay IN... --out DIR`` over a corpus; exit 1 if some files failed."""
    from .options import engine_params, parse_channels
    from .report import write_report

    # guard events and input notes go to each file's timing.json; as log lines they would name no file
    logging.getLogger("rtsep").setLevel(logging.ERROR)  # main() restores the level
    prog = Progress(tty=sys.stderr.isatty(), quiet=args.quiet)
    res = run_corpus(args.input, args.out, engine=args.engine, block=args.block,
                     channels=parse_channels(args.channels), params=engine_params(args),
                     jobs=args.jobs, force=args.force, shard_kn=parse_shard(args.shard), dask=args.dask,
                     progress=prog, warn=lambda msg: print(f"rtsep: {msg}", file=sys.stderr))
    _, summary = write_report(args.out)
    if not args.quiet:
        rate = res.audio_s / res.wall_s if res.wall_s > 0 else 0.0
        print(f"rtsep: {res.done} separated, {res.failed} failed, {res.skipped} already finished; "
              f"{res.audio_s / 3600:.3f} h of audio in {res.wall_s:.1f} s ({rate:.1f} h of audio per hour); "
              f"wrote {res.manifest_path} and {Path(args.out) / 'summary.md'}")
    if res.failed:
        print(f"rtsep: error: {res.failed} of {res.done + res.failed} file(s) failed (listed above and in "
              f"{res.manifest_path}); fix them and run the same command again to do only those", file=sys.stderr)
    return failures_exit_code(res)
