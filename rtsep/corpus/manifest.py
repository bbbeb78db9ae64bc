"""The manifest: one entry per input, rewritten atomically, locked against a second run, read to resume."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from .files import CorpusError, CorpusFile

MANIFEST_VERSION = 1
OUTPUT_NAMES = ("voice", "background", "timing")
OUTPUT_FILES = {"voice": "voice.wav", "background": "background.wav", "timing": "timing.json"}


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
    return all((folder / name).is_file() for name in OUTPUT_FILES.values())


class ManifestLock:
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


def iter_manifests(out_dir: Path) -> Iterable[Path]:
    """``manifest.json`` and the shards' ``manifest.shard-K-of-N.json`` in a corpus folder."""
    return sorted(p for p in out_dir.glob("manifest*.json") if p.is_file())
