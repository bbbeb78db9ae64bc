"""Separation quality on instantaneous two-mic mixtures of real speech (BSS-Eval, dB).

Talker: the Italian male voice of the Debian Asterisk prompts. Backgrounds:
another real talker (Russian female), generated music, pink noise and babble
of real talkers. Mixing: random 2×2 matrices of condition number 2, 10, 50.
"""

from __future__ import annotations

import numpy as np
import pytest

from rtsep import Separator

from rtsep.material import signals, speech
from rtsep.metrics import improvement, sliding_sir_improvement, time_to_reach

from .conftest import FS, NO_JIT, instantaneous_mix, require_speech

pytestmark = pytest.mark.heavy

SECONDS = 8
BACKGROUNDS = ("speech", "music", "pink", "babble")
CONDS = (2, 10, 50)


def _background(kind: str, n: int, seed: int) -> np.ndarray:
    if kind == "speech":
        return speech.talker("ru", SECONDS, seed=seed)
    if kind == "music":
        return signals.music_like(n, FS, seed)
    if kind == "pink":
        return signals.pink_noise(n, seed)
    return signals.babble(n, FS, seed)


@pytest.fixture(scope="module")
def results() -> dict:
    require_speech()
    out = {}
    n = SECONDS * FS
    for kind in BACKGROUNDS:
        for cond in CONDS:
            seed = cond + 1
            x, images = instantaneous_mix(speech.talker("it", SECONDS, seed=seed), _background(kind, n, seed),
                                          cond, seed)
            sep = Separator(FS)
            vs, bs = [], []
            for s in range(0, n, 256):  # the live block path
                v, b = sep.process(x[s:s + 256])
                vs.append(v)
                bs.append(b)
            est = np.stack([np.concatenate(vs), np.concatenate(bs)])
            h = n // 2
            imp = improvement(est[:, h:], images[:, h:], x[h:, 0])
            swapped = improvement(est[::-1, h:], images[:, h:], x[h:, 0])
            label_ok = imp.sir.mean() >= swapped.sir.mean()
            if kind == "speech" and not label_ok:
                # two talkers: either may be "the voice"; score the separation itself
                est, imp = est[::-1], swapped
            t, sir_t = sliding_sir_improvement(est[:, : 4 * FS], images[:, : 4 * FS], x[: 4 * FS, 0], FS,
                                               window_s=1.0, hop_s=0.25)
            out[(kind, cond)] = dict(sir_imp=float(imp.sir_improvement[0]), label_ok=label_ok,
                                     t_reach=float(t[np.argmax(sir_t[0] >= 20)]) if (sir_t[0] >= 20).any() else np.inf)
    return out


@pytest.mark.skipif(NO_JIT, reason="quality needs seconds of audio; run compiled")
def test_median_sir_improvement_on_the_second_half_is_at_least_30_db(results):
    sir = [r["sir_imp"] for r in results.values()]
    print({k: round(v["sir_imp"], 1) for k, v in results.items()})
    assert np.median(sir) >= 30.0
    assert min(sir) >= 15.0  # and no case is a failure


@pytest.mark.skipif(NO_JIT, reason="quality needs seconds of audio; run compiled")
def test_20_db_sir_improvement_is_reached_within_2_seconds(results):
    # 1 s windows, stamped at their end. Measured: 10 of 12 cases by 2.0 s; babble
    # (near-Gaussian, excess kurtosis ≈ 0.3, against prompts of kurtosis ≈ 1.9) is
    # the slow one, at 2.5 s and beyond 4 s — see the closing note of issue 10.
    t = np.array([v["t_reach"] for v in results.values()])
    print({k: v["t_reach"] for k, v in results.items()})
    assert np.median(t) <= 1.5
    assert np.mean(t <= 2.0) >= 0.75


@pytest.mark.skipif(NO_JIT, reason="quality needs seconds of audio; run compiled")
@pytest.mark.parametrize("kind", [k for k in BACKGROUNDS if k != "speech"])
def test_the_voice_output_is_the_talker_not_the_background(results, kind):
    assert all(results[(kind, c)]["label_ok"] for c in CONDS)
