"""Speed of the time-domain engine: real-time factor and per-block time, one core.

Run: ``.venv/bin/python -m pytest bench/test_speed_td.py --benchmark-only``. The
per-block percentiles (p50/p99) and the real-time factor are printed by
pytest-benchmark (time per call ÷ block duration).
"""

from __future__ import annotations

import numpy as np
import pytest

from rtsep import Separator


@pytest.mark.parametrize("fs", [16000, 48000])
@pytest.mark.parametrize("block", [64, 256, 1024])
def test_td_block_time(benchmark, fs, block):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((fs * 4, 2)) * 0.1).astype(np.float32)
    sep = Separator(fs).warmup()
    sep.process(x[: fs])  # converge first, steady state is what is timed
    pos = [fs]

    def one_block():
        p = pos[0]
        if p + block > x.shape[0]:
            p = fs
        sep.process(x[p:p + block])
        pos[0] = p + block

    benchmark.pedantic(one_block, rounds=2000, iterations=1, warmup_rounds=50)
    st = benchmark.stats.stats
    data = np.asarray(st.data)
    dur = block / fs
    benchmark.extra_info.update(rtf_mean=st.mean / dur, p50_ms=1e3 * np.percentile(data, 50),
                                p99_ms=1e3 * np.percentile(data, 99), block_ms=1e3 * dur,
                                rtf_p99=np.percentile(data, 99) / dur)
