"""A corpus run: the files not yet finished, farmed out, recorded in the manifest as each one ends."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .files import CorpusError, CorpusFile, discover, shard
from .jobs import run_dask, run_one, run_pool, staging_folder
from .manifest import MANIFEST_VERSION, ManifestLock, is_finished, load_manifest, manifest_name, write_json_atomic
from .progress import Progress

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
    with ManifestLock(manifest_path):
        return _run_locked(files, out, manifest_path, settings, jobs=jobs, force=force, shard_kn=shard_kn,
                           dask=dask, engine=engine, progress=progress, after_file=after_file)


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
            run_dask(tasks, dask, jobs, engine, record)
        elif jobs == 1 or len(tasks) == 1:
            for task in tasks:
                record(run_one(task))
        else:
            run_pool(tasks, min(jobs, len(tasks)), engine, record)
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


def failures_exit_code(result: CorpusResult) -> int:
    """0 when every file was separated, 1 when some failed (each already reported in one line)."""
    return 1 if result.failed else 0
