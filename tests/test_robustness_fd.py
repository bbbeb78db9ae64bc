"""Robustness of the fd engine: hostile streams (property-based) and recovery after faults.

The fd counterparts of ``test_robustness.py`` (which covers td): the same
hostile streams, with the fd output delayed by its latency (``frame - 1``
samples). The recovery test measures both engines on the same real-speech
mixtures with the issue's criterion: full separation again in the half second
ending 2 s after the fault.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from rtsep import Separator

from rtsep.material import signals

from .conftest import FS, NO_JIT, instantaneous_mix, require_speech, stream
from .test_robustness import hostile_stream

#: Gain of an fd output over the loudest finite input sample. Each bin's gain
#: from the mics to the voice image is capped (max_gain_db=40, i.e. 100), but
#: over whole frames the images stay near the input's level: measured ≤ 1.27
#: (voice) and ≤ 1.11 (background) over 150 hostile streams; td's test uses 4.
#: ``voice + background`` matched the reference within 6e-8 of the largest
#: value (float32 outputs), hence the 1e-6 tolerance below.
FD_GAIN_BOUND = 4.0


# ---------------------------------------------------------------- hostile streams


@pytest.mark.skipif(NO_JIT, reason="many seconds of audio per example; run compiled")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_stream())
def test_fd_process_never_raises_never_outputs_nan_and_answers_every_sample(case):
    x, sizes = case
    if sum(sizes) == 0:
        sizes = sizes + [1]
    n = x.shape[0]
    sep = Separator(FS, engine="fd")
    lat = sep.latency_samples
    assert lat == sep.info()["latency_samples"] == 1023
    v, b = stream(sep, x, sizes)  # asserts one output sample per input sample, block by block
    assert v.shape == b.shape == (n,)
    assert np.isfinite(v).all() and np.isfinite(b).all()
    bad = ~np.isfinite(x)
    assert sep.stats.nonfinite == int(bad.sum())
    assert sep.stats.first_nonfinite == (int(np.flatnonzero(bad.any(axis=1))[0]) if bad.any() else -1)
    clean = np.where(bad, 0.0, x)  # what the engine was given: NaN/Inf replaced by 0

    # the first `lat` outputs answer "before the stream"; then output i + lat answers input i
    assert not v[:lat].any() and not b[:lat].any()
    # flushing `lat` zeros delivers the answers to the last `lat` inputs: every input answered once
    v2, b2 = sep.process(np.zeros((lat, 2)))
    v, b = np.concatenate([v, v2])[lat:], np.concatenate([b, b2])[lat:]
    assert v.shape == b.shape == (n,) and sep.stats.samples == n + lat

    # the background is the (NaN-cleaned) reference mic, aligned, minus the voice as
    # separated: nothing invented (with the post-filter off, voice + background is the mic)
    peak = np.abs(clean).max()
    big = max(peak, np.abs(v).max(), np.abs(b).max())
    v_sep = stream(Separator(FS, engine="fd", suppress_db=0), np.r_[x, np.zeros((lat, 2))], sizes)[0][lat:]
    np.testing.assert_allclose(v_sep.astype(np.float64) + b, clean[:, 0], rtol=0, atol=1e-6 * big + 1e-30)
    # bounded: never much louder than the loudest finite input
    assert np.abs(v).max() <= FD_GAIN_BOUND * peak + 1e-6
    assert np.abs(b).max() <= FD_GAIN_BOUND * peak + 1e-6

    # and, faults or not, the output does not depend on how the stream was cut
    whole_v, whole_b = Separator(FS, engine="fd").process(x)
    np.testing.assert_array_equal(np.r_[whole_v[lat:], v2], v)
    np.testing.assert_array_equal(np.r_[whole_b[lat:], b2], b)


def test_fd_replaces_and_counts_nan_and_inf_in_a_short_stream():
    """Cheap enough for the NUMBA_DISABLE_JIT pass: a small frame, 0.25 s."""
    rng = np.random.default_rng(4)
    x = rng.laplace(size=(FS // 4, 2)) * 0.05
    x[100:140, 1] = np.nan
    x[1000, 0] = np.inf
    x[2000, 1] = -np.inf
    # the post-filter off: then voice + background is the (cleaned) mic, checked below
    sep = Separator(FS, engine="fd", frame=128, warmup_s=0.1, start_s=0.02, suppress_db=0)
    lat = sep.latency_samples
    assert lat == 127
    v, b = stream(sep, x, [1, 0, 77, 500])
    assert np.isfinite(v).all() and np.isfinite(b).all()
    assert sep.stats.nonfinite == 42 and sep.stats.first_nonfinite == 100
    clean = np.where(np.isfinite(x), x, 0.0)
    np.testing.assert_allclose(v.astype(np.float64) + b, np.r_[np.zeros(lat), clean[:-lat, 0]], rtol=0, atol=1e-6)


@pytest.mark.skipif(NO_JIT, reason="seconds of audio; run compiled")
@pytest.mark.parametrize("fault", ["dead", "same"])
@pytest.mark.parametrize("dead_s", [0.25, 0.5])
def test_fd_a_mic_without_spatial_information_from_the_start_is_not_learnt_from(fault, dead_s):
    """Found by the property test above: demixers first estimated on frames where one mic was
    dead, or carried the other's signal (a mono feed), are estimated on rank-one data and
    projected the outputs 7-11 times over the input's peak once the mics differed again (the
    balance gate then kept them from being corrected for 2 s)."""
    from .test_robustness import _mixture

    for seed in range(4):
        x = _mixture(int(1.5 * FS), seed)
        a = int(dead_s * FS)
        x[:a, 1] = 0.0 if fault == "dead" else x[:a, 0]
        sep = Separator(FS, engine="fd", suppress_db=0)
        v, b = sep.process(np.r_[x, np.zeros((sep.latency_samples, 2))])
        peak = np.abs(x).max()
        assert max(np.abs(v).max(), np.abs(b).max()) <= 1.5 * peak  # measured at most 1.0
        assert sep.info()["faulty_frames_skipped"] >= int(dead_s * FS / sep.info()["hop"]) - 4


# ---------------------------------------------------------------- recovery after a fault

T_FAULT = 6 * FS  # fd is out of its 4 s warm-up and converged by then
AFTER_S = 2.0     # the issue: full separation again within 2 s after the fault ends
FAULTS = ("nan_burst", "stuck_clipped_block", "dead_channel_0.5s", "silence_0.3s", "jump_+20dB_0.5s")
#: (background, seed): real speech ("it") over pink noise or music, cond 5, instantaneous
MIXTURES = (("pink", 3), ("music", 5))


def _inject(x: np.ndarray, fault: str) -> tuple[np.ndarray, int]:
    """A copy of x with the fault at T_FAULT; returns it and the sample where the fault ends."""
    y, f0 = x.copy(), T_FAULT
    if fault == "nan_burst":
        y[f0:f0 + 200] = np.nan
        return y, f0 + 200
    if fault == "stuck_clipped_block":
        y[f0:f0 + 1000] = 1.0
        return y, f0 + 1000
    if fault == "dead_channel_0.5s":
        y[f0:f0 + FS // 2, 1] = 0.0
        return y, f0 + FS // 2
    if fault == "silence_0.3s":
        y[f0:f0 + int(0.3 * FS)] = 0.0
        return y, f0 + int(0.3 * FS)
    assert fault == "jump_+20dB_0.5s"
    y[f0:f0 + FS // 2] *= 10.0
    return y, f0 + FS // 2


@functools.lru_cache(maxsize=None)
def _mixture(bg: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(x (n, 2), voice image at mic 1 (n,)), long enough for the latest window plus fd's latency."""
    from rtsep.material import speech

    seconds = 9
    n = seconds * FS
    talker = speech.talker("it", seconds, seed=seed)
    background = signals.pink_noise(n, seed) if bg == "pink" else signals.music_like(n, FS, seed)
    x, images = instantaneous_mix(talker, background, 5, seed)
    return x, images[0]


