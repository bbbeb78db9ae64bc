"""rtsep: real-time two-microphone blind source separation.

Running-covariance PCA whitening and an online kurtosis ICA (time-domain
engine) or online IVA (frequency-domain engine), in Numba kernels, behind one
streaming object::

    from rtsep import Separator
    sep = Separator(16000, channels=2).warmup()
    voice, background = sep.process(block)      # block: (frames, 2)
"""

from __future__ import annotations

from .errors import RtsepError
from .separator import Separator, separate

__version__ = "0.1.0"

__all__ = ["Separator", "separate", "RtsepError", "__version__"]
