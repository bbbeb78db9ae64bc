"""The first run on a machine says it is compiling instead of sitting silent."""

from __future__ import annotations

import io
import time

from rtsep.warm import compile_notice


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_slow_warmup_is_announced_once_with_the_engine_name():
    out = io.StringIO()
    with compile_notice("fd", out, after_s=0.05):
        time.sleep(0.4)
    assert out.getvalue() == "rtsep: compiling the fd engine, once per machine (about a minute)…\n"


def test_a_cached_warmup_says_nothing():
    out = io.StringIO()
    with compile_notice("td", out, after_s=0.5):
        time.sleep(0.1)
    assert out.getvalue() == ""


def test_on_a_terminal_the_notice_spins_and_ends_with_done_on_its_own_line():
    out = _Tty()
    with compile_notice("td", out, after_s=0.05):
        time.sleep(0.7)
    text = out.getvalue()
    assert text.count("\rrtsep: compiling the td engine") >= 3  # the spinner redraws the line
    assert text.endswith("s\n") and "done in" in text.rsplit("\r", 1)[1]


def test_replay_announces_a_compile_on_stderr_before_separating(tmp_path, capsys, monkeypatch):
    import numpy as np
    import soundfile as sf

    from rtsep import Separator
    from rtsep.cli import main

    path = tmp_path / "in.wav"
    sf.write(path, np.random.default_rng(0).standard_normal((1600, 2)) * 0.1, 16000)
    warmup = Separator.warmup

    def slow(self):
        time.sleep(3.5)  # what a first compile looks like from outside
        return warmup(self)

    monkeypatch.setattr(Separator, "warmup", slow)
    assert main(["replay", str(path), "-o", str(tmp_path / "o"), "--engine", "td"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "rtsep: compiling the td engine, once per machine (about a minute)…"