@functools.lru_cache(maxsize=None)
def _clean_voice(engine: str, bg: str, seed: int) -> np.ndarray:
    return Separator(FS, engine=engine).process(_mixture(bg, seed)[0])[0]


def _window_sdr(voice: np.ndarray, image: np.ndarray, end: int, lat: int) -> float:
    """SDR (dB) of the voice output against the voice image, half a second ending at input sample `end`."""
    a = end - FS // 2
    y = voice[a + lat:end + lat].astype(np.float64)
    ref = image[a:end]
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((y - ref) ** 2)))


def _recovery(engine: str, fault: str) -> list[tuple[str, float, float]]:
    """Per mixture: (name, fault-free SDR, faulty SDR) in the window ending AFTER_S after the fault."""
    rows = []
    for bg, seed in MIXTURES:
        x, image = _mixture(bg, seed)
        faulty, end = _inject(x, fault)
        sep = Separator(FS, engine=engine)
        lat = sep.latency_samples
        v = sep.process(faulty)[0]
        win_end = end + int(AFTER_S * FS)
        rows.append((f"{bg}/{seed}", _window_sdr(_clean_voice(engine, bg, seed), image, win_end, lat),
                     _window_sdr(v, image, win_end, lat)))
    return rows


def _known(reason: str):
    return pytest.mark.xfail(strict=True, reason=reason)


