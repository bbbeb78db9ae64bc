"""Robustness: hostile streams (property-based), resumable state, file formats."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtsep import Separator

from rtsep.material import signals, speech
from rtsep.cli import main
from rtsep.errors import ConfigError

from .conftest import FS, NO_JIT, stream


def _mixture(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = np.stack([rng.laplace(size=n), rng.uniform(-1, 1, n)], 1) * 0.1
    return signals.mix(s, np.array([[1.0, 0.6], [0.5, 1.0]]))


@st.composite
def hostile_stream(draw):
    """A 1.5 s mixture with random faults and a random cutting into blocks."""
    n = int(1.5 * FS)
    x = _mixture(n, draw(st.integers(0, 3)))
    level_db = draw(st.floats(-120, 20))
    x = x * 10 ** (level_db / 20)
    for _ in range(draw(st.integers(0, 3))):
        a = draw(st.integers(0, n - 1))
        b = min(n, a + draw(st.integers(1, FS // 4)))
        kind = draw(st.sampled_from(["nan", "inf", "dc", "clip", "silence", "dead", "same", "swap", "jump"]))
        seg = x[a:b]
        if kind == "nan":
            seg[:, draw(st.integers(0, 1))] = np.nan
        elif kind == "inf":
            seg[0, 0] = np.inf
        elif kind == "dc":
            seg += draw(st.floats(-1, 1))
        elif kind == "clip":
            np.clip(seg * 100, -1, 1, out=seg)
        elif kind == "silence":
            seg[:] = 0
        elif kind == "dead":
            seg[:, 1] = 0
        elif kind == "same":
            seg[:, 1] = seg[:, 0]
        elif kind == "swap":
            seg[:] = seg[:, ::-1].copy()
        elif kind == "jump":
            seg *= 1000.0
    sizes = draw(st.lists(st.integers(0, 3000), min_size=1, max_size=20))
    return x, sizes


@pytest.mark.skipif(NO_JIT, reason="many seconds of audio per example; run compiled")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_stream())
def test_process_never_raises_never_outputs_nan_and_answers_every_sample(case):
    x, sizes = case
    if sum(sizes) == 0:
        sizes = sizes + [1]
    sep = Separator(FS)
    v, b = stream(sep, x, sizes)
    assert v.shape == b.shape == (x.shape[0],)
    assert np.isfinite(v).all() and np.isfinite(b).all()
    bad = ~np.isfinite(x)
    assert sep.stats.nonfinite == int(bad.sum())
    # never louder than the loudest finite input by more than the image-power guard allows
    peak = np.abs(np.where(bad, 0, x)).max()
    assert np.abs(v).max() <= 4 * peak + 1e-6


@pytest.mark.skipif(NO_JIT, reason="seconds of audio; run compiled")
@pytest.mark.parametrize("fault", ["nan_burst", "stuck_clipped_block", "dead_channel_0.5s"])
def test_separation_recovers_after_a_fault(fault):
    """Samples of a mic that repeats one value (dead zeros, a stuck block)
    are not learnt from, so the statistics are the fault-free ones when the
    fault ends. Measured (faulty - fault-free SDR in the half second ending
    1 s after the fault): 0.0 dB for all three; before that fault gate, the
    stuck block was -3.4 dB and the dead mic -17.8 dB (back after 3 s)."""
    n = 10 * FS
    rng = np.random.default_rng(0)
    s = np.stack([rng.laplace(size=n), rng.uniform(-1, 1, n)], 1) * 0.1
    x = signals.mix(s, np.array([[1.0, 0.6], [0.5, 1.0]]))
    f0, f1 = 4 * FS, 4 * FS + FS // 2
    faulty = x.copy()
    if fault == "nan_burst":
        faulty[f0:f0 + 200] = np.nan
    elif fault == "stuck_clipped_block":
        faulty[f1 - 1000:f1] = 1.0
    else:
        faulty[f0:f1, 1] = 0
    clean_v, _ = Separator(FS).process(x)
    v, _ = Separator(FS).process(faulty)
    after = slice(f1 + FS - FS // 2, f1 + FS)  # the half second ending 1 s after the fault

    def sdr(y):
        err = y[after] - s[after, 0]
        return 10 * np.log10(np.sum(s[after, 0] ** 2) / np.sum(err ** 2))

    assert sdr(clean_v) > 18
    assert sdr(v) > sdr(clean_v) - 3


@pytest.mark.skipif(NO_JIT, reason="seconds of audio; run compiled")
@pytest.mark.parametrize("fault", ["dead_zeros", "dead_noise_floor", "stuck_one_mic"])
def test_a_dead_or_stuck_mic_is_not_learnt_from_and_is_counted(fault):
    """The statistics stay exactly as they were while a mic is dead or stuck.

    Zeros and a stuck value are caught after ``stuck_s`` (8 samples), a mic
    at a -80 dB noise floor once its 2 ms power is 40 dB below the other's
    (~25 ms: the high-pass rings out the step to the floor first).
    """
    n = 4 * FS
    rng = np.random.default_rng(2)
    s = np.stack([rng.laplace(size=n), rng.uniform(-1, 1, n)], 1) * 0.1
    x = signals.mix(s, np.array([[1.0, 0.6], [0.5, 1.0]]))
    f0, f1 = 2 * FS, 2 * FS + FS // 2
    if fault == "dead_zeros":
        x[f0:f1, 1] = 0.0
    elif fault == "dead_noise_floor":
        x[f0:f1, 1] = 1e-5 * rng.standard_normal(f1 - f0)
    else:
        x[f0:f1, 0] = 0.7
    sep = Separator(FS)
    eng = sep.engine
    grace = FS // 2000 + 1 if fault != "dead_noise_floor" else FS // 25  # time to notice
    sep.process(x[:f0 + grace])
    frozen = {k: eng.state_arrays()[k] for k in ("cov", "m4", "cov_f", "m4_f")}
    sep.process(x[f0 + grace:f1])
    for k, val in frozen.items():
        np.testing.assert_array_equal(eng.state_arrays()[k], val, err_msg=k)
    sep.process(x[f1:])
    info = sep.info()
    skipped = info["stuck_samples_skipped"] + info["dead_mic_samples_skipped"]
    assert f1 - f0 - grace <= skipped <= f1 - f0 + FS // 20  # plus the high-pass ring-out (37 ms)
    if fault == "dead_noise_floor":
        assert info["dead_mic_samples_skipped"] >= f1 - f0 - grace
    # a fault-free stream skips nothing, and the cut into blocks does not matter
    clean = Separator(FS)
    clean.process(signals.mix(s, np.array([[1.0, 0.6], [0.5, 1.0]])))
    assert clean.info()["stuck_samples_skipped"] == clean.info()["dead_mic_samples_skipped"] == 0
    whole = Separator(FS).process(x)[0]
    np.testing.assert_array_equal(stream(Separator(FS), x, [1, 31, 700, 5])[0], whole)


def _speech_over_music(seconds: int = 14):
    """Real speech ('it' seed 3) over music (seed 3), cond 5: the talker has a
    quiet stretch at 10-11 s in which the 0.5 s cumulants are mostly noise."""
    from rtsep.material import speech

    n = seconds * FS
    s = np.stack([speech.talker("it", seconds, seed=3), signals.music_like(n, FS, 3)], 1)
    a = signals.mixing_matrix(5, 3)
    return signals.mix(s, a), s[:, 0] * a[0, 0]


def _sdr_per_half_second(v: np.ndarray, image: np.ndarray, start: int) -> np.ndarray:
    h = FS // 2
    return np.array([10 * np.log10(np.sum(image[i:i + h] ** 2) / np.sum((v[i:i + h] - image[i:i + h]) ** 2))
                     for i in range(start, image.shape[0] - h + 1, h)])


@pytest.mark.skipif(NO_JIT, reason="seconds of audio; run compiled")
def test_a_fault_free_mixture_raises_no_change_and_stays_separated():
    """Measured: voice SDR 19-31 dB per half second from 8 s on, no change.
    Before the detector asked for an absolute contrast gain (0.25), the best
    angle of near-Gaussian short-window cumulants (contrast 0.03 → 0.06)
    raised two false changes at 10.5 and 11.2 s: -2.8 … -5.9 dB to the end."""
    from .conftest import require_speech

    require_speech()
    x, image = _speech_over_music()
    sep = Separator(FS)
    v = stream(sep, x, [FS // 2])[0].astype(np.float64)
    sdr = _sdr_per_half_second(v, image, 8 * FS)
    print("voice SDR per 0.5 s from 8 s:", np.round(sdr, 1))
    assert sep.info()["changes_detected"] == 0
    assert sdr.min() > 15.0


@pytest.mark.skipif(NO_JIT, reason="seconds of audio; run compiled")
@pytest.mark.xfail(strict=True, reason="known limitation of the speech-evidence label: after two forced false "
                   "restarts the talker lands on the other output, whose fresh demixer gives it only 2 dB of "
                   "syllabic modulation over this generated music; the label follows 6 s after the second "
                   "restart (17.5 s, measured), past this 14 s stream (the kurtosis label took 3.5 s)")
def test_after_a_detected_change_the_voice_is_the_talker_again():
    """A restart may hand the talker to the other output; the label must follow
    it there (with the kurtosis label it never came back: -4 dB to the end).
    Forced here by a detector without a least contrast gain (it fires twice,
    falsely)."""
    from .conftest import require_speech

    require_speech()
    x, image = _speech_over_music()
    sep = Separator(FS, change_min_gain=0.0)
    v = stream(sep, x, [FS // 2])[0].astype(np.float64)
    sdr = _sdr_per_half_second(v, image, 8 * FS)
    print("voice SDR per 0.5 s from 8 s:", np.round(sdr, 1))
    assert sep.info()["changes_detected"] >= 1
    assert sdr[-2:].min() > 15.0


def test_resuming_from_saved_state_gives_the_same_output_as_never_stopping():
    x = _mixture(3 * FS, 7)
    whole_v, whole_b = Separator(FS).process(x)
    first = Separator(FS)
    v1, b1 = first.process(x[:12345])
    saved = pickle.loads(pickle.dumps(first.state()))
    second = Separator.from_state(saved)
    v2, b2 = second.process(x[12345:])
    np.testing.assert_array_equal(np.concatenate([v1, v2]), whole_v)
    np.testing.assert_array_equal(np.concatenate([b1, b2]), whole_b)
    assert second.stats.samples == x.shape[0]


def test_loading_a_state_into_a_different_configuration_is_refused():
    state = Separator(FS).state()
    state["channels"] = 3
    with pytest.raises(ConfigError, match="same channels"):
        Separator.from_state(state)
    with pytest.raises(ConfigError, match="not a saved rtsep state"):
        Separator.from_state({"fs": FS})


@pytest.mark.parametrize("fmt, subtype", [
    ("WAV", "PCM_U8"), ("WAV", "PCM_16"), ("WAV", "PCM_24"), ("WAV", "PCM_32"),
    ("WAV", "FLOAT"), ("WAV", "DOUBLE"), ("FLAC", "PCM_16"), ("FLAC", "PCM_24"), ("OGG", "VORBIS"),
])
def test_every_common_file_format_is_read_separated_and_written_back_in_its_sample_format(tmp_path, fmt, subtype):
    x = (_mixture(FS, 1) * 0.5).astype(np.float32)
    ext = {"WAV": "wav", "FLAC": "flac", "OGG": "ogg"}[fmt]
    path = tmp_path / f"in.{ext}"
    sf.write(path, x, FS, format=fmt, subtype=subtype)
    assert main(["replay", str(path), "-o", str(tmp_path / "o"), "-q", "--engine", "td"]) == 0
    v, fs = sf.read(tmp_path / "o" / "voice.wav")
    assert fs == FS and v.shape[0] == sf.info(str(path)).frames
    assert np.isfinite(v).all() and np.abs(v).max() > 0.01
    # written in the input's own sample format; decoded lossy audio as float
    assert sf.info(str(tmp_path / "o" / "voice.wav")).subtype == {"VORBIS": "FLOAT"}.get(subtype, subtype)


@pytest.mark.parametrize("fs", [8000, 22050, 44100, 48000, 96000])
def test_sample_rates_from_8_to_96_khz_are_processed_at_their_own_rate(tmp_path, fs):
    x = (_mixture(fs // 2, 2) * 0.5).astype(np.float32)
    path = tmp_path / "in.wav"
    sf.write(path, x, fs)
    assert main(["replay", str(path), "-o", str(tmp_path / "o"), "-q", "--engine", "td"]) == 0
    assert sf.info(str(tmp_path / "o" / "background.wav")).samplerate == fs


def test_a_truncated_file_is_processed_up_to_the_damage_and_outputs_stay_valid(tmp_path, capsys):
    x = (_mixture(2 * FS, 3) * 0.5).astype(np.float32)
    path = tmp_path / "cut.wav"
    sf.write(path, x, FS, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header still claims 2 s
    code = main(["replay", str(path), "-o", str(tmp_path / "o"), "-q", "--engine", "td"])
    err = capsys.readouterr().err
    assert len([ln for ln in err.splitlines() if ln.strip()]) <= 1 and "Traceback" not in err
    assert code in (0, 3)
    v, _ = sf.read(tmp_path / "o" / "voice.wav")
    assert v.shape[0] > 0 and np.isfinite(v).all()


def test_a_file_with_a_corrupt_body_gives_one_line(tmp_path, capsys):
    path = tmp_path / "bad.flac"
    sf.write(path, (_mixture(FS, 4) * 0.5).astype(np.float32), FS, format="FLAC")
    raw = bytearray(path.read_bytes())
    raw[200:4000] = bytes(range(256)) * 15 + bytes(range(200))
    path.write_bytes(bytes(raw))
    code = main(["replay", str(path), "-o", str(tmp_path / "o"), "-q", "--engine", "td"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code != 0:
        assert err.startswith("rtsep: error:") and len(err.strip().splitlines()) == 1


@pytest.mark.heavy
@pytest.mark.skipif(NO_JIT, reason="seconds of audio; run compiled")
def test_separation_reconverges_after_an_abrupt_change_of_mixing():
    """Talker + background, the 2×2 mixing jumps to another at 8 s.

    Measured (music/pink/babble × 2 seeds): 20 dB SIR improvement again after
    1.0–2.5 s, median 1.1 s, with the change detector (1.0–3.75 s without).
    """
    from rtsep.material import speech
    from rtsep.metrics import sliding_sir_improvement

    from .conftest import require_speech

    require_speech()
    t_total, t_switch = 12, 8
    n, sw = t_total * FS, t_switch * FS
    times = []
    for kind, seed in (("music", 2), ("pink", 2), ("babble", 1)):
        v = speech.talker("it", t_total, seed=seed)
        b = {"music": lambda: signals.music_like(n, FS, seed), "pink": lambda: signals.pink_noise(n, seed),
             "babble": lambda: signals.babble(n, FS, seed)}[kind]()
        a1, a2 = signals.mixing_matrix(5, seed), signals.mixing_matrix(5, seed + 7)
        s = np.stack([v, b], 1).astype(np.float64)
        x = np.concatenate([signals.mix(s[:sw], a1), signals.mix(s[sw:], a2)])
        images = np.concatenate([s[:sw] * a1[0], s[sw:] * a2[0]]).T
        vo, bo = Separator(FS).process(x)
        seg = slice(sw, sw + 4 * FS)
        t, sir = sliding_sir_improvement(np.stack([vo, bo])[:, seg], images[:, seg], x[seg, 0], FS, 1.0, 0.25)
        ok = sir[0] >= 20
        times.append(float(t[np.argmax(ok)]) if ok.any() else np.inf)
    print("re-convergence times (s):", times)
    assert np.median(times) <= 2.0
    assert max(times) <= 3.0


@pytest.mark.skipif(NO_JIT, reason="seconds of audio; run compiled")
def test_the_voice_is_the_talker_again_soon_after_the_mic_cables_are_swapped():
    """The demixer still separates after the swap, but its outputs may trade sources.

    The kurtosis label stayed on the wrong output for > 8 s (issue 7). The
    swap is not a change of mixing the detector sees (the separation stays
    right), so the label follows on evidence alone: once the output that lost
    the talker stops modulating like one (3 s memory) and the other leads for
    the hold (1.5 s). Measured: 6.3 s, one move.
    """
    from .conftest import require_speech

    require_speech()
    n, sw = 14 * FS, 6 * FS
    talk = speech.talker("it", 14.0, seed=6).astype(np.float64)
    s = np.stack([talk, signals.pink_noise(n, 3).astype(np.float64)], 1)
    a = np.array([[1.0, 0.6], [0.5, 1.0]])
    x = np.concatenate([signals.mix(s[:sw], a), signals.mix(s[sw:], a[::-1])])  # cables swapped
    sep = Separator(FS)
    labels, voice = [], []
    for start in range(0, n, 512):
        voice.append(sep.process(x[start:start + 512])[0])
        labels.append(sep.info()["voice"])
    v = np.concatenate(voice)
    win = FS // 2
    follows = np.array([abs(np.corrcoef(v[i:i + win], talk[i:i + win])[0, 1]) > 0.9
                        for i in range(0, n, win)])
    assert follows[2 * FS // win:sw // win].all()            # before the swap: the talker
    t_back = np.flatnonzero(~follows[sw // win:])[-1] + 1 if not follows[sw // win:].all() else 0
    print(f"voice is the talker again {t_back * win / FS:.1f} s after the swap")
    assert t_back * win <= 7 * FS
    after = np.array(labels[sw // 512:])
    assert np.count_nonzero(np.diff(after)) == 1               # one label move, no flapping
