"""``rtsep bench``: rtsep against published separators, on the same mixtures, in one run.

Every method sees the same two-microphone mixtures of real speech (the Italian
talker of :mod:`rtsep.material.speech`) with a music-like or babble background:
instantaneous 2×2 mixing at condition numbers 2 and 20 and, when
pyroomacoustics works, simulated rooms (:mod:`rtsep.material.rooms`). Scores are
BSS-Eval improvements over the unprocessed reference mic (:mod:`rtsep.metrics`).

Peers (each optional; a missing one is reported as "not installed"):

===============  =======================================  ==========================
method           what it is                                output scale / assignment
===============  =======================================  ==========================
rtsep td / fd    this package, streamed in 256-sample      its own projection back
                 blocks through :class:`rtsep.Separator`   and its own voice label
FastICA          scikit-learn, batch, instantaneous        least squares onto mic 1,
                                                           best-SIR assignment
Picard           python-picard (extended), batch           same as FastICA
AuxIVA, ILRMA    pyroomacoustics, batch STFT-domain        pra projection back,
                                                           best-SIR assignment
===============  =======================================  ==========================

The only online peer found on PyPI is pyroomacoustics' TRINICON (block-wise,
second-order statistics, pure Python); ssspy 0.2.0 ships batch IVA variants
only, no online one.

Each method is timed in the same process on one pinned core, so real-time
factors are comparable; peers that use BLAS are limited to one thread.

The modules: :mod:`~rtsep.bench.mixtures` (what is separated),
:mod:`~rtsep.bench.peers` (who separates it), :mod:`~rtsep.bench.measure`
(scores, latency, timing), :mod:`~rtsep.bench.report` (tables, figures,
RESULTS.md) and :mod:`~rtsep.bench.runner` (``rtsep bench`` itself).
"""

from __future__ import annotations

from .measure import Score, cold_start, measure_latency, score, td_speed
from .mixtures import FS, Mixture, instantaneous, mixtures, room
from .peers import METHODS, NotInstalled, Run, resolve_methods, run_rtsep
from .report import cpu_name, machine, write_report
from .runner import add_bench_arguments, cmd_bench, main, run

__all__ = ["FS", "METHODS", "Mixture", "NotInstalled", "Run", "Score", "add_bench_arguments", "cmd_bench",
           "cold_start", "cpu_name", "instantaneous", "machine", "main", "measure_latency", "mixtures",
           "resolve_methods", "room", "run", "run_rtsep", "score", "td_speed", "write_report"]
