"""Changing scenes: a talker who jumps or walks in a simulated room, a slowly rotating mixture.

Rooms come from pyroomacoustics (image-source method, RT60 measured); a
moving talker is rendered in 50 ms segments crossfaded with Hann windows,
each convolved with the responses of the position the talker has then
(:func:`rtsep.material.rooms.simulate_moving_talker`). Separation over time is the
BSS-Eval SIR improvement of the voice output on 1 s windows, end-stamped
(a value at t uses audio up to t only).
"""

from __future__ import annotations

import functools
import importlib.util

import numpy as np
import pytest

from rtsep import Separator

from rtsep.material import signals
from rtsep.metrics import sliding_sir_improvement, time_to_reach

from .conftest import FS, NO_JIT, require_speech

pytestmark = pytest.mark.skipif(NO_JIT, reason="seconds of audio in rooms; run compiled")


def _require_rooms() -> None:
    if importlib.util.find_spec("pyroomacoustics") is None:
        pytest.skip("room simulation needs pyroomacoustics (a test dependency: pip install -e .[test])")
    require_speech()


@functools.lru_cache(maxsize=None)
def _scene(kind: str, seed: int, seconds: int, start: float, end: float, sweep: float = 90.0):
    from rtsep.material import speech
    from rtsep.material.rooms import simulate_moving_talker

    n = seconds * FS
    talker = speech.talker("it", seconds, seed=seed)
    background = signals.music_like(n, FS, seed) if kind == "music" else signals.pink_noise(n, seed)
    return simulate_moving_talker(talker, background, FS, 0.3, sweep_deg=sweep, move_start_s=start,
                                  move_end_s=end, seed=seed, spacing=0.05, talker_dist=0.7,
                                  background_dist=1.6)


