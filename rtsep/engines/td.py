"""Time-domain engine: running-covariance PCA whitening + online kurtosis ICA.

Exact for instantaneous mixtures (sources reaching the mics with different
gains), zero algorithmic latency. The maths is in DESIGN §2 and the kernels
(:mod:`rtsep.kernels.td`); this object owns the state and parameters.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..config import TdParams, params_from
from ..kernels.moments import quartic_index_table
from ..kernels.records import kernel_record
from ..kernels.td import new_counters, new_params, new_scratch, td_process
from ..labeling import VoicePin, initial_pin, initial_selection, label_evidence, label_info, new_label_state
from ..lowdelay import LowDelayPostFilter
from .base import check_saved_state


class TimeDomainEngine(VoicePin):
    """Streaming separator for instantaneous mixtures (DESIGN §2).

    Parameters
    ----------
    fs : float
        Sample rate (Hz).
    channels : int
        Microphones M (2 to 8).
    **params
        Fields of :class:`rtsep.config.TdParams`.

    Attributes
    ----------
    latency_samples : int
        0: each output sample is computed from the same input sample; with
        the post-filter (``suppress_db > 0``) its filter bank's delay
        (63 samples at 16 kHz).
    """

    def __init__(self, fs: float, channels: int = 2, **params: Any) -> None:
        self.fs = float(fs)
        self.channels = int(channels)
        self.params: TdParams = params_from(TdParams, params, "td").validated(self.fs, self.channels)
        p = self.params
        m, q = self.channels, p.sources
        self._idx4, self._full_map = quartic_index_table(m)
        lam = math.exp(-1.0 / (p.memory_s * self.fs))
        a_hp = math.exp(-2.0 * math.pi * p.highpass_hz / self.fs)
        lam_f = math.exp(-1.0 / (p.change_memory_s * self.fs))
        # the short-term power for the dead-mic test: 2 ms
        lam_pw = math.exp(-1.0 / (0.002 * self.fs))
        dead_ratio = 10.0 ** (-p.dead_mic_db / 10.0) if p.dead_mic_db > 0 else 0.0
        # after a stuck block the high-pass rings with the step it saw:
        # learn again only once that has decayed by 60 dB (37 ms at 30 Hz)
        hang = 0 if a_hp >= 1.0 else min(round(0.25 * self.fs), math.ceil(math.log(1e-3) / math.log(a_hp)))
        stuck = round(p.stuck_s * self.fs)
        if p.stuck_s > 0:
            stuck = max(2, stuck)
        self._ep, self._lp, self._vad = label_evidence(p, self.fs, p.sources)
        self._kernel_params = new_params(
            beta=1.0 - lam, highpass=a_hp, eps_rel=float(p.eps_rel), beta_short=1.0 - lam_f,
            change_threshold=float(p.change_threshold), outlier_sigma=float(p.outlier_sigma),
            change_min_gain=float(p.change_min_gain), beta_power=1.0 - lam_pw, dead_ratio=float(dead_ratio),
            update_every=int(p.update_every), ref_mic=int(p.ref_mic), crossfade=int(round(p.crossfade_s * self.fs)),
            global_search_every=int(p.global_search_every), warmup=int(round(p.warmup_s * self.fs)),
            change_hold=int(round(p.change_hold_s * self.fs)), short_memory=int(round(p.change_memory_s * self.fs)),
            change_detector=bool(p.change_threshold < math.pi / 4), stuck_run=int(stuck), fault_hang=int(hang),
            label_guess=int(round(p.label_guess_s * self.fs)))
        self._pf = LowDelayPostFilter(self.fs, p.suppress_db) if p.suppress_db > 0 else None
        self.latency_samples = self._pf.latency_samples if self._pf else 0
        self._scratch = new_scratch(m, q)
        self._z_empty = np.zeros((0, q))
        self.reset()

    def reset(self) -> None:
        """Forget the stream: moments, rotation, label and sample count start afresh."""
        m, q = self.channels, self.params.sources
        self.hp = np.zeros((m, 2))
        self.cov = np.zeros((m, m))
        self.m4 = np.zeros(self._idx4.shape[0])
        self.cov_f = np.zeros((m, m))
        self.m4_f = np.zeros(self._idx4.shape[0])
        self.v = np.eye(q, m)
        self.rot = np.eye(q)
        self.w = np.zeros((q, m))
        ref = self.params.ref_mic
        self.w[min(ref, q - 1), ref] = 1.0
        # until the first update the voice is the reference mic itself:
        # nothing is removed before anything is known
        self.wv = np.zeros(m)
        self.wv[ref] = 1.0
        self.dv = np.zeros(m)
        self.kurt = np.zeros(q)
        self.lab = initial_selection(self.params)
        self.lst = new_label_state(q)
        self._vad.buf[...] = 0.0
        self.pin = initial_pin(self.params)
        self._sync_pin()
        self.counters = new_counters()
        self._counters_arg = kernel_record(self.counters)  # the same memory, as the kernel takes it
        self.repeats = np.zeros(m, dtype=np.int64)
        self.pw = np.zeros(m)
        if self._pf:
            self._pf.reset()

    def process(self, x: np.ndarray, whitened: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Separate one block.

        Parameters
        ----------
        x : ndarray, shape (n, M), float64, finite
            Microphone samples.
        whitened : ndarray, shape (n, Q), float64, optional
            If given, filled with the whitened signals z (diagnostics; not
            delayed by the post-filter).

        Returns
        -------
        voice, background : ndarray, shape (n,), float64
            Delayed by :attr:`latency_samples`.
        """
        n = x.shape[0]
        voice = np.empty(n)
        background = np.empty(n)
        img = np.empty((n, self.params.sources))
        write_z = whitened is not None
        s0 = int(self._counters_arg[0]["samples"])
        # cut where the speech detector reads a chunk, so its reading is in
        # the label's state from the same sample on, whatever the block size
        for a, b, ends in self._vad.cuts(s0, n):
            z = whitened[a:b] if write_z else self._z_empty
            td_process(x[a:b], voice[a:b], background[a:b], z, write_z, self.hp, self.cov, self.m4, self.cov_f,
                       self.m4_f, self._idx4, self._full_map, self.v, self.rot, self.w, self.wv, self.dv,
                       self.kurt, self.lab, self._counters_arg, self.repeats, self.pw, self._kernel_params,
                       self._scratch, self.lst, self._ep, self._lp, img[a:b])
            self._vad.feed(img[a:b], ends, self.lst)
        if self._pf:
            return self._pf.process(voice, background)
        return voice, background

    def warmup(self) -> None:
        """Compile the kernels (both ``whitened`` variants) without touching the state."""
        saved = self.state_arrays()
        rng = np.random.default_rng(0)
        k = self.params.update_every
        x = rng.standard_normal((2 * k + 1, self.channels)) * 0.1
        self.process(x)
        self.process(x, whitened=np.empty((x.shape[0], self.params.sources)))
        self.load_state_arrays(saved)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Copies of every state array (enough to resume the stream exactly)."""
        names = ("hp", "cov", "m4", "cov_f", "m4_f", "v", "rot", "w", "wv", "dv", "kurt", "lab", "counters",
                 "repeats", "pw", "lst", "pin")
        out = {**{k: getattr(self, k).copy() for k in names}, "vad": self._vad.state()}
        if self._pf:
            out.update({f"pf_{k}": v for k, v in self._pf.state_arrays().items()})
        return out

    def load_state_arrays(self, state: dict[str, np.ndarray]) -> None:
        """Restore state saved by :meth:`state_arrays` (same fs, channels, params)."""
        # the post-filter's delay line holds what its hop left over: its length varies
        check_saved_state(self.state_arrays(), state, any_length=("pf_fifo_v",))
        for k in self.state_arrays():
            if k == "vad":
                self._vad.load(state[k])
            elif not k.startswith("pf_"):
                getattr(self, k)[...] = state[k]
        if self._pf:
            self._pf.load_state_arrays({k[3:]: v for k, v in state.items() if k.startswith("pf_")})
        self._sync_pin()

    def info(self) -> dict[str, Any]:
        """Voice output index, label evidence and moves, output kurtoses, update counters."""
        st = self.counters[0]
        return {
            **label_info(self.lst, self.lab, self._vad.name),
            "kurtosis": [float(k) for k in self.kurt],
            "updates": int(st.updates),
            "silent_updates": int(st.silent_updates),
            "refused_updates": int(st.refused_updates),
            "changes_detected": int(st.changes),
            "outliers_shrunk": int(st.outliers_shrunk),
            "stuck_samples_skipped": int(st.stuck_skipped),
            "dead_mic_samples_skipped": int(st.dead_skipped),
            "samples_seen": int(st.samples),
        }
