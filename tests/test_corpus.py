"""``rtsep replay IN... --out DIR`` over a corpus: mirrored outputs, failures, resuming, shards, Dask, report.

Small files (1–2 s) and the td engine keep these quick. Tests that start
worker processes (a pool, a Dask cluster, a killed run) or separate many
files are marked ``heavy``: the NUMBA_DISABLE_JIT coverage pass (td at about
real time there) runs only the few in-process ones.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtsep import corpus

from rtsep.material import signals
from rtsep.cli import main
from rtsep.corpus import CorpusFile, discover, parse_shard, run_corpus, shard
from rtsep.errors import ConfigError, DependencyError
from rtsep.replay import replay
from rtsep.report import summarize, write_report

from .conftest import FS

GOOD = ("a.wav", "sub/b.flac", "sub/deeper/c.wav")
BAD = {"text.wav": "not an audio file", "mono.wav": "1 channel", "empty.wav": "no samples",
       "gone.wav": "no such file"}
#: timing.json fields that measure the clock, not the separation
CLOCK_FIELDS = {"processing_s", "rtf", "wall_s"}


def _mixture(seconds: float, seed: int) -> np.ndarray:
    n = int(seconds * FS)
    rng = np.random.default_rng(seed)
    s = np.stack([rng.laplace(size=n) * 0.05, signals.pink_noise(n, seed) * 0.05], 1)
    return signals.mix(s, signals.mixing_matrix(3.0, seed)).astype(np.float32)


def _make_corpus(root: Path, bad: bool = True) -> Path:
    """Good stereo files in a small tree, plus (optionally) one file of each bad kind."""
    for i, rel in enumerate(GOOD):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, _mixture(1.0 + 0.5 * i, i), FS)
    (root / "notes.txt").write_text("not an input: no audio extension\n")
    if bad:
        (root / "text.wav").write_text("this is not audio\n" * 100)
        sf.write(root / "mono.wav", _mixture(1.0, 9)[:, 0], FS)
        sf.write(root / "empty.wav", np.zeros((0, 2), np.float32), FS)
        os.symlink(root / "deleted-meanwhile.wav", root / "gone.wav")  # listed, then missing
    return root


@pytest.fixture()
def tree(tmp_path) -> Path:
    return _make_corpus(tmp_path / "in")


def _bits(path: Path) -> np.ndarray:
    """The samples of a WAV as raw 32-bit patterns (libsndfile's PEAK chunk holds a timestamp, so the
    headers of two runs differ; the audio must not, to the bit)."""
    x, _ = sf.read(path, dtype="float32")
    return x.view(np.uint32)


def _timing(path: Path) -> dict:
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in CLOCK_FIELDS}


def _assert_same_outputs(out_a: Path, out_b: Path, rels=GOOD) -> None:
    for rel in rels:
        for name in ("voice.wav", "background.wav"):
            np.testing.assert_array_equal(_bits(out_a / rel / name), _bits(out_b / rel / name), err_msg=rel)
        assert _timing(out_a / rel / "timing.json") == _timing(out_b / rel / "timing.json")


def _files(out: Path) -> list[str]:
    """Every file under a folder, but the manifest's lock (an empty file, not an output)."""
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                  if p.is_file() and not p.name.endswith(".json.lock"))


# ------------------------------------------------------------------ finding and splitting files

def test_a_folder_is_searched_recursively_for_audio_and_mirrored_by_relative_path(tree):
    found = discover([str(tree)])
    assert [f.rel for f in found] == sorted([*GOOD, *BAD])  # notes.txt is not audio; gone.wav is kept
    assert all(f.path == tree / f.rel for f in found)


def test_several_folders_files_and_globs_keep_apart_and_the_output_folder_is_never_an_input(tmp_path):
    a, b = _make_corpus(tmp_path / "a", bad=False), _make_corpus(tmp_path / "b", bad=False)
    out = a / "out"
    (out / "x.wav").mkdir(parents=True)
    sf.write(out / "x.wav" / "voice.wav", np.zeros((10, 2), np.float32), FS)
    found = discover([str(a), str(b / "a.wav"), str(b / "sub" / "*.flac")], exclude=out)
    assert [f.rel for f in found] == sorted([f"a/{r}" for r in GOOD] + ["b/a.wav", "b/sub/b.flac"])
    assert [f.rel for f in discover([str(tmp_path / "*" / "**" / "c.wav")])] == ["a/sub/deeper/c.wav",
                                                                                  "b/sub/deeper/c.wav"]


