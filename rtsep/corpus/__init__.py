"""Replay a whole corpus: many files, resumable, in parallel processes or on a Dask cluster.

``rtsep replay IN... --out DIR`` with several inputs, a directory or a glob
lands here. Each file goes through :func:`rtsep.replay.replay` unchanged, so
its outputs are bit-identical to replaying that file alone; this module only
finds the files, farms them out, and keeps ``DIR/manifest.json``.

Layout of ``DIR``::

    DIR/<relative path of the input>/voice.wav, background.wav, timing.json
    DIR/manifest.json      one entry per input (see :func:`rtsep.corpus.jobs.run_one`)
    DIR/summary.md, DIR/summary.png   (rtsep.report)

Crash safety: a file is replayed into a hidden sibling folder
``.<name>.part`` and its three outputs are moved into place one by one,
``timing.json`` last, so a folder with ``timing.json`` holds complete
outputs. The manifest is rewritten atomically (temp + rename) after each
file. A file counts as finished on a re-run only if its manifest entry says
``done`` with the same settings, its input has the same size and mtime, and
its three outputs exist.

The modules: :mod:`~rtsep.corpus.files` (which files), :mod:`~rtsep.corpus.manifest`
(what is done, resuming), :mod:`~rtsep.corpus.jobs` (one file in a worker; the pool
and Dask), :mod:`~rtsep.corpus.runner` (a run), :mod:`~rtsep.corpus.progress`
(what it shows) and :mod:`~rtsep.corpus.cli` (the options of ``rtsep replay``).
"""

from __future__ import annotations

from .cli import add_corpus_arguments, cmd_corpus, wants_corpus
from .files import AUDIO_EXTENSIONS, CorpusError, CorpusFile, discover, is_corpus_request, parse_shard, shard
from .jobs import WORKER_ENV, run_one, worker_init
from .manifest import MANIFEST_VERSION, ManifestLock, is_finished, iter_manifests, load_manifest, manifest_name
from .progress import Progress, failure_line
from .runner import CorpusResult, default_jobs, failures_exit_code, run_corpus

__all__ = ["AUDIO_EXTENSIONS", "MANIFEST_VERSION", "WORKER_ENV", "CorpusError", "CorpusFile", "CorpusResult",
           "ManifestLock", "Progress", "add_corpus_arguments", "cmd_corpus", "default_jobs", "discover",
           "failure_line", "failures_exit_code", "is_corpus_request", "is_finished", "iter_manifests",
           "load_manifest", "manifest_name", "parse_shard", "run_corpus", "run_one", "shard", "wants_corpus",
           "worker_init"]
