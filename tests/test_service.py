"""``rtsep serve`` / ``rtsep.client``: real servers on free loopback ports, real sockets, bounded waits."""

from __future__ import annotations

import argparse
import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

pytest.importorskip("websockets")

from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from rtsep import Separator  # noqa: E402
from rtsep.client import SeparationClient, ServiceError, add_client_arguments, cmd_client, stream_file  # noqa: E402
from rtsep.service import ServerThread, ServiceConfig  # noqa: E402

FS = 16000
T = 10.0  # seconds: upper bound on any single wait

pytestmark = pytest.mark.timeout(60)


def signal(seed: int, n: int = 8000) -> np.ndarray:
    """A two-mic instantaneous mixture of a pulsed (kurtotic) source and noise, float32."""
    rng = np.random.default_rng(seed)
    s1 = rng.laplace(size=n) * (np.sin(np.arange(n) / 400.0) > 0)
    s2 = rng.standard_normal(n)
    x = np.stack([s1, s2], 1) @ np.array([[0.8, 0.3], [0.4, 0.7]]).T
    return (0.1 * x).astype(np.float32)


def local(x: np.ndarray, engine: str = "td") -> tuple[np.ndarray, np.ndarray]:
    return Separator(FS, engine=engine).process(x)


def remote(url: str, x: np.ndarray, sizes=(256, 1, 100, 37), engine: str = "td", **kw) -> tuple[np.ndarray, np.ndarray, dict]:
    vs, bs = [], []
    with SeparationClient(url, FS, engine=engine, block=256, timeout=T, **kw) as c:
        pos, i = 0, 0
        while pos < x.shape[0]:
            v, b = c.process(x[pos:pos + sizes[i % len(sizes)]])
            assert v.shape == b.shape == (min(sizes[i % len(sizes)], x.shape[0] - pos),)
            vs.append(v)
            bs.append(b)
            pos += sizes[i % len(sizes)]
            i += 1
        stats = c.close()
    return np.concatenate(vs), np.concatenate(bs), stats


@pytest.fixture(scope="module")
def server():
    srv = ServerThread(ServiceConfig(port=0, max_frame_bytes=64 * 1024, idle_timeout_s=T, max_sessions=32)).start()
    yield srv
    srv.stop()


def raw_error(url: str, *messages) -> tuple[dict, int]:
    """Send messages on a raw WebSocket; return the server's JSON error and its close code."""
    with connect(url, open_timeout=T, close_timeout=T, max_size=None) as ws:
        err = None
        for m in messages:
            try:
                ws.send(m)
            except ConnectionClosed:  # the server may close before the last one is sent
                break
        try:
            while True:
                msg = ws.recv(timeout=T)
                if isinstance(msg, str) and json.loads(msg).get("type") == "error":
                    err = json.loads(msg)
        except ConnectionClosed as exc:
            return err, exc.rcvd.code
    raise AssertionError("server did not close")


CONF = json.dumps({"fs": FS, "channels": 2, "engine": "td", "format": "float32", "block": 256})


def test_round_trip_bit_exact_float32(server):
    x = signal(1)
    v, b, stats = remote(server.url, x)
    rv, rb = local(x)
    assert np.array_equal(v, rv) and np.array_equal(b, rb)
    assert stats["type"] == "stats" and stats["samples"] == x.shape[0] and stats["latency_samples"] == 0


def test_round_trip_int16(server):
    x16 = np.clip(np.rint(signal(2) * 32768), -32768, 32767).astype(np.int16)
    v, b, _ = remote(server.url, x16, format="int16")
    rv, rb = local(x16)
    q = lambda y: np.clip(np.rint(y * 32768.0), -32768, 32767).astype(np.float32) / 32768.0  # noqa: E731
    assert np.array_equal(v, q(rv)) and np.array_equal(b, q(rb))


def test_fd_engine_reports_latency_and_matches(server):
    x = signal(3, 4000)
    v, b, stats = remote(server.url, x, engine="fd")
    rv, rb = local(x, "fd")
    assert stats["latency_samples"] == Separator(FS, engine="fd").latency_samples > 0
    assert np.array_equal(v, rv) and np.array_equal(b, rb)


def test_eight_concurrent_sessions(server):
    results: dict[int, object] = {}

    def run(k: int) -> None:
        try:
            x = signal(10 + k)
            v, b, _ = remote(server.url, x, sizes=(64 + 24 * k,))
            rv, rb = local(x)
            results[k] = np.array_equal(v, rv) and np.array_equal(b, rb)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[k] = exc

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    # a bound against a hung session, not a speed target: without the JIT on a loaded
    # machine, session 0 (64-sample blocks) took over 30 s
    for t in threads:
        t.join(180)
    assert not any(t.is_alive() for t in threads), "a session still running after 180 s"
    assert results == {k: True for k in range(8)}


