"""The voice label's parameters and state, as every engine sets them up.

The decision itself runs inside the engines' kernels
(:mod:`rtsep.kernels.evidence`, :mod:`rtsep.kernels.labels`); this module
turns the user's :class:`rtsep.config.LabelFields` into the kernels' named
parameters and holds the label's read-outs for ``info()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import LabelFields
from .kernels.evidence import EvidenceParams, evidence_params, new_state
from .kernels.labels import LabelParams
from .vad import VadEvidence


def label_params(p: LabelFields, fs: float, pinned: int | None = None,
                 use_vad: bool = False, use_near: bool = False) -> tuple[EvidenceParams, LabelParams]:
    """Kernel parameters of the voice label.

    Parameters
    ----------
    p : LabelFields
        Validated label fields of an engine's parameters.
    fs : float
        Sample rate (Hz).
    pinned : int, optional
        Output index the voice is pinned to, overriding ``p.voice`` (the
        live swap key); None: as ``p.voice`` says.
    use_vad : bool
        Whether the speech detector's probabilities are evidence.
    use_near : bool
        Whether the engine measures each output's direct path (rooms: fd).
    """
    ep = evidence_params(fs, p.label_memory_s)
    rate = fs / ep.frame
    if pinned is None:
        pinned = -1 if p.voice == "auto" else int(p.voice)
    first = max(1, int(round(p.label_first_s * rate)))
    lp = LabelParams(guess_frames=max(1, int(round(p.label_guess_evidence_s * rate))), first_frames=first,
                     settle_frames=max(first, int(round(p.label_settle_s * rate))),
                     hold_frames=max(1, int(round(p.label_hold_s * rate))),
                     mod_margin=float(p.label_margin), speech_db=float(p.label_speech_db),
                     tie_db=float(p.label_tie_db), level_margin=float(p.label_level_db),
                     pinned=int(pinned), use_vad=bool(use_vad), vad_speech=float(p.label_vad_speech),
                     vad_ratio=float(p.label_vad_ratio), use_near=bool(use_near),
                     near_margin=float(p.label_near_margin))
    return ep, lp


def initial_selection(p: LabelFields) -> np.ndarray:
    """The selection state ``lab`` (:mod:`rtsep.kernels.labels`) at the start of a stream."""
    start = 0 if p.voice == "auto" else int(p.voice)
    return np.array([start, start, 0, 1 << 40], dtype=np.int64)


def initial_pin(p: LabelFields) -> np.ndarray:
    """The pin state (int64 array of length 1: the pinned output, -1 automatic) at the start of a stream."""
    return np.array([-1 if p.voice == "auto" else int(p.voice)], dtype=np.int64)


def new_label_state(outputs: int) -> np.recarray:
    """Evidence and decision state for ``outputs`` outputs (a recarray of length 1)."""
    return new_state(outputs)


def as_label_state(arr: Any) -> np.recarray:
    """A saved label state (structured array, e.g. from ``np.load``) as the recarray the kernels read."""
    return np.array(arr, copy=True).view(np.recarray)


def label_info(lst: np.recarray, lab: np.ndarray, detector: str | None = None) -> dict[str, Any]:
    """Read-outs of the label for ``info()``: voice index, moves, modulation and level (dB) per output.

    ``detector``: the speech detector's package (:attr:`rtsep.vad.VadEvidence.name`), None without one.
    """
    st = lst[0]
    mod = np.sqrt(np.maximum(st.mod, 0.0)).mean(axis=1)
    return {
        "voice": int(lab[0]),
        "label_moves": int(lab[2]),
        "voice_decided": bool(st.decided),
        "modulation_db": [round(float(m), 3) for m in mod],
        "speech_probability": [round(float(v), 3) for v in st.speech],
        "speech_detector": detector,
        "direct_path": [round(float(v), 3) for v in st.near],
        "level_db": [round(float(v), 2) for v in st.level],
    }


class VoicePin:
    """Mixin of the engines: the user's pin of the voice, kept in the stream state.

    The engine owns ``pin`` (int64 array of length 1, -1: automatic), ``lab``
    (the selection state) and ``_lp`` (its :class:`LabelParams`).
    """

    pin: np.ndarray
    lab: np.ndarray
    lst: np.recarray
    _lp: LabelParams

    def pin_voice(self, output: int | None) -> None:
        """Pin the voice to ``output`` (0-based) from the next evidence frame on, with a crossfade.

        None: decide automatically again (from the evidence gathered meanwhile).
        """
        outputs = int(self.lst[0].level.shape[0])
        if output is not None and (int(output) != output or not 0 <= int(output) < outputs):
            from .errors import ConfigError

            raise ConfigError(f"cannot pin the voice to output {output!r}: this engine has outputs 0 to "
                              f"{outputs - 1} (0-based; --voice counts from 1)")
        self.pin[0] = -1 if output is None else int(output)
        self._sync_pin()

    def swap_voice(self) -> int:
        """Call the other output the voice from now on (a pin); returns the new voice index."""
        other = 1 if int(self.lab[0]) == 0 else 0
        self.pin_voice(other)
        return other

    def _sync_pin(self) -> None:
        self._lp = self._lp._replace(pinned=int(self.pin[0]))


def label_evidence(p: LabelFields, fs: float, outputs: int,
                   use_near: bool = False) -> tuple[EvidenceParams, LabelParams, VadEvidence]:
    """Everything an engine needs for its label: kernel parameters and the speech detector's feeder.

    The detector is used when ``p.label_vad`` is on and a detector package loads (:mod:`rtsep.vad`);
    ``use_near``: the engine measures each output's direct path (fd).
    """
    vad = VadEvidence(fs, outputs, p.label_vad_memory_s, enabled=p.label_vad)
    ep, lp = label_params(p, fs, use_vad=vad.active, use_near=use_near)
    return ep, lp, vad
