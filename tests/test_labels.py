"""Specs of the voice label: the output called "voice" carries the talker, on real material.

The label reads speech evidence (2-8 Hz syllabic modulation per band; between two
talkers the level at the reference mic) and moves only on seconds of consistent
lead. Quality claims here rest on real recorded speech (Debian's Asterisk prompts)
against real produced music (Debian's drascula-music); generated signals only check
mechanics (pin, swap, counting, the kernel against its reference).
"""

from __future__ import annotations

import numpy as np
import pytest

from rtsep import Separator

from rtsep.material import music, signals, speech
from rtsep.metrics import sliding_sir_improvement

from .conftest import FS, NO_JIT, instantaneous_mix, require_speech
from .naive import modulation_reference

def require_music(spec: str) -> None:
    """Skip (with the reason) when a real music track is not installed."""
    if not music.available(spec):
        package = music.LIBRARIES[spec.partition("/")[0]][2]
        pytest.skip(f"real music {spec} needs the Debian package {package} (bash tools/dev.sh setup as root)")


def _stream(sep: Separator, x: np.ndarray, block: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Outputs aligned with the input (2, n) and the voice index after each block."""
    lat = sep.latency_samples
    xz = np.concatenate([x, np.zeros((lat, x.shape[1]))])
    out, labels = [], []
    for i in range(0, len(xz), block):
        out.append(np.stack(sep.process(xz[i:i + block])))
        labels.append(sep.info()["voice"])
    return np.concatenate(out, axis=1)[:, lat:lat + len(x)].astype(np.float64), np.array(labels)


def _voice_share(out: np.ndarray, images: np.ndarray, mic: np.ndarray, from_s: float = 2.0) -> float:
    """Share of 1 s windows (hop 0.5 s, ending ≥ from_s) in which the voice output beats the mic on SIR."""
    t, sir = sliding_sir_improvement(out, images, mic, FS, window_s=1.0, hop_s=0.5)
    return float(np.mean(sir[0, t >= from_s] > 0.0))


def _moves(labels: np.ndarray, block: int = 256, after_s: float = 1.0) -> int:
    return int(np.count_nonzero(np.diff(labels[int(after_s * FS / block):])))


@pytest.fixture(scope="module")
def talker_over_real_music():
    require_speech()
    require_music("drascula/track22")
    n = 30 * FS
    voice = speech.talker("it", 30.0, seed=5).astype(np.float64)
    # impulsive, dynamic produced music (excess kurtosis ≈ 10): the kurtosis label took it for the voice
    bg = music.load("drascula/track22", 5.0, n)
    bg *= np.std(voice) / np.std(bg)
    return voice, bg


@pytest.mark.heavy
@pytest.mark.skipif(NO_JIT, reason="tens of seconds of audio; run compiled")
@pytest.mark.parametrize("engine", ["td", "fd"])
def test_over_real_music_the_voice_output_is_the_talker_for_30_s(talker_over_real_music, engine):
    """td: instantaneous mixture (cond 10); fd: a simulated room (RT60 0.3 s, 5 cm)."""
    voice, bg = talker_over_real_music
    if engine == "td":
        x, images = instantaneous_mix(voice, bg, 10.0, seed=4)
    else:
        from rtsep.material.rooms import import_pyroomacoustics, simulate_room

        import_pyroomacoustics()
        room = simulate_room(voice, bg, FS, rt60=0.3, spacing=0.05, talker_dist=0.8, background_dist=1.8, seed=3)
        x, images = room.mix, room.images[:, :, 0]
    sep = Separator(FS, engine=engine)
    out, labels = _stream(sep, x)
    share = _voice_share(out, images, x[:, 0])
    # what the demixer allows: the better output pinned as the voice all along
    pinned = max(_voice_share(_stream(Separator(FS, engine=engine, voice=k), x)[0], images, x[:, 0]) for k in (0, 1))
    print(f"{engine}: voice share {share:.2f} (better output pinned {pinned:.2f}), label moves {_moves(labels)}")
    assert share >= pinned - 0.03  # the label loses at most a window or two to its first decision
    assert share >= (0.95 if engine == "td" else 0.85)  # measured 1.00 (td) and 0.93 (fd, = pinned)
    assert _moves(labels) <= 1
    assert sep.info()["label_moves"] == _moves(labels)


@pytest.mark.heavy
@pytest.mark.skipif(NO_JIT, reason="tens of seconds of audio; run compiled")
def test_a_talker_pausing_for_2_s_over_music_does_not_move_the_label(talker_over_real_music):
    voice, bg = talker_over_real_music
    voice = voice[:20 * FS].copy()
    voice[10 * FS:12 * FS] = np.random.default_rng(0).standard_normal(2 * FS) * 1e-4  # room tone only
    x, images = instantaneous_mix(voice, bg[:20 * FS], 10.0, seed=4)
    sep = Separator(FS, engine="td")
    out, labels = _stream(sep, x)
    assert _moves(labels) == 0
    assert sep.info()["label_moves"] == 0
    # and the output called voice is the talker again after the pause
    t, sir = sliding_sir_improvement(out, images, x[:, 0], FS, window_s=1.0, hop_s=0.5)
    assert np.all(sir[0, t >= 13.0] > 10.0)


@pytest.mark.heavy
@pytest.mark.skipif(NO_JIT, reason="tens of seconds of audio; run compiled")
@pytest.mark.parametrize("louder", ["it", "ru"])
def test_between_two_talkers_the_voice_is_the_louder_one_at_the_reference_mic(louder):
    """Instantaneous: the near talker is the one whose image at the reference mic is the strongest."""
    require_speech()
    it = speech.talker("it", 20.0, seed=2).astype(np.float64)
    ru = speech.talker("ru", 20.0, seed=3).astype(np.float64)
    near, far = (it, ru) if louder == "it" else (ru, it)
    x, images = instantaneous_mix(near, far * 10 ** (-6 / 20), 5.0, seed=7)
    sep = Separator(FS, engine="td")
    out, labels = _stream(sep, x)
    share = _voice_share(out, images, x[:, 0])
    print(f"near talker {louder}: voice share {share:.2f}, moves {_moves(labels)}")
    assert share >= 0.9
    assert _moves(labels) <= 1


@pytest.mark.heavy
@pytest.mark.skipif(NO_JIT, reason="tens of seconds of audio; run compiled")
def test_in_a_room_the_voice_is_the_near_talker():
    require_speech()
    from rtsep.material.rooms import import_pyroomacoustics, simulate_room

    import_pyroomacoustics()
    it = speech.talker("it", 20.0, seed=2).astype(np.float64)
    ru = speech.talker("ru", 20.0, seed=3).astype(np.float64)
    room = simulate_room(ru, it, FS, rt60=0.4, spacing=0.05, talker_dist=0.5, background_dist=2.0, seed=5,
                         sir_db=3.0)
    sep = Separator(FS, engine="fd")
    out, labels = _stream(sep, room.mix)
    share = _voice_share(out, room.images[:, :, 0], room.mix[:, 0])
    print(f"room, near ru vs far it: voice share {share:.2f}, moves {_moves(labels)}")
    assert share >= 0.9


#: the fd engine in plain Python runs at ~10x real time: its mechanics specs run compiled only
ENGINES = ["td", pytest.param("fd", marks=pytest.mark.skipif(NO_JIT, reason="fd in plain Python is ~10x slower "
                                                                           "than real time; run compiled"))]


def _syllables_over_noise(seconds: float = 4.0) -> np.ndarray:
    n = int(seconds * FS)
    s = np.stack([signals.syllables(n, FS, 1), signals.pink_noise(n, 2)], axis=1).astype(np.float64)
    return signals.mix(s, np.array([[1.0, 0.6], [0.5, 1.0]]))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_pinned_voice_never_moves(engine):
    x = _syllables_over_noise()
    for output in (0, 1):
        sep = Separator(FS, engine=engine, voice=output)
        _, labels = _stream(sep, x)
        assert set(labels.tolist()) == {output}
        assert sep.info()["label_moves"] == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_swap_voice_calls_the_other_output_the_voice_at_once_and_keeps_it(engine):
    x = _syllables_over_noise()
    half = len(x) // 2
    # the post-filter off: it changes the voice only, and the sum is checked below
    sep = Separator(FS, engine=engine, suppress_db=0)
    v1, b1 = sep.process(x[:half])
    before = sep.info()["voice"]
    assert sep.swap_voice() == 1 - before
    v2, b2 = sep.process(x[half:half + 1024])
    assert sep.info()["voice"] == 1 - before  # within one evidence frame (16 ms)
    v3, b3 = sep.process(x[half + 1024:])
    assert sep.info()["voice"] == 1 - before  # pinned: the evidence does not take it back
    # the crossfaded swap keeps voice + background = the reference mic, and is click-free
    s = np.concatenate([v1, v2, v3]).astype(np.float64) + np.concatenate([b1, b2, b3])
    lat = sep.latency_samples
    ref = Separator(FS, engine=engine, voice=0, suppress_db=0)
    r = np.add(*[o.astype(np.float64) for o in ref.process(x)])
    np.testing.assert_allclose(s, r, atol=1e-5)
    v = np.concatenate([v1, v2, v3])
    step = np.abs(np.diff(v[half + lat - 8:half + lat + 1024]))
    assert step.max() < 4 * np.abs(np.diff(v[lat:])).max() + 1e-9


def test_a_saved_state_keeps_the_users_pin():
    x = _syllables_over_noise(2.0)
    sep = Separator(FS)
    sep.process(x[:FS])
    sep.swap_voice()
    resumed = Separator.from_state(sep.state())
    np.testing.assert_array_equal(np.stack(resumed.process(x[FS:])), np.stack(sep.process(x[FS:])))
    assert resumed.info()["voice"] == sep.info()["voice"]


@pytest.mark.heavy
@pytest.mark.skipif(NO_JIT, reason="14 s of audio; run compiled")
@pytest.mark.parametrize("engine", ["td", "fd"])
def test_when_the_talker_moves_to_the_other_output_the_label_follows_once_and_reports_it(engine):
    """The two sources trade characters at 6 s (same mixing): the syllabic one is now the other output."""
    n, sw = 14 * FS, 6 * FS
    talk, noise = signals.syllables(n, FS, 5).astype(np.float64), signals.pink_noise(n, 6).astype(np.float64)
    s = np.stack([talk, noise], 1)
    s[sw:] = s[sw:, ::-1]
    x = signals.mix(s, np.array([[1.0, 0.4], [0.3, 1.0]]))
    sep = Separator(FS, engine=engine)
    _, labels = _stream(sep, x)
    before, after = labels[int(5.5 * FS / 256)], labels[-1]
    assert after == 1 - before
    assert sep.info()["label_moves"] == _moves(labels) == 1
    moved = [e for e in sep.events if e["kind"] == "label_moves"]
    # measured 5.8 s (td) and 6.3 s (fd): 3 s of evidence memory plus the 1.5 s hold
    assert len(moved) == 1 and 6.0 < moved[0]["t_s"] < 6.0 + 7.5


def test_the_evidence_kernel_agrees_with_its_numpy_reference():
    from rtsep.kernels.evidence import evidence_frame, evidence_params, evidence_sample, modulation_db, new_state

    rng = np.random.default_rng(8)
    y = np.stack([signals.syllables(2 * FS, FS, 9), rng.standard_normal(2 * FS) * 0.05], 1).astype(np.float64)
    p = evidence_params(FS, 1.0)
    lst = new_state(2)
    st = lst[0]
    for t in range(len(y)):
        evidence_sample(st.z, st.e_band, st.e_all, p, y[t])
        if (t + 1) % p.frame == 0:
            evidence_frame(st, p, True)
    want = modulation_reference(y, p)
    got = [modulation_db(st, k) for k in range(2)]
    np.testing.assert_allclose(got, want, rtol=1e-9)
    assert got[0] > got[1] + 2.0  # syllables modulate, steady noise does not


def test_the_command_line_pins_the_voice_counting_outputs_from_1():
    import argparse

    from rtsep.options import add_engine_options, engine_params

    p = argparse.ArgumentParser()
    add_engine_options(p)
    assert engine_params(p.parse_args(["--voice", "2"])) == {"voice": 1}
    assert engine_params(p.parse_args(["--voice", "1"])) == {"voice": 0}
    assert "voice" not in engine_params(p.parse_args([]))
    with pytest.raises(SystemExit):
        p.parse_args(["--voice", "3"])


def test_the_direct_path_measure_is_1_for_a_pure_delay_and_low_for_a_reverberant_path():
    from rtsep.kernels.iva import direct_path_regularity

    rng = np.random.default_rng(2)
    k = 129
    f = np.arange(k)
    # mixing per bin: column 0 a pure delay of 3 samples (frame 256), column 1 random phases and gains
    a = np.empty((k, 2, 2), complex)
    a[:, 0, 0] = 1.0
    a[:, 1, 0] = np.exp(-2j * np.pi * f * 3 / 256)
    a[:, 0, 1] = 1.0
    a[:, 1, 1] = rng.uniform(0.3, 3.0, k) * np.exp(2j * np.pi * rng.uniform(size=k))
    w = np.conj(np.linalg.inv(a))  # the engine's demixers: D = conj(w) = A⁻¹
    out = np.zeros(2)
    direct_path_regularity(w, 2, k, out)
    assert out[0] == pytest.approx(1.0, abs=1e-9)
    assert out[1] < 0.3


def test_pinning_the_voice_to_an_output_that_does_not_exist_is_one_clear_error():
    from rtsep.errors import ConfigError

    sep = Separator(FS)
    for bad in (2, -1, 0.5):
        with pytest.raises(ConfigError, match="outputs 0 to 1"):
            sep.pin_voice(bad)
    sep.pin_voice(1)
    sep.pin_voice(None)  # automatic again


def _fd_in_room(talk: np.ndarray, background: np.ndarray, **geometry: float):
    """Stream a simulated room (talker, background; ``simulate_room`` geometry) through fd's defaults.

    Returns the separator, its outputs aligned with the input, the voice index
    after each block and the room (its ``images`` are the truth).
    """
    from rtsep.material.rooms import import_pyroomacoustics, simulate_room
    import_pyroomacoustics()
    room = simulate_room(talk, background, FS, **geometry)
    sep = Separator(FS, engine="fd")
    out, labels = _stream(sep, room.mix)
    return sep, out, labels, room


@pytest.mark.heavy
@pytest.mark.skipif(NO_JIT, reason="8 s of audio in a room; run compiled")
def test_fd_names_the_talker_from_its_first_decision_over_noise_as_loud_as_the_talker():
    """fd's first demixer makes its second output jump from silence to the noise: that ramp is no syllable.

    The outputs of the hops that still overlap-add frames demixed by the identity
    are not evidence; counted (before), the pink noise's output modulated at
    7 dB at 0.5 s against the talker's 1.5 and was named the voice until 6.5 s
    (this room is the voice-call bench's pink room at SIR 0 dB).
    """
    require_speech()
    n = 8 * FS
    talk = speech.talker("it", n / FS, seed=302).astype(np.float64)
    sep, out, labels, room = _fd_in_room(talk, signals.pink_noise(n, 402), rt60=0.25, spacing=0.06,
                                         talker_dist=0.8, background_dist=2.0, sir_db=0.0, seed=502)
    mod = sep.info()["modulation_db"]
    assert sep.info()["label_moves"] == 0 and _moves(labels, after_s=0.5) == 0, labels[::16]
    assert _voice_share(out, room.images[:, :, 0], room.mix[:, 0], from_s=1.0) >= 0.9
    assert mod[labels[-1]] > mod[1 - labels[-1]], mod


@pytest.mark.heavy
@pytest.mark.skipif(NO_JIT, reason="25 s of audio in a room; run compiled")
def test_fd_stays_with_the_near_talker_when_only_the_direct_path_cue_says_otherwise():
    """Two talkers, the voice 5 dB louder at the mics, 1 m against 2 m (the voice-call bench's room 9).

    The direct path read off the demixers scored the far talker's output higher
    from 16 s on and moved the label, though the voice's output stayed 3 dB louder
    at the reference mic, more syllabic and more often speech: a settled label
    does not move on that cue alone.
    """
    require_speech()
    n = 25 * FS
    talk = speech.talker("it", n / FS, seed=309).astype(np.float64)
    other = speech.talker("ru", n / FS, seed=409).astype(np.float64)
    sep, out, labels, room = _fd_in_room(talk, other, rt60=0.4, spacing=0.07, talker_dist=1.0,
                                         background_dist=2.0, sir_db=5.0, seed=509)
    assert sep.info()["label_moves"] == 0, labels[::64]
    assert _voice_share(out, room.images[:, :, 0], room.mix[:, 0]) >= 0.9


@pytest.mark.heavy
@pytest.mark.skipif(NO_JIT, reason="8 s of audio in a room; run compiled")
def test_fd_first_decision_follows_level_modulation_and_speech_when_they_agree():
    """Pink noise 5 dB under the talker (the voice-call bench's pink room 3).

    The noise's output holds enough of the talker to be heard as speech 9 % of the
    time, so the two outputs looked like two talkers and the direct path (a point
    source's is regular) named the noise the voice until 5 s, though the talker's
    output was louder, more syllabic and more often speech.
    """
    require_speech()
    n = 8 * FS
    talk = speech.talker("it", n / FS, seed=303).astype(np.float64)
    sep, out, labels, room = _fd_in_room(talk, signals.pink_noise(n, 403), rt60=0.45, spacing=0.04,
                                         talker_dist=1.1, background_dist=1.6, sir_db=5.0, seed=503)
    assert sep.info()["label_moves"] == 0 and _moves(labels, after_s=0.5) == 0, labels[::16]
    assert _voice_share(out, room.images[:, :, 0], room.mix[:, 0], from_s=1.0) >= 0.9
