"""The audio material: real speech, generated backgrounds, mixing, and the demo clip."""

from __future__ import annotations

import numpy as np
import pytest

from rtsep.material import music, signals, speech
from rtsep.errors import ConfigError, DependencyError, InputFormatError

FS = 16000
N = 8 * FS

needs_speech = pytest.mark.skipif(
    not speech.available(),
    reason="real speech needs asterisk-core-sounds-it-g722, asterisk-core-sounds-ru-g722 "
    "(apt-get install) and the Python package G722 (pip install G722)",
)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


# --- real speech ---------------------------------------------------------------------


@needs_speech
@pytest.mark.parametrize("lang", ["it", "ru"])
def test_prompt_files_are_sorted_spoken_g722_files(lang: str) -> None:
    files = speech.prompt_files(lang)
    assert len(files) > 500
    assert files == sorted(files)
    assert all(p.suffix == ".g722" for p in files)
    assert not any("silence" in p.parts for p in files)


@needs_speech
def test_loaded_prompt_is_16khz_float32_within_unit_range() -> None:
    path = next(p for p in speech.prompt_files("it") if p.name == "vm-nobodyavail.g722")
    x = speech.load_prompt(path)
    assert x.dtype == np.float32 and x.ndim == 1
    # G.722 at 64 kbit/s carries two 16 kHz samples per byte.
    assert 0.9 * 2 * path.stat().st_size <= len(x) <= 2 * path.stat().st_size
    assert 0.05 < np.abs(x).max() <= 1.0


def test_trimming_drops_leading_and_trailing_silence_but_keeps_a_50_ms_margin() -> None:
    rng = np.random.default_rng(0)
    floor = 1e-4 * rng.standard_normal(FS)
    x = np.concatenate([floor, 0.1 * rng.standard_normal(FS), floor]).astype(np.float32)
    trimmed = speech._trim(x)
    assert len(trimmed) / FS == pytest.approx(1.1, abs=0.011)
    assert speech._trim(floor.astype(np.float32)).size == 0


@needs_speech
def test_loaded_prompt_is_a_private_copy_of_the_cache() -> None:
    path = speech.prompt_files("it")[0]
    x = speech.load_prompt(path)
    x[:] = 0
    assert np.any(speech.load_prompt(path) != 0)


@needs_speech
@pytest.mark.parametrize("lang", ["it", "ru"])
def test_talker_has_requested_length_and_rms_0_1(lang: str) -> None:
    x = speech.talker(lang, 3.25, seed=2)
    assert x.shape == (round(3.25 * FS),) and x.dtype == np.float32
    assert _rms(x) == pytest.approx(0.1, rel=1e-4)


@needs_speech
def test_talker_resamples_to_the_requested_rate_with_exact_length() -> None:
    x = speech.talker("ru", 1.7, seed=0, fs=44100)
    assert x.shape == (round(1.7 * 44100),)
    assert _rms(x) == pytest.approx(0.1, rel=1e-4)


@needs_speech
def test_talker_is_deterministic_per_seed() -> None:
    first, again = speech.talker("it", 4.0, seed=5), speech.talker("it", 4.0, seed=5)
    np.testing.assert_array_equal(first, again)


@needs_speech
@pytest.mark.parametrize("lang", ["it", "ru"])
def test_talkers_with_different_seeds_say_different_things(lang: str) -> None:
    a, b = speech.talker(lang, 6.0, seed=0), speech.talker(lang, 6.0, seed=1)
    # Different utterances, not a shifted or scaled copy: low normalised correlation.
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.1


@needs_speech
def test_speech_is_clearly_more_super_gaussian_than_music_and_pink_noise() -> None:
    music = signals.excess_kurtosis(signals.music_like(20 * FS, FS, seed=0))
    pink = signals.excess_kurtosis(signals.pink_noise(20 * FS, seed=0))
    assert music < 1.5 and abs(pink) < 0.3
    for lang in ("it", "ru"):
        k = signals.excess_kurtosis(speech.talker(lang, 20.0, seed=0))
        assert k > music + 1.0 and k > pink + 1.0, (lang, k, music, pink)


def test_talker_rejects_an_unknown_language_with_a_config_error() -> None:
    with pytest.raises(ConfigError, match="language"):
        speech.talker("en", 1.0)


def test_missing_speech_packages_raise_a_dependency_error_naming_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setattr(speech, "SOUNDS_ROOT", tmp_path)
    speech._prompt_files.cache_clear()
    try:
        assert not speech.available("it")
        with pytest.raises(DependencyError, match="apt-get install asterisk-core-sounds-it-g722"):
            speech.prompt_files("it")
    finally:
        speech._prompt_files.cache_clear()


# --- the shipped demo clip -------------------------------------------------------------


def test_demo_clip_loads_without_debian_packages_as_a_few_seconds_of_16khz_speech() -> None:
    x, fs = speech.demo_clip()
    assert fs == 16000
    assert x.dtype == np.float32 and x.ndim == 1
    assert 5.0 <= len(x) / fs <= 10.0
    assert 0.05 < _rms(x) < 0.2 and np.abs(x).max() < 1.0


