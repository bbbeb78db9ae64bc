"""The separation figure: the demo's and `replay --plot`'s, in bounded memory."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from rtsep.cli import main
from rtsep.demo import TALKER_SHARE_YES, talker_share
from rtsep.plots import StreamSummary

FS = 16000


def test_replay_plot_writes_the_figure_and_lists_it(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.laplace(size=(2 * FS, 2)).astype(np.float32) * 0.05
    path = tmp_path / "in.wav"
    sf.write(path, x, FS)
    assert main(["replay", str(path), "-o", str(tmp_path / "o"), "--engine", "td", "--plot"]) == 0
    png = tmp_path / "o" / "replay.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert json.loads((tmp_path / "o" / "timing.json").read_text())["outputs"]["plot"] == "replay.png"
    assert str(png) in capsys.readouterr().out


def test_the_figure_of_a_long_stream_keeps_a_bounded_number_of_columns_that_cover_it():
    s = StreamSummary(FS, most=100)
    block = np.zeros((256, 2), np.float32)
    for i in range(600 * FS // 256):  # ten minutes, in the blocks a replay feeds
        s.add_input(block)
        s.add_output(block[:, 0], block[:, 1])
        s.label(i * 256 / FS, i // 15_000 % 2)  # two changes
    s.finish()
    assert 100 <= len(s._in.lo) <= 200 and s._in.power.shape[0] == len(s._in.lo) == len(s._out.lo)
    assert s._label == [0, 1, 0]
    assert len(s._in.lo) * s._in.width >= 600 * FS - 256  # the columns still cover all ten minutes


def test_the_talker_share_counts_the_seconds_the_outputs_were_swapped():
    rng = np.random.default_rng(1)
    n = 8 * FS
    talker, background = rng.laplace(size=n), rng.standard_normal(n)
    voice = talker.copy()
    voice[2 * FS:5 * FS] = background[2 * FS:5 * FS]  # swapped for 3 s
    assert talker_share(talker, talker, background, FS) == 1.0
    share = talker_share(voice, talker, background, FS)
    assert share == 5 / 8 and share < TALKER_SHARE_YES


def test_windows_where_the_talker_is_silent_do_not_count():
    rng = np.random.default_rng(2)
    n = 4 * FS
    talker, background = rng.laplace(size=n), rng.standard_normal(n)
    talker[:2 * FS] = 0.0
    voice = talker + 0.01 * background  # in the silent half the voice output is all background residue
    assert talker_share(voice, talker, background, FS) == 1.0
