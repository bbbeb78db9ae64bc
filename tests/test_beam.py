"""The steady-noise beam (rtsep.kernels.beam): in a steady room the voice output takes an MVDR beam's output."""

from __future__ import annotations

import numpy as np
import pytest

from rtsep.kernels.beam import MISC, N_NOISE, N_SPEECH, beam_frames, new_params, new_state

K, T = 12, 2400  # bins, frames (about 38 s at a 16 ms hop)
TAIL = slice(T - 800, T)


def _params(**kw) -> np.ndarray:
    a = dict(a_smooth=0.7, rise=10 ** (20 / 10 / 62.5), bias=1.5, noise_ratio=2.0, speech_ratio=10.0, speech_white=5.0,
             noise_mem=300.0, speech_mem=200.0, min_noise=50.0, min_speech=20.0, ramp=1 / 30, k_lo=1,
             two_count=0.2, frac_lo=0.3, frac_hi=0.5)
    return new_params(**{**a, **kw})


def _gauss(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)


def _scene(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two mics (T, 2, K): a talking voice (on/off, 30 dB of swing) from one direction, a steady
    noise from another plus a little diffuse noise. Returns (mics, the voice's image at mic 0,
    the outputs of a poor separation: the voice with 0.3 of the noise's amplitude left, and the rest)."""
    rng = np.random.default_rng(seed)
    k = np.arange(K)
    d_voice = np.stack([np.ones(K), 0.9 * np.exp(-1j * 0.2 * k)])        # (2, K)
    d_noise = np.stack([np.ones(K), 1.1 * np.exp(1j * 0.35 * k)])
    env = np.where((np.arange(T) // 15) % 3 == 0, 10 ** (-30 / 20), 1.0)
    s = 2.0 * env[:, None] * _gauss(rng, (T, K))
    nz = _gauss(rng, (T, K))
    x = s[:, None, :] * d_voice[None] + nz[:, None, :] * d_noise[None] + 0.05 * _gauss(rng, (T, 2, K))
    img = np.empty((T, 2, K), np.complex128)
    img[:, 0] = s + 0.3 * (x[:, 0] - s)
    img[:, 1] = x[:, 0] - img[:, 0]
    return x, s, img


def _diffuse_scene(seed: int, second_talker: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two mics (T, 2, K): the voice of :func:`_scene` over a diffuse steady noise (independent at
    each mic, as a room's reverberant noise nearly is), with or without a second talker from another
    direction that comes and goes on its own rhythm, as loud as the voice. The separation left the
    voice output 0.3 of the noise's amplitude and none of the talker, as the demixers do with a
    directional source. Returns (mics, the voice's image at mic 0, the outputs)."""
    rng = np.random.default_rng(seed)
    k = np.arange(K)
    d_voice = np.stack([np.ones(K), 0.9 * np.exp(-1j * 0.2 * k)])
    d_talker = np.stack([np.ones(K), -0.9 * np.exp(-1j * 0.2 * k)])  # orthogonal to the voice's in every bin
    s = 2.0 * np.where((np.arange(T) // 15) % 3 == 0, 10 ** (-30 / 20), 1.0)[:, None] * _gauss(rng, (T, K))
    talker = 2.0 * np.where((np.arange(T) // 11) % 2 == 0, 1.0, 10 ** (-30 / 20))[:, None] * _gauss(rng, (T, K))
    nz = _gauss(rng, (T, 2, K))
    x = s[:, None, :] * d_voice[None] + nz + (talker[:, None, :] * d_talker[None] if second_talker else 0.0)
    img = np.empty((T, 2, K), np.complex128)
    img[:, 0] = s + 0.3 * nz[:, 0]
    img[:, 1] = x[:, 0] - img[:, 0]
    return x, s, img


def _beam(x: np.ndarray, img: np.ndarray, room: np.ndarray, **params) -> tuple[np.ndarray, np.ndarray]:
    out = img.copy()
    st, cov = new_state(K)
    beam_frames(x, out, room, st, cov, _params(**params))
    return out, st


def _err_db(y: np.ndarray, s: np.ndarray) -> float:
    return 10 * np.log10(np.sum(np.abs(y[TAIL, 1:] - s[TAIL, 1:]) ** 2) / np.sum(np.abs(s[TAIL, 1:]) ** 2))


def test_in_a_steady_room_the_voice_output_takes_the_beam_and_the_pair_stays_the_mic():
    x, s, img = _scene(0)
    out, st = _beam(x, img, np.ones(T, np.int64))
    assert st[MISC, 0] == 1.0  # fully blended in
    # the separation left the noise about 10 dB down; the beam nulls the steady noise's direction
    assert _err_db(img[:, 0], s) > -16.0
    assert _err_db(out[:, 0], s) < _err_db(img[:, 0], s) - 6.0
    np.testing.assert_allclose(out.sum(axis=1), img.sum(axis=1), atol=1e-12)
    np.testing.assert_array_equal(out[:, :, 0], img[:, :, 0])  # under k_lo, as it was


def test_over_a_steady_noise_alone_the_voice_frames_hold_one_source():
    x, _, img = _diffuse_scene(6, second_talker=False)
    out, st = _beam(x, img, np.ones(T, np.int64))
    assert st[MISC, 2] < 0.3 and st[MISC, 3] == 1.0  # the beam wholly in
    assert np.all(out[TAIL, :, 1:] != img[TAIL, :, 1:])


def test_a_second_source_that_comes_and_goes_keeps_the_beam_out():
    """A steady floor under a second talker passes the room gate, but the beam would let the talker
    through: its loud frames are not noise-only, so R_n misses it (bench/VOICECALL.md, "A second
    talker over a steady noise")."""
    x, s, img = _diffuse_scene(7, second_talker=True)
    room = np.ones(T, np.int64)
    unguarded, _ = _beam(x, img, room, frac_hi=0.0)
    assert _err_db(unguarded[:, 0], s) > _err_db(img[:, 0], s) + 3.0  # what the check is for
    out, st = _beam(x, img, room)
    assert st[MISC, 2] > 0.5 and st[MISC, 3] == 0.0
    np.testing.assert_array_equal(out[TAIL], img[TAIL])  # the demixers' outputs, untouched


def test_the_beam_follows_the_output_the_room_gate_names():
    x, s, img = _scene(1)
    out, _ = _beam(x, img[:, ::-1].copy(), np.full(T, 2, np.int64))
    assert _err_db(out[:, 1], s) < _err_db(img[:, 0], s) - 6.0


def test_out_of_a_steady_room_nothing_changes_but_the_statistics_are_kept():
    x, _, img = _scene(2)
    out, st = _beam(x, img, np.zeros(T, np.int64))
    np.testing.assert_array_equal(out, img)
    assert st[MISC, 0] == 0.0 and np.all(st[N_NOISE, 1:] > 0) and np.all(st[N_SPEECH, 1:] > 0)


def test_the_blend_ramps_in_and_out_with_the_gate():
    x, _, img = _scene(3)
    room = np.zeros(T, np.int64)
    room[600:1200] = 1
    out, st = _beam(x, img, room)
    assert st[MISC, 0] == 0.0
    np.testing.assert_array_equal(out[:600], img[:600])
    np.testing.assert_array_equal(out[1230:], img[1230:])  # gone 30 frames after the gate closed
    assert np.any(out[600:1200] != img[600:1200])


def test_the_beam_does_not_depend_on_which_output_the_demixers_put_a_bins_voice_on():
    """A block permutation (the voice of half the bins on the background output) must not reach the
    beam's statistics: told from the voice output's floor alone, the voice's frames counted as noise
    there and the beam cancelled the voice (held-out pink room 4, bench/VOICECALL.md)."""
    x, s, img = _scene(5)
    swapped = img.copy()
    swapped[:, :, K // 2:] = img[:, ::-1, K // 2:]
    room = np.ones(T, np.int64)
    out, st = _beam(x, img, room)
    out_sw, st_sw = _beam(x, swapped, room)
    np.testing.assert_array_equal(st_sw[N_NOISE:], st[N_NOISE:])
    # once wholly blended in, the voice output is the beam's alone, whatever the demixers did
    np.testing.assert_allclose(out_sw[TAIL, 0], out[TAIL, 0], rtol=0, atol=1e-12)
    assert _err_db(out_sw[:, 0], s) < _err_db(img[:, 0], s) - 6.0


@pytest.mark.parametrize("cut", [1, 7, 97])
def test_the_beam_does_not_depend_on_how_the_frames_are_handed_in(cut: int):
    x, _, img = _scene(4)
    room = np.ones(T, np.int64)
    room[:300] = 0
    whole, _ = _beam(x, img, room)
    out = img.copy()
    st, cov = new_state(K)
    for a in range(0, T, cut):
        beam_frames(x[a:a + cut], out[a:a + cut], room[a:a + cut], st, cov, _params())
    np.testing.assert_array_equal(out, whole)
