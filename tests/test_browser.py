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

from rtsep import signals, speech
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


def test_page_separates_a_known_mixture_from_the_fake_microphone(mixture, tmp_path):
    import soundfile as sf

    wav, a = mixture
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    server = rig.Served()
    driver = None
    try:
        driver = rig.chromium(wav, downloads)
        driver.get(server.http)
        rig.wait_for("the page's script", lambda: driver.execute_script("return !!window.rtsep"), 20)
        driver.find_element("id", "start").click()
        # A fresh server compiles its kernels for the first stream: up to a minute on 2 cores.
        rig.wait_for("the stream to be ready", lambda: page_state(driver)["ready"], 150)
        st = page_state(driver)
        # Chromium's fake capture device keeps both channels of the WAV.
        assert st["device"]["channelCount"] == 2, f"the fake device gave {st['device']}"
        assert st["device"]["echoCancellation"] is False and st["device"]["autoGainControl"] is False

        # Swap is a round trip through the server, and a second swap undoes it.
        driver.find_element("id", "swap").click()
        rig.wait_for("the server to confirm the swap", lambda: page_state(driver)["swapped"] is True, 10)
        driver.find_element("id", "swap").click()
        rig.wait_for("the server to undo the swap", lambda: page_state(driver)["swapped"] is False, 10)

        time.sleep(1.0)
        cpu0, t0 = rig.cpu_seconds(driver.service.process.pid), time.monotonic()
        driver.find_element("id", "record").click()
        time.sleep(RECORD_S)
        driver.find_element("id", "record").click()
        cpu = (rig.cpu_seconds(driver.service.process.pid) - cpu0) / (time.monotonic() - t0)
        rig.wait_for("three downloaded WAVs", lambda: rig.have_downloads(downloads, FILES), 30)
        if os.environ.get("RTSEP_BROWSER_SHOT"):  # the README's picture: RTSEP_BROWSER_SHOT=docs/browser-client.png
            driver.save_screenshot(os.environ["RTSEP_BROWSER_SHOT"])
        live = page_state(driver)
        driver.find_element("id", "start").click()  # Stop: eof → final stats
        rig.wait_for("the final stats", lambda: page_state(driver)["finalStats"], 20)
        st = page_state(driver)
        logs = driver.get_log("browser")
    finally:
        if driver is not None:
            driver.quit()
        server.stop()

    # No script error on the page, in the worklet, or in the console.
    assert st["errors"] == []
    severe = [e for e in logs if e["level"] == "SEVERE"]
    assert severe == [], severe

    # Every sample sent came back, and the server counted the same.
    assert st["sent"] == st["received"] == st["finalStats"]["samples"] > 0
    assert st["finalStats"]["final"] is True and st["finalStats"]["swapped"] is False
    x, fs = sf.read(downloads / FILES[0], dtype="float64")
    voice, fs_v = sf.read(downloads / FILES[1], dtype="float64")
    background, _ = sf.read(downloads / FILES[2], dtype="float64")
    assert fs == fs_v == st["wireFs"] and x.shape == (voice.shape[0], 2) == (background.shape[0], 2)
    assert x.shape[0] >= 0.9 * RECORD_S * fs

    # The recorded voice is a real separation of the known mixture.
    s = x @ np.linalg.inv(a).T
    images = (s * a[0][None, :]).T
    half = slice(x.shape[0] // 2, None)
    imp = improvement(np.stack([voice, background])[:, half], images[:, half], x[half, 0])
    summary = {"sir_improvement_db": imp.sir_improvement.tolist(), "sdr_improvement_db": imp.sdr_improvement.tolist(),
               "fs": fs, "recorded_s": x.shape[0] / fs, "in_page_latency_ms": live["latencyMs"],
               "device_latency_ms": live["deviceLatencyMs"], "network_rtt_ms_median": float(np.median(live["rttMs"])),
               "server_rtf_last_s": live["serverStats"]["rtf_recent"], "underruns": live["underruns"],
               "dropped": live["droppedSend"] + live["droppedFrames"], "chromium_cpu_cores": cpu}
    print("browser path:", json.dumps(summary))
    assert imp.sir_improvement[0] > 15.0, summary
    assert imp.sir_improvement[1] > 5.0, summary

    # What the page showed was measured, not left blank.
    assert 0 < live["latencyMs"] < 1000 and live["rttMs"] and live["serverStats"]["rtf"] > 0