def test_bad_sessions_leave_a_concurrent_good_one_intact(server):
    x = signal(5, 16000)
    rv, rb = local(x)
    c = SeparationClient(server.url, FS, block=256, timeout=T)
    first = c.process(x[:256])
    done = 256

    # Every kind of bad session, while the good one is open mid-stream.
    err, code = raw_error(server.url, "{not json")
    assert code == 1008 and "JSON" in err["message"]
    err, code = raw_error(server.url, b"\x00" * 8)
    assert code == 1003 and "config" in err["message"]
    err, code = raw_error(server.url, json.dumps({"fs": FS, "engine": "xx"}))
    assert code == 1008 and "engine" in err["message"]
    err, code = raw_error(server.url, json.dumps({"fs": FS, "params": {"no_such_param": 1}}))
    assert code == 1008 and "no_such_param" in err["message"]
    err, code = raw_error(server.url, json.dumps({"fs": 100}))
    assert code == 1008
    err, code = raw_error(server.url, CONF, b"\x00" * 12)  # 12 bytes: 1.5 float32 stereo frames
    assert code == 1003 and "whole number of frames" in err["message"]
    err, code = raw_error(server.url, CONF, b"\x00" * (257 * 8))  # more than the declared block
    assert code == 1009 and "larger than the declared block" in err["message"]
    err, code = raw_error(server.url, CONF, b"\x00" * (65 * 1024))  # beyond --max-frame-bytes: cut by the library
    assert code == 1009
    err, code = raw_error(server.url, CONF, json.dumps({"type": "what"}))
    assert code == 1008 and "unexpected" in err["message"]
    # A client vanishing mid-stream, with a frame in flight.
    ws = connect(server.url, open_timeout=T).__enter__()
    ws.send(CONF)
    ws.recv(timeout=T)
    ws.send(x[:256].tobytes())
    ws.close()

    outs = [first]
    while done < x.shape[0]:
        outs.append(c.process(x[done:done + 256]))
        done += 256
    stats = c.close()
    assert np.array_equal(np.concatenate([o[0] for o in outs]), rv)
    assert np.array_equal(np.concatenate([o[1] for o in outs]), rb)
    assert stats["samples"] == x.shape[0]
    text = urllib.request.urlopen(server.url.replace("ws://", "http://") + "/metrics", timeout=T).read().decode()
    assert "rtsep_sessions_failed_total" in text


def test_token_required():
    with ServerThread(ServiceConfig(port=0, token="s3cret")) as srv:
        err, code = raw_error(srv.url, CONF)
        assert code == 1008 and "token" in err["message"]
        with pytest.raises(ServiceError, match="--token"):
            SeparationClient(srv.url, FS, token="wrong", timeout=T)
        x = signal(6, 1000)
        v, b, _ = remote(srv.url, x, token="s3cret")
        assert np.array_equal(v, local(x)[0])


def test_max_sessions_and_idle_timeout():
    with ServerThread(ServiceConfig(port=0, max_sessions=1, idle_timeout_s=0.5)) as srv:
        c = SeparationClient(srv.url, FS, timeout=T)
        err, code = raw_error(srv.url, CONF)
        assert code == 1013 and "busy" in err["message"]
        c.abort()
        err, code = raw_error(srv.url, CONF)  # configured, then silent: the idle timeout ends it
        assert code == 1008 and "idle" in err["message"]


def test_health_and_metrics(server):
    base = server.url.replace("ws://", "http://")
    assert urllib.request.urlopen(base + "/health", timeout=T).read() == b"ok\n"
    remote(server.url, signal(7, 512))
    resp = urllib.request.urlopen(base + "/metrics", timeout=T)
    assert resp.headers.get_all("Content-Type") == ["text/plain; version=0.0.4; charset=utf-8"]
    text = resp.read().decode()
    values = {ln.split()[0]: float(ln.split()[1]) for ln in text.splitlines() if ln and not ln.startswith("#")}
    for name in ("rtsep_sessions_active", "rtsep_sessions_total", "rtsep_samples_processed_total",
                 "rtsep_late_frames_total", "rtsep_real_time_factor"):
        assert name in values
    assert values["rtsep_samples_processed_total"] >= 512 and values["rtsep_sessions_total"] >= 1
    with pytest.raises(urllib.error.HTTPError):  # any other plain HTTP path is not a WebSocket handshake
        urllib.request.urlopen(base + "/nothing", timeout=T)


