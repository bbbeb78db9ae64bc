"""The Python API: construction, validation and block handling."""

from __future__ import annotations

import numpy as np
import pytest

from rtsep import RtsepError, Separator, separate

from rtsep.material import signals
from rtsep.errors import ConfigError, InputFormatError

from .conftest import FS


@pytest.mark.parametrize("kwargs, needle", [
    ({"fs": 4000}, "fs"),
    ({"fs": FS, "channels": 1}, "at least 2 microphones"),
    ({"fs": FS, "channels": 9}, "channels"),
    ({"fs": FS, "engine": "magic"}, "engine"),
    ({"fs": FS, "memory_s": 0}, "memory_s"),
    ({"fs": FS, "update_every": 0}, "update_every"),
    ({"fs": FS, "ref_mic": 2}, "ref_mic"),
    ({"fs": FS, "voice": 5}, "voice"),
    ({"fs": FS, "sources": 3}, "sources"),
    ({"fs": FS, "bogus": 1}, "unknown parameter"),
])
def test_bad_parameters_are_refused_with_a_message_naming_the_value_and_range(kwargs, needle):
    with pytest.raises(ConfigError) as exc:
        Separator(**kwargs)
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("block, needle", [
    (np.zeros(10), "mono"),
    (np.zeros((10, 1)), "mono"),
    (np.zeros((10, 3)), "shape (frames, 2)"),
    (np.zeros((10, 2), dtype=complex), "dtype"),
])
def test_blocks_of_the_wrong_shape_or_type_are_refused(block, needle):
    with pytest.raises(InputFormatError) as exc:
        Separator(FS).process(block)
    assert needle in str(exc.value)
    assert isinstance(exc.value, RtsepError)


def test_int16_blocks_are_scaled_to_full_scale_floats():
    x = (np.random.default_rng(0).standard_normal((1000, 2)) * 3000).astype(np.int16)
    v_int, _ = Separator(FS).process(x)
    v_float, _ = Separator(FS).process(x.astype(np.float64) / 32768.0)
    np.testing.assert_allclose(v_int, v_float, atol=1e-7)


def test_more_microphones_than_sources_keeps_the_top_two_principal_components():
    rng = np.random.default_rng(3)
    n = 4 * FS
    # a syllabic talker (what the voice label recognises) against steady noise
    s = np.stack([signals.syllables(n, FS, 3), rng.uniform(-0.17, 0.17, n)], 1)
    a = rng.uniform(0.3, 1.0, (4, 2))
    x = s @ a.T + 1e-4 * rng.standard_normal((n, 4))
    v, b = Separator(FS, channels=4).process(x)
    h = n // 2
    img = s[h:, 0] * a[0, 0]
    leak = v[h:] - img
    # error energy includes the sensor noise, so this is an SDR: measured 22.7 dB
    assert 10 * np.log10(np.sum(img ** 2) / np.sum(leak ** 2)) > 20  # voice ≈ the talker's image
    assert b.shape == v.shape == (n,)


def test_pinned_voice_label_never_changes():
    rng = np.random.default_rng(4)
    n = 3 * FS
    s = np.stack([rng.uniform(-1, 1, n), rng.laplace(size=n)], 1) * 0.1
    x = s @ np.array([[1, 0.5], [0.5, 1]]).T
    sep = Separator(FS, voice=0)
    sep.process(x)
    assert sep.info()["voice"] == 0
    auto = Separator(FS)
    auto.process(x)
    info = auto.info()
    # auto: the output with the talker's syllabic modulation
    assert info["modulation_db"][info["voice"]] == max(info["modulation_db"])


def test_separate_returns_arrays_aligned_with_the_input():
    x = np.random.default_rng(5).standard_normal((5000, 2)) * 0.1
    v, b = separate(x, FS)
    assert v.shape == b.shape == (5000,)