# Measured (window ending 2 s after the fault, SDR faulty - fault-free, dB, on pink/3 and music/5):
#   td: nan -0.1/-0.0, stuck -0.0/-0.0, dead -0.2/+0.0, silence +0.0/+0.0, jump -1.2/-1.9
#       (before the fault gate: stuck -9.1/-8.4, dead -17.1/-10.2; a mic repeating one value,
#       or 40 dB below the other, is now not learnt from at all, see TdParams.stuck_s/dead_mic_db)
#   fd: nan -0.0/+0.0, stuck -0.1/-0.5, dead -0.5/-0.7, silence -0.0/-0.3, jump -0.3/-0.7
#       (before its fault gates: stuck -29.9/-1.7, dead -18.8/-5.2, jump -21.0/-12.9)
# The fault-free runs score 17.7-28.8 dB in these windows, the mixtures -3..+3 dB.
# On 14 s versions of these mixtures (windows ending 0.5-7 s after the fault):
# td was back after 2.5-5 s (stuck block) and 2.5-6.5 s (dead mic) before the fault gate; fd's stuck block
# (pink/3), dead mic (pink/3) and level jump are not back 7 s after the fault.
_CASES = [
    pytest.param("td", "nan_burst"),
    pytest.param("td", "stuck_clipped_block"),
    pytest.param("td", "dead_channel_0.5s"),
    pytest.param("td", "silence_0.3s"),
    pytest.param("td", "jump_+20dB_0.5s"),
    pytest.param("fd", "nan_burst"),
    pytest.param("fd", "stuck_clipped_block"),
    pytest.param("fd", "dead_channel_0.5s"),
    pytest.param("fd", "silence_0.3s"),
    pytest.param("fd", "jump_+20dB_0.5s"),
]


@pytest.mark.skipif(NO_JIT, reason="seconds of audio; run compiled")
@pytest.mark.parametrize("engine, fault", _CASES)
def test_separation_is_back_2_s_after_a_fault(engine, fault):
    require_speech()
    rows = _recovery(engine, fault)
    for name, clean, faulty in rows:
        print(f"{engine} {fault:22s} {name:8s} fault-free {clean:5.1f} dB, faulty {faulty:5.1f} dB "
              f"({faulty - clean:+.1f}) in the 0.5 s ending {AFTER_S:g} s after the fault")
    for name, clean, faulty in rows:
        # measured (fd, post-filter on) pink/3 10.4-13.1 dB, music/5 14.5-17.6 in these
        # windows; 21-30 dB with the post-filter off: its leakage floor (a quarter of the
        # background output's power) is calibrated on rooms, and these instantaneous
        # mixtures separate far better; its noise tracker, the voice's own floor since
        # it replaced the minimum statistics (which gave pink/3 13.3-15.2), takes 2-3 dB more
        assert clean > 10.0, f"{name}: the fault-free run does not separate ({clean:.1f} dB)"
        assert faulty > clean - 3.0, f"{name}: {faulty:.1f} dB vs {clean:.1f} dB without the fault"


@pytest.mark.skipif(NO_JIT, reason="seconds of audio; run compiled")
def test_fd_a_loud_burst_below_clipping_is_shrunk_and_forgotten_within_2_s():
    """+20 dB for 0.5 s on a quiet (-30 dBFS) stream: nothing clips, so only the loudness gate sees it."""
    require_speech()
    x, image = _mixture("pink", 3)
    quiet = x * 0.03
    faulty = quiet.copy()
    faulty[T_FAULT:T_FAULT + FS // 2] *= 10.0
    assert np.abs(faulty).max() < 0.999
    sep = Separator(FS, engine="fd")
    v = sep.process(faulty)[0] / 0.03
    clean = Separator(FS, engine="fd").process(quiet)[0] / 0.03
    info = sep.info()
    assert info["loud_frames_shrunk"] >= 10 and info["faulty_frames_skipped"] == 0
    end = T_FAULT + FS // 2 + int(AFTER_S * FS)
    lat = sep.latency_samples
    before, after = _window_sdr(clean, image, end, lat), _window_sdr(v, image, end, lat)
    print(f"fd quiet +20 dB burst: {before:.1f} dB fault-free, {after:.1f} dB 2 s after")
    # measured 11.9 and 11.7 dB (14.7 and 12.5 with the post-filter's minimum statistics:
    # see the pink/3 windows above)
    assert before > 10.0 and after > before - 3.0