def test_client_cli_writes_aligned_wavs_like_replay(server, tmp_path):
    import soundfile as sf

    from rtsep.replay import replay

    x = signal(8, 6000)
    wav = tmp_path / "in.wav"
    sf.write(wav, x, FS, subtype="FLOAT")
    p = argparse.ArgumentParser()
    add_client_arguments(p)
    args = p.parse_args([str(wav), "--server", server.url, "--out", str(tmp_path / "net"), "--engine", "fd", "-q"])
    assert cmd_client(args) == 0
    replay(wav, tmp_path / "rep", engine="fd", block=256)
    for name in ("voice.wav", "background.wav"):
        a, _ = sf.read(tmp_path / "net" / name, dtype="float32")
        r, _ = sf.read(tmp_path / "rep" / name, dtype="float32")
        assert a.shape == (6000,) and np.array_equal(a, r)
    t = json.loads((tmp_path / "net" / "timing.json").read_text())
    assert t["server_stats"]["samples"] == 6000 + t["latency_samples"]


def test_client_unreachable_server_is_one_line_error(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ServiceError, match="cannot reach"):
        SeparationClient(f"ws://127.0.0.1:{port}", FS, timeout=2)
    x = signal(9, 100)
    import soundfile as sf

    sf.write(tmp_path / "in.wav", x, FS)
    with pytest.raises(ServiceError):
        stream_file(tmp_path / "in.wav", f"ws://127.0.0.1:{port}", tmp_path / "o")


# ---------------------------------------------------------------- the browser client's server side

def test_origin_policy_same_host_port_or_listed_or_none():
    from rtsep.webpage import normalize_origin, origin_allowed

    assert origin_allowed(None, "127.0.0.1:8765")                            # not a browser
    assert origin_allowed("http://127.0.0.1:8765", "127.0.0.1:8765")         # the page this server sent
    assert origin_allowed("http://LOCALHOST:8765", "localhost:8765")
    assert origin_allowed("https://sep.example.org", "sep.example.org")      # behind a TLS proxy, default port
    assert origin_allowed("https://sep.example.org:443", "sep.example.org:443")
    assert origin_allowed("http://[::1]:8765", "[::1]:8765")
    assert not origin_allowed("http://127.0.0.1:9999", "127.0.0.1:8765")     # another port is another origin
    assert not origin_allowed("http://evil.example", "127.0.0.1:8765")
    assert not origin_allowed("http://127.0.0.1:8765.evil.example", "127.0.0.1:8765")
    assert not origin_allowed("https://sep.example.org", "sep.example.org:8765")
    assert not origin_allowed("null", "127.0.0.1:8765")                      # file:// pages, sandboxed frames
    assert not origin_allowed("garbage", "127.0.0.1:8765")
    assert not origin_allowed("http://127.0.0.1:8765", None)
    listed = (normalize_origin("https://App.Example.org:443/"),)
    assert listed == ("https://app.example.org",)
    assert origin_allowed("https://app.example.org", "127.0.0.1:8765", listed)
    assert not origin_allowed("http://app.example.org", "127.0.0.1:8765", listed)  # the scheme is part of it
    assert origin_allowed("null", "127.0.0.1:8765", (normalize_origin("null"),))


@pytest.mark.parametrize("bad", ["example.org", "ftp://example.org", "https://example.org/path", "https://",
                                 "https://example.org:99999"])
def test_allow_origin_must_be_an_origin(bad):
    from rtsep.errors import ConfigError
    from rtsep.webpage import normalize_origin

    with pytest.raises(ConfigError, match="--allow-origin"):
        normalize_origin(bad)


def test_websocket_upgrades_from_foreign_origins_are_refused(server):
    from websockets.exceptions import InvalidStatus

    own = server.url.replace("ws://", "http://")
    with pytest.raises(InvalidStatus) as err:
        connect(server.url, origin="http://evil.example", open_timeout=T)
    assert err.value.response.status_code == 403 and b"--allow-origin" in err.value.response.body
    with pytest.raises(InvalidStatus):
        connect(server.url, origin=own.rsplit(":", 1)[0] + ":1", open_timeout=T)  # same host, other port
    with connect(server.url, origin=own, open_timeout=T) as ws:  # the server's own page
        ws.send(CONF)
        assert json.loads(ws.recv(timeout=T))["type"] == "ready"
    x = signal(20, 512)
    assert np.array_equal(remote(server.url, x)[0], local(x)[0])  # no Origin: command-line clients


