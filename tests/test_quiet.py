"""The voice alone in a quiet room (rtsep.kernels.quiet): the voice output takes back what follows it."""

from __future__ import annotations

import numpy as np
import pytest

from rtsep.kernels.quiet import BLEND, MEAN_LOUD, MEAN_QUIET, new_params, new_state, quiet_frames

K, T = 40, 3000  # bins, frames (48 s at a 16 ms hop)


def _params(**kw) -> np.ndarray:
    a = dict(start=250.0, step=0.2, mem=250.0, min_frames=31.0, d_lo=10.0, d_hi=12.0, r_lo=0.6, r_hi=0.7, ramp=1 / 31,
             k_lo=2, k_hi=30)
    return new_params(**{**a, **kw})


def _gauss(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)


def _talking(rng: np.random.Generator, period: int) -> np.ndarray:
    """(T,) amplitude of a talker: syllables of random loudness (0 to -20 dB), pauses 30 dB down."""
    syl = 10 ** (-rng.uniform(0, 20, T // period + 1) / 20)
    on = (np.arange(T) // period) % 3 != 0
    return np.where(on, np.repeat(syl, period)[:T], 10 ** (-30 / 20))


def _outputs(background: str, seed: int) -> np.ndarray:
    """(T, 2, K): output 0 a voice; output 1 its reverberation (what follows it, 6 dB down), a steady
    noise, or a second talker on its own rhythm, each as loud as the voice's mean."""
    rng = np.random.default_rng(seed)
    voice = _talking(rng, 13)
    img = np.empty((T, 2, K), np.complex128)
    img[:, 0] = voice[:, None] * _gauss(rng, (T, K))
    if background == "reverberation":
        tail = np.convolve(voice, 0.5 * 0.7 ** np.arange(20))[:T]
        img[:, 1] = tail[:, None] * _gauss(rng, (T, K))
    elif background == "steady noise":
        img[:, 1] = 0.5 * _gauss(rng, (T, K))
    else:
        img[:, 1] = _talking(rng, 17)[:, None] * _gauss(rng, (T, K))
    return img


def _run(img: np.ndarray, q: int = 0, **params) -> tuple[np.ndarray, np.ndarray]:
    out = img.copy()
    st = new_state()
    quiet_frames(out, q, st, _params(**params), np.empty(len(out)))
    return out, st


def test_what_rises_and_falls_with_the_voice_is_given_back_to_it_and_the_pair_stays_the_mic():
    img = _outputs("reverberation", 0)
    out, st = _run(img)
    assert st[BLEND] == 1.0
    np.testing.assert_allclose(out.sum(axis=1), img.sum(axis=1), atol=1e-12)
    np.testing.assert_allclose(out[-500:, 0], img[-500:].sum(axis=1), atol=1e-12)  # the voice is the mic
    assert np.all(out[-500:, 1] == 0)


@pytest.mark.parametrize("background", ["steady noise", "a second talker"])
def test_a_background_that_keeps_its_own_course_is_left_alone(background: str):
    img = _outputs(background, 1)
    out, st = _run(img)
    assert st[BLEND] == 0.0
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_half_a_second_of_frames_of_each_kind_gives_the_voice_back_within_five_seconds(seed: int):
    """Frames are read from frame 250; with 2 s of each kind asked, as before, the blend took 8.8-13.8 s."""
    img = _outputs("reverberation", seed)
    blend = np.empty(T)
    quiet_frames(img.copy(), 0, new_state(), _params(), blend)
    assert blend[-1] == 1.0 and np.argmax(blend >= 1.0) - 250 < 320  # measured 137-285 frames
    quiet_frames(img.copy(), 0, new_state(), _params(min_frames=125.0), blend)
    assert blend[-1] == 1.0 and np.argmax(blend >= 1.0) - 250 > 500


def test_levels_that_do_not_rise_and_fall_together_are_not_given_back():
    """Δ alone is not enough: the two outputs' levels must also be correlated (here asked over 0.95)."""
    img = _outputs("reverberation", 0)
    out, st = _run(img, r_lo=0.95, r_hi=0.99)
    assert st[MEAN_LOUD] - st[MEAN_QUIET] > 12.0  # Δ alone would blend wholly
    assert st[BLEND] == 0.0
    np.testing.assert_array_equal(out, img)


def test_the_blend_serves_the_output_the_label_names():
    img = _outputs("reverberation", 2)[:, ::-1].copy()
    out, st = _run(img, q=1)
    assert st[BLEND] == 1.0
    np.testing.assert_allclose(out[-500:, 1], img[-500:].sum(axis=1), atol=1e-12)


def test_nothing_is_read_before_the_start():
    img = _outputs("reverberation", 3)
    out, st = _run(img[:240])
    assert st[BLEND] == 0.0 and st[1] == 0.0
    np.testing.assert_array_equal(out, img[:240])


@pytest.mark.parametrize("cut", [1, 7, 97])
def test_the_blend_does_not_depend_on_how_the_frames_are_handed_in(cut: int):
    img = _outputs("reverberation", 4)
    whole, _ = _run(img)
    out = img.copy()
    st = new_state()
    for a in range(0, T, cut):
        quiet_frames(out[a:a + cut], 0, st, _params(), np.empty(len(out[a:a + cut])))
    np.testing.assert_array_equal(out, whole)