# --- generated backgrounds -------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [lambda n, s: signals.pink_noise(n, s), lambda n, s: signals.music_like(n, FS, s)],
    ids=["pink_noise", "music_like"],
)
def test_generated_backgrounds_have_requested_length_rms_and_are_seeded(make) -> None:
    x = make(N + 3, 1)
    assert x.shape == (N + 3,) and x.dtype == np.float32
    assert _rms(x) == pytest.approx(0.1, rel=1e-4)
    np.testing.assert_array_equal(x, make(N + 3, 1))
    assert not np.array_equal(x, make(N + 3, 2))


def test_music_like_is_sub_to_near_gaussian() -> None:
    for seed in range(3):
        assert -1.5 < signals.excess_kurtosis(signals.music_like(10 * FS, FS, seed)) < 0.5


def test_music_like_works_at_48khz_without_aliasing_harmonics() -> None:
    x = signals.music_like(2 * 48000, 48000, seed=0)
    assert x.shape == (96000,) and np.isfinite(x).all()


def test_pink_noise_power_falls_about_3_db_per_octave() -> None:
    x = signals.pink_noise(2**18, seed=0).astype(np.float64)
    power = np.abs(np.fft.rfft(x)) ** 2
    band = lambda lo: power[lo : 2 * lo].mean()  # noqa: E731
    slope_db = 10 * np.log10(band(4096) / band(256)) / 4  # four octaves
    assert slope_db == pytest.approx(-3.0, abs=0.5)


@needs_speech
@pytest.mark.parametrize("make", [signals.babble, signals.cafe])
def test_speech_backgrounds_have_requested_length_rms_and_are_seeded(make) -> None:
    x = make(4 * FS, FS, 0)
    assert x.shape == (4 * FS,) and x.dtype == np.float32
    assert _rms(x) == pytest.approx(0.1, rel=1e-4)
    np.testing.assert_array_equal(x, make(4 * FS, FS, 0))


@needs_speech
def test_babble_of_many_talkers_is_closer_to_gaussian_than_one_talker() -> None:
    one = signals.excess_kurtosis(speech.talker("it", 10.0, seed=0))
    many = signals.excess_kurtosis(signals.babble(10 * FS, FS, seed=0))
    assert many < one


# --- mixing ----------------------------------------------------------------------------


@pytest.mark.parametrize("cond", [1.0, 1.5, 3.0, 10.0, 100.0, 1e4])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_mixing_matrix_has_exactly_the_requested_condition_number(cond: float, seed: int) -> None:
    A = signals.mixing_matrix(cond, seed)
    assert A.shape == (2, 2)
    assert np.linalg.cond(A) == pytest.approx(cond, rel=1e-6)


@pytest.mark.parametrize("cond", [1.2, 3.0, 1e3])
def test_mixing_matrix_gains_are_positive_with_no_weak_column(cond: float) -> None:
    for seed in range(20):
        A = signals.mixing_matrix(cond, seed)
        assert (A > 0).all()
        assert np.linalg.norm(A, axis=0).min() > 0.4 * np.linalg.norm(A, 2)


def test_mixing_matrix_differs_across_seeds_and_repeats_per_seed() -> None:
    np.testing.assert_array_equal(signals.mixing_matrix(5.0, 3), signals.mixing_matrix(5.0, 3))
    assert not np.allclose(signals.mixing_matrix(5.0, 3), signals.mixing_matrix(5.0, 4))


def test_mixing_matrix_rejects_a_condition_number_below_one() -> None:
    with pytest.raises(ConfigError):
        signals.mixing_matrix(0.5, 0)


def test_mix_gives_each_mic_the_weighted_sum_of_sources_as_float64() -> None:
    rng = np.random.default_rng(0)
    s = rng.standard_normal((100, 2)).astype(np.float32)
    A = np.array([[1.0, 0.5], [0.25, 2.0]])
    x = signals.mix(s, A)
    assert x.shape == (100, 2) and x.dtype == np.float64
    np.testing.assert_allclose(x[:, 1], 0.25 * s[:, 0] + 2.0 * s[:, 1], rtol=1e-6)


def test_mix_rejects_mismatched_shapes_with_an_input_format_error() -> None:
    with pytest.raises(InputFormatError):
        signals.mix(np.zeros((10, 3)), np.eye(2))


def test_excess_kurtosis_is_zero_for_gaussian_and_minus_1_5_for_a_sine() -> None:
    rng = np.random.default_rng(0)
    assert signals.excess_kurtosis(rng.standard_normal(200_000)) == pytest.approx(0.0, abs=0.05)
    sine = np.sin(2 * np.pi * np.arange(16000) * 50 / 16000)
    assert signals.excess_kurtosis(sine) == pytest.approx(-1.5, abs=1e-6)


# --- real music ----------------------------------------------------------------------


@pytest.mark.skipif(not music.available("asc/frontiers"),
                    reason="real music needs the Debian package asc-music (bash tools/dev.sh setup as root)")
def test_a_music_excerpt_without_a_length_runs_to_the_end_of_the_track() -> None:
    whole = music.load("asc/frontiers", 300.0, None, FS)
    assert 100 * FS < whole.size < 200 * FS  # the MP3 lasts about 441 s
    np.testing.assert_array_equal(music.load("asc/frontiers", 300.0, 2 * FS, FS), whole[:2 * FS])
    with pytest.raises(ConfigError):
        music.load("asc/frontiers", 300.0, whole.size + 1, FS)
