"""rtsep against published separators (issue 6), as pytest checks of the comparison runner.

Run: ``.venv/bin/python -m pytest bench/test_peers.py -q`` (about 1-2 min on one core).
Not part of ``tests/``: it needs the optional peers (scikit-learn, python-picard,
pyroomacoustics) and real speech; each test skips, saying why, when they are missing.
The full comparison with tables and plots is ``rtsep bench`` (:mod:`rtsep.bench`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json

import numpy as np
import pytest

from rtsep import bench

from rtsep.material import speech

pytestmark = pytest.mark.skipif(not speech.available("it"),
                                reason="real speech needs asterisk-core-sounds-it-g722 and G722 (tools/dev.sh setup)")

_PEER_PACKAGE = {"FastICA (sklearn)": "sklearn", "Picard": "picard", "AuxIVA (pra)": "pyroomacoustics",
                 "ILRMA (pra)": "pyroomacoustics"}


@pytest.fixture(scope="module")
def mixture() -> bench.Mixture:
    return bench.instantaneous("babble", 20, 5.0, 21)


@pytest.mark.parametrize("method", list(_PEER_PACKAGE))
def test_each_batch_peer_separates_an_instantaneous_mixture(mixture, method):
    # guards the peers' wiring (projection back, assignment): a wrongly scaled or
    # unpermuted peer would make rtsep look better than it is
    if importlib.util.find_spec(_PEER_PACKAGE[method]) is None:
        pytest.skip(f"{_PEER_PACKAGE[method]} not installed")
    sc = bench.score(method, mixture, bench.METHODS[method](mixture), sliding=False)
    assert sc.sir_imp_voice >= 20.0, sc


def test_rtsep_td_converges_and_labels_the_talker(mixture):
    sc = bench.score("rtsep td", mixture, bench.run_rtsep(mixture, "td"), sliding=False)
    assert sc.voice_is_talker
    assert sc.sir_imp_voice_2nd_half >= 25.0
    assert sc.t_converge_s is not None and sc.t_converge_s <= 4.0


def test_measured_latency_of_td_is_zero():
    assert bench.measure_latency("td") == 0


def test_bench_cli_writes_results_and_reports_missing_peers_as_rows(tmp_path, monkeypatch):
    # one short mixture and two methods, one of them made "not installed"
    def missing(m):
        raise bench.NotInstalled("nopkg")

    monkeypatch.setitem(bench.METHODS, "Missing peer", missing)
    from rtsep.bench import runner  # what the run calls, patched where it is looked up

    monkeypatch.setattr(runner, "mixtures", lambda quick, log=print: [bench.instantaneous("music", 2, 3.0, 3)])
    monkeypatch.setattr(runner, "td_speed", lambda quick: [])
    p = argparse.ArgumentParser()
    bench.add_bench_arguments(p)
    args = p.parse_args(["--quick", "--out", str(tmp_path), "--methods", "rtsep td,Missing peer"])
    assert bench.cmd_bench(args) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    status = {q["method"]: q["status"] for q in res["quality"]}
    assert status == {"rtsep td": "ok", "Missing peer": "not installed (nopkg)"}
    assert (tmp_path / "convergence.png").stat().st_size > 1000
    md = (tmp_path / "RESULTS.md").read_text()
    assert "not installed" in md and "Machine:" in md
    assert np.isfinite(res["quality"][0]["sir_imp_voice"])