def test_allow_origin_widens_the_policy():
    p = argparse.ArgumentParser()
    from rtsep.service import add_serve_arguments

    add_serve_arguments(p)
    args = p.parse_args(["--allow-origin", "https://app.example.org", "--allow-origin", "http://localhost:3000"])
    assert args.allow_origin == ["https://app.example.org", "http://localhost:3000"]
    from rtsep.errors import ConfigError
    from rtsep.service import cmd_serve

    with pytest.raises(ConfigError, match="--allow-origin 'app.example.org' is not an origin"):
        cmd_serve(p.parse_args(["--port", "0", "--allow-origin", "app.example.org"]))  # refused before listening
    with ServerThread(ServiceConfig(port=0, allow_origins=("https://app.example.org",))) as srv:
        with connect(srv.url, origin="https://app.example.org", open_timeout=T) as ws:
            ws.send(CONF)
            assert json.loads(ws.recv(timeout=T))["type"] == "ready"


def test_get_root_serves_the_self_contained_page(server):
    base = server.url.replace("ws://", "http://")
    resp = urllib.request.urlopen(base + "/", timeout=T)
    html = resp.read().decode()
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert 'src="web/app.js"' in html and "http" not in html.replace("http-equiv", "")  # nothing from elsewhere
    for name, needle in (("app.js", "getUserMedia"), ("worklet.js", "registerProcessor"), ("stream.js", '"swap"'),
                         ("wav.js", "RIFF"), ("style.css", "canvas")):
        resp = urllib.request.urlopen(f"{base}/web/{name}", timeout=T)
        assert needle in resp.read().decode(), name
        assert resp.headers["Content-Type"].startswith("text/css" if name.endswith(".css") else "text/javascript")
    for path in ("/web/../service.py", "/web/", "/web/nothing.js", "/rtsep/service.py"):
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(base + path, timeout=T)


def test_swap_trades_the_returned_channels_for_this_stream_only(server):
    x = signal(21, 2048)
    rv, rb = local(x)
    with connect(server.url, open_timeout=T, max_size=None) as ws:
        ws.send(CONF)
        ws.recv(timeout=T)
        got = []
        for k, pos in enumerate(range(0, 2048, 256)):
            if k in (3, 6):
                ws.send(json.dumps({"type": "swap"}))
                assert json.loads(ws.recv(timeout=T)) == {"type": "swapped", "swapped": k == 3}
            ws.send(x[pos:pos + 256].tobytes())
            got.append(np.frombuffer(ws.recv(timeout=T), "<f4").reshape(-1, 2))
        ws.send(json.dumps({"type": "eof"}))
        stats = json.loads(ws.recv(timeout=T))
    y = np.concatenate(got)
    plain, swapped = np.r_[0:768, 1536:2048], np.r_[768:1536]
    assert np.array_equal(y[plain, 0], rv[plain]) and np.array_equal(y[plain, 1], rb[plain])
    assert np.array_equal(y[swapped, 0], rb[swapped]) and np.array_equal(y[swapped, 1], rv[swapped])
    assert stats["swapped"] is False and stats["final"] is True
    v, _, _ = remote(server.url, x)  # another stream is not affected
    assert np.array_equal(v, rv)


def test_periodic_stats_only_when_asked(server):
    x = signal(22, 1024)
    with connect(server.url, open_timeout=T, max_size=None) as ws:
        ws.send(json.dumps({"fs": FS, "block": 256, "stats_interval_s": 1e-9}))
        ws.recv(timeout=T)
        for pos in range(0, 1024, 256):
            ws.send(x[pos:pos + 256].tobytes())
            assert isinstance(ws.recv(timeout=T), bytes)  # the answer first, then the stats
            st = json.loads(ws.recv(timeout=T))
            assert st["type"] == "stats" and st["final"] is False and st["samples"] == pos + 256
            assert st["rtf_recent"] > 0 and st["swapped"] is False and st["voice"] in (0, 1)
    err, code = raw_error(server.url, json.dumps({"fs": FS, "stats_interval_s": -1}))
    assert code == 1008 and "stats_interval_s" in err["message"]

def test_the_server_logs_one_line_per_session_opened_and_closed_and_every_refusal(caplog):
    with caplog.at_level("INFO", logger="rtsep.service"), ServerThread(ServiceConfig(port=0, token="s3cret")) as srv:
        remote(srv.url, signal(6, 1000), token="s3cret")
        raw_error(srv.url, CONF)  # no token
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "rtsep.service"]
    assert [lvl for lvl, _ in lines] == ["INFO", "INFO", "INFO", "WARNING"], lines
    assert lines[0][1].startswith("session 1 from 127.0.0.1:") and lines[0][1].endswith(": opened")
    assert "closed after 0.06 s of audio (td, 9 frames, " in lines[1][1]  # 1000 samples sent as 256, 1, 100, 37, 256, …
    assert lines[3][1].startswith("session 2 from ") and "closed with code 1008: missing or wrong token" in lines[3][1]
