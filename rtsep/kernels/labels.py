"""Voice/background label decision with hysteresis and a click-free crossfade.

The label state is an int64 array ``lab`` of length 4:

- ``lab[0]`` voice output index now,
- ``lab[1]`` voice output index before the last swap,
- ``lab[2]`` samples the challenger has led by ``margin`` (hold counter),
- ``lab[3]`` samples elapsed in the crossfade from ``lab[1]`` to ``lab[0]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def update_label(kurt: np.ndarray, lab: np.ndarray, margin: float, hold_samples: int,
                 elapsed: int, pinned: int) -> None:
    """Advance the label decision by ``elapsed`` samples given each output's kurtosis.

    Parameters
    ----------
    kurt : ndarray, shape (Q,)
        Excess kurtosis of each separated output (speech ≫ music, noise).
    lab : ndarray, shape (4,), int64
        Label state, updated in place (see module docstring).
    margin : float
        Kurtosis lead a challenger needs over the current voice output.
    hold_samples : int
        How long (samples) that lead must last before the label swaps.
    elapsed : int
        Samples since the previous call.
    pinned : int
        ≥ 0 pins the voice to that output index; -1 decides automatically.
    """
    cur = lab[0]
    if pinned >= 0:
        best = pinned
    else:
        best = cur
        for k in range(kurt.shape[0]):
            if kurt[k] > kurt[best]:
                best = k
    if best != cur and (pinned >= 0 or kurt[best] > kurt[cur] + margin):
        lab[2] += elapsed
        if pinned >= 0 or lab[2] >= hold_samples:
            lab[1] = cur
            lab[0] = best
            lab[2] = 0
            lab[3] = 0
    else:
        # the lead must be unbroken: between two talkers taking turns the
        # kurtosis lead comes and goes, and a leaky count was measured to
        # end in a swap mid-stream
        lab[2] = 0


@njit(cache=True)
def crossfade_weight(lab: np.ndarray, xfade_samples: int) -> float:
    """Weight of the new voice output (0 → 1 across the crossfade) at the current sample."""
    if xfade_samples <= 0 or lab[3] >= xfade_samples:
        return 1.0
    return (lab[3] + 1.0) / (xfade_samples + 1.0)
