"""JACK client that stands in for microphones and speakers in rtsep's live tests.

Run as a subprocess::

    python tests/live_rig.py FEED.wav OUT.wav [--tail S] [--timeout S] [--name rtsep_rig]

It registers one JACK output and one input port per channel of ``FEED.wav``, so
PortAudio lists it as a device called ``--name`` with C inputs and C outputs.
When the program under test connects to it, the rig plays FEED.wav into the
program's input and records the program's output on the same sample clock.
``OUT.wav`` holds ``ch[0:C]`` = what was fed and ``ch[C:2C]`` = what came back.

The rig declares its ports' latencies the way JACK's own hardware ports do
(capture: one period; playback: two periods, the second being the one-period
delay JACK puts on the feedback edge rig → program → rig). PortAudio's
``stream.latency`` then reports the true loop delay instead of a wrapped
2^32-frame value, so the test can compare rtsep's reported latency with the
delay it measures.

Lines on stdout: ``ready`` once the ports exist (the program may open its
stream), then ``done frames=N xruns=X connected=0|1`` at the end. The rig ends
when FEED plus the tail has been played, at ``--timeout``, on SIGTERM/SIGINT or
when the JACK server goes away; OUT.wav is written in every case.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import signal
import sys
import threading

import numpy as np
import soundfile as sf

import jack


def _declare_latency(ports_capture: list, ports_playback: list, period: int) -> None:
    """Set old-API and latency-range values so both PortAudio generations read them."""
    name = ctypes.util.find_library("jack") or "libjack.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return  # reported latency stays PortAudio's guess; the test will say so

    class _Range(ctypes.Structure):
        _fields_ = [("min", ctypes.c_uint32), ("max", ctypes.c_uint32)]

    lib.jack_port_set_latency.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.jack_port_set_latency_range.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(_Range)]
    capture_mode, playback_mode = 0, 1  # jack_latency_callback_mode_t

    def ptr(port: jack.OwnPort) -> int:
        return int(jack._ffi.cast("uintptr_t", port._ptr))

    # PortAudio 19.6 computes jack_port_get_latency(remote) - period + buffering;
    # 19.7 reads the latency ranges and adds buffering only.
    for p in ports_capture:
        lib.jack_port_set_latency(ptr(p), period)
        lib.jack_port_set_latency_range(ptr(p), capture_mode, ctypes.byref(_Range(0, 0)))
    for p in ports_playback:
        lib.jack_port_set_latency(ptr(p), 2 * period)
        lib.jack_port_set_latency_range(ptr(p), playback_mode, ctypes.byref(_Range(period, period)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("feed")
    ap.add_argument("out")
    ap.add_argument("--tail", type=float, default=1.0, help="seconds recorded after the feed ends")
    ap.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    ap.add_argument("--name", default="rtsep_rig", help="JACK client name = PortAudio device name")
    ap.add_argument("--server", default=None, help="JACK server name (default: $JACK_DEFAULT_SERVER)")
    a = ap.parse_args(argv)

    x, fs = sf.read(a.feed, dtype="float32", always_2d=True)
    n_ch = x.shape[1]
    client = jack.Client(a.name, no_start_server=True, servername=a.server)
    if client.samplerate != fs:
        print(f"error: jackd runs at {client.samplerate} Hz, {a.feed} is {fs} Hz", flush=True)
        return 2
    outs = [client.outports.register(f"out_{i + 1}") for i in range(n_ch)]  # -> program input
    ins = [client.inports.register(f"in_{i + 1}") for i in range(n_ch)]     # <- program output
    _declare_latency(outs, ins, client.blocksize)

    total = len(x) + int(a.tail * fs)
    rec = np.zeros((total + client.blocksize, 2 * n_ch), np.float32)
    rec.fill(0.0)  # touch every page now, not inside the real-time callback
    st = {"on": False, "pos": 0, "xruns": 0, "dead": False}
    done = threading.Event()

    @client.set_xrun_callback
    def _xrun(delay: float) -> None:
        st["xruns"] += 1

    @client.set_shutdown_callback
    def _shutdown(status: jack.Status, reason: str) -> None:
        st["dead"] = True
        done.set()

    @client.set_process_callback
    def _process(n: int) -> None:
        if not st["on"]:
            # Start feeding only once the program is connected, so feed frame 0
            # is the program's first input frame.
            st["on"] = any(p.number_of_connections for p in outs)
            if not st["on"]:
                for p in outs:
                    p.get_array().fill(0.0)
                return
        p0 = st["pos"]
        if p0 >= total:
            for p in outs:
                p.get_array().fill(0.0)
            return
        m = max(0, min(n, len(x) - p0))
        k = min(n, total + client.blocksize - p0)
        for i, p in enumerate(outs):
            b = p.get_array()
            b[:m] = x[p0:p0 + m, i]
            b[m:] = 0.0
            rec[p0:p0 + k, i] = b[:k]
        for i, p in enumerate(ins):
            rec[p0:p0 + k, n_ch + i] = p.get_array()[:k]
        st["pos"] = p0 + n
        if st["pos"] >= total:
            done.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    client.activate()
    print("ready", flush=True)
    done.wait(a.timeout)
    # Write before deactivating: with a dead server, deactivate/close can block forever.
    n_out = min(st["pos"], len(rec))
    sf.write(a.out, rec[:n_out], fs, subtype="FLOAT")
    print(f"done frames={n_out} xruns={st['xruns']} connected={int(st['on'])}", flush=True)
    if st["dead"]:
        sys.stdout.flush()
        os._exit(0)
    client.deactivate()
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