def test_nothing_to_do_is_one_clear_error(tmp_path, capsys):
    warned = []
    with pytest.raises(ConfigError, match="no audio files"):
        discover([str(tmp_path / "*.wav")], warn=warned.append)
    assert warned == [f"warning: {tmp_path / '*.wav'} matches no file"]


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_shards_are_disjoint_complete_and_independent_of_the_order_files_were_found(n):
    files = [CorpusFile(Path(f"/c/{i:02d}.wav"), f"{i:02d}.wav") for i in range(23)]
    parts = [shard(files, k, n) for k in range(1, n + 1)]
    rels = [f.rel for p in parts for f in p]
    assert sorted(rels) == [f.rel for f in files] and len(set(rels)) == len(files)  # complete, disjoint
    assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced
    assert [shard(files[::-1], k, n) for k in range(1, n + 1)] == parts  # every machine agrees


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0"])
def test_a_bad_shard_is_refused_with_an_example(text):
    with pytest.raises(ConfigError, match="K/N"):
        parse_shard(text)


def test_shards_of_a_real_run_split_the_files_and_their_manifests_merge_in_the_report(tmp_path):
    tree = _make_corpus(tmp_path / "in", bad=False)
    out = tmp_path / "out"
    done = []
    for k in (1, 2):
        res = run_corpus([str(tree)], out, engine="td", jobs=1, shard_kn=(k, 2))
        done.append({e for e in json.loads(res.manifest_path.read_text())["files"]})
        assert res.manifest_path.name == f"manifest.shard-{k}-of-2.json"
    assert done[0].isdisjoint(done[1]) and done[0] | done[1] == set(GOOD)
    assert summarize(out).done == len(GOOD)


# ------------------------------------------------------------------ a corpus with bad files

def test_bad_files_are_reported_one_line_each_recorded_and_do_not_stop_the_good_ones(tree, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["replay", str(tree), "--out", str(out), "--engine", "td", "--jobs", "1"]) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("rtsep: error:")]
    for rel, expected in BAD.items():
        mine = [ln for ln in err if str(tree / rel) in ln]
        assert len(mine) == 1 and expected in mine[0], err
    assert len(err) == len(BAD) + 1 and "4 of 7 file(s) failed" in err[-1]  # + the closing count

    for rel in GOOD:  # complete, and exactly what replaying the file alone gives
        alone = tmp_path / "alone" / rel
        replay(tree / rel, alone, engine="td")
        for name in ("voice.wav", "background.wav"):
            np.testing.assert_array_equal(_bits(out / rel / name), _bits(alone / name))
        assert _timing(out / rel / "timing.json") == _timing(alone / "timing.json")
    assert not any(name.endswith(".part") for name in _files(out))

    m = json.loads((out / "manifest.json").read_text())["files"]
    assert set(m) == {*GOOD, *BAD}
    for rel in GOOD:
        e = m[rel]
        x = sf.info(tree / rel)
        assert e["status"] == "done" and e["error"] is None
        assert e["input"] == str(tree / rel) and e["size"] == (tree / rel).stat().st_size
        assert e["duration_s"] == pytest.approx(x.frames / x.samplerate) and e["fs"] == FS
        assert e["outputs"] == {"voice": f"{rel}/voice.wav", "background": f"{rel}/background.wav",
                                "timing": f"{rel}/timing.json"}
        assert e["voice_output"] in (0, 1) and e["rtf"] > 0
        v, _ = sf.read(out / rel / "voice.wav")
        assert e["voice_dbfs"] == pytest.approx(10 * np.log10(np.mean(v ** 2)), abs=1e-6)
    for rel, expected in BAD.items():
        assert m[rel]["status"] == "failed" and expected in m[rel]["error"] and m[rel]["outputs"] == {}
        assert not (out / rel).exists()
    assert m["mono.wav"]["channels"] == 1 and m["gone.wav"]["size"] is None


