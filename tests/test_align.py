"""Band alignment in steady noise (rtsep.kernels.align): the voice of each bin goes to the output whose level moves."""

from __future__ import annotations

import numpy as np
import pytest

from rtsep.kernels.align import EARLY_SUBS, align_frames, new_params, new_state

K, LO = 48, 2  # bins, first bin that takes part
HALF = K // 2
SUB = 16  # frames per sub-window of the early room (step 5)


def _params(**kw) -> np.ndarray:
    a = dict(a_short=np.exp(-1 / 8), a_var=np.exp(-1 / 60), s_steady=1.5, steady_frac=0.5, margin=0.25,
             hold=20, start=100, k_lo=LO, swap=1, room_start=30, a_room=np.exp(-1 / 60),
             early_until=0, early_sub=SUB, early_spread=2.2, early_keep=3.0, early_top=K, a_early=np.exp(-1 / 3))
    return new_params(**{**a, **kw})


def _gauss(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)


def _voice_like(rng: np.random.Generator, t: int, k: int, level: float) -> np.ndarray:
    """A source that talks: one syllable-like on/off envelope shared by every bin (30 dB of swing)."""
    env = np.where((np.arange(t) // 12) % 3 == 0, 10 ** (-30 / 20), 1.0)
    return level * env[:, None] * _gauss(rng, (t, k))


def _images(rng: np.random.Generator, t: int, steady: bool) -> np.ndarray:
    """Two outputs (t, 2, K) whose upper bins are permuted: output 0 holds the voice below HALF only.

    The voice is 10 dB louder below HALF than above, as speech is: its power names its output.
    """
    voice = _voice_like(rng, t, K, 3.0)
    voice[:, HALF:] *= 10 ** (-10 / 20)
    other = 0.5 * _gauss(rng, (t, K)) if steady else _voice_like(rng, t, K, 0.5)[::-1]
    img = np.empty((t, 2, K), np.complex128)
    img[:, 0, :HALF], img[:, 1, :HALF] = voice[:, :HALF], other[:, :HALF]
    img[:, 0, HALF:], img[:, 1, HALF:] = other[:, HALF:], voice[:, HALF:]
    return img


def _align(seed: int, steady: bool, frames: int = 600, **params) -> tuple[np.ndarray, ...]:
    """(images after, images before, state, out) of one fresh stream of :func:`_images` through the kernel."""
    img = _images(np.random.default_rng(seed), frames, steady)
    before = img.copy()
    st, out = new_state(K), np.zeros(2, np.int64)
    room = np.full(frames, -1, np.int64)
    align_frames(img, st, out, room, _params(**params))
    return img, before, st, out, room


def test_in_steady_noise_the_permuted_bins_are_given_back_to_the_voice_output():
    img, before, st, out, _ = _align(0, steady=True)
    assert out[1] == K - HALF  # exactly the permuted bins, and every one of them
    np.testing.assert_array_equal(st[6, HALF:], 1.0)
    np.testing.assert_array_equal(st[6, :HALF], 0.0)
    # at the end the voice output holds the moving source in every bin, and the pair is still the pair
    np.testing.assert_array_equal(img[-1, 0, HALF:], before[-1, 1, HALF:])
    np.testing.assert_array_equal(img[-1, 1, HALF:], before[-1, 0, HALF:])
    np.testing.assert_array_equal(img[:, :, :HALF], before[:, :, :HALF])
    np.testing.assert_array_equal(img.sum(axis=1), before.sum(axis=1))  # voice + background unchanged


def test_no_bin_changes_before_the_start_frame_nor_before_it_is_wanted_for_hold_frames():
    img, before, _, _, _ = _align(1, steady=True, start=300, hold=40)
    changed = np.flatnonzero(np.any(img[:, 0, :] != before[:, 0, :], axis=1))
    # frame t (from 0) is the (t + 1)-th seen: wanted from t = 299, made after 40 frames of it
    assert changed.size and changed[0] >= 300 - 1 + 40 - 1


def test_where_both_outputs_move_nothing_is_swapped():
    """Music, babble or a second talker: two moving sources are the joint model's to order, not this step's."""
    img, before, _, out, room = _align(2, steady=False)
    assert out[0] == 0 and out[1] == 0
    np.testing.assert_array_equal(room, 0)
    np.testing.assert_array_equal(img, before)


def test_digital_silence_is_not_read_as_a_steady_room():
    img = np.zeros((400, 2, K), np.complex128)
    st, out, room = new_state(K), np.zeros(2, np.int64), np.full(400, -1, np.int64)
    align_frames(img, st, out, room, _params(start=1, room_start=1))
    assert st[8, 0] == 0 and out[0] == 0
    np.testing.assert_array_equal(room, 0)


@pytest.mark.parametrize("cut", [1, 7, 97])
def test_the_swaps_do_not_depend_on_how_the_frames_are_handed_in(cut: int):
    rng = np.random.default_rng(3)
    img = _images(rng, 500, steady=True)
    whole = img.copy()
    room_whole, room = np.zeros(500, np.int64), np.zeros(500, np.int64)
    align_frames(whole, new_state(K), np.zeros(2, np.int64), room_whole, _params())
    st, out = new_state(K), np.zeros(2, np.int64)
    for a in range(0, len(img), cut):
        align_frames(img[a:a + cut], st, out, room[a:a + cut], _params())
    np.testing.assert_array_equal(img, whole)
    np.testing.assert_array_equal(room, room_whole)


def test_the_room_gate_names_the_voice_output_from_the_first_seconds_and_swap_0_only_tells():
    """The steady-noise beam's gate (rtsep.kernels.beam): steady, voice on output 0 (the louder half of its
    bins), long before the swaps may start; with swap=0 the images are left alone."""
    img, before, st, out, room = _align(0, steady=True, swap=0)
    np.testing.assert_array_equal(img, before)
    assert out[1] == 0 and np.all(st[6] == 0)
    # the spreads settle within a few of their memories (60 frames), well before start (100)
    assert np.all(room[100:] == 1)
    assert np.all(room[:29] == 0) and np.mean(room[29:100] == 1) > 0.5


def _unseparated(seed: int, t: int, steady: bool) -> np.ndarray:
    """Two outputs (t, 2, K) that are both half of the mic, as the demixers' first frames give them.

    The mic: a talker who pauses for half of every sub-window (30 dB down), over a steady
    noise 20 dB under the talker, or over a second talker who speaks in some sub-windows
    (5 dB under the first) and is silent in the others (35 dB under), at random.
    """
    rng = np.random.default_rng(seed)
    env = np.where((np.arange(t) % SUB) < SUB // 2, 10 ** (-30 / 20), 1.0)
    voice = env[:, None] * _gauss(rng, (t, K))
    if steady:
        level = np.full(t, 10 ** (-20 / 20))
    else:
        level = np.repeat(np.where(rng.random(t // SUB + 1) < 0.5, 10 ** (-5 / 20), 10 ** (-35 / 20)), SUB)[:t]
    mic = voice + level[:, None] * _gauss(rng, (t, K))
    return np.stack([0.5 * mic, 0.5 * mic], axis=1)


def _early_room(seed: int, steady: bool, frames: int = 700, **params) -> np.ndarray:
    img = _unseparated(seed, frames, steady)
    room = np.full(frames, -1, np.int64)
    align_frames(img, new_state(K), np.zeros(2, np.int64), room, _params(**{"swap": 0, "early_until": 500, **params}))
    return room


def test_before_the_outputs_separate_a_steady_floor_at_the_mic_tells_the_room_steady_until_early_until():
    room = _early_room(0, steady=True)
    # the first frame (counted from 1) at which EARLY_SUBS sub-windows have closed after the first one
    first = (EARLY_SUBS + 1) * SUB
    assert np.all(room[:first - 1] == 0)
    assert np.all(room[first - 1:499] == 3)
    assert np.all(room[499:] == 0)  # the outputs never separate here, and the early room is over


def test_a_floor_that_moves_with_a_second_talker_is_never_told_steady_early():
    room = _early_room(0, steady=False)
    np.testing.assert_array_equal(room, 0)


def test_the_early_room_is_off_at_early_until_0_and_gives_way_to_the_outputs_own_gate():
    np.testing.assert_array_equal(_early_room(0, steady=True, early_until=0), 0)
    # separated outputs over a steady noise: the outputs' own gate speaks (1) from its start on
    _, _, _, _, room = _align(0, steady=True, swap=0, early_until=500)
    assert np.all(room[100:] == 1)
