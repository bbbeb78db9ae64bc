"""Where the files are separated: one file in a worker (staged, then published), a process pool or a Dask cluster."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import DependencyError, RtsepError
from .files import CorpusError
from .manifest import OUTPUT_FILES, input_signature

#: Environment of every worker: one thread each, the pool is the parallelism.
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}


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
    from ..separator import Separator

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
    from ..replay import clipping_warning, replay

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
            entry["outputs"] = {k: f"{rel}/{v}" for k, v in OUTPUT_FILES.items()}
            entry.update(voice_output=timing.get("voice_output"), rtf=timing.get("rtf"),
                         processing_s=timing.get("processing_s"), duration_s=timing.get("audio_s"),
                         fs=timing.get("fs"))
            entry["voice_dbfs"] = rms_dbfs(final / OUTPUT_FILES["voice"])
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
        return json.loads((folder / OUTPUT_FILES["timing"]).read_text())
    except (OSError, ValueError):
        return None


def _publish(part: Path, final: Path) -> None:
    """Move the three outputs into ``final``, ``timing.json`` last (it marks the folder complete)."""
    final.mkdir(parents=True, exist_ok=True)
    # a SIGTERM waits until the three moves are done (no-op where there are no signals to block)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}) if hasattr(signal, "pthread_sigmask") else None
    try:
        (final / OUTPUT_FILES["timing"]).unlink(missing_ok=True)
        for key in ("voice", "background", "timing"):
            os.replace(part / OUTPUT_FILES[key], final / OUTPUT_FILES[key])
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


def run_pool(tasks: list[dict[str, Any]], jobs: int, engine: str,
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


def run_dask(tasks: list[dict[str, Any]], address: str, jobs: int, engine: str,
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
