"""``rtsep replay`` / ``rtsep demo`` from the command line, good input and bad."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtsep import Separator

from rtsep.material import signals
from rtsep.cli import main

from .conftest import FS


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtsep", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def stereo(tmp_path_factory) -> Path:
    n = 3 * FS
    rng = np.random.default_rng(0)
    s = np.stack([rng.laplace(size=n) * 0.05, signals.music_like(n, FS, 2)], 1)
    x = signals.mix(s, signals.mixing_matrix(3.0, 1)).astype(np.float32)
    path = tmp_path_factory.mktemp("in") / "mix.wav"
    sf.write(path, x, FS, subtype="PCM_16")
    return path


@pytest.mark.heavy  # the default (fd) engine in plain Python runs at 20x real time: compiled pass only
def test_replay_writes_voice_and_background_with_the_inputs_rate_and_length(stereo, tmp_path):
    out = tmp_path / "out"
    proc = _run("replay", str(stereo), "--out", str(out), "--block", "256")
    assert proc.returncode == 0, proc.stderr
    x, fs_in = sf.read(stereo, dtype="float32")
    for name in ("voice", "background"):
        y, fs = sf.read(out / f"{name}.wav", dtype="float32")
        assert fs == fs_in and y.shape == (x.shape[0],)
    timing = json.loads((out / "timing.json").read_text())
    assert {"processing_s", "audio_s", "rtf", "latency_samples"} <= timing.keys()
    assert timing["audio_s"] == pytest.approx(3.0)
    assert timing["engine"] == "fd"  # the default for recordings: they are room mixtures
    assert 0 < timing["rtf"] < 1
    assert not list(out.glob(".*.part"))  # no temporary file left behind
    assert "real-time factor" in proc.stdout


def test_replay_output_is_the_separator_output_bit_for_bit(stereo, tmp_path):
    assert main(["replay", str(stereo), "-o", str(tmp_path), "--block", "100", "-q", "--engine", "td",
                 "--subtype", "FLOAT"]) == 0
    x, _ = sf.read(stereo, dtype="float32")
    v_ref, b_ref = Separator(FS).process(x)
    v, _ = sf.read(tmp_path / "voice.wav", dtype="float32")
    b, _ = sf.read(tmp_path / "background.wav", dtype="float32")
    np.testing.assert_array_equal(v, v_ref)
    np.testing.assert_array_equal(b, b_ref)


def test_replay_picks_two_channels_of_a_multichannel_file(stereo, tmp_path):
    x, _ = sf.read(stereo, dtype="float32")
    three = tmp_path / "three.wav"
    sf.write(three, np.column_stack([x[:, 1], x[:, 0] * 0, x[:, 0]]), FS)
    assert main(["replay", str(three), "-o", str(tmp_path / "o"), "--channels", "3,1", "-q", "--engine", "td",
                 "--subtype", "FLOAT"]) == 0
    v, _ = sf.read(tmp_path / "o" / "voice.wav", dtype="float32")
    np.testing.assert_array_equal(v, Separator(FS).process(x)[0])


def test_replay_engine_parameters_are_passed_and_validated(stereo, tmp_path):
    assert main(["replay", str(stereo), "-o", str(tmp_path), "-q", "--engine", "td", "--param", "memory_s=1.5"]) == 0
    proc = _run("replay", str(stereo), "-o", str(tmp_path), "--engine", "td", "--param", "memory_s=-1")
    assert proc.returncode != 0 and "memory_s" in proc.stderr and "range" in proc.stderr


def test_replay_suppress_is_the_post_filter_and_the_files_stay_aligned_with_the_input(stereo, tmp_path):
    x, _ = sf.read(stereo, dtype="float32")
    assert main(["replay", str(stereo), "-o", str(tmp_path), "-q", "--engine", "td", "--subtype", "FLOAT",
                 "--suppress", "12"]) == 0
    v, _ = sf.read(tmp_path / "voice.wav", dtype="float32")
    sep = Separator(FS, suppress_db=12.0)
    lat = sep.latency_samples
    assert lat == 63
    # the files are aligned with the input: the filter bank's delay is flushed and trimmed
    want = sep.process(np.concatenate([x, np.zeros((lat, 2), np.float32)]))[0][lat:]
    np.testing.assert_array_equal(v, want)
    proc = _run("replay", str(stereo), "-o", str(tmp_path), "--engine", "td", "--suppress", "-3")
    assert proc.returncode != 0 and "suppress_db" in proc.stderr and "Traceback" not in proc.stderr


def test_replay_low_delay_halves_fds_latency_and_the_files_stay_aligned(stereo, tmp_path):
    import json

    # half a second: the low-delay post-filter's hops are short, a minute of plain Python for 3 s
    x, _ = sf.read(stereo)
    x = x[: FS // 2 + 123]
    short = tmp_path / "short.wav"
    sf.write(short, x, FS, subtype="PCM_16")
    assert main(["replay", str(short), "-o", str(tmp_path), "-q", "--engine", "fd", "--low-delay"]) == 0
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert timing["latency_samples"] == 511  # two hops less one, against 1023
    assert len(sf.read(tmp_path / "voice.wav")[0]) == len(x)
    proc = _run("replay", str(stereo), "-o", str(tmp_path / "td"), "--engine", "td", "--low-delay")
    assert proc.returncode != 0 and "--engine fd" in proc.stderr and "Traceback" not in proc.stderr


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    n = FS
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, 2)).astype(np.float32) * 0.1
    files = {}
    files["missing"] = (tmp / "nope.wav", "no such file")
    p = tmp / "text.wav"
    p.write_text("this is not audio\n" * 100)
    files["not_audio"] = (p, "not an audio file")
    p = tmp / "mono.wav"
    sf.write(p, x[:, 0], FS)
    files["mono"] = (p, "1 channel")
    p = tmp / "three.wav"
    sf.write(p, np.column_stack([x, x[:, :1]]), FS)
    files["three_channels"] = (p, "--channels")
    p = tmp / "zeros.wav"
    sf.write(p, np.zeros((n, 2), np.float32), FS)
    files["all_zeros"] = (p, "silent")
    p = tmp / "nan.wav"
    y = x.copy()
    y[FS // 2: FS // 2 + 10] = np.nan
    sf.write(p, y, FS, subtype="FLOAT")
    files["nan"] = (p, "NaN")
    p = tmp / "empty.wav"
    sf.write(p, np.zeros((0, 2), np.float32), FS)
    files["zero_length"] = (p, "no samples")
    p = tmp / "rate.wav"
    sf.write(p, x, 4000)
    files["rate_too_low"] = (p, "sample rate")
    return files


@pytest.mark.parametrize("case", ["missing", "not_audio", "mono", "three_channels", "all_zeros", "nan",
                                  "zero_length", "rate_too_low"])
def test_bad_input_gives_one_clear_line_and_a_nonzero_exit_without_traceback(case, tmp_path):
    path, expected = _bad_files(tmp_path)[case]
    proc = _run("replay", str(path), "--out", str(tmp_path / "out"), "--engine", "td")
    assert proc.returncode not in (0, 70), proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rtsep: error:") and expected in lines[0]
    assert "Traceback" not in proc.stderr


def test_nan_input_still_leaves_valid_outputs_with_nan_replaced(tmp_path):
    path, _ = _bad_files(tmp_path)["nan"]
    assert main(["replay", str(path), "-o", str(tmp_path / "o"), "-q", "--engine", "td"]) != 0
    v, fs = sf.read(tmp_path / "o" / "voice.wav", dtype="float32")
    assert v.shape == (FS,) and np.isfinite(v).all()


def test_clipped_input_warns_but_separates(tmp_path, capsys):
    x = np.clip(np.random.default_rng(2).standard_normal((FS, 2)), -1, 1).astype(np.float32)
    p = tmp_path / "clip.wav"
    sf.write(p, x, FS, subtype="FLOAT")
    assert main(["replay", str(p), "-o", str(tmp_path / "o"), "-q", "--engine", "td"]) == 0
    assert "clipping" in capsys.readouterr().err
    v, _ = sf.read(tmp_path / "o" / "voice.wav")
    assert np.isfinite(v).all()


def test_demo_runs_separates_the_shipped_talker_and_writes_files(tmp_path):
    proc = _run("demo", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "voice output is the talker: yes" in proc.stdout
    second_half_sir = float(proc.stdout.split("dB (whole file), ")[1].split(" dB")[0])
    assert second_half_sir >= 30.0
    for name in ("mixture.wav", "voice.wav", "background.wav", "demo.png"):
        assert (tmp_path / name).stat().st_size > 1000


def _unwritable_places(tmp: Path) -> dict[str, tuple[Path, str]]:
    a_file = tmp / "taken.txt"
    a_file.write_text("not a folder\n")
    places = {"existing_file": (a_file, "is a file, not a folder"),
              "under_a_file": (a_file / "sub", "is a file, so no folder")}
    # root writes through permission bits, so a read-only folder needs a read-only file system
    places["read_only"] = (Path("/sys"), "cannot write there")
    return places


@pytest.mark.parametrize("case", ["existing_file", "under_a_file", "read_only"])
@pytest.mark.parametrize("command", ["replay", "demo"])
def test_an_unusable_output_folder_is_one_line_naming_the_problem_before_any_work(
        command, case, stereo, tmp_path, capsys, monkeypatch):
    out, expected = _unwritable_places(tmp_path)[case]
    if case == "read_only" and not out.is_dir():
        pytest.skip("no /sys (a read-only folder even for root) on this machine")

    def no_work(*_a, **_k):
        raise AssertionError("separation started before the output folder was checked")

    monkeypatch.setattr("rtsep.demo.demo_clip", no_work)
    monkeypatch.setattr("rtsep.replay.Separator", no_work)
    argv = ["replay", str(stereo)] if command == "replay" else ["demo"]
    status = main([*argv, "--out", str(out), "--engine", "td"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert status not in (0, 70)
    assert len(err) == 1 and err[0].startswith("rtsep: error: --out") and expected in err[0], err


def test_bench_accepts_short_method_names_and_refuses_unknown_ones_in_one_line(capsys):
    from rtsep.bench import resolve_methods

    assert resolve_methods("td, FD,fastica,picard") == ["rtsep td", "rtsep fd", "FastICA (sklearn)", "Picard"]
    assert resolve_methods("Picard") == ["Picard"]
    assert main(["bench", "--methods", "td,nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rtsep: error: --methods: unknown method 'nope'") and "fastica" in err


def test_every_option_of_every_command_says_what_it_does():
    import argparse

    from rtsep.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    silent = [f"{name} {'/'.join(act.option_strings) or act.dest}"
              for name, parser in sub.choices.items() for act in parser._actions
              if not isinstance(act, argparse._HelpAction) and not act.help]
    assert not silent, silent


@pytest.mark.parametrize("cond", ["1", "0.5"])
def test_demo_refuses_a_mixing_that_mixes_nothing_instead_of_printing_minus_infinity(cond, tmp_path, capsys):
    assert main(["demo", "--cond", cond, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"rtsep: error: --cond {cond}") and "above 1" in err
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_a_config_file_with_an_unknown_table_is_refused_naming_it_and_the_known_ones(stereo, tmp_path, capsys):
    conf = tmp_path / "p.toml"
    conf.write_text("[td]\nmemory_s = 2\n\n[tdd]\nmemory_s = 3\n")
    assert main(["replay", str(stereo), "-o", str(tmp_path / "o"), "--engine", "td", "--config", str(conf)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rtsep: error: --config") and "'tdd'" in err and "known: td, fd" in err


def test_live_takes_output_device_and_still_accepts_the_old_o_with_a_deprecation_warning(caplog):
    from rtsep.cli import build_parser
    from rtsep.live import config_from_args

    parser = build_parser()
    assert config_from_args(parser.parse_args(["live", "--output-device", "3"])).output == "3"
    assert config_from_args(parser.parse_args(["live", "--output", "3"])).output == "3"
    with caplog.at_level("WARNING", logger="rtsep"):
        assert config_from_args(parser.parse_args(["live", "-o", "3"])).output == "3"
    assert "--output-device" in caplog.text and "deprecated" in caplog.text


def test_outputs_keep_the_inputs_sample_format_unless_told_otherwise(stereo, tmp_path):
    assert sf.info(stereo).subtype == "PCM_16"
    assert main(["replay", str(stereo), "-o", str(tmp_path / "same"), "-q", "--engine", "td"]) == 0
    assert main(["replay", str(stereo), "-o", str(tmp_path / "f"), "-q", "--engine", "td", "--subtype", "float"]) == 0
    for name in ("voice.wav", "background.wav"):
        assert sf.info(tmp_path / "same" / name).subtype == "PCM_16"
        assert sf.info(tmp_path / "f" / name).subtype == "FLOAT"
    assert json.loads((tmp_path / "same" / "timing.json").read_text())["output_subtype"] == "PCM_16"


def test_float_outputs_carry_the_fmt_chunk_extension_and_fact_chunk_that_sox_expects(stereo, tmp_path):
    assert main(["replay", str(stereo), "-o", str(tmp_path), "-q", "--engine", "td", "--subtype", "FLOAT"]) == 0
    path = tmp_path / "voice.wav"
    head = path.read_bytes()[:58]
    fmt_size, tag = int.from_bytes(head[16:20], "little"), int.from_bytes(head[20:22], "little")
    assert head[12:16] == b"fmt " and fmt_size == 18 and tag == 3 and head[36:38] == b"\0\0"  # cbSize 0
    assert head[38:42] == b"fact" and int.from_bytes(head[46:50], "little") == 3 * FS
    assert head[50:54] == b"data" and int.from_bytes(head[54:58], "little") == 4 * 3 * FS
    v, _ = sf.read(path, dtype="float32")
    np.testing.assert_array_equal(v, Separator(FS).process(sf.read(stereo, dtype="float32")[0])[0])
    if shutil.which("sox"):
        proc = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True)
        assert proc.returncode == 0 and "WARN" not in proc.stderr, proc.stderr


def test_stereo_writes_one_file_with_the_voice_left_and_the_background_right(stereo, tmp_path):
    assert main(["replay", str(stereo), "-o", str(tmp_path / "m"), "-q", "--engine", "td"]) == 0
    assert main(["replay", str(stereo), "-o", str(tmp_path / "s"), "-q", "--engine", "td", "--stereo"]) == 0
    both, _ = sf.read(tmp_path / "s" / "separated.wav", dtype="float32")
    assert both.shape[1] == 2 and not (tmp_path / "s" / "voice.wav").exists()
    np.testing.assert_array_equal(both[:, 0], sf.read(tmp_path / "m" / "voice.wav", dtype="float32")[0])
    np.testing.assert_array_equal(both[:, 1], sf.read(tmp_path / "m" / "background.wav", dtype="float32")[0])


@pytest.mark.parametrize("fmt", ["WAV", "FLAC"])
def test_replay_dash_reads_the_recording_from_stdin_like_a_file(fmt, stereo, tmp_path):
    x, _ = sf.read(stereo, dtype="float32")
    src = tmp_path / f"in.{fmt.lower()}"
    sf.write(src, x, FS, format=fmt, subtype="PCM_16")
    with open(src, "rb") as stdin:
        proc = subprocess.run([sys.executable, "-m", "rtsep", "replay", "-", "-o", str(tmp_path / "o"), "--engine",
                               "td"], stdin=stdin, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    v, _ = sf.read(tmp_path / "o" / "voice.wav", dtype="float32")
    np.testing.assert_array_equal(v, sf.read(_replayed(stereo, tmp_path), dtype="float32")[0])
    assert json.loads((tmp_path / "o" / "timing.json").read_text())["input"] == "stdin"


def _replayed(path: Path, tmp: Path) -> Path:
    assert main(["replay", str(path), "-o", str(tmp / "ref"), "-q", "--engine", "td"]) == 0
    return tmp / "ref" / "voice.wav"


def test_a_truncated_wav_is_separated_with_one_warning_saying_so(stereo, tmp_path, capsys):
    cut = tmp_path / "cut.wav"
    data = stereo.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    assert main(["replay", str(cut), "-o", str(tmp_path / "o"), "--engine", "td"]) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if "truncated" in ln]
    assert len(err) == 1 and "cut.wav" in err[0] and "3.00 s its header announces" in err[0], err
    assert sf.info(tmp_path / "o" / "voice.wav").frames == pytest.approx(1.5 * FS, abs=20)


def test_the_commands_that_take_recordings_share_one_default_engine_and_say_why():
    from rtsep.cli import build_parser
    from rtsep.options import DEFAULT_ENGINE

    parser = build_parser()
    defaults = {"replay": parser.parse_args(["replay", "in.wav", "-o", "d"]).engine,
                "live": parser.parse_args(["live"]).engine,
                "client": parser.parse_args(["client", "in.wav", "-o", "d"]).engine}
    assert set(defaults.values()) == {DEFAULT_ENGINE}, defaults
    assert parser.parse_args(["demo"]).engine == "td"  # its own mixture is instantaneous: said in its help
    import argparse

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("replay", "live", "client", "demo"):
        engine = next(a for a in sub.choices[name]._actions if a.dest == "engine")
        assert "because" in engine.help, (name, engine.help)


def test_an_integer_output_format_clips_what_exceeds_full_scale_and_counts_it(tmp_path):
    from rtsep.io_files import AtomicWavWriter

    with AtomicWavWriter(tmp_path / "o.wav", FS, 1, "PCM_16") as w:
        w.write(np.array([0.5, 1.5, -2.0, -1.0], np.float32))
    y, _ = sf.read(tmp_path / "o.wav", dtype="int16")
    assert w.clipped == 2 and y.tolist() == [16384, 32767, -32768, -32768]