def test_bad_audio_and_clipping_are_one_line_each_naming_the_file_and_guard_events_stay_in_the_files(
        tmp_path, capsys):
    tree = tmp_path / "in"
    tree.mkdir()
    sf.write(tree / "a.wav", np.clip(_mixture(1.0, 0) * 40, -1, 1), FS, subtype="FLOAT")  # clipped
    x = _mixture(1.0, 5)
    x[FS // 2: FS // 2 + 5] = np.nan  # a single-file replay would also log this as it happens
    sf.write(tree / "nan.wav", x, FS, subtype="FLOAT")
    assert main(["replay", str(tree), "--out", str(tmp_path / "out"), "--engine", "td", "--jobs", "1"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("rtsep: 2 file(s), 0 already finished")
    assert err[1].startswith("rtsep: [1/2] a.wav: 1.0 s")
    assert err[2].startswith("rtsep: a.wav: warning: ") and "clipping" in err[2]
    assert err[3].startswith("rtsep: error: nan.wav contains 10 NaN/Inf")
    assert err[4].startswith("rtsep: error: 1 of 2 file(s) failed") and len(err) == 5
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())["files"]
    assert m["a.wav"]["status"] == "done" and "clipping" in m["a.wav"]["warning"]
    e = m["nan.wav"]
    assert e["status"] == "failed" and e["error_kind"] == "BadAudioError"
    assert e["outputs"]["voice"] == "nan.wav/voice.wav"  # NaN replaced by silence: outputs kept
    assert str(tmp_path / "out" / "nan.wav" / "voice.wav") in e["error"]  # where they are, not the staging folder
    v, _ = sf.read(tmp_path / "out" / "nan.wav" / "voice.wav")
    assert v.shape == (FS,) and np.isfinite(v).all()


@pytest.mark.heavy  # ~10 files through the td kernels: compiled pass only
def test_a_second_run_skips_finished_files_and_redoes_changed_forced_or_differently_set_ones(tmp_path):
    tree, out = _make_corpus(tmp_path / "in", bad=False), tmp_path / "out"
    first = run_corpus([str(tree)], out, engine="td", jobs=1)
    assert (first.done, first.skipped) == (3, 0)
    again = run_corpus([str(tree)], out, engine="td", jobs=1)
    assert (again.done, again.skipped) == (0, 3)
    os.utime(tree / GOOD[0], ns=(time.time_ns(), time.time_ns() + 10 ** 9))  # edited since
    (out / GOOD[1] / "background.wav").unlink()  # an output lost
    assert run_corpus([str(tree)], out, engine="td", jobs=1).done == 2
    assert run_corpus([str(tree)], out, engine="td", jobs=1, params={"memory_s": 1.5}).done == 3
    assert run_corpus([str(tree)], out, engine="td", jobs=1, params={"memory_s": 1.5}, force=True).done == 3
    runs = json.loads((out / "manifest.json").read_text())["runs"]
    assert [r["skipped"] for r in runs] == [0, 3, 1, 0, 0]


@pytest.mark.heavy  # ~10 files through the td kernels: compiled pass only
def test_an_interrupted_run_resumes_and_ends_with_the_outputs_of_an_uninterrupted_one(tmp_path):
    tree = _make_corpus(tmp_path / "in", bad=False)
    whole = tmp_path / "whole"
    run_corpus([str(tree)], whole, engine="td", jobs=1)

    def ctrl_c(entry):
        raise KeyboardInterrupt  # right after the first file is recorded

    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        run_corpus([str(tree)], cut, engine="td", jobs=1, after_file=ctrl_c)
    m = json.loads((cut / "manifest.json").read_text())
    assert list(m["files"]) == [GOOD[0]] and m["runs"][-1]["complete"] is False
    assert _files(cut) == ["a.wav/background.wav", "a.wav/timing.json", "a.wav/voice.wav", "manifest.json"]
    res = run_corpus([str(tree)], cut, engine="td", jobs=1)
    assert (res.skipped, res.done) == (1, 2)
    _assert_same_outputs(whole, cut)


def test_two_runs_on_one_manifest_at_once_are_refused(tmp_path):
    tree, out = _make_corpus(tmp_path / "in", bad=False), tmp_path / "out"
    out.mkdir()
    with corpus.ManifestLock(out / "manifest.json"):  # as a run in progress holds it
        with pytest.raises(ConfigError, match="another rtsep replay is writing"):
            run_corpus([str(tree)], out, engine="td", jobs=1)
        assert run_corpus([str(tree)], out, engine="td", jobs=1, shard_kn=(1, 2)).done == 2  # its own manifest
    assert not (out / "manifest.json").exists()


def test_an_output_folder_that_is_a_file_is_one_clear_error(tree, tmp_path):
    (tmp_path / "taken").write_text("x")
    with pytest.raises(ConfigError, match="cannot create the output folder"):
        run_corpus([str(tree)], tmp_path / "taken" / "out", engine="td", jobs=1)


# ------------------------------------------------------------------ processes, kills, Dask

@pytest.mark.heavy
def test_parallel_jobs_give_the_serial_outputs(tmp_path):
    tree = _make_corpus(tmp_path / "in")
    run_corpus([str(tree)], tmp_path / "serial", engine="td", jobs=1)
    res = run_corpus([str(tree)], tmp_path / "pool", engine="td", jobs=2)
    assert (res.done, res.failed) == (3, 4)
    _assert_same_outputs(tmp_path / "serial", tmp_path / "pool")


def _start(args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rtsep", "replay", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


def _wait_for_first_entry(manifest: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if manifest.exists() and json.loads(manifest.read_text())["files"]:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("no file finished in time")


def _longer_corpus(root: Path, n: int = 4) -> list[str]:
    rels = [f"f{i}.wav" for i in range(n)]
    root.mkdir(parents=True)
    for i, rel in enumerate(rels):
        sf.write(root / rel, _mixture(2.0, i), FS)
    return rels


@pytest.mark.heavy
@pytest.mark.parametrize("sig,backend", [(signal.SIGINT, []), (signal.SIGKILL, []),
                                         (signal.SIGINT, ["--dask", "local"])], ids=["ctrl-c", "kill-9", "dask-ctrl-c"])
def test_a_killed_run_leaves_only_complete_outputs_and_resumes_to_the_same_result(tmp_path, sig, backend):
    if backend:
        pytest.importorskip("distributed", reason="the --dask path needs `pip install distributed` (rtsep[dask])")
    tree = tmp_path / "in"
    rels = _longer_corpus(tree)
    out = tmp_path / "out"
    # blocks of 2 samples: ~1 s per file, so the kill lands mid-corpus (outputs do not depend on the block)
    args = [str(tree), "--out", str(out), "--engine", "td", "--jobs", "2", "--block", "2", "-q", *backend]
    proc = _start(args)
    _wait_for_first_entry(out / "manifest.json", proc)
    os.killpg(proc.pid, sig)  # the whole process group, as a terminal's Ctrl-C (or a crash) would
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and err.splitlines() == ["rtsep: interrupted"]
        assert not [f for f in _files(out) if ".part" in f]  # workers removed their unfinished files
    for folder in {Path(f).parent for f in _files(out) if "/" in f and ".part" not in f}:
        # a published folder is complete (timing.json moves last) and is in the manifest
        assert sorted(p.name for p in (out / folder).iterdir()) == ["background.wav", "timing.json", "voice.wav"]
    finished = json.loads((out / "manifest.json").read_text())["files"]
    assert 1 <= len(finished) < len(rels)

    proc = _start(args)
    assert proc.wait(timeout=300) == 0, proc.communicate()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs"][-1]["skipped"] >= len(finished)
    run_corpus([str(tree)], tmp_path / "whole", engine="td", block=2, jobs=1)
    _assert_same_outputs(tmp_path / "whole", out, rels)
    assert not [f for f in _files(out) if ".part" in f]


@pytest.mark.heavy
def test_dask_local_cluster_gives_the_serial_outputs_and_manifest(tmp_path):
    pytest.importorskip("distributed", reason="the --dask path needs `pip install distributed` (rtsep[dask])")
    tree = _make_corpus(tmp_path / "in")
    run_corpus([str(tree)], tmp_path / "serial", engine="td", jobs=1)
    assert main(["replay", str(tree), "--out", str(tmp_path / "dask"), "--engine", "td", "--dask", "local",
                 "--jobs", "2", "-q"]) == 1  # the bad files fail there too
    _assert_same_outputs(tmp_path / "serial", tmp_path / "dask")
    a = json.loads((tmp_path / "serial" / "manifest.json").read_text())["files"]
    b = json.loads((tmp_path / "dask" / "manifest.json").read_text())["files"]
    keep = ("status", "error", "outputs", "voice_output", "duration_s", "fs", "voice_dbfs", "size")
    assert {r: [e[k] for k in keep] for r, e in a.items()} == {r: [e[k] for k in keep] for r, e in b.items()}


def test_dask_without_distributed_is_one_actionable_line(tree, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    with pytest.raises(DependencyError, match=r"pip install 'rtsep\[dask\]'"):
        run_corpus([str(tree)], tmp_path / "out", engine="td", dask="local")


# ------------------------------------------------------------------ the report

def test_report_counts_hours_failures_and_draws_level_and_rtf_histograms(tree, tmp_path, capsys):
    out = tmp_path / "out"
    run_corpus([str(tree)], out, engine="td", jobs=1)
    assert (out / "summary.md").exists() is False  # run_corpus alone writes no report; the CLI does
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    s = summarize(out)
    seconds = sum(sf.info(tree / r).duration for r in GOOD)
    assert (s.files, s.done, s.failed) == (7, 3, 4)
    assert s.audio_s == pytest.approx(seconds) and len(s.rtf) == 3 and len(s.voice_dbfs) == 3
    assert f"| files | 7 (3 separated, 4 failed) |" in text
    assert f"{seconds / 3600:.3f} h" in text
    for rel in BAD:
        assert f"`{rel}`" in text
    assert (out / "summary.md").read_text().strip() == text.strip()
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_of_a_folder_without_manifest_says_what_to_give(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        write_report(tmp_path)


def test_without_a_terminal_progress_is_one_line_per_file_with_running_rtf_and_eta():
    import io

    buf = io.StringIO()
    prog = corpus.Progress(tty=False, stream=buf)
    prog.start(total=3, skipped=1, audio_total_s=30.0, backend="2 processes")
    ok = {"rel": "a.wav", "input": "/c/a.wav", "status": "done", "duration_s": 10.0, "rtf": 0.02,
          "voice_output": 1}
    prog.file_done(ok)
    prog.file_done({"rel": "b.wav", "input": "/c/b.wav", "status": "failed", "error": "/c/b.wav: no such file"})
    prog.stop()
    lines = buf.getvalue().splitlines()
    assert lines[0] == "rtsep: 3 file(s), 1 already finished, 0.01 h of audio to separate (2 processes)"
    assert lines[1].startswith("rtsep: [2/3] a.wav: 10.0 s, RTF 0.0200, voice = output 1; 0.2/0.5 min audio, RTF ")
    assert "ETA " in lines[1] and "--:--" not in lines[1]
    assert lines[2] == "rtsep: error: /c/b.wav: no such file" and len(lines) == 3
    quiet = io.StringIO()
    prog = corpus.Progress(tty=False, quiet=True, stream=quiet)
    prog.start(total=1, skipped=0, audio_total_s=1.0, backend="serial")
    prog.file_done(ok)
    assert quiet.getvalue() == ""  # -q: failures only


def test_single_file_replay_is_unchanged_by_corpus_mode(tree, tmp_path):
    assert not corpus.is_corpus_request([str(tree / "a.wav")])
    assert main(["replay", str(tree / "a.wav"), "--out", str(tmp_path / "one"), "--engine", "td", "-q"]) == 0
    assert _files(tmp_path / "one") == ["background.wav", "timing.json", "voice.wav"]
