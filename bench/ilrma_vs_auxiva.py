"""Batch ILRMA against batch AuxIVA on the 16 real-material dev rooms (bench/ROOMS.md).

Asks whether an NMF source model (ILRMA) would separate these rooms better
than IVA's time-varying Gaussian one before any online version of it is
built. Both are pyroomacoustics' batch methods fitted on the whole file
(100 iterations; ILRMA with 2 and 4 bases per source), frame 1024, hop 256,
and scored as :mod:`fd_bound` scores fd's demixers: images at mic 1 with
fd's ``min_hz`` and gain cap, mean SDR improvement of both outputs in their
better order (dB). Run (about 5 min on 2 cores)::

    .venv/bin/python bench/ilrma_vs_auxiva.py
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import devset  # noqa: E402
import fd_bound  # noqa: E402

from rtsep.material.causal_bound import frozen_images, mix_spectra, sdr_improvement  # noqa: E402
from rtsep.material.rooms import import_pyroomacoustics  # noqa: E402

FS = devset.FS
K_LO = int(np.ceil(60.0 * fd_bound.FRAME / FS))
"""fd's first separated bin at its default ``min_hz`` (60 Hz)."""


def score(name: str) -> dict[str, float | str]:
    """Whole-file SDRi (dB) of batch AuxIVA and ILRMA (2 and 4 bases) in one room."""
    pra = import_pyroomacoustics()
    mix, images = devset.load(devset.by_name(name))
    x = mix_spectra(mix, FS, fd_bound.FRAME, fd_bound.HOP)
    row: dict[str, float | str] = {"room": name}
    w = fd_bound.auxiva_demixers(mix, None)
    row["auxiva"] = sdr_improvement(frozen_images(mix, w, FS, K_LO), images, mix[:, 0], FS, 0.0)
    for bases in (2, 4):
        np.random.seed(0)  # ILRMA starts from random bases (pyroomacoustics draws from np.random)
        _, wp = pra.bss.ilrma(x, n_iter=100, n_components=bases, proj_back=False, return_filters=True)
        row[f"ilrma{bases}"] = sdr_improvement(frozen_images(mix, np.conj(wp), FS, K_LO), images,
                                               mix[:, 0], FS, 0.0)
    return row


def main() -> int:
    with ProcessPoolExecutor(2) as ex:
        rows = list(ex.map(score, fd_bound.rooms()))
    print("| room | batch AuxIVA | ILRMA, 2 bases | ILRMA, 4 bases |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['room']} | {r['auxiva']:.1f} | {r['ilrma2']:.1f} | {r['ilrma4']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
