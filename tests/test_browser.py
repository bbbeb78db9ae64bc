"""The browser client (``GET /``) in a real headless Chromium against ``rtsep serve``.

Chromium's fake microphone plays a two-channel WAV of a known instantaneous
mixture (real speech + pink noise); the page streams it, plays the answers,
records, and downloads the recording. The voice it recorded must be a real
separation, every sample sent must have come back, and no script error may
have been logged.

Reference images: Chromium resamples the WAV to the capture rate and the page
quantises to int16, both the same linear operation on each channel, so the
input the page recorded is ``s' Aᵀ`` with the known mixing matrix ``A`` and the
resampled sources ``s'``. The sources' images at mic 1 are then
``A[0, k] · (x A⁻ᵀ)[:, k]``, computed from what the page sent (not from what
came back), at whatever rate the browser ran.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from rtsep.material import signals, speech
from rtsep.metrics import improvement
from tests import browser_rig as rig
from tests.conftest import require_speech

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

RECORD_S = 8.0
FILES = ("rtsep-input.wav", "rtsep-voice.wav", "rtsep-background.wav")


@pytest.fixture(scope="module")
def mixture(tmp_path_factory):
    """(path of the two-channel WAV, mixing matrix A)."""
    why = rig.missing()
    if why:
        pytest.skip(why)
    require_speech()
    import soundfile as sf

    voice = speech.talker("it", 12, 0)
    background = signals.pink_noise(voice.shape[0], 0)
    a = signals.mixing_matrix(3, 0)
    x = signals.mix(np.stack([voice, background], 1).astype(np.float64), a)
    scale = 0.5 / np.abs(x).max()  # no clipping anywhere on the way: the path must stay linear
    path = tmp_path_factory.mktemp("mic") / "mixture.wav"
    sf.write(path, x * scale, speech.FS, subtype="PCM_16")
    return path, a


def page_state(driver) -> dict:
    return driver.execute_script("return JSON.parse(JSON.stringify(window.rtsep));")


def run_page(wav: Path, downloads: Path, query: str = "", record_s: float = RECORD_S, swap: bool = False) -> dict:
    """Serve, open the page, Start, (swap twice), record ``record_s`` seconds, Stop.

    Returns
    -------
    dict
        ``live``: the page's state while streaming; ``end``: after Stop; ``logs``: the
        browser console; ``cpu``: Chromium's cores (all its processes) while recording.
    """
    downloads.mkdir(exist_ok=True)
    server = rig.Served()
    driver = None
    try:
        driver = rig.chromium(wav, downloads)
        driver.get(server.http + query)
        rig.wait_for("the page's script", lambda: driver.execute_script("return !!window.rtsep"), 60)
        driver.find_element("id", "start").click()
        # A fresh server compiles its kernels for the first stream: up to a minute on 2 cores.
        try:
            rig.wait_for("the stream to be ready", lambda: page_state(driver)["ready"], 150)
        except AssertionError as exc:
            state = page_state(driver)
            raise AssertionError(f"{exc}; the page: status {state.get('status')!r}, errors {state.get('errors')}, notices "
                                 f"{state.get('notices')}; the server's stderr:\n{server.log()}") from None
        if swap:  # a round trip through the server, and a second swap undoes it
            driver.find_element("id", "swap").click()
            rig.wait_for("the server to confirm the swap", lambda: page_state(driver)["swapped"] is True, 10)
            driver.find_element("id", "swap").click()
            rig.wait_for("the server to undo the swap", lambda: page_state(driver)["swapped"] is False, 10)
        time.sleep(1.0)
        cpu0, t0 = rig.cpu_seconds(driver.service.process.pid), time.monotonic()
        driver.find_element("id", "record").click()
        time.sleep(record_s)
        driver.find_element("id", "record").click()
        cpu = (rig.cpu_seconds(driver.service.process.pid) - cpu0) / (time.monotonic() - t0)
        rig.wait_for("three downloaded WAVs", lambda: rig.have_downloads(downloads, FILES), 30)
        if os.environ.get("RTSEP_BROWSER_SHOT") and not query:  # RTSEP_BROWSER_SHOT=docs/browser-client.png
            driver.save_screenshot(os.environ["RTSEP_BROWSER_SHOT"])
        live = page_state(driver)
        driver.find_element("id", "start").click()  # Stop: eof → final stats
        rig.wait_for("the final stats", lambda: page_state(driver)["finalStats"], 60)
        return {"live": live, "end": page_state(driver), "logs": driver.get_log("browser"), "cpu": cpu}
    finally:
        if driver is not None:
            driver.quit()
        server.stop()


def read_recording(downloads: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    import soundfile as sf

    x, fs = sf.read(downloads / FILES[0], dtype="float64")
    voice, fs_v = sf.read(downloads / FILES[1], dtype="float64")
    background, fs_b = sf.read(downloads / FILES[2], dtype="float64")
    assert fs == fs_v == fs_b and x.shape == (voice.shape[0], 2) == (background.shape[0], 2)
    return x, voice, background, fs


def check_clean_and_complete(run: dict) -> None:
    """No script error anywhere; every sample sent came back, and the server counted the same."""
    st = run["end"]
    assert st["errors"] == []
    severe = [e for e in run["logs"] if e["level"] == "SEVERE"]
    assert severe == [], severe
    assert st["sent"] == st["received"] == st["finalStats"]["samples"] > 0
    assert st["finalStats"]["final"] is True


def voice_sir(x: np.ndarray, voice: np.ndarray, background: np.ndarray, a: np.ndarray):
    """BSS-Eval improvement on the recording's 2nd half, against images from the recorded input and A."""
    s = x @ np.linalg.inv(a).T
    images = (s * a[0][None, :]).T
    half = slice(x.shape[0] // 2, None)
    return improvement(np.stack([voice, background])[:, half], images[:, half], x[half, 0])


def test_page_separates_a_known_mixture_from_the_fake_microphone(mixture, tmp_path):
    wav, a = mixture
    run = run_page(wav, tmp_path / "downloads", swap=True)
    live, st = run["live"], run["end"]
    # Chromium's fake capture device keeps both channels of the WAV, unprocessed.
    assert live["device"]["channelCount"] == 2, f"the fake device gave {live['device']}"
    assert live["device"]["echoCancellation"] is False and live["device"]["autoGainControl"] is False
    assert live["notices"] == []
    check_clean_and_complete(run)
    assert st["finalStats"]["swapped"] is False
    x, voice, background, fs = read_recording(tmp_path / "downloads")
    assert fs == st["wireFs"] == st["ctxRate"]  # the AudioContext's own rate: no resampling in the page
    assert x.shape[0] >= 0.9 * RECORD_S * fs

    imp = voice_sir(x, voice, background, a)
    summary = {"sir_improvement_db": imp.sir_improvement.tolist(), "sdr_improvement_db": imp.sdr_improvement.tolist(),
               "fs": fs, "recorded_s": x.shape[0] / fs, "in_page_latency_ms": live["latencyMs"],
               "device_latency_ms": live["deviceLatencyMs"], "network_rtt_ms_median": float(np.median(live["rttMs"])),
               "server_rtf_last_s": live["serverStats"]["rtf_recent"], "underruns": live["underruns"],
               "dropped": live["droppedSend"] + live["droppedFrames"], "chromium_cpu_cores": run["cpu"]}
    print("browser path:", json.dumps(summary))
    assert imp.sir_improvement[0] > 15.0, summary
    assert imp.sir_improvement[1] > 5.0, summary
    # What the page showed was measured, not left blank.
    assert 0 < live["latencyMs"] < 1000 and live["rttMs"] and live["serverStats"]["rtf_recent"] > 0


def test_page_resamples_to_a_rate_it_is_asked_for(mixture, tmp_path):
    wav, a = mixture
    run = run_page(wav, tmp_path / "downloads", query="?rate=16000", record_s=5.0)
    check_clean_and_complete(run)
    assert run["end"]["wireFs"] == 16000 != run["end"]["ctxRate"]
    x, voice, background, fs = read_recording(tmp_path / "downloads")
    assert fs == 16000 and x.shape[0] >= 0.9 * 5.0 * fs
    imp = voice_sir(x, voice, background, a)
    print("browser path, resampled to 16 kHz: SIR improvement", imp.sir_improvement.tolist())
    assert imp.sir_improvement[0] > 15.0


def test_page_says_when_both_channels_carry_the_same_signal(mixture, tmp_path):
    import soundfile as sf

    wav, _ = mixture
    x, fs = sf.read(wav)
    mono = tmp_path / "mono.wav"
    sf.write(mono, x[:, 0], fs, subtype="PCM_16")  # Chromium's fake device copies a mono file to both channels
    run = run_page(mono, tmp_path / "downloads", record_s=2.0)
    check_clean_and_complete(run)
    assert any("same signal" in n for n in run["live"]["notices"]), run["live"]["notices"]


def test_page_passes_the_servers_token_and_shows_a_refusal(mixture, tmp_path):
    wav, _ = mixture
    server = rig.Served("--token", "s3cret")
    driver = None
    try:
        driver = rig.chromium(wav, tmp_path)
        driver.get(server.http)
        rig.wait_for("the page's script", lambda: driver.execute_script("return !!window.rtsep"), 60)
        driver.find_element("id", "start").click()  # no token: refused with 1008, said on the page
        errors = rig.wait_for("the refusal", lambda: page_state(driver)["errors"], 150)
        assert "token" in errors[0] and "1008" in errors[0], errors
        assert "token" in driver.find_element("id", "errors").text
        rig.wait_for("the page to stop", lambda: driver.find_element("id", "start").text == "Start", 10)
        driver.find_element("id", "token").send_keys("s3cret")
        driver.find_element("id", "start").click()
        rig.wait_for("the stream to be ready", lambda: page_state(driver)["ready"], 150)
        rig.wait_for("audio to come back", lambda: page_state(driver)["received"] > 0, 10)
    finally:
        if driver is not None:
            driver.quit()
        server.stop()


def test_page_says_plainly_when_the_device_gives_one_channel(mixture, tmp_path):
    wav, _ = mixture
    server = rig.Served()
    driver = None
    try:
        driver = rig.chromium(wav, tmp_path)
        # A one-channel microphone: the page's request is replaced by one for exactly one channel
        # (Chromium's fake device gives mono only with its audio processing on, so that stays on).
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
            const ask = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
            navigator.mediaDevices.getUserMedia = () => ask({audio: {channelCount: {exact: 1}}});"""})
        for attempt in range(2):
            driver.get(server.http)
            rig.wait_for("the page's script", lambda: driver.execute_script("return !!window.rtsep"), 60)
            driver.find_element("id", "start").click()
            # a first Chromium start on a fresh machine (profile, audio stack) can take tens of
            # seconds, and twice in fresh-clone runs the fake mono capture never answered within
            # 60 s (passing on rerun): the page is loaded once more before the test gives up
            try:
                notices = rig.wait_for("the page's notice", lambda: page_state(driver)["notices"], 60)
                break
            except AssertionError:
                if attempt:
                    raise
        time.sleep(1.0)
        st = page_state(driver)
        shown = driver.find_element("id", "notice").text
        logs = driver.get_log("browser")
    finally:
        if driver is not None:
            driver.quit()
        server.stop()
    assert st["device"]["channelCount"] == 1
    assert "only one channel" in notices[0] and "two microphones" in notices[0] and notices[0] in shown
    assert st["ready"] is None and st["sent"] == 0 and st["status"] == "idle: the device is mono"
    assert st["errors"] == [] and [e for e in logs if e["level"] == "SEVERE"] == []
