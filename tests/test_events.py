"""Guard events: what the protections did is counted, logged once in a while, and reported."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import soundfile as sf

from rtsep import Separator

from rtsep.material import signals
from rtsep.cli import main
from rtsep.events import GuardLog

from .conftest import FS


def _mixture(n: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    s = np.stack([rng.laplace(size=n), rng.uniform(-1, 1, n)], 1) * 0.03  # never near clipping
    return signals.mix(s, np.array([[1.0, 0.6], [0.5, 1.0]]))


def test_a_dead_mic_is_counted_and_logged_once_not_per_sample(caplog):
    x = _mixture(4 * FS)
    x[FS:3 * FS, 1] = 0.0  # two seconds of a dead second mic
    sep = Separator(FS)
    with caplog.at_level(logging.INFO, logger="rtsep"):
        for a in range(0, x.shape[0], 160):
            sep.process(x[a:a + 160])
    records = [r for r in caplog.records if "microphone" in r.getMessage()]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    assert "at 1.2" in records[0].getMessage() or "at 1.0" in records[0].getMessage()
    kinds = {e["kind"] for e in sep.events}
    assert kinds & {"stuck_samples_skipped", "dead_mic_samples_skipped"}
    event = next(e for e in sep.events if e["kind"] in kinds)
    assert 1.0 <= event["t_s"] <= 1.5 and event["total"] > 0


def test_the_same_guard_is_logged_again_only_after_five_seconds_of_stream():
    log = GuardLog(FS, every_s=5.0)
    for second in range(12):
        log.update({"scene_restarts": second + 1}, second * FS)
    assert [e["t_s"] for e in log.events] == [0.0, 5.0, 10.0]
    assert log.totals() == {"scene_restarts": 12}


def test_a_clean_stream_logs_nothing(caplog):
    sep = Separator(FS)
    with caplog.at_level(logging.INFO, logger="rtsep"):
        sep.process(_mixture(3 * FS))
    assert not caplog.records and sep.events == []


def test_a_resumed_stream_does_not_report_old_events_again(caplog):
    x = _mixture(3 * FS)
    x[FS // 2:FS, 1] = 0.0
    first = Separator(FS)
    first.process(x[:2 * FS])
    assert first.events
    second = Separator.from_state(first.state())
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="rtsep"):
        second.process(x[2 * FS:])
    assert not caplog.records and second.events == []


def test_replay_prints_guard_events_and_lists_them_in_timing_json(tmp_path, capsys):
    x = (_mixture(3 * FS) * 0.5).astype(np.float32)
    x[FS:2 * FS, 1] = 0.0
    path = tmp_path / "dead.wav"
    sf.write(path, x, FS)
    assert main(["replay", str(path), "-o", str(tmp_path / "o"), "--engine", "td"]) == 0
    err = capsys.readouterr().err
    assert "rtsep: dead.wav: at 1." in err and "microphone" in err and "Traceback" not in err
    timing = json.loads((tmp_path / "o" / "timing.json").read_text())
    assert any(e["kind"] in ("stuck_samples_skipped", "dead_mic_samples_skipped") for e in timing["guard_events"])
    # and --quiet keeps the console to errors
    assert main(["replay", str(path), "-o", str(tmp_path / "q"), "-q", "--engine", "td"]) == 0
    assert capsys.readouterr().err == ""


def test_the_library_prints_nothing_by_itself():
    """Guard events are counted, but an application that configured no logging sees no stray stderr."""
    code = ("import numpy as np; from rtsep import Separator; "
            "x = np.random.default_rng(0).standard_normal((32000, 2)) * 0.05; x[8000:24000, 1] = 0; "
            "s = Separator(16000); s.process(x); assert s.events, 'no event'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_the_cli_leaves_the_rtsep_logger_as_it_found_it(tmp_path, capsys):
    x = _mixture(3 * FS)
    x[FS:2 * FS, 1] = 0.0
    logger = logging.getLogger("rtsep")
    before = (logger.level, logger.propagate, list(logger.handlers))
    path = tmp_path / "dead.wav"
    sf.write(path, (x * 0.5).astype(np.float32), FS)
    assert main(["replay", str(path), "-o", str(tmp_path / "o"), "--engine", "td"]) == 0
    assert "microphone" in capsys.readouterr().err
    assert (logger.level, logger.propagate, list(logger.handlers)) == before


def test_replay_prints_each_kind_of_guard_event_once_per_file_named_by_the_file(tmp_path, capsys):
    x = (_mixture(14 * FS) * 0.5).astype(np.float32)
    x[FS:2 * FS, 1] = 0.0  # the same fault twice, further apart than the log's 5 s spacing
    x[10 * FS:11 * FS, 1] = 0.0
    path = tmp_path / "twice.wav"
    sf.write(path, x, FS)
    assert main(["replay", str(path), "-o", str(tmp_path / "o"), "--engine", "td"]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if " so far)" in ln]
    kinds = [ln.rsplit("(", 1)[1].split(":")[0] for ln in lines]
    assert lines and all(ln.startswith("rtsep: twice.wav: at ") for ln in lines)
    assert len(kinds) == len(set(kinds)), lines
    timing = json.loads((tmp_path / "o" / "timing.json").read_text())
    assert len(timing["guard_events"]) > len(lines)  # the record keeps them all


def test_routine_guard_actions_show_only_with_verbose(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--no-plot"]) == 0
    assert "runaway-gain" not in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path), "--no-plot", "-v"]) == 0
    err = capsys.readouterr().err
    assert "rtsep: demo: at " in err and "implausible separation weights refused" in err


def test_guard_records_carry_the_source_they_were_logged_under(caplog):
    from rtsep.events import log_source

    x = _mixture(3 * FS)
    x[FS:2 * FS, 1] = 0.0
    with caplog.at_level(logging.INFO, logger="rtsep"), log_source("FastICA (sklearn) on inst-cond20"):
        Separator(FS).process(x)
    Separator(FS).process(x)  # outside: no source
    sources = {getattr(r, "source", "missing") for r in caplog.records if getattr(r, "guard", None)}
    assert sources == {"FastICA (sklearn) on inst-cond20", None}, sources