def _stream(room, sep: Separator, block: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Stream the room through sep in blocks; (outputs aligned with the input (2, n - latency), labels per block)."""
    n = room.mix.shape[0]
    out, labels = [], []
    for a in range(0, n, block):
        out.append(np.stack(sep.process(room.mix[a:a + block])))
        labels.append(sep.info()["voice"])
    return np.concatenate(out, axis=1)[:, sep.latency_samples:], np.array(labels)


def _voice_sir(room, y: np.ndarray, start_s: float, end_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Voice SIR improvement on 1 s windows (hop 0.25 s) of [start_s, end_s]; (end times (s), dB)."""
    a, b = int(start_s * FS), min(int(end_s * FS), y.shape[1])
    t, sir = sliding_sir_improvement(y[:, a:b], room.images[:, a:b, 0], room.mix[a:b, 0], FS, 1.0, 0.25)
    return t + start_s, sir[0]


def test_time_to_reach_counts_from_the_first_window_that_holds_the_level():
    t = np.arange(1, 11) * 0.25
    v = np.array([0, 9, 0, 9, 9, 9, 9, 9, 0, 9.0])
    assert time_to_reach(t, v, 5.0, hold=4) == 1.0      # windows 4..8 all >= 5
    assert time_to_reach(t, v, 5.0, hold=5) == np.inf   # never 6 in a row
    assert time_to_reach(t, v, 5.0) == 2.5              # to the end: only the last window


# ---------------------------------------------------------------- the room simulation itself


def test_a_moving_talker_is_rendered_as_crossfaded_segments_that_sum_to_the_mixture():
    _require_rooms()
    from rtsep.material.rooms import simulate_moving_talker, simulate_room

    n = 3 * FS
    rng = np.random.default_rng(0)
    talker, background = rng.standard_normal(n), rng.standard_normal(n)
    still = simulate_room(talker, background, FS, 0.3, seed=4)
    walk = simulate_moving_talker(talker, background, FS, 0.3, sweep_deg=60, move_start_s=1.0,
                                  move_end_s=2.0, seed=4)
    np.testing.assert_allclose(walk.mix, walk.images.sum(axis=0))
    assert abs(walk.rt60_measured - 0.3) <= 0.05 * 0.3
    # before the walk the talker is heard as in the still room (up to the
    # absorption, recalibrated for more responses)
    before = slice(FS // 10, FS // 2)
    for m in range(2):
        assert np.corrcoef(walk.images[0, before, m], still.images[0, before, m])[0, 1] > 0.98
    # after it the inter-mic delay of the talker has changed (the direction turned)
    def lag(seg):
        a, b = walk.images[0, seg, 0], walk.images[0, seg, 1]
        c = np.correlate(a, b, "full")
        return int(np.argmax(c)) - (len(a) - 1)

    assert lag(slice(0, FS)) != lag(slice(2 * FS + FS // 4, 3 * FS))


# ---------------------------------------------------------------- fd in rooms


@pytest.mark.heavy
def test_fd_relearns_the_room_within_2_s_after_the_talker_jumps():
    """The talker jumps 90° around the array at 8 s (RT60 0.3 s, 5 cm mics), 8 rooms.

    Back = the voice SIR improvement (1 s windows of audio after the jump
    only) stays within 3 dB of its median over the 3 s before the jump for
    1 s. Judged on the separated voice (post-filter off): the relearning is
    the demixers' and the label's; the post-filter's gain on a well-separated
    voice raises the level before the jump more than the one after it (the
    speech-presence filter: pink/3 4 dB above the single-floor one before
    the jump, 1-4 dB after, and "within 3 dB" never held). Measured: back
    after 1.0, 1.0, 1.0, 1.0, 2.0, 2.5 and 2.5 s in 7 of 8 rooms (median
    1.5 s; about 6 s without the scene check); in music/3 even an engine
    started afresh after the jump loses the talker from 11 s on.
    """
    _require_rooms()
    times = []
    for kind in ("music", "pink"):
        for seed in (1, 2, 3, 4):
            room = _scene(kind, seed, 14, 8.0, 8.0)
            sep = Separator(FS, engine="fd", suppress_db=0)
            y, labels = _stream(room, sep)
            t, sir = _voice_sir(room, y, 5.0, 8.0)
            before = float(np.median(sir))
            t, sir = _voice_sir(room, y, 8.0, 14.0)
            times.append(time_to_reach(t, sir, before - 3.0, hold=4) - 8.0)  # stays 1 s (4 hops)
            print(f"{kind}/{seed}: {before:.1f} dB before the jump, back after {times[-1]:.2f} s, "
                  f"scene restarts {sep.info()['scene_restarts']}")
    assert np.median(times) <= 2.0
    assert np.sum(np.array(times) <= 3.0) >= 6


@pytest.mark.heavy
def test_fd_follows_a_talker_walking_through_the_room_without_flapping_labels():
    """The talker walks 90° around the array from 6 to 10 s (about 1.1 m in 4 s)."""
    _require_rooms()
    room = _scene("music", 1, 16, 6.0, 10.0)
    sep = Separator(FS, engine="fd")
    y, labels = _stream(room, sep)
    t, sir = _voice_sir(room, y, 2.0, 16.0)
    moves = np.count_nonzero(np.diff(labels[int(2.0 * FS / 256):]))
    print("voice SIR improvement (dB) per second:", np.round(sir[::4], 1), "label moves", moves,
          "scene restarts", sep.info()["scene_restarts"])
    assert np.median(sir[(t > 3.0) & (t <= 6.0)]) >= 6.0
    assert moves <= 1
    assert np.median(sir[t > 14.0]) >= 6.0


# ---------------------------------------------------------------- td, instantaneous


def test_td_follows_a_slowly_changing_mixture():
    """The 2×2 mixing glides from one matrix to another over 10 s: no restart needed, no dip.

    Measured: voice SIR improvement 29-50 dB on every 1 s window from 3 s
    on, while the mixing glides (2-12 s) and after.
    """
    require_speech()
    from rtsep.material import speech

    seconds = 14
    n = seconds * FS
    s = np.stack([speech.talker("it", seconds, seed=2), signals.music_like(n, FS, 2)], 1)
    a1, a2 = signals.mixing_matrix(5, 2), signals.mixing_matrix(5, 9)
    f = np.clip((np.arange(n) / FS - 2.0) / 10.0, 0.0, 1.0)[:, None, None]
    a = (1.0 - f) * a1 + f * a2  # (n, 2, 2): the mixing at each sample
    x = np.einsum("nij,nj->ni", a, s)
    images = np.stack([a[:, 0, 0] * s[:, 0], a[:, 0, 1] * s[:, 1]])
    sep = Separator(FS)
    v, b = sep.process(x)
    tt, sir = sliding_sir_improvement(np.stack([v, b]), images, x[:, 0], FS, 1.0, 0.5)
    print("td SIR improvement while the mixing glides:", np.round(sir[0], 1))
    assert np.min(sir[0][tt >= 3.0]) >= 20.0
